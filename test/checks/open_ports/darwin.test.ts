// macOS: lsof's field output parsed on literal strings, and collect against strict replays.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ID_U, listenersFromLsof, LSOF_TCP, LSOF_UDP, parseLsofFields, parseUid, splitLsofName } from '../../../checks/open_ports/darwin.js';
import { openPorts } from '../../../checks/open_ports/index.js';
import { manifestSchema, ReplayHostIO, type RecordedCall } from '../../../checks/replay.js';
import { runCheck } from '../../../checks/runner.js';
import { listCases } from '../../helpers/fixtures.js';
import { thrownCode } from '../../helpers/check-errors.js';

const SSH = 'p1\nclaunchd\nu0\nf41\ntIPv6\nPTCP\nn*:22\nTST=LISTEN\nTQR=0\nTQS=0\nf42\ntIPv4\nPTCP\nn*:22\nTST=LISTEN\nTQR=0\nTQS=0\n';

describe('parseLsofFields', () => {
  it('gives each file the fields of its process', () => {
    expect(parseLsofFields(`${SSH}p904\ncpostgres\nu501\nf7\ntIPv6\nPTCP\nn[::1]:5432\nTST=LISTEN\n`)).toEqual([
      { pid: 1, command: 'launchd', uid: 0, fd: '41', type: 'IPv6', protocol: 'TCP', name: '*:22', tcpState: 'LISTEN' },
      { pid: 1, command: 'launchd', uid: 0, fd: '42', type: 'IPv4', protocol: 'TCP', name: '*:22', tcpState: 'LISTEN' },
      { pid: 904, command: 'postgres', uid: 501, fd: '7', type: 'IPv6', protocol: 'TCP', name: '[::1]:5432', tcpState: 'LISTEN' },
    ]);
  });

  it('keeps command names with spaces, skips unknown fields and blank lines, and accepts CRLF', () => {
    const files = parseLsofFields('p1377\r\ncGoogle Chrome He\r\nu501\r\nR1\r\n\r\nf27\r\na \r\ntIPv4\r\nPUDP\r\nn192.168.1.23:58744->142.250.74.78:443\r\n');
    expect(files).toEqual([
      { pid: 1377, command: 'Google Chrome He', uid: 501, fd: '27', type: 'IPv4', protocol: 'UDP', name: '192.168.1.23:58744->142.250.74.78:443', tcpState: null },
    ]);
  });

  it('answers no files for empty output, and refuses fields before a process or bad numbers', () => {
    expect(parseLsofFields('')).toEqual([]);
    expect(thrownCode(() => parseLsofFields('f3\nn*:22\n'))).toBe('CHK_ERR_PARSE');
    expect(thrownCode(() => parseLsofFields('pabc\n'))).toBe('CHK_ERR_PARSE');
    expect(thrownCode(() => parseLsofFields('p1\nuroot\n'))).toBe('CHK_ERR_PARSE');
  });
});

describe('splitLsofName', () => {
  it.each([
    ['*:22', { host: '*', port: '22', connected: false }],
    ['127.0.0.1:631', { host: '127.0.0.1', port: '631', connected: false }],
    ['[::1]:631', { host: '::1', port: '631', connected: false }],
    ['[fe80:4::aede:48ff:fe00:1122]:123', { host: 'fe80:4::aede:48ff:fe00:1122', port: '123', connected: false }],
    ['*:*', { host: '*', port: '*', connected: false }],
    ['10.0.0.2:55000->10.0.0.1:53', { host: '10.0.0.2', port: '55000', connected: true }],
    ['[::1]:5000->[::1]:61000', { host: '::1', port: '5000', connected: true }],
  ])('%s', (name, want) => {
    expect(splitLsofName(name)).toEqual(want);
  });

  it.each(['', '::1:631', 'localhost', '*:ssh', '[::1]'])('refuses %j', (name) => {
    expect(splitLsofName(name)).toBeNull();
  });
});

