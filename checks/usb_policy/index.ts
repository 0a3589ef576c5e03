// usb_policy: can USB mass storage be used on this host, or does an enforced mechanism block it?
// Linux: storage kernel modules, modprobe configuration, USBGuard, attached devices (sysfs).
// macOS: the media-management profile (mount-controls). Windows: USBSTOR and the Removable
// Storage Access policies. See README.md for what counts as enforced.
import * as z from 'zod';
import { CheckError, isCheckError } from '../errors.js';
import { FileCache } from '../file-cache.js';
import type { Check, CollectContext, Evaluation, HostIO, SourceDecl } from '../types.js';
import { darwinFactsSchema, evaluateDarwin, parseProfilesOutput, DARWIN_FAIL_CODES } from './darwin.js';
import {
  deriveBuiltin,
  evaluateLinux,
  globMatch,
  linuxFactsSchema,
  normalizeModuleName,
  parseKernelCmdline,
  parseKeyValueConf,
  parseModprobeConf,
  parseModulesBuiltin,
  parseModulesDep,
  parseProcModules,
  scanUsbguardRules,
  splitProcCmdline,
  sysfsHex,
  usbguardConfigFromArgs,
  usbInterfaceParent,
  LINUX_FAIL_CODES,
  type AttachedStorage,
  type LinuxFacts,
  type ModprobeEntry,
  type ModuleFact,
  type UsbguardFact,
} from './linux.js';
import { evaluateWin32, parseUsbPolicyOutput, POWERSHELL, USB_POLICY_ARGS, win32FactsSchema, WIN32_FAIL_CODES } from './win32.js';

export const configSchema = z
  .object({
    /** Linux kernel modules that must all be blocked (when USBGuard does not enforce). `-` and `_` are equal. */
    modules: z
      .array(z.string().regex(/^[A-Za-z0-9_-]+$/, 'a kernel module name'))
      .min(1)
      .default(() => ['usb_storage', 'uas']),
    /** Count `blacklist` (which only stops alias-based autoloading) as a block. */
    acceptBlacklistOnly: z.boolean().default(false),
    /** Linux: `vendor:product` ids (hex) of storage devices that may be attached and in use. */
    allowAttachedDevices: z.array(z.string().regex(/^[0-9A-Fa-f]{4}:[0-9A-Fa-f]{4}$/, 'a vendor:product id such as 0781:5583')).default([]),
    /** macOS: also require mount-controls to deny disk images. */
    requireDiskImageDeny: z.boolean().default(false),
  })
  .strict();
export type Config = z.output<typeof configSchema>;

export const factsSchema = z.discriminatedUnion('platform', [linuxFactsSchema, darwinFactsSchema, win32FactsSchema]);
export type Facts = z.output<typeof factsSchema>;

/** Fail codes of this check; README.md documents each one. */
export const USB_POLICY_FAIL_CODES = { ...LINUX_FAIL_CODES, ...DARWIN_FAIL_CODES, ...WIN32_FAIL_CODES } as const;

/** modprobe.d directories, highest precedence first: a file name found earlier hides later ones. */
export const MODPROBE_DIRS = ['/etc/modprobe.d', '/run/modprobe.d', '/usr/local/lib/modprobe.d', '/usr/lib/modprobe.d', '/lib/modprobe.d'] as const;
export const USBGUARD_DEFAULT_CONFIG = '/etc/usbguard/usbguard-daemon.conf';
export const USBGUARD_DEFAULT_RULES = '/etc/usbguard/rules.conf';
const USB_DEVICES = '/sys/bus/usb/devices';
const PROFILES = '/usr/bin/profiles';
export const PROFILES_ARGS = ['-C', '-o', 'stdout-xml'] as const;

