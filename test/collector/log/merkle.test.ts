// Tests of the RFC 6962 / RFC 9162 Merkle tree: published transparency-dev/merkle vectors, a property
// test against a naive recursive MTH / PATH / SUBPROOF written straight from RFC 6962 §2.1, and the
// edges (empty tree, one leaf, bad arguments, malformed proofs).
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CompactRange, HASH_SIZE, MerkleTree, emptyRoot, leafHash, nodeHash, verifyConsistency, verifyInclusion } from '../../../collector/log/merkle.js';

const hx = (s: string) => Buffer.from(s, 'hex');
const hexes = (bs: readonly Uint8Array[]) => bs.map((b) => Buffer.from(b).toString('hex'));
const sha256 = (...parts: Uint8Array[]) => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};

// --- Published vectors -------------------------------------------------------------------------
// From github.com/transparency-dev/merkle:
//   testonly/constants.go      LeafInputs, NodeHashes, RootHashes, EmptyRootHash
//   testonly/reference_test.go TestRefInclusionProof, TestRefConsistencyProof
//   proof/verify_test.go       inclusionProofs (1-based leaf numbers there, 0-based here), consistencyProofs
//   proof/proof_test.go        TestInclusion, TestConsistency (proofs as node coordinates)
// The 8-leaf values are the same ones in certificate-transparency-go's merkletree tests.

const LEAF_INPUTS = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'].map(hx);

/** NodeHashes()[level][index]: every complete subtree of the 8-leaf tree. */
const NODE_HASHES = [
  [
    '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
    '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
    '0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7',
    '07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7',
    'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
    '4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658',
    'b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f',
    '46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1',
  ],
  [
    'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
    '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
    '0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a',
    'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
  ],
  ['d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7', '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4'],
  ['5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328'],
];

/** RootHashes()[size] for sizes 0..8. */
const ROOTS = [
  'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
];

interface InclusionVector { index: number; size: number; proof: string[] }
interface ConsistencyVector { m: number; n: number; proof: string[] }

