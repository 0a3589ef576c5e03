// Parsed file contents kept between runs of a check, in the daemon only (CollectContext.cache).
// An entry is used again while the file's inode, size, mtime and ctime are unchanged: one lstat
// instead of open, read and close, and no parse. Without a store (one-shot runs, replays, tests)
// every file is read afresh and the check makes exactly the calls it makes without a cache.
import type { HostIO } from './types.js';

/**
 * A file changed this recently may change again within the timestamp granularity of its file
 * system without its stat changing (git's "racy" entries), so it is not kept. Five seconds
 * covers the coarsest clocks file systems keep.
 */
export const RACY_MS = 5000;

interface Entry {
  stamp: string;
  value: unknown;
  used: boolean;
}

export class FileCache {
  readonly #io: HostIO;
  readonly #store: Map<string, unknown> | undefined;
  readonly #now: () => number;

  constructor(io: HostIO, store: Map<string, unknown> | undefined, now: () => number = Date.now) {
    this.#io = io;
    this.#store = store;
    this.#now = now;
  }

  /**
   * `load` reads and parses `path` as the check would without a cache; its result (or the one of
   * an earlier run, when the file is unchanged) is returned. What `load` throws is not kept.
   */
  async get<T>(path: string, load: () => Promise<T>): Promise<T> {
    const store = this.#store;
    if (store === undefined) return load();
    let stamp: string | null = null;
    try {
      const s = await this.#io.stat(path);
      // A symlink's own stat says nothing of its target's content.
      if (s.type === 'file' && s.ino !== undefined && s.ctimeMs !== undefined && this.#now() - Math.max(s.ctimeMs, s.mtimeMs) > RACY_MS) {
        stamp = `${s.ino} ${s.size} ${s.mtimeMs} ${s.ctimeMs}`;
      }
    } catch {
      // Missing, unreadable, vanished: load reports it as it would without a cache.
    }
    const key = `file ${path}`;
    const hit = store.get(key) as Entry | undefined;
    if (stamp !== null && hit?.stamp === stamp) {
      hit.used = true;
      return hit.value as T;
    }
    const value = await load();
    if (stamp === null) store.delete(key);
    else store.set(key, { stamp, value, used: true } satisfies Entry);
    return value;
  }

  /** Drops the entries of files this run did not ask for (removed from a directory, say). */
  sweep(): void {
    const store = this.#store;
    if (store === undefined) return;
    for (const [key, v] of store) {
      const e = v as Entry;
      if (!key.startsWith('file ')) continue;
      if (e.used) e.used = false;
      else store.delete(key);
    }
  }
}
