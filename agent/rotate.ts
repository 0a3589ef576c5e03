// `vcm-agent rotate-key`: replace the host key without losing the chain. The collector learns the
// new key from a request signed by the current key and by the new one; results up to the agent's
// chain head at that moment (afterSeq) stay the old key's, later ones are the new key's.
//
// Every step is ordered so that a crash at any point leaves the agent on a key the collector
// knows for the next sequence number, or stops it signing until it can tell:
//
//   new key → agent-ed25519.next.pem (0600, fsync)            a crash here: the stray file is removed
//   signed request → rotation.json (fsync)                     from here on the rotation is pending:
//                                                               nothing is signed until it is settled
//   send; the collector answers 200 (applied, or a retry of the same bytes)
//   rename next.pem over agent-ed25519.pem (fsync dir)         the switch: the old private key is gone
//   identity.json records the generation, rotation.json goes
//
// A pending rotation is settled by sending the same bytes again (the collector answers a retry
// as success without writing twice): by `rotate-key`, `run --once` or the daemon at start. A
// refusal (4xx) abandons it and keeps the current key; no answer keeps it pending.
// Results already signed and spooled keep their old-key signatures: their sequence numbers are
// at most afterSeq, so the collector still takes them under the old key.
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { readFile, rename } from 'node:fs/promises';
import type { Logger } from 'pino';
import {
  PAYLOAD_TYPE_ROTATE_KEY,
  agentIdFor,
  rotateKeyResponseSchema,
  signEnvelopeBy,
  type RotateKeyPayload,
} from '../collector/contract.js';
import { AgentError, isAgentError } from './errors.js';
import { fsyncDir, removeDurably, writeFileDurable } from './fs-util.js';
import { describeError, errorOf, jsonBody, type CollectorClient } from './http.js';
import { Ledger } from './ledger.js';
import { keyInUse, type PendingRotation, type StateDir } from './state.js';

export type RotationOutcome =
  | { outcome: 'none' }
  | { outcome: 'rotated'; generation: number; keyId: string; afterSeq: number; duplicate: boolean }
  | { outcome: 'abandoned'; generation: number; code: string; message: string };

export function fingerprint(privateKey: KeyObject): string {
  return agentIdFor(createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }).toString());
}

/** The switch, once the collector knows the new key. Each step is safe to repeat after a crash. */
async function switchKey(state: StateDir, pending: PendingRotation, rotatedAt: string): Promise<void> {
  const current = await readFile(state.keyFile, 'utf8');
  if (fingerprint(createPrivateKey(current)) !== pending.keyId) {
    try {
      await rename(state.nextKeyFile, state.keyFile);
    } catch (err) {
      throw new AgentError('AGT_ERR_STATE', `the new key ${state.nextKeyFile} of the pending rotation is gone`, { cause: err });
    }
    await fsyncDir(state.dir);
  }
  const identity = await state.identity();
  if (identity === null) throw new AgentError('AGT_ERR_NOT_ENROLLED', `no enrollment in ${state.dir}`);
  if (identity.key?.generation !== pending.generation) {
    await state.writeIdentity({ ...identity, key: { generation: pending.generation, keyId: pending.keyId, afterSeq: pending.afterSeq, rotatedAt } });
  }
  await removeDurably(state.rotationFile);
}

async function abandon(state: StateDir): Promise<void> {
  // The request first: without it the new key file is a leftover, removed at the next settle.
  await removeDurably(state.rotationFile);
  await removeDurably(state.nextKeyFile);
}

/**
 * Finishes whatever rotation a previous run left. Throws AGT_ERR_ROTATION_PENDING while the
 * collector cannot answer: until then neither key is known to be right for the next seq.
 */
