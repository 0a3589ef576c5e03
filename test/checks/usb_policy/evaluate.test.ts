// The pure verdicts of usb_policy, per platform, on hand-built facts.
import { describe, expect, it } from 'vitest';
import type { DarwinFacts, MountControls } from '../../../checks/usb_policy/darwin.js';
import { configSchema, evaluate, factsSchema, type Config } from '../../../checks/usb_policy/index.js';
import { judgeUsbguard, type AttachedStorage, type LinuxFacts, type ModuleFact, type UsbguardFact } from '../../../checks/usb_policy/linux.js';
import type { RegistryValue, Win32Facts } from '../../../checks/usb_policy/win32.js';
import type { Evaluation } from '../../../checks/types.js';

const defaults: Config = configSchema.parse({});
const codes = (e: Evaluation): string[] => e.reasons.map((r) => r.code);

function mod(name: string, over: Partial<ModuleFact> = {}): ModuleFact {
  return {
    name,
    loaded: false,
    builtin: false,
    sysfsPresent: false,
    inModulesBuiltin: false,
    inModulesDep: true,
    dependsOn: name === 'uas' ? ['usb_storage', 'usbcore'] : ['usbcore'],
    installOverride: null,
    blacklisted: [],
    cmdlineBlacklisted: { moduleBlacklist: false, modprobeBlacklist: false },
    ...over,
  };
}

const noUsbguard: UsbguardFact = {
  configFile: '/etc/usbguard/usbguard-daemon.conf',
  config: 'missing',
  implicitPolicyTarget: null,
  presentDevicePolicy: null,
  insertedDevicePolicy: null,
  ruleFiles: [],
  rules: 'not-read',
  allowRules: 0,
  broadStorageAllows: [],
  running: false,
  pids: [],
};

const enforcingUsbguard: UsbguardFact = {
  ...noUsbguard,
  config: 'read',
  implicitPolicyTarget: 'block',
  ruleFiles: ['/etc/usbguard/rules.conf'],
  rules: 'read',
  allowRules: 3,
  running: true,
  pids: [734],
};

const stick: AttachedStorage = {
  interface: '2-1:1.0',
  device: '2-1',
  idVendor: '0781',
  idProduct: '5583',
  product: ' SanDisk 3.2Gen1',
  manufacturer: 'USB',
  interfaceProtocol: '50',
  authorized: true,
  driver: 'usb-storage',
};

function linux(over: Partial<LinuxFacts> = {}): LinuxFacts {
  return {
    platform: 'linux',
    kernelRelease: '6.1.0-28-amd64',
    moduleSupport: true,
    modulesDisabled: false,
    cmdline: { moduleBlacklist: [], modprobeBlacklist: [] },
    modprobe: { filesRead: ['/usr/lib/modprobe.d/systemd.conf'], unreadable: [] },
    modules: [mod('uas'), mod('usb_storage')],
    usbguard: noUsbguard,
    usbBus: true,
    attachedMassStorage: [],
    ...over,
  };
}

const installFalse = { file: '/etc/modprobe.d/usb.conf', line: 1, pattern: 'usb_storage', command: '/bin/false' };

