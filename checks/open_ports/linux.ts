// Pure parsers for the Linux sources of open_ports: /proc/net/{tcp,tcp6,udp,udp6} and the
// `socket:[<inode>]` links under /proc/<pid>/fd. No I/O here; index.ts does the reading.
import { CheckError } from '../errors.js';
import type { DirEntry } from '../types.js';
import { formatIpv6Groups } from '../ipv6.js';

export type Protocol = 'tcp' | 'udp';
export type Family = 'ipv4' | 'ipv6';
export type Scope = 'wildcard' | 'loopback' | 'specific';

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

/**
 * A /proc/net/tcp{,6} row that comes after every listener. The kernel lists the listening hash
 * first, then the established hash (tcp_seq_next in net/ipv4/tcp_ipv4.c), so once such a row is
 * read the rest of the table holds no listener, and not reading it spares the kernel the walk of
 * the whole established hash. SYN_RECV (03) does not end the listeners: before Linux 4.4 the
 * open requests were listed under their listener, between listeners.
 */
export const AFTER_TCP_LISTENERS = /^\s*\d+: [0-9A-Fa-f]+:[0-9A-Fa-f]+ [0-9A-Fa-f]+:[0-9A-Fa-f]+ (?!0A|0a|03)[0-9A-Fa-f]{2} /;

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

/** RFC 5952, with IPv4-mapped addresses in their dotted form. */
export function formatIPv6(b: Uint8Array): string {
  if (isIPv4Mapped(b)) return `::ffff:${formatIPv4(b, 12)}`;
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((b[i] ?? 0) << 8) | (b[i + 1] ?? 0));
  return formatIpv6Groups(groups);
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

/** One row's fields, checked but not decoded: most rows of a busy host are not listeners. */
interface RawRow {
  local: string;
  localPort: string;
  remote: string;
  remotePort: string;
  state: string;
  uid: string;
  inode: string;
}

/** A well-formed row in one match; any other row goes through the field checks for its exact error. */
const ROW = {
  ipv4: /^\d+:\s+([0-9A-Fa-f]{8}):([0-9A-Fa-f]{4})\s+([0-9A-Fa-f]{8}):([0-9A-Fa-f]{4})\s+([0-9A-Fa-f]{2})\s+\S+\s+\S+\s+\S+\s+(\d+)\s+\S+\s+(\d+)(?:\s|$)/,
  ipv6: /^\d+:\s+([0-9A-Fa-f]{32}):([0-9A-Fa-f]{4})\s+([0-9A-Fa-f]{32}):([0-9A-Fa-f]{4})\s+([0-9A-Fa-f]{2})\s+\S+\s+\S+\s+\S+\s+(\d+)\s+\S+\s+(\d+)(?:\s|$)/,
} as const;

/**
 * The rows of a /proc/net/{tcp,tcp6,udp,udp6} table. Columns after the header:
 * `sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...`.
 */
function rawRows(text: string, family: Family, source: string): RawRow[] {
  const lines = text.split('\n');
  if (!(lines[0] ?? '').includes('local_address')) throw parseError(source, 1, 'header');
  const out: RawRow[] = [];
  for (let n = 1; n < lines.length; n++) {
    const line = (lines[n] ?? '').trim();
    if (line === '') continue;
    const m = ROW[family].exec(line);
    out.push(m === null ? checkedRow(line, family, source, n + 1) : { local: m[1]!, localPort: m[2]!, remote: m[3]!, remotePort: m[4]!, state: m[5]!, uid: m[6]!, inode: m[7]! });
  }
  return out;
}

/** The field-by-field checks, which name what is wrong with a row. */
function checkedRow(line: string, family: Family, source: string, lineNo: number): RawRow {
  const f = line.split(/\s+/);
  const [sl, local, remote, st, , , , uid, , inode] = f;
  if (f.length < 10 || sl === undefined || !/^\d+:$/.test(sl)) throw parseError(source, lineNo, 'row');
  const l = splitEndpoint(local, family);
  const r = splitEndpoint(remote, family);
  if (l === null || r === null) throw parseError(source, lineNo, 'address');
  if (st === undefined || !/^[0-9A-Fa-f]{2}$/.test(st)) throw parseError(source, lineNo, 'state');
  if (uid === undefined || inode === undefined || !DECIMAL.test(uid) || !DECIMAL.test(inode)) {
    throw parseError(source, lineNo, 'uid or inode');
  }
  return { local: l.hexAddr, localPort: l.hexPort, remote: r.hexAddr, remotePort: r.hexPort, state: st, uid, inode };
}

function decodeEndpoint(hexAddr: string, family: Family): { bytes: Uint8Array; address: string } {
  const bytes = decodeAddressBytes(hexAddr, family)!;
  return { bytes, address: family === 'ipv4' ? formatIPv4(bytes) : formatIPv6(bytes) };
}

function splitEndpoint(s: string | undefined, family: Family): { hexAddr: string; hexPort: string } | null {
  if (s === undefined) return null;
  const [hexAddr, hexPort, extra] = s.split(':');
  if (hexAddr === undefined || hexPort === undefined || extra !== undefined || !HEX4.test(hexPort)) return null;
  // The port is printed after ntohs, so it reads as a plain number.
  return decodeAddressBytes(hexAddr, family) === null ? null : { hexAddr, hexPort };
}

const ZEROS = /^0+$/;

/**
 * The sockets of one table that accept traffic: TCP in LISTEN; UDP whose remote end is unset
 * (a connected UDP socket is a client and only takes datagrams from its peer). Only these rows
 * are decoded; every row is still checked.
 */
export function listenersFromProcNet(text: string, protocol: Protocol, family: Family, source = '/proc/net'): ParsedListener[] {
  const out: ParsedListener[] = [];
  for (const row of rawRows(text, family, source)) {
    const receiving = protocol === 'tcp' ? parseInt(row.state, 16) === TCP_LISTEN : ZEROS.test(row.remote) && ZEROS.test(row.remotePort);
    // Port 0 is not bound to anything a peer could reach.
    if (!receiving || ZEROS.test(row.localPort)) continue;
    const l = decodeEndpoint(row.local, family);
    out.push({ protocol, family, address: l.address, port: parseInt(row.localPort, 16), scope: scopeOf(l.bytes, family), uid: Number(row.uid), inode: Number(row.inode) });
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
