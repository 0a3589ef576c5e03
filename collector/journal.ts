// The write-ahead journal of the filesystem evidence store: group commit for evidence writes.
//
// Why: a durable per-file write costs a file fdatasync and a folder fsync, and evidence folders
// are per agent per day, so a busy collector paid two flushes per envelope. Here every evidence
// put that arrives while one flush runs joins the next group (classic group commit, no timer):
// the group is appended to one journal segment and made durable by ONE fdatasync, and only then
// is any put of it acknowledged. "Acknowledged" means "fdatasync'd in the journal".
//
// After the flush, the files of the storage layout are created in the background (O_EXCL, no
// flush of their own), and the store answers get/list for an entry from memory until its file
// exists; an index of the keys under way keeps puts create-only. A file that cannot be made yet
// (a full disk) is retried until it can be; one still owed at shutdown keeps its segment, for
// replay at the next start. A segment is closed by size or age; once it has settled (the kernel
// has written most of its files back), a checkpoint flushes the files and folders its records
// created and deletes it. The appends, the files and the checkpoint's flushes all run on the
// store's I/O thread (collector/io-thread.ts).
//
// Segment: records back to back, each
//   magic u32 | key length u32 | data length u32 | sha256(lengths ‖ key ‖ data) | key | data
// (integers big-endian). A crash mid-append leaves a torn tail (part of a record, maybe
// zero-filled): replay stops there, and those puts were never acknowledged. A bad record with a
// whole record after it is corruption, not a torn append: the segment is kept as *.corrupt.
//
// Replay (on open, before anything is served): each record's file is created when missing; kept
// when byte-identical (and flushed); rewritten when it is a torn copy of the record (a prefix,
// maybe zero-filled: what a crash leaves of an unflushed file); and when it holds other bytes,
// both are kept: the file stays, the segment is renamed *.conflict, and open() reports it on
// every start.
//
// One process owns the journal: .journal/owner.json names it (pid, boot id, process start time).
// A store opened while a live process owns it writes and flushes each file itself, as the CLI does.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { link, mkdir, open, readFile, readdir, rename, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { fsyncDir, fsyncPath, tempPath, writeFlushed } from './fs-util.js';

const MAGIC = 0x56434d4a; // "VCMJ"
const HEADER = 12 + 32;
const SEGMENT_RE = /^(\d{12})\.wal$/;

export interface JournalRecord {
  key: string;
  data: Buffer;
}

function recordDigest(keyBytes: Buffer, data: Buffer, lengths: Buffer): Buffer {
  return createHash('sha256').update(lengths).update(keyBytes).update(data).digest();
}

/** One record's bytes, as appended to a segment. */
export function encodeRecord(key: string, data: Buffer): Buffer {
  const keyBytes = Buffer.from(key, 'utf8');
  const out = Buffer.allocUnsafe(HEADER + keyBytes.length + data.length);
  out.writeUInt32BE(MAGIC, 0);
  out.writeUInt32BE(keyBytes.length, 4);
  out.writeUInt32BE(data.length, 8);
  recordDigest(keyBytes, data, out.subarray(4, 12)).copy(out, 12);
  keyBytes.copy(out, HEADER);
  data.copy(out, HEADER + keyBytes.length);
  return out;
}

const MAGIC_BYTES = Buffer.from([0x56, 0x43, 0x4d, 0x4a]);

/** The record at `off`, when one is there whole and its checksum holds. */
function recordAt(buf: Buffer, off: number): { record: JournalRecord; size: number } | null {
  if (buf.length - off < HEADER || buf.readUInt32BE(off) !== MAGIC) return null;
  const keyLen = buf.readUInt32BE(off + 4);
  const dataLen = buf.readUInt32BE(off + 8);
  const size = HEADER + keyLen + dataLen;
  if (size > buf.length - off) return null;
  const keyBytes = buf.subarray(off + HEADER, off + HEADER + keyLen);
  const data = buf.subarray(off + HEADER + keyLen, off + size);
  if (!recordDigest(keyBytes, data, buf.subarray(off + 4, off + 12)).equals(buf.subarray(off + 12, off + HEADER))) return null;
  return { record: { key: keyBytes.toString('utf8'), data: Buffer.from(data) }, size };
}

/**
 * The whole records of a segment, in order, and what follows them: nothing; a torn tail (what an
 * append a crash interrupted leaves: part of a record, maybe zero-filled); or corruption, when a
 * whole record follows a bad one, which no interrupted append can leave.
 */
