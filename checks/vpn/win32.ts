// Pure parsers for the Windows sources of the vpn check: Windows PowerShell 5.1 ConvertTo-Json
// output of Get-NetAdapter, Get-VpnConnection, Get-NetRoute and Get-Process.
import { CheckError } from '../errors.js';
import { formatCidr, parseCidr } from './addresses.js';
import type { ClientMatch, NetInterface, Route, VpnService } from './index.js';

/**
 * ConvertTo-Json rows: a single result is an object, several an array, none empty output.
 * A UTF-8 byte order mark is tolerated.
 */
export function jsonRows(text: string, subject: string): Record<string, unknown>[] {
  const t = text.replace(/^\uFEFF/, '').trim();
  if (t === '') return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(t);
  } catch (err) {
    throw new CheckError('CHK_ERR_PARSE', 'output is not JSON', { subject, cause: err });
  }
  const rows = Array.isArray(parsed) ? parsed : [parsed];
  for (const r of rows) {
    if (r === null || typeof r !== 'object' || Array.isArray(r)) throw new CheckError('CHK_ERR_PARSE', 'expected JSON objects', { subject });
  }
  return rows as Record<string, unknown>[];
}

function str(row: Record<string, unknown>, key: string, subject: string): string {
  const v = row[key];
  if (typeof v !== 'string') throw new CheckError('CHK_ERR_PARSE', `${key} is not a string`, { subject });
  return v;
}

function optStr(row: Record<string, unknown>, key: string): string | null {
  const v = row[key];
  return typeof v === 'string' ? v : null;
}

function int(row: Record<string, unknown>, key: string, subject: string): number {
  const v = row[key];
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new CheckError('CHK_ERR_PARSE', `${key} is not an integer`, { subject });
  return v;
}

/**
 * Virtual adapters of VPN clients, by InterfaceDescription (the driver's name, which users do not
 * rename) or by ComponentID (the driver's hardware id).
 */
export const WIN32_TUNNEL_DESCRIPTIONS: readonly { pattern: RegExp; kind: string }[] = [
  { pattern: /^WireGuard Tunnel/i, kind: 'wireguard' },
  { pattern: /^Wintun Userspace Tunnel/i, kind: 'wintun' },
  { pattern: /^TAP-Windows Adapter/i, kind: 'openvpn-tap' },
  { pattern: /^OpenVPN (Data Channel Offload|Wintun)/i, kind: 'openvpn' },
  { pattern: /AnyConnect.*Virtual Miniport Adapter/i, kind: 'anyconnect' },
  { pattern: /Cisco Secure Client.*Virtual Miniport Adapter/i, kind: 'anyconnect' },
  { pattern: /^PANGP Virtual Ethernet Adapter/i, kind: 'globalprotect' },
  { pattern: /^Zscaler Network Adapter/i, kind: 'zscaler' },
  { pattern: /^Fortinet (SSL VPN )?Virtual Ethernet Adapter/i, kind: 'fortinet' },
];

const TUNNEL_COMPONENT_IDS: readonly { id: string; kind: string }[] = [
  { id: 'tap0901', kind: 'openvpn-tap' },
  { id: 'wintun', kind: 'wintun' },
  { id: 'ovpn-dco', kind: 'openvpn' },
];

/** Get-NetAdapter rows: Name, InterfaceDescription, ifIndex, Status (as a string), ComponentID. */
export function parseAdapters(text: string, subject = 'Get-NetAdapter'): NetInterface[] {
  return jsonRows(text, subject).map((row) => {
    const name = str(row, 'Name', subject);
    const description = optStr(row, 'InterfaceDescription') ?? '';
    const componentId = optStr(row, 'ComponentID');
    const status = optStr(row, 'Status') ?? String(row.Status ?? '');
    const byDesc = WIN32_TUNNEL_DESCRIPTIONS.find((d) => d.pattern.test(description));
    const byComponent = componentId === null ? undefined : TUNNEL_COMPONENT_IDS.find((c) => c.id === componentId.toLowerCase());
    return {
      name,
      up: status === 'Up',
      tunnelKind: byDesc?.kind ?? byComponent?.kind ?? null,
      evidence: byDesc !== undefined ? `description ${description}` : byComponent !== undefined ? `ComponentID ${componentId}` : null,
      description,
      ifIndex: int(row, 'ifIndex', subject),
      status,
      componentId,
    };
  });
}

