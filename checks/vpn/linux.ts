// Pure parsers for the Linux sources of the vpn check: /sys/class/net/<if>/*, /proc/net/route,
// /proc/net/ipv6_route, /proc/net/fib_trie and /proc/<pid>/comm.
import { CheckError } from '../errors.js';
import { formatIpv4, formatIpv6, makePrefix, formatCidr } from './addresses.js';
import type { ClientMatch, NetInterface, Route } from './index.js';

const IFF_UP = 0x1;
const IFF_TUN = 0x0001;
const IFF_TAP = 0x0002;
const ARPHRD_PPP = 512;

// /proc/net/route and /proc/net/ipv6_route flags (include/uapi/linux/route.h, ipv6_route.h).
const RTF_UP = 0x0001;
const RTF_GATEWAY = 0x0002;
const RTF_REJECT = 0x0200;
const RTF_LOCAL = 0x80000000;

/** Built-in interface name patterns that count as tunnels (the policy can add more). */
export const LINUX_TUNNEL_NAME_PATTERNS: readonly { prefix: string; kind: string }[] = [
  { prefix: 'tun', kind: 'tun' },
  { prefix: 'wg', kind: 'wireguard' },
  { prefix: 'ppp', kind: 'ppp' },
  { prefix: 'ipsec', kind: 'ipsec' },
];

export interface SysNetRaw {
  name: string;
  type: string;
  flags: string;
  operstate: string;
  /** Contents of uevent, or null when it could not be read. */
  uevent: string | null;
  /** Contents of tun_flags (only tun/tap devices have it), or null. */
  tunFlags: string | null;
}

function parseIntStrict(text: string, radix: 10 | 16, subject: string): number {
  const t = text.trim();
  const ok = radix === 10 ? /^-?\d+$/.test(t) : /^(0x)?[0-9a-fA-F]+$/.test(t);
  if (!ok) throw new CheckError('CHK_ERR_PARSE', `not a ${radix === 10 ? 'decimal' : 'hex'} number: ${JSON.stringify(t)}`, { subject });
  return parseInt(t.replace(/^0x/, ''), radix);
}

export function devtypeFromUevent(uevent: string | null): string | null {
  if (uevent === null) return null;
  const line = uevent.split('\n').find((l) => l.startsWith('DEVTYPE='));
  return line === undefined ? null : line.slice('DEVTYPE='.length).trim() || null;
}

/**
 * One interface from its sysfs attributes. "Up" is IFF_UP (administratively up), not carrier:
 * a tun device reports no carrier until its VPN process attaches, yet routes through it are
 * live, and without a reader the kernel drops what it routes there instead of sending it
 * elsewhere. A bare ARPHRD_NONE (65534) is not enough for a tunnel: WWAN modems in raw-IP mode
 * use it too.
 */
export function interfaceFromSysfs(raw: SysNetRaw): NetInterface {
  const subject = `/sys/class/net/${raw.name}`;
  const arpType = parseIntStrict(raw.type, 10, `${subject}/type`);
  const flags = parseIntStrict(raw.flags, 16, `${subject}/flags`);
  const devtype = devtypeFromUevent(raw.uevent);
  const tunFlags = raw.tunFlags === null ? null : raw.tunFlags.trim();
  let tunnelKind: string | null = null;
  let evidence: string | null = null;
  const tf = tunFlags === null ? null : parseIntStrict(tunFlags, 16, `${subject}/tun_flags`);
  if (tf !== null && (tf & IFF_TUN) !== 0 && (tf & IFF_TAP) === 0) {
    tunnelKind = 'tun';
    evidence = `tun_flags ${tunFlags} (IFF_TUN)`;
  } else if (devtype === 'wireguard') {
    tunnelKind = 'wireguard';
    evidence = 'DEVTYPE=wireguard';
  } else if (devtype === 'xfrm') {
    tunnelKind = 'ipsec';
    evidence = 'DEVTYPE=xfrm';
  } else if (devtype === 'ppp' || arpType === ARPHRD_PPP) {
    tunnelKind = 'ppp';
    evidence = devtype === 'ppp' ? 'DEVTYPE=ppp' : `type ${ARPHRD_PPP} (ARPHRD_PPP)`;
  } else {
    const byName = LINUX_TUNNEL_NAME_PATTERNS.find((p) => raw.name.startsWith(p.prefix));
    if (byName !== undefined) {
      tunnelKind = byName.kind;
      evidence = `name ${byName.prefix}*`;
    }
  }
  return {
    name: raw.name,
    up: (flags & IFF_UP) !== 0,
    tunnelKind,
    evidence,
    arpType,
    flags: `0x${flags.toString(16)}`,
    operstate: raw.operstate.trim(),
    devtype,
    tunFlags,
  };
}