export function decodeSegment(buf: Buffer): { records: JournalRecord[]; end: number; tail: 'none' | 'torn' | 'corrupt' } {
  const records: JournalRecord[] = [];
  let off = 0;
  for (;;) {
    if (off === buf.length) return { records, end: off, tail: 'none' };
    const next = recordAt(buf, off);
    if (next === null) {
      for (let i = buf.indexOf(MAGIC_BYTES, off + 1); i !== -1; i = buf.indexOf(MAGIC_BYTES, i + 1)) {
        if (recordAt(buf, i) !== null) return { records, end: off, tail: 'corrupt' };
      }
      return { records, end: off, tail: 'torn' };
    }
    records.push(next.record);
    off += next.size;
  }
}

export function segmentName(n: number): string {
  return `${String(n).padStart(12, '0')}.wal`;
}

// ---- ownership ----------------------------------------------------------------------------------

interface Owner {
  pid: number;
  boot: string | null;
  start: string | null;
}

function readText(p: string): string | null {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return null;
  }
}

/** The process start time in clock ticks since boot (Linux), which tells a reused pid apart. */
function startTime(pid: number): string | null {
  const stat = readText(`/proc/${pid}/stat`);
  if (stat === null) return null;
  // Field 22; the command name (field 2) may hold spaces, so count from its closing parenthesis.
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
}

function self(): Owner {
  return { pid: process.pid, boot: readText('/proc/sys/kernel/random/boot_id')?.trim() ?? null, start: startTime(process.pid) };
}

function alive(owner: Owner, me: Owner): boolean {
  if (owner.boot !== null && me.boot !== null && owner.boot !== me.boot) return false;
  if (owner.pid === me.pid) return false; // an earlier process that had our pid; we are not it yet
  try {
    process.kill(owner.pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
  }
  const start = startTime(owner.pid);
  return !(owner.start !== null && start !== null && start !== owner.start);
}

/** Takes journal/owner.json, or answers false when a live process holds it. */
export async function acquireJournal(dir: string): Promise<boolean> {
  await mkdir(dir, { recursive: true });
  const me = self();
  const lock = path.join(dir, 'owner.json');
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fh = await open(lock, 'wx', 0o644);
      try {
        await fh.writeFile(`${JSON.stringify(me)}\n`);
      } finally {
        await fh.close();
      }
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    let owner: Owner;
    const text = await readFile(lock, 'utf8').catch(() => null);
    try {
      owner = JSON.parse(text ?? '') as Owner;
    } catch {
      owner = { pid: -1, boot: null, start: null }; // torn by a crash while it was written: stale
    }
    if (text !== null && owner.pid > 0 && alive(owner, me)) return false;
    await unlink(lock).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
  }
  return false;
}

export async function releaseJournal(dir: string): Promise<void> {
  const lock = path.join(dir, 'owner.json');
  const text = await readFile(lock, 'utf8').catch(() => null);
  if (text !== null && (JSON.parse(text) as Owner).pid === process.pid) await unlink(lock);
}

// ---- replay -------------------------------------------------------------------------------------

export interface ReplayReport {
  segments: number;
  records: number;
  created: number;
  repaired: number;
  /** Records whose file holds other bytes, and segments with corruption: all kept for an operator. */
  problems: { segment: string; key?: string; problem: 'conflict' | 'corrupt' }[];
}

/** A file an interrupted, unflushed write of `want` can leave: a prefix, possibly zero-filled. */
function tornCopyOf(have: Buffer, want: Buffer): boolean {
  if (have.length > want.length) return false;
  for (let i = 0; i < have.length; i++) if (have[i] !== want[i] && have[i] !== 0) return false;
  return true;
}

/**
 * Brings every record of the leftover segments in `dir` into its file, durably, then deletes
 * the segments (or renames them *.conflict / *.corrupt). `filePath` maps a key to its file and
 * throws for an invalid key. Returns what it did, and also the problems found on earlier starts.
 */