describe('usb_policy evaluate on Linux', () => {
  it('fails when nothing blocks the modules', () => {
    const e = evaluate(linux(), defaults);
    expect(e.status).toBe('fail');
    expect(e.reasons).toEqual([
      expect.objectContaining({ code: 'CHK_FAIL_MODULE_NOT_BLOCKED', subject: 'usb_storage' }),
      expect.objectContaining({ code: 'CHK_FAIL_MODULE_NOT_BLOCKED', subject: 'uas' }),
    ]);
  });

  it('passes with an install override on usb_storage: uas needs it and is blocked too', () => {
    const e = evaluate(linux({ modules: [mod('uas'), mod('usb_storage', { installOverride: installFalse })] }), defaults);
    expect(e).toEqual({ status: 'pass', reasons: [] });
  });

  it('does not let a dependency block a module that another listed module does not cover', () => {
    const facts = linux({ modules: [mod('uas', { installOverride: { ...installFalse, pattern: 'uas' } }), mod('usb_storage')] });
    expect(codes(evaluate(facts, defaults))).toEqual(['CHK_FAIL_MODULE_NOT_BLOCKED']);
  });

  it('judges only the modules the config lists', () => {
    const facts = linux({ modules: [mod('uas'), mod('usb_storage', { installOverride: installFalse })] });
    expect(evaluate(facts, { ...defaults, modules: ['usb-storage'] }).status).toBe('pass');
  });

  it('is unknown for a listed module that the facts do not hold', () => {
    const e = evaluate(linux({ modules: [mod('usb_storage', { installOverride: installFalse })] }), defaults);
    expect(e.status).toBe('unknown');
    expect(e.reasons).toEqual([expect.objectContaining({ code: 'CHK_ERR_UNRESOLVED', subject: 'uas' })]);
  });

  it('fails a blacklist alone, and passes it when the policy accepts blacklists', () => {
    const facts = linux({ modules: [mod('uas', { blacklisted: ['/etc/modprobe.d/bl.conf'] }), mod('usb_storage', { blacklisted: ['/etc/modprobe.d/bl.conf'] })] });
    expect(codes(evaluate(facts, defaults))).toEqual(['CHK_FAIL_BLACKLIST_ONLY', 'CHK_FAIL_BLACKLIST_ONLY']);
    expect(evaluate(facts, { ...defaults, acceptBlacklistOnly: true }).status).toBe('pass');
  });

  it('treats modprobe.blacklist= on the command line like a blacklist line', () => {
    const cmd = { moduleBlacklist: false, modprobeBlacklist: true };
    const facts = linux({ modules: [mod('uas', { cmdlineBlacklisted: cmd }), mod('usb_storage', { cmdlineBlacklisted: cmd })] });
    expect(codes(evaluate(facts, defaults))).toEqual(['CHK_FAIL_BLACKLIST_ONLY', 'CHK_FAIL_BLACKLIST_ONLY']);
  });

  it('does not let a weak block on a dependency count as a strong one', () => {
    const facts = linux({ modules: [mod('uas'), mod('usb_storage', { blacklisted: ['/etc/modprobe.d/bl.conf'] })] });
    expect(codes(evaluate(facts, { ...defaults, acceptBlacklistOnly: true }))).toEqual(['CHK_FAIL_MODULE_NOT_BLOCKED']);
  });

  it('passes module_blacklist= on the kernel command line', () => {
    const cmd = { moduleBlacklist: true, modprobeBlacklist: false };
    expect(evaluate(linux({ modules: [mod('uas', { cmdlineBlacklisted: cmd }), mod('usb_storage', { cmdlineBlacklisted: cmd })] }), defaults).status).toBe('pass');
  });

  it('fails a loaded module, naming the block it defeats', () => {
    const facts = linux({
      modules: [mod('uas', { loaded: true }), mod('usb_storage', { loaded: true, sysfsPresent: true, blacklisted: ['/etc/modprobe.d/bl.conf'] })],
    });
    const e = evaluate(facts, defaults);
    expect(codes(e)).toEqual(['CHK_FAIL_LOADED_DESPITE_BLOCK', 'CHK_FAIL_MODULE_LOADED']);
    expect(e.reasons[0]?.message).toContain('/etc/modprobe.d/bl.conf');
  });

  it('fails a built-in module even with an install override, and is unknown when it cannot tell', () => {
    const builtin = linux({ modules: [mod('uas', { builtin: true }), mod('usb_storage', { builtin: true, installOverride: installFalse })] });
    expect(codes(evaluate(builtin, defaults))).toEqual(['CHK_FAIL_MODULE_BUILTIN', 'CHK_FAIL_MODULE_BUILTIN']);
    const unsure = linux({ modules: [mod('uas', { builtin: null }), mod('usb_storage', { builtin: null, installOverride: installFalse })] });
    const e = evaluate(unsure, defaults);
    expect(e.status).toBe('unknown');
    expect(codes(e)).toEqual(['CHK_ERR_UNRESOLVED', 'CHK_ERR_UNRESOLVED']);
  });

  it('passes modules that are not installed, and kernels that cannot load modules', () => {
    expect(evaluate(linux({ modules: [mod('uas', { inModulesDep: false }), mod('usb_storage', { inModulesDep: false })] }), defaults).status).toBe('pass');
    expect(evaluate(linux({ modulesDisabled: true }), defaults).status).toBe('pass');
    expect(evaluate(linux({ moduleSupport: false }), defaults).status).toBe('pass');
  });

  it('passes a kernel without USB that cannot load modules, whatever the module facts say', () => {
    const facts = linux({ moduleSupport: false, usbBus: false, modules: [mod('uas', { builtin: null }), mod('usb_storage', { builtin: null })] });
    expect(evaluate(facts, defaults).status).toBe('pass');
    // Without USB now but able to load usbcore later, the modules still decide.
    expect(evaluate(linux({ usbBus: false }), defaults).status).toBe('fail');
  });

  it('is unknown when modprobe configuration is unreadable and would decide', () => {
    const unreadable = { filesRead: [], unreadable: ['/etc/modprobe.d/secret.conf'] };
    expect(codes(evaluate(linux({ modprobe: unreadable }), defaults))).toEqual(['CHK_ERR_PERMISSION', 'CHK_ERR_PERMISSION']);
    const blocked = linux({ modprobe: unreadable, modules: [mod('uas', { installOverride: { ...installFalse, pattern: 'uas' } }), mod('usb_storage', { installOverride: installFalse })] });
    expect(evaluate(blocked, defaults).status).toBe('unknown');
    // A block that does not depend on modprobe still counts.
    const kernel = { moduleBlacklist: true, modprobeBlacklist: false };
    const strong = linux({ modprobe: unreadable, modules: [mod('uas', { cmdlineBlacklisted: kernel }), mod('usb_storage', { cmdlineBlacklisted: kernel })] });
    expect(evaluate(strong, defaults).status).toBe('pass');
  });

  it('is unknown for an install command it cannot classify, and fails one that loads the module', () => {
    const script = { ...installFalse, command: '/usr/local/sbin/usb-gate' };
    const e = evaluate(linux({ modules: [mod('uas'), mod('usb_storage', { installOverride: script })] }), { ...defaults, modules: ['usb_storage'] });
    expect(e.status).toBe('unknown');
    const loads = { ...installFalse, command: '/sbin/modprobe --ignore-install usb-storage' };
    const f = evaluate(linux({ modules: [mod('uas'), mod('usb_storage', { installOverride: loads })] }), { ...defaults, modules: ['usb_storage'] });
    expect(codes(f)).toEqual(['CHK_FAIL_MODULE_NOT_BLOCKED']);
    expect(f.reasons[0]?.message).toContain('its install command loads it');
  });

  it('passes when USBGuard enforces, even with the modules loaded', () => {
    const facts = linux({ usbguard: enforcingUsbguard, modules: [mod('uas'), mod('usb_storage', { loaded: true, sysfsPresent: true })] });
    expect(evaluate(facts, defaults)).toEqual({ status: 'pass', reasons: [] });
  });

  it('adds the USBGuard problem to the module reasons when nothing enforces', () => {
    const stopped = evaluate(linux({ usbguard: { ...enforcingUsbguard, running: false, pids: [] } }), defaults);
    expect(codes(stopped)).toEqual(['CHK_FAIL_MODULE_NOT_BLOCKED', 'CHK_FAIL_MODULE_NOT_BLOCKED', 'CHK_FAIL_USBGUARD_NOT_RUNNING']);
    const allow = evaluate(linux({ usbguard: { ...enforcingUsbguard, implicitPolicyTarget: 'allow' } }), defaults);
    expect(codes(allow)).toContain('CHK_FAIL_USBGUARD_ALLOWS_STORAGE');
  });

  it('does not need USBGuard when the modules are blocked', () => {
    const facts = linux({ usbguard: { ...enforcingUsbguard, running: false, pids: [] }, modules: [mod('uas'), mod('usb_storage', { installOverride: installFalse })] });
    expect(evaluate(facts, defaults).status).toBe('pass');
  });

  it('fails an attached stick with a driver, unless the policy allows it', () => {
    const facts = linux({ usbguard: enforcingUsbguard, attachedMassStorage: [stick] });
    const e = evaluate(facts, defaults);
    expect(e.reasons).toEqual([expect.objectContaining({ code: 'CHK_FAIL_MASS_STORAGE_ATTACHED', subject: '2-1:1.0' })]);
    expect(e.reasons[0]?.message).toContain('0781:5583');
    expect(evaluate(facts, { ...defaults, allowAttachedDevices: ['0781:5583'] }).status).toBe('pass');
    expect(evaluate(facts, { ...defaults, allowAttachedDevices: ['0781:5584'] }).status).toBe('fail');
  });

  it('ignores an attached stick that no driver serves', () => {
    const facts = linux({ usbguard: enforcingUsbguard, attachedMassStorage: [{ ...stick, authorized: false, driver: null }] });
    expect(evaluate(facts, defaults).status).toBe('pass');
  });

  it('lets fail dominate unknown', () => {
    const facts = linux({ modules: [mod('uas', { builtin: null }), mod('usb_storage')] });
    expect(evaluate(facts, defaults).status).toBe('fail');
  });
});

