// The shared EvidenceStore contract against the filesystem store (the embedded default).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll } from 'vitest';
import { FsEvidenceStore } from '../../collector/store.js';
import { evidenceStoreContract } from './store-contract.js';

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

evidenceStoreContract('filesystem', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'vcm-store-fs-'));
  dirs.push(dir);
  return { store: new FsEvidenceStore(path.join(dir, 'data')) };
});