const linuxSources: readonly SourceDecl[] = [
  { kind: 'file', path: '/proc/cmdline', why: 'module_blacklist= and modprobe.blacklist= on the kernel command line' },
  { kind: 'file', path: '/proc/modules', why: 'loaded kernel modules; its absence means the kernel cannot load modules' },
  { kind: 'file', path: '/proc/sys/kernel/osrelease', why: 'the kernel release, to find its modules.builtin and modules.dep' },
  { kind: 'file', path: '/proc/sys/kernel/modules_disabled', why: '1 means no module can be loaded until reboot' },
  { kind: 'file', path: '/lib/modules/<release>/modules.builtin', why: 'modules built into the kernel (modprobe settings cannot block them)' },
  { kind: 'file', path: '/lib/modules/<release>/modules.dep', why: 'loadable modules installed for this kernel, and what each needs' },
  { kind: 'file', path: '/sys/module/<module>', why: 'present for loaded modules and for built-in modules with parameters' },
  ...MODPROBE_DIRS.flatMap((d): SourceDecl[] => [
    { kind: 'file', path: d, why: 'modprobe configuration directory (file names only)' },
    { kind: 'file', path: `${d}/*.conf`, why: 'modprobe install and blacklist lines' },
  ]),
  { kind: 'file', path: '/proc', why: 'process ids, to find a running usbguard-daemon' },
  { kind: 'file', path: '/proc/<pid>/comm', why: 'process names, to find usbguard-daemon' },
  { kind: 'file', path: '/proc/<pid>/cmdline', why: "usbguard-daemon's arguments (-c names its configuration)" },
  { kind: 'file', path: USBGUARD_DEFAULT_CONFIG, why: 'USBGuard ImplicitPolicyTarget, RuleFile and RuleFolder (or the file given with -c)' },
  { kind: 'file', path: USBGUARD_DEFAULT_RULES, why: 'USBGuard rules: the default RuleFile, or the file RuleFile names' },
  { kind: 'file', path: '/etc/usbguard/rules.d', why: 'USBGuard rule folder listing: the usual RuleFolder, or the folder RuleFolder names' },
  { kind: 'file', path: '/etc/usbguard/rules.d/*', why: 'USBGuard rules in the rule folder' },
  { kind: 'file', path: '/sys/bus', why: 'whether sysfs is mounted at all' },
  { kind: 'file', path: USB_DEVICES, why: 'USB devices and interfaces attached now; absent when the kernel has no USB support' },
  { kind: 'file', path: `${USB_DEVICES}/<interface>/bInterfaceClass`, why: 'interface class 08 is mass storage' },
  { kind: 'file', path: `${USB_DEVICES}/<interface>/bInterfaceProtocol`, why: 'bulk-only (50) or UAS (62)' },
  { kind: 'file', path: `${USB_DEVICES}/<interface>/driver`, why: 'link to the driver bound to a storage interface' },
  { kind: 'file', path: `${USB_DEVICES}/<device>/idVendor`, why: 'vendor id of an attached storage device' },
  { kind: 'file', path: `${USB_DEVICES}/<device>/idProduct`, why: 'product id of an attached storage device' },
  { kind: 'file', path: `${USB_DEVICES}/<device>/product`, why: 'product string of an attached storage device' },
  { kind: 'file', path: `${USB_DEVICES}/<device>/manufacturer`, why: 'manufacturer string of an attached storage device' },
  { kind: 'file', path: `${USB_DEVICES}/<device>/authorized`, why: '0 when USBGuard (or policy) has de-authorized the device' },
];

const darwinSources: readonly SourceDecl[] = [
  { kind: 'command', command: PROFILES, args: PROFILES_ARGS, why: 'computer-level configuration profiles as XML, to find mount-controls (needs root)' },
];

const win32Sources: readonly SourceDecl[] = [
  {
    kind: 'command',
    command: POWERSHELL,
    args: USB_POLICY_ARGS,
    why: 'USBSTOR Start and driver state, and the Removable Storage Access Deny_* policies, as one JSON object',
  },
];

// ---------------------------------------------------------------------------------------------
// Linux collection

function isMissing(err: unknown): boolean {
  return isCheckError(err) && err.code === 'CHK_ERR_SOURCE_MISSING';
}

function isDenied(err: unknown): boolean {
  return isCheckError(err) && err.code === 'CHK_ERR_PERMISSION';
}

/** The file's text, null when it does not exist; other errors propagate. */
async function readOptional(io: HostIO, path: string): Promise<string | null> {
  try {
    return await io.readFile(path);
  } catch (err) {
    if (isMissing(err)) return null;
    throw err;
  }
}

