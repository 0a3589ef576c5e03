// Pure parsers and the pure verdict of usb_policy on macOS: the computer-level configuration
// profiles printed by `/usr/bin/profiles -C -o stdout-xml` (an XML property list), and in them
// the media-management payload com.apple.systemuiserver → mount-controls.
import * as z from 'zod';
import { CheckError } from '../errors.js';
import type { CommandResult, Evaluation, Reason } from '../types.js';

export const mountControlsSchema = z.object({
  profileIdentifier: z.string(),
  profileDisplayName: z.string().nullable(),
  payloadIdentifier: z.string().nullable(),
  /** mount-controls → harddisk-external (USB and Thunderbolt disks, SD cards); null when not set. */
  harddiskExternal: z.array(z.string()).nullable(),
  /** mount-controls → disk-image; null when not set. */
  diskImage: z.array(z.string()).nullable(),
});
export type MountControls = z.infer<typeof mountControlsSchema>;

export const darwinFactsSchema = z.object({
  platform: z.literal('darwin'),
  /** Computer-level configuration profiles installed. */
  profileCount: z.number().int().nonnegative(),
  /** Every com.apple.systemuiserver payload that carries mount-controls, in profile order. */
  mountControls: z.array(mountControlsSchema),
});
export type DarwinFacts = z.infer<typeof darwinFactsSchema>;

export interface DarwinPolicy {
  requireDiskImageDeny: boolean;
}

// ---------------------------------------------------------------------------------------------
// XML property lists

export type PlistValue = string | number | boolean | PlistValue[] | { [key: string]: PlistValue };

const ENTITIES: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

function decodeEntities(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]+|#\d+|[a-z]+);/g, (whole, e: string) => {
    if (e.startsWith('#x')) return String.fromCodePoint(parseInt(e.slice(2), 16));
    if (e.startsWith('#')) return String.fromCodePoint(parseInt(e.slice(1), 10));
    return ENTITIES[e] ?? whole;
  });
}

class PlistReader {
  pos = 0;
  constructor(readonly text: string) {}

  fail(what: string): never {
    throw new CheckError('CHK_ERR_PARSE', `property list: ${what} at offset ${this.pos}`);
  }

  skip(): void {
    for (;;) {
      while (this.pos < this.text.length && /\s/.test(this.text[this.pos]!)) this.pos++;
      if (this.text.startsWith('<!--', this.pos)) {
        const end = this.text.indexOf('-->', this.pos);
        if (end < 0) this.fail('unterminated comment');
        this.pos = end + 3;
      } else if (this.text.startsWith('<?', this.pos) || this.text.startsWith('<!', this.pos)) {
        const end = this.text.indexOf('>', this.pos);
        if (end < 0) this.fail('unterminated declaration');
        this.pos = end + 1;
      } else return;
    }
  }

  /** Reads `<name ...>` or `<name/>`; returns the name and whether it closed itself. */
  open(): { name: string; empty: boolean } {
    this.skip();
    const m = /^<([A-Za-z]+)(\s[^>]*?)?(\/?)>/.exec(this.text.slice(this.pos, this.pos + 256));
    if (m === null) this.fail('expected an element');
    this.pos += m[0].length;
    return { name: m[1]!, empty: m[3] === '/' };
  }

  close(name: string): void {
    this.skip();
    const tag = `</${name}>`;
    if (!this.text.startsWith(tag, this.pos)) this.fail(`expected ${tag}`);
    this.pos += tag.length;
  }

  atClose(name: string): boolean {
    this.skip();
    return this.text.startsWith(`</${name}>`, this.pos);
  }

  textUntil(name: string): string {
    const end = this.text.indexOf(`</${name}>`, this.pos);
    if (end < 0) this.fail(`unterminated <${name}>`);
    const raw = this.text.slice(this.pos, end);
    this.pos = end + name.length + 3;
    return decodeEntities(raw);
  }

  value(): PlistValue {
    const { name, empty } = this.open();
    switch (name) {
      case 'dict': {
        const out: { [key: string]: PlistValue } = {};
        if (empty) return out;
        while (!this.atClose('dict')) {
          const k = this.open();
          if (k.name !== 'key') this.fail('expected <key>');
          const key = k.empty ? '' : this.textUntil('key');
          out[key] = this.value();
        }
        this.close('dict');
        return out;
      }
      case 'array': {
        const out: PlistValue[] = [];
        if (empty) return out;
        while (!this.atClose('array')) out.push(this.value());
        this.close('array');
        return out;
      }
      case 'true':
      case 'false':
        if (!empty) this.close(name);
        return name === 'true';
      case 'string':
      case 'date':
      case 'data':
        return empty ? '' : this.textUntil(name);
      case 'integer':
      case 'real': {
        const n = Number((empty ? '' : this.textUntil(name)).trim());
        if (!Number.isFinite(n)) this.fail(`bad <${name}>`);
        return n;
      }
      default:
        return this.fail(`unexpected <${name}>`);
    }
  }
}

/** Parses an XML property list (the format `-o stdout-xml` and `plutil -convert xml1` print). */
export function parsePlist(xml: string): PlistValue {
  const r = new PlistReader(xml.replace(/^\uFEFF/, ''));
  const root = r.open();
  if (root.name !== 'plist' || root.empty) r.fail('expected <plist>');
  const v = r.value();
  r.close('plist');
  return v;
}