describe('listenersFromLsof', () => {
  it('turns the wildcard into 0.0.0.0 or :: by the socket type', () => {
    expect(listenersFromLsof(parseLsofFields(SSH), 'tcp').map((l) => [l.family, l.address, l.port, l.scope, l.uid, l.inode, l.process, l.processState])).toEqual([
      ['ipv6', '::', 22, 'wildcard', 0, null, { pid: 1, name: 'launchd' }, 'resolved'],
      ['ipv4', '0.0.0.0', 22, 'wildcard', 0, null, { pid: 1, name: 'launchd' }, 'resolved'],
    ]);
  });

  it('keeps only TCP sockets in LISTEN', () => {
    const files = parseLsofFields('p5\ncx\nu0\nf1\ntIPv4\nPTCP\nn10.0.0.2:22->10.0.0.9:50000\nTST=ESTABLISHED\nf2\ntIPv4\nPTCP\nn127.0.0.1:8080\nTST=LISTEN\n');
    expect(listenersFromLsof(files, 'tcp').map((l) => `${l.address}:${l.port}/${l.scope}`)).toEqual(['127.0.0.1:8080/loopback']);
  });

  it('skips connected and unbound UDP sockets, and files of the other protocol', () => {
    const files = parseLsofFields(
      'p379\ncmDNSResponder\nu65\nf7\ntIPv4\nPUDP\nn*:5353\nf8\ntIPv6\nPUDP\nn*:5353\np688\ncrapportd\nu501\nf5\ntIPv4\nPUDP\nn*:*\nf6\ntIPv4\nPUDP\nn10.0.0.2:55000->10.0.0.1:53\nf9\ntIPv4\nPTCP\nn*:49161\nTST=LISTEN\n',
    );
    expect(listenersFromLsof(files, 'udp').map((l) => `${l.family}/${l.address}:${l.port}/${l.process?.name}/${l.uid}`)).toEqual([
      'ipv4/0.0.0.0:5353/mDNSResponder/65',
      'ipv6/:::5353/mDNSResponder/65',
    ]);
  });

  it('refuses an address it cannot read, rather than dropping the listener', () => {
    const files = parseLsofFields('p5\ncx\nu0\nf1\ntIPv4\nPTCP\nnlocalhost:ssh\nTST=LISTEN\n');
    expect(thrownCode(() => listenersFromLsof(files, 'tcp'))).toBe('CHK_ERR_PARSE');
    const mismatched = parseLsofFields('p5\ncx\nu0\nf1\ntIPv4\nPTCP\nn[::1]:22\nTST=LISTEN\n');
    expect(thrownCode(() => listenersFromLsof(mismatched, 'tcp'))).toBe('CHK_ERR_PARSE');
  });
});

describe('parseUid', () => {
  it('reads one decimal uid', () => {
    expect(parseUid('0\n')).toBe(0);
    expect(parseUid('501\n')).toBe(501);
    expect(parseUid('')).toBeNull();
    expect(parseUid('uid=0(root)')).toBeNull();
  });
});

const run = (c: { command: string; args: readonly string[] }, over: Partial<Extract<RecordedCall, { op: 'run' }>>): RecordedCall => ({ op: 'run', command: c.command, args: [...c.args], ...over });

async function check(calls: RecordedCall[], config?: unknown) {
  const io = new ReplayHostIO({ version: 1, platform: 'darwin', calls });
  const finding = await runCheck(openPorts, { io, configs: config === undefined ? {} : { open_ports: config } });
  io.assertComplete();
  return finding;
}

