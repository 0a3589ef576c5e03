import { describe, expect, it } from 'vitest';
import { parseIfconfig, parseNetstatDestination, parseNetstatRoutes, parsePsComm, parseScutilNcList } from '../../../checks/vpn/darwin.js';

const IFCONFIG = `lo0: flags=8049<UP,LOOPBACK,RUNNING,MULTICAST> mtu 16384
\toptions=1203<RXCSUM,TXCSUM,TXSTATUS,SW_TIMESTAMP>
\tinet 127.0.0.1 netmask 0xff000000
gif0: flags=8010<POINTOPOINT,MULTICAST> mtu 1280
stf0: flags=0<> mtu 1280
en0: flags=8863<UP,BROADCAST,SMART,RUNNING,SIMPLEX,MULTICAST> mtu 1500
\tether 3c:22:fb:00:00:01
\tstatus: active
utun0: flags=8051<UP,POINTOPOINT,RUNNING,MULTICAST> mtu 1380
\tinet6 fe80::1a2b:3c4d:5e6f:7081%utun0 prefixlen 64 scopeid 0xe
utun12: flags=8050<POINTOPOINT,RUNNING,MULTICAST> mtu 1420
utunnel: flags=8051<UP,POINTOPOINT,RUNNING,MULTICAST> mtu 1420
ipsec0: flags=8051<UP,POINTOPOINT,RUNNING,MULTICAST> mtu 1400
ppp0: flags=8051<UP,POINTOPOINT,RUNNING,MULTICAST> mtu 1280
`;

// Current columns (macOS 11.3 and later).
const NETSTAT = `Routing tables

Internet:
Destination        Gateway            Flags               Netif Expire
0/1                172.18.12.193      UGScg               utun3
default            192.168.1.1        UGScg                 en0
default            192.168.1.1        UGScIg                en1
10.10.10/24        link#4             UCS                   en0      !
127                127.0.0.1          UCS                   lo0
128.0/1            172.18.12.193      UGSc                utun3
169.254            link#4             UCS                   en0      !
192.168.1.1        3c:22:fb:0:0:fe    UHLWIir               en0   1180
203.0.113.10       192.168.1.1        UGHS                  en0
224.0.0/4          link#4             UmCS                  en0      !
198.51.100/24      192.168.1.1        UGSB                  en0

Internet6:
Destination                             Gateway                                 Flags               Netif Expire
default                                 fe80::1%en0                             UGcg                  en0
default                                 fe80::%utun0                            UGcIg               utun0
::1                                     ::1                                     UHL                   lo0
2000::/3                                utun3                                   USc                 utun3
fe80::%en0/64                           link#4                                  UCI                   en0
fe80::1%lo0                             link#1                                  UHLI                  lo0
ff00::/8                                ::1                                     UmCI                  lo0
`;

// Columns before macOS 11.3: Refs and Use sit between Flags and Netif.
const NETSTAT_OLD = `Routing tables

Internet:
Destination        Gateway            Flags        Refs      Use   Netif Expire
default            10.10.10.1         UGSc           20       16     en0
10.10.10/24        link#4             UCS             1        0     en0
172.16.111/24      link#11            UC              1        0  vmnet1
`;

const NC_LIST = `Available network connection services in the current set (*=enabled):
* (Connected)      9B33EDB3-7576-4A9C-AB78-BC8C08E05BE4 VPN (com.wireguard.macos) "home-wg"       [VPN:com.wireguard.macos]
* (Disconnected)   F866AE22-4EC1-4524-8769-86A290A0C582 VPN (com.wireguard.macos) "office-wg"           [VPN:com.wireguard.macos]
  (Disconnected)   11111111-2222-3333-4444-555555555555 IPSec "Office"                              [IPSec]
* (Disconnected)   9798DAED-21C7-44A1-B382-EFCE7E1373F1 PPP --> Modem (usbmodem1411) "Arduino Uno"                    [PPP:Modem]
* (Connecting)     65F5A798-4B98-4DA1-87D8-9D605FFF6188 PPP --> L2TP       "Test-VPN"                      [PPP:L2TP]
* (Disconnected)   5555AAAA-1234-4567-89AB-CDEF012345AB PPP --> Ethernet "No Bracket"
`;

