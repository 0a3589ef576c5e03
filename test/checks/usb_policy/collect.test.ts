// Edge cases of the Linux collection, replayed strictly from inline manifests (no host needed),
// and the dispatch to the macOS and Windows commands.
import { describe, expect, it } from 'vitest';
import type { CheckErrorCode } from '../../../checks/errors.js';
import { ReplayHostIO, type RecordedCall } from '../../../checks/replay.js';
import { runCheck } from '../../../checks/runner.js';
import type { Finding, Platform } from '../../../checks/types.js';
import { MODPROBE_DIRS, PROFILES_ARGS, usbPolicy, type Facts } from '../../../checks/usb_policy/index.js';
import type { LinuxFacts } from '../../../checks/usb_policy/linux.js';
import { POWERSHELL, USB_POLICY_ARGS } from '../../../checks/usb_policy/win32.js';

const R = '6.1.0-28-amd64';
const DEP = [
  'kernel/drivers/usb/common/usb-common.ko:',
  'kernel/drivers/usb/core/usbcore.ko: kernel/drivers/usb/common/usb-common.ko',
  'kernel/drivers/usb/storage/usb-storage.ko: kernel/drivers/usb/core/usbcore.ko kernel/drivers/usb/common/usb-common.ko',
  'kernel/drivers/usb/storage/uas.ko: kernel/drivers/usb/storage/usb-storage.ko kernel/drivers/usb/core/usbcore.ko kernel/drivers/usb/common/usb-common.ko',
  '',
].join('\n');

const file = (path: string, content: string): RecordedCall => ({ op: 'readFile', path, content });
const fileError = (path: string, error: CheckErrorCode): RecordedCall => ({ op: 'readFile', path, error });
const dir = (path: string, names: string[], type: 'file' | 'dir' | 'symlink' = 'file'): RecordedCall => ({
  op: 'readDir',
  path,
  entries: names.map((name) => ({ name, type })),
});
const dirError = (path: string, error: CheckErrorCode): RecordedCall => ({ op: 'readDir', path, error });
const stat = (path: string, type: 'file' | 'dir' = 'dir'): RecordedCall => ({ op: 'stat', path, stat: { type, size: 0, mode: 0o755, uid: 0, gid: 0, mtimeMs: 0 } });
const statError = (path: string, error: CheckErrorCode): RecordedCall => ({ op: 'stat', path, error });
const link = (path: string, target: string): RecordedCall => ({ op: 'readLink', path, target });
const linkError = (path: string, error: CheckErrorCode): RecordedCall => ({ op: 'readLink', path, error });

const keyOf = (c: RecordedCall): string => (c.op === 'run' ? JSON.stringify([c.command, ...c.args]) : c.op === 'httpGet' ? c.url : `${c.op} ${c.path}`);

/** A Debian-like host with nothing configured; `over` replaces or adds calls, `drop` removes them. */
function host(over: RecordedCall[] = [], drop: string[] = []): RecordedCall[] {
  const base: RecordedCall[] = [
    file('/proc/cmdline', `BOOT_IMAGE=/boot/vmlinuz-${R} root=/dev/sda1 ro quiet\n`),
    file('/proc/modules', 'usbcore 348160 0 - Live 0x0000000000000000\n'),
    file('/proc/sys/kernel/osrelease', `${R}\n`),
    file('/proc/sys/kernel/modules_disabled', '0\n'),
    file(`/lib/modules/${R}/modules.builtin`, 'kernel/fs/binfmt_script.ko\n'),
    file(`/lib/modules/${R}/modules.dep`, DEP),
    ...MODPROBE_DIRS.map((d) => dirError(d, 'CHK_ERR_SOURCE_MISSING')),
    statError('/sys/module/uas', 'CHK_ERR_SOURCE_MISSING'),
    statError('/sys/module/usb_storage', 'CHK_ERR_SOURCE_MISSING'),
    dir('/proc', ['1', 'self'], 'dir'),
    file('/proc/1/comm', 'systemd\n'),
    fileError('/etc/usbguard/usbguard-daemon.conf', 'CHK_ERR_SOURCE_MISSING'),
    stat('/sys/bus'),
    dir('/sys/bus/usb/devices', ['usb1', '1-0:1.0'], 'symlink'),
    file('/sys/bus/usb/devices/1-0:1.0/bInterfaceClass', '09\n'),
  ];
  const calls = new Map(base.map((c) => [keyOf(c), c]));
  for (const c of over) calls.set(keyOf(c), c);
  for (const k of drop) calls.delete(k);
  return [...calls.values()];
}

