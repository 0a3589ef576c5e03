// The documented error codes are the exported ones, with the same meaning and status.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { AGENT_ERROR_CODES } from '../agent/errors.js';
import { COLLECTOR_ERRORS } from '../collector/errors.js';
import { REPO } from './helpers/processes.js';

const readme = readFileSync(path.join(REPO, 'README.md'), 'utf8');

function rows(prefix: string): string[][] {
  return readme
    .split('\n')
    .filter((l) => l.startsWith(`| \`${prefix}`))
    .map((l) => l.split('|').slice(1, -1).map((c) => c.trim().replace(/^`|`$/g, '')));
}

describe('README error codes', () => {
  it('lists every collector code with its HTTP status and meaning', () => {
    const documented = rows('COL_ERR_').map(([code, status, meaning]) => [code, Number(status), meaning]);
    const exported = Object.entries(COLLECTOR_ERRORS).map(([code, e]) => [code, e.status, e.message]);
    expect(documented).toEqual(exported);
  });

  it('lists every agent code with its meaning', () => {
    const documented = rows('AGT_ERR_').map(([code, meaning]) => [code, meaning?.replace(/`/g, '')]);
    const exported = Object.entries(AGENT_ERROR_CODES).map(([code, m]) => [code, m.replace(/`/g, '')]);
    expect(documented).toEqual(exported);
  });

  it('shows the two commands for a fresh machine', () => {
    expect(readme).toContain('npm ci && npm start');
    expect(readme).toContain('npm test');
  });
});

describe('README policy example', () => {
  it('is a valid policy document, and gives each vendor its effective policy', async () => {
    const block = /### The policy[\s\S]*?```json\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(block, 'README has a JSON policy example').toBeDefined();
    const example = JSON.parse(block!) as Record<string, unknown>;
    const { validatePolicyDocument, effectivePolicy } = await import('../collector/policy.js');
    const doc = validatePolicyDocument({ version: 1, createdAt: '2026-11-22T00:00:00.000Z', ...example });
    expect(doc.exceptions).toHaveLength(1);
    expect(effectivePolicy(doc, 'acme').freshnessSeconds).toBe(3600);
    expect(effectivePolicy(doc, 'acme').checks.open_ports?.config).toEqual({ allow: [{ protocol: 'tcp', port: 443 }, { protocol: 'tcp', port: 22, process: 'sshd' }] });
    expect(effectivePolicy(doc, 'other').checks.open_ports?.config).toEqual({ allow: [{ protocol: 'tcp', port: 22, process: 'sshd' }] });
  });
});

describe('README S3 bucket policy', () => {
  it('is exactly what evidenceBucketPolicy() generates for the example settings', async () => {
    const block = /### Evidence in S3[\s\S]*?```json\n[\s\S]*?```[\s\S]*?```json\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(block, 'README has the bucket policy').toBeDefined();
    const settings = JSON.parse(/### Evidence in S3[\s\S]*?```json\n([\s\S]*?)```/.exec(readme)![1]!) as { bucket: string; prefix: string; sse: { kmsKeyId: string } };
    const { evidenceBucketPolicy, parseS3StoreConfig } = await import('../collector/s3-store.js');
    expect(() => parseS3StoreConfig(settings)).not.toThrow();
    expect(JSON.parse(block!)).toEqual(evidenceBucketPolicy({ bucket: settings.bucket, prefix: settings.prefix, kms: { keyArn: settings.sse.kmsKeyId } }));
  });
});
