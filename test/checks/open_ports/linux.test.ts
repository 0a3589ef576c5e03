import fc from 'fast-check';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { isCheckError } from '../../../checks/errors.js';
import {
  AFTER_TCP_LISTENERS,
  decodeAddressBytes,
  formatIPv6,
  listenersFromProcNet,
  pidsFromProcListing,
  socketInode,
} from '../../../checks/open_ports/linux.js';

// Rows as a little-endian kernel prints them (captured shapes, addresses chosen for the cases).
const TCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode                                                     
   0: 0100007F:0277 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 20345 1 0000000000000000 100 0 0 10 0                     
   1: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 18934 1 0000000000000000 100 0 0 10 5                     
   2: 0200000A:0016 0100000A:D431 01 00000000:00000000 02:000A7D8C 00000000     0        0 40211 4 0000000000000000 20 4 29 10 -1                    
   3: 020200C0:46AD 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 6235 1 00000000c02ee0e0 100 0 0 10 0                      
   4: 0200000A:9C40 0100000A:0016 06 00000000:00000000 03:00000F2B 00000000     0        0 0 3 0000000000000000
`;

const TCP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 18936 1 0000000000000000 100 0 0 10 5
   1: 00000000000000000000000001000000:0277 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 20346 1 0000000000000000 100 0 0 10 0
   2: 0000000000000000FFFF00000100007F:46AA 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 6232 1 00000000422b30b6 100 0 0 10 0
   3: 0000000000000000FFFF00000500000A:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000    33        0 6240 1 0000000000000000 100 0 0 10 0
   4: B80D0120000000000000000005000000:01BB 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 6241 1 0000000000000000 100 0 0 10 0
   5: 000000FD000000000000000002000000:46AB 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 6233 1 0000000090c5e590 100 0 0 10 0
   6: 000000FD000000000000000002000000:0016 000000FD000000000000000009000000:C350 01 00000000:00000000 02:00099B2F 00000000     0        0 51234 2 0000000000000000 21 4 30 10 -1
`;

const UDP = `   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops            
  527: 00000000:46AE 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 6236 2 0000000069d21bda 0          
  771: 3500007F:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000   101        0 15023 2 0000000000000000 0          
  893: 0200000A:A3F1 08080808:0035 01 00000000:00000000 00:00000000 00000000  1000        0 70011 2 0000000000000000 0          
`;

const UDP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
 5051: 00000000000000000000000001000000:D85A 00000000000000000000000001000000:0035 01 00000000:00000000 00:00000000 00000000     0        0 6237 2 0000000076fa0990 0
 5052: 00000000000000000000000000000000:0202 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 6238 2 0000000000000000 0
