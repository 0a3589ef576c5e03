// collect() against strict replays: every call the scan makes must be listed, and every listed
// call must be made, so these tests pin down which /proc entries the scan reads and skips.
import { describe, expect, it } from 'vitest';
import { isCheckError } from '../../../checks/errors.js';
import { FD_BATCH, openPorts } from '../../../checks/open_ports/index.js';
import { ReplayHostIO, type Manifest, type RecordedCall } from '../../../checks/replay.js';
import { runCheck } from '../../../checks/runner.js';
import type { CheckErrorCode } from '../../../checks/errors.js';
import type { DirEntry, HostIO, Platform } from '../../../checks/types.js';

const TCP_HEAD = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode';
const TCP6_HEAD = '  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode';
const UDP_HEAD = `${TCP_HEAD} ref pointer drops`;
const UDP6_HEAD = `${TCP6_HEAD} ref pointer drops`;
const row = (local: string, remote: string, st: string, uid: number, inode: number) =>
  `   0: ${local} ${remote} ${st} 00000000:00000000 00:00000000 00000000 ${uid} 0 ${inode} 1 0000000000000000 100 0 0 10 0`;
const Z4 = '00000000:0000';
const Z6 = '00000000000000000000000000000000:0000';

const file = (path: string, content: string): RecordedCall => ({ op: 'readFile', path, content });
const fails = (op: 'readFile' | 'readDir' | 'readLink', path: string, error: CheckErrorCode): RecordedCall => ({ op, path, error });
const dir = (path: string, entries: DirEntry[]): RecordedCall => ({ op: 'readDir', path, entries });
const link = (path: string, target: string): RecordedCall => ({ op: 'readLink', path, target });
const pids = (...ids: number[]): RecordedCall =>
  dir('/proc', [{ name: 'self', type: 'symlink' }, { name: 'net', type: 'symlink' }, ...ids.map((p) => ({ name: String(p), type: 'dir' as const }))]);
const fds = (pid: number, n: number): RecordedCall =>
  dir(`/proc/${pid}/fd`, Array.from({ length: n }, (_, i) => ({ name: String(i), type: 'symlink' as const })));

/** Tables with one wildcard TCP listener (0.0.0.0:22, inode 100) unless given. */
function tables(over: { tcp?: string[]; tcp6?: string[] | null; udp?: string[]; udp6?: string[] | null } = {}): RecordedCall[] {
  const calls = [file('/proc/net/tcp', [TCP_HEAD, ...(over.tcp ?? [row('00000000:0016', Z4, '0A', 0, 100)])].join('\n') + '\n')];
  calls.push(over.tcp6 === null ? fails('readFile', '/proc/net/tcp6', 'CHK_ERR_SOURCE_MISSING') : file('/proc/net/tcp6', [TCP6_HEAD, ...(over.tcp6 ?? [])].join('\n') + '\n'));
  calls.push(file('/proc/net/udp', [UDP_HEAD, ...(over.udp ?? [])].join('\n') + '\n'));
  calls.push(over.udp6 === null ? fails('readFile', '/proc/net/udp6', 'CHK_ERR_SOURCE_MISSING') : file('/proc/net/udp6', [UDP6_HEAD, ...(over.udp6 ?? [])].join('\n') + '\n'));
  return calls;
}

async function collect(calls: RecordedCall[], io?: (replay: ReplayHostIO) => HostIO) {
  const replay = new ReplayHostIO({ version: 1, platform: 'linux', calls } satisfies Manifest);
  const facts = await openPorts.collect({ io: io?.(replay) ?? replay, platform: 'linux', config: openPorts.configSchema.parse({}), signal: new AbortController().signal });
  replay.assertComplete();
  return facts;
}

