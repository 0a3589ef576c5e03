// collect() against strict replays, with a fixed clock: every call the scan makes must be listed,
// and every listed call must be made, so these tests pin down what is read and what is skipped.
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  collectAt,
  configSchema,
  credentialAge,
  DSCL,
  DSCL_ARGS,
  POWERSHELL,
  POWERSHELL_ARGS,
  type Config,
} from '../../../checks/credential_age/index.js';
import { isCheckError, type CheckErrorCode } from '../../../checks/errors.js';
import { ReplayHostIO, type RecordedCall } from '../../../checks/replay.js';
import { runCheck } from '../../../checks/runner.js';
import type { DirEntry, Platform } from '../../../checks/types.js';

const NOW = Date.parse('2026-11-22T12:00:00Z');
const DAY = 86_400_000;
const ED25519 = 'AAAAC3NzaC1lZDI1NTE5AAAAIEoTGMdCe8DejhbfyZOMUBWCtIBv+VWfIMe6av3QJ0zm';

const file = (path: string, content: string): RecordedCall => ({ op: 'readFile', path, content });
const fails = (op: 'readFile' | 'readDir' | 'stat', path: string, error: CheckErrorCode): RecordedCall => ({ op, path, error });
const dir = (path: string, names: (string | [string, DirEntry['type']])[]): RecordedCall => ({
  op: 'readDir',
  path,
  entries: names.map((n) => (typeof n === 'string' ? { name: n, type: 'file' as const } : { name: n[0], type: n[1] })),
});
const stat = (path: string, ageDays: number, type: 'file' | 'symlink' | 'dir' = 'file'): RecordedCall => ({
  op: 'stat',
  path,
  stat: { type, size: 400, mode: 0o600, uid: 0, gid: 0, mtimeMs: NOW - ageDays * DAY },
});

function replay(platform: Platform, calls: RecordedCall[]): ReplayHostIO {
  return new ReplayHostIO({ version: 1, platform, calls });
}

async function collect(platform: Platform, calls: RecordedCall[], raw: unknown = {}, signal = new AbortController().signal) {
  const io = replay(platform, calls);
  const facts = await collectAt({ io, platform, config: configSchema.parse(raw) as Config, signal }, NOW);
  io.assertComplete();
  return facts;
}

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
  } catch (err) {
    return isCheckError(err) ? err.code : `not a CheckError: ${String(err)}`;
  }
  return undefined;
}

const PASSWD = [
  'root:x:0:0:root:/root:/bin/bash',
  'daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin',
  'alice:x:1000:1000::/home/alice:/bin/bash',
  'alice2:x:1001:1001::/home/alice:/bin/bash',
  'odd:x:1002:1002::relative/home:/bin/sh',
  'nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin',
].join('\n');
const SHADOW = ['root:*:20000:0:99999:7:::', 'daemon:*:20000:0:99999:7:::', 'alice:$y$j9T$s$h:16000:0:99999:7:::', 'alice2:!:20000::::::', 'odd::20700::::::', 'nobody:*:20000:0:99999:7:::'].join('\n');

