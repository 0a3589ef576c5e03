// The IPv6 text forms open_ports and vpn share, held to Node's own parser.
import { isIPv6 } from 'node:net';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatIpv6Groups, parseIpv4Octets, parseIpv6Groups } from '../../checks/ipv6.js';

const groups = fc.array(fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffff })), { minLength: 8, maxLength: 8 });

describe('IPv6 text', () => {
  it('parses back every address it prints, in RFC 5952 form, and Node agrees it is IPv6', () => {
    fc.assert(
      fc.property(groups, (g) => {
        const text = formatIpv6Groups(g);
        expect(isIPv6(text)).toBe(true);
        expect(parseIpv6Groups(text)).toEqual(g);
        expect(parseIpv6Groups(text.toUpperCase())).toEqual(g);
      }),
    );
  });

  it('reads the other RFC 4291 forms: all eight groups, leading zeros, an IPv4 tail', () => {
    expect(parseIpv6Groups('0:0:0:0:0:0:0:1')).toEqual([0, 0, 0, 0, 0, 0, 0, 1]);
    expect(parseIpv6Groups('2001:0db8::0005')).toEqual([0x2001, 0xdb8, 0, 0, 0, 0, 0, 5]);
    expect(parseIpv6Groups('::ffff:10.0.0.1')).toEqual([0, 0, 0, 0, 0, 0xffff, 0x0a00, 0x0001]);
  });

  it('refuses what is not one address, as Node does', () => {
    for (const bad of ['', ':', ':::', '1::2::3', '1:2:3:4:5:6:7', '1:2:3:4:5:6:7:8:9', '::1:2:3:4:5:6:7:8', '12345::', 'g::', '::1.2.3', '::1.2.3.256', '1.2.3.4', ' ::1']) {
      expect(isIPv6(bad), bad).toBe(false);
      expect(parseIpv6Groups(bad), bad).toBeNull();
    }
    // A zone names a link, not part of the address: callers that accept one strip it first.
    expect(parseIpv6Groups('fe80::1%eth0')).toBeNull();
    expect(parseIpv4Octets('10.0.0.256')).toBeNull();
    expect(parseIpv4Octets('10.0.0')).toBeNull();
    expect(parseIpv4Octets('10.0.0.1')).toEqual([10, 0, 0, 1]);
  });
});
