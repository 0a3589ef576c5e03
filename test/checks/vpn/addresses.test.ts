import { describe, expect, it } from 'vitest';
import {
  formatCidr,
  formatIpv6,
  globMatches,
  parseAddress,
  parseCidr,
  parseIpv4,
  parseIpv6,
  prefixContains,
} from '../../../checks/vpn/addresses.js';

describe('vpn addresses', () => {
  it('parses IPv4 and refuses what is not one', () => {
    expect(parseIpv4('192.0.2.1')).toBe(0xc0000201n);
    for (const bad of ['192.0.2', '192.0.2.256', '1.2.3.4.5', 'a.b.c.d', '01234.1.1.1', '']) expect(parseIpv4(bad), bad).toBeNull();
  });

  it('parses IPv6 with ::, zones and an embedded IPv4 tail', () => {
    expect(parseIpv6('::')).toBe(0n);
    expect(parseIpv6('::1')).toBe(1n);
    expect(parseIpv6('2001:db8::1')).toBe(0x20010db8000000000000000000000001n);
    expect(parseIpv6('fe80::1%en0')).toBe(0xfe800000000000000000000000000001n);
    expect(parseIpv6('::ffff:192.0.2.1')).toBe(0xffffc0000201n);
    for (const bad of ['1::2::3', '12345::', '1:2:3:4:5:6:7', '1:2:3:4:5:6:7:8:9', 'g::', '']) expect(parseIpv6(bad), bad).toBeNull();
  });

  it('formats IPv6 as RFC 5952 says', () => {
    expect(formatIpv6(0n)).toBe('::');
    expect(formatIpv6(0x20010db8000000000000000000000001n)).toBe('2001:db8::1');
    // A single zero group is not shortened; the longest run wins, the first of equal runs.
    expect(formatIpv6(parseIpv6('2001:db8:0:1:1:1:1:1')!)).toBe('2001:db8:0:1:1:1:1:1');
    expect(formatIpv6(parseIpv6('2001:0:0:1:0:0:0:1')!)).toBe('2001:0:0:1::1');
    expect(formatIpv6(parseIpv6('2001:db8:0:0:1:0:0:1')!)).toBe('2001:db8::1:0:0:1');
    expect(formatIpv6(parseIpv6('FE80::ABCD')!)).toBe('fe80::abcd');
  });

  it('reads IPv4-mapped IPv6 as IPv4', () => {
    expect(parseAddress('::ffff:203.0.113.9')).toEqual({ family: 'ipv4', address: parseIpv4('203.0.113.9') });
    expect(parseAddress(' 2001:db8::7 \n')).toEqual({ family: 'ipv6', address: parseIpv6('2001:db8::7') });
    expect(parseAddress('not an address')).toBeNull();
  });

  it('parses CIDRs, refusing set host bits and bad lengths', () => {
    expect(formatCidr(parseCidr('10.0.0.0/8')!)).toBe('10.0.0.0/8');
    expect(formatCidr(parseCidr('2001:db8::/32')!)).toBe('2001:db8::/32');
    expect(formatCidr(parseCidr('203.0.113.7')!)).toBe('203.0.113.7/32');
    for (const bad of ['10.0.0.1/8', '10.0.0.0/33', '::/129', '10.0.0.0/', '10.0.0.0/8/1', 'x/8', '10.0.0.0/-1']) expect(parseCidr(bad), bad).toBeNull();
  });

  it('tells whether one prefix holds another, within a family only', () => {
    const p = (s: string) => parseCidr(s)!;
    expect(prefixContains(p('0.0.0.0/0'), p('128.0.0.0/1'))).toBe(true);
    expect(prefixContains(p('0.0.0.0/1'), p('128.0.0.0/4'))).toBe(false);
    expect(prefixContains(p('10.0.0.0/8'), p('10.20.0.0/16'))).toBe(true);
    expect(prefixContains(p('10.20.0.0/16'), p('10.0.0.0/8'))).toBe(false);
    expect(prefixContains(p('::/1'), p('2000::/4'))).toBe(true);
    expect(prefixContains(p('::/0'), p('0.0.0.0/0'))).toBe(false);
  });

  it('matches interface globs literally apart from * and ?', () => {
    expect(globMatches('corp*', 'corp0')).toBe(true);
    expect(globMatches('corp*', 'xcorp0')).toBe(false);
    expect(globMatches('tun?', 'tun7')).toBe(true);
    expect(globMatches('tun?', 'tun10')).toBe(false);
    expect(globMatches('a.b', 'axb')).toBe(false);
    expect(globMatches('Corp VPN', 'corp vpn')).toBe(false);
    expect(globMatches('Corp VPN', 'corp vpn', true)).toBe(true);
  });
});
