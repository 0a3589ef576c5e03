// The filesystem store's read thread (collector/read-thread.ts), on real files: whole files in
// the order asked, absent ones as null, and a failure as the system's error, after which the
// thread still reads.
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ReadThread } from '../../collector/read-thread.js';
import { FsEvidenceStore } from '../../collector/store.js';

/** Each file as its length and SHA-256 (a 3 MiB Buffer compared element by element is slow). */
const digest = (files: (Buffer | null)[]) => files.map((b) => (b === null ? null : `${b.length}:${createHash('sha256').update(b).digest('hex')}`));

let dir: string;
let reader: ReadThread;
beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'vcm-read-'));
  reader = new ReadThread();
});
afterEach(async () => {
  await reader.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('the store read thread', () => {
  it('gives each file whole and in order: small, empty, larger than its buffer, and absent ones as null', async () => {
    const big = Buffer.alloc(3 * 1024 * 1024 + 17);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 0xff;
    const files: [string, Buffer | null][] = [
      ['a.json', Buffer.from('{"a":1}')],
      ['empty', Buffer.alloc(0)],
      ['big.bin', big],
      ['missing', null],
      ['a.json/under-a-file', null], // ENOTDIR: cannot exist
      ['b.json', Buffer.from('{"b":2}\n')],
    ];
    for (const [name, bytes] of files) if (bytes !== null) writeFileSync(path.join(dir, name), bytes);
    const got = await reader.read(files.map(([name]) => path.join(dir, name)));
    expect(digest(got)).toEqual(digest(files.map(([, bytes]) => bytes)));
    // Twice over, in one request: the same bytes again (the thread's buffer is reused between files).
    const twice = await reader.read([...files, ...files].map(([name]) => path.join(dir, name)));
    expect(digest(twice)).toEqual(digest([...files, ...files].map(([, bytes]) => bytes)));
  });

  it('answers many requests at once, each with its own files', async () => {
    for (let i = 0; i < 600; i++) writeFileSync(path.join(dir, `f${i}`), `file ${i}`);
    const requests = Array.from({ length: 6 }, (_, r) => Array.from({ length: 100 }, (_, i) => path.join(dir, `f${r * 100 + i}`)));
    const answers = await Promise.all(requests.map((paths) => reader.read(paths)));
    answers.forEach((files, r) => expect(files.map((b) => b?.toString())).toEqual(requests[r]!.map((_, i) => `file ${r * 100 + i}`)));
  });

  it('rejects a request with the system error code when a file cannot be read, and reads on after it', async () => {
    mkdirSync(path.join(dir, 'a-folder'));
    writeFileSync(path.join(dir, 'ok'), 'ok');
    await expect(reader.read([path.join(dir, 'ok'), path.join(dir, 'a-folder')])).rejects.toMatchObject({ code: 'EISDIR' });
    expect((await reader.read([path.join(dir, 'ok')]))[0]?.toString()).toBe('ok');
  });

  it('is what the filesystem store reads many keys with: the same bytes as get, null where absent, and a store error for a folder', async () => {
    const store = new FsEvidenceStore(path.join(dir, 'data'));
    await store.open();
    try {
      const keys = Array.from({ length: 40 }, (_, i) => `evidence/vendor=acme/date=2026-12-0${1 + (i % 3)}/agent=${'a'.repeat(64)}/${String(i).padStart(12, '0')}.dsse.json`);
      for (const [i, k] of keys.entries()) if (i % 5 !== 0) await store.putIfAbsent(k, Buffer.from(`{"n":${i}}`));
      const one = await Promise.all(keys.map((k) => store.get(k)));
      expect(one.filter((b) => b === null)).toHaveLength(8);
      expect(await store.getMany(keys)).toEqual(one);
      expect(await store.getMany([])).toEqual([]);
      await expect(store.getMany(['evidence/vendor=acme'])).rejects.toMatchObject({ code: 'COL_ERR_STORE_UNAVAILABLE' });
      await expect(store.getMany(['../outside'])).rejects.toMatchObject({ code: 'COL_ERR_INTERNAL' });
    } finally {
      await store.close();
    }
  });
});
