// The evidence store contract and its filesystem implementation (the embedded default).
// Keys follow the storage layout in DESIGN.md. Writes are create-only and durable on return.
import { randomBytes } from 'node:crypto';
import { link, mkdir, open, readFile, readdir, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { CollectorError } from './errors.js';

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
  /** Every key under `prefix` (a folder-like prefix ending in "/"), in lexical order. */
  list(prefix: string): AsyncIterable<string>;
  /** Throws when the store cannot take writes (drives /readyz). */
  ping(): Promise<void>;
  /** Checks the store's settings at startup (S3: versioning and Object Lock); absent means nothing to check. */
  preflight?(): Promise<StorePreflight>;
  readonly description: string;
}

const KEY_RE = /^[A-Za-z0-9=._-]+(\/[A-Za-z0-9=._-]+)*$/;

export function assertKey(key: string): void {
  if (!KEY_RE.test(key) || key.split('/').some((part) => part === '.' || part === '..' || part.startsWith('.tmp-'))) {
    throw new CollectorError('COL_ERR_INTERNAL', `invalid store key: ${JSON.stringify(key)}`);
  }
}

function storeError(err: unknown): CollectorError {
  if (err instanceof CollectorError) return err; // e.g. an invalid key: internal, not an outage
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC' || code === 'EDQUOT' || code === 'EROFS' || code === 'EIO' || code === 'EACCES') {
    return new CollectorError('COL_ERR_STORE_UNAVAILABLE', `evidence store write failed (${code})`, { cause: err });
  }
  return new CollectorError('COL_ERR_STORE_UNAVAILABLE', 'evidence store write failed', { cause: err });
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
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

export class FsEvidenceStore implements EvidenceStore {
  readonly root: string;
  readonly description: string;
  readonly #dirSync = new DirSyncer();
  /** Folders known to exist durably: most writes land in today's folder of a known agent. */
  readonly #knownDirs = new Set<string>();
  /** Folders being created, so that concurrent writers all wait until the folder is durable. */
  readonly #creating = new Map<string, Promise<void>>();

  constructor(root: string) {
    this.root = path.resolve(root);
    this.description = `filesystem:${this.root}`;
  }

  #path(key: string): string {
    assertKey(key);
    return path.join(this.root, ...key.split('/'));
  }

  async putIfAbsent(key: string, bytes: Buffer): Promise<PutResult> {
    const final = this.#path(key);
    const dir = path.dirname(final);
    const tmp = path.join(dir, `.tmp-${randomBytes(8).toString('hex')}`);
    try {
      await this.#ensureDir(dir);
      const fh = await open(tmp, 'wx', 0o644);
      try {
        await fh.writeFile(bytes);
        // The data and the size are what must survive; fdatasync skips timestamps.
        await fh.datasync();
      } finally {
        await fh.close();
      }
      // link() fails with EEXIST when the key is taken: create-only without a window for a torn file.
      let created = true;
      try {
        await link(tmp, final);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        created = false;
      }
      await unlink(tmp);
      await this.#dirSync.sync(dir);
      return created ? 'created' : 'exists';
    } catch (err) {
      await unlink(tmp).catch(() => undefined);
      // The folder went away underneath us (removed by hand): forget it, so the next write recreates it.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') this.#knownDirs.delete(dir);
      throw storeError(err);
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
    try {
      return await readFile(this.#path(key));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // ENOTDIR: a parent of the key is a file, so the key cannot exist.
      if (code === 'ENOENT' || code === 'ENOTDIR') return null;
      throw storeError(err);
    }
  }

  async *list(prefix: string): AsyncIterable<string> {
    if (prefix !== '' && !prefix.endsWith('/')) throw new CollectorError('COL_ERR_INTERNAL', 'list prefixes end with "/"');
    const base = prefix === '' ? this.root : this.#path(prefix.slice(0, -1));
    yield* this.#walk(base, prefix);
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
      if (e.name.startsWith('.tmp-')) continue;
      if (e.isDirectory()) yield* this.#walk(path.join(dir, e.name), `${keyPrefix}${e.name}/`);
      else if (e.isFile()) yield `${keyPrefix}${e.name}`;
    }
  }

  async ping(): Promise<void> {
    await mkdir(this.root, { recursive: true });
    const s = await stat(this.root);
    if (!s.isDirectory()) throw new CollectorError('COL_ERR_STORE_UNAVAILABLE', 'store root is not a directory');
  }
}
