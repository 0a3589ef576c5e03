import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { VPN_FAIL_CODES, vpn } from '../../../checks/vpn/index.js';

const readme = readFileSync(fileURLToPath(new URL('../../../checks/vpn/README.md', import.meta.url)), 'utf8');

describe('vpn README', () => {
  it('documents exactly the fail codes the check uses, with the same meaning', () => {
    const rows = [...readme.matchAll(/^\| `(CHK_FAIL_[A-Z0-9_]+)` \| (.+?) \|$/gm)].map((m) => [m[1], m[2]]);
    expect(Object.fromEntries(rows)).toEqual(VPN_FAIL_CODES);
  });

  it('lists every declared Linux path and macOS command', () => {
    for (const s of vpn.sources.linux ?? []) if (s.kind === 'file') expect(readme).toContain(`\`${s.path}\``);
    for (const s of vpn.sources.darwin ?? []) if (s.kind === 'command') expect(readme).toContain(`\`${[s.command, ...s.args].join(' ')}\``);
  });

  it('names the cmdlet of every declared Windows script', () => {
    for (const s of vpn.sources.win32 ?? []) {
      if (s.kind !== 'command') continue;
      const cmdlet = /(Get-[A-Za-z]+)/.exec(s.args.at(-1) ?? '')?.[1];
      expect(cmdlet).toBeDefined();
      expect(readme).toContain(cmdlet!);
    }
  });
});
