// RFC 6962 / RFC 9162 Merkle tree hashing for the transparency log: leaf and node hashes, an
// append-only tree that keeps every complete subtree's hash, roots of past tree sizes, and
// inclusion and consistency proofs with their verifiers.
import { createHash, hash } from 'node:crypto';
import { constants as bufferConstants } from 'node:buffer';

export const HASH_SIZE = 32;

const LEAF_PREFIX = Buffer.from([0x00]);
const NODE_PREFIX = Buffer.from([0x01]);
const EMPTY_ROOT = createHash('sha256').digest();

// One-shot hash() over 0x00||entry in a reused buffer: about half the cost of createHash() for
// the few hundred bytes an entry is, and every entry is hashed at each load and export.
const leafScratch = Buffer.alloc(4096);
export function leafHash(entry: Uint8Array): Buffer {
  if (entry.length + 1 > leafScratch.length) return createHash('sha256').update(LEAF_PREFIX).update(entry).digest();
  leafScratch[0] = 0x00;
  leafScratch.set(entry, 1);
  return hash('sha256', leafScratch.subarray(0, entry.length + 1), 'buffer') as Buffer;
}

export function nodeHash(left: Uint8Array, right: Uint8Array): Buffer {
  return createHash('sha256').update(NODE_PREFIX).update(left).update(right).digest();
}

export function emptyRoot(): Buffer {
  return Buffer.from(EMPTY_ROOT);
}

// One-shot hash() over a reused 0x01||left||right buffer is about a fifth faster than createHash() per
// node, and append() computes one node per leaf on average. Callers pass 32-byte hashes only.
const scratch = Buffer.alloc(1 + 2 * HASH_SIZE, 0x01);
function hashChildren(left: Uint8Array, right: Uint8Array): Buffer {
  scratch.set(left, 1);
  scratch.set(right, 1 + HASH_SIZE);
  return hash('sha256', scratch, 'buffer');
}

/** Largest power of two <= x (x >= 1); corrected because Math.log2 rounds near 2^53. */
function floorPow2(x: number): number {
  let p = 2 ** Math.floor(Math.log2(x));
  if (p > x) p /= 2;
  else if (p * 2 <= x) p *= 2;
  return p;
}

function checkInt(name: string, value: number, min: number, max: number): void {
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    const empty = max < min ? ' (an empty range: no value is valid in this tree)' : '';
    throw new RangeError(`${name} must be an integer in [${min}, ${max}]${empty}, got ${String(value)}`);
  }
}

const isHash = (h: unknown): h is Uint8Array => h instanceof Uint8Array && h.length === HASH_SIZE;
const isCount = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);

// Level 0 is the largest level and one Buffer may hold at most MAX_LENGTH bytes.
const MAX_LEAVES = Math.floor(bufferConstants.MAX_LENGTH / HASH_SIZE);
// Doubling while small keeps appends cheap; past 2 MiB a level grows by a quarter, so slack stays
// under 25% (about 80 bytes per leaf at worst instead of 128).
const DOUBLING_LIMIT = 65_536;

/** An append-only tree of leaf hashes that keeps every complete subtree's hash, level by level, in contiguous growable Buffers (32 bytes per hash; NOT one Buffer object per hash: it must hold tens of millions of entries with ~64 bytes per entry). Level 0 holds the leaf hashes; level L index i is the hash of the complete subtree over leaves [i*2^L, (i+1)*2^L). */
export class MerkleTree {
  private n = 0;
  private readonly levels: Buffer[] = [];

  get size(): number {
    return this.n;
  }

  append(leafHash: Uint8Array): number {
    if (!isHash(leafHash)) {
      throw new RangeError(`leaf hash must be a ${HASH_SIZE}-byte Uint8Array, got ${describeValue(leafHash)}`);
    }
    const index = this.n;
    if (index >= MAX_LEAVES) throw new RangeError(`the tree is full at ${MAX_LEAVES} leaves`);
    this.put(0, index, leafHash);
    // A right child completes its parent; carry up while the new node is a right child.
    let level = 0;
    let i = index;
    while (i % 2 === 1) {
      const parent = hashChildren(this.node(level, i - 1), this.node(level, i));
      level += 1;
      i = (i - 1) / 2;
      this.put(level, i, parent);
    }
    // Last, so a failed allocation above leaves the tree as it was.
    this.n = index + 1;
    return index;
  }