type Read = { ok: true; text: string } | { ok: false; why: 'missing' | 'denied' };

async function readClassified(io: HostIO, path: string): Promise<Read> {
  try {
    return { ok: true, text: await io.readFile(path) };
  } catch (err) {
    if (isMissing(err)) return { ok: false, why: 'missing' };
    if (isDenied(err)) return { ok: false, why: 'denied' };
    throw err;
  }
}

async function exists(io: HostIO, path: string): Promise<boolean> {
  try {
    await io.stat(path);
    return true;
  } catch (err) {
    if (isMissing(err)) return false;
    throw err;
  }
}

function throwIfAborted(signal: AbortSignal): void {
  if (signal.aborted) throw new CheckError('CHK_ERR_TIMEOUT', 'usb_policy ran out of time');
}

interface ModprobeConfig {
  filesRead: string[];
  unreadable: string[];
  entries: { file: string; entry: ModprobeEntry }[];
}

/** Reads modprobe.d as kmod does: *.conf files, one per name (the first directory wins), sorted by name. */
async function readModprobeConfig(io: HostIO, files: FileCache): Promise<ModprobeConfig> {
  const byName = new Map<string, string>();
  const unreadable: string[] = [];
  for (const dir of MODPROBE_DIRS) {
    let entries;
    try {
      entries = await io.readDir(dir);
    } catch (err) {
      if (isMissing(err)) continue;
      if (isDenied(err)) {
        unreadable.push(dir);
        continue;
      }
      throw err;
    }
    for (const e of entries) {
      if (e.name.startsWith('.') || !e.name.endsWith('.conf') || (e.type !== 'file' && e.type !== 'symlink')) continue;
      if (!byName.has(e.name)) byName.set(e.name, `${dir}/${e.name}`);
    }
  }
  const filesRead: string[] = [];
  const entries: { file: string; entry: ModprobeEntry }[] = [];
  for (const name of [...byName.keys()].sort()) {
    const file = byName.get(name)!;
    const r = await files.get(file, async () => {
      const read = await readClassified(io, file);
      return read.ok ? { ok: true as const, entries: parseModprobeConf(read.text) } : read;
    });
    if (!r.ok) {
      if (r.why === 'denied') unreadable.push(file);
      continue;
    }
    filesRead.push(file);
    for (const entry of r.entries) entries.push({ file, entry });
  }
  return { filesRead, unreadable, entries };
}

async function findUsbguardDaemons(io: HostIO, signal: AbortSignal): Promise<{ pids: number[]; configFromArgs: string | null }> {
  const pids: number[] = [];
  const listing = await io.readDir('/proc');
  const all = listing
    .filter((e) => e.type === 'dir' && /^[1-9]\d*$/.test(e.name))
    .map((e) => Number(e.name))
    .sort((a, b) => a - b);
  for (const pid of all) {
    throwIfAborted(signal);
    const comm = await readClassified(io, `/proc/${pid}/comm`);
    // A process that exited or that we may not see is not the daemon we are looking for.
    if (comm.ok && comm.text.trim() === 'usbguard-daemon') pids.push(pid);
  }
  let configFromArgs: string | null = null;
  if (pids.length > 0) {
    const cmd = await readClassified(io, `/proc/${pids[0]}/cmdline`);
    if (cmd.ok) configFromArgs = usbguardConfigFromArgs(splitProcCmdline(cmd.text));
  }
  return { pids, configFromArgs };
}

