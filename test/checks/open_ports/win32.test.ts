// Windows: the listener script, its JSON (PowerShell 5.1 quirks), and collect against strict replays.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { openPorts, type Facts } from '../../../checks/open_ports/index.js';
import {
  codeForPsError,
  isNothingFound,
  LISTENERS_COMMAND,
  LISTENERS_SCRIPT,
  listenersFromRows,
  parseListenersReport,
  POWERSHELL,
  type EndpointRow,
} from '../../../checks/open_ports/win32.js';
import { manifestSchema, ReplayHostIO, type RecordedCall } from '../../../checks/replay.js';
import { runCheck } from '../../../checks/runner.js';
import { listCases } from '../../helpers/fixtures.js';
import { thrownCode } from '../../helpers/check-errors.js';

const row = (LocalAddress: string, LocalPort: number, OwningProcess: number | null, ProcessName: string | null): EndpointRow => ({ LocalAddress, LocalPort, OwningProcess, ProcessName });
const NOT_FOUND = {
  Id: 'CmdletizationQuery_NotFound,Get-NetTCPConnection',
  Category: 'ObjectNotFound',
  Type: 'Microsoft.PowerShell.Cmdletization.Cim.CimJobException',
  Message: 'No matching MSFT_NetTCPConnection objects found by CIM query for instances of the ROOT/StandardCimv2/MSFT_NetTCPConnection class',
};

describe('the listener script', () => {
  it('is one Windows PowerShell command line ending in ConvertTo-Json', () => {
    expect(LISTENERS_COMMAND).toEqual({ command: 'C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe', args: ['-NoProfile', '-NonInteractive', '-Command', LISTENERS_SCRIPT] });
    expect(LISTENERS_SCRIPT.endsWith('| ConvertTo-Json -Depth 5 -Compress')).toBe(true);
    expect(LISTENERS_SCRIPT).not.toContain('"');
  });

  it('asks for listening TCP, UDP endpoints and the owners names', () => {
    expect(LISTENERS_SCRIPT).toContain('Get-NetTCPConnection -State Listen');
    expect(LISTENERS_SCRIPT).toContain('Get-NetUDPEndpoint');
    expect(LISTENERS_SCRIPT).toContain('Get-Process -Id $ids');
    for (const p of ['LocalAddress', 'ProcessName']) expect(LISTENERS_SCRIPT).toContain(`${p} = `);
  });

  it('is the command declared in sources.win32, and every win32 fixture runs exactly that', () => {
    expect(openPorts.sources.win32).toEqual([expect.objectContaining({ kind: 'command', command: POWERSHELL, args: LISTENERS_COMMAND.args })]);
    const cases = listCases('open_ports').filter((c) => c.platform === 'win32');
    expect(cases.length).toBeGreaterThan(0);
    for (const c of cases) {
      for (const call of manifestSchema.parse(JSON.parse(readFileSync(path.join(c.dir, 'manifest.json'), 'utf8'))).calls) {
        expect(call.op, c.name).toBe('run');
        if (call.op === 'run') expect([call.command, ...call.args], c.name).toEqual([LISTENERS_COMMAND.command, ...LISTENERS_COMMAND.args]);
      }
    }
  });
});

describe('parseListenersReport', () => {
  it('accepts one row written as an object, and null lists', () => {
    const r = parseListenersReport(JSON.stringify({ Tcp: row('0.0.0.0', 22, 3000, 'sshd'), TcpError: null, Udp: null, UdpError: null }));
    expect(r).toEqual({ Tcp: [row('0.0.0.0', 22, 3000, 'sshd')], TcpError: null, Udp: [], UdpError: null });
  });

  it('tolerates a byte order mark and CRLF', () => {
    expect(parseListenersReport(`\uFEFF${JSON.stringify({ Tcp: [], Udp: [] })}\r\n`)).toEqual({ Tcp: [], TcpError: null, Udp: [], UdpError: null });
  });

  it.each([
    ['empty output (a null result)', ''],
    ['text', 'Get-NetTCPConnection : Access denied'],
    ['a port out of range', JSON.stringify({ Tcp: [row('0.0.0.0', 70000, 1, 'x')], Udp: [] })],
    ['a missing address', JSON.stringify({ Tcp: [{ LocalPort: 22 }], Udp: [] })],
  ])('refuses %s with CHK_ERR_PARSE', (_what, stdout) => {
    expect(thrownCode(() => parseListenersReport(stdout))).toBe('CHK_ERR_PARSE');
  });
});

