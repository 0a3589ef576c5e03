// Where the benchmarks keep their stores, spools and state: BENCH_DIR, or .bench/ in the
// repository. Not os.tmpdir(): on some machines the temporary folder's file system makes new files
// far slower than the rest of the same disk (on the development VM, ~1 ms per file in /tmp against
// ~35 µs in /var/lib or the repository), and a collector's data folder or an agent's state folder
// never lives there. run.mjs prints the cost of a new file in both places, so the figures can be
// read against the disk they were measured on.
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync, writeSync } from 'node:fs';
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

/**
 * Mean wall time to create, write (1.5 KiB) and close one new file in a fresh folder under `root`,
 * in µs. The probe's folder is removed only with `remove`: removing files is what makes new ones
 * slow on a journal-less ext4, so the probes of the scratch folder are left to run.mjs's cleanup.
 */
export function fileCreateMicros(root, { files = 300, remove = true } = {}) {
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
    if (remove) rmSync(dir, { recursive: true, force: true });
  }
}

/** New files slower than this (µs) mean the file system is still passing over recent deletions. */
const SLOW_FILE_MICROS = 200;
/** How long ext4 without a journal passes over a deleted inode: 60 s, or 360 s while its table block is dirty. */
const RECENT_DELETION_MS = 360_000;
/** Written by run.mjs when it removes the scratch folders: the time, in ms since the epoch. */
const REMOVED_AT = path.join(SCRATCH_ROOT, '.removed-at');

/** Records that run.mjs has just removed many files under the scratch root. */
export function markRemoved() {
  writeFileSync(REMOVED_AT, String(Date.now()));
}

/**
 * The cost of a new file in the scratch folder and in the temporary folder, as one line. First
 * waits (up to BENCH_SETTLE_SECONDS, default 400; 0 skips it) until the last run's scratch
 * folders were removed 360 s ago and new files are cheap: ext4 without a journal passes over
 * inodes deleted in the last 60-360 s whenever it makes a file, so a run soon after many files
 * were removed would measure that instead of the collector.
 */
export async function describeScratch() {
  const limit = Number(process.env.BENCH_SETTLE_SECONDS ?? 400) * 1000;
  const t0 = performance.now();
  const removedAt = Number(existsSync(REMOVED_AT) ? readFileSync(REMOVED_AT, 'utf8') : 0);
  const settled = () => Date.now() - removedAt >= RECENT_DELETION_MS;
  let here = fileCreateMicros(SCRATCH_ROOT, { remove: false });
  while ((!settled() || here > SLOW_FILE_MICROS) && performance.now() - t0 < limit) {
    const why = settled() ? `a new file costs ${here.toFixed(0)} µs` : `the last run removed its scratch folders ${((Date.now() - removedAt) / 1000).toFixed(0)} s ago`;
    console.log(`${why}: waiting for ${SCRATCH_ROOT}'s file system to settle (BENCH_SETTLE_SECONDS=0 skips this)`);
    await new Promise((r) => setTimeout(r, 20_000));
    here = fileCreateMicros(SCRATCH_ROOT, { remove: false });
  }
  const waited = performance.now() - t0 > 1000 ? ` (after waiting ${((performance.now() - t0) / 1000).toFixed(0)} s)` : '';
  const tmp = fileCreateMicros(tmpdir());
  const slow = here > SLOW_FILE_MICROS || !settled() ? '; not settled, so file-heavy figures below are pessimistic' : '';
  return `scratch folder ${SCRATCH_ROOT} (BENCH_DIR): a new file costs ${here.toFixed(0)} µs here${waited}${slow}, ${tmp.toFixed(0)} µs in ${tmpdir()}`;
}