async function collectUsbguard(io: HostIO, signal: AbortSignal): Promise<UsbguardFact> {
  const daemon = await findUsbguardDaemons(io, signal);
  const configFile = daemon.configFromArgs ?? USBGUARD_DEFAULT_CONFIG;
  const fact: UsbguardFact = {
    configFile,
    config: 'missing',
    implicitPolicyTarget: null,
    presentDevicePolicy: null,
    insertedDevicePolicy: null,
    ruleFiles: [],
    rules: 'not-read',
    allowRules: 0,
    broadStorageAllows: [],
    running: daemon.pids.length > 0,
    pids: daemon.pids,
  };
  const conf = await readClassified(io, configFile);
  if (!conf.ok) {
    fact.config = conf.why === 'denied' ? 'unreadable' : 'missing';
    return fact;
  }
  fact.config = 'read';
  const kv = parseKeyValueConf(conf.text);
  fact.implicitPolicyTarget = kv.get('ImplicitPolicyTarget') ?? null;
  fact.presentDevicePolicy = kv.get('PresentDevicePolicy') ?? null;
  fact.insertedDevicePolicy = kv.get('InsertedDevicePolicy') ?? null;

  // Without RuleFile the daemon may still use the packaged default: reading it can only add findings.
  const files = [kv.get('RuleFile') || USBGUARD_DEFAULT_RULES];
  const folder = kv.get('RuleFolder');
  let denied = false;
  if (folder !== undefined && folder.startsWith('/')) {
    const dir = folder.replace(/\/+$/, '');
    try {
      const entries = await io.readDir(dir);
      for (const e of entries.filter((x) => x.type === 'file' || x.type === 'symlink').map((x) => x.name).sort()) files.push(`${dir}/${e}`);
    } catch (err) {
      if (isDenied(err)) denied = true;
      else if (!isMissing(err)) throw err;
    }
  }
  for (const file of files) {
    const r = await readClassified(io, file);
    if (!r.ok) {
      if (r.why === 'denied') denied = true;
      continue;
    }
    fact.ruleFiles.push(file);
    const scan = scanUsbguardRules(r.text, file);
    fact.allowRules += scan.allowRules;
    fact.broadStorageAllows.push(...scan.broad);
  }
  fact.rules = denied ? 'unreadable' : 'read';
  return fact;
}

async function collectAttached(io: HostIO, signal: AbortSignal): Promise<{ usbBus: boolean; attached: AttachedStorage[] }> {
  if (!(await exists(io, '/sys/bus'))) throw new CheckError('CHK_ERR_SOURCE_MISSING', 'sysfs is not mounted', { subject: '/sys/bus' });
  let entries;
  try {
    entries = await io.readDir(USB_DEVICES);
  } catch (err) {
    if (isMissing(err)) return { usbBus: false, attached: [] };
    throw err;
  }
  const attached: AttachedStorage[] = [];
  const names = entries.map((e) => e.name).sort();
  for (const name of names) {
    throwIfAborted(signal);
    const device = usbInterfaceParent(name);
    if (device === null) continue;
    const dir = `${USB_DEVICES}/${name}`;
    const cls = await readOptional(io, `${dir}/bInterfaceClass`);
    if (cls === null || sysfsHex(cls) !== '08') continue;
    const dev = `${USB_DEVICES}/${device}`;
    const vendor = await readOptional(io, `${dev}/idVendor`);
    const product = await readOptional(io, `${dev}/idProduct`);
    // Unplugged while we looked: it is no longer attached.
    if (vendor === null || product === null) continue;
    const text = async (p: string): Promise<string | null> => {
      const t = await readOptional(io, p);
      return t === null ? null : t.trim();
    };
    let driver: string | null = null;
    try {
      const target = await io.readLink(`${dir}/driver`);
      driver = target.slice(target.lastIndexOf('/') + 1);
    } catch (err) {
      if (!isMissing(err)) throw err;
    }
    const authorized = await text(`${dev}/authorized`);
    const protocol = await readOptional(io, `${dir}/bInterfaceProtocol`);
    attached.push({
      interface: name,
      device,
      idVendor: vendor.trim().toLowerCase(),
      idProduct: product.trim().toLowerCase(),
      product: await text(`${dev}/product`),
      manufacturer: await text(`${dev}/manufacturer`),
      interfaceProtocol: protocol === null ? null : sysfsHex(protocol),
      authorized: authorized === null ? null : authorized === '1',
      driver,
    });
  }
  return { usbBus: true, attached };
}