describe('credential_age collect (Linux)', () => {
  it('joins passwd and shadow, scans each home once and the host keys, and sorts everything', async () => {
    const facts = await collect('linux', [
      file('/etc/passwd', PASSWD),
      file('/etc/shadow', SHADOW),
      dir('/root/.ssh', ['authorized_keys', 'known_hosts']),
      stat('/root/.ssh/authorized_keys', 10),
      file('/root/.ssh/authorized_keys', `# none yet\n`),
      dir('/home/alice/.ssh', ['id_ed25519', 'id_ed25519.pub', ['id_old', 'symlink'], 'id_gone', 'authorized_keys', 'config']),
      stat('/home/alice/.ssh/id_ed25519', 400),
      stat('/home/alice/.ssh/id_old', 5, 'symlink'),
      fails('stat', '/home/alice/.ssh/id_gone', 'CHK_ERR_SOURCE_MISSING'),
      stat('/home/alice/.ssh/authorized_keys', 30),
      file('/home/alice/.ssh/authorized_keys', `ssh-ed25519 ${ED25519} alice@example.org\nnot a key\n`),
      // 'odd' has a relative home: nothing under it is read. daemon is below minUid.
      fails('readDir', '/nonexistent/.ssh', 'CHK_ERR_SOURCE_MISSING'),
      dir('/etc/ssh', ['sshd_config', 'ssh_host_ed25519_key', 'ssh_host_ed25519_key.pub', 'ssh_host_rsa_key']),
      stat('/etc/ssh/ssh_host_ed25519_key', 2000),
      stat('/etc/ssh/ssh_host_rsa_key', 20),
    ]);
    expect(facts.observedAt).toBe('2026-11-22T12:00:00.000Z');
    expect(facts.scope).toEqual({ minUid: 1000, includeRoot: true });
    expect(facts.accounts.map((a) => [a.name, a.uid, a.password, a.enabled])).toEqual([
      ['root', 0, 'none', true],
      ['alice', 1000, 'set', true],
      ['alice2', 1001, 'locked', true],
      ['odd', 1002, 'empty', true],
      ['nobody', 65534, 'none', true],
    ]);
    expect(facts.credentials).toEqual([
      { kind: 'password', account: 'alice', path: null, dateFrom: 'shadow', lastChanged: '2013-10-22', ageDays: 4779, active: true, mustChange: false },
      { kind: 'ssh_private_key', account: 'alice', path: '/home/alice/.ssh/id_ed25519', dateFrom: 'mtime', lastChanged: '2025-10-18T12:00:00.000Z', ageDays: 400, active: true },
      {
        kind: 'ssh_private_key',
        account: 'alice',
        path: '/home/alice/.ssh/id_old',
        dateFrom: 'mtime',
        lastChanged: null,
        ageDays: null,
        active: true,
        note: expect.stringContaining('symbolic link'),
      },
      {
        kind: 'ssh_authorized_keys',
        account: 'alice',
        path: '/home/alice/.ssh/authorized_keys',
        dateFrom: 'mtime',
        lastChanged: '2026-10-23T12:00:00.000Z',
        ageDays: 30,
        active: true,
        keys: [{ type: 'ssh-ed25519', fingerprint: 'SHA256:Gf1jzRmCx+JO4cXrONB3upDkDyxDQ/Ersa7n66U2P+8', comment: 'alice@example.org', options: false }],
        invalidLines: 1,
      },
      {
        kind: 'ssh_authorized_keys',
        account: 'root',
        path: '/root/.ssh/authorized_keys',
        dateFrom: 'mtime',
        lastChanged: '2026-11-12T12:00:00.000Z',
        ageDays: 10,
        active: false,
        keys: [],
        invalidLines: 0,
        note: 'no key entries',
      },
      { kind: 'ssh_host_key', account: null, path: '/etc/ssh/ssh_host_ed25519_key', dateFrom: 'mtime', lastChanged: '2021-06-01T12:00:00.000Z', ageDays: 2000, active: true },
      { kind: 'ssh_host_key', account: null, path: '/etc/ssh/ssh_host_rsa_key', dateFrom: 'mtime', lastChanged: '2026-11-02T12:00:00.000Z', ageDays: 20, active: true },
    ]);
    expect(facts.sources).toEqual([
      { path: '/etc/passwd', kinds: ['password', 'ssh_private_key', 'ssh_authorized_keys'], state: 'read' },
      { path: '/etc/shadow', kinds: ['password'], state: 'read' },
      { path: '/etc/ssh', kinds: ['ssh_host_key'], state: 'read' },
      { path: '/home/alice/.ssh', kinds: ['ssh_private_key', 'ssh_authorized_keys'], state: 'read' },
      { path: '/nonexistent/.ssh', kinds: ['ssh_private_key', 'ssh_authorized_keys'], state: 'absent' },
      { path: '/root/.ssh', kinds: ['ssh_private_key', 'ssh_authorized_keys'], state: 'read' },
    ]);
    // The evaluation of these facts: old password, old key, old host key, passwordless 'odd'.
    const ev = credentialAge.evaluate(facts, configSchema.parse({}));
    expect(ev.status).toBe('fail');
    expect(ev.reasons.map((r) => `${r.code} ${r.subject}`)).toEqual([
      'CHK_FAIL_CREDENTIAL_TOO_OLD password:alice',
      'CHK_FAIL_CREDENTIAL_TOO_OLD ssh_private_key:alice:/home/alice/.ssh/id_ed25519',
      'CHK_FAIL_CREDENTIAL_TOO_OLD ssh_host_key:/etc/ssh/ssh_host_ed25519_key',
      'CHK_FAIL_PASSWORDLESS_ACCOUNT password:odd',
    ]);
  });

  it('goes on without /etc/shadow, and records why it could not read it', async () => {
    const facts = await collect('linux', [
      file('/etc/passwd', 'root:x:0:0:root:/root:/bin/bash\n'),
      fails('readFile', '/etc/shadow', 'CHK_ERR_PERMISSION'),
      fails('readDir', '/root/.ssh', 'CHK_ERR_PERMISSION'),
      fails('readDir', '/etc/ssh', 'CHK_ERR_SOURCE_MISSING'),
    ]);
    expect(facts.accounts).toEqual([{ name: 'root', uid: 0, home: '/root', shell: '/bin/bash', loginShell: true, password: 'unknown', enabled: null }]);
    expect(facts.credentials).toEqual([]);
    expect(facts.sources.filter((s) => s.state !== 'read')).toEqual([
      { path: '/etc/shadow', kinds: ['password'], state: 'unreadable', code: 'CHK_ERR_PERMISSION' },
      { path: '/etc/ssh', kinds: ['ssh_host_key'], state: 'absent' },
      { path: '/root/.ssh', kinds: ['ssh_private_key', 'ssh_authorized_keys'], state: 'unreadable', code: 'CHK_ERR_PERMISSION' },
    ]);
  });

  it('records a key it may list but not stat, and an authorized_keys it may not read', async () => {
    const facts = await collect('linux', [
      file('/etc/passwd', 'root:x:0:0:root:/root:/bin/bash\n'),
      file('/etc/shadow', 'root:*:20000:0:99999:7:::\n'),
      dir('/root/.ssh', ['id_rsa', 'authorized_keys2']),
      fails('stat', '/root/.ssh/id_rsa', 'CHK_ERR_PERMISSION'),
      stat('/root/.ssh/authorized_keys2', 1),
      fails('readFile', '/root/.ssh/authorized_keys2', 'CHK_ERR_PERMISSION'),
      dir('/etc/ssh', []),
    ]);
    expect(facts.credentials).toEqual([]);
    expect(facts.sources.filter((s) => s.state === 'unreadable')).toEqual([
      { path: '/root/.ssh/authorized_keys2', kinds: ['ssh_authorized_keys'], state: 'unreadable', code: 'CHK_ERR_PERMISSION' },
      { path: '/root/.ssh/id_rsa', kinds: ['ssh_private_key'], state: 'unreadable', code: 'CHK_ERR_PERMISSION' },
    ]);
  });

  it('collects only the accounts the config puts in scope', async () => {
    const facts = await collect(
      'linux',
      [
        file('/etc/passwd', PASSWD),
        file('/etc/shadow', SHADOW),
        dir('/usr/sbin/.ssh', []),
        fails('readDir', '/home/alice/.ssh', 'CHK_ERR_SOURCE_MISSING'),
        fails('readDir', '/nonexistent/.ssh', 'CHK_ERR_SOURCE_MISSING'),
        dir('/etc/ssh', []),
      ],
      { minUid: 1, includeRoot: false },
    );
    // minUid 1 takes daemon (home /usr/sbin) and every user; alice's home is scanned for alice only.
    expect(facts.scope).toEqual({ minUid: 1, includeRoot: false });
    expect(facts.accounts.map((a) => a.name)).toEqual(['daemon', 'alice', 'alice2', 'odd', 'nobody']);
  });

  it('is unknown with the error when /etc/passwd cannot be read (through the runner)', async () => {
    const io = replay('linux', [fails('readFile', '/etc/passwd', 'CHK_ERR_PERMISSION')]);
    const finding = await runCheck(credentialAge, { io });
    io.assertComplete();
    expect(finding.status).toBe('unknown');
    expect(finding.reasons).toEqual([expect.objectContaining({ code: 'CHK_ERR_PERMISSION', subject: '/etc/passwd' })]);
  });

  it('stops with CHK_ERR_TIMEOUT once its time is up', async () => {
    const ctrl = new AbortController();
    ctrl.abort();
    const io = replay('linux', [file('/etc/passwd', 'root:x:0:0:root:/root:/bin/bash\n'), file('/etc/shadow', 'root:*:1::::::\n')]);
    expect(await codeOf(collectAt({ io, platform: 'linux', config: configSchema.parse({}), signal: ctrl.signal }, NOW))).toBe('CHK_ERR_TIMEOUT');
  });
});

