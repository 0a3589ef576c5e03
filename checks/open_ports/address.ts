// Pure: IP address text (as lsof and Windows print it) → family, canonical text and scope, so
// that listeners from every platform are described and judged alike.
import { parseIpv4Octets, parseIpv6Groups } from '../ipv6.js';
import { formatIPv4, formatIPv6, scopeOf, type Family, type Scope } from './linux.js';

export function parseIPv4(text: string): Uint8Array | null {
  const octets = parseIpv4Octets(text);
  return octets === null ? null : Uint8Array.from(octets);
}

/** RFC 4291 text forms: `::`, `fe80::1`, `::ffff:10.0.0.1`, full eight groups. No zone. */
export function parseIPv6(text: string): Uint8Array | null {
  const groups = parseIpv6Groups(text);
  if (groups === null) return null;
  const bytes = new Uint8Array(16);
  groups.forEach((g, i) => {
    bytes[i * 2] = g >> 8;
    bytes[i * 2 + 1] = g & 0xff;
  });
  return bytes;
}

export interface ParsedAddress {
  family: Family;
  /** Canonical text (RFC 5952 for IPv6), with its `%zone` kept. */
  address: string;
  scope: Scope;
}

/**
 * `0.0.0.0`, `127.0.0.1`, `::`, `::1`, `fe80::1%12`. `*` (lsof's wildcard) needs the family
 * from elsewhere: it is `0.0.0.0` for IPv4 and `::` for IPv6.
 */
export function parseAddress(text: string, family?: Family): ParsedAddress | null {
  if (text === '*') {
    if (family === undefined) return null;
    return family === 'ipv4' ? { family, address: '0.0.0.0', scope: 'wildcard' } : { family, address: '::', scope: 'wildcard' };
  }
  const v4 = parseIPv4(text);
  if (v4 !== null) {
    if (family === 'ipv6') return null;
    return { family: 'ipv4', address: formatIPv4(v4), scope: scopeOf(v4, 'ipv4') };
  }
  const zoneAt = text.indexOf('%');
  const bare = zoneAt < 0 ? text : text.slice(0, zoneAt);
  const zone = zoneAt < 0 ? '' : text.slice(zoneAt);
  const v6 = parseIPv6(bare);
  if (v6 === null || family === 'ipv4' || zone === '%') return null;
  return { family: 'ipv6', address: formatIPv6(v6) + zone, scope: scopeOf(v6, 'ipv6') };
}