async function collectLinux(ctx: CollectContext<Config>): Promise<LinuxFacts> {
  const { io, signal, config } = ctx;
  // modules.dep runs to hundreds of kilobytes: it and modprobe.d are parsed again only when they change.
  const files = new FileCache(io, ctx.cache);
  const cmdline = parseKernelCmdline(await io.readFile('/proc/cmdline'));
  const procModules = await readOptional(io, '/proc/modules');
  const loaded = new Set(procModules === null ? [] : parseProcModules(procModules));
  const release = (await readOptional(io, '/proc/sys/kernel/osrelease'))?.trim() ?? null;
  const kernelRelease = release !== null && /^[A-Za-z0-9][A-Za-z0-9._+~-]*$/.test(release) ? release : null;
  const disabled = await readOptional(io, '/proc/sys/kernel/modules_disabled');
  let builtinList: Set<string> | null = null;
  let depMap: Map<string, string[]> | null = null;
  if (kernelRelease !== null) {
    const builtinPath = `/lib/modules/${kernelRelease}/modules.builtin`;
    const depPath = `/lib/modules/${kernelRelease}/modules.dep`;
    builtinList = await files.get(builtinPath, async () => {
      const b = await readOptional(io, builtinPath);
      return b === null ? null : parseModulesBuiltin(b);
    });
    depMap = await files.get(depPath, async () => {
      const d = await readOptional(io, depPath);
      return d === null ? null : parseModulesDep(d, depPath);
    });
  }
  const modprobe = await readModprobeConfig(io, files);

  const names = [...new Set(config.modules.map((n) => normalizeModuleName(n) ?? n))].sort();
  const modules: ModuleFact[] = [];
  for (const name of names) {
    const sysfsPresent = await exists(io, `/sys/module/${name}`);
    const inModulesBuiltin = builtinList === null ? null : builtinList.has(name);
    const inModulesDep = depMap === null ? null : depMap.has(name);
    const isLoaded = loaded.has(name);
    const install = modprobe.entries.find((x) => x.entry.kind === 'install' && globMatch(x.entry.pattern, name));
    modules.push({
      name,
      loaded: isLoaded,
      builtin: deriveBuiltin({ loaded: isLoaded, sysfsPresent, inModulesBuiltin, inModulesDep }),
      sysfsPresent,
      inModulesBuiltin,
      inModulesDep,
      dependsOn: depMap === null ? null : [...(depMap.get(name) ?? [])].sort(),
      installOverride:
        install === undefined ? null : { file: install.file, line: install.entry.line, pattern: install.entry.pattern, command: install.entry.command ?? '' },
      blacklisted: [...new Set(modprobe.entries.filter((x) => x.entry.kind === 'blacklist' && x.entry.pattern === name).map((x) => x.file))],
      cmdlineBlacklisted: { moduleBlacklist: cmdline.moduleBlacklist.includes(name), modprobeBlacklist: cmdline.modprobeBlacklist.includes(name) },
    });
  }

  const usbguard = await collectUsbguard(io, signal);
  const { usbBus, attached } = await collectAttached(io, signal);
  files.sweep();
  return {
    platform: 'linux',
    kernelRelease,
    moduleSupport: procModules !== null,
    modulesDisabled: disabled === null ? null : disabled.trim() === '1',
    cmdline,
    modprobe: { filesRead: modprobe.filesRead, unreadable: modprobe.unreadable },
    modules,
    usbguard,
    usbBus,
    attachedMassStorage: attached,
  };
}

// ---------------------------------------------------------------------------------------------
// The check

export function evaluate(facts: Facts, config: Config): Evaluation {
  switch (facts.platform) {
    case 'linux':
      return evaluateLinux(facts, config);
    case 'darwin':
      return evaluateDarwin(facts, config);
    case 'win32':
      return evaluateWin32(facts);
  }
}

export const usbPolicy: Check<Config, Facts> = {
  id: 'usb_policy',
  version: '1.0.0',
  title: 'USB mass storage is blocked by an enforced mechanism',
  platforms: ['linux', 'darwin', 'win32'],
  sources: { linux: linuxSources, darwin: darwinSources, win32: win32Sources },
  configSchema,
  factsSchema,
  async collect(ctx) {
    switch (ctx.platform) {
      case 'linux':
        return collectLinux(ctx);
      case 'darwin':
        return parseProfilesOutput(await ctx.io.run(PROFILES, PROFILES_ARGS, { signal: ctx.signal }));
      case 'win32':
        return parseUsbPolicyOutput(await ctx.io.run(POWERSHELL, USB_POLICY_ARGS, { timeoutMs: 20_000, signal: ctx.signal }));
    }
  },
  evaluate,
};