export async function replayJournal(dir: string, filePath: (key: string) => string): Promise<ReplayReport & { nextSegment: number }> {
  const report: ReplayReport = { segments: 0, records: 0, created: 0, repaired: 0, problems: [] };
  let names: string[];
  try {
    names = (await readdir(dir)).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { ...report, nextSegment: 1 };
    throw err;
  }
  let last = 0;
  for (const name of names) {
    const kept = /^(\d{12})\.wal\.(conflict|corrupt)$/.exec(name);
    if (kept !== null) {
      last = Math.max(last, Number(kept[1]));
      report.problems.push({ segment: name, problem: kept[2] as 'conflict' | 'corrupt' });
      continue;
    }
    const m = SEGMENT_RE.exec(name);
    if (m === null) continue;
    last = Math.max(last, Number(m[1]));
    report.segments++;
    const segment = path.join(dir, name);
    const { records, tail } = decodeSegment(await readFile(segment));
    let verdict: 'conflict' | 'corrupt' | null = tail === 'corrupt' ? 'corrupt' : null;
    if (verdict !== null) report.problems.push({ segment: name, problem: 'corrupt' });
    const dirs = new Set<string>();
    for (const r of records) {
      report.records++;
      let file: string;
      try {
        file = filePath(r.key);
      } catch {
        verdict ??= 'corrupt';
        report.problems.push({ segment: name, key: r.key, problem: 'corrupt' });
        continue;
      }
      const folder = path.dirname(file);
      await mkdir(folder, { recursive: true });
      for (let d = folder; ; d = path.dirname(d)) {
        dirs.add(d);
        if (d === path.dirname(dir) || d === path.dirname(d)) break;
      }
      const have = await readFile(file).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return null;
        throw err;
      });
      if (have !== null && have.equals(r.data)) {
        await fsyncPath(file); // written after the record's flush, and maybe never flushed itself
        continue;
      }
      if (have !== null && !tornCopyOf(have, r.data)) {
        verdict = 'conflict';
        report.problems.push({ segment: name, key: r.key, problem: 'conflict' });
        continue;
      }
      const tmp = tempPath(folder);
      await writeFlushed(tmp, r.data);
      if (have === null) {
        await link(tmp, file);
        await unlink(tmp);
        report.created++;
      } else {
        await rename(tmp, file);
        report.repaired++;
      }
    }
    // Files a stopped process was writing beside their names are litter: the records above made
    // every acknowledged file whole.
    for (const d of dirs) {
      const names = await readdir(d).catch(() => [] as string[]);
      for (const n of names) if (n.startsWith('.tmp-')) await unlink(path.join(d, n)).catch(() => undefined);
    }
    // Deepest first, so that each new folder's entry is flushed after the folder itself.
    for (const d of [...dirs].sort((a, b) => b.length - a.length)) await fsyncDir(d);
    if (verdict === null) await unlink(segment);
    else await rename(segment, `${segment}.${verdict}`);
  }
  await fsyncDir(dir);
  return { ...report, nextSegment: last + 1 };
}

// ---- the live journal ---------------------------------------------------------------------------

class Segment {
  readonly files: string[] = [];
  readonly dirs = new Set<string>();
  size = 0;
  records = 0;
  /** Appended records whose file is not yet created (or given up): the checkpoint waits for them. */
  holds = 0;
  #idle: (() => void) | null = null;
  readonly openedAt = performance.now();
  closedAt = Infinity;
  constructor(
    readonly file: string,
    readonly fh: FileHandle,
  ) {}

  /** A record whose file could not be made: the segment is kept for replay at the next start. */
  keep = false;

  release(file: string | null, kept = false): void {
    if (file !== null) {
      this.files.push(file);
      this.dirs.add(path.dirname(file));
    }
    if (kept) this.keep = true;
    if (--this.holds === 0) this.#idle?.();
  }