`;

describe('open_ports /proc/net parser', () => {
  it('decodes little-endian IPv4 words and big-endian ports', () => {
    const rows = listenersFromProcNet(TCP, 'tcp', 'ipv4');
    expect(rows[0]).toMatchObject({ address: '127.0.0.1', port: 631, uid: 0, inode: 20345, scope: 'loopback' });
    expect(rows[2]).toMatchObject({ address: '192.0.2.2', port: 18093, uid: 1000, scope: 'specific' });
  });

  it('keeps only LISTEN rows of a TCP table', () => {
    expect(listenersFromProcNet(TCP, 'tcp', 'ipv4')).toEqual([
      { protocol: 'tcp', family: 'ipv4', address: '127.0.0.1', port: 631, scope: 'loopback', uid: 0, inode: 20345 },
      { protocol: 'tcp', family: 'ipv4', address: '0.0.0.0', port: 22, scope: 'wildcard', uid: 0, inode: 18934 },
      { protocol: 'tcp', family: 'ipv4', address: '192.0.2.2', port: 18093, scope: 'specific', uid: 1000, inode: 6235 },
    ]);
  });

  it('decodes IPv6, IPv4-mapped and documentation addresses canonically', () => {
    const got = listenersFromProcNet(TCP6, 'tcp', 'ipv6').map((l) => [l.address, l.port, l.scope]);
    expect(got).toEqual([
      ['::', 22, 'wildcard'],
      ['::1', 631, 'loopback'],
      ['::ffff:127.0.0.1', 18090, 'loopback'],
      ['::ffff:10.0.0.5', 8080, 'specific'],
      ['2001:db8::5', 443, 'specific'],
      ['fd00::2', 18091, 'specific'],
    ]);
  });

  it('keeps unconnected UDP sockets and skips connected ones (clients)', () => {
    expect(listenersFromProcNet(UDP, 'udp', 'ipv4').map((l) => [l.address, l.port, l.scope, l.uid])).toEqual([
      ['0.0.0.0', 18094, 'wildcard', 0],
      ['127.0.0.53', 53, 'loopback', 101],
    ]);
    expect(listenersFromProcNet(UDP6, 'udp', 'ipv6').map((l) => [l.address, l.port, l.inode])).toEqual([['::', 514, 6238]]);
  });

  it('accepts a table with only its header', () => {
    expect(listenersFromProcNet(TCP.split('\n')[0]!, 'tcp', 'ipv4')).toEqual([]);
  });

  it.each([
    ['no header', '   0: 0100007F:0277 00000000:0000 0A 0:0 0:0 0 0 0 1\n'],
    ['a short row', `${TCP.split('\n')[0]}\n   0: 0100007F:0277 00000000:0000 0A\n`],
    ['an IPv6 address in an IPv4 table', `${TCP.split('\n')[0]}\n${TCP6.split('\n')[1]}\n`],
    ['a non-numeric inode', `${TCP.split('\n')[0]}\n   0: 0100007F:0277 00000000:0000 0A 0:0 0:0 0 0 0 x 1\n`],
  ])('refuses %s with CHK_ERR_PARSE naming the line', (_what, text) => {
    let caught: unknown;
    try {
      listenersFromProcNet(text, 'tcp', 'ipv4', '/proc/net/tcp');
    } catch (err) {
      caught = err;
    }
    expect(isCheckError(caught) && caught.code).toBe('CHK_ERR_PARSE');
    expect(isCheckError(caught) && caught.subject).toMatch(/^\/proc\/net\/tcp:\d+$/);
  });
});

// The parser checks a row in one regular expression and decodes only the listeners; before,
// it split and decoded every row. This is that earlier parser, kept as the oracle: on any table,
// well-formed or not, both must give the same listeners or the same error.
function referenceListeners(text: string, protocol: 'tcp' | 'udp', family: 'ipv4' | 'ipv6', source: string): unknown[] {
  const fail = (line: number, what: string) => Object.assign(new Error(`unexpected ${what} in a /proc/net table`), { code: 'CHK_ERR_PARSE', subject: `${source}:${line}` });
  const endpoint = (x: string | undefined) => {
    if (x === undefined) return null;
    const [hexAddr, hexPort, extra] = x.split(':');
    if (hexAddr === undefined || hexPort === undefined || extra !== undefined || !/^[0-9A-Fa-f]{4}$/.test(hexPort)) return null;
    const bytes = decodeAddressBytes(hexAddr, family);
    return bytes === null ? null : { bytes, port: parseInt(hexPort, 16) };
  };
  const lines = text.split('\n');
  if (!(lines[0] ?? '').includes('local_address')) throw fail(1, 'header');
  const out: unknown[] = [];
  for (let n = 1; n < lines.length; n++) {
    const line = (lines[n] ?? '').trim();
    if (line === '') continue;
    const f = line.split(/\s+/);
    const [sl, local, remote, st, , , , uid, , inode] = f;
    if (f.length < 10 || sl === undefined || !/^\d+:$/.test(sl)) throw fail(n + 1, 'row');
    const l = endpoint(local);
    const r = endpoint(remote);
    if (l === null || r === null) throw fail(n + 1, 'address');
    if (st === undefined || !/^[0-9A-Fa-f]{2}$/.test(st)) throw fail(n + 1, 'state');
    if (uid === undefined || inode === undefined || !/^\d+$/.test(uid) || !/^\d+$/.test(inode)) throw fail(n + 1, 'uid or inode');
    const remoteUnspecified = r.bytes.every((b) => b === 0);
    const receiving = protocol === 'tcp' ? parseInt(st, 16) === 0x0a : remoteUnspecified && r.port === 0;
    if (!receiving || l.port === 0) continue;
    const address = family === 'ipv4' ? [...l.bytes].join('.') : formatIPv6(l.bytes);
    const scope = l.bytes.every((b) => b === 0) ? 'wildcard' : undefined;
    out.push({ address, port: l.port, uid: Number(uid), inode: Number(inode), ...(scope === undefined ? {} : { scope }) });
  }
  return out;
}

function outcome(run: () => unknown[]): unknown {
  try {
    return { ok: run() };
  } catch (err) {
    const e = err as { code?: unknown; subject?: unknown; message?: unknown };
    return { error: [e.code, e.subject, e.message] };
  }
}

describe('open_ports /proc/net parser against the earlier field-by-field parser (fast-check)', () => {
  const hex = (n: number) => fc.string({ unit: fc.constantFrom(...'0123456789ABCDEFabcdef'), minLength: n, maxLength: n });
  // Mostly well-formed fields, sometimes a broken one, so that every check gets its turn.
  const maybeBroken = (good: fc.Arbitrary<string>) => fc.oneof({ weight: 12, arbitrary: good }, { weight: 1, arbitrary: fc.constantFrom('', 'x', 'ZZ', '0A0', '1:2:3', '-1', '00000000:00000') });
  const zeroish = (n: number) => fc.oneof(fc.constant('0'.repeat(n)), hex(n));
  const endpoint = (n: number) => fc.tuple(zeroish(n), zeroish(4)).map(([a, p]) => `${a}:${p}`);
  const space = fc.constantFrom(' ', '  ', '\t', '   ');
  const row = (n: number) =>
    fc
      .tuple(
        fc.nat(9999).map((i) => `${i}:`),
        maybeBroken(endpoint(n)),
        maybeBroken(endpoint(n)),
        maybeBroken(fc.constantFrom('0A', '01', '06', '07', '0a', '08')),
        fc.constant('00000000:00000000'),
        fc.constant('00:00000000'),
        fc.constant('00000000'),
        maybeBroken(fc.nat(70000).map(String)),
        fc.constant('0'),
        maybeBroken(fc.nat(2 ** 31).map(String)),
        fc.array(fc.constantFrom('1', '0000000000000000', '100', '-1'), { maxLength: 6 }),
        fc.nat(11),
        space,
      )
      .map(([sl, l, r, st, q, tr, rt, uid, to, inode, rest, cut, sep]) => [sl, l, r, st, q, tr, rt, uid, to, inode, ...rest].slice(0, cut === 0 ? 6 : undefined).join(sep));

  it.each([
    ['tcp', 'ipv4', 8],
    ['udp', 'ipv4', 8],
    ['tcp', 'ipv6', 32],
    ['udp', 'ipv6', 32],
  ] as const)('%s %s: the same listeners, or the same error naming the same line', (protocol, family, n) => {
    fc.assert(
      fc.property(fc.array(row(n), { maxLength: 12 }), fc.boolean(), (rows, header) => {
        const text = `${header ? '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode' : '  sl'}\n${rows.map((r) => `   ${r}`).join('\n')}\n`;
        const got = outcome(() =>
          listenersFromProcNet(text, protocol, family, '/proc/net/x').map((l) => ({ address: l.address, port: l.port, uid: l.uid, inode: l.inode, ...(l.scope === 'wildcard' ? { scope: l.scope } : {}) })),
        );
        expect(got).toEqual(outcome(() => referenceListeners(text, protocol, family, '/proc/net/x')));
      }),
      { numRuns: 1500 },
    );
  });
});

describe('open_ports address formatting', () => {
  const v6 = (hex: string): string => formatIPv6(decodeAddressBytes(hex, 'ipv6')!);

  it.each([
    ['00000000000000000000000000000000', '::'],
    ['00000000000000000000000001000000', '::1'],
    ['0000000000000000FFFF0000FFFFFFFF', '::ffff:255.255.255.255'],
    // fe80::1:0:0:5 — the longer zero run is compressed, the single zero group is not
    ['000080FE000000000000010000000500', 'fe80::1:0:5:0'],
    // 2001:db8:0:0:1:0:0:1 — equal runs: the first one is compressed (RFC 5952 4.2.3)
    ['B80D0120000000000000010001000000', '2001:db8::1:0:0:1'],
    // 2001:db8:0:1:1:1:1:1 — a lone zero group stays as 0 (RFC 5952 4.2.2)
    ['B80D0120010000000100010001000100', '2001:db8:0:1:1:1:1:1'],
  ])('%s → %s', (hex, text) => {
    expect(v6(hex)).toBe(text);
  });

  it('agrees with the WHATWG URL parser, which compresses as RFC 5952 does', () => {
    // Zero-heavy groups so that runs of zeros, ties and edges all come up.
    const group = fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 0, max: 0xffff }));
    fc.assert(
      fc.property(fc.array(group, { minLength: 8, maxLength: 8 }), (groups) => {
        const bytes = new Uint8Array(groups.flatMap((g) => [g >> 8, g & 0xff]));
        // URL prints IPv4-mapped addresses in hex; that form is checked above.
        fc.pre(!(groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff));
        const expected = new URL(`http://[${groups.map((g) => g.toString(16)).join(':')}]/`).hostname.slice(1, -1);
        expect(formatIPv6(bytes)).toBe(expected);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('open_ports fd and /proc listings', () => {
  it('reads socket inodes from fd link targets only', () => {
    expect(socketInode('socket:[18934]')).toBe(18934);
    expect(socketInode('pipe:[18934]')).toBeNull();
    expect(socketInode('/var/log/socket:[1]')).toBeNull();
    expect(socketInode('anon_inode:[eventpoll]')).toBeNull();
  });

  it('lists numeric process directories in ascending order', () => {
    expect(
      pidsFromProcListing([
        { name: '812', type: 'dir' },
        { name: 'self', type: 'symlink' },
        { name: '1', type: 'dir' },
        { name: 'net', type: 'symlink' },
        { name: 'sys', type: 'dir' },
        { name: '77', type: 'dir' },
        { name: '99', type: 'file' },
      ]),
    ).toEqual([1, 77, 812]);
  });
});

