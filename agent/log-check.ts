// After deliveries the agent fetches its vendor log's newest checkpoint with a signed request,
// checks that the collector key it pinned at enrollment signed it, and that it extends the
// checkpoint it checked before (a consistency proof). The last good one is kept in the state
// directory (log-checkpoint.txt). A collector that shows a head inconsistent with an earlier one
// is logged with a stable code and reported, signed, in the agent's next envelope.
import { createPublicKey, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { agentAuthorization, agentCheckpointSchema, ed25519KeyId, openNote, parseCheckpoint, verifyConsistency } from '../collector/contract.js';
import { AgentError } from './errors.js';
import { writeFileAtomic } from './fs-util.js';
import { errorOf, type CollectorClient } from './http.js';
import type { Identity, StateDir } from './state.js';

export interface LogCheck {
  /** The checkpoint held after the check: the new one when it verified, else the old one. */
  checkpoint: { origin: string; size: number } | null;
  /** Set when the collector's answer was refused. */
  error: AgentError | null;
}

const fileOf = (state: StateDir) => path.join(state.dir, 'log-checkpoint.txt');

function opened(note: string, collectorKey: KeyObject): { origin: string; size: number; rootHash: Buffer } {
  const origin = note.slice(0, Math.max(0, note.indexOf('\n')));
  const text = openNote(note, [{ name: origin, keyId: ed25519KeyId(origin, collectorKey), publicKey: collectorKey }]).text;
  return parseCheckpoint(text);
}

/**
 * One check. `onInconsistent` records the signed event for the next envelope; it is called only
 * when the collector's key signed a head that does not extend the one held, which is evidence.
 */
export async function checkLog(
  state: StateDir,
  client: CollectorClient,
  identity: Identity,
  key: KeyObject,
  log: Logger,
  onInconsistent: (detail: Record<string, string | number>) => Promise<void>,
): Promise<LogCheck> {
  const collectorKey = createPublicKey(identity.collectorPublicKey);
  const heldNote = await readFile(fileOf(state), 'utf8').catch(() => null);
  const heldFull = heldNote === null ? null : opened(heldNote, collectorKey);
  const held = heldFull === null ? null : { origin: heldFull.origin, size: heldFull.size, rootHash: heldFull.rootHash };
  const kept = held === null ? null : { origin: held.origin, size: held.size };
  const target = `/v1/log/checkpoint?from=${held?.size ?? 0}`;
  const res = await client.send('GET', target, undefined, { authorization: agentAuthorization(identity.agentId, key, 'GET', target) });
  if (res.status === 404) return { checkpoint: kept, error: null };
  if (res.status !== 200) {
    const e = errorOf(res);
    return { checkpoint: kept, error: new AgentError('AGT_ERR_COLLECTOR_UNREACHABLE', `the log checkpoint was refused: ${e.code}: ${e.message}`) };
  }
  let answer;
  let shown;
  try {
    answer = agentCheckpointSchema.parse(JSON.parse(res.body.toString('utf8')));
    shown = opened(answer.checkpoint, collectorKey);
  } catch {
    const error = new AgentError('AGT_ERR_LOG_INCONSISTENT', 'the collector answered with a checkpoint its pinned key did not sign');
    log.error({ code: error.code }, 'log checkpoint refused');
    return { checkpoint: kept, error };
  }
  let why: string | null = null;
  if (held !== null) {
    if (shown.origin !== held.origin) why = `the checkpoint names the log ${shown.origin}, not ${held.origin}`;
    else if (shown.size < held.size) why = `the log shrank from ${held.size} to ${shown.size} entries`;
    else if (shown.size === held.size) why = shown.rootHash.equals(held.rootHash) ? null : `two different logs of ${held.size} entries`;
    else {
      const proof = answer.consistency;
      const ok =
        proof !== null &&
        proof.from === held.size &&
        proof.to === shown.size &&
        verifyConsistency(held.size, shown.size, proof.hashes.map((h) => Buffer.from(h, 'base64')), held.rootHash, shown.rootHash);
      if (!ok) why = `the log at ${shown.size} entries does not extend the one at ${held.size}`;
    }
  }
  if (why !== null) {
    const error = new AgentError('AGT_ERR_LOG_INCONSISTENT', why);
    log.error({ code: error.code, heldSize: held?.size, shownSize: shown.size }, 'the collector showed an inconsistent log');
    await onInconsistent({ origin: shown.origin, heldSize: held?.size ?? 0, shownSize: shown.size, reason: why });
    return { checkpoint: kept, error };
  }
  await writeFileAtomic(fileOf(state), answer.checkpoint, 0o644);
  return { checkpoint: { origin: shown.origin, size: shown.size }, error: null };
}