describe('the spec’s collect reads the agent clock', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('stamps observedAt and computes ages from Date.now()', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date('2030-01-01T00:00:00Z'));
    const io = replay('linux', [
      file('/etc/passwd', 'root:x:0:0:root:/root:/bin/bash\n'),
      file('/etc/shadow', 'root:$6$s$h:20000:0:99999:7:::\n'),
      fails('readDir', '/root/.ssh', 'CHK_ERR_SOURCE_MISSING'),
      fails('readDir', '/etc/ssh', 'CHK_ERR_SOURCE_MISSING'),
    ]);
    const facts = await credentialAge.collect({ io, platform: 'linux', config: configSchema.parse({}), signal: new AbortController().signal });
    io.assertComplete();
    expect(facts.observedAt).toBe('2030-01-01T00:00:00.000Z');
    expect(facts.credentials[0]?.ageDays).toBe(Date.parse('2030-01-01T00:00:00Z') / DAY - 20000);
  });
});

const PLIST_HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n<plist version="1.0">\n';
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const userRecord = (name: string, uid: number, home: string, extra = '') =>
  `<dict><key>dsAttrTypeStandard:RecordName</key><array><string>${name}</string></array><key>dsAttrTypeStandard:UniqueID</key><array><string>${uid}</string></array><key>dsAttrTypeStandard:NFSHomeDirectory</key><array><string>${home}</string></array>${extra}</dict>`;
