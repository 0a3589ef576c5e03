// A small tmpfs for full-disk tests: a real ENOSPC from a real file system. Mounting needs root
// (or CAP_SYS_ADMIN); without it the caller skips with the reason this returns.
import { execFileSync } from 'node:child_process';
import { open } from 'node:fs/promises';

/** Mounts a tmpfs of `size` (e.g. "2m") on `dir`; null when mounted, else why not. */
export function mountTmpfs(dir: string, size: string): string | null {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0755`, 'tmpfs', dir], { stdio: 'pipe' });
    return null;
  } catch (err) {
    const detail = ((err as { stderr?: Buffer }).stderr ?? '').toString().trim() || (err as Error).message;
    return `mounting a tmpfs failed (this test needs root, or CAP_SYS_ADMIN): ${detail}`;
  }
}

/** Unmounts `dir`, lazily if it is still busy. */
export function unmountTmpfs(dir: string): void {
  try {
    execFileSync('umount', [dir], { stdio: 'pipe' });
  } catch {
    execFileSync('umount', ['-l', dir], { stdio: 'pipe' });
  }
}

/** Appends to `file` until its file system refuses with ENOSPC, in ever smaller chunks down to a byte. */
export async function fillUp(file: string, firstChunk = 64 * 1024): Promise<void> {
  const fh = await open(file, 'a');
  try {
    for (const size of [firstChunk, 4096, 1]) {
      const chunk = Buffer.alloc(size, 0x2e);
      for (;;) {
        try {
          await fh.write(chunk);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOSPC') break;
          throw err;
        }
      }
    }
  } finally {
    await fh.close();
  }
}
