import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CREDENTIAL_AGE_FAIL_CODES, credentialAge, DEFAULT_MAX_AGE_DAYS, DSCL, DSCL_ARGS } from '../../../checks/credential_age/index.js';

const readme = readFileSync(fileURLToPath(new URL('../../../checks/credential_age/README.md', import.meta.url)), 'utf8');

describe('credential_age README', () => {
  it('documents exactly the fail codes the check uses, with the same meaning', () => {
    const rows = [...readme.matchAll(/^\| `(CHK_FAIL_[A-Z_]+)` \| (.+?) \|$/gm)].map((m) => [m[1], m[2]]);
    expect(Object.fromEntries(rows)).toEqual(CREDENTIAL_AGE_FAIL_CODES);
  });

  it('lists every declared file source and command', () => {
    for (const platform of credentialAge.platforms) {
      for (const s of credentialAge.sources[platform] ?? []) {
        if (s.kind === 'file') expect(readme, s.path).toContain(`\`${s.path}\``);
        else expect(readme, s.command).toContain(s.command);
      }
    }
    // The exact dscl argument vector, as the allow-list will hold it.
    expect(readme).toContain(`\`${[DSCL, ...DSCL_ARGS].join(' ')}\``);
  });

  it('gives the default maximum of every kind in the configuration table', () => {
    for (const [kind, days] of Object.entries(DEFAULT_MAX_AGE_DAYS)) {
      expect(readme).toMatch(new RegExp(`^\\| \`maxAgeDays\\.${kind}\` \\| [^|]+ \\| \`${days}\` \\|`, 'm'));
    }
  });
});