/** What RealHostIO returns for `until`: whole lines up to the first that matches. */
function prefixUntil(text: string, until: RegExp): string {
  let at = 0;
  for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', at)) {
    const line = text.slice(at, nl);
    at = nl + 1;
    if (until.test(line)) return text.slice(0, at);
  }
  return text;
}

describe('open_ports reads a TCP table only as far as its listeners (kernel order: listeners first)', () => {
  const rowsOf = (t: string) => t.split('\n').slice(1).filter((l) => l.trim() !== '');
  const withState = (row: string, st: string) => row.replace(/^(\s*\d+: \S+ \S+ )[0-9A-F]{2} /, `$1${st} `);

  it('the header, LISTEN and SYN_RECV rows do not end the listeners; any other state does', () => {
    const [header, row] = [TCP.split('\n')[0]!, rowsOf(TCP)[0]!];
    expect(AFTER_TCP_LISTENERS.test(header)).toBe(false);
    expect(AFTER_TCP_LISTENERS.test(withState(row, '0A'))).toBe(false);
    expect(AFTER_TCP_LISTENERS.test(withState(row, '03'))).toBe(false);
    for (const st of ['01', '02', '04', '05', '06', '07', '08', '09', '0B', '0C']) expect(AFTER_TCP_LISTENERS.test(withState(row, st)), st).toBe(true);
    expect(AFTER_TCP_LISTENERS.test(rowsOf(TCP6).at(-1)!)).toBe(true);
  });

  it('for tables in kernel order, the prefix gives the same listeners as the whole table (fast-check)', () => {
    const v4 = rowsOf(TCP);
    const v6 = rowsOf(TCP6);
    fc.assert(
      fc.property(
        fc.boolean(),
        fc.array(fc.tuple(fc.nat(99), fc.constantFrom('0A', '0A', '03')), { maxLength: 12 }),
        fc.array(fc.tuple(fc.nat(99), fc.constantFrom('01', '02', '03', '06', '07', '08', '0B')), { maxLength: 12 }),
        (ipv6, listening, rest) => {
          const pool = ipv6 ? v6 : v4;
          const header = (ipv6 ? TCP6 : TCP).split('\n')[0]!;
          const rows = [...listening, ...rest].map(([i, st]) => withState(pool[i % pool.length]!, st));
          const text = `${[header, ...rows].join('\n')}\n`;
          const family = ipv6 ? 'ipv6' : 'ipv4';
          const prefix = prefixUntil(text, AFTER_TCP_LISTENERS);
          expect(text.startsWith(prefix)).toBe(true);
          expect(listenersFromProcNet(prefix, 'tcp', family)).toEqual(listenersFromProcNet(text, 'tcp', family));
        },
      ),
      { numRuns: 500 },
    );
  });

  it('every recorded and synthetic TCP table in the fixtures gives the same listeners from its prefix', () => {
    const base = path.resolve(import.meta.dirname, '../../fixtures/checks/open_ports/linux');
    let tables = 0;
    for (const c of readdirSync(base)) {
      const manifest = JSON.parse(readFileSync(path.join(base, c, 'manifest.json'), 'utf8')) as { calls: { op: string; path?: string; content?: string; file?: string }[] };
      for (const call of manifest.calls) {
        if (call.op !== 'readFile' || (call.path !== '/proc/net/tcp' && call.path !== '/proc/net/tcp6')) continue;
        const text = call.content ?? (call.file === undefined ? undefined : readFileSync(path.join(base, c, 'raw', call.file), 'utf8'));
        if (text === undefined) continue; // a recorded error
        const family = call.path.endsWith('6') ? 'ipv6' : 'ipv4';
        expect(listenersFromProcNet(prefixUntil(text, AFTER_TCP_LISTENERS), 'tcp', family), `${c} ${call.path}`).toEqual(listenersFromProcNet(text, 'tcp', family));
        tables++;
      }
    }
    expect(tables).toBeGreaterThan(10);
  });
});
