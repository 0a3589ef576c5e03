// The filesystem store's write-ahead journal (collector/journal.ts): what opening the store does
// with segments a crash left behind, written here byte by byte as a crash would leave them, and
// with segments the live journal wrote.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readFile, readdir, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { evidenceKey } from '../../collector/contract.js';
import { encodeRecord, segmentName } from '../../collector/journal.js';
import { FsEvidenceStore, type MaterialiseEvent } from '../../collector/store.js';
import { fillUp, mountTmpfs, unmountTmpfs } from '../helpers/tmpfs.js';

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function freshRoot(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'vcm-journal-'));
  dirs.push(dir);
  return path.join(dir, 'data');
}

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
const key = (seq: number, body: Buffer) =>
  evidenceKey({ vendor: 'acme', collectedAt: '2026-11-22T10:00:00Z', agentId: 'a'.repeat(64), seq, sha256: sha(body) });
const body = (seq: number, size = 300) => Buffer.from(`{"seq":${seq},"pad":"${'x'.repeat(size)}"}`);

async function writeSegment(root: string, n: number, bytes: Buffer): Promise<string> {
  await mkdir(path.join(root, '.journal'), { recursive: true });
  const file = path.join(root, '.journal', segmentName(n));
  await writeFile(file, bytes);
  return file;
}

async function putFile(root: string, k: string, bytes: Buffer): Promise<void> {
  const file = path.join(root, ...k.split('/'));
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, bytes);
}

const read = (root: string, k: string) => readFile(path.join(root, ...k.split('/'))).catch(() => null);

