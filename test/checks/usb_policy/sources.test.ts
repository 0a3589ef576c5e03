// The README and the declared sources of usb_policy agree with the code and with the fixtures.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { manifestSchema } from '../../../checks/replay.js';
import { USB_POLICY_FAIL_CODES, usbPolicy } from '../../../checks/usb_policy/index.js';
import { listCases } from '../../helpers/fixtures.js';

const readme = readFileSync(fileURLToPath(new URL('../../../checks/usb_policy/README.md', import.meta.url)), 'utf8');

/** A declared path as a pattern: `<name>` is one path segment, `*` part of one. */
function pattern(declared: string): RegExp {
  const re = declared
    .split(/(<[^>]+>|\*)/)
    .map((part) => (part.startsWith('<') || part === '*' ? '[^/]+' : part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')))
    .join('');
  return new RegExp(`^${re}$`);
}

describe('usb_policy README', () => {
  it('documents exactly the fail codes the check uses, with the same meaning', () => {
    const rows = [...readme.matchAll(/^\| `(CHK_FAIL_[A-Z_]+)` \| (.+?) \|$/gm)].map((m) => [m[1], m[2]]);
    expect(Object.fromEntries(rows)).toEqual(USB_POLICY_FAIL_CODES);
    expect(rows).toHaveLength(Object.keys(USB_POLICY_FAIL_CODES).length);
  });

  it('lists every declared file and command', () => {
    for (const s of usbPolicy.sources.linux ?? []) {
      if (s.kind === 'file') expect(readme).toContain(`\`${s.path}\``);
    }
    expect(readme).toContain('`/usr/bin/profiles -C -o stdout-xml`');
    expect(readme).toContain('WindowsPowerShell\\v1.0\\powershell.exe -NoProfile -NonInteractive -Command');
  });
});

describe('usb_policy declared sources', () => {
  const declared = (usbPolicy.sources.linux ?? []).flatMap((s) => (s.kind === 'file' ? [pattern(s.path)] : []));

  it('turns declared paths into patterns', () => {
    expect(pattern('/proc/<pid>/comm').test('/proc/734/comm')).toBe(true);
    expect(pattern('/proc/<pid>/comm').test('/proc/734/task/735/comm')).toBe(false);
    expect(pattern('/etc/modprobe.d/*.conf').test('/etc/modprobe.d/usb.conf')).toBe(true);
    expect(pattern('/etc/modprobe.d/*.conf').test('/etc/modprobe.d/usb.txt')).toBe(false);
  });

  const linuxCases = listCases('usb_policy').filter((c) => c.platform === 'linux');

  it('has Linux fixtures to compare with', () => {
    expect(linuxCases.length).toBeGreaterThan(0);
  });

  it.each(linuxCases.map((c) => [c.name, c.dir]))('every path %s reads is declared', (_name, dir) => {
    const manifest = manifestSchema.parse(JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8')));
    const undeclared = manifest.calls.flatMap((c) => (c.op === 'run' || c.op === 'httpGet' ? [] : [c.path])).filter((p) => !declared.some((re) => re.test(p)));
    expect(undeclared).toEqual([]);
  });

  it('declares commands only where the platform needs them', () => {
    expect((usbPolicy.sources.linux ?? []).every((s) => s.kind === 'file')).toBe(true);
    expect((usbPolicy.sources.darwin ?? []).every((s) => s.kind === 'command' && s.command.startsWith('/'))).toBe(true);
    expect((usbPolicy.sources.win32 ?? []).every((s) => s.kind === 'command')).toBe(true);
  });
});
