// The shared EvidenceStore contract against the filesystem store (the embedded default): once as
// the CLI opens it (each write flushed per file), once as the collector does (the journal's
// group commit for evidence).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, expect } from 'vitest';
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
