// Where the benchmarks keep their stores, spools and state: BENCH_DIR, or .bench/ in the
// repository. Not os.tmpdir(): on some machines the temporary folder's file system makes new files
// far slower than the rest of the same disk (on the development VM, ~1 ms per file in /tmp against
// ~35 µs in /var/lib or the repository), and a collector's data folder or an agent's state folder
// never lives there. run.mjs prints the cost of a new file in both places, so the figures can be
// read against the disk they were measured on.
import { closeSync, mkdirSync, mkdtempSync, openSync, readdirSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const SCRATCH_ROOT = path.resolve(process.env.BENCH_DIR ?? path.join(REPO, '.bench'));

/**
 * Removes a benchmark's scratch folder, or leaves it to run.mjs, which removes every new folder
 * once all benchmarks are done (BENCH_DEFER_CLEANUP): on ext4 without a journal, files made in the
 * 60-360 s after many were removed are slow to make (see describeScratch), so removing one
 * benchmark's store would slow the next one down. BENCH_KEEP=1 keeps everything.
 */
export function removeScratch(dir) {
  if (process.env.BENCH_KEEP === '1' || process.env.BENCH_DEFER_CLEANUP === '1') return;
  rmSync(dir, { recursive: true, force: true });
}

/** Folders under the scratch root now (run.mjs removes those made after this, at the end). */
export function scratchEntries() {
  try {
    return new Set(readdirSync(SCRATCH_ROOT));
  } catch {
    return new Set();
  }
}

/** A new empty folder under the scratch root. */
export function scratchDir(prefix) {
  mkdirSync(SCRATCH_ROOT, { recursive: true });
  return mkdtempSync(path.join(SCRATCH_ROOT, `vcm-bench-${prefix}-`));
}

/** Mean wall time to create, write (1.5 KiB) and close one new file in a fresh folder under `root`, in µs. */
export function fileCreateMicros(root, files = 300) {
  mkdirSync(root, { recursive: true });
  const dir = mkdtempSync(path.join(root, 'vcm-bench-probe-'));
  const data = Buffer.alloc(1536, 0x61);
  try {
    const t0 = performance.now();
    for (let i = 0; i < files; i++) {
      const fd = openSync(path.join(dir, `f${i}`), 'wx', 0o644);
      writeSync(fd, data);
      closeSync(fd);
    }
    return ((performance.now() - t0) * 1000) / files;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** New files slower than this (µs) mean the file system is still passing over recent deletions. */
const SLOW_FILE_MICROS = 200;

/**
 * The cost of a new file in the scratch folder and in the temporary folder, as one line. When new
 * files are slow here, waits (up to BENCH_SETTLE_SECONDS, default 400) for them to be cheap again:
 * ext4 without a journal passes over inodes deleted in the last 60-360 s whenever it makes a file,
 * so a run soon after many files were removed (the last run's stores) would measure that instead.
 */
export async function describeScratch() {
  let here = fileCreateMicros(SCRATCH_ROOT);
  const limit = Number(process.env.BENCH_SETTLE_SECONDS ?? 400) * 1000;
  const t0 = performance.now();
  while (here > SLOW_FILE_MICROS && performance.now() - t0 < limit) {
    console.log(`a new file costs ${here.toFixed(0)} µs in ${SCRATCH_ROOT}: waiting for the file system to settle after recent deletions`);
    await new Promise((r) => setTimeout(r, 20_000));
    here = fileCreateMicros(SCRATCH_ROOT);
  }
  const waited = performance.now() - t0 > 1000 ? ` (after waiting ${((performance.now() - t0) / 1000).toFixed(0)} s)` : '';
  const tmp = fileCreateMicros(tmpdir());
  const slow = here > SLOW_FILE_MICROS ? '; still slow, so file-heavy figures below are pessimistic' : '';
  return `scratch folder ${SCRATCH_ROOT} (BENCH_DIR): a new file costs ${here.toFixed(0)} µs here${waited}${slow}, ${tmp.toFixed(0)} µs in ${tmpdir()}`;
}
