// Pure parsers and the pure verdict of usb_policy on Linux: /proc/modules, /proc/cmdline,
// modprobe.d files, modules.builtin and modules.dep, USBGuard's daemon configuration and rules,
// and the USB interfaces in sysfs. No I/O here; index.ts does the reading.
import * as z from 'zod';
import { CheckError, type CheckErrorCode } from '../errors.js';
import type { Evaluation, Reason } from '../types.js';
import { verdict } from '../verdict.js';

// ---------------------------------------------------------------------------------------------
// Facts

export const installOverrideSchema = z.object({
  /** The modprobe.d file and line of the first matching `install` command (the one modprobe uses). */
  file: z.string(),
  line: z.number().int().positive(),
  /** The module name or glob as written after `install`, dashes turned into underscores. */
  pattern: z.string(),
  command: z.string(),
});
export type InstallOverride = z.infer<typeof installOverrideSchema>;

export const moduleFactSchema = z.object({
  /** Kernel module name with underscores (`usb_storage`; the file is usb-storage.ko). */
  name: z.string(),
  /** Listed in /proc/modules now. */
  loaded: z.boolean(),
  /** Built into the kernel image: no modprobe setting can keep it from running. null: cannot tell. */
  builtin: z.boolean().nullable(),
  /** /sys/module/<name> exists (loaded modules, and built-in ones that have parameters). */
  sysfsPresent: z.boolean(),
  /** Listed in /lib/modules/<release>/modules.builtin; null when that file was not read. */
  inModulesBuiltin: z.boolean().nullable(),
  /** A loadable module file is listed in modules.dep; null when that file was not read. */
  inModulesDep: z.boolean().nullable(),
  /** The modules this one needs (modules.dep); null when unknown. */
  dependsOn: z.array(z.string()).nullable(),
  installOverride: installOverrideSchema.nullable(),
  /** modprobe.d files with `blacklist <name>`. */
  blacklisted: z.array(z.string()),
  cmdlineBlacklisted: z.object({
    /** `module_blacklist=` on the kernel command line: the kernel refuses to load the module. */
    moduleBlacklist: z.boolean(),
    /** `modprobe.blacklist=`: read by modprobe like a `blacklist` line (aliases only). */
    modprobeBlacklist: z.boolean(),
  }),
});
export type ModuleFact = z.infer<typeof moduleFactSchema>;

export const broadAllowSchema = z.object({ file: z.string(), line: z.number().int().positive(), rule: z.string() });

export const usbguardFactSchema = z.object({
  /** The daemon configuration read: `-c` of the running daemon, or the default path. */
  configFile: z.string(),
  config: z.enum(['read', 'missing', 'unreadable']),
  /** As written; null when the key is absent (the daemon then uses `block`). */
  implicitPolicyTarget: z.string().nullable(),
  presentDevicePolicy: z.string().nullable(),
  insertedDevicePolicy: z.string().nullable(),
  /** Rule files read (RuleFile, and every file in RuleFolder). */
  ruleFiles: z.array(z.string()),
  rules: z.enum(['read', 'unreadable', 'not-read']),
  allowRules: z.number().int().nonnegative(),
  /** `allow` rules that pin no device and can match a mass-storage interface. */
  broadStorageAllows: z.array(broadAllowSchema),
  running: z.boolean(),
  pids: z.array(z.number().int().positive()),
});
export type UsbguardFact = z.infer<typeof usbguardFactSchema>;

export const attachedStorageSchema = z.object({
  /** sysfs interface name, e.g. `1-1:1.0`. */
  interface: z.string(),
  /** sysfs device name, e.g. `1-1`. */
  device: z.string(),
  idVendor: z.string(),
  idProduct: z.string(),
  product: z.string().nullable(),
  manufacturer: z.string().nullable(),
  /** bInterfaceProtocol: `50` bulk-only (usb-storage), `62` UAS. */
  interfaceProtocol: z.string().nullable(),
  /** The device's `authorized` attribute (USBGuard de-authorizes blocked devices). */
  authorized: z.boolean().nullable(),
  /** The driver bound to the interface (`usb-storage`, `uas`), null when none is. */
  driver: z.string().nullable(),
});
export type AttachedStorage = z.infer<typeof attachedStorageSchema>;

