// The C2SP tlog-tiles layout (https://c2sp.org/tlog-tiles) of an RFC 6962 SHA-256 Merkle tree:
// tile and entry-bundle paths, which tiles a tree size has, tile bytes and entry bundles.
// Leaf and subtree hashes come from a NodeHashes; only a reader's in-tile levels are hashed here.
import { createHash } from 'node:crypto';
import { CollectorError } from '../errors.js';

/** Complete-subtree hashes of an RFC 6962 tree: level L index i covers leaves [i·2^L, (i+1)·2^L). */
export interface NodeHashes {
  readonly size: number;
  hashAt(level: number, index: number): Buffer; // 32 bytes; only for complete nodes
}

export const TILE_HEIGHT = 8;
export const TILE_WIDTH = 256;
/** An entry's length is a big-endian uint16 in its bundle. */
export const MAX_ENTRY_SIZE = 0xffff;
const HASH_SIZE = 32;
// The spec: "<L> ... MUST be a decimal ASCII integer between 0 and 63".
const MAX_TILE_LEVEL = 63;
// Six 3-digit groups already exceed Number.MAX_SAFE_INTEGER's 16 digits.
const MAX_INDEX_GROUPS = 6;

export interface TileRef {
  level: number;
  index: number;
  width: number; // 1..256; 256 = full
}

export type ParsedTilePath =
  | { kind: 'tile'; tile: TileRef }
  | { kind: 'entries'; index: number; width: number };

const isCount = (n: number): boolean => Number.isSafeInteger(n) && n >= 0;

function checkTile(t: TileRef): void {
  if (!Number.isInteger(t.level) || t.level < 0 || t.level > MAX_TILE_LEVEL) throw new RangeError(`tile level ${t.level} is not in 0..63`);
  checkIndexWidth(t.index, t.width);
}

function checkIndexWidth(index: number, width: number): void {
  if (!isCount(index)) throw new RangeError(`tile index ${index} is not a non-negative safe integer`);
  if (!Number.isInteger(width) || width < 1 || width > TILE_WIDTH) throw new RangeError(`tile width ${width} is not in 1..256`);
}

/** Nodes at Merkle level 8·level that are complete in a tree of `size` (exact: divides by 2^8k). */
const nodesAt = (size: number, level: number): number => Math.floor(size / TILE_WIDTH ** level);

function encodeIndex(index: number): string {
  const digits = String(index);
  const padded = digits.padStart(Math.ceil(digits.length / 3) * 3, '0');
  const groups: string[] = [];
  for (let i = 0; i < padded.length; i += 3) groups.push(padded.slice(i, i + 3));
  return groups.map((g, i) => (i < groups.length - 1 ? `x${g}` : g)).join('/');
}

const suffix = (width: number): string => (width === TILE_WIDTH ? '' : `.p/${width}`);

export function tilePath(t: TileRef): string {
  checkTile(t);
  return `tile/${t.level}/${encodeIndex(t.index)}${suffix(t.width)}`;
}

export function entriesPath(index: number, width: number): string {
  checkIndexWidth(index, width);
  return `tile/entries/${encodeIndex(index)}${suffix(width)}`;
}

const notFound = (p: string, why: string): CollectorError => new CollectorError('COL_ERR_NOT_FOUND', `not a tile path (${why}): ${JSON.stringify(p.slice(0, 200))}`);