describe('USBGuard state', () => {
  it.each([
    [noUsbguard, 'absent', undefined],
    [enforcingUsbguard, 'enforcing', undefined],
    [{ ...enforcingUsbguard, implicitPolicyTarget: null }, 'enforcing', undefined],
    [{ ...enforcingUsbguard, implicitPolicyTarget: 'reject' }, 'enforcing', undefined],
    [{ ...enforcingUsbguard, running: false }, 'fail', 'CHK_FAIL_USBGUARD_NOT_RUNNING'],
    [{ ...enforcingUsbguard, config: 'unreadable', running: false }, 'fail', 'CHK_FAIL_USBGUARD_NOT_RUNNING'],
    [{ ...enforcingUsbguard, implicitPolicyTarget: 'allow' }, 'fail', 'CHK_FAIL_USBGUARD_ALLOWS_STORAGE'],
    [{ ...enforcingUsbguard, broadStorageAllows: [{ file: '/etc/usbguard/rules.conf', line: 9, rule: 'allow' }] }, 'fail', 'CHK_FAIL_USBGUARD_ALLOWS_STORAGE'],
    [{ ...enforcingUsbguard, config: 'unreadable' }, 'unknown', 'CHK_ERR_PERMISSION'],
    [{ ...enforcingUsbguard, rules: 'unreadable' }, 'unknown', 'CHK_ERR_PERMISSION'],
    [{ ...enforcingUsbguard, config: 'missing' }, 'unknown', 'CHK_ERR_UNRESOLVED'],
  ] as [UsbguardFact, string, string | undefined][])('%j is %s', (u, state, code) => {
    const j = judgeUsbguard(u);
    expect(j.state).toBe(state);
    expect(j.reason?.code).toBe(code);
  });
});

