// Pure: IP address text (as lsof and Windows print it) → family, canonical text and scope, so
// that listeners from every platform are described and judged alike.
import { formatIPv4, formatIPv6, scopeOf, type Family, type Scope } from './linux.js';

export function parseIPv4(text: string): Uint8Array | null {
  const parts = text.split('.');
  if (parts.length !== 4) return null;
  const bytes = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i] ?? '';
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return null;
    bytes[i] = Number(p);
  }
  return bytes;
}

/** RFC 4291 text forms: `::`, `fe80::1`, `::ffff:10.0.0.1`, full eight groups. No zone. */
export function parseIPv6(text: string): Uint8Array | null {
  if (!/^[0-9A-Fa-f:.]+$/.test(text)) return null;
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const groupsOf = (s: string): number[] | null => {
    if (s === '') return [];
    const out: number[] = [];
    const parts = s.split(':');
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i] ?? '';
      if (i === parts.length - 1 && p.includes('.')) {
        const v4 = parseIPv4(p);
        if (v4 === null) return null;
        out.push(((v4[0] ?? 0) << 8) | (v4[1] ?? 0), ((v4[2] ?? 0) << 8) | (v4[3] ?? 0));
        continue;
      }
      if (!/^[0-9A-Fa-f]{1,4}$/.test(p)) return null;
      out.push(parseInt(p, 16));
    }
    return out;
  };
  const head = groupsOf(halves[0] ?? '');
  const tail = halves.length === 2 ? groupsOf(halves[1] ?? '') : [];
  if (head === null || tail === null) return null;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return null;
  const groups = [...head, ...Array<number>(halves.length === 2 ? missing : 0).fill(0), ...tail];
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
