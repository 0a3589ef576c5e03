// The audit bundle's verifier. This one file is `verify/verify.mjs` inside every bundle, and what
// `vcm-collector verify` runs: the two cannot disagree. It imports nothing but Node's own modules
// (Node 18 or later), so an auditor can read it whole and run it on an air-gapped laptop.
//
// What it checks, in order: the manifest's DSSE signature under the collector key; every file's
// size and SHA-256 against the manifest, and that none is missing or extra; the checkpoints'
// signatures; that the log entries reproduce every checkpoint's root (RFC 6962) from the compact
// range at the start; the host keys (an agent id is its first key's fingerprint, and each rotation
// is signed by the key before it); every envelope's signature under the key valid at its seq; each
// agent's hash chain from its newest envelope before the period, naming gaps and the spool-drop
// records that explain them; that every entry of the period has its envelope and every envelope
// its entry; and the OSCAL evidence links.
import * as nodeCrypto from 'node:crypto';
import { createHash, createPublicKey, verify as edVerify, type KeyObject } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, open, readdir, readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';

export const BUNDLE_FORMAT = 'vcm-audit-bundle/1';
export const MANIFEST_PAYLOAD_TYPE = 'application/vnd.vcm.audit-manifest.v1+json';
const CONTROLS = ['vpn', 'disk_encryption', 'usb_policy', 'credential_age', 'sso_coverage', 'open_ports'];
const FINDING = 'https://vcm.dev/attestation/finding/v1';
const SPOOL_DROP = 'https://vcm.dev/attestation/spool-drop/v1';

// ---------------------------------------------------------------------------------------------
// The manifest, as the exporter writes it

export interface ManifestFile {
  path: string;
  size: number;
  sha256: string;
}

export interface Manifest {
  format: string;
  vendor: string;
  /** [from, to), UTC. `ended` is false when the bundle was made before `to`: it then holds evidence up to exportedAt. */
  period: { from: string; to: string; ended: boolean };
  exportedAt: string;
  generator: string;
  collector: { fingerprint: string; publicKey: string; verifierKey: string };
  log: {
    origin: string;
    /** Entries [start.size, end.size) are in log/entries.jsonl. */
    start: { size: number; checkpoint: string | null; compactRange: string };
    end: { size: number; checkpoint: string };
    /** The earlier bundle's end checkpoint this one continues from (--after-checkpoint), by size. */
    after: number | null;
    entries: string;
    checkpoints: string[];
  };
  /** Entries of the period whose envelope the store no longer held at export (the verifier finds them too). */
  missingEvidence: number;
  files: ManifestFile[];
}

// ---------------------------------------------------------------------------------------------
// What the verifier reports

/** Stable codes; README.txt in the bundle explains each. */
export const DEFECT_CODES = [
  'AUD_MANIFEST_SIGNATURE',
  'AUD_COLLECTOR_KEY',
  'AUD_FILE_MISSING',
  'AUD_FILE_EXTRA',
  'AUD_FILE_HASH',
  'AUD_CHECKPOINT_SIGNATURE',
  'AUD_CHECKPOINT',
  'AUD_LOG_FORK',
  'AUD_ROOT_MISMATCH',
  'AUD_ENTRY_MALFORMED',
  'AUD_KEY',
  'AUD_ENVELOPE_MALFORMED',
  'AUD_ENVELOPE_SIGNATURE',
  'AUD_ENVELOPE_MISSING',
  'AUD_ENTRY_MISSING',
  'AUD_OUT_OF_PERIOD',
  'AUD_CHAIN_BROKEN',
  'AUD_POLICY',
  'AUD_OSCAL_LINK',
] as const;
export type DefectCode = (typeof DEFECT_CODES)[number];

export interface Defect {
  code: DefectCode;
  message: string;
  file?: string;
  logIndex?: number;
  agentId?: string;
  seq?: number;
}

export interface HostControlRow {
  agentId: string;
  hostname: string;
  control: string;
  /** Results for the period, and their statuses as the agent signed them. */
  results: number;
  pass: number;
  fail: number;
  unknown: number;
  first: string | null;
  last: string | null;
  /** Envelopes whose signature failed (each is also a defect). */
  badSignatures: number;
}

export interface Gap {
  agentId: string;
  fromSeq: number;
  toSeq: number;
  /** The spool-drop record that accounts for the missing seqs, when one does. */
  explainedBy: { seq: number; count: number; reason: string } | null;
}

export interface Verdict {
  /** 0 verified, 1 a defect, 2 unusable input. */
  exitCode: 0 | 1 | 2;
  verified: boolean;
  /** The collector key was given out of band (--collector-key / --collector-fingerprint). */
  keyPinned: boolean;
  collectorFingerprint: string | null;
  vendor: string | null;
  period: Manifest['period'] | null;
  log: { origin: string; start: number; end: number; rootHash: string } | null;
  counts: { files: number; entries: number; envelopes: number; agents: number };
  hosts: HostControlRow[];
  gaps: Gap[];
  defects: Defect[];
  /** Why the input could not be verified at all (exit 2). */
  unusable: string | null;
}

export interface VerifyOptions {
  /** The collector's public key (PEM), obtained out of band. */
  collectorKeyPem?: string;
  /** Or its fingerprint: SHA-256 (hex) of the key's SubjectPublicKeyInfo DER. */
  collectorFingerprint?: string;
  /** An earlier bundle's end checkpoint (a signed note): this bundle must agree with it. */
  afterCheckpoint?: string;
  /** Worker threads for signatures; 0 verifies on this thread. Default: the cores available. */
  workers?: number;
}

class Unusable extends Error {}

// ---------------------------------------------------------------------------------------------
// Small pieces: hashes, canonical JSON, DSSE, signed notes, RFC 6962

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/**
 * Node's one-shot digest (Node 20.12 and later), when it gives what a Hash object gives: a
 * million envelopes take several million hashes, and a Hash object for each costs more than the
 * hashing of a log entry. On older Node, createHash.
 */
const oneShot = ((): ((data: Uint8Array) => Buffer) | null => {
  const hash = (nodeCrypto as { hash?: (algorithm: string, data: Uint8Array, encoding: 'buffer') => unknown }).hash;
  if (typeof hash !== 'function') return null;
  try {
    const probe = Buffer.from('vcm');
    const got = hash('sha256', probe, 'buffer');
    return Buffer.isBuffer(got) && got.equals(createHash('sha256').update(probe).digest()) ? (data) => hash('sha256', data, 'buffer') as Buffer : null;
  } catch {
    return null;
  }
})();
const sha256 = (b: Uint8Array | string): Buffer => (oneShot !== null && typeof b !== 'string' ? oneShot(b) : createHash('sha256').update(b).digest());

export function spkiFingerprint(key: KeyObject): string {
  return hex(sha256(key.export({ type: 'spki', format: 'der' })));
}

function pae(payloadType: string, payload: Buffer): Buffer {
  const head = `DSSEv1 ${Buffer.byteLength(payloadType, 'utf8')} ${payloadType} ${payload.length} `;
  const n = Buffer.byteLength(head, 'utf8');
  const out = Buffer.allocUnsafe(n + payload.length);
  out.write(head, 0, 'utf8');
  payload.copy(out, n);
  return out;
}

/**
 * Strict base64: what decodes must encode back to the same text. The round trip is the whole
 * check: Node's decoder skips what is not base64 (white space, "-" and "_", stray "="), and a
 * missing or extra pad or non-zero trailing bits re-encode as other text.
 */
function b64(text: unknown): Buffer | null {
  if (typeof text !== 'string') return null;
  const b = Buffer.from(text, 'base64');
  return b.toString('base64') === text ? b : null;
}