/** Parses a tile or entry-bundle path (relative, as above); throws CollectorError('COL_ERR_NOT_FOUND', ...) for anything malformed (non-canonical numbers, leading zeros beyond the 3-digit groups, width 0 or ≥256 on .p, unknown level form). */
export function parseTilePath(p: string): ParsedTilePath {
  const segs = p.split('/');
  const levelSeg = segs[1];
  if (segs[0] !== 'tile' || levelSeg === undefined || segs.length < 3) throw notFound(p, 'expected tile/<L>/<N>');
  let groups = segs.slice(2);
  let width = TILE_WIDTH;
  const before = groups[groups.length - 2];
  if (before !== undefined && before.endsWith('.p')) {
    const w = groups[groups.length - 1] ?? '';
    // "between 1 and 255, with no additional leading zeroes"
    if (!/^[1-9][0-9]{0,2}$/.test(w) || Number(w) >= TILE_WIDTH) throw notFound(p, 'bad partial width');
    width = Number(w);
    groups = [...groups.slice(0, -2), before.slice(0, -2)];
  }
  if (groups.length > MAX_INDEX_GROUPS) throw notFound(p, 'index too large');
  const last = groups.length - 1;
  if (!groups.every((g, i) => (i < last ? /^x[0-9]{3}$/ : /^[0-9]{3}$/).test(g))) throw notFound(p, 'index not in x-prefixed 3-digit groups');
  const index = Number(groups.map((g) => g.replace('x', '')).join(''));
  if (!Number.isSafeInteger(index)) throw notFound(p, 'index too large');
  // Only one spelling per index (x000/001 is 001), so that paths and tiles are one to one.
  if (encodeIndex(index) !== groups.join('/')) throw notFound(p, 'non-canonical index');
  if (levelSeg === 'entries') return { kind: 'entries', index, width };
  if (!/^(0|[1-9][0-9]?)$/.test(levelSeg) || Number(levelSeg) > MAX_TILE_LEVEL) throw notFound(p, 'bad level');
  return { kind: 'tile', tile: { level: Number(levelSeg), index, width } };
}

/** The tiles (hash tiles of every level, and entry bundles) that a tree of `newSize` has and a tree of `oldSize` did not: every full tile completed since, and the right-edge partial tiles at newSize. In an order where lower levels come first. */
export function tilesToWrite(oldSize: number, newSize: number): { tiles: TileRef[]; entries: { index: number; width: number }[] } {
  if (!isCount(oldSize) || !isCount(newSize) || oldSize > newSize) throw new RangeError(`bad tree sizes ${oldSize} → ${newSize}`);
  const tiles: TileRef[] = [];
  for (let level = 0; level <= MAX_TILE_LEVEL; level++) {
    const nNew = nodesAt(newSize, level);
    if (nNew === 0) break; // "Empty tiles MUST NOT be served."
    const nOld = nodesAt(oldSize, level);
    const fullNew = Math.floor(nNew / TILE_WIDTH);
    for (let index = Math.floor(nOld / TILE_WIDTH); index < fullNew; index++) tiles.push({ level, index, width: TILE_WIDTH });
    // An unchanged node count means the same partial tile, already written for oldSize.
    const w = nNew % TILE_WIDTH;
    if (w !== 0 && nNew !== nOld) tiles.push({ level, index: fullNew, width: w });
  }
  const entries = tiles.filter((t) => t.level === 0).map((t) => ({ index: t.index, width: t.width }));
  return { tiles, entries };
}

/** The bytes of one hash tile. */
export function tileBytes(tree: NodeHashes, t: TileRef): Buffer {
  checkTile(t);
  // A narrower partial than the right edge is still valid: that of an earlier tree size.
  if (nodesAt(tree.size, t.level) - t.index * TILE_WIDTH < t.width) {
    throw new CollectorError('COL_ERR_NOT_FOUND', `tile ${tilePath(t)} is not in a tree of size ${tree.size}`);
  }
  const level = t.level * TILE_HEIGHT;
  const hashes: Buffer[] = [];
  for (let i = 0; i < t.width; i++) {
    const h = tree.hashAt(level, t.index * TILE_WIDTH + i);
    if (h.length !== HASH_SIZE) throw new Error(`node hash (${level}, ${t.index * TILE_WIDTH + i}) is ${h.length} bytes, not 32`);
    hashes.push(h);
  }
  return Buffer.concat(hashes);
}

/** Encodes / decodes an entry bundle. */
export function encodeEntryBundle(entries: readonly Uint8Array[]): Buffer {
  if (entries.length < 1 || entries.length > TILE_WIDTH) throw new CollectorError('COL_ERR_MALFORMED', `an entry bundle holds 1..256 entries, not ${entries.length}`);
  const parts: Buffer[] = [];
  for (const [i, e] of entries.entries()) {
    if (e.length > MAX_ENTRY_SIZE) throw new CollectorError('COL_ERR_MALFORMED', `entry ${i} is ${e.length} bytes; a bundle entry is at most ${MAX_ENTRY_SIZE}`);
    const len = Buffer.alloc(2);
    len.writeUInt16BE(e.length);
    parts.push(len, Buffer.from(e.buffer, e.byteOffset, e.length));
  }
  return Buffer.concat(parts);
}

