// IP addresses and prefixes as bigints, for the vpn check's route and CIDR arithmetic.
// Pure functions: parsing, RFC 5952 formatting, containment and interface-name globs.
import { formatIpv6Groups, parseIpv4Octets, parseIpv6Groups } from '../ipv6.js';

export type Family = 'ipv4' | 'ipv6';

export interface Prefix {
  family: Family;
  /** The network address (host bits cleared). */
  address: bigint;
  length: number;
}

export const BITS: Record<Family, number> = { ipv4: 32, ipv6: 128 };

export function parseIpv4(text: string): bigint | null {
  const octets = parseIpv4Octets(text);
  return octets === null ? null : octets.reduce((v, o) => (v << 8n) | BigInt(o), 0n);
}

export function parseIpv6(text: string): bigint | null {
  // Zone ids (fe80::1%en0) name a link, not part of the address.
  const groups = parseIpv6Groups(text.split('%')[0]!);
  return groups === null ? null : groups.reduce((v, g) => (v << 16n) | BigInt(g), 0n);
}

/** An address of either family; IPv4-mapped IPv6 (::ffff:a.b.c.d) is read as IPv4. */
export function parseAddress(text: string): { family: Family; address: bigint } | null {
  const t = text.trim();
  const v4 = parseIpv4(t);
  if (v4 !== null) return { family: 'ipv4', address: v4 };
  const v6 = parseIpv6(t);
  if (v6 === null) return null;
  if (v6 >> 32n === 0xffffn) return { family: 'ipv4', address: v6 & 0xffffffffn };
  return { family: 'ipv6', address: v6 };
}

export function formatIpv4(value: bigint): string {
  return [24n, 16n, 8n, 0n].map((s) => ((value >> s) & 0xffn).toString()).join('.');
}

/** RFC 5952 (checks/ipv6.ts). */
export function formatIpv6(value: bigint): string {
  return formatIpv6Groups(Array.from({ length: 8 }, (_, i) => Number((value >> BigInt(112 - 16 * i)) & 0xffffn)));
}

export function formatAddress(family: Family, value: bigint): string {
  return family === 'ipv4' ? formatIpv4(value) : formatIpv6(value);
}

function mask(family: Family, length: number): bigint {
  const bits = BITS[family];
  return length === 0 ? 0n : ((1n << BigInt(length)) - 1n) << BigInt(bits - length);
}

export function makePrefix(family: Family, address: bigint, length: number): Prefix {
  return { family, address: address & mask(family, length), length };
}

/** `10.0.0.0/8`, `2001:db8::/32`; a bare address is a host prefix. Host bits must be clear. */
export function parseCidr(text: string): Prefix | null {
  const [addrText, lenText, extra] = text.trim().split('/');
  if (addrText === undefined || extra !== undefined) return null;
  const v4 = parseIpv4(addrText);
  const family: Family | null = v4 !== null ? 'ipv4' : parseIpv6(addrText) !== null ? 'ipv6' : null;
  if (family === null) return null;
  const address = v4 ?? parseIpv6(addrText)!;
  const length = lenText === undefined ? BITS[family] : /^\d{1,3}$/.test(lenText) ? Number(lenText) : NaN;
  if (!(length >= 0 && length <= BITS[family])) return null;
  if ((address & mask(family, length)) !== address) return null;
  return { family, address, length };
}

export function formatCidr(p: Prefix): string {
  return `${formatAddress(p.family, p.address)}/${p.length}`;
}

/** True when every address of `inner` is inside `outer`. */
export function prefixContains(outer: Prefix, inner: Prefix): boolean {
  return outer.family === inner.family && outer.length <= inner.length && (inner.address & mask(outer.family, outer.length)) === outer.address;
}

export function addressIn(family: Family, address: bigint, p: Prefix): boolean {
  return prefixContains(p, { family, address, length: BITS[family] });
}

/** Interface-name globs: `*` any run, `?` one character; the rest is literal. */
export function globMatches(pattern: string, name: string, caseInsensitive = false): boolean {
  const source = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${source}$`, caseInsensitive ? 'i' : '').test(name);
}
