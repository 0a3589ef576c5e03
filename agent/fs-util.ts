// Durable small-file writes: write a temporary file, fsync, rename, fsync the folder. Removals
// fsync the folder too.
import { randomBytes } from 'node:crypto';
import { open, readdir, rename, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';

export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

function tempName(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
}

/** Temporary files left by a crash in the middle of a write: `.<name>.<hex>.tmp`. */
export const TEMP_FILE_RE = /^\..+\.[0-9a-f]{12}\.tmp$/;

export async function writeFileDurable(file: string, data: string | Buffer, mode = 0o600): Promise<void> {
  const tmp = tempName(file);
  const fh = await open(tmp, 'wx', mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } catch (err) {
    await fh.close();
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  await fh.close();
  await rename(tmp, file);
  await fsyncDir(path.dirname(file));
}

/** Removes a file, and makes the removal durable (fsyncs the folder); a missing file is fine. */
export async function removeDurably(file: string): Promise<void> {
  try {
    await unlink(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  await fsyncDir(path.dirname(file));
}

/**
 * Atomic but not fsynced: for advisory files (status.json) where a crash may lose the last
 * update but must never leave a torn file.
 */
export async function writeFileAtomic(file: string, data: string | Buffer, mode = 0o644): Promise<void> {
  const tmp = tempName(file);
  try {
    await writeFile(tmp, data, { mode, flag: 'wx' });
    await rename(tmp, file);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
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
