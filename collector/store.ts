// The evidence store contract and its filesystem implementation (the embedded default).
// Keys follow the storage layout in collector/README.md ("Where the evidence is"). Writes are create-only and durable on return.
// A collector's store (open() with the journal) makes evidence durable by group commit in a
// write-ahead journal (collector/journal.ts), makes the files in the background and answers for
// them from memory meanwhile; everything else is written and flushed per file.
import { readFile as readFileCb, statSync } from 'node:fs';
import { link, mkdir, readdir, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { CollectorError } from './errors.js';
import { IoThread, failureError } from './io-thread.js';
import { ReadThread } from './read-thread.js';
import { fsyncDir, tempPath, writeFlushed } from './fs-util.js';
import { Journal, acquireJournal, type Appended, releaseJournal, replayJournal, type ReplayReport } from './journal.js';

export type PutResult = 'created' | 'exists';

/** One startup check of a store's settings (exported as a metric; a failed required one refuses ingest). */
export interface PreflightCheck {
  /** Stable name, usable as a metric label: bucket_reachable, versioning, object_lock, default_retention. */
  name: string;
  /** True when the check passed or is not required by the configuration. */
  ok: boolean;
  required: boolean;
  detail: string;
}

export interface StorePreflight {
  ok: boolean;
  checks: PreflightCheck[];
  /** The failed required checks, by name. */
  problems: { check: string; message: string }[];
}

export interface EvidenceStore {
  /** Writes `bytes` under `key` unless the key exists. Returns only once the write is durable. */
  putIfAbsent(key: string, bytes: Buffer): Promise<PutResult>;
  /** The stored bytes, or null when there is no such key. */
  get(key: string): Promise<Buffer | null>;
  /**
   * Many keys' bytes at once, in order, null where a key is absent: what the audit export reads a
   * period's evidence with. The filesystem store reads them on a thread of its own
   * (collector/read-thread.ts); without it, callers fall back to `get`.
   */
  getMany?(keys: readonly string[]): Promise<(Buffer | null)[]>;
  /** Every key under `prefix` (a folder-like prefix ending in "/"), in lexical order. */
  list(prefix: string): AsyncIterable<string>;
  /** Throws when the store cannot take writes (drives /readyz). */
  ping(): Promise<void>;
  /** Checks the store's settings at startup (S3: versioning and Object Lock); absent means nothing to check. */
  preflight?(): Promise<StorePreflight>;
  /** Finishes background work (the filesystem journal's checkpoint) before the process exits. */
  close?(): Promise<void>;
  /** Acknowledged evidence whose own file is not made yet (durable in the journal meanwhile). */
  pendingFiles?(): number;
  readonly description: string;
}

/** Reads in flight at once without getMany (an S3 store's gets), and batches read ahead with it. */
const GETS_AT_ONCE = 64;
const READS_IN_FLIGHT = 4;

/**
 * Each item with the bytes of its key (null where absent), in the items' order: read `batch` keys
 * at a time through the store's getMany (one request each, on the filesystem store's read
 * thread) or, without it, by up to GETS_AT_ONCE gets at once, with READS_IN_FLIGHT batches read
 * ahead of the one handed out.
 */
export async function* readInOrder<T>(store: EvidenceStore, items: AsyncIterable<T>, keyOf: (item: T) => string, batch: number): AsyncGenerator<[T, Buffer | null]> {
  const size = store.getMany === undefined ? Math.min(batch, GETS_AT_ONCE) : batch;
  const fetch = (items: T[]) => (store.getMany !== undefined ? store.getMany(items.map(keyOf)) : Promise.all(items.map((item) => store.get(keyOf(item)))));
  const it = items[Symbol.asyncIterator]();
  const nextBatch = async (): Promise<{ batch: T[]; read: Promise<(Buffer | null)[]> } | null> => {
    const taken: T[] = [];
    while (taken.length < size) {
      const n = await it.next();
      if (n.done === true) break;
      taken.push(n.value);
    }
    if (taken.length === 0) return null;
    const read = fetch(taken);
    // Awaited in turn below; a failure ahead of its turn is not an unhandled rejection.
    read.catch(() => undefined);
    return { batch: taken, read };
  };
  try {
    const queue: NonNullable<Awaited<ReturnType<typeof nextBatch>>>[] = [];
    let ended = false;
    for (;;) {
      while (!ended && queue.length < READS_IN_FLIGHT) {
        const b = await nextBatch();
        if (b === null) ended = true;
        else queue.push(b);
      }
      const current = queue.shift();
      if (current === undefined) return;
      const files = await current.read;
      for (let i = 0; i < current.batch.length; i++) yield [current.batch[i]!, files[i]!];
    }
  } finally {
    await it.return?.();
  }
}

const KEY_RE = /^[A-Za-z0-9=._-]+(\/[A-Za-z0-9=._-]+)*$/;
/**
 * Puts a written temporary file under its final name and removes the temporary name. link()
 * fails with EEXIST when the name is taken: create-only, with no window in which a reader could
 * see part of a file. False when the name was taken.
 */
async function linkInPlace(tmp: string, final: string): Promise<boolean> {
  try {
    await link(tmp, final);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return false;
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
}

/**
 * A whole file, by fs.readFile's callback form: for the small files evidence is, it costs the
 * event loop about half what fs/promises' readFile does (no FileHandle to make and close), which
 * is what bounds many reads in flight at once.
 */
const readWhole: (file: string) => Promise<Buffer> = promisify(readFileCb);

/** The filesystem store's journal folder, at the root: never a key. */
const JOURNAL_DIR = '.journal';

export function assertKey(key: string): void {
  const parts = key.split('/');
  if (!KEY_RE.test(key) || parts[0] === JOURNAL_DIR || parts.some((part) => part === '.' || part === '..' || part.startsWith('.tmp-'))) {
    throw new CollectorError('COL_ERR_INTERNAL', `invalid store key: ${JSON.stringify(key)}`);
  }
}

/**
 * A file system failure as COL_ERR_STORE_UNAVAILABLE. An agent's answer names at most the errno
 * code; `opening` (the store's root, when it is opened at startup or by the CLI, where an operator
 * reads the message) adds the system's own message, which names the path that failed.
 */
function storeError(err: unknown, opening?: string): CollectorError {
  if (err instanceof CollectorError) return err; // e.g. an invalid key: internal, not an outage
  if (opening !== undefined) {
    return new CollectorError('COL_ERR_STORE_UNAVAILABLE', `cannot open the evidence store at ${opening}: ${(err as Error).message}`, { cause: err });
  }
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC' || code === 'EDQUOT' || code === 'EROFS' || code === 'EIO' || code === 'EACCES') {
    return new CollectorError('COL_ERR_STORE_UNAVAILABLE', `evidence store write failed (${code})`, { cause: err });
  }
  return new CollectorError('COL_ERR_STORE_UNAVAILABLE', 'evidence store write failed', { cause: err });
}

/**
 * Group commit for folder entries: writers that linked a file while a folder fsync was running
 * share the next one, so a batch of envelopes costs one folder fsync, not one each. A waiter is
 * released only by an fsync that started after its link, so no entry is acknowledged undurable.
 */
class DirSyncer {
  readonly #dirs = new Map<string, { running: Promise<void>; next: Promise<void> | null }>();

  sync(dir: string): Promise<void> {
    const d = this.#dirs.get(dir);
    if (d === undefined) return this.#start(dir);
    d.next ??= d.running.catch(() => undefined).then(() => {
      d.next = null;
      return this.#start(dir);
    });
    return d.next;
  }

  #start(dir: string): Promise<void> {
    const running = fsyncDir(dir).finally(() => {
      const cur = this.#dirs.get(dir);
      if (cur?.running === running && cur.next === null) this.#dirs.delete(dir);
    });
    const entry = this.#dirs.get(dir);
    if (entry === undefined) this.#dirs.set(dir, { running, next: null });
    else entry.running = running;
    return running;
  }
}

