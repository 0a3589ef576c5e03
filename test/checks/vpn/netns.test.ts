// The real vpn check, built and run as a user runs it, inside network namespaces built with
// iproute2: a tun device, a veth pair, addresses and routes from private and test ranges only.
// Nothing is sent anywhere: the check reads routes, and the namespaces have no way out.
import { execFileSync, spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Facts } from '../../../checks/vpn/index.js';
import { AGENT_CLI } from '../../helpers/processes.js';

const PREFIX = 'vcmvpn-';

function ipAvailable(): boolean {
  try {
    execFileSync('ip', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const skipReason = process.platform !== 'linux'
  ? 'network namespaces need Linux'
  : process.getuid?.() !== 0
    ? 'building network namespaces needs root (CI runs as root)'
    : !ipAvailable()
      ? 'the ip command (iproute2) is not installed'
      : null;
if (skipReason !== null) console.warn(`vpn netns test skipped: ${skipReason}`);

const ip = (...args: string[]): string => execFileSync('ip', args, { encoding: 'utf8' });

function namespaces(): string[] {
  // `ip netns list` prints "name" or "name (id: N)".
  return ip('netns', 'list').split('\n').map((l) => l.split(' ')[0] ?? '').filter((n) => n.startsWith(PREFIX));
}

function deleteOurs(): void {
  for (const ns of namespaces()) ip('netns', 'del', ns);
}

interface Finding {
  check: string;
  status: string;
  reasons: { code: string; subject?: string }[];
  facts: Facts | null;
}

/** A namespace with lo, tun0 (10.77.0.2/24, up, no process attached) and veth0/veth1 (198.18.0.2/24, fd77::2/64). */
function build(name: string, opts: { tun?: boolean; routes: string[][] }): string {
  const ns = `${PREFIX}${name}`;
  const n = (...args: string[]) => ip('-n', ns, ...args);
  ip('netns', 'add', ns);
  n('link', 'set', 'lo', 'up');
  if (opts.tun !== false) {
    n('tuntap', 'add', 'dev', 'tun0', 'mode', 'tun');
    n('link', 'set', 'tun0', 'up');
    n('addr', 'add', '10.77.0.2/24', 'dev', 'tun0');
    n('-6', 'addr', 'add', 'fd78::2/64', 'dev', 'tun0', 'nodad');
  }
  n('link', 'add', 'veth0', 'type', 'veth', 'peer', 'name', 'veth1');
  n('link', 'set', 'veth0', 'up');
  n('link', 'set', 'veth1', 'up');
  n('addr', 'add', '198.18.0.2/24', 'dev', 'veth0');
  n('-6', 'addr', 'add', 'fd77::2/64', 'dev', 'veth0', 'nodad');
  for (const r of opts.routes) n(...r);
  return ns;
}

function checkIn(ns: string): Finding {
  const run = spawnSync('ip', ['netns', 'exec', ns, process.execPath, AGENT_CLI, 'check', 'vpn', '--format', 'json'], { encoding: 'utf8' });
  const findings = JSON.parse(run.stdout) as Finding[];
  expect(findings).toHaveLength(1);
  expect(findings[0]!.check).toBe('vpn');
  // `check` exits 0 only when every check passed, 3 when one failed or is unknown.
  expect(run.status, run.stderr).toBe(findings[0]!.status === 'pass' ? 0 : 3);
  return findings[0]!;
}

const codes = (f: Finding) => [...new Set(f.reasons.map((r) => r.code))].sort();

describe.skipIf(skipReason !== null)('vpn check inside network namespaces (real kernel routes)', () => {
  beforeAll(() => deleteOurs());
  afterAll(() => {
    deleteOurs();
    expect(namespaces()).toEqual([]);
  });

  it('passes when the IPv4 and IPv6 defaults go through an up tun device, although it has no carrier', () => {
    const ns = build('tun-default', {
      routes: [
        ['route', 'add', 'default', 'dev', 'tun0'],
        ['-6', 'route', 'add', 'default', 'dev', 'tun0'],
      ],
    });
    const f = checkIn(ns);
    expect(f.status, JSON.stringify(f.reasons)).toBe('pass');
    // No process holds the tun open, so the kernel reports no carrier: "up" must come from IFF_UP.
    expect(f.facts!.interfaces.find((i) => i.name === 'tun0')).toMatchObject({ up: true, operstate: 'down', tunnelKind: 'tun' });
    expect(f.facts!.interfaces.find((i) => i.name === 'veth0')).toMatchObject({ up: true, tunnelKind: null });
    expect(f.facts!.routes).toContainEqual(expect.objectContaining({ family: 'ipv4', destination: '0.0.0.0/0', interface: 'tun0' }));
    expect(f.facts!.routes).toContainEqual(expect.objectContaining({ family: 'ipv6', destination: '::/0', interface: 'tun0' }));
  });

  it('fails when the default goes through a veth while a tun is up', () => {
    const ns = build('veth-default', { routes: [['route', 'add', 'default', 'via', '198.18.0.1', 'dev', 'veth0']] });
    const f = checkIn(ns);
    expect(f.status).toBe('fail');
    expect(codes(f)).toEqual(['CHK_FAIL_DEFAULT_ROUTE_OUTSIDE_TUNNEL']);
    expect(f.reasons[0]!.subject).toBe('ipv4 0.0.0.0/0 via 198.18.0.1 dev veth0 metric 0');
  });

  it('fails with an IPv6 bypass when IPv4 goes through the tun and IPv6 through a veth', () => {
    const ns = build('v6-bypass', {
      routes: [
        ['route', 'add', 'default', 'dev', 'tun0'],
        ['-6', 'route', 'add', 'default', 'via', 'fd77::1', 'dev', 'veth0'],
      ],
    });
    const f = checkIn(ns);
    expect(f.status).toBe('fail');
    expect(codes(f)).toEqual(['CHK_FAIL_IPV6_BYPASS']);
    expect(f.reasons[0]!.subject).toMatch(/^ipv6 ::\/0 via fd77::1 dev veth0 /);
  });

  it('fails with no tunnel when there is no tun device at all', () => {
    const ns = build('no-tun', { tun: false, routes: [['route', 'add', 'default', 'via', '198.18.0.1', 'dev', 'veth0']] });
    const f = checkIn(ns);
    expect(codes(f)).toEqual(['CHK_FAIL_NO_TUNNEL']);
  });

  it('lets the lowest metric win: tun at 50 over veth at 600 passes, the reverse fails', () => {
    const good = checkIn(build('metric-tun', {
      routes: [
        ['route', 'add', 'default', 'dev', 'tun0', 'metric', '50'],
        ['route', 'add', 'default', 'via', '198.18.0.1', 'dev', 'veth0', 'metric', '600'],
      ],
    }));
    expect(good.status, JSON.stringify(good.reasons)).toBe('pass');
    const bad = checkIn(build('metric-veth', {
      routes: [
        ['route', 'add', 'default', 'dev', 'tun0', 'metric', '600'],
        ['route', 'add', 'default', 'via', '198.18.0.1', 'dev', 'veth0', 'metric', '50'],
      ],
    }));
    expect(codes(bad)).toEqual(['CHK_FAIL_DEFAULT_ROUTE_OUTSIDE_TUNNEL']);
  });

  it('counts the 0.0.0.0/1 + 128.0.0.0/1 pair through the tun as overriding a veth default', () => {
    const f = checkIn(build('def1-pair', {
      routes: [
        ['route', 'add', 'default', 'via', '198.18.0.1', 'dev', 'veth0'],
        ['route', 'add', '0.0.0.0/1', 'dev', 'tun0'],
        ['route', 'add', '128.0.0.0/1', 'dev', 'tun0'],
      ],
    }));
    expect(f.status, JSON.stringify(f.reasons)).toBe('pass');
  });

  it('answers unknown when another routing table holds a default that rules may select', () => {
    const f = checkIn(build('policy-table', {
      routes: [
        ['route', 'add', 'default', 'via', '198.18.0.1', 'dev', 'veth0'],
        ['route', 'add', 'default', 'dev', 'tun0', 'table', '51820'],
        ['rule', 'add', 'not', 'fwmark', '51820', 'table', '51820'],
      ],
    }));
    expect(f.status).toBe('unknown');
    expect(codes(f)).toEqual(['CHK_ERR_UNRESOLVED']);
    expect(f.facts!.otherRouteTables).toEqual({ readable: true, error: null, tables: [{ table: 51820, wide: ['0.0.0.0/0'] }] });
  });
});
