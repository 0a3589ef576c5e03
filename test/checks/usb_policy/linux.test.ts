// The Linux parsers of usb_policy, on literal strings.
import { describe, expect, it } from 'vitest';
import { isCheckError } from '../../../checks/errors.js';
import {
  classifyInstallCommand,
  deriveBuiltin,
  globMatch,
  isBroadStorageAllow,
  moduleNameFromPath,
  normalizeModuleName,
  parseKernelCmdline,
  parseKeyValueConf,
  parseModprobeConf,
  parseModulesBuiltin,
  parseModulesDep,
  parseProcModules,
  parseUsbguardRule,
  scanUsbguardRules,
  splitProcCmdline,
  sysfsHex,
  usbguardConfigFromArgs,
  usbInterfaceParent,
} from '../../../checks/usb_policy/linux.js';

describe('module names', () => {
  it('treats - and _ alike, as kmod does, except inside brackets', () => {
    expect(normalizeModuleName('usb-storage')).toBe('usb_storage');
    expect(normalizeModuleName('usb_storage')).toBe('usb_storage');
    expect(normalizeModuleName('snd-[a-z]-x')).toBe('snd_[a-z]_x');
  });

  it('rejects unmatched brackets, which modprobe ignores', () => {
    expect(normalizeModuleName('usb[-storage')).toBeNull();
    expect(normalizeModuleName('usb]storage')).toBeNull();
  });

  it('maps module file paths to module names', () => {
    expect(moduleNameFromPath('kernel/drivers/usb/storage/usb-storage.ko')).toBe('usb_storage');
    expect(moduleNameFromPath('kernel/drivers/usb/storage/uas.ko.zst')).toBe('uas');
    expect(moduleNameFromPath('/lib/modules/6.8.0-45-generic/kernel/drivers/usb/storage/ums-realtek.ko.xz')).toBe('ums_realtek');
  });

  it('matches install patterns like fnmatch', () => {
    expect(globMatch('usb_storage', 'usb_storage')).toBe(true);
    expect(globMatch('usb_*', 'usb_storage')).toBe(true);
    expect(globMatch('usb_*', 'uas')).toBe(false);
    expect(globMatch('u?s', 'uas')).toBe(true);
    expect(globMatch('[!x]as', 'uas')).toBe(true);
    expect(globMatch('[a-c]as', 'uas')).toBe(false);
    expect(globMatch('usb.storage', 'usb_storage')).toBe(false);
  });
});

describe('modprobe.d', () => {
  it('reads install and blacklist lines, with line numbers and normalized names', () => {
    const text = [
      '# disable USB storage (CIS 1.1.1.9)',
      'install usb-storage /bin/false',
      'blacklist usb-storage',
      '  blacklist\tuas  # trailing words are ignored',
      'options usb-storage delay_use=1',
      'alias usb:v*p*d*dc*dsc*dp*ic08isc06ip50in* usb_storage',
      '',
    ].join('\n');
    expect(parseModprobeConf(text)).toEqual([
      { kind: 'install', pattern: 'usb_storage', command: '/bin/false', line: 2 },
      { kind: 'blacklist', pattern: 'usb_storage', line: 3 },
      { kind: 'blacklist', pattern: 'uas', line: 4 },
    ]);
  });

  it('joins continued lines and keeps the install command whole', () => {
    const text = 'install uas /sbin/modprobe --ignore-install \\\n  uas $CMDLINE_OPTS\ninstall usb-storage\n';
    expect(parseModprobeConf(text)).toEqual([{ kind: 'install', pattern: 'uas', command: '/sbin/modprobe --ignore-install   uas $CMDLINE_OPTS', line: 1 }]);
  });

  it('skips comments, commands without a module and CRLF endings', () => {
    expect(parseModprobeConf('#install usb-storage /bin/false\r\nblacklist\r\nblacklist uas\r\n')).toEqual([{ kind: 'blacklist', pattern: 'uas', line: 3 }]);
  });

  it.each([
    ['/bin/false', 'blocks'],
    ['/bin/true', 'blocks'],
    ['/usr/bin/false', 'blocks'],
    ['/sbin/nologin', 'blocks'],
    ['/usr/sbin/nologin', 'blocks'],
    ['true', 'blocks'],
    ['exit 1', 'blocks'],
    ['/bin/echo usb storage is disabled', 'blocks'],
    ['/sbin/modprobe --ignore-install usb-storage $CMDLINE_OPTS', 'loads'],
    ['/usr/sbin/insmod /root/usb-storage.ko', 'loads'],
    ['/bin/true; /sbin/modprobe --ignore-install usb-storage', 'loads'],
    ['/bin/false || /usr/local/bin/allow-usb', 'unknown'],
    ['/usr/local/sbin/usb-policy-check', 'unknown'],
    ['/opt/bin/false', 'unknown'],
    ['/bin/echo blocked > /dev/kmsg', 'unknown'],
  ] as const)('classifies install %j as %s', (cmd, expected) => {
    expect(classifyInstallCommand(cmd)).toBe(expected);
  });
});