/** An evidence put through the journal: visible once durable, until its file exists. */
interface Pending {
  bytes: Buffer;
  visible: boolean;
  durable: Promise<PutResult>;
  /** Settles when the file is made (or left to the next start's replay, on close). */
  settled: Promise<unknown>;
  made?: Promise<void>;
}

/** Memory for durable entries whose files are not made yet; past it, puts wait. */
const MAX_PENDING_BYTES = 64 * 1024 * 1024;

export interface FsStoreOptions {
  /** Group commit through the write-ahead journal once open() takes it (the collector's store). */
  journal?: boolean;
  /** A journal segment is closed at this size (default 16 MiB) or age (default 5 s)... */
  segmentBytes?: number;
  segmentMs?: number;
  /** ...and checkpointed (its files flushed) and deleted this long after (default 35 s). */
  settleMs?: number;
  /** The wait (ms) before the next try at a file that failed `attempt` times (default: 10 ms doubling to 1 s). */
  retryDelayMs?: (attempt: number) => number;
}

/**
 * What happens to a journaled file the disk refuses: `failing` once, when it first cannot be made
 * (it is durable in the journal and retried until it can be), and `made` once, when it finally is.
 */
export type MaterialiseEvent = { key: string; state: 'failing'; err: unknown } | { key: string; state: 'made'; attempts: number };