/** RFC 8785 for what log entries hold (strings, integers, booleans, null): sorted members, no white space. */
function canonical(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  const o = v as Record<string, unknown>;
  // Members already in order and none nested (every log entry): JSON.stringify writes them in
  // that order, which is the canonical text, several times faster than joining them one by one.
  const keys = Object.keys(o);
  let flat = true;
  for (let i = 0; i < keys.length && flat; i++) {
    const value = o[keys[i]!];
    flat = (i === 0 || keys[i - 1]! < keys[i]!) && (value === null || typeof value !== 'object');
  }
  if (flat) return JSON.stringify(o);
  return `{${keys
    .sort()
    .map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`)
    .join(',')}}`;
}

/** 0x00 and the entry, hashed from one buffer (grown for a longer entry) when one-shot hashing is there. */
let leafInput = Buffer.alloc(4096);
function leafHash(entry: Uint8Array): Buffer {
  if (oneShot === null) return createHash('sha256').update(Buffer.of(0)).update(entry).digest();
  if (entry.length + 1 > leafInput.length) leafInput = Buffer.alloc(2 * (entry.length + 1));
  leafInput[0] = 0;
  leafInput.set(entry, 1);
  return oneShot(leafInput.subarray(0, entry.length + 1));
}
const nodeInput = Buffer.alloc(65);
function nodeHash(l: Uint8Array, r: Uint8Array): Buffer {
  if (oneShot === null || l.length !== 32 || r.length !== 32) return createHash('sha256').update(Buffer.of(1)).update(l).update(r).digest();
  nodeInput[0] = 1;
  nodeInput.set(l, 1);
  nodeInput.set(r, 33);
  return oneShot(nodeInput);
}

/**
 * An RFC 6962 tree grown leaf by leaf from a compact range: the roots of its perfect subtrees,
 * largest first. The root at the current size folds them from the right.
 */
class CompactRange {
  readonly hashes: Buffer[] = [];
  readonly sizes: number[] = [];
  size = 0;

  static of(size: number, hashes: Buffer[]): CompactRange {
    const c = new CompactRange();
    let rest = size;
    const sizes: number[] = [];
    for (let bit = 2 ** 52; bit >= 1; bit /= 2) {
      if (rest >= bit) {
        sizes.push(bit);
        rest -= bit;
      }
    }
    if (sizes.length !== hashes.length) throw new Unusable(`the compact range at size ${size} needs ${sizes.length} hashes, not ${hashes.length}`);
    c.hashes.push(...hashes);
    c.sizes.push(...sizes);
    c.size = size;
    return c;
  }

  append(leaf: Buffer): void {
    let h = leaf;
    let s = 1;
    while (this.sizes.length > 0 && this.sizes[this.sizes.length - 1] === s) {
      h = nodeHash(this.hashes.pop()!, h);
      this.sizes.pop();
      s *= 2;
    }
    this.hashes.push(h);
    this.sizes.push(s);
    this.size++;
  }

  root(): Buffer {
    if (this.hashes.length === 0) return sha256(Buffer.alloc(0));
    let h = this.hashes[this.hashes.length - 1]!;
    for (let i = this.hashes.length - 2; i >= 0; i--) h = nodeHash(this.hashes[i]!, h);
    return h;
  }
}

interface OpenedCheckpoint {
  origin: string;
  size: number;
  rootHash: Buffer;
  signed: boolean;
}

function rawEd25519(key: KeyObject): Buffer {
  return Buffer.from(key.export({ format: 'jwk' }).x ?? '', 'base64url');
}

/** C2SP signed-note key ID: the first 4 bytes of SHA-256(name, "\n", 0x01, raw key). */
function noteKeyId(name: string, key: KeyObject): Buffer {
  return createHash('sha256').update(name, 'utf8').update(Buffer.from([0x0a, 0x01])).update(rawEd25519(key)).digest().subarray(0, 4);
}

/** Parses a checkpoint note and checks the collector's signature on it (C2SP signed-note, tlog-checkpoint). */
function openCheckpoint(note: string, key: KeyObject): OpenedCheckpoint {
  const split = note.lastIndexOf('\n\n');
  if (split < 0 || !note.endsWith('\n')) throw new Unusable('a checkpoint is not a signed note');
  const text = note.slice(0, split + 1);
  const lines = text.slice(0, -1).split('\n');
  const [origin = '', size = '', root = ''] = lines;
  const rootHash = b64(root);
  if (lines.length < 3 || !/^(0|[1-9]\d*)$/.test(size) || rootHash === null || rootHash.length !== 32) throw new Unusable('a checkpoint body is malformed');
  const id = noteKeyId(origin, key);
  let signed = false;
  for (const line of note.slice(split + 2, -1).split('\n')) {
    const m = /^\u2014 (\S+) ([A-Za-z0-9+/=]+)$/.exec(line);
    const raw = m === null ? null : b64(m[2]);
    if (m === null || raw === null || m[1] !== origin || raw.length !== 68 || !raw.subarray(0, 4).equals(id)) continue;
    signed = edVerify(null, Buffer.from(text, 'utf8'), key, raw.subarray(4));
  }
  return { origin, size: Number(size), rootHash, signed };
}

// ---------------------------------------------------------------------------------------------
// Envelopes: parsed and verified, on worker threads when there are many

interface KeyRef {
  generation: number;
  keyId: string;
  afterSeq: number;
  spki: Buffer;
}

interface EnvelopeTask {
  file: string;
  agentId: string;
  /** The file's day (YYYY-MM-DD), and the period [fromMs, toMs): an envelope outside either is named. */
  day: string;
  fromMs: number;
  toMs: number;
  keys: KeyRef[];
}

/** One envelope line, as the main thread needs it. */
interface EnvelopeFact {
  seq: number;
  prev: string | null;
  collectedAt: string | null;
  predicateType: string | null;
  check: string | null;
  status: string | null;
  dropped: { firstSeq: number; lastSeq: number; count: number; reason: string } | null;
  signatureOk: boolean;
  problem: string | null;
}

function keyForSeq(keys: readonly KeyRef[], seq: number): KeyRef {
  let chosen = keys[0]!;
  for (const k of keys) if (k.afterSeq < seq) chosen = k;
  return chosen;
}

function envelopeFact(line: Buffer, task: EnvelopeTask, keyObjects: Map<string, KeyObject>): EnvelopeFact {
  const fact: EnvelopeFact = { seq: 0, prev: null, collectedAt: null, predicateType: null, check: null, status: null, dropped: null, signatureOk: false, problem: null };
  let env: { payloadType?: unknown; payload?: unknown; signatures?: unknown };
  let stmt: { predicateType?: unknown; predicate?: Record<string, unknown> };
  try {
    env = JSON.parse(line.toString('utf8')) as typeof env;
    const payload = b64(env.payload);
    if (payload === null || typeof env.payloadType !== 'string') throw new Error('no payload');
    stmt = JSON.parse(payload.toString('utf8')) as typeof stmt;
    const p = stmt.predicate ?? {};
    if (typeof p.seq !== 'number' || p.agentId !== task.agentId || typeof p.collectedAt !== 'string') throw new Error('no seq, agent or time');
    fact.seq = p.seq;
    fact.prev = typeof p.prev === 'string' ? p.prev : null;
    fact.collectedAt = p.collectedAt;
    fact.predicateType = typeof stmt.predicateType === 'string' ? stmt.predicateType : null;
    const finding = p.finding as { check?: unknown; status?: unknown } | undefined;
    if (finding !== undefined) {
      fact.check = typeof finding.check === 'string' ? finding.check : null;
      fact.status = typeof finding.status === 'string' ? finding.status : null;
    }
    const d = p.dropped as { firstSeq?: unknown; lastSeq?: unknown; count?: unknown; reason?: unknown } | undefined;
    if (d !== undefined && typeof d.firstSeq === 'number' && typeof d.lastSeq === 'number') {
      fact.dropped = { firstSeq: d.firstSeq, lastSeq: d.lastSeq, count: Number(d.count), reason: String(d.reason) };
    }
    const sigs = env.signatures as { keyid?: unknown; sig?: unknown }[] | undefined;
    const key = keyForSeq(task.keys, fact.seq);
    const sig = Array.isArray(sigs) && sigs.length === 1 ? b64(sigs[0]?.sig) : null;
    let k = keyObjects.get(key.keyId);
    if (k === undefined) keyObjects.set(key.keyId, (k = createPublicKey({ key: Buffer.from(key.spki), format: 'der', type: 'spki' })));
    fact.signatureOk = sig !== null && sig.length === 64 && sigs?.[0]?.keyid === key.keyId && edVerify(null, pae(env.payloadType, payload), k, sig);
    if (!fact.signatureOk) fact.problem = `the signature does not verify under key generation ${key.generation} (${key.keyId.slice(0, 16)}…), the key valid at seq ${fact.seq}`;
  } catch (err) {
    fact.problem = `not a vcm envelope: ${(err as Error).message}`;
  }
  return fact;
}

/** A host's results for one control in one file: merged into the verdict's rows (mergeRow). */
type RowPart = Omit<HostControlRow, 'agentId' | 'hostname'>;

/** Adds one file's results for a host and control to the verdict's row. */
function mergeRow(r: RowPart, part: RowPart): void {
  r.results += part.results;
  r.pass += part.pass;
  r.fail += part.fail;
  r.unknown += part.unknown;
  r.badSignatures += part.badSignatures;
  if (part.first !== null && (r.first === null || part.first < r.first)) r.first = part.first;
  if (part.last !== null && (r.last === null || part.last > r.last)) r.last = part.last;
}

/** Per envelope, in FileFacts.flags. */
const IN_CHAIN = 1; // readable, with a seq: a link of its agent's chain
const HAS_PREV = 2; // its prev is a SHA-256 (hex), in FileFacts.prev
const PLAIN = 4; // signed, in the period and its file's day, a finding: nothing more to check than its entry and chain

/**
 * An envelope file's facts: its own SHA-256 and size (so that it is read once, here, for both),
 * and per envelope its seq, hash, prev and flags in typed arrays over one buffer, which moves to
 * the main thread without a copy. The envelopes that need more than that (a defect, a spool-drop
 * record) are in `odd` whole, by line; the host-control rows are counted here.
 */
interface FileFacts {
  sha256: string;
  size: number;
  count: number;
  seq: Float64Array;
  flags: Uint8Array;
  hash: Uint8Array;
  prev: Uint8Array;
  odd: Map<number, EnvelopeFact>;
  rows: RowPart[];
}

/** Counts a host's result for one control into its row. */
function countRow(rows: Map<string, RowPart>, f: EnvelopeFact): void {
  let r = rows.get(f.check!);
  if (r === undefined) rows.set(f.check!, (r = { control: f.check!, results: 0, pass: 0, fail: 0, unknown: 0, first: null, last: null, badSignatures: 0 }));
  r.results++;
  if (f.status === 'pass') r.pass++;
  else if (f.status === 'fail') r.fail++;
  else r.unknown++;
  if (!f.signatureOk) r.badSignatures++;
  if (f.collectedAt !== null && (r.first === null || f.collectedAt < r.first)) r.first = f.collectedAt;
  if (f.collectedAt !== null && (r.last === null || f.collectedAt > r.last)) r.last = f.collectedAt;
}

/** Each line of `body` (without its newline), as [start, end) offsets. */
function lineBounds(body: Buffer): { starts: number[]; ends: number[] } {
  const starts: number[] = [];
  const ends: number[] = [];
  for (let start = 0; start < body.length; ) {
    let end = body.indexOf(0x0a, start);
    if (end < 0) end = body.length;
    starts.push(start);
    ends.push(end);
    start = end + 1;
  }
  return { starts, ends };
}

/**
 * Buffers the envelope files are read into, each used again for the next file. A new buffer for
 * each file is freed only when its Buffer is collected from the old generation, which a worker
 * seldom collects (its envelopes' objects die young): they piled up, over a gigabyte of them by a
 * million envelopes.
 */
const spareReads: Buffer[] = [];

/** Reads one envelope file and checks it (packFile). */
async function factsOfFile(task: EnvelopeTask, keyObjects: Map<string, KeyObject>): Promise<FileFacts> {
  let buf = spareReads.pop() ?? Buffer.alloc(0);
  try {
    const fh = await open(task.file, 'r');
    let size = 0;
    try {
      const want = (await fh.stat()).size;
      if (buf.length < want) buf = Buffer.allocUnsafe(want);
      while (size < want) {
        const { bytesRead } = await fh.read(buf, size, want - size, size);
        if (bytesRead === 0) break;
        size += bytesRead;
      }
    } finally {
      await fh.close();
    }
    return packFile(buf.subarray(0, size), task, keyObjects);
  } finally {
    spareReads.push(buf);
  }
}

/**
 * Verifies and packs one envelope file. Each envelope's facts are packed as soon as it is checked,
 * and only the odd ones are kept whole: a file's thousands of envelopes leave no objects behind to
 * outlive a young-generation collection.
 */
function packFile(bytes: Buffer, task: EnvelopeTask, keyObjects: Map<string, KeyObject>): FileFacts {
  const { starts, ends } = lineBounds(bytes);
  const n = starts.length;
  const buffer = new ArrayBuffer(n * (8 + 1 + 32 + 32));
  const out: FileFacts = {
    sha256: hex(sha256(bytes)),
    size: bytes.length,
    count: n,
    seq: new Float64Array(buffer, 0, n),
    hash: new Uint8Array(buffer, n * 8, n * 32),
    prev: new Uint8Array(buffer, n * 40, n * 32),
    flags: new Uint8Array(buffer, n * 72, n),
    odd: new Map(),
    rows: [],
  };
  const prev = Buffer.from(buffer, n * 40, n * 32);
  const rows = new Map<string, RowPart>();
  for (let i = 0; i < n; i++) {
    const line = bytes.subarray(starts[i], ends[i]);
    const f = envelopeFact(line, task, keyObjects);
    out.seq[i] = f.seq;
    out.hash.set(sha256(line), i * 32);
    const readable = !(f.problem !== null && !f.signatureOk && f.seq === 0);
    let flags = readable ? IN_CHAIN : 0;
    if (f.prev !== null && f.prev.length === 64 && /^[0-9a-f]{64}$/.test(f.prev)) {
      prev.write(f.prev, i * 32, 'hex');
      flags |= HAS_PREV;
    }
    const t = f.collectedAt === null ? NaN : Date.parse(f.collectedAt);
    const finding = f.predicateType === FINDING && f.check !== null;
    if (f.signatureOk && f.dropped === null && finding && t >= task.fromMs && t < task.toMs && f.collectedAt!.slice(0, 10) === task.day) flags |= PLAIN;
    else out.odd.set(i, f);
    out.flags[i] = flags;
    if (readable && finding) countRow(rows, f);
  }
  out.rows = [...rows.values()];
  return out;
}

/** A file's envelopes whole, with their SHA-256 (the one before the period, read on this thread). */
async function envelopesOf(task: EnvelopeTask, keyObjects: Map<string, KeyObject>): Promise<{ fact: EnvelopeFact; hash: Buffer }[]> {
  const bytes = await readFile(task.file);
  const { starts, ends } = lineBounds(bytes);
  return starts.map((start, i) => {
    const line = bytes.subarray(start, ends[i]);
    return { fact: envelopeFact(line, task, keyObjects), hash: sha256(line) };
  });
}

/**
 * Each signature worker's young generation, in MiB: V8's default (up to 48 MiB a thread) is
 * resident for each worker, and a worker's garbage is one file's envelopes at a time.
 */
const WORKER_YOUNG_MB = 8;

/**
 * Files each worker holds at once: it starts reading the next while it verifies one, and never
 * waits for this thread, which may be busy with the log entries, to hand it more.
 */
const WORKER_DEPTH = 2;

type Reply = { resolve: (f: FileFacts) => void; reject: (e: Error) => void };

/** Runs envelope files through a pool of worker threads (this same file), in order. */
class EnvelopePool {
  /** Each worker, and the tasks it holds by id. */
  readonly #workers: { w: Worker; held: Map<number, Reply>; stopped: Error | null }[] = [];
  readonly #waiting: (() => void)[] = [];
  readonly #keys = new Map<string, KeyObject>();
  #nextId = 0;

  get size(): number {
    return this.#workers.length;
  }

  constructor(n: number) {
    const self = fileURLToPath(import.meta.url);
    for (let i = 0; i < n; i++) {
      const w = new Worker(self, { workerData: { vcmEnvelopeWorker: true }, resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_MB } });
      w.unref();
      const x = { w, held: new Map<number, Reply>(), stopped: null as Error | null };
      w.on('message', (m: { id: number; file?: FileFacts; error?: string }) => {
        const r = x.held.get(m.id);
        x.held.delete(m.id);
        if (m.file !== undefined) r?.resolve(m.file);
        else r?.reject(new Error(m.error));
      });
      // A worker that stops (out of memory, say) fails what it held, and is given nothing more.
      const stop = (err: Error) => {
        x.stopped ??= err;
        for (const r of x.held.values()) r.reject(x.stopped);
        x.held.clear();
        this.#waiting.shift()?.();
      };
      w.on('error', stop);
      w.on('exit', (code) => stop(new Error(`a signature worker stopped (exit code ${code})`)));
      this.#workers.push(x);
    }
  }

  async run(task: EnvelopeTask): Promise<FileFacts> {
    if (this.#workers.length === 0) return factsOfFile(task, this.#keys);
    const least = () => {
      const live = this.#workers.filter((x) => x.stopped === null);
      if (live.length === 0) throw this.#workers[0]!.stopped!;
      return live.reduce((a, b) => (b.held.size < a.held.size ? b : a));
    };
    while (least().held.size >= WORKER_DEPTH) await new Promise<void>((r) => this.#waiting.push(r));
    const { w, held } = least();
    const id = this.#nextId++;
    try {
      return await new Promise<FileFacts>((resolve, reject) => {
        held.set(id, { resolve, reject });
        w.postMessage({ id, task });
      });
    } finally {
      this.#waiting.shift()?.();
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.#workers.map((x) => x.w.terminate()));
  }
}

if (!isMainThread && (workerData as { vcmEnvelopeWorker?: boolean } | null)?.vcmEnvelopeWorker === true) {
  const keys = new Map<string, KeyObject>();
  parentPort!.on('message', ({ id, task }: { id: number; task: EnvelopeTask }) => {
    factsOfFile(task, keys).then(
      (file) => parentPort!.postMessage({ id, file }, [file.seq.buffer as ArrayBuffer]),
      (err: unknown) => parentPort!.postMessage({ id, error: (err as Error).message }),
    );
  });
}

// ---------------------------------------------------------------------------------------------
// The bundle

/** Every regular file under dir, relative, with "/" separators, sorted; anything else is named. */
async function walk(dir: string, rel = '', out: { files: string[]; odd: string[] } = { files: [], odd: [] }) {
  for (const name of (await readdir(path.join(dir, rel))).sort()) {
    const p = rel === '' ? name : `${rel}/${name}`;
    const st = await lstat(path.join(dir, p));
    if (st.isDirectory()) await walk(dir, p, out);
    else if (st.isFile()) out.files.push(p);
    else out.odd.push(p);
  }
  return out;
}

async function fileSha256(file: string): Promise<{ sha256: string; size: number }> {
  const h = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(file)) {
    h.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { sha256: h.digest('hex'), size };
}

/** Lines of a file as exact bytes (without their newline), streamed. */
async function* lines(file: string): AsyncGenerator<Buffer> {
  let rest: Buffer = Buffer.alloc(0);
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) {
    let buf = rest.length === 0 ? (chunk as Buffer) : Buffer.concat([rest, chunk as Buffer]);
    let start = 0;
    for (let nl = buf.indexOf(0x0a); nl >= 0; nl = buf.indexOf(0x0a, start)) {
      yield buf.subarray(start, nl);
      start = nl + 1;
    }
    rest = Buffer.from(buf.subarray(start));
    buf = rest;
  }
  if (rest.length > 0) yield rest;
}

/** A verdict before anything is checked: unusable until shown otherwise. */
export function emptyVerdict(): Verdict {
  return {
    exitCode: 2,
    verified: false,
    keyPinned: false,
    collectorFingerprint: null,
    vendor: null,
    period: null,
    log: null,
    counts: { files: 0, entries: 0, envelopes: 0, agents: 0 },
    hosts: [],
    gaps: [],
    defects: [],
    unusable: null,
  };
}

async function readJson<T>(file: string, what: string): Promise<T> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    throw new Unusable(`${what} is missing`);
  }
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new Unusable(`${what} is not JSON`);
  }
}

interface AgentKeys {
  hostname: string;
  keys: KeyRef[];
}

/** The period of an envelope entry, by what it says or (entered after the fact) by its store key's date. */
const KEY_DATE_RE = /\/date=(\d{4}-\d{2}-\d{2})\//;
/** A host's envelopes of one day: evidence/<agent id>/<YYYY-MM-DD>.jsonl. */
const ENVELOPE_FILE_RE = /^evidence\/[0-9a-f]{64}\/\d{4}-\d{2}-\d{2}\.jsonl$/;
/** Beside a host's day files: its newest envelope collected before the period, which its first in the period links to. */
export const PRIOR_FILE = 'prior.jsonl';
const PRIOR_FILE_RE = /^evidence\/([0-9a-f]{64})\/prior\.jsonl$/;

/**
 * The range's envelope entries by envelope hash, in a few flat arrays rather than an object each,
 * so that a range of millions stays small: for each, its log index, agent, seq, whether the period
 * needs it and whether an envelope matched it. A hash entered twice keeps its first place and the
 * later entry's facts. Hashes that are not 64 lowercase hex digits can match no envelope; they are
 * kept aside by their text.
 */
class EntryIndex {
  count = 0;
  #sha = Buffer.alloc(0);
  #index = new Float64Array(0);
  #seq = new Float64Array(0);
  #agent = new Int32Array(0);
  /** Bit 1: needed; bit 2: matched. */
  #flags = new Uint8Array(0);
  /** Open addressing: slot + 1, or 0 for empty. */
  #table = new Int32Array(1024);
  readonly #odd = new Map<string, number>();
  readonly #agentIds: string[] = [];
  readonly #agentNo = new Map<string, number>();
  readonly #probe = Buffer.alloc(32);

  /**
   * Sized for `expected` entries at once: growing by doubling holds the old arrays beside the new
   * (at a million entries, 80 MiB at the peak instead of 53).
   */
  constructor(expected: number) {
    this.#grow(Number.isSafeInteger(expected) ? expected : 0);
    while (this.#table.length < 2 * this.#index.length) this.#table = new Int32Array(this.#table.length * 2);
  }

  #grow(atLeast = 0): void {
    const cap = Math.max(1024, this.#index.length * 2, atLeast);
    const sha = Buffer.alloc(cap * 32);
    this.#sha.copy(sha);
    this.#sha = sha;
    const more = <T extends Float64Array | Int32Array | Uint8Array>(old: T, make: (n: number) => T): T => {
      const a = make(cap);
      a.set(old);
      return a;
    };
    this.#index = more(this.#index, (n) => new Float64Array(n));
    this.#seq = more(this.#seq, (n) => new Float64Array(n));
    this.#agent = more(this.#agent, (n) => new Int32Array(n));
    this.#flags = more(this.#flags, (n) => new Uint8Array(n));
  }

  #rehash(): void {
    this.#table = new Int32Array(this.#table.length * 2);
    for (let slot = 0; slot < this.count; slot++) if (this.#odd.size === 0 || !this.#isOdd(slot)) this.#place(slot);
  }

  #isOdd(slot: number): boolean {
    return (this.#flags[slot]! & 4) !== 0;
  }

  #place(slot: number): void {
    const mask = this.#table.length - 1;
    for (let i = this.#sha.readUInt32LE(slot * 32) & mask; ; i = (i + 1) & mask) {
      if (this.#table[i] === 0) {
        this.#table[i] = slot + 1;
        return;
      }
    }
  }

  /** The slot of a 32-byte hash at `buf`'s offset, or -1. */
  #find(buf: Buffer, offset: number): number {
    const mask = this.#table.length - 1;
    for (let i = buf.readUInt32LE(offset) & mask; ; i = (i + 1) & mask) {
      const t = this.#table[i]!;
      if (t === 0) return -1;
      if (this.#sha.compare(buf, offset, offset + 32, (t - 1) * 32, t * 32) === 0) return t - 1;
    }
  }

  set(sha256: string, index: number, agentId: string, seq: number, needed: boolean): void {
    const hexOk = sha256.length === 64 && /^[0-9a-f]{64}$/.test(sha256);
    let slot = -1;
    if (hexOk) {
      this.#probe.write(sha256, 'hex');
      slot = this.#find(this.#probe, 0);
    } else slot = this.#odd.get(sha256) ?? -1;
    if (slot < 0) {
      if (this.count === this.#index.length) this.#grow();
      slot = this.count++;
      if (hexOk) {
        this.#probe.copy(this.#sha, slot * 32);
        if (this.count * 2 > this.#table.length) this.#rehash();
        else this.#place(slot);
      } else this.#odd.set(sha256, slot);
    }
    let a = this.#agentNo.get(agentId);
    if (a === undefined) {
      this.#agentNo.set(agentId, (a = this.#agentIds.length));
      this.#agentIds.push(agentId);
    }
    this.#index[slot] = index;
    this.#seq[slot] = seq;
    this.#agent[slot] = a;
    this.#flags[slot] = (needed ? 1 : 0) | (hexOk ? 0 : 4);
  }

  /** Marks the entry of this envelope (its hash at `hashes`' offset) matched; false when there is none for its agent and seq. */
  match(hashes: Uint8Array, offset: number, agentId: string, seq: number): boolean {
    this.#probe.set(hashes.subarray(offset, offset + 32));
    const slot = this.#find(this.#probe, 0);
    if (slot < 0 || this.#agentIds[this.#agent[slot]!] !== agentId || this.#seq[slot] !== seq) return false;
    this.#flags[slot]! |= 2;
    return true;
  }

  /** Entries the period needs that no envelope matched, in the order they were first entered. */
  *unmatched(): Generator<{ index: number; agentId: string; seq: number }> {
    for (let slot = 0; slot < this.count; slot++) {
      if ((this.#flags[slot]! & 3) === 1) yield { index: this.#index[slot]!, agentId: this.#agentIds[this.#agent[slot]!]!, seq: this.#seq[slot]! };
    }
  }
}

/** Verifies an unpacked bundle. Never throws for what is in the bundle: defects and unusable input are in the verdict. */
export async function verifyBundleDir(dir: string, opts: VerifyOptions = {}): Promise<Verdict> {
  const v = emptyVerdict();
  try {
    await check(dir, opts, v);
    v.exitCode = v.defects.length === 0 ? 0 : 1;
    v.verified = v.exitCode === 0;
  } catch (err) {
    v.verified = false;
    if (err instanceof Unusable || v.defects.length === 0) {
      // Nothing wrong found before it: the input itself cannot be used.
      v.unusable = err instanceof Unusable ? err.message : `the bundle cannot be read: ${(err as Error).message}`;
      v.exitCode = 2;
    } else {
      // A file already named as altered broke what followed: the defects stand.
      v.defects.push({ code: 'AUD_FILE_HASH', message: `verification stopped: ${(err as Error).message}` });
      v.exitCode = 1;
    }
  }
  return v;
}

/** Evidence file bytes the signature workers may run ahead of the envelope checks by. */
const AHEAD_BYTES = 16 << 20;
/** An envelope entry holds an agent id and a SHA-256, and a store key with both again: 4 × 64 hex digits. */
const ENVELOPE_ENTRY_MIN_BYTES = 256;
/** Defects named, at most: a bundle with a million broken envelopes needs no million lines to say so. */
const MAX_DEFECTS = 10_000;

const STEPS = ['manifest', 'odd', 'files', 'missing', 'checkpoints', 'entries', 'keys', 'envelopes', 'policy'] as const;
type Step = (typeof STEPS)[number];

/**
 * Defects by the step of the check that names them, given back in step order: the steps do not
 * run strictly one after another (see check). Within "files", in path order, as the files are.
 */
class Defects {
  readonly #byStep = new Map<Step, Defect[]>(STEPS.map((s) => [s, []]));
  #current: Defect[] = this.#byStep.get('manifest')!;

  /** Defects named from now on belong to `step`. */
  in(step: Step): void {
    this.#current = this.#byStep.get(step)!;
  }

  add(d: Defect, step?: Step): void {
    const to = step === undefined ? this.#current : this.#byStep.get(step)!;
    if (to.length < MAX_DEFECTS) to.push(d);
  }

  all(): Defect[] {
    const key = (d: Defect) => d.file ?? '';
    this.#byStep.get('files')!.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
    return STEPS.flatMap((s) => this.#byStep.get(s)!).slice(0, MAX_DEFECTS);
  }
}

/**
 * Checks an unpacked bundle into `v`. The envelope files go to the signature workers as soon as
 * the host keys are read, and are hashed there, while this thread checks the other files, the
 * checkpoints and the entries; the defects still come in the order of the steps below.
 */
async function check(dir: string, opts: VerifyOptions, v: Verdict): Promise<void> {
  const defects = new Defects();
  const workers: { pool: EnvelopePool | null } = { pool: null };
  try {
    await checkSteps(dir, opts, v, defects, workers);
  } finally {
    await workers.pool?.close();
    v.defects.push(...defects.all().slice(0, MAX_DEFECTS - v.defects.length));
  }
}

async function checkSteps(dir: string, opts: VerifyOptions, v: Verdict, defects: Defects, workers: { pool: EnvelopePool | null }): Promise<void> {
  const defect = (d: Defect) => defects.add(d);
  const manifestBytes = await readFile(path.join(dir, 'manifest.json')).catch(() => {
    throw new Unusable('manifest.json is missing: this is not an unpacked vcm audit bundle');
  });
  let manifest: Manifest;
  try {
    manifest = JSON.parse(manifestBytes.toString('utf8')) as Manifest;
  } catch {
    throw new Unusable('manifest.json is not JSON');
  }
  if (manifest.format !== BUNDLE_FORMAT || !Array.isArray(manifest.files)) throw new Unusable(`manifest.json is not a ${BUNDLE_FORMAT} manifest`);
  v.vendor = manifest.vendor;
  v.period = manifest.period;

  // The collector key: pinned out of band, or (said so) the bundle's own.
  let collectorKey: KeyObject;
  try {
    collectorKey = createPublicKey(opts.collectorKeyPem ?? manifest.collector.publicKey);
  } catch {
    throw new Unusable('the collector key is not a public key in PEM');
  }
  v.collectorFingerprint = spkiFingerprint(collectorKey);
  v.keyPinned = opts.collectorKeyPem !== undefined || opts.collectorFingerprint !== undefined;
  if (opts.collectorFingerprint !== undefined && opts.collectorFingerprint.toLowerCase() !== v.collectorFingerprint) {
    defect({ code: 'AUD_COLLECTOR_KEY', file: 'manifest.json', message: `the bundle's collector key has fingerprint ${v.collectorFingerprint}, not the ${opts.collectorFingerprint} you gave` });
  }
  if (opts.collectorKeyPem !== undefined && spkiFingerprint(createPublicKey(manifest.collector.publicKey)) !== v.collectorFingerprint) {
    defect({ code: 'AUD_COLLECTOR_KEY', file: 'manifest.json', message: 'the manifest names another collector key than the one you gave' });
  }

  // 1. The manifest's signature.
  const dsse = await readJson<{ payloadType?: unknown; payload?: unknown; signatures?: { keyid?: unknown; sig?: unknown }[] }>(path.join(dir, 'manifest.dsse.json'), 'manifest.dsse.json');
  const payload = b64(dsse.payload);
  const sigOk =
    payload !== null &&
    payload.equals(manifestBytes) &&
    dsse.payloadType === MANIFEST_PAYLOAD_TYPE &&
    Array.isArray(dsse.signatures) &&
    dsse.signatures.some((s) => {
      const sig = b64(s.sig);
      return sig !== null && sig.length === 64 && edVerify(null, pae(MANIFEST_PAYLOAD_TYPE, manifestBytes), collectorKey, sig);
    });
  if (!sigOk) defect({ code: 'AUD_MANIFEST_SIGNATURE', file: 'manifest.dsse.json', message: 'the manifest is not signed by the collector key (or the envelope does not hold exactly manifest.json)' });

  // 2. Every file, against the manifest (the envelope files are hashed by the workers, below).
  const listed = new Map<string, ManifestFile>();
  for (const f of manifest.files) listed.set(f.path, f);
  const found = await walk(dir);
  defects.in('odd');
  for (const p of found.odd) defect({ code: 'AUD_FILE_EXTRA', file: p, message: 'not a regular file' });
  const present = new Set<string>();
  for (const p of found.files) if (p !== 'manifest.json' && p !== 'manifest.dsse.json') present.add(p);
  v.counts.files = present.size;
  const has = (p: string) => present.has(p);
  const envelopeFiles = [...present].filter((f) => ENVELOPE_FILE_RE.test(f)).sort();

  // 5. Host keys (read now, so that the envelope files can go to the workers): each agent id is its first key's fingerprint; each rotation is signed by the key before it and the new one.
  defects.in('keys');
  const agents = new Map<string, AgentKeys>();
  for (const p of [...present].filter((f) => /^keys\/[0-9a-f]{64}\.json$/.test(f))) {
    const agentId = p.slice(5, 69);
    const rec = await readJson<{ agentId?: string; vendor?: string; publicKey?: string; host?: { hostname?: string } }>(path.join(dir, p), p);
    let key: KeyObject;
    try {
      key = createPublicKey(String(rec.publicKey));
    } catch {
      defect({ code: 'AUD_KEY', file: p, agentId, message: 'the agent record holds no public key' });
      continue;
    }
    if (rec.agentId !== agentId || spkiFingerprint(key) !== agentId) {
      defect({ code: 'AUD_KEY', file: p, agentId, message: `the enrolled key's fingerprint is ${spkiFingerprint(key)}, not the agent id: the key was swapped` });
    }
    if (rec.vendor !== manifest.vendor) defect({ code: 'AUD_KEY', file: p, agentId, message: `the agent belongs to ${String(rec.vendor)}, not ${manifest.vendor}` });
    const a: AgentKeys = { hostname: String(rec.host?.hostname ?? ''), keys: [{ generation: 0, keyId: agentId, afterSeq: 0, spki: key.export({ type: 'spki', format: 'der' }) }] };
    for (let g = 1; has(`keys/${agentId}.key-${g}.json`); g++) {
      const file = `keys/${agentId}.key-${g}.json`;
      const ev = await readJson<{ generation?: number; keyId?: string; publicKey?: string; afterSeq?: number; request?: { payloadType?: string; payload?: string; signatures?: { keyid?: string; sig?: string }[] } }>(path.join(dir, file), file);
      const prev = a.keys[a.keys.length - 1]!;
      let next: KeyObject | null = null;
      try {
        next = createPublicKey(String(ev.publicKey));
      } catch {
        /* named below */
      }
      const req = ev.request;
      const reqPayload = b64(req?.payload);
      const message = reqPayload === null || typeof req?.payloadType !== 'string' ? null : pae(req.payloadType, reqPayload);
      const signedBy = (keyObject: KeyObject, keyId: string) =>
        message !== null && (req?.signatures ?? []).some((s) => s.keyid === keyId && ((sig) => sig !== null && sig.length === 64 && edVerify(null, message, keyObject, sig))(b64(s.sig)));
      type RotateBody = { agentId?: string; generation?: number; publicKey?: string; afterSeq?: number };
      let body: RotateBody | null = null;
      try {
        body = reqPayload === null ? null : (JSON.parse(reqPayload.toString('utf8')) as RotateBody);
      } catch {
        body = null;
      }
      const prevKey = createPublicKey({ key: prev.spki, format: 'der', type: 'spki' });
      if (
        next === null ||
        spkiFingerprint(next) !== ev.keyId ||
        ev.generation !== g ||
        body?.agentId !== agentId ||
        body.generation !== g ||
        body.publicKey !== ev.publicKey ||
        body.afterSeq !== ev.afterSeq ||
        !signedBy(prevKey, prev.keyId) ||
        !signedBy(next, String(ev.keyId))
      ) {
        defect({ code: 'AUD_KEY', file, agentId, message: `rotation to generation ${g} is not signed by the key before it and the new key, or does not match its request` });
        break;
      }
      a.keys.push({ generation: g, keyId: String(ev.keyId), afterSeq: Number(ev.afterSeq), spki: next.export({ type: 'spki', format: 'der' }) });
    }
    agents.set(agentId, a);
  }
  const fromMs = Date.parse(manifest.period.from);
  const toMs = Date.parse(manifest.period.to);
  // 6, begun: the envelope files go to the workers, which run ahead while the files, checkpoints
  // and entries are checked here.
  const byAgent = new Map<string, string[]>();
  for (const f of envelopeFiles) {
    const id = f.slice(9, 73);
    let list = byAgent.get(id);
    if (list === undefined) byAgent.set(id, (list = []));
    list.push(f);
  }
  const pool = (workers.pool = new EnvelopePool(opts.workers ?? (import.meta.url.endsWith('.ts') || envelopeFiles.length < 4 ? 0 : Math.max(1, availableParallelism()))));
  const queue: { agentId: string; file: string }[] = [];
  for (const [agentId, files] of byAgent) {
    if (!agents.has(agentId)) defects.add({ code: 'AUD_KEY', file: files[0], agentId, message: 'evidence of an agent whose keys are not in the bundle' }, 'envelopes');
    else for (const file of files) queue.push({ agentId, file });
  }
  // Up to AHEAD_BYTES of files (and always a few) are with the workers or done and not yet
  // checked, so memory holds only their facts.
  const ahead = new Map<number, Promise<FileFacts>>();
  let scheduled = 0;
  let aheadBytes = 0;
  const sizeOf = (i: number) => listed.get(queue[i]!.file)?.size ?? 0;
  const schedule = (checking: number) => {
    const few = checking + Math.max(2, 2 * pool.size);
    for (; scheduled < queue.length && (scheduled < few || aheadBytes < AHEAD_BYTES); scheduled++) {
      const q = queue[scheduled]!;
      const facts = pool.run({ file: path.join(dir, q.file), agentId: q.agentId, day: q.file.slice(74, 84), fromMs, toMs, keys: agents.get(q.agentId)!.keys });
      // Awaited in turn below; one that fails while this thread is busy elsewhere is not an unhandled rejection.
      facts.catch(() => undefined);
      ahead.set(scheduled, facts);
      aheadBytes += sizeOf(scheduled);
    }
  };
  schedule(0);

  // 2, continued: the other files' hashes, and the files that are missing.
  defects.in('files');
  for (const p of found.files) {
    if (p === 'manifest.json' || p === 'manifest.dsse.json') continue;
    const want = listed.get(p);
    if (want === undefined) {
      defect({ code: 'AUD_FILE_EXTRA', file: p, message: 'a file the manifest does not list' });
      continue;
    }
    if (ENVELOPE_FILE_RE.test(p) && agents.has(p.slice(9, 73))) continue; // hashed by the workers
    const got = await fileSha256(path.join(dir, p));
    if (got.sha256 !== want.sha256 || got.size !== want.size) defect({ code: 'AUD_FILE_HASH', file: p, message: `SHA-256 ${got.sha256} (${got.size} bytes), the manifest says ${want.sha256} (${want.size} bytes)` });
  }
  defects.in('missing');
  for (const p of listed.keys()) if (!present.has(p)) defect({ code: 'AUD_FILE_MISSING', file: p, message: 'listed in the manifest, not in the bundle' });

  // 3. Checkpoints: signed, of this log, one root per size.
  defects.in('checkpoints');
  const log = manifest.log;
  const checkpoints = new Map<number, { file: string; root: Buffer }>();
  const noteOf = async (file: string): Promise<OpenedCheckpoint | null> => {
    if (!has(file)) return null;
    const c = openCheckpoint(await readFile(path.join(dir, file), 'utf8'), collectorKey);
    if (!c.signed) defect({ code: 'AUD_CHECKPOINT_SIGNATURE', file, message: 'the checkpoint is not signed by the collector key' });
    if (c.origin !== log.origin) defect({ code: 'AUD_CHECKPOINT', file, message: `the checkpoint is of the log ${c.origin}, not ${log.origin}` });
    const seen = checkpoints.get(c.size);
    if (seen !== undefined && !seen.root.equals(c.rootHash)) {
      defect({ code: 'AUD_LOG_FORK', file, message: `two checkpoints of size ${c.size} with different roots (${seen.file} and ${file}): the log was forked` });
    }
    checkpoints.set(c.size, { file, root: c.rootHash });
    return c;
  };
  const end = await noteOf(log.end.checkpoint);
  if (end === null) throw new Unusable(`${log.end.checkpoint}, the end checkpoint, is missing`);
  if (end.size !== log.end.size) defect({ code: 'AUD_CHECKPOINT', file: log.end.checkpoint, message: `the end checkpoint is of size ${end.size}, the manifest says ${log.end.size}` });
  const start = log.start.checkpoint === null ? null : await noteOf(log.start.checkpoint);
  if (start !== null && start.size !== log.start.size) defect({ code: 'AUD_CHECKPOINT', file: log.start.checkpoint!, message: `the start checkpoint is of size ${start.size}, the manifest says ${log.start.size}` });
  if (start === null && log.start.size !== 0) defect({ code: 'AUD_CHECKPOINT', file: log.start.checkpoint ?? 'manifest.json', message: `the range starts at ${log.start.size} without a checkpoint there` });
  for (const file of log.checkpoints) await noteOf(file);
  if (opts.afterCheckpoint !== undefined) {
    const prior = openCheckpoint(opts.afterCheckpoint, collectorKey);
    if (!prior.signed) throw new Unusable('the earlier checkpoint you gave is not signed by the collector key');
    const mine = checkpoints.get(prior.size);
    if (prior.size < log.start.size || prior.size > log.end.size) {
      defect({ code: 'AUD_CHECKPOINT', message: `the earlier checkpoint (size ${prior.size}) is outside this bundle's range ${log.start.size}–${log.end.size}: the bundles do not link` });
    } else if (mine !== undefined && !mine.root.equals(prior.rootHash)) {
      defect({ code: 'AUD_LOG_FORK', file: mine.file, message: `the earlier checkpoint of size ${prior.size} has another root than this bundle's: the log was forked` });
    } else if (mine === undefined) {
      checkpoints.set(prior.size, { file: '(the earlier checkpoint you gave)', root: prior.rootHash });
    }
  }
  v.log = { origin: log.origin, start: log.start.size, end: log.end.size, rootHash: end.rootHash.toString('base64') };

  // 4. The entries reproduce every root, from the compact range at the start.
  defects.in('entries');
  const compact = await readJson<{ size?: number; hashes?: string[] }>(path.join(dir, log.start.compactRange), log.start.compactRange);
  const tree = CompactRange.of(log.start.size, (compact.hashes ?? []).map((h) => b64(h) ?? Buffer.alloc(0)));
  if (log.start.size > 0 && start !== null && !tree.root().equals(start.rootHash)) {
    defect({ code: 'AUD_ROOT_MISMATCH', file: log.start.compactRange, message: `the compact range does not give the start checkpoint's root at size ${log.start.size}` });
  }
  const fromDay = manifest.period.from.slice(0, 10);
  const lastDay = new Date(toMs - 1).toISOString().slice(0, 10);
  /** Envelope entries: by envelope hash, their index, agent and seq, and whether the period needs them. */
  // At most one envelope entry per ENVELOPE_ENTRY_MIN_BYTES of the entries file, whatever the manifest says.
  const entriesBytes = await lstat(path.join(dir, log.entries)).then((st) => st.size, () => 0);
  const entryBySha = new EntryIndex(Math.min(log.end.size - log.start.size, Math.floor(entriesBytes / ENVELOPE_ENTRY_MIN_BYTES)));
  const keyEvents: { index: number; agentId: string; event: string; keyId: string | null; generation: number }[] = [];
  const policyEntries = new Map<number, { index: number; sha256: string }>();
  let index = log.start.size;
  for await (const line of lines(path.join(dir, log.entries))) {
    tree.append(leafHash(line));
    let e: Record<string, unknown> | null = null;
    try {
      const text = line.toString('utf8');
      e = JSON.parse(text) as Record<string, unknown>;
      if (canonical(e) !== text) {
        defect({ code: 'AUD_ENTRY_MALFORMED', file: log.entries, logIndex: index, message: 'the entry is not in canonical form' });
      }
    } catch {
      defect({ code: 'AUD_ENTRY_MALFORMED', file: log.entries, logIndex: index, message: 'the entry is not JSON' });
    }
    if (e?.type === 'envelope') {
      const collectedAt = typeof e.collectedAt === 'string' ? Date.parse(e.collectedAt) : null;
      const keyDay = KEY_DATE_RE.exec(String(e.key))?.[1];
      const needed = collectedAt !== null ? collectedAt >= fromMs && collectedAt < toMs : keyDay !== undefined && keyDay >= fromDay && keyDay <= lastDay;
      entryBySha.set(String(e.sha256), index, String(e.agentId), Number(e.seq), needed);
    } else if (e?.type === 'key_event') {
      keyEvents.push({ index, agentId: String(e.agentId), event: String(e.event), keyId: typeof e.keyId === 'string' ? e.keyId : null, generation: Number(e.generation) });
    } else if (e?.type === 'policy') {
      policyEntries.set(Number(e.version), { index, sha256: String(e.sha256) });
    }
    index++;
    const cp = checkpoints.get(tree.size);
    if (cp !== undefined && !tree.root().equals(cp.root)) {
      defect({ code: 'AUD_ROOT_MISMATCH', file: cp.file, logIndex: tree.size - 1, message: `the entries do not reproduce the root of the checkpoint at size ${tree.size}: an entry was removed, altered or reordered` });
    }
  }
  v.counts.entries = index - log.start.size;
  if (index !== log.end.size) {
    defect({ code: 'AUD_ROOT_MISMATCH', file: log.entries, logIndex: index, message: `the entries end at index ${index}, the range at ${log.end.size}: the range was truncated or extended` });
  }

  // 5, continued: the key events the log holds match the key files.
  defects.in('keys');
  for (const k of keyEvents) {
    const a = agents.get(k.agentId);
    if (a === undefined) {
      defect({ code: 'AUD_KEY', file: log.entries, logIndex: k.index, agentId: k.agentId, message: `the log names a key event of an agent whose keys are not in the bundle` });
      continue;
    }
    if (k.event === 'revoked') continue;
    if (a.keys[k.generation]?.keyId !== k.keyId) {
      defect({ code: 'AUD_KEY', file: log.entries, logIndex: k.index, agentId: k.agentId, message: `the log says key generation ${k.generation} is ${String(k.keyId)}; the bundle's key files say otherwise` });
    }
  }

  // 6. Envelopes: signatures, entries, chains.
  defects.in('envelopes');
  /** Names an envelope that is none (false: nothing more of it can be checked) or whose signature fails. */
  const signed = (f: EnvelopeFact, where: { file: string; agentId: string; seq: number }): boolean => {
    if (f.problem !== null && !f.signatureOk && f.seq === 0) {
      defect({ code: 'AUD_ENVELOPE_MALFORMED', ...where, message: f.problem });
      return false;
    }
    if (!f.signatureOk) defect({ code: 'AUD_ENVELOPE_SIGNATURE', ...where, message: f.problem ?? 'bad signature' });
    return true;
  };
  const mainKeys = new Map<string, KeyObject>();
  /** An agent's newest envelope before the period, which its first of the period links to: signed, and before the period. */
  const priorOf = async (agentId: string): Promise<ChainStart | null> => {
    const file = `evidence/${agentId}/${PRIOR_FILE}`;
    if (!has(file)) return null;
    const a = agents.get(agentId);
    if (a === undefined) {
      defect({ code: 'AUD_KEY', file, agentId, message: 'the envelope before the period is of an agent whose keys are not in the bundle' });
      return null;
    }
    const envelopes = await envelopesOf({ file: path.join(dir, file), agentId, day: '', fromMs, toMs, keys: a.keys }, mainKeys);
    if (envelopes.length !== 1) {
      defect({ code: 'AUD_ENVELOPE_MALFORMED', file, agentId, message: `holds ${envelopes.length} lines, not the one envelope before the period` });
      return null;
    }
    const { fact: f, hash } = envelopes[0]!;
    const where = { file, agentId, seq: f.seq };
    if (!signed(f, where)) return null;
    const t = f.collectedAt === null ? NaN : Date.parse(f.collectedAt);
    if (!(t < fromMs)) defect({ code: 'AUD_OUT_OF_PERIOD', ...where, message: `the envelope before the period was collected at ${String(f.collectedAt)}, not before ${manifest.period.from}` });
    return f.signatureOk ? { seq: f.seq, hash } : null;
  };
  const rows = new Map<string, HostControlRow>();
  let parts: ChainPart[] = [];
  let drops: { seq: number; firstSeq: number; lastSeq: number; count: number; reason: string }[] = [];
  for (let i = 0; i < queue.length; i++) {
    schedule(i);
    const { agentId, file } = queue[i]!;
    const a = agents.get(agentId)!;
    if (i === 0 || queue[i - 1]!.agentId !== agentId) v.counts.agents++;
    const got = await ahead.get(i)!;
    ahead.delete(i);
    aheadBytes -= sizeOf(i);
    const want = listed.get(file);
    if (want !== undefined && (got.sha256 !== want.sha256 || got.size !== want.size)) defects.add({ code: 'AUD_FILE_HASH', file, message: `SHA-256 ${got.sha256} (${got.size} bytes), the manifest says ${want.sha256} (${want.size} bytes)` }, 'files');
    parts.push({ file, facts: got });
    for (let j = 0; j < got.count; j++) {
      v.counts.envelopes++;
      const seq = got.seq[j]!;
      const where = { file, agentId, seq };
      // Most envelopes are plain (see PLAIN): only their entry is left to find. The rest are whole in `odd`.
      const f = got.odd.get(j);
      if (f !== undefined && !signed(f, where)) continue;
      if (!entryBySha.match(got.hash, j * 32, agentId, seq)) {
        defect({ code: 'AUD_ENTRY_MISSING', ...where, message: `no log entry in the range has this envelope (SHA-256 ${hex(got.hash.subarray(j * 32, j * 32 + 32))})` });
      }
      if (f === undefined) continue;
      const t = f.collectedAt === null ? NaN : Date.parse(f.collectedAt);
      if (!(t >= fromMs && t < toMs) || f.collectedAt?.slice(0, 10) !== file.slice(74, 84)) {
        defect({ code: 'AUD_OUT_OF_PERIOD', ...where, message: `collected at ${String(f.collectedAt)}, outside the period or its file's day` });
      }
      if (f.dropped !== null) drops.push({ seq: f.seq, ...f.dropped });
      if (!(f.predicateType === FINDING && f.check !== null) && f.predicateType !== SPOOL_DROP) {
        defect({ code: 'AUD_ENVELOPE_MALFORMED', ...where, message: `an unknown predicate type ${String(f.predicateType)}` });
      }
    }
    for (const part of got.rows) {
      const key = `${agentId}\u0000${part.control}`;
      const r = rows.get(key);
      if (r === undefined) rows.set(key, { agentId, hostname: a.hostname, ...part });
      else mergeRow(r, part);
    }
    if (queue[i + 1]?.agentId !== agentId) {
      checkChain(agentId, parts, drops, await priorOf(agentId), v, defect);
      parts = [];
      drops = [];
    }
  }
  // The envelopes before the period of agents with none in it: still signed, still before it.
  for (const p of present) {
    const id = PRIOR_FILE_RE.exec(p)?.[1];
    if (id !== undefined && !byAgent.has(id)) await priorOf(id);
  }
  // The store keys of the missing, read again from the entries (the index does not keep them).
  const missing = [...entryBySha.unmatched()];
  if (missing.length > 0) {
    const keys = new Map<number, string>(missing.map((e) => [e.index, '']));
    let i = log.start.size;
    for await (const line of lines(path.join(dir, log.entries))) {
      if (keys.has(i)) keys.set(i, String((JSON.parse(line.toString('utf8')) as { key?: unknown }).key));
      i++;
    }
    for (const e of missing) {
      defect({ code: 'AUD_ENVELOPE_MISSING', file: log.entries, logIndex: e.index, agentId: e.agentId, seq: e.seq, message: `the log holds this envelope of the period (${keys.get(e.index)}); the bundle does not` });
    }
  }
  v.hosts = [...rows.values()].sort((x, y) => (x.hostname === y.hostname ? CONTROLS.indexOf(x.control) - CONTROLS.indexOf(y.control) : x.hostname < y.hostname ? -1 : 1));

  // 7. Policy versions the log names, and the OSCAL evidence links.
  defects.in('policy');
  for (const [version, e] of policyEntries) {
    const file = `policy/${version}.json`;
    if (!has(file)) continue;
    if (listed.get(file)?.sha256 !== e.sha256) defect({ code: 'AUD_POLICY', file, logIndex: e.index, message: `policy version ${version} is not the one the log entered` });
  }
  await checkOscalLinks(dir, has, listed, defect);
}