export const linuxFactsSchema = z.object({
  platform: z.literal('linux'),
  kernelRelease: z.string().nullable(),
  /** /proc/modules exists: the kernel can load modules at all. */
  moduleSupport: z.boolean(),
  /** /proc/sys/kernel/modules_disabled is 1 (no module can be loaded until reboot); null: absent. */
  modulesDisabled: z.boolean().nullable(),
  cmdline: z.object({ moduleBlacklist: z.array(z.string()), modprobeBlacklist: z.array(z.string()) }),
  modprobe: z.object({ filesRead: z.array(z.string()), unreadable: z.array(z.string()) }),
  modules: z.array(moduleFactSchema),
  usbguard: usbguardFactSchema,
  /** /sys/bus/usb/devices exists: the USB core is in the kernel now. */
  usbBus: z.boolean(),
  attachedMassStorage: z.array(attachedStorageSchema),
});
export type LinuxFacts = z.infer<typeof linuxFactsSchema>;

/** The settings the Linux verdict uses (a subset of the check's config). */
export interface LinuxPolicy {
  modules: readonly string[];
  acceptBlacklistOnly: boolean;
  allowAttachedDevices: readonly string[];
}

// ---------------------------------------------------------------------------------------------
// Module names, modprobe.d, the kernel command line

/**
 * kmod's underscores(): `-` becomes `_` except inside `[...]`. Returns null for an unmatched
 * bracket, which modprobe rejects (the line is ignored).
 */
export function normalizeModuleName(name: string): string | null {
  let out = '';
  for (let i = 0; i < name.length; i++) {
    const c = name[i]!;
    if (c === '[') {
      const end = name.indexOf(']', i);
      if (end < 0) return null;
      out += name.slice(i, end + 1);
      i = end;
    } else if (c === ']') {
      return null;
    } else {
      out += c === '-' ? '_' : c;
    }
  }
  return out;
}

/** fnmatch(3) without flags: `*`, `?` and bracket expressions (`[!...]`, `[^...]`, ranges). */
export function globMatch(pattern: string, name: string): boolean {
  let re = '^';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') re += '.*';
    else if (c === '?') re += '.';
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 2);
      if (end < 0) {
        re += '\\[';
        continue;
      }
      let body = pattern.slice(i + 1, end);
      const negate = body.startsWith('!') || body.startsWith('^');
      if (negate) body = body.slice(1);
      re += `[${negate ? '^' : ''}${body.replace(/[\\\]^]/g, '\\$&')}]`;
      i = end;
    } else re += c.replace(/[.+^${}()|\\/]/g, '\\$&');
  }
  return new RegExp(`${re}$`).test(name);
}

export interface ModprobeEntry {
  kind: 'install' | 'blacklist';
  /** Normalized module name (blacklist) or glob (install). */
  pattern: string;
  /** The install command (rest of the line). */
  command?: string;
  line: number;
}

/**
 * Parses one modprobe.d file the way kmod does: a trailing `\` joins the next line, a first word
 * starting with `#` makes a comment, `install <module> <command...>` and `blacklist <module>`.
 * Malformed lines are skipped, as modprobe skips them. Other commands are not needed here.
 */
export function parseModprobeConf(text: string): ModprobeEntry[] {
  const out: ModprobeEntry[] = [];
  const raw = text.split('\n');
  for (let i = 0; i < raw.length; i++) {
    const start = i + 1;
    let line = raw[i]!;
    while (line.endsWith('\\') && i + 1 < raw.length) line = line.slice(0, -1) + raw[++i]!;
    const m = /^[ \t]*(\S+)(?:[ \t]+(\S+))?(?:[ \t](.*))?$/.exec(line.replace(/\r$/, ''));
    if (m === null) continue;
    const [, cmd, mod, rest] = m;
    if (cmd === undefined || cmd.startsWith('#') || mod === undefined) continue;
    const pattern = normalizeModuleName(mod);
    if (pattern === null) continue;
    if (cmd === 'install') {
      const command = (rest ?? '').trim();
      if (command !== '') out.push({ kind: 'install', pattern, command, line: start });
    } else if (cmd === 'blacklist') {
      out.push({ kind: 'blacklist', pattern, line: start });
    }
  }
  return out;
}

/** Programs that, run by modprobe in place of loading, load nothing. */
const NON_LOADING_PROGRAMS = new Set(['true', 'false', 'nologin', 'echo', 'logger', 'exit']);

