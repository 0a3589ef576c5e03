// The tlog-tiles layout against the spec's examples and a naive SHA-256 RFC 6962 tree: paths,
// which tiles exist at a size, tile bytes, reading hashes and roots back from tiles only.
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CollectorError } from '../../../collector/errors.js';
import {
  MAX_ENTRY_SIZE,
  TILE_HEIGHT,
  TILE_WIDTH,
  decodeEntryBundle,
  encodeEntryBundle,
  entriesPath,
  hashFromTile,
  parseTilePath,
  tileBytes,
  tileFor,
  tilePath,
  tilesToWrite,
} from '../../../collector/log/tiles.js';
import type { NodeHashes, TileRef } from '../../../collector/log/tiles.js';

const sha256 = (...parts: Uint8Array[]): Buffer => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};
const leafHash = (e: Uint8Array): Buffer => sha256(Buffer.of(0), e);
const nodeHash = (l: Buffer, r: Buffer): Buffer => sha256(Buffer.of(1), l, r);
const entry = (i: number): Buffer => Buffer.from(`entry ${i}`);

/** Every complete node of a tree of N leaves, level by level. */
class NaiveTree {
  readonly levels: Buffer[][];
  constructor(readonly n: number) {
    const leaves: Buffer[] = [];
    for (let i = 0; i < n; i++) leaves.push(leafHash(entry(i)));
    this.levels = [leaves];
    for (let row = leaves; row.length >= 2; ) {
      const up: Buffer[] = [];
      for (let i = 0; i + 1 < row.length; i += 2) up.push(nodeHash(row[i] as Buffer, row[i + 1] as Buffer));
      this.levels.push(up);
      row = up;
    }
  }
  node(level: number, index: number): Buffer {
    const h = this.levels[level]?.[index];
    if (h === undefined) throw new Error(`no node (${level}, ${index})`);
    return h;
  }
  /** The tree of its first `size` leaves; refuses nodes not complete there. */
  at(size: number): NodeHashes {
    if (size > this.n) throw new Error('too big');
    return {
      size,
      hashAt: (level, index) => {
        if ((index + 1) * 2 ** level > size) throw new Error(`node (${level}, ${index}) is incomplete at ${size}`);
        return this.node(level, index);
      },
    };
  }
  private readonly memo = new Map<string, Buffer>();
  /** RFC 6962 MTH(D[lo:hi]) by its recursive definition, from the leaf hashes (memoized). */
  mth(lo: number, hi: number): Buffer {
    if (hi === lo) return sha256();
    if (hi - lo === 1) return this.node(0, lo);
    const memoKey = `${lo}:${hi}`;
    const known = this.memo.get(memoKey);
    if (known !== undefined) return known;
    let k = 1;
    while (k * 2 < hi - lo) k *= 2;
    const h = nodeHash(this.mth(lo, lo + k), this.mth(lo + k, hi));
    this.memo.set(memoKey, h);
    return h;
  }
}

const BIG = 70_000;
const naive = new NaiveTree(BIG);

