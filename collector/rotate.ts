// POST /v1/keys/rotate: an agent introduces its next key with a request signed by its current key
// and, as proof of possession, by the new key. The request names the point in the chain where the
// new key takes over (afterSeq), so that results the old key signed earlier still verify when they
// arrive late. Each rotation is one create-only key event in the registry; a retry of the same
// bytes is answered again without a second write.
import { createPublicKey, type KeyObject } from 'node:crypto';
import {
  DEFAULT_CLOCK_SKEW_SECONDS,
  PAYLOAD_TYPE_ROTATE_KEY,
  agentIdFor,
  encodeEnvelope,
  envelopeSchema,
  rotateKeyPayloadSchema,
  strictBase64,
  verifySignatureAt,
  type Envelope,
  type RotateKeyResponse,
} from './contract.js';
import { CollectorError } from './errors.js';
import { currentKey, type AgentRegistry, type KeyEvent, type RegisteredAgent } from './registry.js';
import type { CollectorState } from './state.js';
import { parseRequestJson as json } from './strict-json.js';

export const ROTATE_BODY_LIMIT_BYTES = 64 * 1024;

export interface RotateDeps {
  registry: AgentRegistry;
  state: CollectorState;
  now: () => Date;
  clockSkewSeconds?: number;
  /** Runs `work` under the agent's ingest lock, so that no result is judged against a key history in flux. */
  exclusive: <T>(agentId: string, work: () => Promise<T>) => Promise<T>;
}


function answer(agentId: string, event: KeyEvent, duplicate: boolean): RotateKeyResponse {
  return { agentId, generation: event.generation, keyId: event.keyId, afterSeq: event.afterSeq, rotatedAt: event.rotatedAt, duplicate };
}

/** Verifies a rotation request and records it; the answer says whether it was applied just now. */
export async function rotateKey(deps: RotateDeps, body: Buffer): Promise<RotateKeyResponse> {
  const env = envelopeSchema.safeParse(json(body));
  if (!env.success || env.data.payloadType !== PAYLOAD_TYPE_ROTATE_KEY) {
    throw new CollectorError('COL_ERR_MALFORMED', 'the body is not a signed key rotation request');
  }
  const request: Envelope = env.data;
  // Two signatures in compact canonical form: the stored request is then exactly the bytes
  // received, and a retry can be recognised by its bytes.
  if (request.signatures.length !== 2 || !body.equals(encodeEnvelope(request))) {
    throw new CollectorError('COL_ERR_MALFORMED', 'a rotation request has two signatures (current key, then new key) in canonical form');
  }
  const payloadBytes = strictBase64(request.payload);
  const parsed = rotateKeyPayloadSchema.safeParse(payloadBytes === null ? null : json(payloadBytes));
  if (!parsed.success) {
    throw new CollectorError('COL_ERR_SCHEMA', parsed.error.issues.slice(0, 3).map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
  }
  const payload = parsed.data;
  if ((await deps.registry.get(payload.agentId)) === undefined) throw new CollectorError('COL_ERR_UNKNOWN_AGENT');

  return deps.exclusive(payload.agentId, async () => {
    // Read again under the lock: a rotation or revocation that finished meanwhile counts.
    const agent = (await deps.registry.get(payload.agentId))!;
    if (agent.revocation !== null) throw new CollectorError('COL_ERR_REVOKED', 'a revoked agent cannot rotate its key');
    const current = currentKey(agent);
    const latest = agent.events.at(-1);
    if (latest !== undefined && payload.generation === latest.generation && encodeEnvelope(latest.request).equals(body)) {
      return answer(agent.record.agentId, latest, true);
    }
    if (payload.generation !== current.generation + 1 || payload.previousKeyId !== current.keyId) {
      throw new CollectorError('COL_ERR_ROTATION_REPLAY', `the agent's current key is generation ${current.generation}; a rotation must build on it`);
    }
    if (!verifySignatureAt(request, 0, current.key)) throw new CollectorError('COL_ERR_BAD_SIGNATURE', 'the request is not signed by the agent\'s current key');
    const newKey = parseEd25519(payload.publicKey);
    if (!verifySignatureAt(request, 1, newKey)) throw new CollectorError('COL_ERR_BAD_KEY_PROOF');
    const publicKey = newKey.export({ type: 'spki', format: 'pem' }).toString();
    const keyId = agentIdFor(publicKey);
    await assertNewKey(deps, agent, keyId);
    const head = deps.state.agents.get(agent.record.agentId)?.headSeq ?? 0;
    const floor = Math.max(head, current.afterSeq);
    if (payload.afterSeq < floor) {
      throw new CollectorError('COL_ERR_ROTATION_BEHIND', `afterSeq ${payload.afterSeq} is below ${floor}, the chain head the collector holds for this agent`);
    }
    const skew = (deps.clockSkewSeconds ?? DEFAULT_CLOCK_SKEW_SECONDS) * 1000;
    if (Date.parse(payload.requestedAt) > deps.now().getTime() + skew) throw new CollectorError('COL_ERR_FUTURE', 'the request is dated in the future beyond the allowed skew');

    const event: KeyEvent = { generation: payload.generation, keyId, publicKey, afterSeq: payload.afterSeq, rotatedAt: deps.now().toISOString(), request };
    const { put, agent: after } = await deps.registry.addKeyEvent(agent.record.agentId, event);
    if (put === 'created') return answer(agent.record.agentId, event, false);
    // Another process wrote this generation first: the same request is a retry, any other a conflict.
    const stored = after?.events.find((e) => e.generation === payload.generation);
    if (stored !== undefined && encodeEnvelope(stored.request).equals(body)) return answer(agent.record.agentId, stored, true);
    throw new CollectorError('COL_ERR_ROTATION_REPLAY', `generation ${payload.generation} was rotated to by another request`);
  });
}

function parseEd25519(pem: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch {
    throw new CollectorError('COL_ERR_SCHEMA', 'publicKey is not a PEM public key');
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new CollectorError('COL_ERR_SCHEMA', 'publicKey must be Ed25519');
  return key;
}

/** A key is used by one agent, once: not an earlier key of this agent, nor any other agent's. */
async function assertNewKey(deps: RotateDeps, agent: RegisteredAgent, keyId: string): Promise<void> {
  if (agent.keys.some((k) => k.keyId === keyId)) throw new CollectorError('COL_ERR_KEY_REUSED', 'the new key is one this agent used before');
  if (deps.registry.keyOwner(keyId) !== undefined || (await deps.registry.get(keyId)) !== undefined) {
    throw new CollectorError('COL_ERR_KEY_REUSED');
  }
}
