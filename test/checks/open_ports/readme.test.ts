import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { OPEN_PORTS_FAIL_CODES, openPorts } from '../../../checks/open_ports/index.js';

const readme = readFileSync(fileURLToPath(new URL('../../../checks/open_ports/README.md', import.meta.url)), 'utf8');

describe('open_ports README', () => {
  it('documents exactly the fail codes the check uses, with the same meaning', () => {
    const rows = [...readme.matchAll(/^\| `(CHK_FAIL_[A-Z_]+)` \| (.+?) \|$/gm)].map((m) => [m[1], m[2]]);
    expect(Object.fromEntries(rows)).toEqual(OPEN_PORTS_FAIL_CODES);
  });

  it('lists every declared source', () => {
    for (const s of openPorts.sources.linux ?? []) {
      if (s.kind === 'file') expect(readme).toContain(`\`${s.path}\``);
    }
  });
});