const key = (t: TileRef) => tilePath(t);
const isNotFound = (f: () => unknown) => {
  try {
    f();
  } catch (err) {
    return err instanceof CollectorError && err.code === 'COL_ERR_NOT_FOUND';
  }
  return false;
};
const expectCode = (f: () => unknown, code: 'COL_ERR_NOT_FOUND' | 'COL_ERR_MALFORMED') => {
  let caught: unknown;
  try {
    f();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(CollectorError);
  expect((caught as CollectorError).code).toBe(code);
};

/** The tiles the spec says a tree of size s has, from its definitions (not the module's loop). */
function specTiles(s: number): Set<string> {
  const out = new Set<string>();
  for (let l = 0; Math.floor(s / 256 ** l) > 0; l++) {
    // A full tile exists once its "end index" (n + 1) * 256**(l+1) is within the tree.
    for (let n = 0; (n + 1) * 256 ** (l + 1) <= s; n++) out.add(tilePath({ level: l, index: n, width: 256 }));
    // "The partial tile at level l for a tree of size s has floor(s / 256**l) mod 256 entries."
    const w = Math.floor(s / 256 ** l) % 256;
    if (w !== 0) out.add(tilePath({ level: l, index: Math.floor(s / 256 ** (l + 1)), width: w }));
  }
  return out;
}

/** Writes every tile and bundle of tilesToWrite(old, size) into `store`. */
function writeTiles(store: Map<string, Buffer>, old: number, size: number): void {
  const tree = naive.at(size);
  const plan = tilesToWrite(old, size);
  for (const t of plan.tiles) store.set(tilePath(t), tileBytes(tree, t));
  for (const b of plan.entries) {
    const es: Buffer[] = [];
    for (let i = 0; i < b.width; i++) es.push(entry(b.index * TILE_WIDTH + i));
    store.set(entriesPath(b.index, b.width), encodeEntryBundle(es));
  }
}

/** A reader that sees only the stored tiles: RFC 6962 MTH of a tree of `size`. */
function rootFromTiles(store: Map<string, Buffer>, size: number): Buffer {
  const read = (level: number, index: number): Buffer => {
    const t = tileFor(level, index, size);
    const bytes = store.get(tilePath(t));
    if (bytes === undefined) throw new Error(`reader: missing ${tilePath(t)}`);
    return hashFromTile(bytes, t, level, index);
  };
  // The tree of size s is its complete subtrees, largest (leftmost) first, folded from the right.
  const parts: Buffer[] = [];
  let start = 0;
  for (let level = 52; level >= 0; level--) {
    if (Math.floor(size / 2 ** level) % 2 === 1) {
      parts.push(read(level, start / 2 ** level));
      start += 2 ** level;
    }
  }
  if (parts.length === 0) return sha256();
  let root = parts.pop() as Buffer;
  while (parts.length > 0) root = nodeHash(parts.pop() as Buffer, root);
  return root;
}

describe('tile paths: the spec examples', () => {
  // The spec: "index 1234067 will be encoded as x001/x234/067".
  it.each([
    ['tile/0/x001/x234/067', { level: 0, index: 1234067, width: 256 }],
    ['tile/1/x001/x234/067.p/8', { level: 1, index: 1234067, width: 8 }],
    // The spec's size-70,000 tree: the last full and the partial level 0 tiles, the level 1 and 2 tiles.
    ['tile/0/272', { level: 0, index: 272, width: 256 }],
    ['tile/0/273.p/112', { level: 0, index: 273, width: 112 }],
    ['tile/1/000', { level: 1, index: 0, width: 256 }],
    ['tile/1/001.p/17', { level: 1, index: 1, width: 17 }],
    ['tile/2/000.p/1', { level: 2, index: 0, width: 1 }],
    ['tile/0/000', { level: 0, index: 0, width: 256 }],
    ['tile/0/999.p/255', { level: 0, index: 999, width: 255 }],
    ['tile/0/x001/000', { level: 0, index: 1000, width: 256 }],
    ['tile/63/x001/x000/000', { level: 63, index: 1_000_000, width: 256 }],
    ['tile/0/x009/x007/x199/x254/x740/991', { level: 0, index: Number.MAX_SAFE_INTEGER, width: 256 }],
  ])('%s', (path, tile) => {
    expect(tilePath(tile)).toBe(path);
    expect(parseTilePath(path)).toEqual({ kind: 'tile', tile });
  });

  it.each([
    ['tile/entries/x001/x234/067', 1234067, 256],
    ['tile/entries/273.p/112', 273, 112],
    ['tile/entries/000.p/1', 0, 1],
    ['tile/entries/272', 272, 256],
  ])('%s', (path, index, width) => {
    expect(entriesPath(index, width)).toBe(path);
    expect(parseTilePath(path)).toEqual({ kind: 'entries', index, width });
  });

  it('round-trips any tile or bundle reference', () => {
    const ref = fc.record({
      level: fc.integer({ min: 0, max: 63 }),
      index: fc.oneof(fc.integer({ min: 0, max: 5000 }), fc.maxSafeNat()),
      width: fc.integer({ min: 1, max: 256 }),
    });
    fc.assert(
      fc.property(ref, (t) => {
        expect(parseTilePath(tilePath(t))).toEqual({ kind: 'tile', tile: t });
        expect(parseTilePath(entriesPath(t.index, t.width))).toEqual({ kind: 'entries', index: t.index, width: t.width });
      }),
    );
  });

  it('refuses to build a path from a bad reference', () => {
    for (const t of [
      { level: 64, index: 0, width: 256 },
      { level: -1, index: 0, width: 256 },
      { level: 0, index: -1, width: 256 },
      { level: 0, index: 1.5, width: 256 },
      { level: 0, index: 0, width: 0 },
      { level: 0, index: 0, width: 257 },
    ]) expect(() => tilePath(t)).toThrow(RangeError);
    expect(() => entriesPath(0, 0)).toThrow(RangeError);
    expect(() => entriesPath(Number.MAX_SAFE_INTEGER + 1, 1)).toThrow(RangeError);
  });
});

describe('tile paths: malformed ones are refused', () => {
  it.each([
    'tile/0/1234', // not grouped
    'tile/0/x1/002', // short group
    'tile/0/001.p/0', // width 0
    'tile/0/001.p/256', // a full tile has no .p
    'tile/0/001.p/300',
    'tile/entries/000.p/01', // leading zero in the width
    'tile/0/000.p/001',
    '../x',
    'tile/../0/000',
    '',
    'tile',
    'tile/0',
    'tile/0/',
    '/tile/0/000',
    'tile/0/000/',
    'tile//000',
    'tile/00/000', // leading zero in the level
    'tile/01/000',
    'tile/64/000', // level above 63
    'tile/-1/000',
    'tile/1e1/000',
    'tile/x/000',
    'tile/0/01',
    'tile/0/0001',
    'tile/0/x000/001', // a leading zero group: 1 is 001
    'tile/0/x000/x001/002',
    'tile/0/x001', // the last group has no x
    'tile/0/001/002', // the first group needs an x
    'tile/0/x001/x002',
    'tile/0/00a',
    'tile/0/x0a1/000',
    'tile/0/X001/000',
    'tile/0/000.p',
    'tile/0/000.p/',
    'tile/0/000.P/1',
    'tile/0/000.p/+1',
    'tile/0/000.p/1.0',
    'tile/0/000.p/ 1',
    'tile/0/000.p/1/2',
    'tile/0/.p/1',
    'tile/0/x001.p/1/000',
    'tile/entries',
    'tile/entries/',
    'tile/entries/1',
    'tile/entries/x001',
    'tile/Entries/000',
    'Tile/0/000',
    'tile/0/000?x',
    'tile\\0\\000',
    'tile/0/x009/x007/x199/x254/x740/992', // 2**53: past the safe integers
    'tile/0/x001/x000/x000/x000/x000/x000/000', // seven groups
  ])('%j', (p) => {
    expectCode(() => parseTilePath(p), 'COL_ERR_NOT_FOUND');
  });

  it('accepts a string only if it is the one canonical path of what it parses to', () => {
    const chars = fc.constantFrom(...'tile/entries/0123456789x.p/'.split(''), '/', '0', 'x', '.p/');
    const noisy = fc.array(chars, { maxLength: 30 }).map((cs) => 'tile/' + cs.join(''));
    // A valid path with one character inserted, deleted or replaced.
    const ref = fc.record({ level: fc.integer({ min: 0, max: 63 }), index: fc.oneof(fc.nat(5000), fc.maxSafeNat()), width: fc.integer({ min: 1, max: 256 }) });
    const near = fc.tuple(ref, fc.boolean(), fc.nat(), fc.nat(2), chars).map(([t, ent, at, op, c]) => {
      const p = ent ? entriesPath(t.index, t.width) : tilePath(t);
      const i = at % (p.length + 1);
      return op === 0 ? p.slice(0, i) + c + p.slice(i) : op === 1 ? p.slice(0, i) + p.slice(i + 1) : p.slice(0, i) + c + p.slice(i + 1);
    });
    let accepted = 0;
    fc.assert(
      fc.property(fc.oneof(noisy, near), (p) => {
        let parsed;
        try {
          parsed = parseTilePath(p);
        } catch (err) {
          expect(err).toBeInstanceOf(CollectorError);
          expect((err as CollectorError).code).toBe('COL_ERR_NOT_FOUND');
          return;
        }
        accepted++;
        expect(parsed.kind === 'tile' ? tilePath(parsed.tile) : entriesPath(parsed.index, parsed.width)).toBe(p);
      }),
      { numRuns: 2000 },
    );
    expect(accepted).toBeGreaterThan(0);
  });
});

describe('which tiles a tree size has', () => {
  const plan = (old: number, n: number) => {
    const p = tilesToWrite(old, n);
    return { tiles: p.tiles.map(key), entries: p.entries.map((e) => entriesPath(e.index, e.width)) };
  };
  const asEntries = (paths: Iterable<string>) => [...paths].filter((p) => p.startsWith('tile/0/')).map((p) => p.replace('tile/0/', 'tile/entries/'));

  it('has the spec example sizes exactly', () => {
    // "a tree of size 70,000 will be represented by 273 full level 0 tiles, one partial level 0 tile of
    // width 112, one full level 1 tile, one partial level 1 tile of width 17, and one partial level 2 tile of width 1"
    const big = tilesToWrite(0, 70_000).tiles;
    expect(big.filter((t) => t.level === 0 && t.width === 256)).toHaveLength(273);
    expect(big.filter((t) => t.level === 0 && t.width < 256)).toEqual([{ level: 0, index: 273, width: 112 }]);
    expect(big.filter((t) => t.level >= 1)).toEqual([
      { level: 1, index: 0, width: 256 },
      { level: 1, index: 1, width: 17 },
      { level: 2, index: 0, width: 1 },
    ]);
    // "a tree of size 256 will be represented by a full level 0 tile and a partial level 1 tile of width 1"
    expect(tilesToWrite(0, 256)).toEqual({
      tiles: [
        { level: 0, index: 0, width: 256 },
        { level: 1, index: 0, width: 1 },
      ],
      entries: [{ index: 0, width: 256 }],
    });
    expect(tilesToWrite(0, 0)).toEqual({ tiles: [], entries: [] });
    expect(tilesToWrite(0, 1)).toEqual({ tiles: [{ level: 0, index: 0, width: 1 }], entries: [{ index: 0, width: 1 }] });
  });

  const checkSizes = (m: number, n: number) => {
    const all = plan(0, n);
    const spec = specTiles(n);
    expect(new Set(all.tiles)).toEqual(spec);
    expect(all.tiles).toHaveLength(spec.size); // no duplicates
    expect(new Set(all.entries)).toEqual(new Set(asEntries(spec)));
    const levels = tilesToWrite(0, n).tiles.map((t) => t.level);
    expect(levels).toEqual([...levels].sort((a, b) => a - b));

    const old = plan(0, m);
    const before = new Set(old.tiles);
    const since = plan(m, n);
    // What m had plus what was written since covers n; the only extras are m's right-edge partials.
    const union = new Set([...before, ...since.tiles]);
    expect([...spec].filter((p) => !union.has(p))).toEqual([]);
    const extras = [...union].filter((p) => !spec.has(p));
    expect(extras.filter((p) => !/\.p\/\d+$/.test(p) || !before.has(p))).toEqual([]);
    // Nothing is written twice, and nothing written is absent at n.
    expect(since.tiles.filter((p) => before.has(p) || !spec.has(p))).toEqual([]);
    const entryUnion = new Set([...old.entries, ...since.entries]);
    expect(asEntries(spec).filter((p) => !entryUnion.has(p))).toEqual([]);
    expect(since.entries).toEqual(asEntries(since.tiles));
  };

  const SIZES = [0, 1, 2, 255, 256, 257, 511, 512, 65535, 65536, 65537, 70_000, 131_072];
  it.each(SIZES)('size %i, and growth to it from each smaller boundary size', (n) => {
    for (const m of SIZES) if (m <= n) checkSizes(m, n);
    checkSizes(Math.max(0, n - 1), n);
  });

  it('any sizes m ≤ n', () => {
    const size = fc.oneof(fc.integer({ min: 0, max: 70_000 }), fc.integer({ min: 0, max: 2 ** 20 }));
    fc.assert(
      fc.property(size, size, (a, b) => checkSizes(Math.min(a, b), Math.max(a, b))),
      { numRuns: 200 },
    );
  });

  it('sizes up to 2**53 - 1, grown by a little', () => {
    const max = Number.MAX_SAFE_INTEGER; // 2**53 - 1: width 255 at levels 0..5, 31 at level 6
    expect(tilesToWrite(max - 1, max).tiles).toEqual([{ level: 0, index: Math.floor(max / 256), width: 255 }]);
    expect(tilesToWrite(2 ** 48 - 1, 2 ** 48).tiles).toEqual([
      { level: 0, index: 2 ** 40 - 1, width: 256 },
      { level: 1, index: 2 ** 32 - 1, width: 256 },
      { level: 2, index: 2 ** 24 - 1, width: 256 },
      { level: 3, index: 2 ** 16 - 1, width: 256 },
      { level: 4, index: 255, width: 256 },
      { level: 5, index: 0, width: 256 },
      { level: 6, index: 0, width: 1 },
    ]);
    // From the spec's definitions: full tiles whose end index is in (m, n], and n's partials unless m had them.
    const check = (m: number, n: number) => {
      const want = new Set<string>();
      for (let l = 0; Math.floor(n / 256 ** l) > 0; l++) {
        for (let t = Math.floor(m / 256 ** (l + 1)); (t + 1) * 256 ** (l + 1) <= n; t++) {
          if ((t + 1) * 256 ** (l + 1) > m) want.add(tilePath({ level: l, index: t, width: 256 }));
        }
        const w = Math.floor(n / 256 ** l) % 256;
        if (w !== 0 && Math.floor(n / 256 ** l) !== Math.floor(m / 256 ** l)) want.add(tilePath({ level: l, index: Math.floor(n / 256 ** (l + 1)), width: w }));
      }
      const got = plan(m, n).tiles;
      expect(new Set(got)).toEqual(want);
      expect(got).toHaveLength(want.size);
    };
    for (const n of [2 ** 24 - 1, 2 ** 24, 2 ** 24 + 1, 2 ** 32, 2 ** 40 + 3, max]) for (const d of [0, 1, 255, 256, 257, 65_536]) check(n - d, n);
    fc.assert(
      fc.property(fc.maxSafeNat(), fc.integer({ min: 0, max: 3000 }), (n, d) => check(Math.max(0, n - d), n)),
      { numRuns: 300 },
    );
  });

  it('writes nothing when the size does not change, and refuses shrinking or bad sizes', () => {
    expect(tilesToWrite(300, 300)).toEqual({ tiles: [], entries: [] });
    expect(() => tilesToWrite(2, 1)).toThrow(RangeError);
    expect(() => tilesToWrite(-1, 1)).toThrow(RangeError);
    expect(() => tilesToWrite(0, 1.5)).toThrow(RangeError);
    expect(() => tilesToWrite(0, Number.MAX_SAFE_INTEGER + 1)).toThrow(RangeError);
  });
});

describe('tile bytes and hashes read back', () => {
  /** Every tile of size n against the naive tree; every complete node read back via tileFor. */
  const checkTree = (n: number, everyNode: boolean) => {
    const tree = naive.at(n);
    const store = new Map<string, Buffer>();
    const wrong: string[] = [];
    for (const t of tilesToWrite(0, n).tiles) {
      const bytes = tileBytes(tree, t);
      if (bytes.length !== 32 * t.width) wrong.push(`${tilePath(t)}: ${bytes.length} bytes`);
      for (let i = 0; i < t.width; i++) {
        if (!bytes.subarray(32 * i, 32 * (i + 1)).equals(naive.node(TILE_HEIGHT * t.level, t.index * TILE_WIDTH + i))) wrong.push(`${tilePath(t)}: hash ${i}`);
      }
      store.set(tilePath(t), bytes);
    }
    for (let level = 0; 2 ** level <= n; level++) {
      const count = Math.floor(n / 2 ** level);
      const picks = everyNode ? Array.from({ length: count }, (_, i) => i) : [0, count - 1, Math.floor(count / 2)];
      for (const index of picks) {
        const t = tileFor(level, index, n);
        const bytes = store.get(tilePath(t));
        if (bytes === undefined) wrong.push(`(${level}, ${index}): no ${tilePath(t)}`);
        else if (!hashFromTile(bytes, t, level, index).equals(naive.node(level, index))) wrong.push(`(${level}, ${index}): wrong hash`);
      }
      // The next node at this level is not complete yet.
      if (!isNotFound(() => tileFor(level, count, n))) wrong.push(`(${level}, ${count}) is not complete`);
    }
    expect(wrong).toEqual([]);
  };

  it.each([1, 2, 3, 255, 256, 257, 511, 65535, 65536, 65537, 70_000])('size %i: every tile and every complete node', (n) => {
    checkTree(n, true);
  });

  it('random sizes', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: BIG }), (n) => checkTree(n, false)),
      { numRuns: 40 },
    );
  });

  it('tileFor names a full tile once it is complete, else the right-edge partial', () => {
    expect(tileFor(0, 0, 1)).toEqual({ level: 0, index: 0, width: 1 });
    expect(tileFor(0, 0, 256)).toEqual({ level: 0, index: 0, width: 256 });
    expect(tileFor(0, 256, 300)).toEqual({ level: 0, index: 1, width: 44 });
    expect(tileFor(7, 0, 256)).toEqual({ level: 0, index: 0, width: 256 });
    expect(tileFor(8, 0, 256)).toEqual({ level: 1, index: 0, width: 1 });
    expect(tileFor(12, 0, 70_000)).toEqual({ level: 1, index: 0, width: 256 });
    expect(tileFor(12, 16, 70_000)).toEqual({ level: 1, index: 1, width: 17 });
    expect(tileFor(16, 0, 70_000)).toEqual({ level: 2, index: 0, width: 1 });
    expectCode(() => tileFor(17, 0, 70_000), 'COL_ERR_NOT_FOUND');
    expectCode(() => tileFor(0, 0, 0), 'COL_ERR_NOT_FOUND');
    expect(() => tileFor(-1, 0, 10)).toThrow(RangeError);
  });

  it('serves an earlier, narrower partial tile, and nothing past the tree', () => {
    const tree = naive.at(300);
    expect(tileBytes(tree, { level: 0, index: 1, width: 10 }).equals(Buffer.concat(naive.levels[0]?.slice(256, 266) ?? []))).toBe(true);
    expectCode(() => tileBytes(tree, { level: 0, index: 1, width: 45 }), 'COL_ERR_NOT_FOUND');
    expectCode(() => tileBytes(tree, { level: 0, index: 2, width: 1 }), 'COL_ERR_NOT_FOUND');
    expectCode(() => tileBytes(tree, { level: 1, index: 0, width: 2 }), 'COL_ERR_NOT_FOUND');
    expect(() => tileBytes({ size: 1, hashAt: () => Buffer.alloc(31) }, { level: 0, index: 0, width: 1 })).toThrow(/31 bytes/);
  });

  it('hashFromTile refuses a torn tile and a node from another tile', () => {
    const t = { level: 0, index: 0, width: 4 };
    const bytes = tileBytes(naive.at(4), t);
    expectCode(() => hashFromTile(bytes.subarray(0, 127), t, 0, 0), 'COL_ERR_MALFORMED');
    expectCode(() => hashFromTile(Buffer.concat([bytes, Buffer.alloc(32)]), t, 0, 0), 'COL_ERR_MALFORMED');
    expect(hashFromTile(bytes, t, 2, 0).equals(naive.node(2, 0))).toBe(true);
    expect(() => hashFromTile(bytes, t, 0, 4)).toThrow(RangeError); // past the width
    expect(() => hashFromTile(bytes, t, 3, 0)).toThrow(RangeError); // incomplete in a width-4 tile
    expect(() => hashFromTile(bytes, t, 8, 0)).toThrow(RangeError); // a level-1 tile's node
    expect(() => hashFromTile(bytes, { level: 0, index: 1, width: 4 }, 0, 0)).toThrow(RangeError);
  });
});

