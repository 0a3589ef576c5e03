import { describe, expect, it } from 'vitest';
import {
  clientForComm,
  devtypeFromUevent,
  interfaceFromSysfs,
  otherTablesFromFibTrie,
  parseIpv6Route,
  parseProcNetRoute,
  type SysNetRaw,
} from '../../../checks/vpn/linux.js';

// As /proc/net/route printed it on the development VM, then with a tunnel's routes added.
const ROUTE_HEAD = 'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT                                                       ';
const ROUTE = `${ROUTE_HEAD}
eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0                                                                               
eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0                                                                               
tun0\t00000000\t0500080A\t0003\t0\t0\t50\t00000080\t0\t0\t0
tun0\t00000080\t0500080A\t0003\t0\t0\t50\t00000080\t0\t0\t0
*\t00000000\t00000000\t0001\t0\t0\t9999\t00000000\t0\t0\t0
eth0\t0A7100CB\t010200C0\t0207\t0\t0\t0\tFFFFFFFF\t0\t0\t0
eth0\t0000A8C0\t00000000\t0000\t0\t0\t0\t0000FFFF\t0\t0\t0
`;

// /proc/net/ipv6_route from the same VM: the kernel null entry, local-table entries and
// multicast are in the file and must not reach the facts.
const IPV6_ROUTE = `fd000000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0
fe800000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000002 00000000 00000001     eth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 fd000000000000000000000000000001 00000400 00000002 00000000 00000003     eth0
00000000000000000000000000000001 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000000 00000003 00000000 80200001       lo
fd000000000000000000000000000002 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000000 00000003 00000000 80200001     eth0
ff000000000000000000000000000000 08 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000003 00000000 00000001     eth0
20000000000000000000000000000000 03 00000000000000000000000000000000 00 00000000000000000000000000000000 00000000 00000001 00000000 00200201       lo
00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo
`;

// /proc/net/fib_trie in a namespace with `ip route add default dev tun0 table 51820`.
const FIB_TRIE = `Id 51820:
  |-- 0.0.0.0
     /0 link UNICAST
Main:
  +-- 0.0.0.0/0 3 0 6
     +-- 0.0.0.0/4 2 0 2
        |-- 0.0.0.0
           /0 link UNICAST
        |-- 10.200.0.0
           /24 link UNICAST
     |-- 198.18.0.0
        /24 link UNICAST
Id 100:
  |-- 128.0.0.0
     /1 universe UNICAST
  |-- 10.0.0.0
     /8 universe UNICAST
  |-- 64.0.0.0
     /2 universe BLACKHOLE
Local:
  +-- 0.0.0.0/0 3 0 5
     +-- 10.200.0.0/24 2 0 2
        |-- 10.200.0.2
           /32 host LOCAL
`;

function sys(over: Partial<SysNetRaw>): SysNetRaw {
  return { name: 'eth0', type: '1\n', flags: '0x1003\n', operstate: 'up\n', uevent: 'INTERFACE=eth0\nIFINDEX=2\n', tunFlags: null, ...over };
}