/** `010200C0` (a little-endian u32 as printed by the kernel) → 192.0.2.1 as a bigint. */
function leHexToIpv4(hex: string, subject: string): bigint {
  if (!/^[0-9A-Fa-f]{8}$/.test(hex)) throw new CheckError('CHK_ERR_PARSE', `bad IPv4 hex ${JSON.stringify(hex)}`, { subject });
  const bytes = hex.match(/../g)!.map((b) => BigInt(parseInt(b, 16)));
  return (bytes[3]! << 24n) | (bytes[2]! << 16n) | (bytes[1]! << 8n) | bytes[0]!;
}

function maskLength(mask: bigint, subject: string): number {
  let len = 0;
  for (let bit = 31n; bit >= 0n && ((mask >> bit) & 1n) === 1n; bit--) len++;
  const expected = len === 0 ? 0n : ((1n << BigInt(len)) - 1n) << BigInt(32 - len);
  if (expected !== mask) throw new CheckError('CHK_ERR_PARSE', `non-contiguous netmask ${formatIpv4(mask)}`, { subject });
  return len;
}

/**
 * /proc/net/route: the IPv4 main table only (the kernel prints no other). Addresses are
 * little-endian hex (every platform the agent ships for is little-endian), Metric is decimal.
 * Iface `*` is a route without a device (blackhole); RTF_REJECT marks unreachable/prohibit.
 */
export function parseProcNetRoute(text: string, subject = '/proc/net/route'): Route[] {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const header = lines.shift()?.trim().split(/\s+/) ?? [];
  const col = (name: string): number => {
    const i = header.indexOf(name);
    if (i < 0) throw new CheckError('CHK_ERR_PARSE', `no ${name} column`, { subject });
    return i;
  };
  const [iIface, iDest, iGw, iFlags, iMetric, iMask] = ['Iface', 'Destination', 'Gateway', 'Flags', 'Metric', 'Mask'].map(col) as [number, number, number, number, number, number];
  const routes: Route[] = [];
  for (const line of lines) {
    const f = line.trim().split(/\s+/);
    if (f.length < header.length) throw new CheckError('CHK_ERR_PARSE', `short route line ${JSON.stringify(line.trim())}`, { subject });
    const flags = parseIntStrict(f[iFlags]!, 16, subject);
    if ((flags & RTF_UP) === 0) continue;
    const dest = leHexToIpv4(f[iDest]!, subject);
    const length = maskLength(leHexToIpv4(f[iMask]!, subject), subject);
    const gw = leHexToIpv4(f[iGw]!, subject);
    const iface = f[iIface]!;
    routes.push({
      family: 'ipv4',
      destination: formatCidr(makePrefix('ipv4', dest, length)),
      gateway: (flags & RTF_GATEWAY) !== 0 ? formatIpv4(gw) : null,
      interface: iface === '*' ? null : iface,
      metric: parseIntStrict(f[iMetric]!, 10, subject),
      flags: `0x${flags.toString(16).padStart(4, '0')}`,
      reject: (flags & RTF_REJECT) !== 0 || iface === '*',
      scoped: false,
    });
  }
  return routes;
}

function hexToIpv6(hex: string, subject: string): bigint {
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw new CheckError('CHK_ERR_PARSE', `bad IPv6 hex ${JSON.stringify(hex)}`, { subject });
  return BigInt(`0x${hex}`);
}

/**
 * /proc/net/ipv6_route: dest, dest prefix length, source, source prefix length, next hop,
 * metric, refcount, use, flags, device (all hex but the device). It lists every routing table
 * without saying which. Local-table entries (RTF_LOCAL) and multicast are left out, and so is
 * the kernel's null entry (not RTF_UP). Reject routes (unreachable, prohibit, blackhole) stay,
 * marked: they win a lookup like any other and send nothing.
 */
export function parseIpv6Route(text: string, subject = '/proc/net/ipv6_route'): Route[] {
  const routes: Route[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length === 1 && f[0] === '') continue;
    if (f.length !== 10) throw new CheckError('CHK_ERR_PARSE', `unexpected ipv6_route line ${JSON.stringify(line.trim())}`, { subject });
    const [destHex, plenHex, , , nhHex, metricHex, , , flagsHex, device] = f as [string, string, string, string, string, string, string, string, string, string];
    const flags = parseIntStrict(flagsHex, 16, subject);
    if ((flags & RTF_UP) === 0 || (flags & RTF_LOCAL) !== 0) continue;
    const dest = hexToIpv6(destHex, subject);
    if (dest >> 120n === 0xffn) continue;
    const length = parseIntStrict(plenHex, 16, subject);
    if (length > 128) throw new CheckError('CHK_ERR_PARSE', `prefix length ${length}`, { subject });
    const nh = hexToIpv6(nhHex, subject);
    const reject = (flags & RTF_REJECT) !== 0;
    routes.push({
      family: 'ipv6',
      destination: formatCidr(makePrefix('ipv6', dest, length)),
      gateway: nh === 0n ? null : formatIpv6(nh),
      interface: device,
      metric: parseIntStrict(metricHex, 16, subject),
      flags: `0x${flags.toString(16).padStart(8, '0')}`,
      reject,
      scoped: false,
    });
  }
  return routes;
}