describe('listenersFromRows', () => {
  it('reads Windows addresses, wildcards and loopbacks of both families', () => {
    const out = listenersFromRows([row('0.0.0.0', 135, 1012, 'svchost'), row('::', 135, 1012, 'svchost'), row('127.0.0.1', 6463, 9120, 'Discord'), row('::1', 1900, 3310, 'svchost'), row('FE80::1%12', 546, 2000, 'svchost'), row('192.168.10.21', 139, 4, 'System')], 'tcp');
    expect(out.map((l) => [l.family, l.address, l.port, l.scope, l.uid, l.inode])).toEqual([
      ['ipv4', '0.0.0.0', 135, 'wildcard', null, null],
      ['ipv6', '::', 135, 'wildcard', null, null],
      ['ipv4', '127.0.0.1', 6463, 'loopback', null, null],
      ['ipv6', '::1', 1900, 'loopback', null, null],
      ['ipv6', 'fe80::1%12', 546, 'specific', null, null],
      ['ipv4', '192.168.10.21', 139, 'specific', null, null],
    ]);
  });

  it('keeps a pid whose name is unknown, and says not_found for pid 0', () => {
    const out = listenersFromRows([row('0.0.0.0', 8080, 6140, null), row('0.0.0.0', 8081, 6141, ''), row('0.0.0.0', 8082, 0, 'Idle'), row('0.0.0.0', 8083, null, null)], 'tcp');
    expect(out.map((l) => [l.process, l.processState])).toEqual([
      [{ pid: 6140, name: null }, 'resolved'],
      [{ pid: 6141, name: null }, 'resolved'],
      [null, 'not_found'],
      [null, 'not_found'],
    ]);
  });

  it('skips port 0 and refuses an address it cannot read', () => {
    expect(listenersFromRows([row('0.0.0.0', 0, 4, 'System')], 'udp')).toEqual([]);
    expect(thrownCode(() => listenersFromRows([row('*', 22, 4, 'System')], 'tcp'))).toBe('CHK_ERR_PARSE');
  });
});

describe('PowerShell errors', () => {
  it('tells "nothing found" from a failure', () => {
    expect(isNothingFound(NOT_FOUND)).toBe(true);
    expect(isNothingFound({ ...NOT_FOUND, Id: 'CommandNotFoundException' })).toBe(false);
  });

  it('maps errors to check codes', () => {
    expect(codeForPsError({ Id: 'x', Category: 'PermissionDenied', Type: 'x', Message: 'x' })).toBe('CHK_ERR_PERMISSION');
    expect(codeForPsError({ Id: 'x', Category: 'NotSpecified', Type: 'Microsoft.Management.Infrastructure.CimException', Message: 'Access denied ' })).toBe('CHK_ERR_PERMISSION');
    expect(codeForPsError({ Id: 'CommandNotFoundException', Category: 'ObjectNotFound', Type: 'System.Management.Automation.CommandNotFoundException', Message: 'x' })).toBe('CHK_ERR_SOURCE_MISSING');
    expect(codeForPsError({ Id: 'x', Category: 'NotSpecified', Type: 'Microsoft.Management.Infrastructure.CimException', Message: 'Invalid class' })).toBe('CHK_ERR_COMMAND_FAILED');
  });
});

const ps = (stdout: string, exitCode = 0, stderr = ''): RecordedCall => ({ op: 'run', command: POWERSHELL, args: [...LISTENERS_COMMAND.args], stdout, exitCode, stderr });
const report = (over: Record<string, unknown>) => JSON.stringify({ Tcp: [], TcpError: null, Udp: [], UdpError: null, ...over });

async function check(calls: RecordedCall[], config?: unknown) {
  const io = new ReplayHostIO({ version: 1, platform: 'win32', calls });
  const finding = await runCheck(openPorts, { io, configs: config === undefined ? {} : { open_ports: config } });
  io.assertComplete();
  return finding;
}

describe('open_ports collect on Windows', () => {
  it('reads "no TCP listener" (the NotFound error of -State Listen) as none, and goes on to UDP', async () => {
    const f = await check([ps(report({ TcpError: NOT_FOUND, Udp: [row('0.0.0.0', 5353, 2024, 'svchost')] }))]);
    expect(f.status).toBe('fail');
    expect((f.facts as Facts).listeners.map((l) => `${l.protocol}/${l.address}:${l.port}`)).toEqual(['udp/0.0.0.0:5353']);
  });

  it('does not read a denied or missing cmdlet as "no listeners"', async () => {
    expect((await check([ps(report({ TcpError: { ...NOT_FOUND, Id: 'x', Category: 'PermissionDenied' } }))])).reasons[0]?.code).toBe('CHK_ERR_PERMISSION');
    expect((await check([ps(report({ UdpError: { Id: 'x', Category: 'NotSpecified', Type: 'CimException', Message: 'Provider load failure' } }))])).reasons[0]?.code).toBe(
      'CHK_ERR_COMMAND_FAILED',
    );
    expect((await check([ps('', 1, 'powershell.exe : not found')])).reasons[0]?.code).toBe('CHK_ERR_COMMAND_FAILED');
    expect((await check([ps('')])).reasons[0]?.code).toBe('CHK_ERR_PARSE');
  });

  it('dedupes and sorts as on Linux, and judges with the same allow-list', async () => {
    const tcp = [row('::', 445, 4, 'System'), row('0.0.0.0', 445, 4, 'System'), row('0.0.0.0', 445, 4, 'System'), row('0.0.0.0', 135, 1012, 'svchost')];
    const f = await check([ps(report({ Tcp: tcp }))], { allow: [{ protocol: 'tcp', port: 445, process: 'System' }] });
    expect((f.facts as Facts).listeners.map((l) => `${l.family}/${l.port}/${l.process?.name}`)).toEqual(['ipv4/135/svchost', 'ipv4/445/System', 'ipv6/445/System']);
    expect(f.reasons.map((r) => `${r.code} ${r.subject}`)).toEqual(['CHK_FAIL_LISTENER_NOT_ALLOWED tcp/0.0.0.0:135 (svchost)']);
  });
});
