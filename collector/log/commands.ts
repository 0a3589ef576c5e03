// What `vcm-collector log checkpoint|proof|verify-consistency` do, apart from their options:
// read a vendor's log from a store (a stopped or running collector's), and verify two signed
// checkpoints against each other with a consistency proof, offline if the proof is at hand.
import { createPublicKey, type KeyObject } from 'node:crypto';
import { CollectorError } from '../errors.js';
import type { EvidenceStore } from '../store.js';
import { verifyConsistency } from './merkle.js';
import { ed25519KeyId, openNote, parseCheckpoint, type Checkpoint } from './note.js';
import { VendorLog, type StoredCheckpoint } from './vendor-log.js';

/** A vendor's log as the store holds it, for reading (no appends: the running collector writes). */
export async function readVendorLog(store: EvidenceStore, vendor: string, key: KeyObject): Promise<VendorLog> {
  const l = new VendorLog({ vendor, origin: '', store, key });
  await l.load();
  if (l.size === 0 && l.checkpoints.length === 0) throw new CollectorError('COL_ERR_NOT_FOUND', `the store holds no log for ${vendor}`);
  return l;
}

export interface ProofAnswer {
  index?: number;
  size?: number;
  from?: number;
  to?: number;
  hashes: string[];
}

export function localCheckpoint(l: VendorLog, q: { size?: number; at?: Date }): StoredCheckpoint {
  const c = q.size === undefined && q.at === undefined ? l.latest : l.checkpointFor(q);
  if (c === undefined) throw new CollectorError('COL_ERR_NOT_FOUND', 'no checkpoint at or before that');
  return c;
}

/** A proof to a signed size (a checkpoint's, so that the root it leads to is signed): inclusion, or consistency with `from`. */
export function signedProof(l: VendorLog, q: { index?: number; size?: number; from?: number; to?: number }): ProofAnswer {
  const signed = (n: number | undefined) => {
    const size = n ?? l.latest?.size ?? 0;
    if (l.checkpointFor({ size })?.size !== size) throw new CollectorError('COL_ERR_LOG_RANGE', `no checkpoint was issued at size ${size}`);
    return size;
  };
  if (q.from !== undefined) {
    const to = signed(q.to);
    if (q.from < 1 || q.from > to) throw new CollectorError('COL_ERR_LOG_RANGE', `from must be between 1 and ${to}`);
    return { from: q.from, to, hashes: l.tree.consistencyProof(q.from, to).map((h) => h.toString('base64')) };
  }
  const size = signed(q.size);
  if (q.index === undefined || q.index >= size) throw new CollectorError('COL_ERR_LOG_RANGE', `give an index below ${size}`);
  return { index: q.index, size, hashes: l.tree.inclusionProof(q.index, size).map((h) => h.toString('base64')) };
}

/** Opens a checkpoint note signed by the collector key under its own origin. */
export function openCheckpoint(note: string, collectorKey: KeyObject): Checkpoint {
  // The key name is the origin, the note's first line; what is parsed is what was verified.
  const origin = note.slice(0, Math.max(0, note.indexOf('\n')));
  const opened = openNote(note, [{ name: origin, keyId: ed25519KeyId(origin, collectorKey), publicKey: collectorKey }]);
  return parseCheckpoint(opened.text);
}

export interface ConsistencyVerdict {
  origin: string;
  from: number;
  to: number;
}

/**
 * Both checkpoints verify under the collector key, name the same log, and the proof shows the
 * newer tree holds the older one unchanged. Throws COL_ERR_LOG_INCONSISTENT otherwise.
 */
export function checkConsistency(oldNote: string, newNote: string, proofB64: readonly string[], collectorKeyPem: string): ConsistencyVerdict {
  const key = createPublicKey(collectorKeyPem);
  const a = openCheckpoint(oldNote, key);
  const b = openCheckpoint(newNote, key);
  if (a.origin !== b.origin) throw new CollectorError('COL_ERR_LOG_INCONSISTENT', `the checkpoints are of two logs: ${a.origin} and ${b.origin}`);
  if (a.size > b.size) throw new CollectorError('COL_ERR_LOG_INCONSISTENT', `the first checkpoint (${a.size}) is larger than the second (${b.size})`);
  const proof = proofB64.map((h) => Buffer.from(h, 'base64'));
  const ok = a.size === 0 ? proof.length === 0 : verifyConsistency(a.size, b.size, proof, a.rootHash, b.rootHash);
  if (!ok) throw new CollectorError('COL_ERR_LOG_INCONSISTENT', `the log at size ${b.size} does not extend the log at size ${a.size}: history was rewritten, or the proof is wrong`);
  return { origin: a.origin, from: a.size, to: b.size };
}
