// collect() against strict replays (every call must be recorded, every recorded call used), the
// declared sources against what the fixtures run, and one look at this machine.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { RealHostIO } from '../../../checks/host-io.js';
import { ReplayHostIO, manifestSchema, type RecordedCall } from '../../../checks/replay.js';
import { runCheck } from '../../../checks/runner.js';
import type { HostIO, Platform } from '../../../checks/types.js';
import { configSchema, vpn, WIN32_SCRIPTS, type Facts } from '../../../checks/vpn/index.js';
import { listCases } from '../../helpers/fixtures.js';

const file = (p: string, content: string): RecordedCall => ({ op: 'readFile', path: p, content });
const fails = (op: 'readFile' | 'readDir', p: string, error: 'CHK_ERR_SOURCE_MISSING' | 'CHK_ERR_PERMISSION'): RecordedCall => ({ op, path: p, error });

function iface(name: string, type = '1', flags = '0x1003'): RecordedCall[] {
  const d = `/sys/class/net/${name}`;
  return [
    file(`${d}/type`, `${type}\n`),
    file(`${d}/flags`, `${flags}\n`),
    file(`${d}/operstate`, 'up\n'),
    file(`${d}/uevent`, `INTERFACE=${name}\n`),
    fails('readFile', `${d}/tun_flags`, 'CHK_ERR_SOURCE_MISSING'),
  ];
}
const ROUTE = 'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\neth0\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n';

function linuxHost(over: { sysnet?: RecordedCall[]; v6?: RecordedCall; trie?: RecordedCall; proc?: RecordedCall[]; extra?: RecordedCall[] } = {}): RecordedCall[] {
  return [
    { op: 'readDir', path: '/sys/class/net', entries: [{ name: 'eth0', type: 'symlink' }] },
    ...(over.sysnet ?? iface('eth0')),
    file('/proc/net/route', ROUTE),
    over.v6 ?? file('/proc/net/ipv6_route', ''),
    over.trie ?? file('/proc/net/fib_trie', 'Main:\n'),
    ...(over.proc ?? [{ op: 'readDir', path: '/proc', entries: [] }]),
    ...(over.extra ?? []),
  ];
}

async function collect(platform: Platform, calls: RecordedCall[], config: unknown = {}, wrap?: (io: HostIO) => HostIO): Promise<Facts> {
  const replay = new ReplayHostIO({ version: 1, platform, calls });
  const io = wrap?.(replay) ?? replay;
  const facts = await vpn.collect({ io, platform, config: configSchema.parse(config), signal: new AbortController().signal });
  replay.assertComplete();
  return vpn.factsSchema.parse(facts);
}

describe('vpn collect (Linux)', () => {
  it('skips an interface that disappears while it is read, without reading the rest of it', async () => {
    const facts = await collect('linux', linuxHost({
      sysnet: [...iface('eth0'), fails('readFile', '/sys/class/net/tun0/type', 'CHK_ERR_SOURCE_MISSING')],
    }).map((c) => (c.op === 'readDir' && c.path === '/sys/class/net' ? { ...c, entries: [{ name: 'eth0', type: 'symlink' as const }, { name: 'tun0', type: 'symlink' as const }] } : c)));
    expect(facts.interfaces.map((i) => i.name)).toEqual(['eth0']);
  });

  it('does not take regular files in /sys/class/net (bonding_masters) for interfaces', async () => {
    const facts = await collect('linux', linuxHost().map((c) => (c.op === 'readDir' && c.path === '/sys/class/net' ? { ...c, entries: [{ name: 'bonding_masters', type: 'file' as const }, { name: 'eth0', type: 'symlink' as const }] } : c)));
    expect(facts.interfaces.map((i) => i.name)).toEqual(['eth0']);
  });

  it('is unknown when an interface attribute may not be read', async () => {
    const io = new ReplayHostIO({ version: 1, platform: 'linux', calls: [{ op: 'readDir', path: '/sys/class/net', entries: [{ name: 'eth0', type: 'symlink' }] }, file('/sys/class/net/eth0/type', '1\n'), fails('readFile', '/sys/class/net/eth0/flags', 'CHK_ERR_PERMISSION')] });
    const finding = await runCheck(vpn, { io });
    io.assertComplete();
    expect(finding.status).toBe('unknown');
    expect(finding.reasons).toEqual([expect.objectContaining({ code: 'CHK_ERR_PERMISSION', subject: '/sys/class/net/eth0/flags' })]);
  });

  it('records a missing ipv6_route (IPv6 disabled) and an unreadable fib_trie, and goes on', async () => {
    const facts = await collect('linux', linuxHost({ v6: fails('readFile', '/proc/net/ipv6_route', 'CHK_ERR_SOURCE_MISSING'), trie: fails('readFile', '/proc/net/fib_trie', 'CHK_ERR_PERMISSION') }));
    expect(facts.missingSources).toEqual(['/proc/net/ipv6_route']);
    expect(facts.otherRouteTables).toEqual({ readable: false, error: 'CHK_ERR_PERMISSION', tables: [] });
    expect(facts.routes).toEqual([expect.objectContaining({ family: 'ipv4', destination: '0.0.0.0/0', gateway: '192.168.1.1', interface: 'eth0', metric: 100 })]);
  });

  it('is unknown when ipv6_route exists but may not be read', async () => {
    const io = new ReplayHostIO({ version: 1, platform: 'linux', calls: linuxHost({ v6: fails('readFile', '/proc/net/ipv6_route', 'CHK_ERR_PERMISSION') }).slice(0, 8) });
    const finding = await runCheck(vpn, { io });
    io.assertComplete();
    expect(finding.reasons.map((r) => r.code)).toEqual(['CHK_ERR_PERMISSION']);
  });

  it('keeps going without client evidence when /proc cannot be listed', async () => {
    const facts = await collect('linux', linuxHost({ proc: [fails('readDir', '/proc', 'CHK_ERR_PERMISSION')] }));
    expect(facts.clients).toEqual({ error: 'CHK_ERR_PERMISSION', found: [] });
  });

  it('reads only numeric /proc entries and skips processes that exit', async () => {
    const facts = await collect('linux', linuxHost({
      proc: [
        { op: 'readDir', path: '/proc', entries: [{ name: 'self', type: 'symlink' }, { name: 'sys', type: 'dir' }, { name: '30', type: 'dir' }, { name: '4', type: 'dir' }] },
        fails('readFile', '/proc/4/comm', 'CHK_ERR_SOURCE_MISSING'),
        file('/proc/30/comm', 'charon\n'),
      ],
    }));
    expect(facts.clients).toEqual({ error: null, found: [{ client: 'strongSwan', process: 'charon', pid: 30 }] });
  });

  it('stops with a timeout when its time is up', async () => {
    const ctrl = new AbortController();
    ctrl.abort();
    const io = new ReplayHostIO({ version: 1, platform: 'linux', calls: linuxHost() });
    await expect(vpn.collect({ io, platform: 'linux', config: configSchema.parse({}), signal: ctrl.signal })).rejects.toMatchObject({ code: 'CHK_ERR_TIMEOUT' });
  });
});

