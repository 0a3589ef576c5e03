// The durable spool: every signed envelope is on disk (fsynced, renamed into place) before any send.
// Files are named by sequence number, so the spool's order is the chain's order.
import { mkdir, readFile, readdir, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import { sha256Hex } from '../collector/contract.js';
import { fsyncDir, writeFileDurable } from './fs-util.js';

const SPOOL_FILE_RE = /^(\d{12})\.dsse\.json$/;

export interface SpoolEntry {
  seq: number;
  file: string;
}

export class Spool {
  constructor(
    readonly dir: string,
    readonly quarantineDir: string,
  ) {}

  static fileName(seq: number): string {
    return `${String(seq).padStart(12, '0')}.dsse.json`;
  }

  async put(seq: number, bytes: Buffer): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    await writeFileDurable(path.join(this.dir, Spool.fileName(seq)), bytes, 0o600);
  }

  /** Entries in sequence order. */
  async list(): Promise<SpoolEntry[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    return names
      .map((name) => ({ name, m: SPOOL_FILE_RE.exec(name) }))
      .filter((x): x is { name: string; m: RegExpExecArray } => x.m !== null)
      .map(({ name, m }) => ({ seq: Number(m[1]), file: path.join(this.dir, name) }))
      .sort((a, b) => a.seq - b.seq);
  }

  read(entry: SpoolEntry): Promise<Buffer> {
    return readFile(entry.file);
  }

  /** The newest spooled envelope: after a crash it may be ahead of chain.json. */
  async newest(): Promise<{ seq: number; hash: string } | null> {
    const entries = await this.list();
    const last = entries.at(-1);
    if (last === undefined) return null;
    return { seq: last.seq, hash: sha256Hex(await this.read(last)) };
  }

  async remove(entry: SpoolEntry): Promise<void> {
    await unlink(entry.file);
    await fsyncDir(this.dir);
  }

  async quarantine(entry: SpoolEntry): Promise<string> {
    await mkdir(this.quarantineDir, { recursive: true, mode: 0o700 });
    const target = path.join(this.quarantineDir, path.basename(entry.file));
    await rename(entry.file, target);
    await fsyncDir(this.quarantineDir);
    await fsyncDir(this.dir);
    return target;
  }
}