describe('a reader that has only the tiles', () => {
  it.each([0, 1, 2, 3, 255, 256, 257, 1000, 65535, 65536, 65537, 70_000])('recomputes the root of size %i', (n) => {
    const store = new Map<string, Buffer>();
    writeTiles(store, 0, n);
    expect(rootFromTiles(store, n).equals(naive.mth(0, n))).toBe(true);
    // Each bundle hashes to its level 0 tile.
    for (const b of tilesToWrite(0, n).entries) {
      const leaves = decodeEntryBundle(store.get(entriesPath(b.index, b.width)) as Buffer, b.width).map(leafHash);
      expect(Buffer.concat(leaves).equals(store.get(tilePath({ level: 0, ...b })) as Buffer)).toBe(true);
    }
  });

  it('a growing log: incremental writes let a reader verify every checkpoint', () => {
    const steps = fc.array(fc.oneof(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 300 }), fc.integer({ min: 0, max: 20_000 })), { minLength: 1, maxLength: 12 });
    fc.assert(
      fc.property(steps, (grow) => {
        const store = new Map<string, Buffer>();
        let size = 0;
        for (const g of grow) {
          const next = Math.min(BIG, size + g);
          writeTiles(store, size, next);
          size = next;
          expect(rootFromTiles(store, size).equals(naive.mth(0, size))).toBe(true);
        }
      }),
      { numRuns: 25 },
    );
  });

  it('notices a missing tile', () => {
    const store = new Map<string, Buffer>();
    writeTiles(store, 0, 70_000);
    store.delete('tile/1/001.p/17');
    expect(() => rootFromTiles(store, 70_000)).toThrow(/missing tile\/1\/001\.p\/17/);
  });
});