const defaultRetryDelayMs = (attempt: number) => Math.min(1000, 10 * 2 ** (attempt - 1));

export interface FsStoreOpenReport {
  /** active: this store owns the journal; held: a live process does, so this one writes per file. */
  journal: 'active' | 'held' | 'off';
  /** What replaying a journal left by a stopped process did; null when another process owns it. */
  replay: ReplayReport | null;
}

export class FsEvidenceStore implements EvidenceStore {
  readonly root: string;
  readonly description: string;
  readonly #opts: FsStoreOptions;
  readonly #journalDir: string;
  #journal: Journal | null = null;
  #closing = false;
  /** Evidence puts under way and files not yet made, by key: create-only, and get/list see them. */
  readonly #pending = new Map<string, Pending>();
  #pendingBytes = 0;
  #drainWaiters: (() => void)[] = [];
  /** Journal appends and the files of durable records, on a thread of its own. */
  readonly #io = new IoThread();
  readonly #reader = new ReadThread();
  readonly #dirSync = new DirSyncer();
  /** Folders known to exist durably: most writes land in today's folder of a known agent. */
  readonly #knownDirs = new Set<string>();
  /** Folders being created, so that concurrent writers all wait until the folder is durable. */
  readonly #creating = new Map<string, Promise<void>>();

  constructor(root: string, opts: FsStoreOptions = {}) {
    this.root = path.resolve(root);
    this.description = `filesystem:${this.root}`;
    this.#opts = opts;
    this.#journalDir = path.join(this.root, JOURNAL_DIR);
  }

