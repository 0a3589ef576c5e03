// Durable small-file writes: write a temporary file, fsync, rename, fsync the folder. Removals
// fsync the folder too.
//
// The system calls are synchronous. Each asynchronous one is a round trip through libuv's thread
// pool (a futex wake, a thread switch and an eventfd back), which on the machines measured cost
// several times the call itself; a durable write is eight of them. The agent's files are small,
// and the daemon serves nothing, so the loop can wait for an fsync: the cycle's CPU went down (see
// agent/README.md, "Footprint"). The functions stay async so that callers do not depend on it.
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { readdir, unlink } from 'node:fs/promises';
import path from 'node:path';

function fsyncDirSync(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export async function fsyncDir(dir: string): Promise<void> {
  fsyncDirSync(dir);
}

function tempName(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
}

/** Temporary files left by a crash in the middle of a write: `.<name>.<hex>.tmp`. */
export const TEMP_FILE_RE = /^\..+\.[0-9a-f]{12}\.tmp$/;

function removeQuietly(file: string): void {
  try {
    unlinkSync(file);
  } catch {
    // already gone, or never made
  }
}

export async function writeFileDurable(file: string, data: string | Buffer, mode = 0o600): Promise<void> {
  const tmp = tempName(file);
  const fd = openSync(tmp, 'wx', mode);
  try {
    writeFileSync(fd, data);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    removeQuietly(tmp);
    throw err;
  }
  closeSync(fd);
  renameSync(tmp, file);
  fsyncDirSync(path.dirname(file));
}

/** Removes a file, and makes the removal durable (fsyncs the folder); a missing file is fine. */
export async function removeDurably(file: string): Promise<void> {
  try {
    unlinkSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  fsyncDirSync(path.dirname(file));
}

/**
 * Atomic but not fsynced: for advisory files (status.json) where a crash may lose the last
 * update but must never leave a torn file.
 */
export async function writeFileAtomic(file: string, data: string | Buffer, mode = 0o644): Promise<void> {
  const tmp = tempName(file);
  try {
    const fd = openSync(tmp, 'wx', mode);
    try {
      writeFileSync(fd, data);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
  } catch (err) {
    removeQuietly(tmp);
    throw err;
  }
}

/** Removes temporary files a crash left behind in `dir`; returns their names. */
export async function removeTempFiles(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const stale = names.filter((n) => TEMP_FILE_RE.test(n));
  for (const n of stale) await unlink(path.join(dir, n)).catch(() => undefined);
  return stale;
}