describe('entry bundles', () => {
  it('round-trips, with empty entries and entries of the maximum size', () => {
    expect(MAX_ENTRY_SIZE).toBe(65535);
    const blob = fc.oneof(fc.uint8Array({ maxLength: 40 }), fc.constant(new Uint8Array(0)), fc.constant(new Uint8Array(MAX_ENTRY_SIZE).fill(7)));
    fc.assert(
      fc.property(fc.array(blob, { minLength: 1, maxLength: 256 }), (es) => {
        const bytes = encodeEntryBundle(es);
        expect(bytes).toHaveLength(es.reduce((a, e) => a + 2 + e.length, 0));
        const back = decodeEntryBundle(bytes, es.length);
        expect(back).toHaveLength(es.length);
        expect(back.every((b, i) => b.equals(es[i] as Uint8Array))).toBe(true);
      }),
      { numRuns: 50 },
    );
  });

  it('is a big-endian uint16 length before each entry', () => {
    const bytes = encodeEntryBundle([Buffer.from('ab'), new Uint8Array(0), new Uint8Array(MAX_ENTRY_SIZE)]);
    expect([...bytes.subarray(0, 6)]).toEqual([0, 2, 0x61, 0x62, 0, 0]);
    expect([...bytes.subarray(6, 8)]).toEqual([0xff, 0xff]);
    expect(bytes).toHaveLength(8 + MAX_ENTRY_SIZE);
    expect(decodeEntryBundle(Buffer.of(0, 0))).toEqual([Buffer.alloc(0)]);
  });

  it('refuses an entry over 65535 bytes, and bundles of no or too many entries', () => {
    expectCode(() => encodeEntryBundle([new Uint8Array(MAX_ENTRY_SIZE + 1)]), 'COL_ERR_MALFORMED');
    expectCode(() => encodeEntryBundle([]), 'COL_ERR_MALFORMED');
    expectCode(() => encodeEntryBundle(Array.from({ length: 257 }, () => new Uint8Array(0))), 'COL_ERR_MALFORMED');
    expectCode(() => decodeEntryBundle(new Uint8Array(0)), 'COL_ERR_MALFORMED');
    expectCode(() => decodeEntryBundle(new Uint8Array(2 * 257)), 'COL_ERR_MALFORMED'); // 257 empty entries
    expect(decodeEntryBundle(new Uint8Array(2 * 256))).toHaveLength(256);
  });

  it('refuses a torn bundle at every cut, and a count other than the path width', () => {
    const bytes = encodeEntryBundle([Buffer.from('hello'), Buffer.from(''), Buffer.from('world!')]);
    const ends = new Set([7, 9, 17]); // where whole entries end
    for (let cut = 1; cut < bytes.length; cut++) {
      if (ends.has(cut)) expect(decodeEntryBundle(bytes.subarray(0, cut))).toHaveLength([...ends].filter((e) => e <= cut).length);
      else expectCode(() => decodeEntryBundle(bytes.subarray(0, cut)), 'COL_ERR_MALFORMED');
    }
    expectCode(() => decodeEntryBundle(Buffer.concat([bytes, Buffer.of(0)])), 'COL_ERR_MALFORMED');
    expectCode(() => decodeEntryBundle(Buffer.of(0xff, 0xff, 1, 2, 3)), 'COL_ERR_MALFORMED'); // claims more than it has
    expectCode(() => decodeEntryBundle(bytes, 2), 'COL_ERR_MALFORMED');
    expectCode(() => decodeEntryBundle(bytes, 4), 'COL_ERR_MALFORMED');
    expect(decodeEntryBundle(bytes, 3)).toHaveLength(3);
  });

  it('decodes into copies, not views of the input', () => {
    const bytes = encodeEntryBundle([Buffer.from('abc')]);
    const [e] = decodeEntryBundle(bytes);
    bytes[2] = 0x7a;
    expect(e?.toString()).toBe('abc');
  });
});