  /**
   * Replays a journal left by a process that stopped (unless a live one owns it) and, with the
   * journal option, takes it. Without open(), or while another process owns the journal, every
   * write is flushed per file: that is how the CLI writes beside a running collector.
   */
  async open(): Promise<FsStoreOpenReport> {
    let acquired = false;
    try {
      await this.ping();
      acquired = await acquireJournal(this.#journalDir);
      if (!acquired) return { journal: 'held', replay: null };
      const replay = await replayJournal(this.#journalDir, (key) => this.#path(key));
      if (this.#opts.journal !== true) {
        await releaseJournal(this.#journalDir);
        return { journal: 'off', replay };
      }
      this.#journal = new Journal(this.#journalDir, replay.nextSegment, {
        segmentBytes: this.#opts.segmentBytes ?? 16 * 1024 * 1024,
        segmentMs: this.#opts.segmentMs ?? 5000,
        settleMs: this.#opts.settleMs ?? 35_000,
        append: (fd, bytes, position) => this.#io.append(fd, bytes, position),
        flush: (files, dirs) => this.#io.flush(files, dirs),
      });
      return { journal: 'active', replay };
    } catch (err) {
      if (acquired) await releaseJournal(this.#journalDir).catch(() => undefined);
      throw storeError(err, this.root);
    }
  }

  pendingFiles(): number {
    return this.#pending.size;
  }

  /** Checkpoints the journal and gives it up; the store writes per file afterwards. */
  async close(): Promise<void> {
    await this.#reader.close();
    const journal = this.#journal;
    if (journal === null) return;
    this.#journal = null;
    this.#closing = true;
    await Promise.allSettled([...this.#pending.values()].map((p) => p.settled));
    await journal.close();
    await this.#io.close();
    await releaseJournal(this.#journalDir);
  }

  #path(key: string): string {
    assertKey(key);
    return path.join(this.root, ...key.split('/'));
  }

  putIfAbsent(key: string, bytes: Buffer): Promise<PutResult> {
    const journal = this.#journal;
    // Evidence and the transparency log's rounds, tiles and checkpoints go through the journal.
    if (journal === null || !(key.startsWith('evidence/') || key.startsWith('log/'))) return this.#putDirect(key, bytes);
    const prior = this.#pending.get(key);
    // The key is under way: once that put is durable the key exists; if it failed, try again.
    if (prior !== undefined) return prior.durable.then(() => 'exists', () => this.putIfAbsent(key, bytes));
    const entry: Pending = { bytes, visible: false, durable: null!, settled: null! };
    entry.durable = this.#putJournaled(journal, key, entry);
    entry.settled = entry.durable.then(() => entry.made, () => undefined);
    this.#pending.set(key, entry);
    entry.durable.catch(() => this.#forget(key, entry));
    return entry.durable.then((r) => {
      if (r === 'exists') this.#forget(key, entry);
      return r;
    });
  }

  #forget(key: string, entry: Pending): void {
    if (this.#pending.get(key) !== entry) return;
    this.#pending.delete(key);
    if (entry.visible) this.#pendingBytes -= entry.bytes.length;
    if (this.#pendingBytes <= MAX_PENDING_BYTES) for (const wake of this.#drainWaiters.splice(0)) wake();
  }

  /**
   * Flushed in the journal with whatever else is waiting, and acknowledged: the file is made in
   * the background, and get/list answer from memory until then.
   */
  async #putJournaled(journal: Journal, key: string, entry: Pending): Promise<PutResult> {
    const final = this.#path(key);
    const dir = path.dirname(final);
    try {
      // Synchronous: a lookup in today's folder, which the kernel has cached, costs a few µs,
      // less than queueing it on libuv's pool behind the signature checks.
      if (statSync(final, { throwIfNoEntry: false }) !== undefined) return 'exists';
      // Bounded memory: files that cannot be made as fast as evidence arrives slow the puts down.
      while (this.#pendingBytes > MAX_PENDING_BYTES) await new Promise<void>((resolve) => this.#drainWaiters.push(resolve));
      await this.#ensureDir(dir);
    } catch (err) {
      throw this.#failed(err, dir);
    }
    const appended = await journal.append(key, entry.bytes).catch((err: unknown) => Promise.reject(this.#failed(err, dir)));
    entry.visible = true;
    this.#pendingBytes += entry.bytes.length;
    entry.made = this.#materialise(key, final, entry, appended);
    return 'created';
  }

  /**
   * Creates the file of a durable record, without a flush (collector/io-thread.ts). While the
   * disk refuses it is retried, for as long as it takes (the entry stays readable from memory
   * meanwhile), until the store closes: then the journal segment is kept, and the next start's
   * replay makes the file.
   */
  async #materialise(key: string, final: string, entry: Pending, appended: Appended): Promise<void> {
    const dir = path.dirname(final);
    const retryDelayMs = this.#opts.retryDelayMs ?? defaultRetryDelayMs;
    try {
      let attempt = 1;
      for (; ; attempt++) {
        try {
          // The folder may have gone since the put (removed by hand): made again, durably.
          if (attempt > 1) await this.#ensureDir(dir);
          const made = await this.#io.make(final, entry.bytes);
          if (typeof made === 'object') throw failureError(made);
          // Not created: another process made it since; create-only held, nothing is owed.
          appended.release(made === 'made' ? final : null);
          break;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') this.#knownDirs.delete(dir);
          if (this.#closing) {
            appended.release(null, true); // its segment stays, and the next start replays it
            return;
          }
          if (attempt === 1) this.#tell({ key, state: 'failing', err });
          await new Promise((r) => setTimeout(r, retryDelayMs(attempt)));
        }
      }
      if (attempt > 1) this.#tell({ key, state: 'made', attempts: attempt });
    } finally {
      this.#forget(key, entry);
    }
  }

  /** A listener that throws must not stop a file from being made (or its segment from settling). */
  #tell(event: MaterialiseEvent): void {
    try {
      this.onMaterialise(event);
    } catch {
      // nothing to do: the file is retried, or made, either way
    }
  }

  /**
   * Told when a journaled file first cannot be made, and when it is made after all: once each
   * per file, however many tries it takes in between. The collector logs both.
   */
  onMaterialise: (event: MaterialiseEvent) => void = () => undefined;

  #failed(err: unknown, dir: string): CollectorError {
    // The folder went away underneath us (removed by hand): forget it, so the next write recreates it.
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') this.#knownDirs.delete(dir);
    return storeError(err);
  }

  async #putDirect(key: string, bytes: Buffer): Promise<PutResult> {
    const final = this.#path(key);
    const dir = path.dirname(final);
    const tmp = tempPath(dir);
    try {
      await this.#ensureDir(dir);
      await writeFlushed(tmp, bytes);
      const created = await linkInPlace(tmp, final);
      await this.#dirSync.sync(dir);
      return created ? 'created' : 'exists';
    } catch (err) {
      await unlink(tmp).catch(() => undefined);
      throw this.#failed(err, dir);
    }
  }

  /** Creates `dir` and makes every new folder entry durable, once, however many writers ask. */
  async #ensureDir(dir: string): Promise<void> {
    if (this.#knownDirs.has(dir)) return;
    let pending = this.#creating.get(dir);
    if (pending === undefined) {
      pending = (async () => {
        const firstCreated = await mkdir(dir, { recursive: true });
        if (firstCreated !== undefined) {
          // New folders must reach the disk too: fsync each parent up to the first one that existed.
          const top = path.dirname(firstCreated);
          for (let d = path.dirname(dir); ; d = path.dirname(d)) {
            await fsyncDir(d);
            if (d === top || d === path.dirname(d)) break;
          }
        }
        this.#knownDirs.add(dir);
      })().finally(() => this.#creating.delete(dir));
      this.#creating.set(dir, pending);
    }
    await pending;
  }

  async get(key: string): Promise<Buffer | null> {
    const pending = this.#pending.get(key);
    if (pending?.visible === true) return pending.bytes;
    try {
      return await readWhole(this.#path(key));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // ENOTDIR: a parent of the key is a file, so the key cannot exist.
      if (code === 'ENOENT' || code === 'ENOTDIR') return null;
      throw storeError(err);
    }
  }

  async getMany(keys: readonly string[]): Promise<(Buffer | null)[]> {
    const files: (Buffer | null)[] = new Array<Buffer | null>(keys.length).fill(null);
    const paths: string[] = [];
    const at: number[] = [];
    keys.forEach((key, i) => {
      const pending = this.#pending.get(key);
      if (pending?.visible === true) files[i] = pending.bytes;
      else {
        paths.push(this.#path(key));
        at.push(i);
      }
    });
    let read: (Buffer | null)[];
    try {
      read = await this.#reader.read(paths);
    } catch (err) {
      throw storeError(err);
    }
    read.forEach((bytes, j) => (files[at[j]!] = bytes));
    return files;
  }

  async *list(prefix: string): AsyncIterable<string> {
    if (prefix !== '' && !prefix.endsWith('/')) throw new CollectorError('COL_ERR_INTERNAL', 'list prefixes end with "/"');
    const base = prefix === '' ? this.root : this.#path(prefix.slice(0, -1));
    // Durable entries whose files are still being made, merged in order (each key once).
    const pending = [...this.#pending].filter(([k, p]) => p.visible && k.startsWith(prefix)).map(([k]) => k).sort();
    if (pending.length === 0) {
      yield* this.#walk(base, prefix);
      return;
    }
    let i = 0;
    for await (const k of this.#walk(base, prefix)) {
      while (i < pending.length && pending[i]! < k) yield pending[i++]!;
      if (pending[i] === k) i++;
      yield k;
    }
    while (i < pending.length) yield pending[i++]!;
  }

  async *#walk(dir: string, keyPrefix: string): AsyncIterable<string> {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return;
      throw storeError(err);
    }
    // Order by the full key, as S3 lists: a folder sorts as "name/", so "acme-2/…" comes before "acme/…".
    const sortName = (e: { name: string; isDirectory(): boolean }) => (e.isDirectory() ? `${e.name}/` : e.name);
    entries.sort((a, b) => {
      const x = sortName(a);
      const y = sortName(b);
      return x < y ? -1 : x > y ? 1 : 0;
    });
    for (const e of entries) {
      if (e.name.startsWith('.tmp-') || (keyPrefix === '' && e.name === JOURNAL_DIR)) continue;
      if (e.isDirectory()) yield* this.#walk(path.join(dir, e.name), `${keyPrefix}${e.name}/`);
      else if (e.isFile()) yield `${keyPrefix}${e.name}`;
    }
  }

  async ping(): Promise<void> {
    let s;
    try {
      await mkdir(this.root, { recursive: true });
      s = await stat(this.root);
    } catch (err) {
      throw storeError(err, this.root);
    }
    if (!s.isDirectory()) throw new CollectorError('COL_ERR_STORE_UNAVAILABLE', 'store root is not a directory');
  }
}