/** A bundle's entries, as views into `bytes`; with `width` (from its path) it must hold exactly that many. */
export function entryBundleViews(bytes: Uint8Array, width?: number): Buffer[] {
  const malformed = (why: string) => new CollectorError('COL_ERR_MALFORMED', `bad entry bundle: ${why}`);
  const out: Buffer[] = [];
  let off = 0;
  while (off < bytes.length) {
    if (out.length === TILE_WIDTH) throw malformed('more than 256 entries');
    if (bytes.length - off < 2) throw malformed(`torn length prefix at byte ${off}`);
    const len = ((bytes[off] ?? 0) << 8) | (bytes[off + 1] ?? 0);
    off += 2;
    if (bytes.length - off < len) throw malformed(`entry ${out.length} claims ${len} bytes, ${bytes.length - off} left`);
    out.push(Buffer.from(bytes.buffer, bytes.byteOffset + off, len));
    off += len;
  }
  if (out.length === 0) throw malformed('no entries');
  if (width !== undefined && out.length !== width) throw malformed(`${out.length} entries, the path says ${width}`);
  return out;
}

/** A bundle's entries, each a copy (callers may keep entries past the input); `width` as for entryBundleViews. */
export function decodeEntryBundle(bytes: Uint8Array, width?: number): Buffer[] {
  return entryBundleViews(bytes, width).map((v) => Buffer.from(v));
}

const nodeHash = (l: Buffer, r: Buffer): Buffer => createHash('sha256').update(Buffer.of(1)).update(l).update(r).digest();

/** Reads a complete-subtree hash back out of tiles (the inverse of tileBytes), for a verifier or a self-check: the hash of node (level, index), from the tile that holds it. */
export function hashFromTile(tile: Buffer, t: TileRef, level: number, index: number): Buffer {
  checkTile(t);
  if (tile.length !== t.width * HASH_SIZE) throw new CollectorError('COL_ERR_MALFORMED', `tile ${tilePath(t)} is ${tile.length} bytes, not ${t.width * HASH_SIZE}`);
  const k = level - t.level * TILE_HEIGHT;
  const span = 2 ** k;
  const first = index * span - t.index * TILE_WIDTH;
  if (!Number.isInteger(k) || k < 0 || k >= TILE_HEIGHT || !isCount(index) || first < 0 || first + span > t.width) {
    throw new RangeError(`node (${level}, ${index}) is not in tile ${tilePath(t)}`);
  }
  let row: Buffer[] = [];
  for (let i = first; i < first + span; i++) row.push(tile.subarray(i * HASH_SIZE, (i + 1) * HASH_SIZE));
  // "The Merkle Tree levels between those expressed by the tile hashes are reconstructed by hashing."
  while (row.length > 1) {
    const up: Buffer[] = [];
    for (let i = 0; i < row.length; i += 2) up.push(nodeHash(row[i] as Buffer, row[i + 1] as Buffer));
    row = up;
  }
  return Buffer.from(row[0] as Buffer);
}

/** Which tile holds node (level, index) in a tree of `size` (a full tile if complete there, else the right-edge partial). */
export function tileFor(level: number, index: number, size: number): TileRef {
  if (!Number.isInteger(level) || level < 0 || !isCount(index) || !isCount(size)) throw new RangeError(`bad node (${level}, ${index}) or size ${size}`);
  // Exact in floating point: a safe integer times a power of two.
  if ((index + 1) * 2 ** level > size) throw new CollectorError('COL_ERR_NOT_FOUND', `node (${level}, ${index}) is not complete in a tree of size ${size}`);
  const tileLevel = Math.floor(level / TILE_HEIGHT);
  const at = index * 2 ** (level % TILE_HEIGHT);
  const tileIndex = Math.floor(at / TILE_WIDTH);
  return { level: tileLevel, index: tileIndex, width: Math.min(TILE_WIDTH, nodesAt(size, tileLevel) - tileIndex * TILE_WIDTH) };
}
