// The collector's own Ed25519 key: returned to agents at enrollment (it signs checkpoints later).
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdir, open, readFile } from 'node:fs/promises';
import path from 'node:path';

export interface CollectorIdentity {
  privateKey: KeyObject;
  publicKeyPem: string;
}

export async function loadOrCreateIdentity(file: string): Promise<CollectorIdentity> {
  let pem: string;
  try {
    pem = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
    const { privateKey } = generateKeyPairSync('ed25519');
    pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    try {
      const fh = await open(file, 'wx', 0o600);
      try {
        await fh.writeFile(pem);
        await fh.sync();
      } finally {
        await fh.close();
      }
    } catch (e) {
      // Another process created it first: use theirs.
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      pem = await readFile(file, 'utf8');
    }
  }
  const privateKey = createPrivateKey(pem);
  return { privateKey, publicKeyPem: createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }).toString() };
}