const mc = (over: Partial<MountControls>): MountControls => ({
  profileIdentifier: 'com.example.media',
  profileDisplayName: 'Media',
  payloadIdentifier: 'com.example.media.systemuiserver',
  harddiskExternal: null,
  diskImage: null,
  ...over,
});
const darwin = (mountControls: MountControls[]): DarwinFacts => ({ platform: 'darwin', profileCount: mountControls.length + 1, mountControls });

describe('usb_policy evaluate on macOS', () => {
  it.each([
    [[mc({ harddiskExternal: ['deny'] })], 'pass', []],
    [[mc({ harddiskExternal: ['alert', 'eject'] })], 'pass', []],
    [[mc({ harddiskExternal: ['read-only'] }), mc({ harddiskExternal: ['deny'] })], 'pass', []],
    [[mc({ harddiskExternal: ['read-only'] })], 'fail', ['CHK_FAIL_PARTIAL_BLOCK']],
    [[mc({ harddiskExternal: ['authenticate'] })], 'fail', ['CHK_FAIL_NO_BLOCKING_POLICY']],
    [[mc({ harddiskExternal: [] })], 'fail', ['CHK_FAIL_NO_BLOCKING_POLICY']],
    [[mc({ diskImage: ['deny'] })], 'fail', ['CHK_FAIL_NO_BLOCKING_POLICY']],
    [[], 'fail', ['CHK_FAIL_NO_BLOCKING_POLICY']],
  ] as [MountControls[], string, string[]][])('%j is %s', (controls, status, expected) => {
    const e = evaluate(darwin(controls), defaults);
    expect(e.status).toBe(status);
    expect(codes(e)).toEqual(expected);
  });

  it('requires disk images denied only when the policy says so', () => {
    const facts = darwin([mc({ harddiskExternal: ['deny'] })]);
    expect(codes(evaluate(facts, { ...defaults, requireDiskImageDeny: true }))).toEqual(['CHK_FAIL_DISK_IMAGES_ALLOWED']);
    expect(evaluate(darwin([mc({ harddiskExternal: ['deny'], diskImage: ['eject'] })]), { ...defaults, requireDiskImageDeny: true }).status).toBe('pass');
  });
});

const set = (value: number | string): RegistryValue => ({ status: 'set', value, error: null });
const missing: RegistryValue = { status: 'missing', value: null, error: null };
const denied: RegistryValue = { status: 'denied', value: null, error: null };