describe('vpn collect: egress probe', () => {
  const URL = 'https://probe.example.com/ip';
  const config = { egressProbe: { url: URL, allowedCidrs: ['203.0.113.0/24'], timeoutMs: 1500 } };

  it('passes the configured timeout to httpGet and keeps the address it reports', async () => {
    const seen: unknown[] = [];
    const facts = await collect('linux', linuxHost({ extra: [{ op: 'httpGet', url: URL, status: 200, body: '203.0.113.5' }] }), config, (io) => ({
      platform: io.platform,
      readFile: (p) => io.readFile(p),
      readDir: (p) => io.readDir(p),
      readLink: (p) => io.readLink(p),
      stat: (p) => io.stat(p),
      run: (c, a) => io.run(c, a),
      httpGet: (u, o) => {
        seen.push(o?.timeoutMs);
        return io.httpGet(u, o);
      },
    }));
    expect(seen).toEqual([1500]);
    expect(facts.probe).toEqual({ url: URL, httpStatus: 200, address: '203.0.113.5', error: null });
  });

  it('records an HTTP error status and an answer without an address as probe errors', async () => {
    const http503 = await collect('linux', linuxHost({ extra: [{ op: 'httpGet', url: URL, status: 503, body: 'busy' }] }), config);
    expect(http503.probe).toEqual({ url: URL, httpStatus: 503, address: null, error: { code: 'CHK_ERR_NETWORK', message: 'the probe answered HTTP 503' } });
    const html = await collect('linux', linuxHost({ extra: [{ op: 'httpGet', url: URL, status: 200, body: '<html></html>' }] }), config);
    expect(html.probe?.error?.code).toBe('CHK_ERR_PARSE');
  });
});

