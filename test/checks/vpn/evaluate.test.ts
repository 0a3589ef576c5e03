import { describe, expect, it } from 'vitest';
import { configSchema, describeRoute, evaluate, factsSchema, parseProbeBody, SEGMENTS, type Facts, type NetInterface, type Route } from '../../../checks/vpn/index.js';
import { formatCidr } from '../../../checks/vpn/addresses.js';

const iface = (name: string, tunnelKind: string | null, up = true): NetInterface => ({ name, up, tunnelKind, evidence: tunnelKind === null ? null : 'test' });

function route(family: 'ipv4' | 'ipv6', destination: string, dev: string | null, over: Partial<Route> = {}): Route {
  return { family, destination, gateway: null, interface: dev, metric: 0, flags: '', reject: false, scoped: false, ...over };
}
const v4 = (dst: string, dev: string | null, over: Partial<Route> = {}) => route('ipv4', dst, dev, over);
const v6 = (dst: string, dev: string | null, over: Partial<Route> = {}) => route('ipv6', dst, dev, over);

function facts(over: Partial<Facts> = {}): Facts {
  return factsSchema.parse({
    platform: 'linux',
    interfaces: [iface('eth0', null), iface('lo', null), iface('tun0', 'tun')],
    routes: [],
    missingSources: [],
    otherRouteTables: { readable: true, error: null, tables: [] },
    vpnServices: null,
    clients: { error: null, found: [] },
    probe: null,
    ...over,
  });
}
const cfg = (raw: unknown = {}) => configSchema.parse(raw);
const codes = (ev: { reasons: { code: string }[] }) => ev.reasons.map((r) => r.code);

const ETH_DEFAULT = v4('0.0.0.0/0', 'eth0', { gateway: '192.168.1.1', metric: 100 });
const TUN_DEFAULT = v4('0.0.0.0/0', 'tun0', { metric: 50 });

describe('vpn config', () => {
  it('parses {} to the defaults', () => {
    expect(cfg({})).toEqual({ mode: 'full', splitAllowedCidrs: [], requireIpv6Tunnelled: true, tunnelInterfaces: [] });
    expect(cfg({ egressProbe: { url: 'https://probe.example.com/ip', allowedCidrs: ['203.0.113.0/24'] } }).egressProbe).toEqual({
      url: 'https://probe.example.com/ip', allowedCidrs: ['203.0.113.0/24'], timeoutMs: 5000,
    });
  });

  it.each([
    ['an unknown key', { extra: 1 }],
    ['an unknown mode', { mode: 'half' }],
    ['a CIDR with host bits', { splitAllowedCidrs: ['10.0.0.1/8'] }],
    ['a non-CIDR', { splitAllowedCidrs: ['corp'] }],
    ['an empty interface pattern', { tunnelInterfaces: [''] }],
    ['a probe without allowed ranges', { egressProbe: { url: 'https://p.example.com/', allowedCidrs: [] } }],
    ['a non-http probe', { egressProbe: { url: 'file:///etc/hostname', allowedCidrs: ['203.0.113.0/24'] } }],
    ['a probe URL that is no URL', { egressProbe: { url: 'probe', allowedCidrs: ['203.0.113.0/24'] } }],
    ['an unknown probe key', { egressProbe: { url: 'https://p.example.com/', allowedCidrs: ['203.0.113.0/24'], method: 'POST' } }],
  ])('refuses %s', (_what, raw) => {
    expect(configSchema.safeParse(raw).success).toBe(false);
  });
});