/**
 * Whether an `install` command keeps the module from loading. modprobe runs the command through
 * the shell instead of inserting the module, so `/bin/false`, `/bin/true` or `/sbin/nologin` block
 * it. A command that calls modprobe or insmod loads it; anything else (scripts, chains, shell
 * substitutions) cannot be judged from the text.
 */
export function classifyInstallCommand(command: string): 'blocks' | 'loads' | 'unknown' {
  const c = command.trim();
  if (/(^|[\s/;&|`(])(modprobe|insmod)(\s|$|[;&|`)])/.test(c)) return 'loads';
  if (/[;&|`$<>()\n\\]/.test(c)) return 'unknown';
  const prog = c.split(/\s+/)[0] ?? '';
  const base = prog.slice(prog.lastIndexOf('/') + 1);
  if (!NON_LOADING_PROGRAMS.has(base)) return 'unknown';
  if (prog.includes('/') && !/^\/(usr\/)?s?bin\/[a-z]+$/.test(prog)) return 'unknown';
  return 'blocks';
}

/**
 * The module settings on the kernel command line. Parameters after a lone `--` belong to init.
 * `module_blacklist=` is a kernel parameter: the last one counts, and its names are compared
 * byte for byte with the module's name (so `usb-storage` there matches nothing). kmod reads every
 * `modprobe.blacklist=` and compares its names as written.
 */
export function parseKernelCmdline(text: string): { moduleBlacklist: string[]; modprobeBlacklist: string[] } {
  const tokens: string[] = [];
  let cur = '';
  let quoted = false;
  for (const ch of text) {
    if (ch === '"') quoted = !quoted;
    else if (!quoted && /\s/.test(ch)) {
      if (cur !== '') tokens.push(cur);
      cur = '';
    } else cur += ch;
  }
  if (cur !== '') tokens.push(cur);
  let moduleBlacklist: string[] = [];
  const modprobeBlacklist: string[] = [];
  for (const t of tokens) {
    if (t === '--') break;
    const eq = t.indexOf('=');
    if (eq < 0) continue;
    // The kernel treats - and _ alike in parameter names, never in values.
    const name = t.slice(0, eq).replace(/-/g, '_');
    const values = t
      .slice(eq + 1)
      .split(',')
      .filter((v) => v !== '');
    if (name === 'module_blacklist') moduleBlacklist = values;
    else if (name === 'modprobe.blacklist') modprobeBlacklist.push(...values);
  }
  return { moduleBlacklist, modprobeBlacklist };
}

function parseError(source: string, line: number, what: string): CheckError {
  return new CheckError('CHK_ERR_PARSE', `unexpected ${what}`, { subject: `${source}:${line}` });
}

/** Module names from /proc/modules (`name size refcount deps state address`). */
export function parseProcModules(text: string, source = '/proc/modules'): string[] {
  const names: string[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const f = (lines[i] ?? '').trim().split(/\s+/);
    if (f.length === 1 && f[0] === '') continue;
    if (f.length < 3 || !/^[A-Za-z0-9_]+$/.test(f[0]!) || !/^\d+$/.test(f[1]!)) throw parseError(source, i + 1, 'line in the module list');
    names.push(f[0]!);
  }
  return names;
}

/** `kernel/drivers/usb/storage/usb-storage.ko.zst` → `usb_storage`. */
export function moduleNameFromPath(p: string): string {
  const base = p.slice(p.lastIndexOf('/') + 1).replace(/\.ko(\.(xz|gz|zst|bz2))?$/, '');
  return base.replace(/-/g, '_');
}

/** modules.builtin: one module path per line. */
export function parseModulesBuiltin(text: string): Set<string> {
  const names = new Set<string>();
  for (const line of text.split('\n')) {
    const t = line.trim();
    if (t !== '') names.add(moduleNameFromPath(t));
  }
  return names;
}

/** modules.dep: `path: dep-path dep-path ...`, one loadable module per line. */
export function parseModulesDep(text: string, source = 'modules.dep'): Map<string, string[]> {
  const deps = new Map<string, string[]>();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const t = (lines[i] ?? '').trim();
    if (t === '') continue;
    const colon = t.indexOf(':');
    if (colon <= 0) throw parseError(source, i + 1, 'line in modules.dep');
    const list = t
      .slice(colon + 1)
      .trim()
      .split(/\s+/)
      .filter((d) => d !== '')
      .map(moduleNameFromPath);
    deps.set(moduleNameFromPath(t.slice(0, colon)), list);
  }
  return deps;
}

/**
 * Whether a module is built in. Built-in modules never appear in /proc/modules; those with
 * parameters (usb_storage has some, uas has none) still get /sys/module/<name>.
 */
export function deriveBuiltin(m: { loaded: boolean; sysfsPresent: boolean; inModulesBuiltin: boolean | null; inModulesDep: boolean | null }): boolean | null {
  if (m.inModulesBuiltin === true) return true;
  if (m.loaded) return false;
  if (m.sysfsPresent) return true;
  if (m.inModulesDep === true) return false;
  if (m.inModulesBuiltin === false) return false;
  return null;
}

// ---------------------------------------------------------------------------------------------
// USBGuard

/** usbguard-daemon.conf: `Key=Value` lines, `#` comments. The last value of a key counts. */
export function parseKeyValueConf(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const t = line.trim();
    if (t === '' || t.startsWith('#')) continue;
    const eq = t.indexOf('=');
    if (eq <= 0) continue;
    out.set(t.slice(0, eq).trim(), t.slice(eq + 1).trim());
  }
  return out;
}

/** Arguments of a process from /proc/<pid>/cmdline (NUL-separated). */
export function splitProcCmdline(text: string): string[] {
  const parts = text.split('\0');
  if (parts.at(-1) === '') parts.pop();
  return parts;
}

/** The configuration path given to usbguard-daemon with `-c PATH` or `-cPATH`, if any. */
export function usbguardConfigFromArgs(args: readonly string[]): string | null {
  for (let i = 1; i < args.length; i++) {
    const a = args[i]!;
    if (a === '-c') return args[i + 1] ?? null;
    if (a.startsWith('-c') && a.length > 2 && !a.startsWith('--')) return a.slice(2);
  }
  return null;
}

const RULE_TARGETS = new Set(['allow', 'block', 'reject', 'match', 'device']);
const RULE_ATTRIBUTES = new Set(['id', 'hash', 'parent-hash', 'name', 'serial', 'via-port', 'with-interface', 'with-connect-type', 'label', 'if']);
const SET_OPERATORS = new Set(['all-of', 'one-of', 'none-of', 'equals', 'equals-ordered', 'match-all']);
const DEVICE_ID = /^([0-9a-fA-F]{4}|\*):([0-9a-fA-F]{4}|\*)$/;
const CONCRETE_ID = /^[0-9a-fA-F]{4}:[0-9a-fA-F]{4}$/;

function tokenizeRule(line: string): string[] | null {
  const out: string[] = [];
  let i = 0;
  while (i < line.length) {
    const c = line[i]!;
    if (/\s/.test(c)) {
      i++;
    } else if (c === '{' || c === '}') {
      out.push(c);
      i++;
    } else if (c === '"') {
      let j = i + 1;
      while (j < line.length && line[j] !== '"') j += line[j] === '\\' ? 2 : 1;
      if (j >= line.length) return null;
      out.push(line.slice(i, j + 1));
      i = j + 1;
    } else {
      let j = i;
      while (j < line.length && !/[\s{}"]/.test(line[j]!)) j++;
      out.push(line.slice(i, j));
      i = j;
    }
  }
  return out;
}

interface RuleAttribute {
  op: string | null;
  values: string[];
}

/** Parses one rule into its target and attributes; null when it is not in the rule language. */
export function parseUsbguardRule(line: string): { target: string; attrs: Map<string, RuleAttribute> } | null {
  const t = tokenizeRule(line);
  if (t === null || t.length === 0 || !RULE_TARGETS.has(t[0]!)) return null;
  const attrs = new Map<string, RuleAttribute>();
  let i = 1;
  if (t[1] !== undefined && DEVICE_ID.test(t[1])) {
    attrs.set('id', { op: null, values: [t[1]] });
    i = 2;
  }
  while (i < t.length) {
    const name = t[i++]!;
    if (!RULE_ATTRIBUTES.has(name)) return null;
    let op: string | null = null;
    if (t[i] !== undefined && SET_OPERATORS.has(t[i]!)) op = t[i++]!;
    const values: string[] = [];
    if (t[i] === '{') {
      i++;
      while (i < t.length && t[i] !== '}') values.push(t[i++]!);
      if (t[i] !== '}') return null;
      i++;
    } else if (t[i] !== undefined) {
      values.push(t[i++]!);
    } else {
      return null;
    }
    attrs.set(name, { op, values: values.map((v) => v.replace(/^"(.*)"$/, '$1')) });
  }
  return { target: t[0]!, attrs };
}

/**
 * An `allow` rule is broad for storage when it pins no device (no hash, no serial, no complete
 * vendor:product id) and its interface condition can match class 08 (mass storage), or it has
 * none. Such a rule lets any USB stick through, whatever the implicit policy says.
 */
export function isBroadStorageAllow(line: string): boolean {
  const rule = parseUsbguardRule(line);
  // An allow line we cannot read could allow anything: count it against the policy.
  if (rule === null) return /^\s*allow\b/.test(line);
  if (rule.target !== 'allow') return false;
  const pinnedBy = (name: string): boolean => {
    const a = rule.attrs.get(name);
    return a !== undefined && a.op !== 'none-of' && a.values.length > 0;
  };
  if (pinnedBy('hash') || pinnedBy('serial')) return false;
  const id = rule.attrs.get('id');
  if (id !== undefined && id.op !== 'none-of' && id.values.length > 0 && id.values.every((v) => CONCRETE_ID.test(v))) return false;
  const iface = rule.attrs.get('with-interface');
  if (iface === undefined) return true;
  if (iface.op === 'none-of') return !iface.values.some((v) => /^(08|\*):\*:\*$/i.test(v));
  return iface.values.some((v) => /^(08|\*):/i.test(v));
}

/** Counts the allow rules of one rule file and lists the broad storage ones. */
export function scanUsbguardRules(text: string, file: string): { allowRules: number; broad: { file: string; line: number; rule: string }[] } {
  let allowRules = 0;
  const broad: { file: string; line: number; rule: string }[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const rule = (lines[i] ?? '').trim();
    if (rule === '' || rule.startsWith('#')) continue;
    if (!/^allow\b/.test(rule)) continue;
    allowRules++;
    if (isBroadStorageAllow(rule)) broad.push({ file, line: i + 1, rule });
  }
  return { allowRules, broad };
}

// ---------------------------------------------------------------------------------------------
// sysfs USB devices

/**
 * `1-1.2:1.0` → device `1-1.2`. Interfaces of a root hub (`1-0:1.0`) belong to `usb1`.
 * Device directories (`1-1`, `usb1`) are not interfaces and give null.
 */
export function usbInterfaceParent(name: string): string | null {
  const m = /^(\d+)-([\d.]+):\d+\.\d+$/.exec(name);
  if (m === null) return null;
  return m[2] === '0' ? `usb${m[1]}` : `${m[1]}-${m[2]}`;
}

/** A sysfs hex attribute (`08\n`) in lower case, or null when it is not hex. */
export function sysfsHex(text: string): string | null {
  const t = text.trim().toLowerCase();
  return /^[0-9a-f]+$/.test(t) ? t : null;
}

// ---------------------------------------------------------------------------------------------
// Verdict

export const LINUX_FAIL_CODES = {
  CHK_FAIL_MASS_STORAGE_ATTACHED: 'a mass-storage device is attached and a driver serves it',
  CHK_FAIL_MODULE_LOADED: 'a storage module is loaded and nothing blocks it',
  CHK_FAIL_LOADED_DESPITE_BLOCK: 'a storage module (or driver) is loaded although its block is configured',
  CHK_FAIL_MODULE_BUILTIN: 'a storage module is built into the kernel, so modprobe settings cannot block it',
  CHK_FAIL_BLACKLIST_ONLY: 'a storage module is only blacklisted, which stops automatic loading but not an explicit modprobe',
  CHK_FAIL_MODULE_NOT_BLOCKED: 'a storage module can be loaded: no install override, kernel blacklist or other block',
  CHK_FAIL_USBGUARD_NOT_RUNNING: 'USBGuard is configured but its daemon is not running',
  CHK_FAIL_USBGUARD_ALLOWS_STORAGE: 'USBGuard runs but lets unknown storage devices through',
} as const;

type Verdict =
  | { state: 'blocked'; strong: boolean; via: string }
  | { state: 'fail'; reason: Reason }
  | { state: 'unknown'; reason: Reason & { code: CheckErrorCode } };

function describeConfigBlocks(m: ModuleFact): string[] {
  const out: string[] = [];
  if (m.installOverride !== null && classifyInstallCommand(m.installOverride.command) === 'blocks') {
    out.push(`install ${m.installOverride.command} (${m.installOverride.file}:${m.installOverride.line})`);
  }
  if (m.blacklisted.length > 0) out.push(`blacklist in ${m.blacklisted.join(', ')}`);
  if (m.cmdlineBlacklisted.moduleBlacklist) out.push('module_blacklist= on the kernel command line');
  if (m.cmdlineBlacklisted.modprobeBlacklist) out.push('modprobe.blacklist= on the kernel command line');
  return out;
}

function judgeModule(name: string, facts: LinuxFacts, policy: LinuxPolicy, seen: ReadonlySet<string>): Verdict {
  const m = facts.modules.find((x) => x.name === name);
  const fail = (code: keyof typeof LINUX_FAIL_CODES, message: string): Verdict => ({ state: 'fail', reason: { code, message, subject: name } });
  const unknown = (code: CheckErrorCode, message: string): Verdict => ({ state: 'unknown', reason: { code, message, subject: name } });
  if (m === undefined) return unknown('CHK_ERR_UNRESOLVED', `no facts for module ${name}: they were collected under another module list`);
  const blocks = describeConfigBlocks(m);
  if (m.loaded) {
    return blocks.length > 0
      ? fail('CHK_FAIL_LOADED_DESPITE_BLOCK', `${name} is loaded now although it is blocked by ${blocks.join('; ')}`)
      : fail('CHK_FAIL_MODULE_LOADED', `${name} is loaded now`);
  }
  if (m.builtin === true) return fail('CHK_FAIL_MODULE_BUILTIN', `${name} is built into the kernel; modprobe settings cannot block it`);
  if (m.builtin === null) return unknown('CHK_ERR_UNRESOLVED', `cannot tell whether ${name} is built into the kernel (modules.builtin and modules.dep were not readable)`);
  if (!facts.moduleSupport) return { state: 'blocked', strong: true, via: 'the kernel cannot load modules and it is not built in' };
  if (facts.modulesDisabled === true) return { state: 'blocked', strong: true, via: 'kernel.modules_disabled=1 (no module can be loaded until reboot)' };
  if (m.cmdlineBlacklisted.moduleBlacklist) return { state: 'blocked', strong: true, via: 'module_blacklist= on the kernel command line' };
  if (m.inModulesDep === false) return { state: 'blocked', strong: true, via: `no module file for kernel ${facts.kernelRelease ?? '?'} (absent from modules.dep)` };
  const unreadable = facts.modprobe.unreadable.length > 0;
  const install = m.installOverride === null ? null : classifyInstallCommand(m.installOverride.command);
  if (install === 'blocks') {
    if (unreadable) return unknown('CHK_ERR_PERMISSION', `modprobe configuration that could override ${name}'s install line is unreadable: ${facts.modprobe.unreadable.join(', ')}`);
    const o = m.installOverride!;
    return { state: 'blocked', strong: true, via: `install ${o.command} (${o.file}:${o.line})` };
  }
  for (const dep of m.dependsOn ?? []) {
    if (seen.has(dep) || !facts.modules.some((x) => x.name === dep)) continue;
    const v = judgeModule(dep, facts, policy, new Set([...seen, name]));
    if (v.state === 'blocked' && v.strong) return { state: 'blocked', strong: true, via: `needs ${dep}, which is blocked: ${v.via}` };
  }
  if (unreadable) return unknown('CHK_ERR_PERMISSION', `some modprobe configuration is unreadable: ${facts.modprobe.unreadable.join(', ')}`);
  if (install === 'unknown') {
    const o = m.installOverride!;
    return unknown('CHK_ERR_UNRESOLVED', `cannot tell whether the install command for ${name} loads it: ${o.command} (${o.file}:${o.line})`);
  }
  const weak = m.blacklisted.length > 0 || m.cmdlineBlacklisted.modprobeBlacklist;
  if (weak) {
    if (policy.acceptBlacklistOnly) return { state: 'blocked', strong: false, via: blocks.join('; ') };
    return fail('CHK_FAIL_BLACKLIST_ONLY', `${name} is only blacklisted (${blocks.join('; ')}); an explicit modprobe or a dependency still loads it`);
  }
  const loads = install === 'loads' ? ` (its install command loads it: ${m.installOverride!.command})` : '';
  return fail('CHK_FAIL_MODULE_NOT_BLOCKED', `${name} can be loaded${loads}`);
}

/** USBGuard's effective state: enforcing only when configured to block, running, and no broad allow rule. */
export function judgeUsbguard(u: UsbguardFact): { state: 'absent' | 'enforcing' | 'fail' | 'unknown'; reason?: Reason } {
  const subject = 'usbguard';
  if (u.config === 'missing' && !u.running) return { state: 'absent' };
  if (!u.running) {
    return { state: 'fail', reason: { code: 'CHK_FAIL_USBGUARD_NOT_RUNNING', message: `USBGuard is configured (${u.configFile}) but usbguard-daemon is not running`, subject } };
  }
  if (u.config === 'missing') return { state: 'unknown', reason: { code: 'CHK_ERR_UNRESOLVED', message: `usbguard-daemon runs but ${u.configFile} does not exist`, subject } };
  if (u.config === 'unreadable') return { state: 'unknown', reason: { code: 'CHK_ERR_PERMISSION', message: `cannot read ${u.configFile}`, subject } };
  const target = u.implicitPolicyTarget ?? 'block';
  if (target !== 'block' && target !== 'reject') {
    return { state: 'fail', reason: { code: 'CHK_FAIL_USBGUARD_ALLOWS_STORAGE', message: `ImplicitPolicyTarget=${target}: devices no rule names are authorized`, subject } };
  }
  if (u.rules !== 'read') return { state: 'unknown', reason: { code: 'CHK_ERR_PERMISSION', message: 'cannot read the USBGuard rule files', subject } };
  if (u.broadStorageAllows.length > 0) {
    const where = u.broadStorageAllows.map((r) => `${r.file}:${r.line}`).join(', ');
    return { state: 'fail', reason: { code: 'CHK_FAIL_USBGUARD_ALLOWS_STORAGE', message: `allow rules that pin no device can match mass storage: ${where}`, subject } };
  }
  return { state: 'enforcing' };
}

function describeDevice(d: AttachedStorage): string {
  return `${d.interface} (${d.idVendor}:${d.idProduct}${d.product === null ? '' : ` ${d.product}`})`;
}

/**
 * Pure: the verdict for Linux facts. Enforcement is one of: a kernel without USB that cannot load
 * modules; USBGuard enforcing; or every listed module blocked. A storage device bound to a driver
 * now fails whatever the mechanism says.
 */
export function evaluateLinux(facts: LinuxFacts, policy: LinuxPolicy): Evaluation {
  const fails: Reason[] = [];
  const unknowns: Reason[] = [];
  const allowed = new Set(policy.allowAttachedDevices.map((d) => d.toLowerCase()));
  for (const d of facts.attachedMassStorage) {
    if (d.driver === null || allowed.has(`${d.idVendor}:${d.idProduct}`.toLowerCase())) continue;
    fails.push({ code: 'CHK_FAIL_MASS_STORAGE_ATTACHED', message: `mass-storage interface ${describeDevice(d)} is attached and bound to ${d.driver}`, subject: d.interface });
  }
  const noUsb = !facts.usbBus && (!facts.moduleSupport || facts.modulesDisabled === true);
  const ug = judgeUsbguard(facts.usbguard);
  let enforced = noUsb || ug.state === 'enforcing';
  if (!enforced) {
    const verdicts = [...new Set(policy.modules.map((n) => normalizeModuleName(n) ?? n))].map((n) => judgeModule(n, facts, policy, new Set()));
    enforced = verdicts.every((v) => v.state === 'blocked');
    if (!enforced) {
      for (const v of verdicts) {
        if (v.state === 'fail') fails.push(v.reason);
        else if (v.state === 'unknown') unknowns.push(v.reason);
      }
      if (ug.state === 'fail' && ug.reason !== undefined) fails.push(ug.reason);
      if (ug.state === 'unknown' && ug.reason !== undefined) unknowns.push(ug.reason);
    }
  }
  return verdict(fails, unknowns);
}