describe('open_ports collect (Linux)', () => {
  it('does not scan processes when nothing listens', async () => {
    const facts = await collect(tables({ tcp: [row('0200000A:0016', '0100000A:D431', '01', 0, 7)] }));
    expect(facts).toEqual({ listeners: [], missingSources: [], processScan: { pids: 0, denied: 0, vanished: 0 } });
  });

  it('stops the scan once every listener has an owner, and skips non-symlink entries', async () => {
    const facts = await collect([
      ...tables(),
      pids(1, 2, 3),
      dir('/proc/1/fd', [{ name: '0', type: 'symlink' }, { name: 'odd', type: 'file' }]),
      link('/proc/1/fd/0', '/dev/null'),
      dir('/proc/2/fd', [{ name: '0', type: 'symlink' }, { name: '3', type: 'symlink' }]),
      link('/proc/2/fd/0', 'pipe:[100]'),
      link('/proc/2/fd/3', 'socket:[100]'),
      file('/proc/2/comm', 'sshd\n'),
      // Nothing for pid 3: reading it would be an unrecorded call.
    ]);
    expect(facts.listeners).toEqual([
      { protocol: 'tcp', family: 'ipv4', address: '0.0.0.0', port: 22, scope: 'wildcard', uid: 0, inode: 100, process: { pid: 2, name: 'sshd' }, processState: 'resolved' },
    ]);
    expect(facts.processScan).toEqual({ pids: 2, denied: 0, vanished: 0 });
  });

  it(`reads a process's fds in batches of ${FD_BATCH} and stops after the batch that resolves the last socket`, async () => {
    const many = FD_BATCH * 2 + 5;
    const calls = [...tables(), pids(40), fds(40, many)];
    for (let i = 0; i < FD_BATCH; i++) calls.push(link(`/proc/40/fd/${i}`, i === 7 ? 'socket:[100]' : `anon_inode:[eventfd]`));
    calls.push(file('/proc/40/comm', 'busy\n'));
    let inFlight = 0;
    let maxInFlight = 0;
    const facts = await collect(calls, (replay) => ({
      platform: 'linux',
      readFile: (p) => replay.readFile(p),
      readDir: (p) => replay.readDir(p),
      run: (c, a) => replay.run(c, a),
      stat: (p) => replay.stat(p),
      httpGet: (u) => replay.httpGet(u),
      async readLink(p) {
        maxInFlight = Math.max(maxInFlight, ++inFlight);
        await new Promise((r) => setImmediate(r));
        inFlight--;
        return replay.readLink(p);
      },
    }));
    expect(facts.listeners[0]?.process).toEqual({ pid: 40, name: 'busy' });
    expect(maxInFlight).toBe(FD_BATCH);
  });

  it('marks owners unreadable when a process denies its fd listing or its links, and goes on', async () => {
    const facts = await collect([
      ...tables({ tcp: [row('00000000:0016', Z4, '0A', 0, 100), row('00000000:0050', Z4, '0A', 33, 200)] }),
      pids(1, 2, 3, 4),
      // pid 1 lists its fds but refuses the links (not dumpable): one denied link ends the process.
      dir('/proc/1/fd', [{ name: '0', type: 'symlink' }, { name: '1', type: 'symlink' }]),
      fails('readLink', '/proc/1/fd/0', 'CHK_ERR_PERMISSION'),
      fails('readLink', '/proc/1/fd/1', 'CHK_ERR_PERMISSION'),
      fails('readDir', '/proc/2/fd', 'CHK_ERR_PERMISSION'),
      fails('readDir', '/proc/3/fd', 'CHK_ERR_SOURCE_MISSING'),
      dir('/proc/4/fd', [{ name: '5', type: 'symlink' }, { name: '6', type: 'symlink' }]),
      fails('readLink', '/proc/4/fd/5', 'CHK_ERR_SOURCE_MISSING'),
      link('/proc/4/fd/6', 'socket:[200]'),
      file('/proc/4/comm', 'nginx\n'),
    ]);
    expect(facts.listeners.map((l) => [l.port, l.process, l.processState])).toEqual([
      [22, null, 'unreadable'],
      [80, { pid: 4, name: 'nginx' }, 'resolved'],
    ]);
    expect(facts.processScan).toEqual({ pids: 4, denied: 2, vanished: 1 });
  });

  it('says not_found when every process was readable and none holds the socket', async () => {
    const facts = await collect([...tables(), pids(7), dir('/proc/7/fd', [])]);
    expect(facts.listeners[0]).toMatchObject({ process: null, processState: 'not_found' });
  });

  it('keeps the pid when the process exits before its name is read', async () => {
    const facts = await collect([...tables(), pids(7), fds(7, 1), link('/proc/7/fd/0', 'socket:[100]'), fails('readFile', '/proc/7/comm', 'CHK_ERR_SOURCE_MISSING')]);
    expect(facts.listeners[0]).toMatchObject({ process: { pid: 7, name: null }, processState: 'resolved' });
  });

  it('keeps one entry per address, port and process for SO_REUSEPORT groups, and sorts', async () => {
    const facts = await collect([
      ...tables({
        tcp: [row('00000000:0050', Z4, '0A', 0, 302), row('00000000:0050', Z4, '0A', 0, 301), row('00000000:0016', Z4, '0A', 0, 300)],
        udp6: [row('00000000000000000000000001000000:0035', Z6, '07', 0, 400)],
      }),
      pids(10, 11),
      fds(10, 3),
      link('/proc/10/fd/0', 'socket:[300]'),
      link('/proc/10/fd/1', 'socket:[301]'),
      link('/proc/10/fd/2', 'socket:[302]'),
      fds(11, 1),
      link('/proc/11/fd/0', 'socket:[400]'),
      file('/proc/10/comm', 'multi\n'),
      file('/proc/11/comm', 'dns\n'),
    ]);
    expect(facts.listeners.map((l) => `${l.protocol}/${l.family}/${l.address}:${l.port}#${l.inode}@${l.process?.pid}`)).toEqual([
      'tcp/ipv4/0.0.0.0:22#300@10',
      'tcp/ipv4/0.0.0.0:80#301@10',
      'udp/ipv6/::1:53#400@11',
    ]);
  });

  it('records missing tcp6 and udp6 (IPv6 disabled) and still collects', async () => {
    const facts = await collect([...tables({ tcp6: null, udp6: null }), pids()]);
    expect(facts.missingSources).toEqual(['/proc/net/tcp6', '/proc/net/udp6']);
    expect(facts.listeners).toHaveLength(1);
  });

  it('lets a missing /proc/net/tcp become unknown, without reading further', async () => {
    const replay = new ReplayHostIO({ version: 1, platform: 'linux', calls: [fails('readFile', '/proc/net/tcp', 'CHK_ERR_SOURCE_MISSING')] });
    const finding = await runCheck(openPorts, { io: replay });
    replay.assertComplete();
    expect(finding).toMatchObject({ status: 'unknown', facts: null, reasons: [{ code: 'CHK_ERR_SOURCE_MISSING', subject: expect.stringContaining('/proc/net/tcp') }] });
  });

  it('does not treat an unreadable tcp6 as IPv6 being off', async () => {
    const calls = [file('/proc/net/tcp', `${TCP_HEAD}\n`), fails('readFile', '/proc/net/tcp6', 'CHK_ERR_PERMISSION')];
    const err = await collect(calls).catch((e: unknown) => e);
    expect(isCheckError(err) && err.code).toBe('CHK_ERR_PERMISSION');
  });

  it('stops scanning when its time budget is spent', async () => {
    const replay = new ReplayHostIO({ version: 1, platform: 'linux', calls: [...tables(), pids(1)] });
    const ctrl = new AbortController();
    ctrl.abort();
    const err = await openPorts.collect({ io: replay, platform: 'linux', config: openPorts.configSchema.parse({}), signal: ctrl.signal }).catch((e: unknown) => e);
    expect(isCheckError(err) && err.code).toBe('CHK_ERR_TIMEOUT');
  });

  it('runs on Linux, macOS and Windows, and refuses any other platform as unsupported', async () => {
    expect(openPorts.platforms).toEqual(['linux', 'darwin', 'win32']);
    const replay = new ReplayHostIO({ version: 1, platform: 'linux', calls: [] });
    const other = 'aix' as unknown as Platform;
    const err = await openPorts.collect({ io: replay, platform: other, config: openPorts.configSchema.parse({}), signal: new AbortController().signal }).catch((e: unknown) => e);
    expect(isCheckError(err) && err.code).toBe('CHK_ERR_UNSUPPORTED_PLATFORM');
    replay.assertComplete();
  });

  it('declares every path it reads', () => {
    const paths = (openPorts.sources.linux ?? []).map((s) => (s.kind === 'file' ? s.path : s.command));
    expect(paths).toEqual(
      expect.arrayContaining(['/proc/net/tcp', '/proc/net/tcp6', '/proc/net/udp', '/proc/net/udp6', '/proc', '/proc/<pid>/fd', '/proc/<pid>/fd/*', '/proc/<pid>/comm']),
    );
    expect(openPorts.sources.linux?.every((s) => s.kind === 'file' && s.why.length > 0)).toBe(true);
  });
});