// reference_test.go TestRefInclusionProof; verify_test.go's inclusionProofs are a subset of these.
const INCLUSION_VECTORS: InclusionVector[] = [
  { index: 0, size: 1, proof: [] },
  { index: 0, size: 2, proof: ['96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7'] },
  { index: 1, size: 2, proof: ['6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d'] },
  { index: 2, size: 3, proof: ['fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125'] },
  {
    index: 1,
    size: 5,
    proof: [
      '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
    ],
  },
  {
    index: 0,
    size: 8,
    proof: [
      '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
    ],
  },
  {
    index: 5,
    size: 8,
    proof: [
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
      'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ],
  },
];

// verify_test.go consistencyProofs (TestRefConsistencyProof holds the first four).
const CONSISTENCY_VECTORS: ConsistencyVector[] = [
  { m: 1, n: 1, proof: [] },
  {
    m: 1,
    n: 8,
    proof: [
      '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
    ],
  },
  {
    m: 6,
    n: 8,
    proof: [
      '0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a',
      'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ],
  },
  {
    m: 2,
    n: 5,
    proof: ['5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', 'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b'],
  },
  {
    m: 6,
    n: 7,
    proof: [
      '0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a',
      'b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ],
  },
];

/** A node (level, index), or a group of nodes the proof carries as one hash: the first is the right-most, each next one is hashed in on the left. */
type Node = readonly [number, number];
type ProofItem = Node | readonly Node[];

// proof/proof_test.go TestInclusion: [size, index, proof].
const INCLUSION_SHAPES: [number, number, ProofItem[]][] = [
  [1, 0, []],
  [2, 0, [[0, 1]]],
  [2, 1, [[0, 0]]],
  [3, 1, [[0, 0], [0, 2]]],
  [7, 0, [[0, 1], [1, 1], [[0, 6], [1, 2]]]],
  [7, 1, [[0, 0], [1, 1], [[0, 6], [1, 2]]]],
  [7, 2, [[0, 3], [1, 0], [[0, 6], [1, 2]]]],
  [7, 3, [[0, 2], [1, 0], [[0, 6], [1, 2]]]],
  [7, 4, [[0, 5], [0, 6], [2, 0]]],
  [7, 5, [[0, 4], [0, 6], [2, 0]]],
  [7, 6, [[1, 2], [2, 0]]],
  [4, 2, [[0, 3], [1, 0]]],
  [5, 3, [[0, 2], [1, 0], [0, 4]]],
  [6, 3, [[0, 2], [1, 0], [1, 2]]],
  [6, 4, [[0, 5], [2, 0]]],
  [15, 10, [[0, 11], [1, 4], [[0, 14], [1, 6]], [3, 0]]],
  [31, 24, [[0, 25], [1, 13], [[0, 30], [1, 14]], [3, 2], [4, 0]]],
  [95, 81, [[0, 80], [1, 41], [2, 21], [[0, 94], [1, 46], [2, 22]], [4, 4], [6, 0]]],
];

// proof/proof_test.go TestConsistency: [m, n, proof].
const CONSISTENCY_SHAPES: [number, number, ProofItem[]][] = [
  [1, 2, [[0, 1]]],
  [1, 4, [[0, 1], [1, 1]]],
  [1, 6, [[0, 1], [1, 1], [1, 2]]],
  [2, 3, [[0, 2]]],
  [2, 8, [[1, 1], [2, 1]]],
  [3, 7, [[0, 2], [0, 3], [1, 0], [[0, 6], [1, 2]]]],
  [4, 7, [[[0, 6], [1, 2]]]],
  [5, 7, [[0, 4], [0, 5], [0, 6], [2, 0]]],
  [6, 7, [[1, 2], [0, 6], [2, 0]]],
  [7, 8, [[0, 6], [0, 7], [1, 2], [2, 0]]],
  [1, 1, []],
  [2, 2, []],
  [3, 3, []],
  [4, 4, []],
  [5, 5, []],
  [7, 7, []],
  [8, 8, []],
  [2, 4, [[1, 1]]],
  [3, 5, [[0, 2], [0, 3], [1, 0], [0, 4]]],
  [3, 6, [[0, 2], [0, 3], [1, 0], [1, 2]]],
  [4, 6, [[1, 2]]],
  [1, 7, [[0, 1], [1, 1], [[0, 6], [1, 2]]]],
  [10, 15, [[1, 4], [1, 5], [[0, 14], [1, 6]], [3, 0]]],
  [24, 31, [[3, 2], [[0, 30], [1, 14], [2, 6]], [4, 0]]],
  [81, 95, [[0, 80], [0, 81], [1, 41], [2, 21], [[0, 94], [1, 46], [2, 22]], [4, 4], [6, 0]]],
];

function treeOf(entries: readonly Uint8Array[]): MerkleTree {
  const tree = new MerkleTree();
  for (const e of entries) tree.append(leafHash(e));
  return tree;
}

const flipBit = (proof: readonly Uint8Array[], i: number, byte = 0, mask = 0x08): Buffer[] =>
  proof.map((p, j) => {
    const c = Buffer.from(p);
    if (j === i) c[byte] = (c[byte] ?? 0) ^ mask;
    return c;
  });

describe('published vectors (transparency-dev/merkle)', () => {
  const full = treeOf(LEAF_INPUTS);

  it('hashes each leaf input to the published level-0 node hash', () => {
    expect(hexes(LEAF_INPUTS.map(leafHash))).toEqual(NODE_HASHES[0]);
  });

  it('stores every published complete-subtree hash at its (level, index)', () => {
    for (const [level, row] of NODE_HASHES.entries()) {
      expect(full.widthAt(level)).toBe(row.length);
      expect(hexes(row.map((_, i) => full.hashAt(level, i)))).toEqual(row);
    }
    expect(full.widthAt(4)).toBe(0);
    const [left, right] = NODE_HASHES[2] ?? [];
    expect(nodeHash(hx(left ?? ''), hx(right ?? '')).toString('hex')).toBe(NODE_HASHES[3]?.[0]);
  });

  it('gives the published root for every size 0..8, growing and as a past size', () => {
    const growing = new MerkleTree();
    expect(growing.root().toString('hex')).toBe(ROOTS[0]);
    for (const [i, e] of LEAF_INPUTS.entries()) {
      expect(growing.append(leafHash(e))).toBe(i);
      expect(growing.root().toString('hex')).toBe(ROOTS[i + 1]);
    }
    expect(ROOTS.map((_, size) => full.root(size).toString('hex'))).toEqual(ROOTS);
  });

  it.each(INCLUSION_VECTORS)('inclusion proof for leaf $index in size $size: generated and verified', ({ index, size, proof }) => {
    const leaf = leafHash(LEAF_INPUTS[index] ?? Buffer.alloc(0));
    const root = hx(ROOTS[size] ?? '');
    expect(hexes(full.inclusionProof(index, size))).toEqual(proof);
    expect(hexes(treeOf(LEAF_INPUTS.slice(0, size)).inclusionProof(index, size))).toEqual(proof);
    expect(verifyInclusion(leaf, index, size, proof.map(hx), root)).toBe(true);
  });

  it.each(INCLUSION_VECTORS)('rejects corrupted inclusion proofs for leaf $index in size $size', ({ index, size, proof: hexProof }) => {
    const leaf = leafHash(LEAF_INPUTS[index] ?? Buffer.alloc(0));
    const root = hx(ROOTS[size] ?? '');
    const proof = hexProof.map(hx);
    const someHash = hx('abacaba000000000000000000000000000000000000000000060061e00123456');
    const probes: [string, Parameters<typeof verifyInclusion>][] = [
      ['index - 1', [leaf, index - 1, size, proof, root]],
      ['index + 1', [leaf, index + 1, size, proof, root]],
      ['index ^ 2', [leaf, index ^ 2, size, proof, root]],
      ['size * 2', [leaf, index, size * 2, proof, root]],
      ['size / 2', [leaf, index, Math.floor(size / 2), proof, root]],
      ['wrong leaf', [leafHash(Buffer.from('WrongLeaf')), index, size, proof, root]],
      ['short leaf', [Buffer.from('WrongLeaf'), index, size, proof, root]],
      ['empty-tree root', [leaf, index, size, proof, emptyRoot()]],
      ['random root', [leaf, index, size, proof, someHash]],
      ['trailing empty element', [leaf, index, size, [...proof, Buffer.alloc(0)], root]],
      ['trailing root', [leaf, index, size, [...proof, root], root]],
      ['preceding empty element', [leaf, index, size, [Buffer.alloc(0), ...proof], root]],
      ['preceding root', [leaf, index, size, [root, ...proof], root]],
      ...proof.map((_, i): [string, Parameters<typeof verifyInclusion>] => [`proof[${i}] bit 3 flipped`, [leaf, index, size, flipBit(proof, i), root]]),
    ];
    if (proof.length > 0) probes.push(['removed last element', [leaf, index, size, proof.slice(0, -1), root]]);
    if (proof.length > 1) probes.push(['inserted element', [leaf, index, size, [proof[0] ?? someHash, someHash, ...proof.slice(1)], root]]);
    const accepted = probes.filter(([, args]) => verifyInclusion(...args)).map(([label]) => label);
    expect(accepted).toEqual([]);
  });

  it.each(CONSISTENCY_VECTORS)('consistency proof from $m to $n: generated and verified', ({ m, n, proof }) => {
    expect(hexes(full.consistencyProof(m, n))).toEqual(proof);
    expect(hexes(treeOf(LEAF_INPUTS.slice(0, n)).consistencyProof(m, n))).toEqual(proof);
    expect(verifyConsistency(m, n, proof.map(hx), hx(ROOTS[m] ?? ''), hx(ROOTS[n] ?? ''))).toBe(true);
  });

  it.each(CONSISTENCY_VECTORS.filter((v) => v.proof.length > 0))('rejects corrupted consistency proofs from $m to $n', ({ m, n, proof: hexProof }) => {
    const proof = hexProof.map(hx);
    const [r1, r2] = [hx(ROOTS[m] ?? ''), hx(ROOTS[n] ?? '')];
    const first = proof[0] ?? r1;
    const someHash = hx('abacaba000000000000000000000000000000000000000000060061e00123456');
    const probes: [string, Parameters<typeof verifyConsistency>][] = [
      ['m - 1', [m - 1, n, proof, r1, r2]],
      ['m + 1', [m + 1, n, proof, r1, r2]],
      ['m ^ 2', [m ^ 2, n, proof, r1, r2]],
      ['n * 2', [m, n * 2, proof, r1, r2]],
      ['n / 2', [m, Math.floor(n / 2), proof, r1, r2]],
      ['short root m', [m, n, proof, Buffer.from('WrongRoot'), r2]],
      ['short root n', [m, n, proof, r1, Buffer.from('WrongRoot')]],
      ['swapped roots', [m, n, proof, r2, r1]],
      ['random root m', [m, n, proof, someHash, r2]],
      ['random root n', [m, n, proof, r1, someHash]],
      ['empty proof', [m, n, [], r1, r2]],
      ['trailing empty element', [m, n, [...proof, Buffer.alloc(0)], r1, r2]],
      ['trailing root m', [m, n, [...proof, r1], r1, r2]],
      ['trailing root n', [m, n, [...proof, r2], r1, r2]],
      ['preceding empty element', [m, n, [Buffer.alloc(0), ...proof], r1, r2]],
      ['preceding root m', [m, n, [r1, ...proof], r1, r2]],
      ['preceding root n', [m, n, [r2, ...proof], r1, r2]],
      ['preceding proof[0]', [m, n, [first, ...proof], r1, r2]],
      ['truncated', [m, n, proof.slice(0, -1), r1, r2]],
      ...proof.map((_, i): [string, Parameters<typeof verifyConsistency>] => [`proof[${i}] bit 4 flipped`, [m, n, flipBit(proof, i, 0, 0x10), r1, r2]]),
    ];
    const accepted = probes.filter(([, args]) => verifyConsistency(...args)).map(([label]) => label);
    expect(accepted).toEqual([]);
  });

  describe('proofs are made of the published nodes (proof/proof_test.go)', () => {
    const tree = treeOf(Array.from({ length: 95 }, (_, i) => Buffer.from(`entry ${i}`)));
    const expand = (items: readonly ProofItem[]) =>
      hexes(
        items.map((item) => {
          const isNode = (x: ProofItem): x is Node => typeof x[0] === 'number';
          if (isNode(item)) return tree.hashAt(item[0], item[1]);
          const [rightmost, ...rest] = item.map(([l, i]) => tree.hashAt(l, i));
          return rest.reduce((acc, left) => nodeHash(left, acc), rightmost ?? Buffer.alloc(0));
        }),
      );

    it.each(INCLUSION_SHAPES)('inclusion in size %i of leaf %i', (size, index, items) => {
      const proof = tree.inclusionProof(index, size);
      expect(hexes(proof)).toEqual(expand(items));
      expect(verifyInclusion(tree.hashAt(0, index), index, size, proof, tree.root(size))).toBe(true);
    });

    it.each(CONSISTENCY_SHAPES)('consistency from %i to %i', (m, n, items) => {
      const proof = tree.consistencyProof(m, n);
      expect(hexes(proof)).toEqual(expand(items));
      expect(verifyConsistency(m, n, proof, tree.root(m), tree.root(n))).toBe(true);
    });

    it.each([
      [0, 0],
      [1, 0],
      [2, 1],
      [3, 0],
      [8, 7],
    ])('refuses inclusion of leaf %i in size %i', (index, size) => {
      expect(() => tree.inclusionProof(index, size)).toThrow(RangeError);
    });

    it.each([
      [5, 0],
      [9, 8],
    ])('refuses consistency from %i to %i', (m, n) => {
      expect(() => tree.consistencyProof(m, n)).toThrow(RangeError);
    });
  });
});

// --- Naive reference, straight from RFC 6962 §2.1 ----------------------------------------------

const H = {
  leaf: (d: Uint8Array) => sha256(Buffer.from([0x00]), d),
  node: (l: Uint8Array, r: Uint8Array) => sha256(Buffer.from([0x01]), l, r),
};

/** The largest power of two smaller than n (n > 1). */
function splitOf(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** MTH(D[n]) over the entries themselves. */
function mth(d: readonly Uint8Array[]): Buffer {
  if (d.length === 0) return sha256();
  if (d.length === 1) return H.leaf(d[0] as Uint8Array);
  const k = splitOf(d.length);
  return H.node(mth(d.slice(0, k)), mth(d.slice(k)));
}

/** PATH(m, D[n]). */
function path(m: number, d: readonly Uint8Array[]): Buffer[] {
  if (d.length <= 1) return [];
  const k = splitOf(d.length);
  if (m < k) return [...path(m, d.slice(0, k)), mth(d.slice(k))];
  return [...path(m - k, d.slice(k)), mth(d.slice(0, k))];
}

/** SUBPROOF(m, D[n], b). */
function subproof(m: number, d: readonly Uint8Array[], b: boolean): Buffer[] {
  if (m === d.length) return b ? [] : [mth(d)];
  const k = splitOf(d.length);
  if (m <= k) return [...subproof(m, d.slice(0, k), b), mth(d.slice(k))];
  return [...subproof(m - k, d.slice(k), false), mth(d.slice(0, k))];
}

// Which side each proof hash goes in, from the sizes alone. A verifier given the same hashes can
// only tell two (index, size) or (m, n) pairs apart if these differ.
function pathShape(m: number, n: number): string {
  if (n <= 1) return '';
  const k = splitOf(n);
  return m < k ? `${pathShape(m, k)}R` : `${pathShape(m - k, n - k)}L`;
}
function subproofShape(m: number, n: number, b = true): string {
  if (m === n) return b ? '' : 'S';
  const k = splitOf(n);
  return m <= k ? `${subproofShape(m, k, b)}R` : `${subproofShape(m - k, n - k, false)}L`;
}

const entriesOf = (seed: number, count: number) => Array.from({ length: count }, (_, i) => Buffer.from(`${seed}/${i}`));

describe('against the naive RFC 6962 §2.1 reference', () => {
  it('matches every root and stored node, and every inclusion and consistency proof, for all sizes up to 48', () => {
    const d = entriesOf(7, 48);
    const tree = treeOf(d);
    for (let n = 0; n <= d.length; n++) {
      expect(tree.root(n).equals(mth(d.slice(0, n)))).toBe(true);
      for (let i = 0; i < n; i++) {
        const proof = tree.inclusionProof(i, n);
        expect(hexes(proof)).toEqual(hexes(path(i, d.slice(0, n))));
        expect(verifyInclusion(H.leaf(d[i] as Uint8Array), i, n, proof, tree.root(n))).toBe(true);
      }
      for (let m = 1; m <= n; m++) {
        const proof = tree.consistencyProof(m, n);
        expect(hexes(proof)).toEqual(hexes(subproof(m, d.slice(0, n), true)));
        expect(verifyConsistency(m, n, proof, tree.root(m), tree.root(n))).toBe(true);
      }
    }
    for (let level = 0; level < 7; level++) {
      for (let i = 0; i < tree.widthAt(level); i++) {
        expect(tree.hashAt(level, i).equals(mth(d.slice(i * 2 ** level, (i + 1) * 2 ** level)))).toBe(true);
      }
    }
  });

  // A tree of `total` leaves, asked about a size n <= total: past sizes must work too.
  const sized = fc
    .record({ seed: fc.nat(), total: fc.integer({ min: 1, max: 300 }) })
    .chain(({ seed, total }) => fc.record({ seed: fc.constant(seed), total: fc.constant(total), n: fc.integer({ min: 1, max: total }) }));

  it('roots and stored nodes equal the naive MTH', () => {
    fc.assert(
      fc.property(sized, ({ seed, total, n }) => {
        const d = entriesOf(seed, total);
        const tree = treeOf(d);
        expect(tree.size).toBe(total);
        expect(tree.root(n).equals(mth(d.slice(0, n)))).toBe(true);
        expect(tree.root().equals(mth(d))).toBe(true);
        for (let level = 0; 2 ** level <= total; level++) {
          expect(tree.widthAt(level)).toBe(Math.floor(total / 2 ** level));
          const i = seed % tree.widthAt(level);
          expect(tree.hashAt(level, i).equals(mth(d.slice(i * 2 ** level, (i + 1) * 2 ** level)))).toBe(true);
        }
      }),
      { numRuns: 150 },
    );
  });

  it('inclusion proofs equal the naive PATH; verify accepts them and rejects a flipped byte, a wrong index or a wrong size', () => {
    const arb = sized.chain((s) =>
      fc.record({
        s: fc.constant(s),
        index: fc.integer({ min: 0, max: s.n - 1 }),
        otherIndex: fc.integer({ min: 0, max: s.n - 1 }),
        otherSize: fc.integer({ min: 1, max: 1000 }),
        flip: fc.record({ at: fc.nat(), byte: fc.integer({ min: 0, max: HASH_SIZE - 1 }), bit: fc.integer({ min: 0, max: 7 }) }),
      }),
    );
    fc.assert(
      fc.property(arb, ({ s: { seed, total, n }, index, otherIndex, otherSize, flip }) => {
        const d = entriesOf(seed, total);
        const tree = treeOf(d);
        const leaf = H.leaf(d[index] as Uint8Array);
        const root = mth(d.slice(0, n));
        const proof = tree.inclusionProof(index, n);
        expect(hexes(proof)).toEqual(hexes(path(index, d.slice(0, n))));
        expect(verifyInclusion(leaf, index, n, proof, root)).toBe(true);

        if (proof.length > 0) {
          const bad = flipBit(proof, flip.at % proof.length, flip.byte, 1 << flip.bit);
          expect(verifyInclusion(leaf, index, n, bad, root)).toBe(false);
        }
        if (otherIndex !== index) expect(verifyInclusion(leaf, otherIndex, n, proof, root)).toBe(false);
        if (otherSize !== n) {
          // RFC 9162 binds the size only through the proof's shape (the root is bound to its size by
          // the signed checkpoint): a size giving the very same shape is indistinguishable.
          const same = otherSize > index && pathShape(index, otherSize) === pathShape(index, n);
          expect(verifyInclusion(leaf, index, otherSize, proof, root)).toBe(same);
        }
      }),
      { numRuns: 200 },
    );
  });

  it('consistency proofs equal the naive SUBPROOF; verify accepts them and rejects a flipped byte, a wrong m or a wrong n', () => {
    const arb = sized.chain((s) =>
      fc.record({
        s: fc.constant(s),
        m: fc.integer({ min: 1, max: s.n }),
        otherM: fc.integer({ min: 1, max: s.n }),
        otherN: fc.integer({ min: 1, max: 1000 }),
        flip: fc.record({ at: fc.nat(), byte: fc.integer({ min: 0, max: HASH_SIZE - 1 }), bit: fc.integer({ min: 0, max: 7 }) }),
      }),
    );
    fc.assert(
      fc.property(arb, ({ s: { seed, total, n }, m, otherM, otherN, flip }) => {
        const d = entriesOf(seed, total);
        const tree = treeOf(d);
        const rootM = mth(d.slice(0, m));
        const rootN = mth(d.slice(0, n));
        const proof = tree.consistencyProof(m, n);
        expect(hexes(proof)).toEqual(hexes(subproof(m, d.slice(0, n), true)));
        expect(verifyConsistency(m, n, proof, rootM, rootN)).toBe(true);

        if (proof.length > 0) {
          const bad = flipBit(proof, flip.at % proof.length, flip.byte, 1 << flip.bit);
          expect(verifyConsistency(m, n, bad, rootM, rootN)).toBe(false);
          expect(verifyConsistency(m, n, proof, flipBit([rootM], 0, flip.byte, 1 << flip.bit)[0] as Buffer, rootN)).toBe(false);
          expect(verifyConsistency(m, n, proof, rootM, flipBit([rootN], 0, flip.byte, 1 << flip.bit)[0] as Buffer)).toBe(false);
        }
        if (otherM !== m) {
          const same = subproofShape(otherM, n) === subproofShape(m, n);
          expect(verifyConsistency(otherM, n, proof, rootM, rootN)).toBe(same);
        }
        if (otherN !== n) {
          const same = otherN >= m && subproofShape(m, otherN) === subproofShape(m, n);
          expect(verifyConsistency(m, otherN, proof, rootM, rootN)).toBe(same);
        }
      }),
      { numRuns: 200 },
    );
  });

  it('still agrees after the level buffers have grown past their doubling phase', () => {
    // Level 0 doubles up to 65,536 hashes, then grows by a quarter: to 81,920, then 102,400.
    const count = 81_923;
    const tree = new MerkleTree();
    const leaves: Buffer[] = [];
    for (let i = 0; i < count; i++) {
      const h = H.leaf(Buffer.from(`big ${i}`));
      leaves.push(h);
      tree.append(h);
    }
    // The naive MTH over leaf hashes instead of entries, to keep 82k leaves cheap.
    const mthOfHashes = (lo: number, hi: number): Buffer => {
      if (hi - lo === 1) return leaves[lo] as Buffer;
      const k = splitOf(hi - lo);
      return H.node(mthOfHashes(lo, lo + k), mthOfHashes(lo + k, hi));
    };
    expect(tree.root().equals(mthOfHashes(0, count))).toBe(true);
    for (const i of [0, 65_535, 65_536, 81_919, 81_920, count - 1]) {
      expect(tree.hashAt(0, i).equals(leaves[i] as Buffer)).toBe(true);
      expect(verifyInclusion(leaves[i] as Buffer, i, count, tree.inclusionProof(i, count), tree.root())).toBe(true);
    }
    expect(tree.hashAt(14, 4).equals(mthOfHashes(65_536, 81_920))).toBe(true);
    expect(verifyConsistency(70_001, count, tree.consistencyProof(70_001, count), tree.root(70_001), tree.root())).toBe(true);
  });
});

// --- Edges ------------------------------------------------------------------------------------

describe('the compact range', () => {
  it('gives the naive root at every size up to 70, and the complete subtrees of the left edge, largest first', () => {
    const d = entriesOf(11, 70);
    const range = new CompactRange();
    for (let n = 0; n <= d.length; n++) {
      expect(range.size).toBe(n);
      expect(range.root().equals(mth(d.slice(0, n)))).toBe(true);
      // Its hashes: MTH of [0, 2^a), then of the next largest power of two, and so on.
      const want: Buffer[] = [];
      for (let lo = 0, rest = n; rest > 0; ) {
        const span = 2 ** Math.floor(Math.log2(rest));
        want.push(mth(d.slice(lo, lo + span)));
        lo += span;
        rest -= span;
      }
      expect(hexes(range.hashes)).toEqual(hexes(want));
      if (n < d.length) range.append(H.leaf(d[n] as Uint8Array));
    }
  });

  it('extends a clone without changing the original', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 0, max: 40 }), (a, b) => {
        const d = entriesOf(a + b, a + b);
        const range = new CompactRange();
        for (const e of d.slice(0, a)) range.append(H.leaf(e));
        const rootA = range.root();
        const more = range.clone();
        for (const e of d.slice(a)) more.append(H.leaf(e));
        return range.root().equals(rootA) && rootA.equals(mth(d.slice(0, a))) && more.root().equals(mth(d));
      }),
      { numRuns: 60 },
    );
  });
});

