// One vendor's transparency log: an RFC 6962 tree over its entries, written create-only under
// log/vendor=<vendor>/. Appends are group-committed to a write-ahead file per round (wal/<first
// index>.jsonl), one round at a time, so indices are contiguous and never reused; an append is
// answered only once its round is durable. Tiles (C2SP tlog-tiles) and signed checkpoints (C2SP
// tlog-checkpoint) are written from the tree when a checkpoint is issued.
import type { KeyObject } from 'node:crypto';
import { CollectorError } from '../errors.js';
import { readInOrder, type EvidenceStore } from '../store.js';
import { decodeEntry, encodeEntry, type LogEntry } from './entries.js';
import { MerkleTree, leafHash } from './merkle.js';
import { formatCheckpoint, parseCheckpoint, signNote } from './note.js';
import { TILE_WIDTH, decodeEntryBundle, encodeEntryBundle, entryBundleViews, entriesPath, tileBytes, tilePath, tilesToWrite } from './tiles.js';

const NL = Buffer.from('\n');
const WAL_RE = /^(\d{12})\.jsonl$/;
const CHECKPOINT_RE = /^(\d{12})$/;

export function logPrefix(vendor: string): string {
  return `log/vendor=${vendor}/`;
}

const pad = (n: number) => String(n).padStart(12, '0');

export interface StoredCheckpoint {
  size: number;
  issuedAt: string;
  /** The signed note, as stored and served. */
  note: string;
}

interface Waiter {
  lines: Buffer[];
  done: (first: number) => void;
  fail: (err: unknown) => void;
}

export interface VendorLogOptions {
  vendor: string;
  origin: string;
  store: EvidenceStore;
  key: KeyObject;
  onAppendError?: (err: unknown) => void;
}

export class VendorLog {
  readonly vendor: string;
  readonly origin: string;
  readonly #store: EvidenceStore;
  readonly #key: KeyObject;
  readonly #onAppendError: (err: unknown) => void;
  readonly #tree = new MerkleTree();
  /** Entries from #tailStart on: what the next entry bundles need (the last tile, and newer). */
  #tail: Buffer[] = [];
  #tailStart = 0;
  /** The size the stored tiles cover. */
  #tiledSize = 0;
  #queue: Waiter[] = [];
  #writing = false;
  /** A round whose write failed: written again, byte for byte, before anything else. */
  #stuck: { first: number; body: Buffer; lines: Buffer[] } | null = null;
  /** Why this log takes no appends and issues no checkpoints (a conflict, rounds out of order). */
  broken: string | null = null;
  /** Why no checkpoint is issued over this log (stored tiles or bundles disagree with the entries). */
  damaged: string | null = null;
  readonly checkpoints: StoredCheckpoint[] = [];

  constructor(opts: VendorLogOptions) {
    this.vendor = opts.vendor;
    this.origin = opts.origin;
    this.#store = opts.store;
    this.#key = opts.key;
    this.#onAppendError = opts.onAppendError ?? (() => undefined);
  }

  get size(): number {
    return this.#tree.size;
  }

  get tree(): MerkleTree {
    return this.#tree;
  }

  get latest(): StoredCheckpoint | undefined {
    return this.checkpoints.at(-1);
  }