describe('vpn evaluate: full mode', () => {
  it('judges the IPv4 unicast space in 14 /4 segments and 2000::/3 in two', () => {
    expect(SEGMENTS.ipv4.map(formatCidr)).toEqual(Array.from({ length: 14 }, (_, i) => `${i * 16}.0.0.0/4`));
    expect(SEGMENTS.ipv6.map(formatCidr)).toEqual(['2000::/4', '3000::/4']);
  });

  it('passes when the lowest-metric default goes through the tunnel', () => {
    expect(evaluate(facts({ routes: [ETH_DEFAULT, TUN_DEFAULT] }), cfg())).toEqual({ status: 'pass', reasons: [] });
  });

  it('fails when the lowest-metric default leaves outside, naming the route', () => {
    const ev = evaluate(facts({ routes: [v4('0.0.0.0/0', 'eth0', { gateway: '192.168.1.1', metric: 10 }), TUN_DEFAULT] }), cfg());
    expect(ev).toEqual({
      status: 'fail',
      reasons: [{ code: 'CHK_FAIL_DEFAULT_ROUTE_OUTSIDE_TUNNEL', message: 'a default route in use leaves outside the tunnel', subject: 'ipv4 0.0.0.0/0 via 192.168.1.1 dev eth0 metric 10' }],
    });
  });

  it('fails on equal metrics (multipath or ties): some traffic may take the outside route', () => {
    expect(codes(evaluate(facts({ routes: [v4('0.0.0.0/0', 'eth0', { metric: 50 }), TUN_DEFAULT] }), cfg()))).toEqual(['CHK_FAIL_DEFAULT_ROUTE_OUTSIDE_TUNNEL']);
  });

  it('lets more specific wide routes win over the default, whatever their metric', () => {
    const pair = [v4('0.0.0.0/1', 'tun0', { metric: 9000 }), v4('128.0.0.0/1', 'tun0', { metric: 9000 })];
    expect(evaluate(facts({ routes: [ETH_DEFAULT, ...pair] }), cfg()).status).toBe('pass');
    // Half a pair leaves the other half of the internet on eth0.
    const half = evaluate(facts({ routes: [ETH_DEFAULT, pair[0]!] }), cfg());
    expect(half.reasons).toEqual([expect.objectContaining({ code: 'CHK_FAIL_DEFAULT_ROUTE_OUTSIDE_TUNNEL', subject: 'ipv4 0.0.0.0/0 via 192.168.1.1 dev eth0 metric 100' })]);
  });

  it('ignores routes narrower than /4 for the default (LAN, VPN server host route)', () => {
    const r = [TUN_DEFAULT, v4('192.168.1.0/24', 'eth0'), v4('203.0.113.10/32', 'eth0', { gateway: '192.168.1.1' }), v4('224.0.0.0/4', 'eth0')];
    expect(evaluate(facts({ routes: r }), cfg()).status).toBe('pass');
  });

  it('counts a winning reject route as sending nothing (a kill switch), not as a leak', () => {
    const killSwitch = v4('0.0.0.0/0', null, { reject: true, metric: 1 });
    expect(evaluate(facts({ routes: [killSwitch, ETH_DEFAULT, v4('10.0.0.0/8', 'tun0')] }), cfg()).status).toBe('unknown');
    expect(evaluate(facts({ routes: [killSwitch, ETH_DEFAULT, TUN_DEFAULT] }), cfg())).toEqual(
      expect.objectContaining({ status: 'unknown', reasons: [expect.objectContaining({ code: 'CHK_ERR_UNRESOLVED' })] }),
    );
    // With the tunnel's /1 pair beating the reject default, traffic flows and it passes.
    const pair = [v4('0.0.0.0/1', 'tun0'), v4('128.0.0.0/1', 'tun0')];
    expect(evaluate(facts({ routes: [killSwitch, ETH_DEFAULT, ...pair] }), cfg()).status).toBe('pass');
  });

  it('fails an IPv6 default outside an IPv4-only tunnel as a bypass, or as outside when IPv4 leaks too', () => {
    const v6Out = v6('::/0', 'eth0', { gateway: 'fe80::1', metric: 100 });
    expect(codes(evaluate(facts({ routes: [TUN_DEFAULT, v6Out] }), cfg()))).toEqual(['CHK_FAIL_IPV6_BYPASS']);
    expect(codes(evaluate(facts({ routes: [ETH_DEFAULT, v6Out] }), cfg()))).toEqual(['CHK_FAIL_DEFAULT_ROUTE_OUTSIDE_TUNNEL', 'CHK_FAIL_DEFAULT_ROUTE_OUTSIDE_TUNNEL']);
    // An IPv6-only host: nothing for IPv6 to bypass.
    expect(codes(evaluate(facts({ routes: [v6Out, v6('fd00::/8', 'tun0')] }), cfg()))).toEqual(['CHK_FAIL_DEFAULT_ROUTE_OUTSIDE_TUNNEL']);
    expect(evaluate(facts({ routes: [TUN_DEFAULT, v6Out] }), cfg({ requireIpv6Tunnelled: false })).status).toBe('pass');
  });

  it('accepts IPv6 internet captured by 2000::/3 or 2000::/4 + 3000::/4 through the tunnel', () => {
    const v6Out = v6('::/0', 'eth0', { gateway: 'fe80::1', metric: 100 });
    expect(evaluate(facts({ routes: [TUN_DEFAULT, v6Out, v6('2000::/3', 'tun0', { metric: 1024 })] }), cfg()).status).toBe('pass');
    expect(evaluate(facts({ routes: [TUN_DEFAULT, v6Out, v6('2000::/4', 'tun0'), v6('3000::/4', 'tun0')] }), cfg()).status).toBe('pass');
    expect(codes(evaluate(facts({ routes: [TUN_DEFAULT, v6Out, v6('2000::/4', 'tun0')] }), cfg()))).toEqual(['CHK_FAIL_IPV6_BYPASS']);
  });

  it('fails with no tunnel when none is up, whatever runs', () => {
    const f = facts({
      interfaces: [iface('eth0', null), iface('tun0', 'tun', false)],
      routes: [ETH_DEFAULT],
      clients: { error: null, found: [{ client: 'OpenVPN', process: 'openvpn', pid: 9 }] },
    });
    expect(evaluate(f, cfg())).toEqual({ status: 'fail', reasons: [{ code: 'CHK_FAIL_NO_TUNNEL', message: 'no tunnel interface is up, and no VPN service is connected' }] });
  });

  it('answers unknown for an offline host, and for a tunnel with no default in full mode', () => {
    expect(evaluate(facts({ interfaces: [iface('eth0', null)], routes: [] }), cfg())).toEqual(expect.objectContaining({ status: 'unknown', reasons: [expect.objectContaining({ code: 'CHK_ERR_UNRESOLVED' })] }));
    expect(evaluate(facts({ routes: [v4('10.0.0.0/8', 'tun0')] }), cfg()).status).toBe('unknown');
  });

  it('answers unknown when a default leaves through an interface it cannot find', () => {
    const ev = evaluate(facts({ routes: [v4('0.0.0.0/0', 'veth9')] }), cfg());
    expect(ev).toEqual({ status: 'unknown', reasons: [expect.objectContaining({ code: 'CHK_ERR_UNRESOLVED', subject: 'ipv4 0.0.0.0/0 dev veth9 metric 0' })] });
  });

  it('treats interfaces named by tunnelInterfaces as the tunnel', () => {
    const f = facts({ interfaces: [iface('eth0', null), iface('corp0', null)], routes: [v4('0.0.0.0/0', 'corp0')] });
    expect(evaluate(f, cfg()).status).toBe('fail');
    expect(evaluate(f, cfg({ tunnelInterfaces: ['corp*'] })).status).toBe('pass');
  });

  it('answers unknown on Linux when policy routing may override what the tables show', () => {
    const tables = { readable: true, error: null, tables: [{ table: 51820, wide: ['0.0.0.0/0'] }] };
    expect(codes(evaluate(facts({ routes: [ETH_DEFAULT], otherRouteTables: tables }), cfg()))).toEqual(['CHK_ERR_UNRESOLVED']);
    // A table without wide routes changes nothing.
    expect(codes(evaluate(facts({ routes: [ETH_DEFAULT], otherRouteTables: { ...tables, tables: [{ table: 7, wide: [] }] } }), cfg()))).toEqual(['CHK_FAIL_DEFAULT_ROUTE_OUTSIDE_TUNNEL']);
    // IPv6: a losing ::/0 through the tunnel may sit in another table.
    const v6f = facts({ routes: [TUN_DEFAULT, v6('::/0', 'eth0', { metric: 600 }), v6('::/0', 'tun0', { metric: 1024 })] });
    expect(codes(evaluate(v6f, cfg()))).toEqual(['CHK_ERR_UNRESOLVED']);
    // Elsewhere the tables are unambiguous, and the same routes fail.
    expect(codes(evaluate({ ...v6f, platform: 'win32', otherRouteTables: null }, cfg()))).toEqual(['CHK_FAIL_IPV6_BYPASS']);
  });

  it('on macOS counts a utun as up only when it carries routes, or when a VPN service is connected', () => {
    const base = {
      platform: 'darwin' as const,
      otherRouteTables: null,
      interfaces: [iface('en0', null), iface('utun0', 'utun'), iface('utun3', 'utun')],
      vpnServices: [],
    };
    const system = [v4('0.0.0.0/0', 'en0', { metric: null }), v6('fe80::/64', 'utun0', { metric: null, scoped: true }), v6('::/0', 'utun0', { metric: null, scoped: true })];
    expect(codes(evaluate(facts({ ...base, routes: system }), cfg()))).toEqual(['CHK_FAIL_NO_TUNNEL']);
    expect(codes(evaluate(facts({ ...base, routes: [...system, v4('10.0.0.0/8', 'utun3', { metric: null })] }), cfg()))).toEqual(['CHK_FAIL_DEFAULT_ROUTE_OUTSIDE_TUNNEL']);
    const connected = [{ name: 'Corp', state: 'Connected', type: 'IPSec', vpn: true, enabled: true }];
    expect(codes(evaluate(facts({ ...base, routes: system, vpnServices: connected }), cfg()))).toEqual(['CHK_FAIL_DEFAULT_ROUTE_OUTSIDE_TUNNEL']);
    // Scoped routes do not take part: the scoped en0 default does not leak.
    const full = [v4('0.0.0.0/0', 'utun3', { metric: null }), v4('0.0.0.0/0', 'en0', { metric: null, scoped: true })];
    expect(evaluate(facts({ ...base, routes: full }), cfg()).status).toBe('pass');
  });

  it('matches interface names case-insensitively on Windows only', () => {
    const f = facts({ platform: 'win32', otherRouteTables: null, interfaces: [iface('Wi-Fi', null), iface('Corp VPN', 'ras-vpn')], routes: [v4('0.0.0.0/0', 'corp vpn')] });
    expect(evaluate(f, cfg()).status).toBe('pass');
    expect(evaluate({ ...f, platform: 'linux' }, cfg()).status).toBe('unknown');
  });
});

