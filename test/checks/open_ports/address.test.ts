import { describe, expect, it } from 'vitest';
import { parseAddress, parseIPv4, parseIPv6 } from '../../../checks/open_ports/address.js';

describe('parseIPv4 and parseIPv6', () => {
  it('reads dotted quads and refuses anything else', () => {
    expect([...(parseIPv4('192.168.10.21') ?? [])]).toEqual([192, 168, 10, 21]);
    for (const bad of ['256.0.0.1', '1.2.3', '1.2.3.4.5', '01234.1.1.1', 'a.b.c.d', '']) expect(parseIPv4(bad), bad).toBeNull();
  });

  it('reads the RFC 4291 text forms', () => {
    const hex = (s: string) => Buffer.from(parseIPv6(s) ?? []).toString('hex');
    expect(hex('::')).toBe('0'.repeat(32));
    expect(hex('::1')).toBe(`${'0'.repeat(31)}1`);
    expect(hex('fe80::1')).toBe(`fe80${'0'.repeat(27)}1`);
    expect(hex('2001:db8:0:0:0:0:2:1')).toBe('20010db8000000000000000000020001');
    expect(hex('::ffff:10.0.0.1')).toBe('00000000000000000000ffff0a000001');
    expect(hex('1:2:3:4:5:6:7::')).toBe('00010002000300040005000600070000');
    for (const bad of ['1::2::3', ':::', '12345::', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7', 'g::1', '::1.2.3', '']) expect(parseIPv6(bad), bad).toBeNull();
  });
});

describe('parseAddress', () => {
  it.each([
    ['0.0.0.0', undefined, { family: 'ipv4', address: '0.0.0.0', scope: 'wildcard' }],
    ['127.0.0.53', undefined, { family: 'ipv4', address: '127.0.0.53', scope: 'loopback' }],
    ['10.1.2.3', undefined, { family: 'ipv4', address: '10.1.2.3', scope: 'specific' }],
    ['::', undefined, { family: 'ipv6', address: '::', scope: 'wildcard' }],
    ['::1', undefined, { family: 'ipv6', address: '::1', scope: 'loopback' }],
    ['0:0:0:0:0:0:0:1', undefined, { family: 'ipv6', address: '::1', scope: 'loopback' }],
    ['::ffff:127.0.0.1', undefined, { family: 'ipv6', address: '::ffff:127.0.0.1', scope: 'loopback' }],
    ['FE80::AEDE:48FF:FE00:1122%12', undefined, { family: 'ipv6', address: 'fe80::aede:48ff:fe00:1122%12', scope: 'specific' }],
    ['fe80:4::1', 'ipv6', { family: 'ipv6', address: 'fe80:4::1', scope: 'specific' }],
    ['*', 'ipv4', { family: 'ipv4', address: '0.0.0.0', scope: 'wildcard' }],
    ['*', 'ipv6', { family: 'ipv6', address: '::', scope: 'wildcard' }],
  ] as const)('%s (%s)', (text, family, want) => {
    expect(parseAddress(text, family)).toEqual(want);
  });

  it('refuses a wildcard without a family, a family that disagrees, and junk', () => {
    expect(parseAddress('*')).toBeNull();
    expect(parseAddress('10.0.0.1', 'ipv6')).toBeNull();
    expect(parseAddress('::1', 'ipv4')).toBeNull();
    expect(parseAddress('fe80::1%')).toBeNull();
    expect(parseAddress('localhost')).toBeNull();
  });
});