async function run(calls: RecordedCall[], config?: unknown, platform: Platform = 'linux'): Promise<Finding & { facts: Facts | null }> {
  const io = new ReplayHostIO({ version: 1, platform, calls });
  const finding = await runCheck(usbPolicy, { io, configs: config === undefined ? {} : { usb_policy: config } });
  io.assertComplete();
  return finding as Finding & { facts: Facts | null };
}

const linuxFacts = (f: { facts: Facts | null }): LinuxFacts => {
  expect(f.facts?.platform).toBe('linux');
  return f.facts as LinuxFacts;
};

describe('usb_policy collect on Linux', () => {
  it('fails a plain host and records what it saw', async () => {
    const f = await run(host());
    expect(f.status).toBe('fail');
    const facts = linuxFacts(f);
    expect(facts.modules.map((m) => [m.name, m.builtin, m.inModulesDep])).toEqual([
      ['uas', false, true],
      ['usb_storage', false, true],
    ]);
    expect(facts.modules[0]?.dependsOn).toEqual(['usb_common', 'usb_storage', 'usbcore']);
    expect(facts.usbBus).toBe(true);
    expect(facts.attachedMassStorage).toEqual([]);
  });

  it('lets a file in /etc hide the same name in /usr/lib, and takes the first install line by file name', async () => {
    const f = await run(
      host([
        dir('/etc/modprobe.d', ['usb.conf', '.hidden.conf', 'notes.txt']),
        dir('/usr/lib/modprobe.d', ['usb.conf', '10-vendor.conf']),
        dir('/lib/modprobe.d', ['usb.conf', '10-vendor.conf']),
        file('/etc/modprobe.d/usb.conf', 'install uas /bin/false\n'),
        file('/usr/lib/modprobe.d/10-vendor.conf', 'install usb_* /sbin/modprobe --ignore-install $MODPROBE_MODULE\n'),
      ]),
    );
    const facts = linuxFacts(f);
    expect(facts.modprobe.filesRead).toEqual(['/usr/lib/modprobe.d/10-vendor.conf', '/etc/modprobe.d/usb.conf']);
    expect(facts.modules.find((m) => m.name === 'usb_storage')?.installOverride).toEqual({
      file: '/usr/lib/modprobe.d/10-vendor.conf',
      line: 1,
      pattern: 'usb_*',
      command: '/sbin/modprobe --ignore-install $MODPROBE_MODULE',
    });
    expect(f.reasons).toEqual([expect.objectContaining({ code: 'CHK_FAIL_MODULE_NOT_BLOCKED', subject: 'usb_storage' })]);
  });

  it('skips directories inside modprobe.d and follows links (a link to /dev/null masks a file)', async () => {
    const f = await run(
      host([
        { op: 'readDir', path: '/etc/modprobe.d', entries: [{ name: 'usb.conf', type: 'symlink' }, { name: 'old.conf', type: 'dir' }] },
        dir('/usr/lib/modprobe.d', ['usb.conf']),
        file('/etc/modprobe.d/usb.conf', ''),
      ]),
    );
    expect(linuxFacts(f).modprobe.filesRead).toEqual(['/etc/modprobe.d/usb.conf']);
  });

  it('records unreadable modprobe directories and files, and answers unknown', async () => {
    const f = await run(
      host([dirError('/etc/modprobe.d', 'CHK_ERR_PERMISSION'), dir('/run/modprobe.d', ['usb.conf']), fileError('/run/modprobe.d/usb.conf', 'CHK_ERR_PERMISSION')]),
    );
    expect(linuxFacts(f).modprobe.unreadable).toEqual(['/etc/modprobe.d', '/run/modprobe.d/usb.conf']);
    expect(f.status).toBe('unknown');
    expect(f.reasons.map((r) => r.code)).toEqual(['CHK_ERR_PERMISSION', 'CHK_ERR_PERMISSION']);
  });

  it('reads the configuration the running daemon was given with -c, and its rule folder', async () => {
    const f = await run(
      host([
        dir('/proc', ['1', '640', '701'], 'dir'),
        fileError('/proc/640/comm', 'CHK_ERR_SOURCE_MISSING'),
        file('/proc/701/comm', 'usbguard-daemon\n'),
        file('/proc/701/cmdline', '/usr/sbin/usbguard-daemon\0-f\0-s\0-c\0/srv/usbguard/daemon.conf\0'),
        file('/srv/usbguard/daemon.conf', 'RuleFile=/srv/usbguard/rules.conf\nRuleFolder=/srv/usbguard/rules.d/\n'),
        file('/srv/usbguard/rules.conf', 'allow id 1d6b:0002 hash "jEP/6WzviqdJ5VSeTUY8PatCNBKeaREvo2OqdplND/o=" with-interface 09:00:00\n'),
        dir('/srv/usbguard/rules.d', ['20-b.conf', '10-a.conf']),
        file('/srv/usbguard/rules.d/10-a.conf', 'allow id 0781:5583 serial "4C530001130821113225" with-interface 08:06:50\n'),
        file('/srv/usbguard/rules.d/20-b.conf', '# empty\n'),
      ], ['readFile /etc/usbguard/usbguard-daemon.conf']),
    );
    const u = linuxFacts(f).usbguard;
    expect(u).toMatchObject({
      configFile: '/srv/usbguard/daemon.conf',
      config: 'read',
      implicitPolicyTarget: null,
      ruleFiles: ['/srv/usbguard/rules.conf', '/srv/usbguard/rules.d/10-a.conf', '/srv/usbguard/rules.d/20-b.conf'],
      rules: 'read',
      allowRules: 2,
      broadStorageAllows: [],
      running: true,
      pids: [701],
    });
    expect(f.status).toBe('pass');
  });

  it('reads the default rule file when RuleFile is not set, and records it unreadable', async () => {
    const f = await run(
      host([
        dir('/proc', ['1', '701'], 'dir'),
        file('/proc/701/comm', 'usbguard-daemon\n'),
        file('/proc/701/cmdline', '/usr/sbin/usbguard-daemon\0-f\0'),
        file('/etc/usbguard/usbguard-daemon.conf', 'ImplicitPolicyTarget=block\n'),
        fileError('/etc/usbguard/rules.conf', 'CHK_ERR_PERMISSION'),
      ], ['stat /sys/module/usb_storage']),
      { modules: ['uas'], acceptBlacklistOnly: false },
    );
    expect(linuxFacts(f).usbguard).toMatchObject({ rules: 'unreadable', ruleFiles: [] });
    // USBGuard cannot be shown to enforce, and the module is not blocked: the fail dominates.
    expect(f.status).toBe('fail');
    expect(f.reasons.map((r) => r.code)).toEqual(['CHK_FAIL_MODULE_NOT_BLOCKED']);
  });

  it('records a configuration it may not read without reading rules', async () => {
    const f = await run(
      host([
        dir('/proc', ['1', '701'], 'dir'),
        file('/proc/701/comm', 'usbguard-daemon\n'),
        fileError('/proc/701/cmdline', 'CHK_ERR_PERMISSION'),
        fileError('/etc/usbguard/usbguard-daemon.conf', 'CHK_ERR_PERMISSION'),
      ]),
    );
    expect(linuxFacts(f).usbguard).toMatchObject({ config: 'unreadable', rules: 'not-read', running: true });
  });

  it('reads the attached storage devices, skipping ones unplugged while it looked', async () => {
    const d = '/sys/bus/usb/devices';
    const f = await run(
      host([
        dir(d, ['usb2', '2-0:1.0', '2-1', '2-1:1.0', '2-2', '2-2:1.0', '2-3:1.0'], 'symlink'),
        file(`${d}/2-0:1.0/bInterfaceClass`, '09\n'),
        file(`${d}/2-1:1.0/bInterfaceClass`, '08\n'),
        file(`${d}/2-1/idVendor`, '174C\n'),
        file(`${d}/2-1/idProduct`, '55aa\n'),
        link(`${d}/2-1:1.0/driver`, '../../../../../../bus/usb/drivers/uas'),
        fileError(`${d}/2-1/authorized`, 'CHK_ERR_SOURCE_MISSING'),
        file(`${d}/2-1:1.0/bInterfaceProtocol`, '62\n'),
        fileError(`${d}/2-1/product`, 'CHK_ERR_SOURCE_MISSING'),
        file(`${d}/2-1/manufacturer`, 'ASMedia\n'),
        file(`${d}/2-2:1.0/bInterfaceClass`, '08\n'),
        fileError(`${d}/2-2/idVendor`, 'CHK_ERR_SOURCE_MISSING'),
        fileError(`${d}/2-2/idProduct`, 'CHK_ERR_SOURCE_MISSING'),
        fileError(`${d}/2-3:1.0/bInterfaceClass`, 'CHK_ERR_SOURCE_MISSING'),
      ], [`readFile ${d}/1-0:1.0/bInterfaceClass`]),
    );
    expect(linuxFacts(f).attachedMassStorage).toEqual([
      {
        interface: '2-1:1.0',
        device: '2-1',
        idVendor: '174c',
        idProduct: '55aa',
        product: null,
        manufacturer: 'ASMedia',
        interfaceProtocol: '62',
        authorized: null,
        driver: 'uas',
      },
    ]);
    expect(f.reasons).toContainEqual(expect.objectContaining({ code: 'CHK_FAIL_MASS_STORAGE_ATTACHED', subject: '2-1:1.0' }));
  });

  it('records a storage interface without a driver', async () => {
    const d = '/sys/bus/usb/devices';
    const f = await run(
      host([
        dir(d, ['2-1', '2-1:1.0'], 'symlink'),
        file(`${d}/2-1:1.0/bInterfaceClass`, '08\n'),
        file(`${d}/2-1/idVendor`, '0781\n'),
        file(`${d}/2-1/idProduct`, '5583\n'),
        linkError(`${d}/2-1:1.0/driver`, 'CHK_ERR_SOURCE_MISSING'),
        file(`${d}/2-1/authorized`, '0\n'),
        file(`${d}/2-1:1.0/bInterfaceProtocol`, '50\n'),
        file(`${d}/2-1/product`, ' SanDisk 3.2Gen1\n'),
        file(`${d}/2-1/manufacturer`, 'USB\n'),
      ], [`readFile ${d}/1-0:1.0/bInterfaceClass`]),
    );
    expect(linuxFacts(f).attachedMassStorage).toEqual([expect.objectContaining({ authorized: false, driver: null, product: 'SanDisk 3.2Gen1' })]);
  });

  it('skips modules.builtin and modules.dep when the release is not a plain name', async () => {
    const f = await run(
      host([file('/proc/sys/kernel/osrelease', '../../etc\n')], [`readFile /lib/modules/${R}/modules.builtin`, `readFile /lib/modules/${R}/modules.dep`]),
    );
    expect(linuxFacts(f).kernelRelease).toBeNull();
    expect(f.status).toBe('unknown');
  });

  it('reads modules_disabled and module_blacklist=', async () => {
    const f = await run(host([file('/proc/sys/kernel/modules_disabled', '1\n')]));
    expect(linuxFacts(f).modulesDisabled).toBe(true);
    expect(f.status).toBe('pass');
    const g = await run(host([file('/proc/cmdline', 'ro module_blacklist=usb_storage,uas\n')]));
    expect(linuxFacts(g).modules.every((m) => m.cmdlineBlacklisted.moduleBlacklist)).toBe(true);
    expect(g.status).toBe('pass');
  });

  it('collects the modules the config lists, normalized', async () => {
    const f = await run(
      host([statError('/sys/module/ums_realtek', 'CHK_ERR_SOURCE_MISSING')], ['stat /sys/module/uas', 'stat /sys/module/usb_storage']),
      { modules: ['ums-realtek'] },
    );
    expect(linuxFacts(f).modules.map((m) => [m.name, m.inModulesDep])).toEqual([['ums_realtek', false]]);
    expect(f.status).toBe('pass');
  });

  it('answers unknown when a source it cannot do without is missing', async () => {
    const noCmdline = await run([fileError('/proc/cmdline', 'CHK_ERR_SOURCE_MISSING')]);
    expect(noCmdline.status).toBe('unknown');
    expect(noCmdline.reasons[0]?.code).toBe('CHK_ERR_SOURCE_MISSING');
    expect(noCmdline.facts).toBeNull();

    const noSysfs = await run(host([statError('/sys/bus', 'CHK_ERR_SOURCE_MISSING')], ['readDir /sys/bus/usb/devices', 'readFile /sys/bus/usb/devices/1-0:1.0/bInterfaceClass']));
    expect(noSysfs.reasons).toEqual([expect.objectContaining({ code: 'CHK_ERR_SOURCE_MISSING', subject: '/sys/bus' })]);

    const badModules = await run([file('/proc/cmdline', 'ro\n'), file('/proc/modules', 'this is not the module list\n')]);
    expect(badModules.reasons[0]?.code).toBe('CHK_ERR_PARSE');
  });
});

describe('usb_policy collect on macOS and Windows', () => {
  it('runs profiles with the declared arguments', async () => {
    const f = await run(
      [{ op: 'run', command: '/usr/bin/profiles', args: [...PROFILES_ARGS], stdout: 'There are no configuration profiles installed in the system domain\n', exitCode: 0 }],
      undefined,
      'darwin',
    );
    expect(f.facts).toEqual({ platform: 'darwin', profileCount: 0, mountControls: [] });
    expect(f.reasons.map((r) => r.code)).toEqual(['CHK_FAIL_NO_BLOCKING_POLICY']);
    expect(usbPolicy.sources.darwin).toEqual([expect.objectContaining({ command: '/usr/bin/profiles', args: PROFILES_ARGS })]);
  });

  it('runs the PowerShell script with the declared arguments and reports a timeout as unknown', async () => {
    const f = await run([{ op: 'run', command: POWERSHELL, args: [...USB_POLICY_ARGS], error: 'CHK_ERR_TIMEOUT' }], undefined, 'win32');
    expect(f.status).toBe('unknown');
    expect(f.reasons[0]?.code).toBe('CHK_ERR_TIMEOUT');
  });
});