  /**
   * Reads the log back: the checkpoints, then every write-ahead round in order. With `onEntry`,
   * each entry is decoded (and checked) for it; without, the entries are only hashed, as the
   * command-line readers need them (the bundle verifier checks what an export writes).
   */
  async load(onEntry?: (entry: LogEntry, index: number) => void): Promise<void> {
    const prefix = logPrefix(this.vendor);
    this.checkpoints.push(...(await readCheckpoints(this.#store, this.vendor)));
    // Tiles exist up to the latest checkpoint, so entries below its last tile need not be kept.
    this.#tiledSize = this.latest?.size ?? 0;
    for await (const key of this.#store.list(`${prefix}wal/`)) {
      const m = WAL_RE.exec(key.slice(`${prefix}wal/`.length));
      if (m?.[1] === undefined) continue;
      if (Number(m[1]) !== this.size) {
        this.broken = `the log's write-ahead rounds are not contiguous: ${key} where entry ${this.size} was due`;
        return;
      }
      const body = await this.#store.get(key);
      if (body === null) throw new CollectorError('COL_ERR_STORE_UNAVAILABLE', `${key} vanished while it was read`);
      for (const line of splitLines(body)) {
        onEntry?.(decodeEntry(line), this.size);
        this.#add(line);
      }
      this.#trimTail();
    }
    for (const c of this.checkpoints) {
      const body = parseCheckpoint(noteText(c.note));
      if (body.size > this.size || !this.#tree.root(body.size).equals(body.rootHash)) {
        this.broken = `the checkpoint at size ${body.size} does not match the log's entries`;
      }
    }
  }

  /**
   * Entries of full tiles already in their bundles are not kept: only the last, partial tile's.
   * Never past the entries there are: while a load has not yet read up to that tile, what it has
   * read goes, and the tail starts at the next entry to come.
   */
  #trimTail(): void {
    const keepFrom = Math.min(Math.floor(this.#tiledSize / TILE_WIDTH) * TILE_WIDTH, this.size);
    if (keepFrom > this.#tailStart) {
      this.#tail = this.#tail.slice(keepFrom - this.#tailStart);
      this.#tailStart = keepFrom;
    }
  }

  #add(line: Buffer): void {
    this.#tree.append(leafHash(line));
    this.#tail.push(line);
  }

  /** Appends entries; resolves with the first one's index once they are durable. */
  append(entries: readonly LogEntry[]): Promise<number> {
    if (this.broken !== null) return Promise.reject(new CollectorError('COL_ERR_STORE_UNAVAILABLE', `the ${this.vendor} log takes no entries: ${this.broken}`));
    if (this.#stuck !== null) return Promise.reject(new CollectorError('COL_ERR_STORE_UNAVAILABLE', `the ${this.vendor} log is waiting for the store`));
    const lines = entries.map(encodeEntry);
    return new Promise((done, fail) => {
      this.#queue.push({ lines, done, fail });
      if (!this.#writing) void this.#drain();
    });
  }

  async #drain(): Promise<void> {
    this.#writing = true;
    try {
      while (this.#queue.length > 0) {
        const round = this.#queue.splice(0);
        const lines = round.flatMap((w) => w.lines);
        const first = this.size;
        const body = Buffer.concat(lines.flatMap((l) => [l, NL]));
        try {
          await this.#writeRound(first, body);
        } catch (err) {
          this.#onAppendError(err);
          this.#stuck = { first, body, lines };
          for (const w of [...round, ...this.#queue.splice(0)]) w.fail(err);
          this.#retryLater();
          return;
        }
        for (const l of lines) this.#add(l);
        let next = first;
        for (const w of round) {
          w.done(next);
          next += w.lines.length;
        }
      }
    } finally {
      this.#writing = false;
    }
  }

  /** Writes a round create-only; the same bytes found there already (a retry) are success. */
  async #writeRound(first: number, body: Buffer): Promise<void> {
    const key = `${logPrefix(this.vendor)}wal/${pad(first)}.jsonl`;
    if ((await this.#store.putIfAbsent(key, body)) === 'created') return;
    const there = await this.#store.get(key);
    if (there !== null && there.equals(body)) return;
    this.broken = `${key} holds other entries: another collector writes this vendor's log`;
    throw new CollectorError('COL_ERR_STORE_UNAVAILABLE', this.broken);
  }

  #retryLater(): void {
    const timer = setTimeout(() => {
      const stuck = this.#stuck;
      if (stuck === null || this.broken !== null) return;
      this.#writeRound(stuck.first, stuck.body).then(
        () => {
          for (const l of stuck.lines) this.#add(l);
          this.#stuck = null;
        },
        (err: unknown) => {
          this.#onAppendError(err);
          this.#retryLater();
        },
      );
    }, 1000);
    timer.unref();
  }

  /**
   * Writes the tiles for the current size and a signed checkpoint over it, unless the latest
   * checkpoint already covers it. Tiles first: a checkpoint is only ever stored over tiles that
   * exist. Returns the checkpoint in force.
   */
  async issueCheckpoint(now: Date, extensions: readonly string[] = []): Promise<StoredCheckpoint> {
    const why = this.broken ?? this.damaged;
    if (why !== null) throw new CollectorError('COL_ERR_STORE_UNAVAILABLE', `no checkpoint for ${this.vendor}: ${why}`);
    const size = this.size;
    const latest = this.latest;
    if (latest !== undefined && latest.size >= size) return latest;
    await this.#writeTiles(size);
    const issuedAt = now.toISOString();
    const text = formatCheckpoint({ origin: this.origin, size, rootHash: this.#tree.root(size), extensions: [`issued ${issuedAt}`, ...extensions] });
    const note = signNote(text, this.origin, this.#key);
    const key = `${logPrefix(this.vendor)}checkpoint/${pad(size)}`;
    // 'exists': written before a restart cut this short; what is stored stands.
    const stored = (await this.#store.putIfAbsent(key, Buffer.from(note, 'utf8'))) === 'exists' ? (await this.#store.get(key))?.toString('utf8') : note;
    const c = storedCheckpoint(stored ?? note);
    this.checkpoints.push(c);
    return c;
  }

  async #writeTiles(size: number): Promise<void> {
    const prefix = logPrefix(this.vendor);
    const { tiles, entries } = tilesToWrite(this.#tiledSize, size);
    for (const t of tiles) await this.#store.putIfAbsent(`${prefix}${tilePath(t)}`, tileBytes(this.#tree, t));
    for (const e of entries) {
      const start = e.index * TILE_WIDTH;
      const slice = this.#tail.slice(start - this.#tailStart, start - this.#tailStart + e.width);
      await this.#store.putIfAbsent(`${prefix}${entriesPath(e.index, e.width)}`, encodeEntryBundle(slice));
    }
    this.#tiledSize = size;
    this.#trimTail();
  }

  /**
   * Reads back every tile and entry bundle the latest checkpoint stands on and compares them with
   * the entries: a byte changed on disk (or in the bucket) shows here. Nothing is rewritten; the
   * log stops issuing checkpoints until an operator has looked. Returns the problem, or null.
   */
  async selfCheck(): Promise<string | null> {
    const prefix = logPrefix(this.vendor);
    const size = this.#tiledSize;
    const { tiles, entries } = tilesToWrite(0, size);
    for (const t of tiles) {
      const stored = await this.#store.get(`${prefix}${tilePath(t)}`);
      if (stored === null || !stored.equals(tileBytes(this.#tree, t))) return (this.damaged = `${prefix}${tilePath(t)} ${stored === null ? 'is missing' : 'disagrees with the entries'}`);
    }
    for (const e of entries) {
      const key = `${prefix}${entriesPath(e.index, e.width)}`;
      const stored = await this.#store.get(key);
      let ok = stored !== null;
      if (stored !== null) {
        try {
          const got = decodeEntryBundle(stored);
          ok = got.length === e.width && got.every((entry, i) => leafHash(entry).equals(this.#tree.hashAt(0, e.index * TILE_WIDTH + i)));
        } catch {
          ok = false;
        }
      }
      if (!ok) return (this.damaged = `${key} ${stored === null ? 'is missing' : 'disagrees with the entries'}`);
    }
    return null;
  }

  /** The checkpoint to show for a size or a time: the newest at or below it. */
  checkpointFor(q: { size?: number; at?: Date }): StoredCheckpoint | undefined {
    let found: StoredCheckpoint | undefined;
    for (const c of this.checkpoints) {
      if (q.size !== undefined && c.size > q.size) break;
      if (q.at !== undefined && Date.parse(c.issuedAt) > q.at.getTime()) break;
      found = c;
    }
    return found;
  }
}

/** The text a signed note signs: everything before its last blank line (C2SP signed-note). */
function noteText(note: string): string {
  return note.slice(0, note.lastIndexOf('\n\n') + 1);
}

function storedCheckpoint(note: string): StoredCheckpoint {
  const body = parseCheckpoint(noteText(note));
  const issued = body.extensions.find((e) => e.startsWith('issued '));
  return { size: body.size, issuedAt: issued === undefined ? '' : issued.slice('issued '.length), note };
}

function splitLines(body: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let start = 0;
  while (start < body.length) {
    const end = body.indexOf(0x0a, start);
    if (end === -1) throw new CollectorError('COL_ERR_MALFORMED', 'a write-ahead round ends without a newline');
    out.push(body.subarray(start, end));
    start = end + 1;
  }
  return out;
}

/** Entry bundles read per request (getMany), when the store reads many at once. */
const BUNDLES_AT_ONCE = 16;

/**
 * The entries [from, to) of a vendor's log, exactly as hashed, read from its entry bundles (256 to
 * a bundle): `to` must be a size a checkpoint was issued at, so that its bundles are stored. They
 * come a bundle at a time, as newline-ended lines in one buffer (the form the audit bundle's
 * log/entries.jsonl holds them in): `text` is the lines, `lines` a view of each without its newline.
 */
export async function* readEntryLines(store: EvidenceStore, vendor: string, from: number, to: number): AsyncGenerator<{ text: Buffer; lines: Buffer[] }> {
  const prefix = logPrefix(vendor);
  async function* bundles(): AsyncGenerator<{ key: string; width: number; skip: number }> {
    for (let bundle = Math.floor(from / TILE_WIDTH); bundle * TILE_WIDTH < to; bundle++) {
      const width = Math.min(TILE_WIDTH, to - bundle * TILE_WIDTH);
      yield { key: `${prefix}${entriesPath(bundle, width)}`, width, skip: Math.max(0, from - bundle * TILE_WIDTH) };
    }
  }
  for await (const [{ key, width, skip }, bytes] of readInOrder(store, bundles(), (b) => b.key, BUNDLES_AT_ONCE)) {
    if (bytes === null) throw new CollectorError('COL_ERR_STORE_UNAVAILABLE', `${key} is missing: the store does not hold the log's entries up to ${to}`);
    const entries = entryBundleViews(bytes, width).slice(skip);
    const text = Buffer.allocUnsafe(entries.reduce((n, e) => n + e.length + 1, 0));
    const lines: Buffer[] = [];
    let at = 0;
    for (const e of entries) {
      text.set(e, at);
      lines.push(text.subarray(at, at + e.length));
      at += e.length;
      text[at++] = 0x0a;
    }
    yield { text, lines };
  }
}

/** A vendor's stored checkpoints, by size. */
export async function readCheckpoints(store: EvidenceStore, vendor: string): Promise<StoredCheckpoint[]> {
  const prefix = `${logPrefix(vendor)}checkpoint/`;
  const out: StoredCheckpoint[] = [];
  for await (const key of store.list(prefix)) {
    if (!CHECKPOINT_RE.test(key.slice(prefix.length))) continue;
    const raw = await store.get(key);
    if (raw !== null) out.push(storedCheckpoint(raw.toString('utf8')));
  }
  return out.sort((a, b) => a.size - b.size);
}

/** How many entries a vendor's log holds, from its last write-ahead round alone (0 for none). */
export async function storedLogSize(store: EvidenceStore, vendor: string): Promise<number> {
  const prefix = `${logPrefix(vendor)}wal/`;
  let last: { key: string; first: number } | null = null;
  for await (const key of store.list(prefix)) {
    const m = WAL_RE.exec(key.slice(prefix.length));
    if (m?.[1] !== undefined) last = { key, first: Number(m[1]) };
  }
  if (last === null) return 0;
  const body = await store.get(last.key);
  return body === null ? last.first : last.first + splitLines(body).length;
}
