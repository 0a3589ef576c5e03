// Pure parsers for the macOS sources of the vpn check: `ifconfig -a`, `netstat -rn`,
// `scutil --nc list` and `ps -axo comm`.
import { CheckError } from '../errors.js';
import { BITS, formatCidr, makePrefix, parseIpv4, parseIpv6, type Family } from './addresses.js';
import type { ClientMatch, NetInterface, Route, VpnService } from './index.js';

/** Built-in tunnel name patterns on macOS (utun: Network Extension and kernel-control VPNs). */
export const DARWIN_TUNNEL_NAME_PATTERNS: readonly { prefix: string; kind: string }[] = [
  { prefix: 'utun', kind: 'utun' },
  { prefix: 'ipsec', kind: 'ipsec' },
  { prefix: 'ppp', kind: 'ppp' },
  { prefix: 'tun', kind: 'tun' },
  { prefix: 'tap', kind: 'tap' },
];

/** Interface header lines of `ifconfig -a`: `utun3: flags=8051<UP,POINTOPOINT,RUNNING,MULTICAST> mtu 1380`. */
export function parseIfconfig(text: string, subject = '/sbin/ifconfig -a'): NetInterface[] {
  const out: NetInterface[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || /^\s/.test(line)) continue;
    const m = /^([A-Za-z0-9_.-]+): flags=([0-9a-fA-F]+)<([^>]*)>/.exec(line);
    if (m === null) throw new CheckError('CHK_ERR_PARSE', `unexpected ifconfig line ${JSON.stringify(line)}`, { subject });
    const name = m[1]!;
    const flagNames = m[3] === '' ? [] : m[3]!.split(',');
    const byName = DARWIN_TUNNEL_NAME_PATTERNS.find((p) => name.startsWith(p.prefix) && /^\d+$/.test(name.slice(p.prefix.length)));
    out.push({
      name,
      up: flagNames.includes('UP'),
      tunnelKind: byName?.kind ?? null,
      evidence: byName === undefined ? null : `name ${byName.prefix}*`,
      flags: flagNames.join(','),
    });
  }
  if (out.length === 0) throw new CheckError('CHK_ERR_PARSE', 'ifconfig listed no interfaces', { subject });
  return out;
}

/**
 * A netstat destination as a prefix. netstat abbreviates IPv4 networks: trailing zero octets are
 * dropped and the length is left out when it is the classful one (`127` is 127/8, `169.254` is
 * /16, `192.168.1` is /24, `10.10.10/24` says its own). Host entries (flag H) are /32 or /128.
 */
export function parseNetstatDestination(family: Family, text: string, hostFlag: boolean): string | null {
  if (text === 'default') return family === 'ipv4' ? '0.0.0.0/0' : '::/0';
  const [addrWithZone, lenText] = text.split('/');
  const addrText = (addrWithZone ?? '').split('%')[0]!;
  if (family === 'ipv6') {
    const value = parseIpv6(addrText);
    if (value === null) return null;
    const length = lenText === undefined ? 128 : Number(lenText);
    if (!(length >= 0 && length <= 128)) return null;
    return formatCidr(makePrefix('ipv6', value, length));
  }
  const octets = addrText.split('.');
  if (octets.length < 1 || octets.length > 4 || octets.some((o) => !/^\d{1,3}$/.test(o) || Number(o) > 255)) return null;
  const value = parseIpv4([...octets, '0', '0', '0'].slice(0, 4).join('.'))!;
  let length: number;
  if (lenText !== undefined) {
    length = Number(lenText);
  } else if (hostFlag || octets.length === 4) {
    length = 32;
  } else {
    const first = Number(octets[0]);
    const classful = first < 128 ? 8 : first < 192 ? 16 : first < 224 ? 24 : 32;
    length = Math.max(classful, octets.length * 8);
  }
  if (!(length >= 0 && length <= BITS.ipv4)) return null;
  return formatCidr(makePrefix('ipv4', value, length));
}

/**
 * `netstat -rn`: "Internet:" and "Internet6:" sections, each with a header naming the columns
 * (older releases add Refs and Use before Netif). Link-layer entries (flag L: ARP and neighbour
 * cache) and multicast (m) are skipped. Flag I (RTF_IFSCOPE) marks a route only sockets bound to
 * that interface use, such as the idle `default fe80::%utun0` of system services.
 */