const DSCL_OUT = `${PLIST_HEAD}<array>${userRecord(
  'alice',
  501,
  '/Users/alice',
  `<key>dsAttrTypeStandard:AuthenticationAuthority</key><array><string>;ShadowHash;HASHLIST:&lt;SALTED-SHA512-PBKDF2&gt;</string></array><key>dsAttrTypeNative:accountPolicyData</key><array><string>${esc(
    `${PLIST_HEAD}<dict><key>passwordLastSetTime</key><real>${(NOW - 100 * DAY) / 1000}</real></dict></plist>`,
  )}</string></array>`,
)}${userRecord('root', 0, '/var/root')}${userRecord('_spotlight', 89, '/var/empty')}</array></plist>\n`;
const dscl = (over: Partial<Extract<RecordedCall, { op: 'run' }>> = {}): RecordedCall => ({ op: 'run', command: DSCL, args: [...DSCL_ARGS], stdout: DSCL_OUT, ...over });

describe('credential_age collect (macOS)', () => {
  it('takes users and password dates from one dscl call, then scans homes by file', async () => {
    const facts = await collect('darwin', [
      dscl(),
      dir('/var/root/.ssh', []),
      dir('/Users/alice/.ssh', ['id_rsa', 'id_rsa.pub']),
      stat('/Users/alice/.ssh/id_rsa', 50),
      dir('/etc/ssh', ['ssh_host_ed25519_key']),
      stat('/etc/ssh/ssh_host_ed25519_key', 60),
    ]);
    expect(facts.scope).toEqual({ minUid: 500, includeRoot: true });
    expect(facts.accounts.map((a) => [a.name, a.password])).toEqual([
      ['root', 'none'],
      ['alice', 'set'],
    ]);
    expect(facts.credentials.map((c) => [c.kind, c.account, c.dateFrom, c.ageDays])).toEqual([
      ['password', 'alice', 'dscl', 100],
      ['ssh_private_key', 'alice', 'mtime', 50],
      ['ssh_host_key', null, 'mtime', 60],
    ]);
    expect(facts.sources.find((s) => s.path === DSCL)).toEqual({ path: DSCL, kinds: ['password', 'ssh_private_key', 'ssh_authorized_keys'], state: 'read' });
  });

  it('fails the whole check with CHK_ERR_COMMAND_FAILED when dscl exits non-zero', async () => {
    const io = replay('darwin', [dscl({ stdout: '', stderr: '<dscl_cmd> DS Error: -14120 (eDSPermissionError)\n', exitCode: 40 })]);
    const err = await collectAt({ io, platform: 'darwin', config: configSchema.parse({}), signal: new AbortController().signal }, NOW).catch((e: unknown) => e);
    expect(isCheckError(err) && [err.code, err.message, err.subject]).toEqual(['CHK_ERR_COMMAND_FAILED', 'exited with status 40: <dscl_cmd> DS Error: -14120 (eDSPermissionError)', DSCL]);
  });

  it('is CHK_ERR_UNRESOLVED when dscl lists no users at all', async () => {
    const io = replay('darwin', [dscl({ stdout: `${PLIST_HEAD}<array/></plist>\n` })]);
    expect(await codeOf(collectAt({ io, platform: 'darwin', config: configSchema.parse({}), signal: new AbortController().signal }, NOW))).toBe('CHK_ERR_UNRESOLVED');
  });
});