describe('vpn macOS parsers', () => {
  it('reads interface header lines of ifconfig -a and names tunnels by their unit names', () => {
    const ifs = parseIfconfig(IFCONFIG);
    expect(ifs.map((i) => [i.name, i.up, i.tunnelKind])).toEqual([
      ['lo0', true, null],
      ['gif0', false, null],
      ['stf0', false, null],
      ['en0', true, null],
      ['utun0', true, 'utun'],
      ['utun12', false, 'utun'],
      ['utunnel', true, null],
      ['ipsec0', true, 'ipsec'],
      ['ppp0', true, 'ppp'],
    ]);
    expect(ifs[4]).toEqual({ name: 'utun0', up: true, tunnelKind: 'utun', evidence: 'name utun*', flags: 'UP,POINTOPOINT,RUNNING,MULTICAST' });
    expect(() => parseIfconfig('')).toThrow(expect.objectContaining({ code: 'CHK_ERR_PARSE' }));
    expect(() => parseIfconfig('en0 is up\n')).toThrow(expect.objectContaining({ code: 'CHK_ERR_PARSE' }));
  });

  it.each([
    ['ipv4', 'default', false, '0.0.0.0/0'],
    ['ipv4', '0/1', false, '0.0.0.0/1'],
    ['ipv4', '128.0/1', false, '128.0.0.0/1'],
    ['ipv4', '127', false, '127.0.0.0/8'],
    ['ipv4', '169.254', false, '169.254.0.0/16'],
    ['ipv4', '192.168.1', false, '192.168.1.0/24'],
    ['ipv4', '10.10.10/24', false, '10.10.10.0/24'],
    ['ipv4', '10.10.10', false, '10.10.10.0/24'],
    ['ipv4', '224.0.0/4', false, '224.0.0.0/4'],
    ['ipv4', '203.0.113.10', true, '203.0.113.10/32'],
    ['ipv4', '192.168.1.23/32', false, '192.168.1.23/32'],
    ['ipv6', 'default', false, '::/0'],
    ['ipv6', '2000::/3', false, '2000::/3'],
    ['ipv6', 'fe80::%utun0/64', false, 'fe80::/64'],
    ['ipv6', 'fe80::1%lo0', true, 'fe80::1/128'],
  ] as const)('reads the netstat destination %s %s', (family, text, host, expected) => {
    expect(parseNetstatDestination(family, text, host)).toBe(expected);
  });

  it('refuses destinations that are not addresses', () => {
    expect(parseNetstatDestination('ipv4', 'link#4', false)).toBeNull();
    expect(parseNetstatDestination('ipv4', '300.1', false)).toBeNull();
    expect(parseNetstatDestination('ipv6', 'zz::/3', false)).toBeNull();
  });

  it('reads netstat -rn: both sections, scoped and blackhole routes, skipping link-layer and multicast entries', () => {
    const routes = parseNetstatRoutes(NETSTAT);
    expect(routes.map((r) => [r.family, r.destination, r.gateway, r.interface, r.scoped, r.reject])).toEqual([
      ['ipv4', '0.0.0.0/1', '172.18.12.193', 'utun3', false, false],
      ['ipv4', '0.0.0.0/0', '192.168.1.1', 'en0', false, false],
      ['ipv4', '0.0.0.0/0', '192.168.1.1', 'en1', true, false],
      ['ipv4', '10.10.10.0/24', null, 'en0', false, false],
      ['ipv4', '127.0.0.0/8', null, 'lo0', false, false],
      ['ipv4', '128.0.0.0/1', '172.18.12.193', 'utun3', false, false],
      ['ipv4', '169.254.0.0/16', null, 'en0', false, false],
      ['ipv4', '203.0.113.10/32', '192.168.1.1', 'en0', false, false],
      ['ipv4', '198.51.100.0/24', '192.168.1.1', 'en0', false, true],
      ['ipv6', '::/0', 'fe80::1%en0', 'en0', false, false],
      ['ipv6', '::/0', 'fe80::%utun0', 'utun0', true, false],
      ['ipv6', '2000::/3', null, 'utun3', false, false],
      ['ipv6', 'fe80::/64', null, 'en0', true, false],
    ]);
    expect(routes.every((r) => r.metric === null)).toBe(true);
  });

  it('finds Netif by its header in the older column layout', () => {
    expect(parseNetstatRoutes(NETSTAT_OLD).map((r) => [r.destination, r.interface])).toEqual([
      ['0.0.0.0/0', 'en0'],
      ['10.10.10.0/24', 'en0'],
      ['172.16.111.0/24', 'vmnet1'],
    ]);
  });

  it('refuses netstat output it cannot read', () => {
    expect(() => parseNetstatRoutes('Routing tables\n')).toThrow(/no Internet: section/);
    expect(() => parseNetstatRoutes('Internet:\ndefault 192.168.1.1 UGSc en0\n')).toThrow(/before the column header/);
    expect(() => parseNetstatRoutes('Internet:\nDestination Gateway Flags\n')).toThrow(/no Netif column/);
    expect(() => parseNetstatRoutes('Internet:\nDestination Gateway Flags Netif\nbogus x UGSc en0\n')).toThrow(/unreadable destination/);
  });

  it('reads scutil --nc list, telling VPN services from dial-up links', () => {
    expect(parseScutilNcList(NC_LIST)).toEqual([
      { name: 'Arduino Uno', state: 'Disconnected', type: 'PPP:Modem', vpn: false, enabled: true },
      { name: 'No Bracket', state: 'Disconnected', type: 'PPP', vpn: false, enabled: true },
      { name: 'Office', state: 'Disconnected', type: 'IPSec', vpn: true, enabled: false },
      { name: 'Test-VPN', state: 'Connecting', type: 'PPP:L2TP', vpn: true, enabled: true },
      { name: 'home-wg', state: 'Connected', type: 'VPN:com.wireguard.macos', vpn: true, enabled: true },
      { name: 'office-wg', state: 'Disconnected', type: 'VPN:com.wireguard.macos', vpn: true, enabled: true },
    ]);
    expect(parseScutilNcList('Available network connection services in the current set (*=enabled):\n')).toEqual([]);
    expect(() => parseScutilNcList('')).toThrow(expect.objectContaining({ code: 'CHK_ERR_PARSE' }));
    expect(() => parseScutilNcList('Available network connection services in the current set (*=enabled):\ngarbage\n')).toThrow(/unexpected scutil line/);
  });

  it('finds known VPN clients among ps -axo comm paths, paths with spaces included', () => {
    const out = ['COMM', '/sbin/launchd', '/Applications/GlobalProtect.app/Contents/Resources/PanGPS', '/Library/Application Support/Tunnelblick/openvpn/openvpn-2.6.8-openssl-3.0.12/openvpn', '/usr/bin/vpnagentd-helper', ''].join('\n');
    expect(parsePsComm(out)).toEqual([
      { client: 'GlobalProtect', process: 'PanGPS', pid: null },
      { client: 'OpenVPN', process: 'openvpn', pid: null },
    ]);
  });
});