describe('vpn Linux parsers', () => {
  it('reads /proc/net/route: little-endian hex, decimal metric, /1 pairs, blackhole and reject', () => {
    expect(parseProcNetRoute(ROUTE)).toEqual([
      { family: 'ipv4', destination: '0.0.0.0/0', gateway: '192.0.2.1', interface: 'eth0', metric: 0, flags: '0x0003', reject: false, scoped: false },
      { family: 'ipv4', destination: '192.0.2.0/24', gateway: null, interface: 'eth0', metric: 0, flags: '0x0001', reject: false, scoped: false },
      { family: 'ipv4', destination: '0.0.0.0/1', gateway: '10.8.0.5', interface: 'tun0', metric: 50, flags: '0x0003', reject: false, scoped: false },
      { family: 'ipv4', destination: '128.0.0.0/1', gateway: '10.8.0.5', interface: 'tun0', metric: 50, flags: '0x0003', reject: false, scoped: false },
      // Iface "*": a blackhole, no device.
      { family: 'ipv4', destination: '0.0.0.0/0', gateway: null, interface: null, metric: 9999, flags: '0x0001', reject: true, scoped: false },
      // RTF_REJECT (unreachable/prohibit) host route; the row without RTF_UP is dropped.
      { family: 'ipv4', destination: '203.0.113.10/32', gateway: '192.0.2.1', interface: 'eth0', metric: 0, flags: '0x0207', reject: true, scoped: false },
    ]);
  });

  it('refuses /proc/net/route it cannot read', () => {
    expect(() => parseProcNetRoute('Iface\tDestination\n')).toThrow(expect.objectContaining({ code: 'CHK_ERR_PARSE' }));
    expect(() => parseProcNetRoute(`${ROUTE_HEAD}\neth0\tZZ000000\t00000000\t0001\t0\t0\t0\t00000000\t0\t0\t0\n`)).toThrow(expect.objectContaining({ code: 'CHK_ERR_PARSE' }));
    // 255.0.255.0 is not a prefix mask.
    expect(() => parseProcNetRoute(`${ROUTE_HEAD}\neth0\t00000000\t00000000\t0001\t0\t0\t0\t00FF00FF\t0\t0\t0\n`)).toThrow(/non-contiguous/);
    expect(() => parseProcNetRoute(`${ROUTE_HEAD}\neth0\t00000000\n`)).toThrow(/short route line/);
    expect(parseProcNetRoute(`${ROUTE_HEAD}\n`)).toEqual([]);
  });

  it('reads /proc/net/ipv6_route without local, multicast and the null entry, keeping reject routes', () => {
    expect(parseIpv6Route(IPV6_ROUTE)).toEqual([
      { family: 'ipv6', destination: 'fd00::/64', gateway: null, interface: 'eth0', metric: 256, flags: '0x00000001', reject: false, scoped: false },
      { family: 'ipv6', destination: 'fe80::/64', gateway: null, interface: 'eth0', metric: 256, flags: '0x00000001', reject: false, scoped: false },
      { family: 'ipv6', destination: '::/0', gateway: 'fd00::1', interface: 'eth0', metric: 1024, flags: '0x00000003', reject: false, scoped: false },
      { family: 'ipv6', destination: '2000::/3', gateway: null, interface: 'lo', metric: 0, flags: '0x00200201', reject: true, scoped: false },
    ]);
    expect(() => parseIpv6Route('00 00 00\n')).toThrow(expect.objectContaining({ code: 'CHK_ERR_PARSE' }));
    expect(parseIpv6Route('')).toEqual([]);
  });

  it('finds routing tables besides main and local in /proc/net/fib_trie, with their wide unicast prefixes', () => {
    expect(otherTablesFromFibTrie(FIB_TRIE)).toEqual([
      { table: 100, wide: ['128.0.0.0/1'] },
      { table: 51820, wide: ['0.0.0.0/0'] },
    ]);
    expect(otherTablesFromFibTrie('Main:\n  |-- 0.0.0.0\n     /0 universe UNICAST\n')).toEqual([]);
    expect(() => otherTablesFromFibTrie('Id 7:\n     /0 universe UNICAST\n')).toThrow(expect.objectContaining({ code: 'CHK_ERR_PARSE' }));
  });

  it('reads DEVTYPE from uevent', () => {
    expect(devtypeFromUevent('DEVTYPE=wireguard\nINTERFACE=wg0\n')).toBe('wireguard');
    expect(devtypeFromUevent('INTERFACE=eth0\n')).toBeNull();
    expect(devtypeFromUevent(null)).toBeNull();
  });

  it('classifies interfaces from sysfs, with IFF_UP (not carrier) as "up"', () => {
    // A tun with no process attached: carrier down, IFF_UP set.
    expect(interfaceFromSysfs(sys({ name: 'tun0', type: '65534', flags: '0x1091', operstate: 'down', tunFlags: '0x1801\n' }))).toEqual({
      name: 'tun0', up: true, tunnelKind: 'tun', evidence: 'tun_flags 0x1801 (IFF_TUN)', arpType: 65534, flags: '0x1091', operstate: 'down', devtype: null, tunFlags: '0x1801',
    });
    expect(interfaceFromSysfs(sys({ name: 'cscotun0', type: '65534', flags: '0x10d1', tunFlags: '0x1001' }))).toMatchObject({ tunnelKind: 'tun' });
    expect(interfaceFromSysfs(sys({ name: 'wg0', type: '65534', flags: '0x91', uevent: 'DEVTYPE=wireguard\nINTERFACE=wg0\n' }))).toMatchObject({ up: true, tunnelKind: 'wireguard', evidence: 'DEVTYPE=wireguard' });
    expect(interfaceFromSysfs(sys({ name: 'xfrm-corp', type: '65534', uevent: 'DEVTYPE=xfrm\n' }))).toMatchObject({ tunnelKind: 'ipsec' });
    expect(interfaceFromSysfs(sys({ name: 'vpn9', type: '512', flags: '0x10d1' }))).toMatchObject({ tunnelKind: 'ppp', evidence: 'type 512 (ARPHRD_PPP)' });
    expect(interfaceFromSysfs(sys({ name: 'ipsec0', type: '768' }))).toMatchObject({ tunnelKind: 'ipsec', evidence: 'name ipsec*' });
    expect(interfaceFromSysfs(sys({ name: 'wg-home', type: '65534' }))).toMatchObject({ tunnelKind: 'wireguard', evidence: 'name wg*' });
    // A tap is layer 2 (VM networking as often as VPN): not a tunnel by itself.
    expect(interfaceFromSysfs(sys({ name: 'tap0', tunFlags: '0x1002' }))).toMatchObject({ tunnelKind: null });
    // A WWAN modem in raw-IP mode has type 65534 too, and is not a tunnel.
    expect(interfaceFromSysfs(sys({ name: 'wwan0', type: '65534', uevent: 'DEVTYPE=wwan\n' }))).toMatchObject({ tunnelKind: null });
    expect(interfaceFromSysfs(sys({ flags: '0x1002', operstate: 'down' }))).toMatchObject({ up: false, tunnelKind: null });
    expect(() => interfaceFromSysfs(sys({ type: 'ether' }))).toThrow(expect.objectContaining({ code: 'CHK_ERR_PARSE', subject: '/sys/class/net/eth0/type' }));
  });

  it('recognises VPN clients by comm, truncated to 15 bytes as the kernel does', () => {
    expect(clientForComm('openvpn\n')).toBe('OpenVPN');
    expect(clientForComm('nm-openvpn-serv')).toBe('NetworkManager OpenVPN plugin');
    expect(clientForComm('charon-systemd')).toBe('strongSwan');
    expect(clientForComm('PanGPS')).toBe('GlobalProtect');
    expect(clientForComm('vpnagentd')).toBe('Cisco AnyConnect / Secure Client');
    expect(clientForComm('openvpn-helper')).toBeNull();
    expect(clientForComm('')).toBeNull();
  });
});