describe('vpn evaluate: split mode', () => {
  const routes = [
    v4('0.0.0.0/0', 'eth0', { gateway: '192.168.1.1', metric: 100 }),
    v4('10.0.0.0/8', 'tun0', { gateway: '10.8.0.1' }),
    v4('172.16.0.0/12', 'eth0', { gateway: '192.168.1.254', metric: 100 }),
    v4('172.16.0.0/12', 'eth0', { gateway: '192.168.1.253', metric: 300 }),
    v4('192.168.1.0/24', 'eth0', { metric: 100 }),
  ];

  it('fails the default and gateway routes outside the tunnel that the policy does not allow', () => {
    const ev = evaluate(facts({ routes }), cfg({ mode: 'split' }));
    expect(ev.reasons.map((r) => [r.code, r.subject])).toEqual([
      ['CHK_FAIL_DEFAULT_ROUTE_OUTSIDE_TUNNEL', 'ipv4 0.0.0.0/0 via 192.168.1.1 dev eth0 metric 100'],
      // The shadowed metric-300 twin is not in use; the on-link LAN route is never judged.
      ['CHK_FAIL_ROUTE_OUTSIDE_TUNNEL', 'ipv4 172.16.0.0/12 via 192.168.1.254 dev eth0 metric 100'],
    ]);
  });

  it('passes when splitAllowedCidrs covers what leaves outside', () => {
    expect(evaluate(facts({ routes }), cfg({ mode: 'split', splitAllowedCidrs: ['0.0.0.0/0'] })).status).toBe('pass');
    expect(evaluate(facts({ routes }), cfg({ mode: 'split', splitAllowedCidrs: ['0.0.0.0/1', '128.0.0.0/1'] })).status).toBe('pass');
    // 172.16.0.0/12 allowed, the default not: only the default fails.
    expect(codes(evaluate(facts({ routes }), cfg({ mode: 'split', splitAllowedCidrs: ['172.16.0.0/12'] })))).toEqual(['CHK_FAIL_DEFAULT_ROUTE_OUTSIDE_TUNNEL']);
  });

  it('still needs a tunnel, and judges IPv6 unless told not to', () => {
    const noTun = facts({ interfaces: [iface('eth0', null)], routes: [routes[0]!] });
    expect(codes(evaluate(noTun, cfg({ mode: 'split', splitAllowedCidrs: ['0.0.0.0/0'] })))).toEqual(['CHK_FAIL_NO_TUNNEL']);
    const withV6 = facts({ routes: [...routes, v6('::/0', 'eth0', { gateway: 'fe80::1' })] });
    expect(codes(evaluate(withV6, cfg({ mode: 'split', splitAllowedCidrs: ['0.0.0.0/0'] })))).toEqual(['CHK_FAIL_IPV6_BYPASS']);
    expect(evaluate(withV6, cfg({ mode: 'split', splitAllowedCidrs: ['0.0.0.0/0', '::/0'] })).status).toBe('pass');
    expect(evaluate(withV6, cfg({ mode: 'split', splitAllowedCidrs: ['0.0.0.0/0'], requireIpv6Tunnelled: false })).status).toBe('pass');
  });

  it('passes a tunnel with no default route at all when nothing else leaves outside', () => {
    expect(evaluate(facts({ routes: [v4('10.0.0.0/8', 'tun0')] }), cfg({ mode: 'split' })).status).toBe('pass');
  });
});

