// The bundle's container: a POSIX tar in gzip. Packed deterministically (sorted paths, one fixed
// mtime, uid and gid 0, mode 0644, no user names, and gzip's header without a time), and unpacked
// defensively: only regular files and folders, only plain relative names, each once, sizes and
// the compression ratio bounded, into a fresh folder that nothing is written outside of.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open } from 'node:fs/promises';
import path from 'node:path';
import { Readable, Transform, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import tar from 'tar-stream';

/** How a member's bytes are given: in memory, or a file to stream from. */
export type TarBody = { bytes: Buffer[] } | { file: string };

/**
 * A deterministic tar.gz written member by member, in strictly increasing path order (the order
 * the verifier and `tar -t` show), with backpressure: memory holds only the member being written.
 */
export class TarGzWriter {
  readonly #pack = tar.pack();
  readonly #hash = createHash('sha256');
  readonly #mtime: Date;
  readonly #writing: Promise<void>;
  #bytes = 0;
  #last: string | null = null;

  /**
   * gzip level 1 by default: on evidence it packs about 7% larger than level 6 in a third of the
   * time, and the compression would otherwise be a large share of an export's cost.
   */
  constructor(mtimeMs: number, out: Writable, level = 1) {
    this.#mtime = new Date(Math.floor(mtimeMs / 1000) * 1000);
    const count = new Transform({
      transform: (chunk: Buffer, _enc, done) => {
        this.#hash.update(chunk);
        this.#bytes += chunk.length;
        done(null, chunk);
      },
    });
    this.#writing = pipeline(this.#pack, createGzip({ level, chunkSize: 256 << 10 }), count, out);
    // Seen by finish(); a failure while members are added also rejects their writes.
    this.#writing.catch(() => undefined);
  }

  /** The last path written, or null. */
  get last(): string | null {
    return this.#last;
  }

  async add(rel: string, size: number, body: TarBody): Promise<void> {
    if (this.#last !== null && !(rel > this.#last)) throw new Error(`tar members out of order: ${rel} after ${this.#last}`);
    this.#last = rel;
    const entry = this.#pack.entry({ name: rel, size, mode: 0o644, mtime: this.#mtime, uid: 0, gid: 0, uname: '', gname: '', type: 'file' });
    await pipeline('file' in body ? createReadStream(body.file) : Readable.from(body.bytes, { objectMode: false }), entry);
  }

  /** Stops on a failure: the output is destroyed, not left open half written. */
  async abort(err: Error): Promise<void> {
    this.#pack.destroy(err);
    await this.#writing.catch(() => undefined);
  }

  async finish(): Promise<{ sha256: string; bytes: number }> {
    this.#pack.finalize();
    await this.#writing;
    return { sha256: this.#hash.digest('hex'), bytes: this.#bytes };
  }
}

export class ArchiveError extends Error {}

export interface UnpackLimits {
  /** Largest member (default 2 GiB). */
  maxFileBytes?: number;
  /** Largest total unpacked (default 16 GiB). */
  maxTotalBytes?: number;
  /** Most members (default 2,000,000). */
  maxFiles?: number;
  /** Largest ratio of unpacked to packed bytes (default 200, past 64 MiB): a zip bomb stops here. */
  maxRatio?: number;
}

const SAFE_NAME = /^[A-Za-z0-9._=-]+(\/[A-Za-z0-9._=-]+)*\/?$/;

/** Unpacks a tar.gz into `dest` (an empty folder this process just made). Throws ArchiveError for anything hostile or broken. */
export async function unpackTarGz(archive: string, dest: string, limits: UnpackLimits = {}): Promise<{ files: number; bytes: number }> {
  const maxFile = limits.maxFileBytes ?? 2 * 1024 ** 3;
  const maxTotal = limits.maxTotalBytes ?? 16 * 1024 ** 3;
  const maxFiles = limits.maxFiles ?? 2_000_000;
  const maxRatio = limits.maxRatio ?? 200;
  let packed = 0;
  let unpacked = 0;
  const countIn = new Transform({
    transform(chunk: Buffer, _e, done) {
      packed += chunk.length;
      done(null, chunk);
    },
  });
  const countOut = new Transform({
    transform(chunk: Buffer, _e, done) {
      unpacked += chunk.length;
      if (unpacked > 64 * 1024 ** 2 && unpacked > packed * maxRatio) done(new ArchiveError(`the archive expands more than ${maxRatio} times: a compression bomb`));
      else if (unpacked > maxTotal + 1024 ** 2) done(new ArchiveError(`the archive unpacks to more than ${maxTotal} bytes`));
      else done(null, chunk);
    },
  });
  const seen = new Set<string>();
  let files = 0;
  let total = 0;
  /** One member: checked from its header, then written create-only inside dest. */
  const take = async (h: tar.Header, body: AsyncIterable<unknown>): Promise<void> => {
    const name = h.name;
    if (name.startsWith('/') || name.split('/').some((p) => p === '..' || p === '.') || !SAFE_NAME.test(name)) throw new ArchiveError(`a member has an unsafe name: ${JSON.stringify(name.slice(0, 200))}`);
    const key = name.replace(/\/$/, '');
    if (seen.has(key)) throw new ArchiveError(`the member ${name} appears twice`);
    seen.add(key);
    if (h.type === 'directory') {
      await mkdir(path.join(dest, key), { recursive: true });
      return;
    }
    if (h.type !== 'file' && h.type !== 'contiguous-file') throw new ArchiveError(`the member ${name} is a ${String(h.type)}, not a regular file`);
    const size = h.size ?? 0;
    if (size > maxFile) throw new ArchiveError(`the member ${name} declares ${size} bytes, more than ${maxFile}`);
    total += size;
    if (total > maxTotal) throw new ArchiveError(`the archive declares more than ${maxTotal} bytes in all`);
    if (++files > maxFiles) throw new ArchiveError(`the archive has more than ${maxFiles} members`);
    const target = path.join(dest, key);
    await mkdir(path.dirname(target), { recursive: true });
    const fh = await open(target, 'wx', 0o644);
    try {
      for await (const chunk of body) await fh.write(chunk as Buffer);
    } finally {
      await fh.close();
    }
  };
  const source = createReadStream(archive);
  const gunzip = createGunzip();
  const extract = tar.extract();
  try {
    await new Promise<void>((resolve, reject) => {
      let settled = false;
      const fail = (err: unknown) => {
        if (settled) return;
        settled = true;
        source.destroy();
        gunzip.destroy();
        countOut.destroy();
        extract.destroy();
        reject(err instanceof Error ? err : new Error(String(err)));
      };
      for (const s of [source, countIn, gunzip, countOut]) s.on('error', fail);
      extract.on('error', fail);
      extract.on('entry', (h, body, next) => {
        take(h, body).then(() => next(), (err: unknown) => {
          body.resume();
          fail(err);
        });
      });
      extract.on('finish', () => {
        if (!settled) {
          settled = true;
          resolve();
        }
      });
      source.pipe(countIn).pipe(gunzip).pipe(countOut).pipe(extract as unknown as NodeJS.WritableStream);
    });
  } catch (err) {
    if (err instanceof ArchiveError) throw err;
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOTDIR' || e.code === 'EEXIST' || e.code === 'EISDIR') throw new ArchiveError(`the archive's members collide: ${e.message}`);
    if (e.code === 'ENOENT' && e.path === archive) throw new ArchiveError(`no such file: ${archive}`);
    throw new ArchiveError(`not a readable tar.gz: ${e.message}`);
  }
  return { files, bytes: total };
}