describe('kernel command line', () => {
  it('reads module_blacklist= and modprobe.blacklist=', () => {
    expect(parseKernelCmdline('BOOT_IMAGE=/vmlinuz ro quiet module_blacklist=usb_storage,uas modprobe.blacklist=firewire_ohci\n')).toEqual({
      moduleBlacklist: ['usb_storage', 'uas'],
      modprobeBlacklist: ['firewire_ohci'],
    });
  });

  it('keeps the last module_blacklist= and every modprobe.blacklist=', () => {
    expect(parseKernelCmdline('module_blacklist=uas modprobe.blacklist=a module-blacklist=usb_storage modprobe.blacklist=b,c')).toEqual({
      moduleBlacklist: ['usb_storage'],
      modprobeBlacklist: ['a', 'b', 'c'],
    });
  });

  it('keeps values as written (the kernel compares them byte for byte)', () => {
    expect(parseKernelCmdline('module_blacklist=usb-storage').moduleBlacklist).toEqual(['usb-storage']);
  });

  it('handles quotes and stops at the init arguments after --', () => {
    expect(parseKernelCmdline('acpi_osi="Windows 2020" "module_blacklist=uas" -- module_blacklist=usb_storage')).toEqual({
      moduleBlacklist: ['uas'],
      modprobeBlacklist: [],
    });
  });
});

describe('module lists', () => {
  it('reads /proc/modules', () => {
    const text = 'uas 32768 0 - Live 0x0000000000000000\nusb_storage 81920 1 uas, Live 0xffffffffc0a1c000 (E)\n';
    expect(parseProcModules(text)).toEqual(['uas', 'usb_storage']);
    expect(parseProcModules('')).toEqual([]);
  });

  it('refuses a /proc/modules it does not understand', () => {
    try {
      parseProcModules('uas 32768 0 - Live\nnot a module line\n');
      expect.unreachable();
    } catch (err) {
      expect(isCheckError(err) && err.code).toBe('CHK_ERR_PARSE');
      expect(isCheckError(err) && err.subject).toBe('/proc/modules:2');
    }
  });

  it('reads modules.builtin and modules.dep', () => {
    expect([...parseModulesBuiltin('kernel/fs/binfmt_script.ko\nkernel/drivers/usb/storage/usb-storage.ko\n\n')]).toEqual(['binfmt_script', 'usb_storage']);
    const dep = parseModulesDep(
      'kernel/drivers/usb/storage/uas.ko: kernel/drivers/usb/storage/usb-storage.ko kernel/drivers/usb/core/usbcore.ko\nkernel/drivers/usb/common/usb-common.ko:\n',
    );
    expect(Object.fromEntries(dep)).toEqual({ uas: ['usb_storage', 'usbcore'], usb_common: [] });
    expect(() => parseModulesDep('garbage without a colon\n')).toThrow(/modules.dep/);
  });

  it.each([
    [{ loaded: false, sysfsPresent: false, inModulesBuiltin: true, inModulesDep: null }, true],
    [{ loaded: true, sysfsPresent: true, inModulesBuiltin: false, inModulesDep: true }, false],
    [{ loaded: false, sysfsPresent: true, inModulesBuiltin: null, inModulesDep: null }, true],
    [{ loaded: false, sysfsPresent: false, inModulesBuiltin: null, inModulesDep: true }, false],
    [{ loaded: false, sysfsPresent: false, inModulesBuiltin: false, inModulesDep: false }, false],
    [{ loaded: false, sysfsPresent: false, inModulesBuiltin: null, inModulesDep: null }, null],
    [{ loaded: false, sysfsPresent: false, inModulesBuiltin: null, inModulesDep: false }, null],
  ])('derives builtin from %j as %s', (m, expected) => {
    expect(deriveBuiltin(m)).toBe(expected);
  });
});

