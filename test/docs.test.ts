// The READMEs' examples are held to the code: the documented error codes are the exported ones,
// with the same meaning and status; the examples parse and mean what the text says; the top
// README stays one page; and every relative link points to a file that exists.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { AGENT_ERROR_CODES } from '../agent/errors.js';
import { COLLECTOR_ERRORS } from '../collector/errors.js';
import { REPO } from './helpers/processes.js';

const read = (rel: string) => readFileSync(path.join(REPO, rel), 'utf8');
const readme = read('README.md');
const agentReadme = read('agent/README.md');
const collectorReadme = read('collector/README.md');

/** Every README.md in the repository, as a path relative to it. */
function readmes(dir = REPO): string[] {
  const found: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (['node_modules', 'dist', 'coverage', '.git', '.bench', 'data'].includes(e.name)) continue;
    const p = path.join(dir, e.name);
    if (e.isDirectory()) found.push(...readmes(p));
    else if (e.name === 'README.md') found.push(path.relative(REPO, p));
  }
  return found.sort();
}

function rows(text: string, prefix: string): string[][] {
  return text
    .split('\n')
    .filter((l) => l.startsWith(`| \`${prefix}`))
    .map((l) => l.split('|').slice(1, -1).map((c) => c.trim().replace(/^`|`$/g, '')));
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
function anchor(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');
}

function anchors(text: string): Set<string> {
  const withoutCode = text.replace(/```[\s\S]*?```/g, '');
  return new Set([...withoutCode.matchAll(/^#{1,6} (.+)$/gm)].map((m) => anchor(m[1]!)));
}

describe('README error codes', () => {
  it('collector/README.md lists every collector code with its HTTP status and meaning, in order', () => {
    const documented = rows(collectorReadme, 'COL_ERR_').map(([code, status, meaning]) => [code, Number(status), meaning]);
    const exported = Object.entries(COLLECTOR_ERRORS).map(([code, e]) => [code, e.status, e.message]);
    expect(documented).toEqual(exported);
  });

  it('agent/README.md lists every agent code with its meaning, in order', () => {
    const documented = rows(agentReadme, 'AGT_ERR_').map(([code, meaning]) => [code, meaning?.replace(/`/g, '')]);
    const exported = Object.entries(AGENT_ERROR_CODES).map(([code, m]) => [code, m.replace(/`/g, '')]);
    expect(documented).toEqual(exported);
  });

  it('no README has an error-code table row for a code that is not exported', () => {
    const known = new Set([...Object.keys(COLLECTOR_ERRORS), ...Object.keys(AGENT_ERROR_CODES)]);
    for (const file of readmes()) {
      for (const [code] of [...rows(read(file), 'COL_ERR_'), ...rows(read(file), 'AGT_ERR_')]) expect(known.has(code!), `${file}: ${code}`).toBe(true);
    }
  });

  it('every AGT_ERR_ and COL_ERR_ code the READMEs mention is exported', () => {
    const known = new Set([...Object.keys(COLLECTOR_ERRORS), ...Object.keys(AGENT_ERROR_CODES)]);
    for (const file of readmes()) {
      for (const m of read(file).matchAll(/\b(?:AGT|COL)_ERR_[A-Z_]*[A-Z]\b/g)) expect(known.has(m[0]), `${file} mentions ${m[0]}`).toBe(true);
    }
  });
});

describe('the top-level README', () => {
  it('shows the two commands for a fresh machine', () => {
    const section = /## On a fresh machine\n([\s\S]*?)\n## /.exec(readme)?.[1];
    expect(section, 'README.md has "On a fresh machine"').toBeDefined();
    expect(section).toContain('npm ci && npm start');
    expect(section).toContain('npm test');
  });

  it('is one page: under 400 lines', () => {
    expect(readme.split('\n').length).toBeLessThan(400);
  });

  it('has a Troubleshooting section, and links to the four component READMEs', () => {
    expect(readme).toMatch(/^## Troubleshooting$/m);
    const next = /## Where to go next\n([\s\S]*?)(?:\n## |$)/.exec(readme)?.[1] ?? '';
    for (const f of ['agent/README.md', 'collector/README.md', 'checks/README.md', 'dashboards/README.md']) expect(next).toContain(`](${f})`);
  });
});

describe('every README', () => {
  const files = readmes();

  it('are found, the component READMEs among them', () => {
    for (const f of ['README.md', 'agent/README.md', 'collector/README.md', 'checks/README.md', 'dashboards/README.md']) expect(files).toContain(f);
  });

  it('mentions no DESIGN.md, which is not in the repository', () => {
    for (const f of files) expect(read(f), f).not.toMatch(/DESIGN/);
  });

  it('links only to files that exist, and to headings that exist in them', () => {
    for (const f of files) {
      const text = read(f).replace(/```[\s\S]*?```/g, '');
      for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        const target = m[1]!;
        if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto:
        const [file, hash] = target.split('#') as [string, string | undefined];
        const resolved = file === '' ? path.join(REPO, f) : path.resolve(path.dirname(path.join(REPO, f)), file);
        expect(existsSync(resolved), `${f} links to ${target}, which does not exist`).toBe(true);
        if (hash !== undefined && resolved.endsWith('.md')) {
          expect(anchors(readFileSync(resolved, 'utf8')).has(hash), `${f} links to ${target}: no such heading`).toBe(true);
        }
      }
    }
  });
});

describe('README policy example (collector/README.md)', () => {
  it('is a valid policy document, and gives each vendor its effective policy', async () => {
    const block = /## The policy\n[\s\S]*?```json\n([\s\S]*?)```/.exec(collectorReadme)?.[1];
    expect(block, 'collector/README.md has a JSON policy example').toBeDefined();
    const example = JSON.parse(block!) as Record<string, unknown>;
    const { validatePolicyDocument, effectivePolicy } = await import('../collector/policy.js');
    const doc = validatePolicyDocument({ version: 1, createdAt: '2026-11-22T00:00:00.000Z', ...example });
    expect(doc.exceptions).toHaveLength(1);
    expect(effectivePolicy(doc, 'acme').freshnessSeconds).toBe(3600);
    expect(effectivePolicy(doc, 'acme').checks.open_ports?.config).toEqual({ allow: [{ protocol: 'tcp', port: 443 }, { protocol: 'tcp', port: 22, process: 'sshd' }] });
    expect(effectivePolicy(doc, 'other').checks.open_ports?.config).toEqual({ allow: [{ protocol: 'tcp', port: 22, process: 'sshd' }] });
  });
});

describe('README S3 bucket policy (collector/README.md)', () => {
  it('is exactly what evidenceBucketPolicy() generates for the example settings', async () => {
    const block = /## Evidence in S3\n[\s\S]*?```json\n[\s\S]*?```[\s\S]*?```json\n([\s\S]*?)```/.exec(collectorReadme)?.[1];
    expect(block, 'collector/README.md has the bucket policy').toBeDefined();
    const settings = JSON.parse(/## Evidence in S3\n[\s\S]*?```json\n([\s\S]*?)```/.exec(collectorReadme)![1]!) as { bucket: string; prefix: string; sse: { kmsKeyId: string } };
    const { evidenceBucketPolicy, parseS3StoreConfig } = await import('../collector/s3-store.js');
    expect(() => parseS3StoreConfig(settings)).not.toThrow();
    expect(JSON.parse(block!)).toEqual(evidenceBucketPolicy({ bucket: settings.bucket, prefix: settings.prefix, kms: { keyArn: settings.sse.kmsKeyId } }));
  });
});
