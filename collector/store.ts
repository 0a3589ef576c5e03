// The evidence store contract and its filesystem implementation (the embedded default).
// Keys follow the storage layout in DESIGN.md. Writes are create-only and durable on return.
import { randomBytes } from 'node:crypto';
import { link, mkdir, open, readFile, readdir, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { CollectorError } from './errors.js';

export type PutResult = 'created' | 'exists';

export interface EvidenceStore {
  /** Writes `bytes` under `key` unless the key exists. Returns only once the write is durable. */
  putIfAbsent(key: string, bytes: Buffer): Promise<PutResult>;
  /** The stored bytes, or null when there is no such key. */
  get(key: string): Promise<Buffer | null>;
  /** Every key under `prefix` (a folder-like prefix ending in "/"), in lexical order. */
  list(prefix: string): AsyncIterable<string>;
  /** Throws when the store cannot take writes (drives /readyz). */
  ping(): Promise<void>;
  readonly description: string;
}

const KEY_RE = /^[A-Za-z0-9=._-]+(\/[A-Za-z0-9=._-]+)*$/;

export function assertKey(key: string): void {
  if (!KEY_RE.test(key) || key.split('/').some((part) => part === '.' || part === '..' || part.startsWith('.tmp-'))) {
    throw new CollectorError('COL_ERR_INTERNAL', `invalid store key: ${JSON.stringify(key)}`);
  }
}

function storeError(err: unknown): CollectorError {
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

export class FsEvidenceStore implements EvidenceStore {
  readonly root: string;
  readonly description: string;

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
      const firstCreated = await mkdir(dir, { recursive: true });
      const fh = await open(tmp, 'wx', 0o644);
      try {
        await fh.writeFile(bytes);
        await fh.sync();
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
      await fsyncDir(dir);
      if (firstCreated !== undefined) {
        // New folders must reach the disk too: fsync each parent up to the first one that existed.
        const top = path.dirname(firstCreated);
        for (let d = path.dirname(dir); ; d = path.dirname(d)) {
          await fsyncDir(d);
          if (d === top || d === path.dirname(d)) break;
        }
      }
      return created ? 'created' : 'exists';
    } catch (err) {
      await unlink(tmp).catch(() => undefined);
      throw storeError(err);
    }
  }

  async get(key: string): Promise<Buffer | null> {
    try {
      return await readFile(this.#path(key));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
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
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw storeError(err);
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
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