function isDict(v: PlistValue | undefined): v is { [key: string]: PlistValue } {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(v: PlistValue | undefined): string | null {
  return typeof v === 'string' ? v : null;
}

/** A media action: one string, or an array of strings (Apple allows both). */
function actions(v: PlistValue | undefined): string[] | null {
  if (v === undefined) return null;
  if (typeof v === 'string') return [v];
  if (Array.isArray(v)) return v.filter((x): x is string => typeof x === 'string');
  return [];
}

const NO_PROFILES = /^There are no configuration profiles installed/i;
const NEEDS_ROOT = /requires root|must be running as root/i;

/**
 * The profiles facts from `profiles -C -o stdout-xml`. Without root, profiles prints
 * "profiles: this command requires root privileges" (or "Must be running as root" with
 * -output), sometimes with exit status 0: that is unknown, never "no profiles".
 */
export function parseProfilesOutput(r: CommandResult): DarwinFacts {
  const out = r.stdout.trim();
  const err = r.stderr.trim();
  if (NEEDS_ROOT.test(out) || NEEDS_ROOT.test(err)) {
    throw new CheckError('CHK_ERR_PERMISSION', 'reading the installed configuration profiles needs root', { subject: '/usr/bin/profiles' });
  }
  if (r.exitCode !== 0) {
    const first = (err || out).split('\n')[0] ?? '';
    throw new CheckError('CHK_ERR_COMMAND_FAILED', `profiles exited with status ${r.exitCode}: ${first}`, { subject: '/usr/bin/profiles' });
  }
  if (NO_PROFILES.test(out)) return { platform: 'darwin', profileCount: 0, mountControls: [] };
  if (out === '') throw new CheckError('CHK_ERR_PARSE', 'profiles printed nothing', { subject: '/usr/bin/profiles' });
  const root = parsePlist(out);
  if (!isDict(root)) throw new CheckError('CHK_ERR_PARSE', 'profiles output is not a dictionary', { subject: '/usr/bin/profiles' });
  const computer = root['_computerlevel'];
  if (computer === undefined) return { platform: 'darwin', profileCount: 0, mountControls: [] };
  if (!Array.isArray(computer)) throw new CheckError('CHK_ERR_PARSE', '_computerlevel is not an array', { subject: '/usr/bin/profiles' });
  const mountControls: MountControls[] = [];
  for (const p of computer) {
    if (!isDict(p)) throw new CheckError('CHK_ERR_PARSE', 'a profile is not a dictionary', { subject: '/usr/bin/profiles' });
    const items = p['ProfileItems'];
    if (!Array.isArray(items)) continue;
    for (const item of items) {
      if (!isDict(item) || item['PayloadType'] !== 'com.apple.systemuiserver') continue;
      const content = item['PayloadContent'];
      const mc = isDict(content) ? content['mount-controls'] : undefined;
      if (!isDict(mc)) continue;
      mountControls.push({
        profileIdentifier: str(p['ProfileIdentifier']) ?? '',
        profileDisplayName: str(p['ProfileDisplayName']),
        payloadIdentifier: str(item['PayloadIdentifier']),
        harddiskExternal: actions(mc['harddisk-external']),
        diskImage: actions(mc['disk-image']),
      });
    }
  }
  return { platform: 'darwin', profileCount: computer.length, mountControls };
}

// ---------------------------------------------------------------------------------------------
// Verdict

export const DARWIN_FAIL_CODES = {
  CHK_FAIL_NO_BLOCKING_POLICY: 'no enforced policy blocks removable storage',
  CHK_FAIL_PARTIAL_BLOCK: 'removable storage is only partly blocked: reading or writing is still allowed',
  CHK_FAIL_DISK_IMAGES_ALLOWED: 'disk images can still be mounted and the policy requires them denied',
} as const;

/** `deny` refuses the mount; `eject` refuses it and ejects the medium. Both keep data off the Mac. */
function denies(list: readonly string[] | null): boolean {
  return list !== null && list.some((a) => a === 'deny' || a === 'eject');
}

export function evaluateDarwin(facts: DarwinFacts, policy: DarwinPolicy): Evaluation {
  const fails: Reason[] = [];
  const external = facts.mountControls.filter((mc) => mc.harddiskExternal !== null);
  if (!external.some((mc) => denies(mc.harddiskExternal))) {
    const readOnly = external.find((mc) => mc.harddiskExternal!.includes('read-only'));
    if (readOnly !== undefined) {
      fails.push({ code: 'CHK_FAIL_PARTIAL_BLOCK', message: `external disks are mounted read-only (profile ${readOnly.profileIdentifier}), not denied`, subject: 'harddisk-external' });
    } else {
      const set = external.map((mc) => `${mc.profileIdentifier}: ${mc.harddiskExternal!.join(', ') || '(empty)'}`).join('; ');
      fails.push({
        code: 'CHK_FAIL_NO_BLOCKING_POLICY',
        message: external.length === 0 ? 'no computer-level profile sets mount-controls for external disks' : `no profile denies external disks (${set})`,
        subject: 'harddisk-external',
      });
    }
  }
  if (policy.requireDiskImageDeny && !facts.mountControls.some((mc) => denies(mc.diskImage))) {
    fails.push({ code: 'CHK_FAIL_DISK_IMAGES_ALLOWED', message: 'no profile denies mounting disk images', subject: 'disk-image' });
  }
  return fails.length > 0 ? { status: 'fail', reasons: fails } : { status: 'pass', reasons: [] };
}
