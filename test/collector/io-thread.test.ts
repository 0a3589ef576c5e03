// The filesystem store's I/O thread, on real files: what each request does on disk, and how a
// failure comes back (as a result or a rejection, never a hang).
import { closeSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { IoThread } from '../../collector/io-thread.js';

let dir: string;
let io: IoThread;
beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'vcm-io-'));
  io = new IoThread();
});
afterEach(async () => {
  await io.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('the store I/O thread', () => {
  it('makes a file once, create-only, and leaves no temporary name behind', async () => {
    const file = path.join(dir, 'a.json');
    expect(await io.make(file, Buffer.from('first'))).toBe('made');
    expect(await io.make(file, Buffer.from('second'))).toBe('exists');
    expect(readFileSync(file, 'utf8')).toBe('first');
    expect(readdirSync(dir)).toEqual(['a.json']);
  });

  it('answers a file it cannot make with the system error code', async () => {
    const result = await io.make(path.join(dir, 'missing', 'a.json'), Buffer.from('x'));
    expect(result).toMatchObject({ code: 'ENOENT' });
    expect(readdirSync(dir)).toEqual([]);
  });

  it('makes many files in order of request, each with its own bytes', async () => {
    const names = Array.from({ length: 300 }, (_, i) => path.join(dir, `f${i}`));
    const results = await Promise.all(names.map((f, i) => io.make(f, Buffer.from(`file ${i}`))));
    expect(results.every((r) => r === 'made')).toBe(true);
    expect(names.map((f) => readFileSync(f, 'utf8'))).toEqual(names.map((_, i) => `file ${i}`));
  });

  it('appends at the position it is given', async () => {
    const file = path.join(dir, 'segment');
    writeFileSync(file, 'abc');
    const fd = openSync(file, 'r+');
    try {
      await io.append(fd, Buffer.from('XY'), 3);
      await io.append(fd, Buffer.from('Z'), 1);
    } finally {
      closeSync(fd);
    }
    expect(readFileSync(file, 'utf8')).toBe('aZcXY');
  });

  it('rejects an append it could not write, saying so', async () => {
    const fd = openSync(path.join(dir, 'ro'), 'w');
    closeSync(fd);
    const readOnly = openSync(path.join(dir, 'ro'), 'r');
    try {
      await expect(io.append(readOnly, Buffer.from('x'), 0)).rejects.toMatchObject({ code: 'EBADF', stage: 'write' });
    } finally {
      closeSync(readOnly);
    }
  });

  it('flushes files and folders, skips those that are gone, and rejects one it cannot open', async () => {
    const file = path.join(dir, 'f');
    writeFileSync(file, 'x');
    await expect(io.flush([file, path.join(dir, 'gone')], [dir, path.join(dir, 'gone-dir')])).resolves.toBeUndefined();
    await expect(io.flush([path.join(file, 'under-a-file')], [])).rejects.toMatchObject({ code: 'ENOTDIR' });
  });

  it('starts a new thread after close, for work asked later', async () => {
    await io.close();
    expect(await io.make(path.join(dir, 'after'), Buffer.from('x'))).toBe('made');
  });
});
