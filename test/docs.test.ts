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