export function parseNetstatRoutes(text: string, subject = '/usr/sbin/netstat -rn'): Route[] {
  const routes: Route[] = [];
  let family: Family | null = null;
  let netifCol = -1;
  let sawSection = false;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line === 'Routing tables') continue;
    if (line === 'Internet:' || line === 'Internet6:') {
      family = line === 'Internet:' ? 'ipv4' : 'ipv6';
      netifCol = -1;
      sawSection = true;
      continue;
    }
    if (family === null) continue;
    const f = line.split(/\s+/);
    if (f[0] === 'Destination') {
      netifCol = f.indexOf('Netif');
      if (netifCol < 0) throw new CheckError('CHK_ERR_PARSE', 'no Netif column', { subject });
      continue;
    }
    if (netifCol < 0) throw new CheckError('CHK_ERR_PARSE', 'route line before the column header', { subject });
    if (f.length < netifCol + 1) throw new CheckError('CHK_ERR_PARSE', `short route line ${JSON.stringify(line)}`, { subject });
    const flags = f[2]!;
    if (flags.includes('L') || flags.includes('m')) continue;
    const destination = parseNetstatDestination(family, f[0]!, flags.includes('H'));
    if (destination === null) throw new CheckError('CHK_ERR_PARSE', `unreadable destination ${JSON.stringify(f[0])}`, { subject });
    const gatewayText = f[1]!;
    routes.push({
      family,
      destination,
      gateway: flags.includes('G') ? gatewayText : null,
      interface: f[netifCol]!,
      metric: null,
      flags,
      reject: flags.includes('B') || flags.includes('R'),
      scoped: flags.includes('I'),
    });
  }
  if (!sawSection) throw new CheckError('CHK_ERR_PARSE', 'no Internet: section in netstat output', { subject });
  return routes;
}

const NC_LINE = /^(\*)?\s*\(([^)]*)\)\s+([0-9A-Fa-f-]{36})\s+(.*?)\s*"([^"]*)"\s*(?:\[([^\]]*)\])?\s*$/;

/**
 * `scutil --nc list`: one line per network connection service after a header:
 * `* (Connected)      <UUID> VPN (com.wireguard.macos) "Office"   [VPN:com.wireguard.macos]`.
 * VPN kinds are VPN:* (Network Extension and IKEv2), IPSec, PPP:L2TP and PPP:PPTP; PPP:Modem and
 * PPPoE are dial-up links, listed but not VPNs.
 */
export function parseScutilNcList(text: string, subject = '/usr/sbin/scutil --nc list'): VpnService[] {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  if (!lines[0]?.startsWith('Available network connection services')) {
    throw new CheckError('CHK_ERR_PARSE', 'scutil --nc list printed no service header', { subject });
  }
  const out: VpnService[] = [];
  for (const line of lines.slice(1)) {
    const m = NC_LINE.exec(line.trim());
    if (m === null) throw new CheckError('CHK_ERR_PARSE', `unexpected scutil line ${JSON.stringify(line)}`, { subject });
    const kind = m[6] ?? m[4]!.split(/\s+/)[0] ?? '';
    out.push({
      name: m[5]!,
      state: m[2]!,
      type: kind,
      vpn: /^(VPN(:|$)|IPSec$|PPP:(L2TP|PPTP)$)/.test(kind),
      enabled: m[1] === '*',
    });
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Executable names (basename of ps's comm, which is the full path on macOS) of known VPN clients. */
export const DARWIN_CLIENTS: readonly { process: string; client: string }[] = [
  { process: 'openvpn', client: 'OpenVPN' },
  { process: 'wireguard-go', client: 'WireGuard (userspace)' },
  { process: 'WireGuardNetworkExtension', client: 'WireGuard' },
  { process: 'PanGPS', client: 'GlobalProtect' },
  { process: 'PanGPA', client: 'GlobalProtect' },
  { process: 'vpnagentd', client: 'Cisco AnyConnect / Secure Client' },
  { process: 'ZscalerTunnel', client: 'Zscaler' },
  { process: 'ZSATunnel', client: 'Zscaler' },
  { process: 'charon', client: 'strongSwan' },
  { process: 'racoon', client: 'built-in L2TP/IPsec' },
  { process: 'openconnect', client: 'OpenConnect' },
  { process: 'openfortivpn', client: 'openfortivpn' },
];

/** `ps -axo comm`: a COMM header, then one executable path per line (paths may hold spaces). */
export function parsePsComm(text: string): ClientMatch[] {
  const found: ClientMatch[] = [];
  for (const raw of text.split('\n').slice(1)) {
    const line = raw.trim();
    if (line === '') continue;
    const base = line.slice(line.lastIndexOf('/') + 1);
    const hit = DARWIN_CLIENTS.find((c) => c.process === base);
    if (hit !== undefined) found.push({ client: hit.client, process: base, pid: null });
  }
  return found;
}