describe('USBGuard', () => {
  it('reads Key=Value configuration, last value wins', () => {
    const kv = parseKeyValueConf('# comment\nRuleFile=/etc/usbguard/rules.conf\nImplicitPolicyTarget = allow\nImplicitPolicyTarget=block\nbroken line\n');
    expect(Object.fromEntries(kv)).toEqual({ RuleFile: '/etc/usbguard/rules.conf', ImplicitPolicyTarget: 'block' });
  });

  it('finds the -c configuration in the daemon arguments', () => {
    expect(usbguardConfigFromArgs(splitProcCmdline('/usr/sbin/usbguard-daemon\0-f\0-s\0-c\0/etc/usbguard/usbguard-daemon.conf\0'))).toBe(
      '/etc/usbguard/usbguard-daemon.conf',
    );
    expect(usbguardConfigFromArgs(['usbguard-daemon', '-c/srv/usbguard.conf'])).toBe('/srv/usbguard.conf');
    expect(usbguardConfigFromArgs(['usbguard-daemon', '-k'])).toBeNull();
  });

  it('parses rules into target and attributes', () => {
    const r = parseUsbguardRule('allow id 046d:c52b serial "" name "USB Receiver" via-port "1-2" with-interface { 03:01:01 03:01:02 } with-connect-type "hotplug"');
    expect(r?.target).toBe('allow');
    expect(r?.attrs.get('id')).toEqual({ op: null, values: ['046d:c52b'] });
    expect(r?.attrs.get('with-interface')).toEqual({ op: null, values: ['03:01:01', '03:01:02'] });
    expect(r?.attrs.get('name')).toEqual({ op: null, values: ['USB Receiver'] });
    expect(parseUsbguardRule('allow 0781:* with-interface one-of { 08:*:* }')?.attrs.get('id')).toEqual({ op: null, values: ['0781:*'] });
    expect(parseUsbguardRule('permit everything')).toBeNull();
    expect(parseUsbguardRule('allow colour "blue"')).toBeNull();
  });

  it.each([
    ['allow', true],
    ['allow with-interface equals { 08:*:* }', true],
    ['allow with-interface 08:06:50', true],
    ['allow with-interface one-of { 03:00:01 08:06:50 }', true],
    ['allow with-interface *:*:*', true],
    ['allow id 0781:* with-interface 08:06:50', true],
    ['allow id *:* with-connect-type "hotplug"', true],
    ['allow via-port "2-1" with-interface 08:06:62', true],
    ['allow with-interface none-of { 08:*:* }', false],
    ['allow with-interface none-of { 08:06:50 }', true],
    ['allow with-interface equals { 09:00:* }', false],
    ['allow with-interface one-of { 03:00:01 03:01:01 }', false],
    ['allow id 0781:5583 with-interface 08:06:50', false],
    ['allow serial "4C530001130821113225" with-interface 08:06:50', false],
    ['allow hash "Q2n7VBSTkOGNwYX5fbu3bEYPz0Zi0B5i5kcxZ0fWt6g=" with-interface 08:06:50', false],
    ['block with-interface 08:*:*', false],
    ['reject', false],
    ['allow with-interface { 08:*:*', true],
  ] as const)('rule %j is broad for storage: %s', (rule, expected) => {
    expect(isBroadStorageAllow(rule)).toBe(expected);
  });

  it('counts allow rules and lists the broad ones with their lines', () => {
    const text = [
      '# generated',
      'allow id 1d6b:0002 serial "0000:00:14.0" name "xHCI Host Controller" hash "jEP/6WzviqdJ5VSeTUY8PatCNBKeaREvo2OqdplND/o=" with-interface 09:00:00',
      '',
      'block with-interface 08:*:*',
      'allow with-interface equals { 08:*:* }',
    ].join('\n');
    expect(scanUsbguardRules(text, '/etc/usbguard/rules.conf')).toEqual({
      allowRules: 2,
      broad: [{ file: '/etc/usbguard/rules.conf', line: 5, rule: 'allow with-interface equals { 08:*:* }' }],
    });
  });
});

describe('sysfs', () => {
  it('finds the device of an interface', () => {
    expect(usbInterfaceParent('2-1:1.0')).toBe('2-1');
    expect(usbInterfaceParent('1-1.4.2:1.1')).toBe('1-1.4.2');
    expect(usbInterfaceParent('1-0:1.0')).toBe('usb1');
    expect(usbInterfaceParent('2-1')).toBeNull();
    expect(usbInterfaceParent('usb1')).toBeNull();
  });

  it('reads hex attributes', () => {
    expect(sysfsHex('08\n')).toBe('08');
    expect(sysfsHex('0781\n')).toBe('0781');
    expect(sysfsHex('ABcd')).toBe('abcd');
    expect(sysfsHex('')).toBeNull();
    expect(sysfsHex('x8')).toBeNull();
  });
});
