// The shared EvidenceStore contract against the filesystem store (the embedded default): once as
// the CLI opens it (each write flushed per file), once as the collector does (the journal's
// group commit for evidence).
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FsEvidenceStore } from '../../collector/store.js';
import { evidenceStoreContract } from './store-contract.js';

const dirs: string[] = [];
const stores: FsEvidenceStore[] = [];
afterAll(async () => {
  await Promise.all(stores.map((s) => s.close()));
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

evidenceStoreContract('filesystem', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'vcm-store-fs-'));
  dirs.push(dir);
  return { store: new FsEvidenceStore(path.join(dir, 'data')) };
});

evidenceStoreContract('filesystem with the journal', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'vcm-store-fsj-'));
  dirs.push(dir);
  const store = new FsEvidenceStore(path.join(dir, 'data'), { journal: true });
  expect((await store.open()).journal).toBe('active');
  stores.push(store);
  return { store };
});

describe('opening a filesystem store it cannot use', () => {
  it('is COL_ERR_STORE_UNAVAILABLE naming the store and the path that failed, at the root and at the journal', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'vcm-store-fs-open-'));
    dirs.push(dir);
    // Tests run as root, which no permission stops: a path under a regular file fails instead (ENOTDIR).
    const file = path.join(dir, 'a-file');
    await writeFile(file, '');
    const underFile = path.join(file, 'data');
    await expect(new FsEvidenceStore(underFile, { journal: true }).open()).rejects.toMatchObject({
      code: 'COL_ERR_STORE_UNAVAILABLE',
      message: expect.stringContaining(`cannot open the evidence store at ${underFile}: ENOTDIR`),
    });
    const root = path.join(dir, 'data');
    await mkdir(root);
    await writeFile(path.join(root, '.journal'), '');
    await expect(new FsEvidenceStore(root, { journal: true }).open()).rejects.toMatchObject({
      code: 'COL_ERR_STORE_UNAVAILABLE',
      message: expect.stringContaining(path.join(root, '.journal')),
    });
  });
});