  /** Hash of the complete subtree at (level, index); throws RangeError if it is not complete in the current tree. */
  hashAt(level: number, index: number): Buffer {
    checkInt('level', level, 0, Number.MAX_SAFE_INTEGER);
    checkInt('index', index, 0, Number.MAX_SAFE_INTEGER);
    if (index >= this.widthAt(level)) {
      throw new RangeError(`node (level ${level}, index ${index}) is not complete in a tree of ${this.n} leaves`);
    }
    return Buffer.from(this.node(level, index));
  }

  /** Number of complete nodes at a level: floor(size / 2^level). */
  widthAt(level: number): number {
    checkInt('level', level, 0, Number.MAX_SAFE_INTEGER);
    return Math.floor(this.n / 2 ** level);
  }

  /** MTH of the first `size` leaves (default: all); any size from 0 to this.size. */
  root(size: number = this.n): Buffer {
    checkInt('size', size, 0, this.n);
    return size === 0 ? emptyRoot() : Buffer.from(this.mth(0, size));
  }

  /** RFC 9162 §2.1.3 inclusion proof for leaf `index` in the tree of `size` leaves. */
  inclusionProof(index: number, size: number): Buffer[] {
    checkInt('size', size, 1, this.n);
    checkInt('index', index, 0, size - 1);
    // PATH(m, D[lo:hi]) from RFC 6962 §2.1.1, top down; the proof lists siblings bottom up.
    const path: Buffer[] = [];
    let lo = 0;
    let hi = size;
    while (hi - lo > 1) {
      const k = floorPow2(hi - lo - 1);
      if (index < lo + k) {
        path.push(this.mth(lo + k, hi));
        hi = lo + k;
      } else {
        path.push(this.mth(lo, lo + k));
        lo += k;
      }
    }
    return path.reverse().map((h) => Buffer.from(h));
  }

  /** RFC 9162 §2.1.4 consistency proof between sizes m and n (0 < m <= n <= size; m == n gives []). */
  consistencyProof(m: number, n: number): Buffer[] {
    checkInt('n', n, 1, this.n);
    checkInt('m', m, 1, n);
    // SUBPROOF(m, D[lo:hi], b) from RFC 6962 §2.1.2, top down; `known` is b: the verifier
    // already holds MTH(D[lo:m]) as the old root only while no right turn has been taken.
    const proof: Buffer[] = [];
    let lo = 0;
    let hi = n;
    let known = true;
    while (m < hi) {
      const k = floorPow2(hi - lo - 1);
      if (m <= lo + k) {
        proof.push(this.mth(lo + k, hi));
        hi = lo + k;
      } else {
        proof.push(this.mth(lo, lo + k));
        lo += k;
        known = false;
      }
    }
    if (!known) proof.push(this.mth(lo, hi));
    return proof.reverse().map((h) => Buffer.from(h));
  }

  /** A view into storage: internal only, since a caller could write through it. */
  private node(level: number, index: number): Buffer {
    const start = index * HASH_SIZE;
    return (this.levels[level] as Buffer).subarray(start, start + HASH_SIZE);
  }

  /**
   * MTH(D[start:end]) for a range that occurs in the RFC 6962 recursion, so start is a multiple of
   * every power of two in the decomposition: the complete subtrees, largest first, folded from the
   * right. At most log2(n) stored hashes and as many new ones.
   */
  private mth(start: number, end: number): Buffer {
    const parts: Buffer[] = [];
    for (let lo = start; lo < end; ) {
      const k = floorPow2(end - lo);
      parts.push(this.node(Math.log2(k), lo / k));
      lo += k;
    }
    let acc = parts.pop() as Buffer;
    for (let part = parts.pop(); part !== undefined; part = parts.pop()) acc = hashChildren(part, acc);
    return acc;
  }

  private put(level: number, index: number, h: Uint8Array): void {
    const need = (index + 1) * HASH_SIZE;
    let buf = this.levels[level];
    if (buf === undefined || buf.length < need) {
      const cap = buf === undefined ? 0 : buf.length / HASH_SIZE;
      const grown = cap < DOUBLING_LIMIT ? Math.max(16, cap * 2) : Math.ceil(cap * 1.25);
      const next = Buffer.allocUnsafeSlow(Math.min(MAX_LEAVES, Math.max(index + 1, grown)) * HASH_SIZE);
      if (buf !== undefined) buf.copy(next);
      this.levels[level] = next;
      buf = next;
    }
    buf.set(h, index * HASH_SIZE);
  }
}