describe('vpn collect (macOS and Windows)', () => {
  const NETSTAT = 'Routing tables\n\nInternet:\nDestination Gateway Flags Netif Expire\ndefault link#20 UCSg utun3\n';
  it('keeps going without client evidence when ps fails', async () => {
    const facts = await collect('darwin', [
      { op: 'run', command: '/sbin/ifconfig', args: ['-a'], stdout: 'utun3: flags=8051<UP,POINTOPOINT,RUNNING,MULTICAST> mtu 1420\n' },
      { op: 'run', command: '/usr/sbin/netstat', args: ['-rn'], stdout: NETSTAT },
      { op: 'run', command: '/usr/sbin/scutil', args: ['--nc', 'list'], stdout: 'Available network connection services in the current set (*=enabled):\n' },
      { op: 'run', command: '/bin/ps', args: ['-axo', 'comm'], stdout: '', stderr: 'ps: sysctl failed', exitCode: 1 },
    ]);
    expect(facts.clients).toEqual({ error: 'CHK_ERR_COMMAND_FAILED', found: [] });
    expect(vpn.evaluate(facts, configSchema.parse({})).status).toBe('pass');
  });

  it('adds a connected built-in VPN as a tunnel interface, and marks an adapter of that name', async () => {
    const PS = 'C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe';
    const cmd = (script: string, stdout: string, extra: Partial<RecordedCall> = {}): RecordedCall => ({ op: 'run', command: PS, args: ['-NoProfile', '-NonInteractive', '-Command', script], stdout, ...extra } as RecordedCall);
    const facts = await collect('win32', [
      cmd(WIN32_SCRIPTS.adapters, JSON.stringify({ Name: 'Branch VPN', InterfaceDescription: 'Branch VPN', ifIndex: 44, Status: 'Up' })),
      cmd(WIN32_SCRIPTS.vpnConnections, JSON.stringify([{ Name: 'Branch VPN', ConnectionStatus: 'Connected' }, { Name: 'Head office', ConnectionStatus: 'Connected' }, { Name: 'Old', ConnectionStatus: 'Disconnected' }])),
      cmd(WIN32_SCRIPTS.routes, ''),
      { op: 'run', command: PS, args: ['-NoProfile', '-NonInteractive', '-Command', WIN32_SCRIPTS.processes], error: 'CHK_ERR_TIMEOUT' },
    ]).catch((e: unknown) => e);
    // A timed-out optional source is still a timeout: the check's budget is spent.
    expect(facts).toMatchObject({ code: 'CHK_ERR_TIMEOUT' });
    const ok = await collect('win32', [
      cmd(WIN32_SCRIPTS.adapters, JSON.stringify({ Name: 'Branch VPN', InterfaceDescription: 'Branch VPN', ifIndex: 44, Status: 'Up' })),
      cmd(WIN32_SCRIPTS.vpnConnections, JSON.stringify([{ Name: 'Branch VPN', ConnectionStatus: 'Connected' }, { Name: 'Head office', ConnectionStatus: 'Connected' }, { Name: 'Old', ConnectionStatus: 'Disconnected' }])),
      cmd(WIN32_SCRIPTS.routes, ''),
      cmd(WIN32_SCRIPTS.processes, '', { stderr: 'denied', exitCode: 1 }),
    ]);
    expect(ok.interfaces.map((i) => [i.name, i.tunnelKind, i.evidence])).toEqual([
      ['Branch VPN', 'ras-vpn', 'Get-VpnConnection: Connected'],
      ['Head office', 'ras-vpn', 'Get-VpnConnection: Connected'],
    ]);
    expect(ok.clients.error).toBe('CHK_ERR_COMMAND_FAILED');
  });
});

describe('vpn sources', () => {
  const cases = listCases('vpn').map((c) => ({ ...c, manifest: manifestSchema.parse(JSON.parse(readFileSync(path.join(c.dir, 'manifest.json'), 'utf8'))) }));
  const key = (command: string, args: readonly string[]) => JSON.stringify([command, ...args]);

  it.each(['darwin', 'win32'] as const)('on %s, every command the fixtures run is declared exactly, and every declared command is run somewhere', (platform) => {
    const declared = new Set((vpn.sources[platform] ?? []).flatMap((s) => (s.kind === 'command' ? [key(s.command, s.args)] : [])));
    const run = new Set(cases.filter((c) => c.platform === platform).flatMap((c) => c.manifest.calls.flatMap((call) => (call.op === 'run' ? [key(call.command, call.args)] : []))));
    expect([...run].filter((k) => !declared.has(k))).toEqual([]);
    expect([...declared].filter((k) => !run.has(k))).toEqual([]);
  });

  it('declares every Linux path the fixtures read, and runs no command on Linux', () => {
    const patterns = (vpn.sources.linux ?? []).map((s) => {
      expect(s.kind).toBe('file');
      const p = s.kind === 'file' ? s.path : '';
      return new RegExp(`^${p.replace(/<if>|<pid>/g, '[^/]+')}$`);
    });
    for (const c of cases.filter((x) => x.platform === 'linux')) {
      for (const call of c.manifest.calls) {
        expect(call.op, c.name).not.toBe('run');
        if (call.op === 'readFile' || call.op === 'readDir') expect(patterns.some((re) => re.test(call.path)), `${c.name}: ${call.path}`).toBe(true);
      }
    }
  });

  it('ends every PowerShell script in ConvertTo-Json, wrapping results in @(...)', () => {
    for (const script of Object.values(WIN32_SCRIPTS)) {
      expect(script).toMatch(/@\(.*\) \| ConvertTo-Json -Depth 5 -Compress$/);
    }
  });
});

describe.skipIf(process.platform !== 'linux')('vpn on this machine', () => {
  it('lists the interfaces /sys/class/net holds and the IPv4 routes /proc/net/route holds', async () => {
    const finding = await runCheck(vpn, { io: new RealHostIO() });
    expect(finding.facts, JSON.stringify(finding.reasons)).not.toBeNull();
    const facts = finding.facts as Facts;
    expect(facts.interfaces.map((i) => i.name).sort()).toEqual(readdirSync('/sys/class/net').sort());
    const rows = readFileSync('/proc/net/route', 'utf8').trim().split('\n').slice(1).filter((l) => (parseInt(l.split('\t')[3] ?? '0', 16) & 1) === 1);
    expect(facts.routes.filter((r) => r.family === 'ipv4')).toHaveLength(rows.length);
  });
});