async function until(done: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`still waiting after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function keys(store: FsEvidenceStore, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for await (const k of store.list(prefix)) out.push(k);
  return out;
}

describe('replay of a journal a crash left behind', () => {
  it('creates missing files, keeps identical ones, repairs torn copies, and stops at a torn tail', async () => {
    const root = await freshRoot();
    const [a, b, c, d, e] = [1, 2, 3, 4, 5].map((s) => body(s));
    const torn = encodeRecord(key(5, e!), e!);
    await writeSegment(
      root,
      7,
      Buffer.concat([
        encodeRecord(key(1, a!), a!),
        encodeRecord(key(2, b!), b!),
        encodeRecord(key(3, c!), c!),
        encodeRecord(key(4, d!), d!),
        torn.subarray(0, torn.length - 10), // the append the crash cut: never acknowledged
      ]),
    );
    await putFile(root, key(2, b!), b!); // created before the crash
    await putFile(root, key(3, c!), c!.subarray(0, 100)); // written, never flushed: cut short
    await putFile(root, key(4, d!), Buffer.concat([d!.subarray(0, 50), Buffer.alloc(d!.length - 50)])); // zero-filled

    const store = new FsEvidenceStore(root, { journal: true });
    const report = await store.open();
    expect(report.journal).toBe('active');
    expect(report.replay).toMatchObject({ segments: 1, records: 4, created: 1, repaired: 2, problems: [] });
    for (const [seq, bytes] of [[1, a], [2, b], [3, c], [4, d]] as const) expect(await read(root, key(seq, bytes!))).toEqual(bytes);
    expect(await read(root, key(5, e!))).toBeNull();
    expect(await keys(store)).toEqual([1, 2, 3, 4].map((s) => key(s, [a, b, c, d][s - 1]!)).sort());
    // The segment is gone, and new segments are numbered after it.
    expect(await readdir(path.join(root, '.journal'))).toEqual(['owner.json']);
    await store.putIfAbsent(key(5, e!), e!);
    expect(await readdir(path.join(root, '.journal'))).toEqual([segmentName(8), 'owner.json']);
    await store.close();
    expect(await readdir(path.join(root, '.journal'))).toEqual([]);
  });

  it('keeps both a stored file and a journal record with other bytes, and reports them on every start', async () => {
    const root = await freshRoot();
    const a = body(1);
    const b = body(2);
    await writeSegment(root, 1, Buffer.concat([encodeRecord(key(1, a), a), encodeRecord(key(2, b), b)]));
    const other = Buffer.from('{"something":"else entirely, and longer than the record itself ....................................................................................................................................................................................................................................................................................................."}');
    await putFile(root, key(1, a), other);

    const first = await new FsEvidenceStore(root).open();
    expect(first.journal).toBe('off');
    expect(first.replay?.problems).toEqual([{ segment: segmentName(1), key: key(1, a), problem: 'conflict' }]);
    expect(await read(root, key(1, a))).toEqual(other); // the stored file is never changed
    expect(await read(root, key(2, b))).toEqual(b); // the rest of the segment is applied
    expect(await readFile(path.join(root, '.journal', `${segmentName(1)}.conflict`))).toEqual(
      Buffer.concat([encodeRecord(key(1, a), a), encodeRecord(key(2, b), b)]),
    );
    const again = await new FsEvidenceStore(root).open();
    expect(again.replay).toMatchObject({ segments: 0, problems: [{ segment: `${segmentName(1)}.conflict`, problem: 'conflict' }] });
  });

  it('applies the records before a corrupted one and keeps the segment as *.corrupt', async () => {
    const root = await freshRoot();
    const [a, b, c] = [1, 2, 3].map((s) => body(s));
    const bad = encodeRecord(key(2, b!), b!);
    bad.writeUInt8(bad.readUInt8(bad.length - 1) ^ 0x01, bad.length - 1); // one flipped bit, with a whole record after it: not a torn append
    await writeSegment(root, 1, Buffer.concat([encodeRecord(key(1, a!), a!), bad, encodeRecord(key(3, c!), c!)]));
    const report = await new FsEvidenceStore(root).open();
    expect(report.replay?.problems).toEqual([{ segment: segmentName(1), problem: 'corrupt' }]);
    expect(await read(root, key(1, a!))).toEqual(a);
    expect(await read(root, key(2, b!))).toBeNull();
    expect(await readdir(path.join(root, '.journal'))).toEqual([`${segmentName(1)}.corrupt`]);
  });

  it('replays only records whose checksum holds, at every crash point in the bytes (property)', async () => {
    const bodies = [1, 2, 3, 4, 5, 6].map((s) => body(s, 40 * s));
    const records = bodies.map((b, i) => encodeRecord(key(i + 1, b), b));
    const whole = Buffer.concat(records);
    const ends = records.map((_, i) => records.slice(0, i + 1).reduce((n, r) => n + r.length, 0));
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: whole.length }), fc.integer({ min: 0, max: 600 }), async (cut, zeros) => {
        // A crash keeps a prefix of the appends; the file system may add zeros where data never landed.
        const root = await freshRoot();
        await writeSegment(root, 1, Buffer.concat([whole.subarray(0, cut), Buffer.alloc(zeros)]));
        const store = new FsEvidenceStore(root);
        const report = await store.open();
        const complete = ends.filter((end) => end <= cut).length;
        expect(report.replay).toMatchObject({ records: complete, created: complete, problems: [] });
        expect(await keys(store)).toEqual(bodies.slice(0, complete).map((b, i) => key(i + 1, b)).sort());
        for (const [i, b] of bodies.slice(0, complete).entries()) expect(await read(root, key(i + 1, b))).toEqual(b);
        expect(await readdir(path.join(root, '.journal'))).toEqual([]);
        await rm(path.dirname(root), { recursive: true, force: true });
      }),
      { numRuns: 60 },
    );
  });
});

describe('the live journal', () => {
  it('writes segments that replay into the same files when the files were lost', async () => {
    const root = await freshRoot();
    // Never checkpointed while the test runs: the segment is what a crash would leave.
    const store = new FsEvidenceStore(root, { journal: true, segmentMs: 60_000, settleMs: 60_000 });
    await store.open();
    const bodies = Array.from({ length: 40 }, (_, i) => body(i + 1, 10 * i));
    const results = await Promise.all(bodies.map((b, i) => store.putIfAbsent(key(i + 1, b), b)));
    expect(results.every((r) => r === 'created')).toBe(true);
    // A copy of the folder, as a crash leaves it: files are made after the acknowledgement, in
    // the background, so some may be missing already; a third more are lost here on purpose.
    const copy = path.join(path.dirname(root), 'after-crash');
    // (Files still being written beside their names are not copied: a crash leaves those as litter.)
    await cp(root, copy, { recursive: true, filter: (src) => !path.basename(src).startsWith('.tmp-') });
    await unlink(path.join(copy, '.journal', 'owner.json')); // the crashed process's, gone with it
    for (const [i, b] of bodies.entries()) if (i % 3 === 0) await rm(path.join(copy, ...key(i + 1, b).split('/')), { force: true });
    const replayed = await new FsEvidenceStore(copy).open();
    expect(replayed.replay).toMatchObject({ records: 40, repaired: 0, problems: [] });
    expect(replayed.replay!.created).toBeGreaterThanOrEqual(14);
    for (const [i, b] of bodies.entries()) expect(await read(copy, key(i + 1, b))).toEqual(b);
    await store.close();
  });

  it('lets one of concurrent puts of an evidence key create it, also while it is only in the journal', async () => {
    const root = await freshRoot();
    const store = new FsEvidenceStore(root, { journal: true });
    await store.open();
    const k = key(1, body(1));
    const values = Array.from({ length: 6 }, (_, i) => body(100 + i));
    const results = await Promise.all(values.map((v) => store.putIfAbsent(k, v)));
    expect(results.filter((r) => r === 'created')).toHaveLength(1);
    expect(await store.get(k)).toEqual(values[results.indexOf('created')]);
    expect(await store.putIfAbsent(k, body(999))).toBe('exists');
    await store.close();
  });

  it('writes per file while a live process owns the journal, and takes over one a dead process left', async () => {
    const root = await freshRoot();
    await mkdir(path.join(root, '.journal'), { recursive: true });
    const owner = path.join(root, '.journal', 'owner.json');
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
    try {
      await writeFile(owner, JSON.stringify({ pid: child.pid, boot: null, start: null }));
      const held = new FsEvidenceStore(root, { journal: true });
      expect(await held.open()).toEqual({ journal: 'held', replay: null });
      const b = body(1);
      expect(await held.putIfAbsent(key(1, b), b)).toBe('created');
      expect(await readdir(path.join(root, '.journal'))).toEqual(['owner.json']); // nothing journaled
    } finally {
      const exited = once(child, 'exit');
      child.kill('SIGKILL');
      await exited;
    }
    const b = body(2);
    await writeSegment(root, 3, encodeRecord(key(2, b), b));
    const next = new FsEvidenceStore(root, { journal: true });
    expect(await next.open()).toMatchObject({ journal: 'active', replay: { created: 1 } });
    expect(JSON.parse(await readFile(owner, 'utf8'))).toMatchObject({ pid: process.pid });
    await next.close();
    await expect(readFile(owner)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('answers get and list for acknowledged entries whose files are not made yet', async () => {
    const root = await freshRoot();
    const store = new FsEvidenceStore(root, { journal: true });
    await store.open();
    const bodies = Array.from({ length: 30 }, (_, i) => body(i + 1));
    const all = bodies.map((b, i) => key(i + 1, b));
    await Promise.all(bodies.map((b, i) => store.putIfAbsent(all[i]!, b)));
    // Right after the acknowledgement most files are still queued (two are made at a time).
    const notYetOnDisk = all.filter((k) => !existsSync(path.join(root, ...k.split('/'))));
    expect(notYetOnDisk.length).toBeGreaterThan(0);
    expect(await keys(store, 'evidence/')).toEqual([...all].sort());
    for (const [i, k] of all.entries()) expect(await store.get(k)).toEqual(bodies[i]);
    // Read many at once (the audit export's way), files not yet made come from the journal too.
    expect(await store.getMany(all)).toEqual(bodies);
    expect(await store.putIfAbsent(notYetOnDisk[0]!, Buffer.from('other bytes'))).toBe('exists');
    await store.close();
    for (const [i, k] of all.entries()) expect(await read(root, k)).toEqual(bodies[i]);
  });

  it('keeps an acknowledged entry readable while the disk refuses its file, however long, and makes the file once it can', async (ctx) => {
    const root = await freshRoot();
    // The evidence folder on a tmpfs of its own, filled up below; the journal keeps the disk's space.
    const evidence = path.join(root, 'evidence');
    await mkdir(evidence, { recursive: true });
    const missing = mountTmpfs(evidence, '1m');
    if (missing !== null) {
      console.warn(`full-disk journal test skipped: ${missing}`);
      ctx.skip(missing);
    }
    const events: MaterialiseEvent[] = [];
    let tries = 0;
    // Retried every millisecond, not every second: 250 tries, about four minutes of a collector's retrying.
    const retryDelayMs = (attempt: number) => {
      tries = Math.max(tries, attempt);
      return 1;
    };
    const store = new FsEvidenceStore(root, { journal: true, segmentMs: 60_000, settleMs: 60_000, retryDelayMs });
    store.onMaterialise = (e) => events.push(e);
    const filler = path.join(evidence, 'filler');
    try {
      await store.open();
      const first = body(1);
      await store.putIfAbsent(key(1, first), first); // its folder exists before the disk fills
      await until(() => store.pendingFiles() === 0);
      await fillUp(filler);

      const bodies = [2, 3, 4, 5].map((s) => body(s));
      const late = bodies.map((b, i) => key(i + 2, b));
      expect(await Promise.all(bodies.map((b, i) => store.putIfAbsent(late[i]!, b)))).toEqual(['created', 'created', 'created', 'created']);
      await until(() => tries >= 250);
      // Long past the point where a file used to be given up: every entry still answers.
      expect(late.filter((k) => existsSync(path.join(root, ...k.split('/'))))).toEqual([]);
      expect(store.pendingFiles()).toBe(4);
      expect(await keys(store, `${path.posix.dirname(key(1, first))}/`)).toEqual([key(1, first), ...late].sort());
      for (const [i, k] of late.entries()) expect(await store.get(k)).toEqual(bodies[i]);
      expect(await store.getMany([key(1, first), ...late, key(9, body(9))])).toEqual([first, ...bodies, null]);
      expect(await store.putIfAbsent(late[0]!, Buffer.from('other bytes'))).toBe('exists');

      await rm(filler);
      await until(() => store.pendingFiles() === 0);
      for (const [i, k] of late.entries()) expect(await read(root, k)).toEqual(bodies[i]);
      // Told once when a file first failed and once when it was made, never per try.
      const failing = events.filter((e) => e.state === 'failing');
      const made = events.filter((e) => e.state === 'made');
      expect(failing.length).toBeGreaterThan(0);
      expect(failing.map((e) => e.key).sort()).toEqual(made.map((e) => e.key).sort());
      expect(new Set(failing.map((e) => e.key)).size).toBe(failing.length);
      for (const e of failing) expect(e).toMatchObject({ err: { code: 'ENOSPC' } });
      expect(Math.max(...made.map((e) => (e.state === 'made' ? e.attempts : 0)))).toBeGreaterThanOrEqual(250);
      await store.close();
      expect(await readdir(path.join(root, '.journal'))).toEqual([]);
    } finally {
      await store.close();
      await rm(filler, { force: true });
      unmountTmpfs(evidence);
    }
  });

  it('never lists the journal, and refuses keys inside it', async () => {
    const root = await freshRoot();
    const store = new FsEvidenceStore(root, { journal: true, segmentMs: 60_000 });
    await store.open();
    const b = body(1);
    await store.putIfAbsent(key(1, b), b);
    expect(await keys(store)).toEqual([key(1, b)]);
    await expect(store.putIfAbsent('.journal/owner.json', Buffer.from('{}'))).rejects.toMatchObject({ code: 'COL_ERR_INTERNAL' });
    await expect(store.get(`.journal/${segmentName(1)}`)).rejects.toMatchObject({ code: 'COL_ERR_INTERNAL' });
    await store.close();
  });
});