export async function settleRotation(state: StateDir, client: CollectorClient, log: Logger): Promise<RotationOutcome> {
  const pending = await state.pendingRotation();
  if (pending === null) {
    // A crash after the new key was written but before the request was: it was never sent.
    await removeDurably(state.nextKeyFile);
    return { outcome: 'none' };
  }
  const current = createPrivateKey(await readFile(state.keyFile, 'utf8'));
  if (fingerprint(current) === pending.keyId) {
    // The switch happened; a crash cut the bookkeeping after it short.
    await switchKey(state, pending, pending.createdAt);
    return { outcome: 'rotated', generation: pending.generation, keyId: pending.keyId, afterSeq: pending.afterSeq, duplicate: true };
  }
  let res;
  try {
    res = await client.send('POST', '/v1/keys/rotate', Buffer.from(pending.request, 'utf8'), { 'content-type': 'application/json' });
  } catch (err) {
    if (!isAgentError(err)) throw err;
    throw new AgentError('AGT_ERR_ROTATION_PENDING', `key rotation to generation ${pending.generation} not settled: ${err.message}`, { cause: err });
  }
  if (res.status === 200) {
    // A body that is not JSON at all is as unexpected as one of the wrong shape: the rotation stays
    // pending and the same bytes go again.
    const answer = rotateKeyResponseSchema.safeParse(jsonBody(res));
    if (!answer.success || answer.data.keyId !== pending.keyId || answer.data.generation !== pending.generation) {
      throw new AgentError('AGT_ERR_ROTATION_PENDING', 'the collector answered the key rotation with an unexpected body');
    }
    await switchKey(state, pending, answer.data.rotatedAt);
    log.info({ generation: pending.generation, keyId: pending.keyId, afterSeq: pending.afterSeq, duplicate: answer.data.duplicate }, 'key rotated');
    return { outcome: 'rotated', generation: pending.generation, keyId: pending.keyId, afterSeq: pending.afterSeq, duplicate: answer.data.duplicate };
  }
  if (res.status >= 500 || res.status === 408 || res.status === 429) {
    throw new AgentError('AGT_ERR_ROTATION_PENDING', `key rotation to generation ${pending.generation} not settled: ${describeError(res)}`);
  }
  const e = errorOf(res);
  await abandon(state);
  log.error({ generation: pending.generation, status: res.status, code: e.code, error: e.message }, 'collector refused the key rotation; keeping the current key');
  return { outcome: 'abandoned', generation: pending.generation, code: e.code, message: e.message };
}

/**
 * Rotates the host key. The caller holds the state lock, so no envelope is signed meanwhile.
 * A rotation left pending by a crash is finished instead of starting another.
 */
export async function rotateKey(state: StateDir, client: CollectorClient, log: Logger, now: () => Date = () => new Date()): Promise<RotationOutcome> {
  const earlier = await settleRotation(state, client, log);
  if (earlier.outcome !== 'none') return earlier;
  const { identity, key } = await state.requireIdentity();
  const inUse = keyInUse(identity);
  if (fingerprint(key) !== inUse.keyId) throw new AgentError('AGT_ERR_STATE', `${state.keyFile} is not the key identity.json names`);
  // The chain head, as the ledger recovers it (the spool may be ahead of chain.json).
  const ledger = await Ledger.open(state, identity, key, { log });
  const afterSeq = ledger.head.seq;

  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const keyId = agentIdFor(publicKeyPem);
  await writeFileDurable(state.nextKeyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), 0o600);
  const payload: RotateKeyPayload = {
    agentId: identity.agentId,
    generation: inUse.generation + 1,
    previousKeyId: inUse.keyId,
    publicKey: publicKeyPem,
    afterSeq,
    requestedAt: now().toISOString(),
    nonce: randomBytes(16).toString('hex'),
  };
  const request = signEnvelopeBy(PAYLOAD_TYPE_ROTATE_KEY, Buffer.from(JSON.stringify(payload)), [
    { key, keyid: inUse.keyId },
    { key: privateKey, keyid: keyId },
  ]);
  const pending: PendingRotation = { generation: payload.generation, keyId, afterSeq, request: request.toString('utf8'), createdAt: payload.requestedAt };
  await writeFileDurable(state.rotationFile, `${JSON.stringify(pending)}\n`, 0o600);
  log.info({ generation: payload.generation, keyId, afterSeq }, 'key rotation requested');
  return settleRotation(state, client, log);
}
