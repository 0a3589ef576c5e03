// `vcm-collector verify` against hostile archives, built here with tar-stream and zlib: each ends
// with exit 2 and a clear reason, nothing is written outside the folder it unpacks into, and
// memory stays bounded (a compression bomb stops at the ratio limit, not at the disk's end).
import { existsSync } from 'node:fs';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { unpackTarGz } from '../../../collector/audit/tar.js';
import { COLLECTOR_CLI, runCli, tempDir } from '../../helpers/processes.js';

let dir: Awaited<ReturnType<typeof tempDir>>;

beforeAll(async () => {
  dir = await tempDir('hostile');
});
afterAll(async () => {
  await dir?.cleanup();
});

type Member = { header: Partial<tar.Header> & { name: string }; body?: Buffer };

async function tarOf(members: Member[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    pack.on('data', (c: unknown) => chunks.push(c as Buffer));
    pack.on('end', resolve);
    pack.on('error', reject);
  });
  for (const m of members) {
    await new Promise<void>((resolve, reject) => pack.entry(m.header, m.body ?? Buffer.alloc(0), (err) => (err ? reject(err) : resolve())));
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

const file = (name: string, body = 'x'): Member => ({ header: { name, size: Buffer.byteLength(body), type: 'file' }, body: Buffer.from(body) });

async function verifyFile(name: string, bytes: Buffer): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const f = path.join(dir.dir, name);
  await writeFile(f, bytes);
  return runCli(COLLECTOR_CLI, ['verify', f]);
}

describe('verify refuses hostile archives with exit 2', () => {
  const cases: [string, () => Promise<Buffer>, RegExp][] = [
    ['truncated gzip', async () => gzipSync(await tarOf([file('manifest.json', '{}')])).subarray(0, 30), /not a readable tar\.gz/],
    ['garbled gzip', async () => Buffer.from('this is not gzip at all, not even close'), /not a readable tar\.gz/],
    ['truncated tar', async () => gzipSync((await tarOf([file('manifest.json', 'x'.repeat(4000))])).subarray(0, 1024)), /not a readable tar\.gz/],
    ['parent traversal', async () => gzipSync(await tarOf([file('../escaped.txt')])), /unsafe name/],
    ['nested traversal', async () => gzipSync(await tarOf([file('evidence/../../escaped.txt')])), /unsafe name/],
    ['absolute name', async () => gzipSync(await tarOf([file('/tmp/vcm-absolute-escape.txt')])), /unsafe name/],
    ['symlink', async () => gzipSync(await tarOf([{ header: { name: 'manifest.json', type: 'symlink', linkname: '/etc/passwd' } }])), /symlink, not a regular file/],
    ['hard link', async () => gzipSync(await tarOf([{ header: { name: 'manifest.json', type: 'link', linkname: '/etc/passwd' } }])), /link, not a regular file/],
    ['device file', async () => gzipSync(await tarOf([{ header: { name: 'dev', type: 'character-device', devmajor: 1, devminor: 3 } }])), /character-device, not a regular file/],
    ['duplicate member', async () => gzipSync(await tarOf([file('manifest.json', 'a'), file('manifest.json', 'b')])), /appears twice/],
  ];
  for (const [name, make, reason] of cases) {
    it(name, async () => {
      const r = await verifyFile(`${name.replace(/ /g, '-')}.tar.gz`, await make());
      expect(r.code, r.stdout + r.stderr).toBe(2);
      expect(r.stdout).toMatch(/^UNUSABLE: /);
      expect(r.stdout).toMatch(reason);
      expect(r.stderr).not.toMatch(/at .*\.js:\d+/);
    });
  }

  it('a 10 GB declared size, refused from its header', async () => {
    // A header that claims 10 GB, and none of the bytes.
    const header = tar.pack();
    const chunks: Buffer[] = [];
    header.on('data', (c: unknown) => chunks.push(c as Buffer));
    const entry = header.entry({ name: 'log/entries.jsonl', size: 10 * 1024 ** 3, type: 'file' });
    entry.write(Buffer.alloc(512));
    await new Promise((r) => setTimeout(r, 50));
    const r = await verifyFile('huge.tar.gz', gzipSync(Buffer.concat(chunks)));
    expect(r.code).toBe(2);
    expect(r.stdout).toMatch(/declares 10737418240 bytes/);
  });

  it('nothing is written outside the target folder', async () => {
    expect(existsSync(path.join(dir.dir, 'escaped.txt'))).toBe(false);
    expect(existsSync(path.join(path.dirname(dir.dir), 'escaped.txt'))).toBe(false);
    expect(existsSync('/tmp/vcm-absolute-escape.txt')).toBe(false);
  });
});

describe('a compression bomb stops at the ratio limit, with bounded memory', () => {
  it('1 GiB of zeros in ~1 MiB of gzip is refused after at most 64 MiB unpacked', async () => {
    // Streamed: the bomb is made without holding it.
    const { createGzip } = await import('node:zlib');
    const { createWriteStream } = await import('node:fs');
    const { pipeline } = await import('node:stream/promises');
    const bomb = path.join(dir.dir, 'bomb.tar.gz');
    const pack = tar.pack();
    const writing = pipeline(pack, createGzip({ level: 9 }), createWriteStream(bomb));
    const size = 1024 ** 3;
    const entry = pack.entry({ name: 'log/entries.jsonl', size, type: 'file' });
    const zeros = Buffer.alloc(1 << 20);
    const feed = new PassThrough();
    feed.pipe(entry);
    for (let i = 0; i < size / zeros.length; i++) if (!feed.write(zeros)) await new Promise((r) => feed.once('drain', r));
    feed.end();
    await new Promise<void>((r) => entry.once('finish', () => r()));
    pack.finalize();
    await writing;
    const into = path.join(dir.dir, 'bomb-out');
    await mkdir(into);
    const before = process.memoryUsage().rss;
    await expect(unpackTarGz(bomb, into)).rejects.toThrow(/compression bomb/);
    expect(process.memoryUsage().rss - before).toBeLessThan(256 * 1024 ** 2);
    const r = await runCli(COLLECTOR_CLI, ['verify', bomb]);
    expect(r.code).toBe(2);
    expect(r.stdout).toMatch(/compression bomb/);
    // What was unpacked before the stop stays inside the folder, and is bounded.
    const { stat } = await import('node:fs/promises');
    const written = await stat(path.join(into, 'log/entries.jsonl')).then((s) => s.size, () => 0);
    expect(written).toBeLessThan(200 * 1024 ** 2);
    expect(await readdir(into)).toEqual(['log']);
  }, 120_000);
});
