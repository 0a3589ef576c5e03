import { describe, expect, it } from 'vitest';
import { jsonRows, parseAdapters, parseProcesses, parseRoutes, parseVpnConnections } from '../../../checks/vpn/win32.js';

describe('vpn Windows parsers', () => {
  it('accepts what ConvertTo-Json prints for none, one and many results', () => {
    expect(jsonRows('', 's')).toEqual([]);
    expect(jsonRows('\r\n', 's')).toEqual([]);
    expect(jsonRows('{"a":1}', 's')).toEqual([{ a: 1 }]);
    expect(jsonRows('\uFEFF[{"a":1},{"a":2}]\r\n', 's')).toEqual([{ a: 1 }, { a: 2 }]);
    expect(() => jsonRows('Get-NetAdapter : error', 's')).toThrow(expect.objectContaining({ code: 'CHK_ERR_PARSE', subject: 's' }));
    expect(() => jsonRows('[1,2]', 's')).toThrow(/expected JSON objects/);
  });

  it('reads adapters and recognises VPN drivers by description or component id', () => {
    const out = JSON.stringify([
      { Name: 'Wi-Fi', InterfaceDescription: 'Intel(R) Wi-Fi 6 AX201 160MHz', ifIndex: 12, Status: 'Up', ComponentID: 'PCI\\VEN_8086' },
      { Name: 'Ethernet 2', InterfaceDescription: 'PANGP Virtual Ethernet Adapter Secure', ifIndex: 23, Status: 'Up', ComponentID: null },
      { Name: 'Ethernet 3', InterfaceDescription: 'Zscaler Network Adapter 1.0.2.0', ifIndex: 6, Status: 'Disconnected' },
      { Name: 'Local Area Connection', InterfaceDescription: 'Cisco AnyConnect Secure Mobility Client Virtual Miniport Adapter for Windows x64', ifIndex: 19, Status: 'Up' },
      { Name: 'corp', InterfaceDescription: 'WireGuard Tunnel', ifIndex: 31, Status: 'Up' },
      { Name: 'OpenVPN Connect', InterfaceDescription: 'Some renamed adapter', ifIndex: 40, Status: 'Up', ComponentID: 'TAP0901' },
      { Name: 'vEthernet (WSL)', InterfaceDescription: 'Hyper-V Virtual Ethernet Adapter', ifIndex: 50, Status: 'Up' },
    ]);
    expect(parseAdapters(out).map((a) => [a.name, a.up, a.tunnelKind, a.evidence])).toEqual([
      ['Wi-Fi', true, null, null],
      ['Ethernet 2', true, 'globalprotect', 'description PANGP Virtual Ethernet Adapter Secure'],
      ['Ethernet 3', false, 'zscaler', 'description Zscaler Network Adapter 1.0.2.0'],
      ['Local Area Connection', true, 'anyconnect', 'description Cisco AnyConnect Secure Mobility Client Virtual Miniport Adapter for Windows x64'],
      ['corp', true, 'wireguard', 'description WireGuard Tunnel'],
      ['OpenVPN Connect', true, 'openvpn-tap', 'ComponentID TAP0901'],
      ['vEthernet (WSL)', true, null, null],
    ]);
    expect(parseAdapters(JSON.stringify({ Name: 'Wi-Fi', InterfaceDescription: 'x', ifIndex: 12, Status: 'Up' }))).toHaveLength(1);
    expect(() => parseAdapters(JSON.stringify({ Name: 'Wi-Fi', ifIndex: '12' }))).toThrow(/ifIndex is not an integer/);
  });

  it('reads VPN connections, one per name, connected winning over a disconnected twin', () => {
    const out = JSON.stringify([
      { Name: 'Contoso', ConnectionStatus: 'Disconnected', TunnelType: 'Automatic', SplitTunneling: true },
      { Name: 'Contoso', ConnectionStatus: 'Connected', TunnelType: 'Ikev2', SplitTunneling: false },
      { Name: 'Alpha', ConnectionStatus: 'Disconnected', TunnelType: 'Sstp', SplitTunneling: null },
    ]);
    expect(parseVpnConnections(out)).toEqual([
      { name: 'Alpha', state: 'Disconnected', type: 'Sstp', vpn: true, enabled: true, splitTunneling: null },
      { name: 'Contoso', state: 'Connected', type: 'Ikev2', vpn: true, enabled: true, splitTunneling: false },
    ]);
    expect(parseVpnConnections('')).toEqual([]);
  });

  it('reads routes with RouteMetric + InterfaceMetric, string or numeric AddressFamily', () => {
    const out = JSON.stringify([
      { DestinationPrefix: '0.0.0.0/0', NextHop: '192.168.1.1', ifIndex: 12, InterfaceAlias: 'Wi-Fi', RouteMetric: 0, InterfaceMetric: 35, AddressFamily: 'IPv4' },
      { DestinationPrefix: '0.0.0.0/0', NextHop: '0.0.0.0', ifIndex: 45, InterfaceAlias: 'Contoso VPN', RouteMetric: 0, InterfaceMetric: 1, AddressFamily: 2 },
      { DestinationPrefix: '::/0', NextHop: '::', ifIndex: 45, InterfaceAlias: 'Contoso VPN', RouteMetric: 0, InterfaceMetric: null, AddressFamily: 23 },
      { DestinationPrefix: '2001:0db8::/32', NextHop: 'fe80::1', ifIndex: 12, InterfaceAlias: 'Wi-Fi', RouteMetric: 256, InterfaceMetric: 35, AddressFamily: 'IPv6' },
    ]);
    expect(parseRoutes(out)).toEqual([
      { family: 'ipv4', destination: '0.0.0.0/0', gateway: '192.168.1.1', interface: 'Wi-Fi', ifIndex: 12, metric: 35, flags: '', reject: false, scoped: false },
      { family: 'ipv4', destination: '0.0.0.0/0', gateway: null, interface: 'Contoso VPN', ifIndex: 45, metric: 1, flags: '', reject: false, scoped: false },
      { family: 'ipv6', destination: '::/0', gateway: null, interface: 'Contoso VPN', ifIndex: 45, metric: 0, flags: '', reject: false, scoped: false },
      { family: 'ipv6', destination: '2001:db8::/32', gateway: 'fe80::1', interface: 'Wi-Fi', ifIndex: 12, metric: 291, flags: '', reject: false, scoped: false },
    ]);
    expect(() => parseRoutes(JSON.stringify({ DestinationPrefix: '0.0.0.0/0', AddressFamily: 'IPX' }))).toThrow(/AddressFamily/);
    expect(() => parseRoutes(JSON.stringify({ DestinationPrefix: '::/0', AddressFamily: 'IPv4', InterfaceAlias: 'x', ifIndex: 1, RouteMetric: 0 }))).toThrow(/DestinationPrefix/);
  });

  it('reads the client processes Get-Process found', () => {
    expect(parseProcesses(JSON.stringify({ Name: 'vpnagent', Id: 4120 }))).toEqual([{ client: 'Cisco AnyConnect / Secure Client', process: 'vpnagent', pid: 4120 }]);
    expect(parseProcesses(JSON.stringify([{ Name: 'PanGPS', Id: 1 }, { Name: 'zsatunnel', Id: 2 }])).map((p) => p.client)).toEqual(['GlobalProtect', 'Zscaler']);
    expect(parseProcesses('')).toEqual([]);
  });
});
