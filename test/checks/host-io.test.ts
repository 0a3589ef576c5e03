// The real HostIO on a real temp tree and real commands: files under a root prefix, commands
// from an exact allow-list, without a shell, with a clean environment and a timeout.
import { existsSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, symlink, truncate, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHECK_ERROR_CODES, CheckError, codeForFsError, isCheckError } from '../../checks/errors.js';
import { currentPlatform, RealHostIO, type AllowedCommand } from '../../checks/host-io.js';

let base: string; // holds the root and a file outside it
let root: string;
let outsideFile: string;
let socketServer: net.Server;
const HOSTNAME = `vcm-test-${process.pid}-${Math.random().toString(36).slice(2)}\n`;
const OUTSIDE = `outside the root ${Math.random().toString(36).slice(2)}\n`;

beforeAll(async () => {
  base = await mkdtemp(path.join(os.tmpdir(), 'vcm-hostio-'));
  root = path.join(base, 'root');
  outsideFile = path.join(base, 'outside.txt');
  await writeFile(outsideFile, OUTSIDE);
  await mkdir(path.join(root, 'etc', 'sub'), { recursive: true });
  await writeFile(path.join(root, 'etc', 'hostname'), HOSTNAME);
  await writeFile(path.join(root, 'etc', 'sub', 'inner.conf'), 'inner\n');
  await symlink('hostname', path.join(root, 'etc', 'link'));
  await symlink('/etc/hostname', path.join(root, 'etc', 'abs-link'));
  await symlink(outsideFile, path.join(root, 'etc', 'abs-outside'));
  await symlink('../../outside.txt', path.join(root, 'etc', 'rel-outside'));
  // A unix socket is neither file, dir nor symlink.
  await mkdir(path.join(root, 'run'));
  socketServer = net.createServer();
  await new Promise<void>((resolve) => socketServer.listen(path.join(root, 'run', 'agent.sock'), resolve));
});

afterAll(async () => {
  await new Promise<void>((resolve) => socketServer.close(() => resolve()));
  await rm(base, { recursive: true, force: true });
});