/** Get-VpnConnection rows (the user's and -AllUserConnection): Name, ConnectionStatus, TunnelType, SplitTunneling. */
export function parseVpnConnections(text: string, subject = 'Get-VpnConnection'): VpnService[] {
  const seen = new Map<string, VpnService>();
  for (const row of jsonRows(text, subject)) {
    const name = str(row, 'Name', subject);
    const svc: VpnService = {
      name,
      state: optStr(row, 'ConnectionStatus') ?? String(row.ConnectionStatus ?? 'unknown'),
      type: optStr(row, 'TunnelType') ?? String(row.TunnelType ?? ''),
      vpn: true,
      enabled: true,
      splitTunneling: typeof row.SplitTunneling === 'boolean' ? row.SplitTunneling : null,
    };
    // The same name can be both a user and an all-user connection; connected wins.
    const prev = seen.get(name);
    if (prev === undefined || (prev.state !== 'Connected' && svc.state === 'Connected')) seen.set(name, svc);
  }
  return [...seen.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** AddressFamily is "IPv4"/"IPv6" when selected as a string, 2/23 when left an enum. */
function familyOf(v: unknown, subject: string): 'ipv4' | 'ipv6' {
  if (v === 'IPv4' || v === 2) return 'ipv4';
  if (v === 'IPv6' || v === 23) return 'ipv6';
  throw new CheckError('CHK_ERR_PARSE', `unknown AddressFamily ${JSON.stringify(v)}`, { subject });
}

/**
 * Get-NetRoute (ActiveStore) rows: DestinationPrefix, NextHop, ifIndex, InterfaceAlias, RouteMetric,
 * InterfaceMetric, AddressFamily. The metric that orders routes is RouteMetric + InterfaceMetric.
 */
export function parseRoutes(text: string, subject = 'Get-NetRoute'): Route[] {
  return jsonRows(text, subject).map((row) => {
    const family = familyOf(row.AddressFamily, subject);
    const prefix = parseCidr(str(row, 'DestinationPrefix', subject));
    if (prefix === null || prefix.family !== family) {
      throw new CheckError('CHK_ERR_PARSE', `bad DestinationPrefix ${JSON.stringify(row.DestinationPrefix)}`, { subject });
    }
    const nextHop = optStr(row, 'NextHop');
    const onLink = nextHop === null || nextHop === '0.0.0.0' || nextHop === '::';
    const interfaceMetric = typeof row.InterfaceMetric === 'number' ? row.InterfaceMetric : 0;
    return {
      family,
      destination: formatCidr(prefix),
      gateway: onLink ? null : nextHop,
      interface: str(row, 'InterfaceAlias', subject),
      ifIndex: int(row, 'ifIndex', subject),
      metric: int(row, 'RouteMetric', subject) + interfaceMetric,
      flags: '',
      reject: false,
      scoped: false,
    };
  });
}

/** Get-Process -Name <known clients>: ProcessName and Id of the ones running. */
export const WIN32_CLIENTS: readonly { process: string; client: string }[] = [
  { process: 'openvpn', client: 'OpenVPN' },
  { process: 'openvpnserv', client: 'OpenVPN' },
  { process: 'openvpnserv2', client: 'OpenVPN' },
  { process: 'wireguard', client: 'WireGuard' },
  { process: 'PanGPS', client: 'GlobalProtect' },
  { process: 'PanGPA', client: 'GlobalProtect' },
  { process: 'vpnagent', client: 'Cisco AnyConnect / Secure Client' },
  { process: 'ZSATunnel', client: 'Zscaler' },
  { process: 'ZSAService', client: 'Zscaler' },
  { process: 'FortiSSLVPNdaemon', client: 'FortiClient' },
];

export function parseProcesses(text: string, subject = 'Get-Process'): ClientMatch[] {
  return jsonRows(text, subject).map((row) => {
    const name = str(row, 'Name', subject);
    const client = WIN32_CLIENTS.find((c) => c.process.toLowerCase() === name.toLowerCase())?.client ?? 'unknown';
    return { client, process: name, pid: int(row, 'Id', subject) };
  });
}