function describeValue(x: unknown): string {
  return x instanceof Uint8Array ? `${x.length} bytes` : typeof x;
}

/** RFC 9162 §2.1.3.2 verification. */
export function verifyInclusion(leafHash: Uint8Array, index: number, size: number, proof: readonly Uint8Array[], root: Uint8Array): boolean {
  if (!isHash(leafHash) || !isHash(root) || !isCount(index) || !isCount(size) || index >= size || !Array.isArray(proof)) {
    return false;
  }
  let fn = index;
  let sn = size - 1;
  let r: Uint8Array = leafHash;
  for (const p of proof) {
    if (!isHash(p) || sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = hashChildren(p, r);
      while (fn % 2 === 0 && fn !== 0) {
        fn /= 2;
        sn = Math.floor(sn / 2);
      }
    } else {
      r = hashChildren(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && same(r, root);
}

/** RFC 9162 §2.1.4.2 verification (m == n: proof must be empty and roots equal; m == 0: proof must be empty). */
export function verifyConsistency(m: number, n: number, proof: readonly Uint8Array[], rootM: Uint8Array, rootN: Uint8Array): boolean {
  if (!isCount(m) || !isCount(n) || m > n || !isHash(rootM) || !isHash(rootN) || !Array.isArray(proof)) return false;
  // Only the empty tree has size 0, so its root is known and checked too.
  if (m === 0) return proof.length === 0 && same(rootM, EMPTY_ROOT);
  if (m === n) return proof.length === 0 && same(rootM, rootN);
  if (proof.length === 0) return false;
  // When m is a power of two the old root is itself a node of the new tree, so it heads the path.
  const path: readonly unknown[] = floorPow2(m) === m ? [rootM, ...proof] : proof;
  let fn = m - 1;
  let sn = n - 1;
  while (fn % 2 === 1) {
    fn = (fn - 1) / 2;
    sn = Math.floor(sn / 2);
  }
  const first = path[0];
  if (!isHash(first)) return false;
  let fr: Uint8Array = first;
  let sr: Uint8Array = first;
  for (let i = 1; i < path.length; i++) {
    const c = path[i];
    if (!isHash(c) || sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      fr = hashChildren(c, fr);
      sr = hashChildren(c, sr);
      while (fn % 2 === 0 && fn !== 0) {
        fn /= 2;
        sn = Math.floor(sn / 2);
      }
    } else {
      sr = hashChildren(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && same(fr, rootM) && same(sr, rootN);
}

/**
 * The compact range [0, size) of an RFC 6962 tree (the C2SP tlog-tiles "compact range" at the
 * left edge): the hashes of its complete subtrees, largest first, at most one per bit of the size.
 * Enough to extend the tree leaf by leaf and to compute its root, in O(log size) memory, without
 * the leaves before it.
 */
export class CompactRange {
  #hashes: Buffer[] = [];
  #spans: number[] = [];
  #size = 0;

  get size(): number {
    return this.#size;
  }

  /** The subtree hashes, largest first (copies). */
  get hashes(): Buffer[] {
    return this.#hashes.map((h) => Buffer.from(h));
  }

  append(leafHash: Uint8Array): void {
    if (!isHash(leafHash)) throw new RangeError(`leaf hash must be a ${HASH_SIZE}-byte Uint8Array, got ${describeValue(leafHash)}`);
    let h: Buffer = Buffer.from(leafHash);
    let span = 1;
    while (this.#spans.at(-1) === span) {
      h = hashChildren(this.#hashes.pop()!, h);
      this.#spans.pop();
      span *= 2;
    }
    this.#hashes.push(h);
    this.#spans.push(span);
    this.#size++;
  }

  root(): Buffer {
    if (this.#hashes.length === 0) return emptyRoot();
    let h = this.#hashes.at(-1)!;
    for (let i = this.#hashes.length - 2; i >= 0; i--) h = hashChildren(this.#hashes[i]!, h);
    return Buffer.from(h);
  }

  clone(): CompactRange {
    const c = new CompactRange();
    c.#hashes = [...this.#hashes];
    c.#spans = [...this.#spans];
    c.#size = this.#size;
    return c;
  }
}
