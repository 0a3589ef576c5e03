import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DEFAULT_SCOPES, SSO_FAIL_CODES, SSO_METRICS, ssoCoverage } from '../../../checks/sso_coverage/index.js';
import { FACTOR_STRENGTH, SIGN_ON_CLASS } from '../../../checks/sso_coverage/schema.js';

const readme = readFileSync(fileURLToPath(new URL('../../../checks/sso_coverage/README.md', import.meta.url)), 'utf8');

describe('sso_coverage README', () => {
  it('documents exactly the fail codes the check uses, with the same meaning', () => {
    const rows = [...readme.matchAll(/^\| `(CHK_FAIL_[A-Z_]+)` \| (.+?) \|$/gm)].map((m) => [m[1], m[2]]);
    expect(Object.fromEntries(rows)).toEqual(SSO_FAIL_CODES);
  });

  it('lists every declared host source, the same on every platform', () => {
    for (const p of ssoCoverage.platforms) {
      expect(ssoCoverage.sources[p]).toEqual(ssoCoverage.sources.linux);
      for (const s of ssoCoverage.sources[p] ?? []) if (s.kind === 'file') expect(readme).toContain(`\`${s.path}\``);
    }
  });

  it('names every API endpoint the check may read, and the default scopes', () => {
    for (const e of [
      'GET /api/v1/users',
      'GET /api/v1/users/{id}/factors',
      'GET /api/v1/groups',
      'GET /api/v1/groups/{id}',
      'GET /api/v1/groups/{id}/users',
      'GET /api/v1/apps',
      'GET /api/v1/apps/{id}/users',
      'GET /api/v1/logs',
      'GET /api/v1/api-tokens',
      'POST /oauth2/v1/token',
    ]) {
      expect(readme).toContain(`\`${e}\``);
    }
    for (const s of DEFAULT_SCOPES) expect(readme).toContain(`| \`${s}\` |`);
  });

  it('documents every metric series and every factor type and sign-on mode the check classifies', () => {
    for (const name of Object.keys(SSO_METRICS)) expect(readme).toContain(`\`${name}\``);
    for (const t of Object.keys(FACTOR_STRENGTH)) expect(readme).toContain(`\`${t}\``);
    for (const m of Object.keys(SIGN_ON_CLASS)) expect(readme).toContain(`\`${m}\``);
  });
});