export interface OtherTable {
  table: number;
  /** Unicast prefixes of /4 or shorter: the ones that could carry default traffic. */
  wide: string[];
}

/**
 * /proc/net/fib_trie prints each IPv4 routing table ("Main:", "Local:", "Id <n>:") with its
 * prefixes, but neither devices nor rules. Tables other than main and local mean policy routing
 * (wg-quick's table 51820, for one), which /proc/net/route cannot show.
 */
export function otherTablesFromFibTrie(text: string, subject = '/proc/net/fib_trie'): OtherTable[] {
  const tables = new Map<number, Set<string>>();
  let current: number | null = null;
  let leaf: bigint | null = null;
  for (const line of text.split('\n')) {
    const header = /^(Main|Local|Id (\d+)):\s*$/.exec(line);
    if (header !== null) {
      current = header[2] === undefined ? null : Number(header[2]);
      if (current !== null && !tables.has(current)) tables.set(current, new Set());
      leaf = null;
      continue;
    }
    const leafMatch = /^\s*\|--\s+(\d+\.\d+\.\d+\.\d+)\s*$/.exec(line);
    if (leafMatch !== null) {
      const [a, b, c, d] = leafMatch[1]!.split('.').map((x) => BigInt(Number(x))) as [bigint, bigint, bigint, bigint];
      leaf = (a << 24n) | (b << 16n) | (c << 8n) | d;
      continue;
    }
    const entry = /^\s*\/(\d+)\s+\S+\s+(\S+)/.exec(line);
    if (entry !== null && current !== null) {
      if (leaf === null) throw new CheckError('CHK_ERR_PARSE', 'prefix entry before any leaf', { subject });
      const length = Number(entry[1]);
      if (length <= 4 && entry[2] === 'UNICAST') tables.get(current)!.add(formatCidr(makePrefix('ipv4', leaf, length)));
    }
  }
  return [...tables.entries()].sort((a, b) => a[0] - b[0]).map(([table, wide]) => ({ table, wide: [...wide].sort() }));
}

/**
 * VPN clients by /proc/<pid>/comm (at most 15 bytes, so long names are matched on their
 * first 15). Supporting evidence only: a running client proves no tunnel.
 */
export const LINUX_CLIENTS: readonly { process: string; client: string }[] = [
  { process: 'openvpn', client: 'OpenVPN' },
  { process: 'nm-openvpn-service', client: 'NetworkManager OpenVPN plugin' },
  { process: 'wireguard-go', client: 'WireGuard (userspace)' },
  { process: 'boringtun', client: 'WireGuard (boringtun)' },
  { process: 'boringtun-cli', client: 'WireGuard (boringtun)' },
  { process: 'charon', client: 'strongSwan' },
  { process: 'charon-systemd', client: 'strongSwan' },
  { process: 'charon-nm', client: 'strongSwan (NetworkManager)' },
  { process: 'pluto', client: 'Libreswan' },
  { process: 'vpnagentd', client: 'Cisco AnyConnect / Secure Client' },
  { process: 'PanGPS', client: 'GlobalProtect' },
  { process: 'PanGPA', client: 'GlobalProtect' },
  { process: 'openconnect', client: 'OpenConnect' },
  { process: 'nm-openconnect-service', client: 'NetworkManager OpenConnect plugin' },
  { process: 'openfortivpn', client: 'openfortivpn' },
  { process: 'zstunnel', client: 'Zscaler' },
  { process: 'ZSATunnel', client: 'Zscaler' },
  { process: 'xl2tpd', client: 'L2TP (xl2tpd)' },
];

export function clientForComm(comm: string): string | null {
  const name = comm.trim();
  if (name === '') return null;
  return LINUX_CLIENTS.find((c) => c.process.slice(0, 15) === name)?.client ?? null;
}

export function matchClient(pid: number, comm: string): ClientMatch | null {
  const client = clientForComm(comm);
  return client === null ? null : { client, process: comm.trim(), pid };
}