async function caught(p: Promise<unknown>): Promise<CheckError> {
  const err = await p.then(
    (v) => {
      throw new Error(`expected a CheckError, got a value: ${JSON.stringify(v)}`);
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(CheckError);
  return err as CheckError;
}

describe('RealHostIO: files under the root prefix', () => {
  it('reads a host-absolute path from under the root', async () => {
    const io = new RealHostIO({ root });
    expect(await io.readFile('/etc/hostname')).toBe(HOSTNAME);
    expect(await io.resolve('/etc/hostname')).toBe(path.join(root, 'etc', 'hostname'));
  });

  it('a root given with a trailing slash or relative segments is resolved', async () => {
    const io = new RealHostIO({ root: `${root}/./` });
    expect(io.root).toBe(root);
    expect(await io.readFile('/etc/hostname')).toBe(HOSTNAME);
  });

  it('defaults to the root / and the current platform', async () => {
    const io = new RealHostIO();
    expect(io.root).toBe('/');
    expect(io.platform).toBe(currentPlatform());
    expect(await io.resolve('/etc/hostname')).toBe('/etc/hostname');
    expect(new RealHostIO({ platform: 'darwin' }).platform).toBe('darwin');
  });

  it('resolves an absolute symlink under the root, as the host sees it', async () => {
    expect(await new RealHostIO({ root }).readFile('/etc/abs-link')).toBe(HOSTNAME);
  });

  it('follows a relative symlink inside the root', async () => {
    expect(await new RealHostIO({ root }).readFile('/etc/link')).toBe(HOSTNAME);
  });

  it('readDir returns names with their types (file, dir, symlink, other)', async () => {
    const io = new RealHostIO({ root });
    const etc = await io.readDir('/etc');
    expect([...etc].sort((a, b) => a.name.localeCompare(b.name))).toEqual([
      { name: 'abs-link', type: 'symlink' },
      { name: 'abs-outside', type: 'symlink' },
      { name: 'hostname', type: 'file' },
      { name: 'link', type: 'symlink' },
      { name: 'rel-outside', type: 'symlink' },
      { name: 'sub', type: 'dir' },
    ]);
    expect(await io.readDir('/run')).toEqual([{ name: 'agent.sock', type: 'other' }]);
  });

  it('readLink returns the raw target, relative or absolute, without resolving it', async () => {
    const io = new RealHostIO({ root });
    expect(await io.readLink('/etc/link')).toBe('hostname');
    expect(await io.readLink('/etc/abs-link')).toBe('/etc/hostname');
  });

  it.each([
    ['readFile', (io: RealHostIO) => io.readFile('/etc/nope')],
    ['readFile under a file (ENOTDIR)', (io: RealHostIO) => io.readFile('/etc/hostname/nope')],
    ['readDir', (io: RealHostIO) => io.readDir('/nope')],
    ['readLink', (io: RealHostIO) => io.readLink('/etc/nope')],
  ])('a missing source (%s) is CHK_ERR_SOURCE_MISSING naming the host path', async (_label, call) => {
    const err = await caught(call(new RealHostIO({ root })));
    expect(err.code).toBe('CHK_ERR_SOURCE_MISSING');
    expect(err.subject).toMatch(/^\/(etc|nope)/);
    expect(err.subject).not.toContain(root);
  });

  it('a file larger than any source should be is CHK_ERR_PARSE', async () => {
    const big = path.join(root, 'etc', 'huge');
    await writeFile(big, '');
    await truncate(big, 16 * 1024 * 1024 + 1); // sparse: costs no disk
    try {
      expect((await caught(new RealHostIO({ root }).readFile('/etc/huge'))).code).toBe('CHK_ERR_PARSE');
    } finally {
      await rm(big);
    }
  });

  it.each(['etc/hostname', './etc/hostname', '', 'hostname'])('a relative path (%j) is refused with a CheckError', async (p) => {
    const io = new RealHostIO({ root });
    for (const call of [io.readFile(p), io.readDir(p), io.readLink(p)]) {
      const err = await caught(call);
      expect(Object.keys(CHECK_ERROR_CODES)).toContain(err.code);
    }
  });

  it('a path with .. segments never reads outside the root', async () => {
    const io = new RealHostIO({ root });
    const escapes = ['/../outside.txt', '/etc/../../outside.txt', '/etc/sub/../../../outside.txt', `/../../../../../../..${outsideFile}`];
    for (const p of escapes) {
      const got: unknown = await io.readFile(p).catch((e: unknown) => e);
      expect(got, p).not.toBe(OUTSIDE);
      expect(isCheckError(got) || typeof got === 'string', p).toBe(true);
    }
  });

  // Normalizing first used to clamp '/../etc/hostname' to '<root>/etc/hostname' silently.
  it('refuses a path with .. segments even when it would stay inside the root once clamped', async () => {
    const err = await caught(new RealHostIO({ root }).readFile('/../etc/hostname'));
    expect(err.subject).toBe('/../etc/hostname');
  });

  // Symlinks resolve under the root as on the host: an absolute target restarts at the root
  // (under --root /host, /host/etc/localtime -> /usr/share/... must not read the container's file),
  // and a relative one cannot climb out of it.
  it.each([
    ['an absolute', '/etc/abs-outside'],
    ['a relative', '/etc/rel-outside'],
  ])('does not follow %s symlink inside the root to a file outside it', async (_kind, p) => {
    const got: unknown = await new RealHostIO({ root }).readFile(p).catch((e: unknown) => e);
    expect(got).not.toBe(OUTSIDE);
  });
});

// Kernel pseudo-files (comm, fd links, /proc/net, a few sysfs attributes) are read with
// synchronous syscalls: a thread-pool round trip costs far more CPU than the read. Everything
// else stays asynchronous, so that a read that hangs (a network mount) still times out. Which
// path takes which way shows in when the read happens: a synchronous read is done by the time
// the call returns, an asynchronous one only after it.
describe('RealHostIO: kernel pseudo-files are read at the call, other files after it', () => {
  const fixture = async (files: Record<string, string>): Promise<void> => {
    for (const [p, content] of Object.entries(files)) {
      await mkdir(path.dirname(path.join(root, p)), { recursive: true });
      await writeFile(path.join(root, p), content);
    }
  };
  afterAll(async () => {
    for (const d of ['proc', 'sys', 'devices']) await rm(path.join(root, d), { recursive: true, force: true });
  });

  it.each([
    ['/proc/812/comm', 'readFile'],
    ['/proc/self/comm', 'readFile'],
    ['/proc/net/tcp6', 'readFile'],
    ['/proc/sys/kernel/osrelease', 'readFile'],
    ['/proc/modules', 'readFile'],
    ['/sys/class/net/wg0/tun_flags', 'readFile'],
    ['/sys/bus/usb/devices/1-1/idVendor', 'readFile'],
    ['/proc/812/fd/7', 'readLink'],
  ] as const)('%s (%s) is read synchronously', async (p, op) => {
    const real = path.join(root, p);
    await mkdir(path.dirname(real), { recursive: true });
    if (op === 'readFile') await writeFile(real, 'value\n');
    else await symlink('socket:[4711]', real);
    const io = new RealHostIO({ root });
    const pending = op === 'readFile' ? io.readFile(p) : io.readLink(p);
    unlinkSync(real);
    expect(await pending).toBe(op === 'readFile' ? 'value\n' : 'socket:[4711]');
  });

  it.each([
    // These take the process's memory-map lock, which a process in uninterruptible sleep can hold.
    '/proc/812/cmdline',
    '/proc/812/environ',
    '/proc/812/mountinfo',
    // A driver answers these.
    '/sys/class/net/eth0/speed',
    // Files on disks, and anything unknown.
    '/etc/modprobe.d/usb.conf',
    '/proc/812/comm.bak',
  ])('%s is read asynchronously', async (p) => {
    await fixture({ [p]: 'value\n' });
    const io = new RealHostIO({ root });
    const pending = io.readFile(p);
    unlinkSync(path.join(root, p));
    expect((await caught(pending)).code).toBe('CHK_ERR_SOURCE_MISSING');
  });

  it('listings of /proc, of fd directories and of sysfs are synchronous; of other directories not', async () => {
    await fixture({ '/proc/812/fd/.keep': '', '/sys/class/net/lo/type': '772\n', '/etc/modprobe.d/a.conf': '' });
    const io = new RealHostIO({ root });
    for (const [dir, sync] of [
      ['/proc', true],
      ['/proc/812/fd', true],
      ['/sys/class/net', true],
      ['/etc/modprobe.d', false],
    ] as const) {
      const marker = path.join(root, dir, 'added-after-the-call');
      const pending = io.readDir(dir);
      writeFileSync(marker, '');
      const names = (await pending).map((e) => e.name);
      expect(names.includes('added-after-the-call'), dir).toBe(!sync);
      await rm(marker);
    }
  });

  it('under a root prefix, symlinks in sysfs resolve inside the root, as on the host', async () => {
    await fixture({ '/devices/virtual/net/tun7/type': '65534\n', '/devices/virtual/net/tun7/tun_flags': '0x1001\n' });
    await writeFile(path.join(base, 'type'), 'outside\n');
    const net = path.join(root, 'sys', 'class', 'net');
    await mkdir(net, { recursive: true });
    await symlink('../../../devices/virtual/net/tun7', path.join(net, 'tun7'));
    await symlink('/devices/virtual/net/tun7', path.join(net, 'tun8'));
    await symlink(base, path.join(net, 'out0'));
    await symlink('../../../../../type', path.join(net, 'out1'));
    const io = new RealHostIO({ root });
    expect(await io.readFile('/sys/class/net/tun7/type')).toBe('65534\n');
    expect(await io.readFile('/sys/class/net/tun8/tun_flags')).toBe('0x1001\n');
    expect((await io.readDir('/sys/class/net')).map((e) => e.name)).toEqual(expect.arrayContaining(['out0', 'out1', 'tun7', 'tun8']));
    expect(await io.readLink('/sys/class/net/tun7')).toBe('../../../devices/virtual/net/tun7');
    // An absolute target restarts at the root, and .. stops at it: the file outside is not reached.
    for (const p of ['/sys/class/net/out0/type', '/sys/class/net/out1/type']) {
      const got: unknown = await io.readFile(p).catch((e: unknown) => e);
      expect(isCheckError(got) && got.code, p).toBe('CHK_ERR_SOURCE_MISSING');
    }
    expect((await io.stat('/sys/class/net/tun7')).type).toBe('symlink');
  });

  it('readFile with `until` stops after the first whole line that matches, across read chunks', async () => {
    // Lines of 100 bytes, the marker past the first 64 KiB read, and a multi-byte character split by that boundary.
    const row = (i: number, tag: string) => `${String(i).padStart(6)} ${tag} ${'x'.repeat(100 - 10 - tag.length)}\n`;
    const head = `${Array.from({ length: 600 }, (_, i) => row(i, 'AA')).join('')}x`;
    const pad = 'é'.repeat(4000); // two bytes each, the 64 KiB boundary inside one of them
    const body = `${head}${pad}\n${row(700, 'AA')}${row(701, 'ZZ')}${row(702, 'AA')}${row(703, 'ZZ')}`;
    await fixture({ '/proc/net/tcp': body });
    const io = new RealHostIO({ root });
    const got = await io.readFile('/proc/net/tcp', { until: /^\s*\d+ ZZ / });
    expect(got).toBe(body.slice(0, body.indexOf(row(702, 'AA'))));
    // No line matches: the whole file, as without `until`.
    expect(await io.readFile('/proc/net/tcp', { until: /^never$/ })).toBe(body);
    expect(await io.readFile('/proc/net/tcp')).toBe(body);
    const missing = await caught(io.readFile('/proc/net/udp9', { until: /x/ }));
    expect([missing.code, missing.subject]).toEqual(['CHK_ERR_SOURCE_MISSING', '/proc/net/udp9']);
  });

  it('on the host itself, /proc/self/comm reads the same as the file system does', async () => {
    expect(await new RealHostIO().readFile('/proc/self/comm')).toBe(readFileSync('/proc/self/comm', 'utf8'));
    const missing = await caught(new RealHostIO().readFile('/proc/999999999/comm'));
    expect([missing.code, missing.subject]).toEqual(['CHK_ERR_SOURCE_MISSING', '/proc/999999999/comm']);
  });
});

describe('RealHostIO: permissions', () => {
  it('codeForFsError maps EACCES/EPERM to permission, ENOENT/ENOTDIR to missing, and anything else to internal', () => {
    expect(codeForFsError({ code: 'EACCES' })).toBe('CHK_ERR_PERMISSION');
    expect(codeForFsError({ code: 'EPERM' })).toBe('CHK_ERR_PERMISSION');
    expect(codeForFsError({ code: 'ENOENT' })).toBe('CHK_ERR_SOURCE_MISSING');
    expect(codeForFsError({ code: 'ENOTDIR' })).toBe('CHK_ERR_SOURCE_MISSING');
    expect(codeForFsError({ code: 'EISDIR' })).toBe('CHK_ERR_INTERNAL');
    expect(codeForFsError(new Error('no code'))).toBe('CHK_ERR_INTERNAL');
    expect(codeForFsError(undefined)).toBe('CHK_ERR_INTERNAL');
  });

  // chmod 000 does not stop root. As root (CI), the read is done with the effective uid dropped to
  // nobody, which needs process.seteuid (a POSIX process, not a worker thread).
  it('an unreadable file or directory is CHK_ERR_PERMISSION (real file modes)', async () => {
    const locked = path.join(root, 'locked');
    await mkdir(path.join(locked, 'closed'), { recursive: true });
    await writeFile(path.join(locked, 'secret'), 'no\n');
    // The same through the synchronous path that kernel pseudo-files take.
    const proc = path.join(root, 'proc', '4242');
    await mkdir(path.join(proc, 'fd'), { recursive: true });
    await writeFile(path.join(proc, 'comm'), 'sshd\n');
    await chmod(path.join(proc, 'comm'), 0o000);
    await chmod(path.join(proc, 'fd'), 0o000);
    await chmod(base, 0o755);
    await chmod(root, 0o755);
    await chmod(locked, 0o755);
    await chmod(path.join(locked, 'secret'), 0o000);
    await chmod(path.join(locked, 'closed'), 0o000);
    const io = new RealHostIO({ root });
    const attempt = async (): Promise<void> => {
      const fileErr = await caught(io.readFile('/locked/secret'));
      expect(fileErr.code).toBe('CHK_ERR_PERMISSION');
      expect(fileErr.subject).toBe('/locked/secret');
      expect((await caught(io.readDir('/locked/closed'))).code).toBe('CHK_ERR_PERMISSION');
      const commErr = await caught(io.readFile('/proc/4242/comm'));
      expect([commErr.code, commErr.subject]).toEqual(['CHK_ERR_PERMISSION', '/proc/4242/comm']);
      expect((await caught(io.readDir('/proc/4242/fd'))).code).toBe('CHK_ERR_PERMISSION');
    };
    try {
      if (process.getuid?.() !== 0) {
        await attempt();
        return;
      }
      if (typeof process.seteuid !== 'function') {
        console.info(
          'host-io.test: running as root without process.seteuid (worker thread?): chmod 000 does not stop root, ' +
            'so the file-mode permission case was not exercised; only the EACCES mapping was tested',
        );
        expect(codeForFsError({ code: 'EACCES' })).toBe('CHK_ERR_PERMISSION');
        return;
      }
      console.info('host-io.test: running as root: chmod 000 does not stop root, so the permission case runs with euid 65534');
      process.seteuid(65534);
      try {
        await attempt();
      } finally {
        process.seteuid(0);
      }
      expect(process.geteuid?.()).toBe(0);
    } finally {
      await chmod(path.join(locked, 'closed'), 0o755);
      await chmod(path.join(proc, 'fd'), 0o755);
      await rm(locked, { recursive: true, force: true });
      await rm(path.join(root, 'proc'), { recursive: true, force: true });
    }
  });
});

describe('RealHostIO.run: the allow-list', () => {
  const ioWith = (allowedCommands: AllowedCommand[], commandTimeoutMs?: number): RealHostIO =>
    new RealHostIO({ root, allowedCommands, ...(commandTimeoutMs === undefined ? {} : { commandTimeoutMs }) });

  it('a command not on the allow-list is CHK_ERR_COMMAND_NOT_ALLOWED and is not executed', async () => {
    const marker = path.join(base, 'not-allowed-marker');
    const io = ioWith([{ command: '/bin/echo', args: ['hi'] }]);
    const err = await caught(io.run('/bin/sh', ['-c', `touch '${marker}'`]));
    expect(err.code).toBe('CHK_ERR_COMMAND_NOT_ALLOWED');
    expect(err.subject).toBe('/bin/sh');
    expect(existsSync(marker)).toBe(false);
  });

  it('control: the same command, once allow-listed, does run and creates the marker', async () => {
    const marker = path.join(base, 'allowed-marker');
    const args = ['-c', `touch '${marker}'`];
    const result = await ioWith([{ command: '/bin/sh', args }]).run('/bin/sh', args);
    expect(result.exitCode).toBe(0);
    expect(existsSync(marker)).toBe(true);
  });

  it('a relative command name is refused even when allow-listed', async () => {
    const io = ioWith([
      { command: 'env', args: [] },
      { command: 'bin/echo', args: ['hi'] },
    ]);
    expect((await caught(io.run('env', []))).code).toBe('CHK_ERR_COMMAND_NOT_ALLOWED');
    expect((await caught(io.run('bin/echo', ['hi']))).code).toBe('CHK_ERR_COMMAND_NOT_ALLOWED');
  });

  it.each([
    ['an extra argument', ['hi', 'there']],
    ['no arguments', []],
    ['a different argument', ['ho']],
    ['the same words split differently', ['h', 'i']],
  ])('the allow-listed command with %s is refused', async (_label, args) => {
    const io = ioWith([{ command: '/bin/echo', args: ['hi'] }]);
    expect((await caught(io.run('/bin/echo', args))).code).toBe('CHK_ERR_COMMAND_NOT_ALLOWED');
    expect(await io.run('/bin/echo', ['hi'])).toEqual({ stdout: 'hi\n', stderr: '', exitCode: 0 });
  });

  it('an argument vector with spaces is matched exactly, not re-split', async () => {
    const io = ioWith([{ command: '/bin/echo', args: ['a b'] }]);
    expect((await caught(io.run('/bin/echo', ['a', 'b']))).code).toBe('CHK_ERR_COMMAND_NOT_ALLOWED');
    expect((await io.run('/bin/echo', ['a b'])).stdout).toBe('a b\n');
  });

  it('gives Windows commands only what PowerShell needs to start (SystemRoot), nothing of the agent', async () => {
    const io = new RealHostIO({ platform: 'win32', allowedCommands: [{ command: '/usr/bin/env', args: [] }] });
    const names = (await io.run('/usr/bin/env', [])).stdout
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => l.slice(0, l.indexOf('=')))
      .sort();
    expect(names).toEqual(['LANG', 'LC_ALL', 'PATH', 'PSModulePath', 'SystemRoot', 'windir']);
  });

  it('runs with LC_ALL=C and LANG=C and inherits no variables', async () => {
    const before = process.env.VCM_TEST_LEAK;
    process.env.VCM_TEST_LEAK = 'x';
    try {
      const result = await ioWith([{ command: '/usr/bin/env', args: [] }]).run('/usr/bin/env', []);
      expect(result.exitCode).toBe(0);
      const vars = new Map(
        result.stdout
          .split('\n')
          .filter((l) => l !== '')
          .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] as const),
      );
      expect(vars.get('LC_ALL')).toBe('C');
      expect(vars.get('LANG')).toBe('C');
      expect(vars.has('VCM_TEST_LEAK')).toBe(false);
      const inherited = [...vars.keys()].filter((k) => !['LC_ALL', 'LANG', 'PATH'].includes(k));
      expect(inherited).toEqual([]);
    } finally {
      if (before === undefined) delete process.env.VCM_TEST_LEAK;
      else process.env.VCM_TEST_LEAK = before;
    }
  });

  it('passes shell metacharacters literally (no shell)', async () => {
    const args = ['$HOME; echo hi'];
    expect((await ioWith([{ command: '/bin/echo', args }]).run('/bin/echo', args)).stdout).toBe('$HOME; echo hi\n');
    const more = ['`id`', '*', '|', '>x'];
    expect((await ioWith([{ command: '/bin/echo', args: more }]).run('/bin/echo', more)).stdout).toBe('`id` * | >x\n');
  });

  it('a non-zero exit resolves with its exit code (exit codes are data)', async () => {
    expect(await ioWith([{ command: '/bin/false', args: [] }]).run('/bin/false', [])).toEqual({ stdout: '', stderr: '', exitCode: 1 });
  });

  it('a non-zero exit keeps its stdout and stderr', async () => {
    const args = ['-c', 'echo out; echo err >&2; exit 3'];
    expect(await ioWith([{ command: '/bin/sh', args }]).run('/bin/sh', args)).toEqual({ stdout: 'out\n', stderr: 'err\n', exitCode: 3 });
  });

  it('a command killed by a signal is CHK_ERR_COMMAND_FAILED', async () => {
    const args = ['-c', 'kill -9 $$'];
    expect((await caught(ioWith([{ command: '/bin/sh', args }]).run('/bin/sh', args))).code).toBe('CHK_ERR_COMMAND_FAILED');
  });

  it('a command that outlives its timeoutMs is CHK_ERR_TIMEOUT', async () => {
    const io = ioWith([{ command: '/bin/sleep', args: ['5'] }]);
    const err = await caught(io.run('/bin/sleep', ['5'], { timeoutMs: 100 }));
    expect(err.code).toBe('CHK_ERR_TIMEOUT');
    expect(err.subject).toBe('/bin/sleep');
  });

  it('a command is killed when the check budget aborts its signal', async () => {
    const io = ioWith([{ command: '/bin/sleep', args: ['5'] }]);
    const ctrl = new AbortController();
    setTimeout(() => ctrl.abort(), 50);
    const started = Date.now();
    const err = await caught(io.run('/bin/sleep', ['5'], { signal: ctrl.signal }));
    expect(err.code).toBe('CHK_ERR_TIMEOUT');
    expect(Date.now() - started).toBeLessThan(4000);
  });

  it('the constructor commandTimeoutMs applies when run() gives none', async () => {
    const io = ioWith([{ command: '/bin/sleep', args: ['5'] }], 100);
    expect((await caught(io.run('/bin/sleep', ['5']))).code).toBe('CHK_ERR_TIMEOUT');
  });

  it('an allow-listed absolute path that does not exist is CHK_ERR_SOURCE_MISSING', async () => {
    const missing = path.join(base, 'no-such-binary');
    const err = await caught(ioWith([{ command: missing, args: [] }]).run(missing, []));
    expect(err.code).toBe('CHK_ERR_SOURCE_MISSING');
    expect(err.subject).toBe(missing);
  });
});