const ps = (over: Partial<Extract<RecordedCall, { op: 'run' }>> = {}): RecordedCall => ({ op: 'run', command: POWERSHELL, args: [...POWERSHELL_ARGS], ...over });

describe('credential_age collect (Windows)', () => {
  it('reports every local account and reads nothing else', async () => {
    const out = `{"Name":"alice","Enabled":true,"PasswordRequired":true,"PasswordLastSet":"\\/Date(${NOW - 10 * DAY})\\/","PasswordExpires":null,"SID":"S-1-5-21-1-2-3-1001","PrincipalSource":"Local"}`;
    const facts = await collect('win32', [ps({ stdout: out })]);
    expect(facts).toEqual({
      observedAt: '2026-11-22T12:00:00.000Z',
      scope: { minUid: null, includeRoot: true },
      accounts: [
        {
          name: 'alice',
          uid: null,
          sid: 'S-1-5-21-1-2-3-1001',
          home: null,
          shell: null,
          loginShell: null,
          password: 'set',
          enabled: true,
          passwordRequired: true,
          passwordExpires: null,
          principalSource: 'Local',
        },
      ],
      credentials: [{ kind: 'password', account: 'alice', path: null, dateFrom: 'sam', lastChanged: '2026-11-12T12:00:00.000Z', ageDays: 10, active: true, mustChange: false }],
      sources: [{ path: 'Get-LocalUser', kinds: ['password'], state: 'read' }],
    });
  });

  it('is CHK_ERR_COMMAND_FAILED when PowerShell exits non-zero, CHK_ERR_UNRESOLVED when it prints nothing', async () => {
    const ctx = (calls: RecordedCall[]) => ({ io: replay('win32', calls), platform: 'win32' as const, config: configSchema.parse({}), signal: new AbortController().signal });
    expect(await codeOf(collectAt(ctx([ps({ stdout: '', stderr: 'Get-LocalUser : The term is not recognized', exitCode: 1 })]), NOW))).toBe('CHK_ERR_COMMAND_FAILED');
    expect(await codeOf(collectAt(ctx([ps({ stdout: '' })]), NOW))).toBe('CHK_ERR_UNRESOLVED');
  });
});