function win(over: Partial<Win32Facts> & { read?: RegistryValue; write?: RegistryValue } = {}): Win32Facts {
  const { read = missing, write = missing, ...rest } = over;
  return {
    platform: 'win32',
    usbstorStart: set(3),
    denyAll: missing,
    removableDisks: { denyRead: read, denyWrite: write, denyExecute: missing },
    driver: { status: 'ok', state: 'Stopped', startMode: 'Manual', error: null },
    ...rest,
  };
}

describe('usb_policy evaluate on Windows', () => {
  it.each([
    ['default', win(), 'fail', ['CHK_FAIL_NO_BLOCKING_POLICY']],
    ['USBSTOR disabled', win({ usbstorStart: set(4) }), 'pass', []],
    ['USBSTOR key missing', win({ usbstorStart: missing }), 'fail', ['CHK_FAIL_NO_BLOCKING_POLICY']],
    ['Start as text', win({ usbstorStart: set('4') }), 'fail', ['CHK_FAIL_NO_BLOCKING_POLICY']],
    ['disabled but running', win({ usbstorStart: set(4), driver: { status: 'ok', state: 'Running', startMode: 'Disabled', error: null } }), 'fail', ['CHK_FAIL_LOADED_DESPITE_BLOCK']],
    ['disabled, driver not registered', win({ usbstorStart: set(4), driver: { status: 'missing', state: null, startMode: null, error: null } }), 'pass', []],
    ['disabled, driver query failed', win({ usbstorStart: set(4), driver: { status: 'error', state: null, startMode: null, error: 'Microsoft.Management.Infrastructure.CimException' } }), 'unknown', ['CHK_ERR_UNRESOLVED']],
    ['Deny_All', win({ denyAll: set(1) }), 'pass', []],
    ['Deny_All 0', win({ denyAll: set(0) }), 'fail', ['CHK_FAIL_NO_BLOCKING_POLICY']],
    ['Deny_All beats a running driver', win({ denyAll: set(1), driver: { status: 'ok', state: 'Running', startMode: 'Manual', error: null } }), 'pass', []],
    ['read and write denied', win({ read: set(1), write: set(1) }), 'pass', []],
    ['write denied only', win({ write: set(1) }), 'fail', ['CHK_FAIL_PARTIAL_BLOCK']],
    ['read denied only', win({ read: set(1) }), 'fail', ['CHK_FAIL_PARTIAL_BLOCK']],
    ['policy key unreadable', win({ denyAll: denied, read: denied, write: denied }), 'unknown', ['CHK_ERR_PERMISSION', 'CHK_ERR_PERMISSION', 'CHK_ERR_PERMISSION']],
    ['value read failed', win({ denyAll: { status: 'error', value: null, error: 'System.IO.IOException' } }), 'unknown', ['CHK_ERR_UNRESOLVED']],
    ['unreadable policy does not matter when USBSTOR is disabled', win({ usbstorStart: set(4), denyAll: denied }), 'pass', []],
  ] as [string, Win32Facts, string, string[]][])('%s', (_name, facts, status, expected) => {
    const e = evaluate(facts, defaults);
    expect(e.status).toBe(status);
    expect(codes(e)).toEqual(expected);
  });

  it('names which half of the block is missing', () => {
    expect(evaluate(win({ write: set(1) }), defaults).reasons[0]?.message).toContain('reading is allowed');
    expect(evaluate(win({ read: set(1) }), defaults).reasons[0]?.message).toContain('writing is allowed');
  });
});

describe('usb_policy schemas', () => {
  it('parses {} to the defaults and rejects unknown keys and bad values', () => {
    expect(defaults).toEqual({ modules: ['usb_storage', 'uas'], acceptBlacklistOnly: false, allowAttachedDevices: [], requireDiskImageDeny: false });
    expect(configSchema.safeParse({ modules: [] }).success).toBe(false);
    expect(configSchema.safeParse({ modules: ['usb storage'] }).success).toBe(false);
    expect(configSchema.safeParse({ allowAttachedDevices: ['0781-5583'] }).success).toBe(false);
    expect(configSchema.safeParse({ acceptBlacklist: true }).success).toBe(false);
  });

  it('accepts the facts of each platform and rejects a mix', () => {
    expect(factsSchema.safeParse(linux()).success).toBe(true);
    expect(factsSchema.safeParse(darwin([])).success).toBe(true);
    expect(factsSchema.safeParse(win()).success).toBe(true);
    expect(factsSchema.safeParse({ ...darwin([]), platform: 'win32' }).success).toBe(false);
  });
});