/** Where an agent's chain starts: its newest envelope before the period, by seq and SHA-256. */
interface ChainStart {
  seq: number;
  hash: Uint8Array;
}

/** An agent's envelope files, in the order they were checked. */
interface ChainPart {
  file: string;
  facts: FileFacts;
}

/**
 * One agent's chain over the period, from its newest envelope before the period (`prior`, when the
 * bundle has one) on. Without one, the chain starts at seq 1, and seqs before the first are a gap.
 */
function checkChain(
  agentId: string,
  parts: ChainPart[],
  drops: { seq: number; firstSeq: number; lastSeq: number; count: number; reason: string }[],
  prior: ChainStart | null,
  v: Verdict,
  defect: (d: Defect) => void,
): void {
  // Every readable envelope as (part, line), by seq: most often they already are.
  const links: { part: ChainPart; line: number; seq: number }[] = [];
  for (const part of parts) {
    for (let line = 0; line < part.facts.count; line++) if ((part.facts.flags[line]! & IN_CHAIN) !== 0) links.push({ part, line, seq: part.facts.seq[line]! });
  }
  if (links.some((l, i) => i > 0 && links[i - 1]!.seq > l.seq)) links.sort((x, y) => x.seq - y.seq);
  const commitsTo = (b: (typeof links)[number], hash: Uint8Array, at: number) =>
    (b.part.facts.flags[b.line]! & HAS_PREV) !== 0 && Buffer.compare(b.part.facts.prev.subarray(b.line * 32, b.line * 32 + 32), hash.subarray(at, at + 32)) === 0;
  let a: { seq: number; hash: Uint8Array | null; at: number } = { seq: prior?.seq ?? 0, hash: prior?.hash ?? null, at: 0 };
  for (let i = 0; i < links.length; i++) {
    const b = links[i]!;
    const file = b.part.file;
    if (a.seq >= b.seq) {
      defect({ code: 'AUD_CHAIN_BROKEN', file, agentId, seq: b.seq, message: i === 0 ? `the envelope before the period has seq ${a.seq}, not less than the period's first, ${b.seq}` : `two envelopes with seq ${b.seq}` });
    } else if (b.seq === a.seq + 1) {
      if (a.hash !== null && !commitsTo(b, a.hash, a.at)) {
        defect({ code: 'AUD_CHAIN_BROKEN', file, agentId, seq: b.seq, message: `seq ${b.seq} does not commit to seq ${a.seq}${i === 0 ? ', the envelope before the period' : ''} (its prev is not that envelope's hash)` });
      }
    } else {
      const [fromSeq, toSeq] = [a.seq + 1, b.seq - 1];
      const d = drops.find((x) => x.firstSeq <= fromSeq && x.lastSeq >= toSeq);
      v.gaps.push({ agentId, fromSeq, toSeq, explainedBy: d === undefined ? null : { seq: d.seq, count: d.count, reason: d.reason } });
    }
    a = { seq: b.seq, hash: b.part.facts.hash, at: b.line * 32 };
  }
}

