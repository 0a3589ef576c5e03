// The collector's own Ed25519 key: returned to agents at enrollment (it signs checkpoints later).
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { writeFlushed } from './fs-util.js';

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
      await writeFlushed(file, pem, 0o600);
    } catch (e) {
      // Another process created it first: use theirs.
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      pem = await readFile(file, 'utf8');
    }
  }
  const privateKey = createPrivateKey(pem);
  return { privateKey, publicKeyPem: createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }).toString() };
}
