// Pure parsers for the Linux sources of open_ports: /proc/net/{tcp,tcp6,udp,udp6} and the
// `socket:[<inode>]` links under /proc/<pid>/fd. No I/O here; index.ts does the reading.
import { CheckError } from '../errors.js';
import type { DirEntry } from '../types.js';

export type Protocol = 'tcp' | 'udp';
export type Family = 'ipv4' | 'ipv6';
export type Scope = 'wildcard' | 'loopback' | 'specific';

/** One row of a /proc/net table, decoded. */
export interface ProcNetSocket {
  localAddress: string;
  localPort: number;
  remoteAddress: string;
  remotePort: number;
  /** True when the remote address is all zeros (unspecified). */
  remoteUnspecified: boolean;
  /** Kernel socket state (include/net/tcp_states.h): 0x0A is LISTEN, 0x07 is CLOSE. */
  state: number;
  uid: number;
  inode: number;
  scope: Scope;
}

/** A socket that accepts traffic on a local port. */
export interface ParsedListener {
  protocol: Protocol;
  family: Family;
  address: string;
  port: number;
  scope: Scope;
  uid: number;
  inode: number;
}

export const TCP_LISTEN = 0x0a;

const HEX8 = /^[0-9A-Fa-f]{8}$/;
const HEX32 = /^[0-9A-Fa-f]{32}$/;
const HEX4 = /^[0-9A-Fa-f]{4}$/;
const DECIMAL = /^\d+$/;

/**
 * Decodes the address half of `0100007F:0277`. The kernel prints each 32-bit word of the
 * address with %08X in host byte order, so on little-endian machines (x86-64, arm64, and every
 * other platform the agent ships for) the bytes of each word appear reversed. Big-endian hosts
 * would need the words read as-is; we do not support them.
 */
export function decodeAddressBytes(hex: string, family: Family): Uint8Array | null {
  if (!(family === 'ipv4' ? HEX8 : HEX32).test(hex)) return null;
  const bytes = new Uint8Array(hex.length / 2);
  for (let word = 0; word < hex.length / 8; word++) {
    for (let i = 0; i < 4; i++) {
      const at = word * 8 + (3 - i) * 2;
      bytes[word * 4 + i] = parseInt(hex.slice(at, at + 2), 16);
    }
  }
  return bytes;
}

export function formatIPv4(b: Uint8Array, offset = 0): string {
  return `${b[offset]}.${b[offset + 1]}.${b[offset + 2]}.${b[offset + 3]}`;
}

function isIPv4Mapped(b: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return false;
  return b[10] === 0xff && b[11] === 0xff;
}

/** RFC 5952: lower case, no leading zeros, the longest run (≥2) of zero groups as `::`. */
export function formatIPv6(b: Uint8Array): string {
  if (isIPv4Mapped(b)) return `::ffff:${formatIPv4(b, 12)}`;
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((b[i] ?? 0) << 8) | (b[i + 1] ?? 0));
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestLen < 2) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

function allZero(b: Uint8Array): boolean {
  return b.every((x) => x === 0);
}

export function scopeOf(b: Uint8Array, family: Family): Scope {
  if (allZero(b)) return 'wildcard';
  if (family === 'ipv4') return b[0] === 127 ? 'loopback' : 'specific';
  if (isIPv4Mapped(b)) return b[12] === 127 ? 'loopback' : 'specific';
  for (let i = 0; i < 15; i++) if (b[i] !== 0) return 'specific';
  return b[15] === 1 ? 'loopback' : 'specific';
}

function parseError(source: string, line: number, what: string): CheckError {
  return new CheckError('CHK_ERR_PARSE', `unexpected ${what} in a /proc/net table`, { subject: `${source}:${line}` });
}

/**
 * Parses a /proc/net/{tcp,tcp6,udp,udp6} table. Columns after the header:
 * `sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...`.
 */
export function parseProcNet(text: string, family: Family, source = '/proc/net'): ProcNetSocket[] {
  const lines = text.split('\n');
  if (!(lines[0] ?? '').includes('local_address')) throw parseError(source, 1, 'header');
  const out: ProcNetSocket[] = [];
  for (let n = 1; n < lines.length; n++) {
    const line = (lines[n] ?? '').trim();
    if (line === '') continue;
    const f = line.split(/\s+/);
    const [sl, local, remote, st, , , , uid, , inode] = f;
    if (f.length < 10 || sl === undefined || !/^\d+:$/.test(sl)) throw parseError(source, n + 1, 'row');
    const l = splitEndpoint(local, family);
    const r = splitEndpoint(remote, family);
    if (l === null || r === null) throw parseError(source, n + 1, 'address');
    if (st === undefined || !/^[0-9A-Fa-f]{2}$/.test(st)) throw parseError(source, n + 1, 'state');
    if (uid === undefined || inode === undefined || !DECIMAL.test(uid) || !DECIMAL.test(inode)) {
      throw parseError(source, n + 1, 'uid or inode');
    }
    out.push({
      localAddress: l.address,
      localPort: l.port,
      remoteAddress: r.address,
      remotePort: r.port,
      remoteUnspecified: allZero(r.bytes),
      state: parseInt(st, 16),
      uid: Number(uid),
      inode: Number(inode),
      scope: scopeOf(l.bytes, family),
    });
  }
  return out;
}

function splitEndpoint(s: string | undefined, family: Family): { bytes: Uint8Array; address: string; port: number } | null {
  if (s === undefined) return null;
  const [hexAddr, hexPort, extra] = s.split(':');
  if (hexAddr === undefined || hexPort === undefined || extra !== undefined || !HEX4.test(hexPort)) return null;
  const bytes = decodeAddressBytes(hexAddr, family);
  if (bytes === null) return null;
  // The port is printed after ntohs, so it reads as a plain number.
  return { bytes, address: family === 'ipv4' ? formatIPv4(bytes) : formatIPv6(bytes), port: parseInt(hexPort, 16) };
}

/**
 * The sockets of one table that accept traffic: TCP in LISTEN; UDP whose remote end is unset
 * (a connected UDP socket is a client and only takes datagrams from its peer).
 */
export function listenersFromProcNet(text: string, protocol: Protocol, family: Family, source?: string): ParsedListener[] {
  const out: ParsedListener[] = [];
  for (const s of parseProcNet(text, family, source)) {
    const receiving = protocol === 'tcp' ? s.state === TCP_LISTEN : s.remoteUnspecified && s.remotePort === 0;
    // Port 0 is not bound to anything a peer could reach.
    if (!receiving || s.localPort === 0) continue;
    out.push({ protocol, family, address: s.localAddress, port: s.localPort, scope: s.scope, uid: s.uid, inode: s.inode });
  }
  return out;
}

/** `socket:[12345]` → 12345; anything else (files, pipes, anon inodes) → null. */
export function socketInode(target: string): number | null {
  const m = /^socket:\[(\d+)\]$/.exec(target);
  return m?.[1] === undefined ? null : Number(m[1]);
}

/** Process ids from a listing of /proc, ascending (so scans and fixtures are deterministic). */
export function pidsFromProcListing(entries: readonly DirEntry[]): number[] {
  return entries
    .filter((e) => e.type === 'dir' && /^[1-9]\d*$/.test(e.name))
    .map((e) => Number(e.name))
    .sort((a, b) => a - b);
}