  idle(): Promise<void> {
    return this.holds === 0 ? Promise.resolve() : new Promise((resolve) => (this.#idle = resolve));
  }
}

/**
 * A durable record: once its file exists, `release(file)` lets the checkpoint go; `release(null)`
 * when no file is owed (another process made it); `release(null, true)` when the file could not
 * be made: the segment then outlives the checkpoint, for replay.
 */
export interface Appended {
  release(file: string | null, kept?: boolean): void;
}

interface Waiting {
  record: Buffer;
  resolve: (a: Appended) => void;
  reject: (err: unknown) => void;
}

export interface JournalOptions {
  /** A segment this large is closed. */
  segmentBytes: number;
  /** A segment this old (ms) is closed, so that an idle journal empties. */
  segmentMs: number;
  /**
   * How long (ms) a closed segment waits before its checkpoint. By then the kernel has usually
   * written its files back (Linux: dirty pages expire after 30 s), and flushing a clean file is
   * cheap, so the checkpoint adds little to the flushes the journal itself needs.
   */
  settleMs: number;
  /** Writes bytes at a position of the open segment `fd` and flushes them (the store's I/O thread). */
  append: (fd: number, bytes: Buffer, position: number) => Promise<void>;
  /** Flushes files (fdatasync), then folders (fsync), skipping any that is gone (the store's I/O thread). */
  flush: (files: readonly string[], dirs: readonly string[]) => Promise<void>;
}

export class Journal {
  readonly #dir: string;
  readonly #opts: JournalOptions;
  #next: number;
  #current: Segment | null = null;
  #queue: Waiting[] = [];
  #busy = false;
  /** Closed segments not yet checkpointed (retried when a checkpoint fails). */
  #closed: Segment[] = [];
  #checkpointing: Promise<void> | null = null;
  readonly #timer: NodeJS.Timeout;
  onError: (err: unknown) => void = () => undefined;

  constructor(dir: string, nextSegment: number, opts: JournalOptions) {
    this.#dir = dir;
    this.#next = nextSegment;
    this.#opts = opts;
    this.#timer = setInterval(() => this.#tick(), Math.max(20, Math.min(opts.segmentMs, opts.settleMs || Infinity) / 2));
    this.#timer.unref();
  }

  /** Appends one record; resolves once it is flushed, together with every record waiting with it. */
  append(key: string, data: Buffer): Promise<Appended> {
    const record = encodeRecord(key, data);
    return new Promise((resolve, reject) => {
      this.#queue.push({ record, resolve, reject });
      void this.#pump();
    });
  }

  async #pump(): Promise<void> {
    if (this.#busy) return;
    this.#busy = true;
    try {
      while (this.#queue.length > 0) {
        if (this.#current !== null && this.#current.size >= this.#opts.segmentBytes) this.#rotate();
        const group = this.#queue;
        this.#queue = [];
        try {
          const seg = (this.#current ??= await this.#create());
          await this.#write(seg, group);
          seg.records += group.length;
          seg.holds += group.length;
          for (const w of group) w.resolve(seg);
        } catch (err) {
          for (const w of group) w.reject(err);
        }
      }
    } finally {
      this.#busy = false;
    }
  }

  async #create(): Promise<Segment> {
    const file = path.join(this.#dir, segmentName(this.#next++));
    const fh = await open(file, 'wx', 0o644);
    try {
      await fsyncDir(this.#dir); // the segment's own folder entry, once per segment
    } catch (err) {
      await fh.close();
      await unlink(file).catch(() => undefined);
      throw err;
    }
    return new Segment(file, fh);
  }

  async #write(seg: Segment, group: Waiting[]): Promise<void> {
    const bytes = group.length === 1 ? group[0]!.record : Buffer.concat(group.map((w) => w.record));
    try {
      await this.#opts.append(seg.fh.fd, bytes, seg.size);
      seg.size += bytes.length;
    } catch (err) {
      // Cut the failed group off, so that later groups never follow a torn record. When that
      // fails too, or the flush failed (the file's state is then unknown), retire the segment.
      const cut = (err as { stage?: string }).stage === 'write' && (await seg.fh.truncate(seg.size).then(() => true, () => false));
      if (!cut) this.#rotate();
      throw err;
    }
  }

  #rotate(): void {
    const seg = this.#current;
    if (seg === null) return;
    this.#current = null;
    seg.closedAt = performance.now();
    this.#closed.push(seg);
    if (this.#opts.settleMs === 0) void this.#checkpoint();
  }

  #tick(): void {
    const seg = this.#current;
    if (!this.#busy && seg !== null && seg.records > 0 && performance.now() - seg.openedAt >= this.#opts.segmentMs) this.#rotate();
    if (this.#closed.length > 0 && performance.now() - this.#closed[0]!.closedAt >= this.#opts.settleMs) void this.#checkpoint();
  }

  /** Flushes the files of settled segments (all, with `now`), then deletes them; one at a time. */
  #checkpoint(now = false): Promise<void> {
    this.#checkpointing ??= (async () => {
      try {
        while (this.#closed.length > 0) {
          const seg = this.#closed[0]!;
          if (!now && performance.now() - seg.closedAt < this.#opts.settleMs) break;
          await seg.idle();
          await seg.fh.close().catch(() => undefined);
          if (seg.keep) {
            this.#closed.shift(); // replayed at the next start: it holds files never made
            continue;
          }
          await this.#opts.flush(seg.files, [...seg.dirs]);
          await unlink(seg.file);
          this.#closed.shift();
        }
      } catch (err) {
        this.onError(err); // kept; the next tick tries again
      } finally {
        this.#checkpointing = null;
      }
    })();
    return this.#checkpointing;
  }

  /** Closes the current segment and checkpoints everything: on shutdown, the journal is left empty. */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    while (this.#busy || this.#queue.length > 0) await new Promise((r) => setTimeout(r, 5));
    this.#rotate();
    await this.#checkpointing;
    if (this.#closed.length > 0) await this.#checkpoint(true);
  }
}