describe('vpn evaluate: egress probe', () => {
  const URL = 'https://probe.example.com/ip';
  const probeCfg = cfg({ egressProbe: { url: URL, allowedCidrs: ['203.0.113.0/24', '2001:db8:ff::/48'] } });
  const withProbe = (probe: Facts['probe']) => facts({ routes: [TUN_DEFAULT], probe });

  it('passes an address inside the allowed ranges, of either family', () => {
    expect(evaluate(withProbe({ url: URL, httpStatus: 200, address: '203.0.113.9', error: null }), probeCfg).status).toBe('pass');
    expect(evaluate(withProbe({ url: URL, httpStatus: 200, address: '2001:db8:ff::9', error: null }), probeCfg).status).toBe('pass');
  });

  it('fails an address outside them, even when the routes pass', () => {
    expect(evaluate(withProbe({ url: URL, httpStatus: 200, address: '198.51.100.7', error: null }), probeCfg)).toEqual({
      status: 'fail',
      reasons: [{ code: 'CHK_FAIL_EGRESS_NOT_ALLOWED', message: 'the egress address the probe saw is not in the allowed ranges', subject: '198.51.100.7' }],
    });
  });

  it('is unknown with the probe error code, or when the facts hold no probe of the configured URL', () => {
    expect(codes(evaluate(withProbe({ url: URL, httpStatus: null, address: null, error: { code: 'CHK_ERR_NETWORK', message: 'the probe failed' } }), probeCfg))).toEqual(['CHK_ERR_NETWORK']);
    expect(codes(evaluate(withProbe(null), probeCfg))).toEqual(['CHK_ERR_UNRESOLVED']);
    expect(codes(evaluate(withProbe({ url: 'https://other.example.com/', httpStatus: 200, address: '203.0.113.9', error: null }), probeCfg))).toEqual(['CHK_ERR_UNRESOLVED']);
    // Without a configured probe, probe facts are not judged.
    expect(evaluate(withProbe({ url: URL, httpStatus: 200, address: '198.51.100.7', error: null }), cfg()).status).toBe('pass');
  });

  it('lets a fail elsewhere dominate the probe being unknown', () => {
    const f = facts({ routes: [ETH_DEFAULT, v4('10.0.0.0/8', 'tun0')], probe: { url: URL, httpStatus: null, address: null, error: { code: 'CHK_ERR_TIMEOUT', message: 't' } } });
    expect(codes(evaluate(f, probeCfg))).toEqual(['CHK_FAIL_DEFAULT_ROUTE_OUTSIDE_TUNNEL']);
  });

  it('reads plain-text and JSON probe answers', () => {
    expect(parseProbeBody('203.0.113.9\n')).toBe('203.0.113.9');
    expect(parseProbeBody('{"ip":"2001:DB8:ff::0009","country":"NL"}')).toBe('2001:db8:ff::9');
    expect(parseProbeBody('::ffff:203.0.113.9')).toBe('203.0.113.9');
    expect(parseProbeBody('{"address":"203.0.113.9"}')).toBeNull();
    expect(parseProbeBody('{not json')).toBeNull();
    expect(parseProbeBody('<html>hello</html>')).toBeNull();
  });
});

describe('vpn describeRoute', () => {
  it('says family, destination, gateway, device and metric where known', () => {
    expect(describeRoute(v4('0.0.0.0/0', 'en0', { gateway: '192.168.1.1', metric: null }))).toBe('ipv4 0.0.0.0/0 via 192.168.1.1 dev en0');
    expect(describeRoute(v6('::/0', null, { metric: 5 }))).toBe('ipv6 ::/0 dev - metric 5');
  });
});
