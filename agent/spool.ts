// The durable spool: every signed envelope is on disk (fsynced, renamed into place) before any send.
// Files are named by sequence number, so the spool's order is the chain's order. Signed drop
// records (the spool overflowed) are `<seq>.drop.dsse.json`, results `<seq>.dsse.json`.
// There is no separate index to keep in step: the directory is the index, and every change to
// it is fsynced before the operation returns. System calls are synchronous, as in fs-util.ts
// (why there): the spool is a handful of small files.
import { closeSync, constants as fsConstants, mkdirSync, openSync, readFileSync, readdirSync, renameSync, statSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import { sha256Hex } from '../collector/contract.js';
import { fsyncDir, removeTempFiles, writeFileDurable } from './fs-util.js';

const SPOOL_FILE_RE = /^(\d{12})(\.drop)?\.dsse\.json$/;

export type SpoolKind = 'result' | 'drop';

export interface SpoolEntry {
  seq: number;
  file: string;
  kind: SpoolKind;
  /** Bytes on disk, when listed with sizes. */
  size?: number;
}

/** Regular files only: a symlink or folder planted in the spool is never read, sent or deleted. */
function namesIn(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true })
      .filter((d) => d.isFile())
      .map((d) => d.name);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

export class Spool {
  constructor(
    readonly dir: string,
    readonly quarantineDir: string,
  ) {}

  static fileName(seq: number, kind: SpoolKind = 'result'): string {
    return `${String(seq).padStart(12, '0')}${kind === 'drop' ? '.drop' : ''}.dsse.json`;
  }

  static parseName(name: string): { seq: number; kind: SpoolKind } | null {
    const m = SPOOL_FILE_RE.exec(name);
    return m === null ? null : { seq: Number(m[1]), kind: m[2] === undefined ? 'result' : 'drop' };
  }

  async put(seq: number, bytes: Buffer, kind: SpoolKind = 'result'): Promise<SpoolEntry> {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const file = path.join(this.dir, Spool.fileName(seq, kind));
    await writeFileDurable(file, bytes, 0o600);
    return { seq, file, kind, size: bytes.length };
  }

  /** Entries in sequence order; with `sizes`, each carries its size on disk. */
  async list(opts: { sizes?: boolean } = {}): Promise<SpoolEntry[]> {
    const entries: SpoolEntry[] = [];
    for (const name of namesIn(this.dir)) {
      const parsed = Spool.parseName(name);
      if (parsed !== null) entries.push({ ...parsed, file: path.join(this.dir, name) });
    }
    entries.sort((a, b) => a.seq - b.seq);
    if (opts.sizes === true) {
      for (const e of entries) e.size = statSync(e.file).size;
    }
    return entries;
  }

  async read(entry: SpoolEntry): Promise<Buffer> {
    // O_NOFOLLOW: a file swapped for a symlink after the listing is refused, not followed.
    const fd = openSync(entry.file, fsConstants.O_RDONLY | (fsConstants.O_NOFOLLOW ?? 0));
    try {
      return readFileSync(fd);
    } finally {
      closeSync(fd);
    }
  }

  /** The newest spooled envelope: after a crash it may be ahead of chain.json. */
  async newest(): Promise<{ seq: number; hash: string } | null> {
    const entries = await this.list();
    const last = entries.at(-1);
    if (last === undefined) return null;
    return { seq: last.seq, hash: sha256Hex(await this.read(last)) };
  }

  async remove(entry: SpoolEntry): Promise<void> {
    await this.removeMany([entry]);
  }

  /** Unlinks entries, then fsyncs the folder once. */
  async removeMany(entries: readonly SpoolEntry[]): Promise<void> {
    if (entries.length === 0) return;
    for (const e of entries) {
      try {
        unlinkSync(e.file);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
    await fsyncDir(this.dir);
  }

  async quarantine(entry: SpoolEntry): Promise<string> {
    mkdirSync(this.quarantineDir, { recursive: true, mode: 0o700 });
    const target = path.join(this.quarantineDir, path.basename(entry.file));
    renameSync(entry.file, target);
    await fsyncDir(this.quarantineDir);
    await fsyncDir(this.dir);
    return target;
  }

  /** Quarantined envelopes, oldest first. */
  async quarantined(): Promise<SpoolEntry[]> {
    return new Spool(this.quarantineDir, this.quarantineDir).list();
  }

  /** Keeps the newest `max` quarantined envelopes; returns the names removed. */
  async trimQuarantine(max: number): Promise<string[]> {
    const all = await this.quarantined();
    const excess = all.slice(0, Math.max(0, all.length - max));
    if (excess.length === 0) return [];
    for (const e of excess) {
      try {
        unlinkSync(e.file);
      } catch {
        // already gone
      }
    }
    await fsyncDir(this.quarantineDir);
    return excess.map((e) => path.basename(e.file));
  }

  /** Removes temporary files a crash left in the spool; they were never acknowledged or sent. */
  async removeTemp(): Promise<string[]> {
    return removeTempFiles(this.dir);
  }
}
