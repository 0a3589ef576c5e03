// POST /v1/enroll: a one-time token plus a proof that the agent holds the key it registers.
import { createPublicKey, type KeyObject } from 'node:crypto';
import {
  PAYLOAD_TYPE_ENROLL,
  agentIdFor,
  enrollPayloadSchema,
  envelopeSchema,
  sha256Hex,
  strictBase64,
  verifyEnvelope,
  type EnrollPayload,
  type EnrollResponse,
  type Policy,
} from './contract.js';
import { CollectorError } from './errors.js';
import { parseRequestJson as json } from './strict-json.js';
import type { AgentRegistry } from './registry.js';
import type { EvidenceStore } from './store.js';
import { consumeToken } from './tokens.js';

export interface EnrollDeps {
  store: EvidenceStore;
  registry: AgentRegistry;
  /** The effective policy for a vendor's agents. */
  policyFor: (vendor: string) => Policy;
  collectorPublicKeyPem: string;
  now: () => Date;
}


export function bearerToken(header: string | undefined): string {
  const m = /^Bearer ([^\s]+)$/.exec(header ?? '');
  if (m?.[1] === undefined) throw new CollectorError('COL_ERR_TOKEN_INVALID', 'an enrollment token is required (Authorization: Bearer …)');
  return m[1];
}

export async function enroll(deps: EnrollDeps, body: Buffer, authorization: string | undefined): Promise<EnrollResponse> {
  const token = bearerToken(authorization);
  const env = envelopeSchema.safeParse(json(body));
  if (!env.success || env.data.payloadType !== PAYLOAD_TYPE_ENROLL) {
    throw new CollectorError('COL_ERR_MALFORMED', 'the body is not a signed enrollment request');
  }
  const payloadBytes = strictBase64(env.data.payload);
  const payload = enrollPayloadSchema.safeParse(payloadBytes === null ? null : json(payloadBytes));
  if (!payload.success) throw new CollectorError('COL_ERR_SCHEMA', 'the enrollment request does not match the schema');
  let key: KeyObject;
  // createPublicKey also takes a private key's PEM (and derives the public key): refuse one, a
  // private key has no business in an enrollment.
  if (/PRIVATE KEY/.test(payload.data.publicKey)) throw new CollectorError('COL_ERR_SCHEMA', 'publicKey is a private key; send the public key only');
  try {
    key = createPublicKey(payload.data.publicKey);
  } catch {
    throw new CollectorError('COL_ERR_SCHEMA', 'publicKey is not a PEM public key');
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new CollectorError('COL_ERR_SCHEMA', 'publicKey must be Ed25519');
  if (!verifyEnvelope(env.data, key)) throw new CollectorError('COL_ERR_BAD_SIGNATURE', 'the request is not signed by the key it registers');
  if (payload.data.tokenSha256 !== sha256Hex(token)) throw new CollectorError('COL_ERR_BAD_SIGNATURE', 'the proof was made for another token');

  const agentId = agentIdFor(payload.data.publicKey);
  // One enrollment of a key at a time: a second one waits, then finds the key taken and keeps its
  // token. Without this, concurrent enrollments of one key each spend a token and all but one fail.
  return oneAtATime(agentId, () => register(deps, token, agentId, key, payload.data));
}

const enrolling = new Map<string, Promise<unknown>>();

function oneAtATime<T>(agentId: string, work: () => Promise<T>): Promise<T> {
  const before = enrolling.get(agentId) ?? Promise.resolve();
  const mine = before.catch(() => undefined).then(work);
  enrolling.set(agentId, mine);
  void mine.catch(() => undefined).finally(() => {
    if (enrolling.get(agentId) === mine) enrolling.delete(agentId);
  });
  return mine;
}

async function register(deps: EnrollDeps, token: string, agentId: string, key: KeyObject, payload: EnrollPayload): Promise<EnrollResponse> {
  // A key some agent rotated to is taken too.
  if ((await deps.registry.get(agentId)) !== undefined || deps.registry.keyOwner(agentId) !== undefined) throw new CollectorError('COL_ERR_AGENT_EXISTS');
  const now = deps.now();
  const tokenRecord = await consumeToken(deps.store, token, now);
  const registered = await deps.registry.register({
    agentId,
    vendor: tokenRecord.vendor,
    host: payload.host,
    agentVersion: payload.agentVersion,
    publicKey: key.export({ type: 'spki', format: 'pem' }).toString(),
    enrolledAt: now.toISOString(),
    revokedAt: null,
  });
  if (!registered) throw new CollectorError('COL_ERR_AGENT_EXISTS');
  return { agentId, vendor: tokenRecord.vendor, collectorPublicKey: deps.collectorPublicKeyPem, policy: deps.policyFor(tokenRecord.vendor) };
}
