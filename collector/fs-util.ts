// Durable file writes shared by the filesystem store, its journal and the collector's key file.
import { randomBytes } from 'node:crypto';
import { open, unlink } from 'node:fs/promises';
import path from 'node:path';

/** Flushes a file's data (fdatasync), or with `full` everything about it (fsync: for folders). */
export async function fsyncPath(p: string, full = false): Promise<void> {
  const fh = await open(p, 'r');
  try {
    await (full ? fh.sync() : fh.datasync());
  } finally {
    await fh.close();
  }
}

/** Makes a folder's entries (files created, linked or removed in it) durable. */
export function fsyncDir(dir: string): Promise<void> {
  return fsyncPath(dir, true);
}

/** A fresh temporary name in `dir`: never listed, never a key. */
export function tempPath(dir: string): string {
  return path.join(dir, `.tmp-${randomBytes(8).toString('hex')}`);
}

/**
 * Creates `file` (never existing) with `data` and flushes it; fdatasync skips timestamps. When
 * the write or the flush fails the file is removed, so that nobody reads a torn copy later.
 */
export async function writeFlushed(file: string, data: Buffer | string, mode = 0o644): Promise<void> {
  const fh = await open(file, 'wx', mode);
  try {
    await fh.writeFile(data);
    await fh.datasync();
  } catch (err) {
    await fh.close().catch(() => undefined);
    await unlink(file).catch(() => undefined);
    throw err;
  }
  await fh.close();
}