describe('open_ports collect on macOS', () => {
  it('does not run lsof unless the agent is root, and answers CHK_ERR_PERMISSION', async () => {
    const f = await check([run(ID_U, { stdout: '501\n' })]);
    expect(f).toMatchObject({ status: 'unknown', facts: null, reasons: [{ code: 'CHK_ERR_PERMISSION' }] });
    expect(f.reasons[0]?.message).toContain('uid 501');
  });

  it('answers COMMAND_FAILED when it cannot tell which user it runs as', async () => {
    expect((await check([run(ID_U, { stdout: '', exitCode: 1 })])).reasons[0]?.code).toBe('CHK_ERR_COMMAND_FAILED');
    expect((await check([run(ID_U, { stdout: 'root\n' })])).reasons[0]?.code).toBe('CHK_ERR_COMMAND_FAILED');
  });

  it('reads a silent exit 1 from lsof as "nothing matched"', async () => {
    const f = await check([run(ID_U, { stdout: '0\n' }), run(LSOF_TCP, { stdout: '', exitCode: 1 }), run(LSOF_UDP, { stdout: '', exitCode: 1 })]);
    expect(f).toMatchObject({ status: 'pass', facts: { listeners: [], missingSources: [] } });
    expect((f.facts as { processScan?: unknown }).processScan).toBeUndefined();
  });

  it('does not read an lsof error as "no listeners"', async () => {
    const f = await check([run(ID_U, { stdout: '0\n' }), run(LSOF_TCP, { stdout: SSH, exitCode: 1, stderr: 'lsof: WARNING: can not read kernel state\n' })]);
    expect(f.reasons[0]?.code).toBe('CHK_ERR_COMMAND_FAILED');
    const g = await check([run(ID_U, { stdout: '0\n' }), run(LSOF_TCP, { stdout: SSH }), run(LSOF_UDP, { stdout: '', exitCode: 2 })]);
    expect(g.reasons[0]?.code).toBe('CHK_ERR_COMMAND_FAILED');
  });

  it('keeps one entry for a socket several fds of one process hold, sorted like Linux', async () => {
    const udp = 'p379\ncmDNSResponder\nu65\nf7\ntIPv4\nPUDP\nn*:5353\nf27\ntIPv4\nPUDP\nn*:5353\nf8\ntIPv6\nPUDP\nn*:5353\n';
    const f = await check([run(ID_U, { stdout: '0\n' }), run(LSOF_TCP, { stdout: SSH }), run(LSOF_UDP, { stdout: udp })], { allow: [{ protocol: 'tcp', port: 22, process: 'launchd' }] });
    const facts = f.facts as { listeners: { protocol: string; family: string; port: number }[] };
    expect(facts.listeners.map((l) => `${l.protocol}/${l.family}/${l.port}`)).toEqual(['tcp/ipv4/22', 'tcp/ipv6/22', 'udp/ipv4/5353', 'udp/ipv6/5353']);
    expect(f.status).toBe('fail');
    expect(f.reasons.map((r) => r.subject)).toEqual(['udp/0.0.0.0:5353 (mDNSResponder)', 'udp/[::]:5353 (mDNSResponder)']);
  });

  it('declares the three commands exactly, and every darwin fixture runs only those', () => {
    const declared = (openPorts.sources.darwin ?? []).map((s) => (s.kind === 'command' ? [s.command, ...s.args] : [s.path]));
    expect(declared).toEqual([
      ['/usr/bin/id', '-u'],
      ['/usr/sbin/lsof', '-nP', '-iTCP', '-sTCP:LISTEN', '-FpcuftPnT'],
      ['/usr/sbin/lsof', '-nP', '-iUDP', '-FpcuftPn'],
    ]);
    const cases = listCases('open_ports').filter((c) => c.platform === 'darwin');
    expect(cases.length).toBeGreaterThan(0);
    for (const c of cases) {
      for (const call of manifestSchema.parse(JSON.parse(readFileSync(path.join(c.dir, 'manifest.json'), 'utf8'))).calls) {
        expect(call.op, c.name).toBe('run');
        if (call.op === 'run') expect(declared, c.name).toContainEqual([call.command, ...call.args]);
      }
    }
  });
});