describe('edges', () => {
  const someHash = () => H.leaf(Buffer.from('x'));

  it('the empty tree has the SHA-256 of nothing as its root', () => {
    const empty = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
    expect(emptyRoot().toString('hex')).toBe(empty);
    const tree = new MerkleTree();
    expect(tree.size).toBe(0);
    expect(tree.root().toString('hex')).toBe(empty);
    expect(tree.widthAt(0)).toBe(0);
    tree.append(someHash());
    expect(tree.root(0).toString('hex')).toBe(empty);
  });

  it('a one-leaf tree has the leaf hash as root and empty proofs', () => {
    const leaf = leafHash(Buffer.from('data'));
    expect(leaf.equals(H.leaf(Buffer.from('data')))).toBe(true);
    const tree = new MerkleTree();
    expect(tree.append(leaf)).toBe(0);
    expect(tree.size).toBe(1);
    expect(tree.root().equals(leaf)).toBe(true);
    expect(tree.inclusionProof(0, 1)).toEqual([]);
    expect(tree.consistencyProof(1, 1)).toEqual([]);
    expect(verifyInclusion(leaf, 0, 1, [], leaf)).toBe(true);
    expect(verifyInclusion(leaf, 0, 1, [], someHash())).toBe(false);
    expect(verifyConsistency(1, 1, [], leaf, leaf)).toBe(true);
    expect(verifyConsistency(1, 1, [], leaf, someHash())).toBe(false);
    expect(verifyConsistency(1, 1, [leaf], leaf, leaf)).toBe(false);
  });

  it('size 0 is consistent with any tree, but only under the empty root and with an empty proof', () => {
    expect(verifyConsistency(0, 0, [], emptyRoot(), emptyRoot())).toBe(true);
    expect(verifyConsistency(0, 5, [], emptyRoot(), someHash())).toBe(true);
    expect(verifyConsistency(0, 5, [someHash()], emptyRoot(), someHash())).toBe(false);
    expect(verifyConsistency(0, 5, [], someHash(), someHash())).toBe(false);
  });

  it('hands out copies: neither the caller nor its inputs can change the stored tree', () => {
    const tree = new MerkleTree();
    const input = someHash();
    tree.append(input);
    tree.append(H.leaf(Buffer.from('y')));
    const before = tree.root().toString('hex');
    input.fill(0);
    tree.hashAt(0, 0).fill(0);
    tree.root(1).fill(0);
    for (const p of tree.inclusionProof(0, 2)) p.fill(0);
    for (const p of tree.consistencyProof(1, 2)) p.fill(0);
    emptyRoot().fill(0);
    expect(tree.root().toString('hex')).toBe(before);
    expect(tree.hashAt(0, 0).equals(someHash())).toBe(true);
    expect(emptyRoot().equals(sha256())).toBe(true);
  });

  it('refuses a leaf hash that is not 32 bytes, and the tree stays as it was', () => {
    const tree = new MerkleTree();
    tree.append(someHash());
    for (const bad of [Buffer.alloc(31), Buffer.alloc(33), Buffer.alloc(0), 'x'.repeat(32) as unknown as Uint8Array]) {
      expect(() => tree.append(bad)).toThrow(RangeError);
    }
    expect(tree.size).toBe(1);
    expect(tree.root().equals(someHash())).toBe(true);
  });

  describe('bad arguments are RangeErrors', () => {
    const tree = treeOf(LEAF_INPUTS.slice(0, 3));
    it.each([
      ['root(-1)', () => tree.root(-1), /size/],
      ['root(4) past the size', () => tree.root(4), /size must be an integer in \[0, 3\], got 4/],
      ['root(1.5)', () => tree.root(1.5), /size/],
      ['root(NaN)', () => tree.root(Number.NaN), /size/],
      ['hashAt(-1, 0)', () => tree.hashAt(-1, 0), /level/],
      ['hashAt(0, -1)', () => tree.hashAt(0, -1), /index/],
      ['hashAt(0, 3) past the last leaf', () => tree.hashAt(0, 3), /not complete/],
      ['hashAt(1, 1), an incomplete node', () => tree.hashAt(1, 1), /not complete/],
      ['hashAt(2, 0), an incomplete node', () => tree.hashAt(2, 0), /not complete/],
      ['hashAt(0.5, 0)', () => tree.hashAt(0.5, 0), /level/],
      ['widthAt(-1)', () => tree.widthAt(-1), /level/],
      ['widthAt(Infinity)', () => tree.widthAt(Infinity), /level/],
      ['inclusionProof(0, 0)', () => tree.inclusionProof(0, 0), /size/],
      ['inclusionProof(3, 3)', () => tree.inclusionProof(3, 3), /index/],
      ['inclusionProof(-1, 3)', () => tree.inclusionProof(-1, 3), /index/],
      ['inclusionProof(0, 4) past the size', () => tree.inclusionProof(0, 4), /size/],
      ['inclusionProof(0.5, 2)', () => tree.inclusionProof(0.5, 2), /index/],
      ['consistencyProof(0, 3)', () => tree.consistencyProof(0, 3), /m must/],
      ['consistencyProof(3, 2)', () => tree.consistencyProof(3, 2), /m must/],
      ['consistencyProof(1, 4) past the size', () => tree.consistencyProof(1, 4), /n must/],
      ['consistencyProof(1.5, 2)', () => tree.consistencyProof(1.5, 2), /m must/],
    ])('%s', (_label, call, message) => {
      expect(call).toThrow(RangeError);
      expect(call).toThrow(message);
    });

    it('but the complete nodes of a 3-leaf tree are there', () => {
      expect(tree.widthAt(1)).toBe(1);
      expect(tree.widthAt(2)).toBe(0);
      expect(tree.hashAt(1, 0).toString('hex')).toBe(NODE_HASHES[1]?.[0]);
      expect(tree.hashAt(0, 2).toString('hex')).toBe(NODE_HASHES[0]?.[2]);
    });
  });

  describe('verify functions say false, never throw, for malformed input', () => {
    const tree = treeOf(LEAF_INPUTS);
    const leaf = tree.hashAt(0, 5);
    const proof = tree.inclusionProof(5, 8);
    const root = tree.root();
    const cproof = tree.consistencyProof(6, 8);
    const root6 = tree.root(6);
    const asHashes = (x: unknown) => x as Uint8Array[];

    it('accepts the well-formed originals', () => {
      expect(verifyInclusion(leaf, 5, 8, proof, root)).toBe(true);
      expect(verifyConsistency(6, 8, cproof, root6, root)).toBe(true);
    });

    it.each([
      ['a 31-byte proof element', () => verifyInclusion(leaf, 5, 8, [proof[0]?.subarray(1) ?? leaf, ...proof.slice(1)], root)],
      ['a 33-byte proof element', () => verifyInclusion(leaf, 5, 8, [Buffer.concat([proof[0] ?? leaf, Buffer.alloc(1)]), ...proof.slice(1)], root)],
      ['a string as proof element', () => verifyInclusion(leaf, 5, 8, asHashes(['a'.repeat(32), ...proof.slice(1)]), root)],
      ['undefined as proof element', () => verifyInclusion(leaf, 5, 8, asHashes([undefined, ...proof.slice(1)]), root)],
      ['a proof that is not an array', () => verifyInclusion(leaf, 5, 8, asHashes('proof'), root)],
      ['a proof that is too long', () => verifyInclusion(leaf, 5, 8, Array.from({ length: 1000 }, () => leaf), root)],
      ['a short leaf hash', () => verifyInclusion(leaf.subarray(0, 31), 5, 8, proof, root)],
      ['a long root', () => verifyInclusion(leaf, 5, 8, proof, Buffer.concat([root, Buffer.alloc(1)]))],
      ['a negative index', () => verifyInclusion(leaf, -1, 8, proof, root)],
      ['a fractional index', () => verifyInclusion(leaf, 5.5, 8, proof, root)],
      ['a NaN index', () => verifyInclusion(leaf, Number.NaN, 8, proof, root)],
      ['an index equal to the size', () => verifyInclusion(leaf, 8, 8, proof, root)],
      ['size 0', () => verifyInclusion(leaf, 0, 0, [], root)],
      ['an infinite size', () => verifyInclusion(leaf, 5, Infinity, proof, root)],
      ['a size past 2^53', () => verifyInclusion(leaf, 5, 2 ** 60, proof, root)],
    ])('inclusion with %s', (_label, call) => {
      expect(call).not.toThrow();
      expect(call()).toBe(false);
    });

    it.each([
      ['a 31-byte proof element', () => verifyConsistency(6, 8, [cproof[0]?.subarray(1) ?? root, ...cproof.slice(1)], root6, root)],
      ['a null proof element', () => verifyConsistency(6, 8, asHashes([...cproof.slice(0, 2), null]), root6, root)],
      ['a proof that is not an array', () => verifyConsistency(6, 8, asHashes({ length: 3 }), root6, root)],
      ['a proof that is too long', () => verifyConsistency(6, 8, Array.from({ length: 1000 }, () => root), root6, root)],
      ['an empty root', () => verifyConsistency(6, 8, cproof, Buffer.alloc(0), root)],
      ['a long new root', () => verifyConsistency(6, 8, cproof, root6, Buffer.concat([root, Buffer.alloc(1)]))],
      ['m > n', () => verifyConsistency(8, 6, cproof, root, root6)],
      ['a negative m', () => verifyConsistency(-6, 8, cproof, root6, root)],
      ['a fractional n', () => verifyConsistency(6, 8.5, cproof, root6, root)],
      ['a NaN m', () => verifyConsistency(Number.NaN, 8, cproof, root6, root)],
      ['m == n with a non-empty proof', () => verifyConsistency(8, 8, cproof, root, root)],
      ['m == n with different roots', () => verifyConsistency(8, 8, [], root, root6)],
      ['n past 2^53', () => verifyConsistency(6, 2 ** 60, cproof, root6, root)],
    ])('consistency with %s', (_label, call) => {
      expect(call).not.toThrow();
      expect(call()).toBe(false);
    });
  });

  it('verifies proofs for sizes far past 2^32 (no 32-bit bit arithmetic)', () => {
    // In a tree whose leaves are all equal, the node at level L is h[L] whatever its index.
    const h = [someHash()];
    for (let l = 1; l <= 41; l++) h.push(H.node(h[l - 1] as Buffer, h[l - 1] as Buffer));
    const at = (l: number) => h[l] as Buffer;
    const levels = (k: number) => h.slice(0, k);
    expect(verifyInclusion(at(0), 2 ** 40 - 3, 2 ** 40, levels(40), at(40))).toBe(true);
    expect(verifyInclusion(at(0), 2 ** 40 - 3, 2 ** 40 + 1, levels(40), at(40))).toBe(false);
    // The last leaf of 2^40 + 1 sits alone on the right of the 2^40 subtree.
    expect(verifyInclusion(at(0), 2 ** 40, 2 ** 40 + 1, [at(40)], H.node(at(40), at(0)))).toBe(true);
    expect(verifyConsistency(2 ** 40, 2 ** 41, [at(40)], at(40), at(41))).toBe(true);
    expect(verifyConsistency(2 ** 40, 2 ** 41 + 1, [at(40)], at(40), at(41))).toBe(false);
    expect(verifyConsistency(2 ** 40, 2 ** 40 + 1, [at(0)], at(40), H.node(at(40), at(0)))).toBe(true);
  });
});