/** Every OSCAL back-matter resource link with a hash must name a bundle file with that SHA-256. */
async function checkOscalLinks(dir: string, has: (p: string) => boolean, listed: Map<string, ManifestFile>, defect: (d: Defect) => void): Promise<void> {
  const file = 'oscal/assessment-results.json';
  if (!has(file)) return;
  const doc = (await readJson<unknown>(path.join(dir, file), file)) as { 'assessment-results'?: { 'back-matter'?: { resources?: { rlinks?: { href?: string; hashes?: { algorithm?: string; value?: string }[] }[] }[] } } };
  for (const r of doc['assessment-results']?.['back-matter']?.resources ?? []) {
    for (const link of r.rlinks ?? []) {
      const hash = link.hashes?.find((h) => h.algorithm === 'SHA-256')?.value?.toLowerCase();
      if (hash === undefined || link.href === undefined) continue;
      const target = path.posix.normalize(path.posix.join('oscal', link.href));
      if (listed.get(target)?.sha256 !== hash || !has(target)) defect({ code: 'AUD_OSCAL_LINK', file, message: `the evidence link ${link.href} does not resolve to a bundle file with SHA-256 ${hash}` });
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Output, and the command line (`node verify/verify.mjs [bundle folder]`)

export function formatVerdict(v: Verdict): string {
  const out: string[] = [];
  if (v.unusable !== null) return `UNUSABLE: ${v.unusable}\n`;
  out.push(`${v.verified ? 'VERIFIED' : 'DEFECTIVE'}: ${v.vendor ?? '?'}, ${v.period?.from ?? '?'} to ${v.period?.to ?? '?'}${v.period?.ended === false ? ' (exported before the period ended)' : ''}`);
  out.push(`collector key ${v.collectorFingerprint ?? '?'}${v.keyPinned ? ' (as you gave it)' : ' (taken from the bundle: compare this fingerprint with the one you obtained out of band)'}`);
  if (v.log !== null) out.push(`log ${v.log.origin}: entries ${v.log.start} to ${v.log.end}, root ${v.log.rootHash}`);
  out.push(`${v.counts.files} files, ${v.counts.entries} log entries, ${v.counts.envelopes} envelopes from ${v.counts.agents} agents`);
  out.push('');
  const table = [['HOST', 'CONTROL', 'RESULTS', 'PASS', 'FAIL', 'UNKNOWN', 'FIRST', 'LAST', 'SIGNATURES']];
  for (const r of v.hosts) table.push([r.hostname, r.control, String(r.results), String(r.pass), String(r.fail), String(r.unknown), r.first ?? '-', r.last ?? '-', r.badSignatures === 0 ? 'ok' : `${r.badSignatures} BAD`]);
  if (v.hosts.length === 0) out.push('no results in the period: no host sent anything');
  else {
    const widths = table[0]!.map((_, i) => Math.max(...table.map((r) => r[i]!.length)));
    for (const r of table) out.push(r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd());
  }
  for (const g of v.gaps) {
    out.push(`gap: agent ${g.agentId.slice(0, 16)}… seq ${g.fromSeq}–${g.toSeq}: ${g.explainedBy === null ? 'unexplained' : `spool-drop record at seq ${g.explainedBy.seq} (${g.explainedBy.count} dropped, ${g.explainedBy.reason})`}`);
  }
  if (v.defects.length > 0) out.push('');
  for (const d of v.defects) {
    const where = [d.file, d.logIndex === undefined ? undefined : `log index ${d.logIndex}`, d.agentId === undefined ? undefined : `agent ${d.agentId}`, d.seq === undefined ? undefined : `seq ${d.seq}`].filter((x) => x !== undefined);
    out.push(`${d.code}: ${d.message}${where.length > 0 ? ` [${where.join(', ')}]` : ''}`);
  }
  return `${out.join('\n')}\n`;
}

/** `node verify.mjs [--format json] [--collector-key FILE | --collector-fingerprint HEX] [--after-checkpoint FILE] [DIR]` */
export async function main(argv: readonly string[]): Promise<number> {
  const opts: VerifyOptions = {};
  let format = 'table';
  let dir: string | null = null;
  try {
    for (let i = 0; i < argv.length; i++) {
      const a = argv[i]!;
      const value = () => {
        const next = argv[++i];
        if (next === undefined) throw new Unusable(`${a} needs a value`);
        return next;
      };
      if (a === '--format') format = value();
      else if (a === '--collector-key') opts.collectorKeyPem = await readFile(value(), 'utf8');
      else if (a === '--collector-fingerprint') opts.collectorFingerprint = value();
      else if (a === '--after-checkpoint') opts.afterCheckpoint = await readFile(value(), 'utf8');
      else if (a.startsWith('-')) throw new Unusable(`unknown option ${a}`);
      else dir = a;
    }
    if (format !== 'table' && format !== 'json') throw new Unusable('--format is table or json');
  } catch (err) {
    process.stderr.write(`AUD_USAGE: ${(err as Error).message}\n`);
    return 2;
  }
  // Run from inside the bundle (verify/verify.mjs), the bundle is the folder above this file.
  const here = path.dirname(fileURLToPath(import.meta.url));
  const v = await verifyBundleDir(dir ?? path.dirname(here), opts);
  process.stdout.write(format === 'json' ? `${JSON.stringify(v, null, 2)}\n` : formatVerdict(v));
  return v.exitCode;
}

if (isMainThread && process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then((code) => (process.exitCode = code));
}
