// Test agents that speak the wire contract directly, to drive the collector through edge cases.
import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import type { Finding } from '../../checks/types.js';
import {
  PAYLOAD_TYPE_ENROLL,
  PAYLOAD_TYPE_ROTATE_KEY,
  PAYLOAD_TYPE_STATEMENT,
  agentIdFor,
  buildSpoolDropStatement,
  buildStatement,
  sha256Hex,
  signEnvelope,
  signEnvelopeBy,
  type EnrollPayload,
  type RotateKeyPayload,
} from '../../collector/contract.js';
import type { EvidenceStore } from '../../collector/store.js';
import { createToken } from '../../collector/tokens.js';

export interface TestAgent {
  agentId: string;
  key: KeyObject;
  publicKeyPem: string;
  hostname: string;
}

export function newKey(): { key: KeyObject; publicKeyPem: string; agentId: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  return { key: privateKey, publicKeyPem, agentId: agentIdFor(publicKeyPem) };
}

export function enrollBody(k: { key: KeyObject; publicKeyPem: string; agentId: string }, token: string, hostname = 'host-1'): Buffer {
  const payload: EnrollPayload = {
    publicKey: k.publicKeyPem,
    host: { hostname, os: 'linux', arch: 'x64' },
    agentVersion: '0.1.0',
    tokenSha256: sha256Hex(token),
    requestedAt: new Date().toISOString(),
  };
  return signEnvelope(PAYLOAD_TYPE_ENROLL, Buffer.from(JSON.stringify(payload)), k.key, k.agentId);
}

export async function enrollTestAgent(url: string, store: EvidenceStore, vendor = 'acme', hostname = 'host-1'): Promise<TestAgent> {
  const { token } = await createToken(store, { vendor });
  const k = newKey();
  const res = await fetch(`${url}/v1/enroll`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: enrollBody(k, token, hostname),
  });
  if (res.status !== 201) throw new Error(`enroll failed: ${res.status} ${await res.text()}`);
  return { ...k, hostname };
}

/** The time of fixtures without one of their own: now, unless a test dates them (dateFixturesAt). */
let fixtureTime: string | null = null;
const fixtureMs = (): number => (fixtureTime === null ? Date.now() : Date.parse(fixtureTime));

/**
 * Tests whose collector runs on a clock of their own date their fixtures by it: every finding()
 * and dropEnvelope() without a time of its own is then at `iso` (null: now again). Such a test
 * enrolls its agents on its clock before `iso`, as the collector refuses results dated before the
 * agent enrolled.
 */
export function dateFixturesAt(iso: string | null): void {
  fixtureTime = iso;
}

/** A passing open_ports finding, collected now or at the time dateFixturesAt set. */
export function finding(overrides: Partial<Finding> = {}): Finding {
  return {
    check: 'open_ports',
    checkVersion: '1.0.0',
    platform: 'linux',
    status: 'pass',
    reasons: [],
    facts: { listeners: [], missingSources: [], processScan: { pids: 0, denied: 0, vanished: 0 } },
    collectedAt: new Date(fixtureMs()).toISOString(),
    durationMs: 1,
    ...overrides,
  };
}

/** Signs a result into the agent's chain; `prev` is the hash of the previous envelope's bytes. */
export function resultEnvelope(agent: TestAgent, seq: number, prev: string | null, f: Finding = finding()): Buffer {
  const statement = buildStatement({
    agentId: agent.agentId,
    agentVersion: '0.1.0',
    host: { hostname: agent.hostname, os: 'linux', arch: 'x64' },
    seq,
    prev,
    collectedAt: f.collectedAt,
    policyVersion: 1,
    finding: f,
  });
  return signEnvelope(PAYLOAD_TYPE_STATEMENT, Buffer.from(JSON.stringify(statement)), agent.key, agent.agentId);
}

/** A chain of `n` envelopes, each linked to the one before. */
export function chain(agent: TestAgent, n: number, f: (seq: number) => Finding = () => finding()): Buffer[] {
  const out: Buffer[] = [];
  let prev: string | null = null;
  for (let seq = 1; seq <= n; seq++) {
    const bytes = resultEnvelope(agent, seq, prev, f(seq));
    out.push(bytes);
    prev = sha256Hex(bytes);
  }
  return out;
}

/** A signed spool-drop record: results `firstSeq..lastSeq` were dropped before delivery. */
export function dropEnvelope(agent: TestAgent, seq: number, prev: string | null, firstSeq: number, lastSeq: number): Buffer {
  // The record is made half an hour after the dropped results began: now, when fixtures are not dated.
  const at = fixtureMs() - (fixtureTime === null ? 30 * 60_000 : 0);
  const statement = buildSpoolDropStatement({
    agentId: agent.agentId,
    agentVersion: '0.1.0',
    host: { hostname: agent.hostname, os: 'linux', arch: 'x64' },
    seq,
    prev,
    collectedAt: new Date(at + 30 * 60_000).toISOString(),
    policyVersion: 1,
    dropped: {
      count: lastSeq - firstSeq + 1,
      firstSeq,
      lastSeq,
      checks: ['open_ports'],
      from: new Date(at).toISOString(),
      to: new Date(at + 20 * 60_000).toISOString(),
      reason: 'spool_full_count',
    },
  });
  return signEnvelope(PAYLOAD_TYPE_STATEMENT, Buffer.from(JSON.stringify(statement)), agent.key, agent.agentId);
}

export type TestKey = ReturnType<typeof newKey>;

/**
 * A key rotation request for `agent`: signed by `current` (its key now, generation
 * `generation - 1`) and by `next` as proof of possession. `proofBy`/`signedBy` sign in their place
 * (tampering), `payload` overrides fields of the signed request.
 */
export function rotationBody(
  agent: Pick<TestAgent, 'agentId'>,
  current: TestKey,
  next: TestKey,
  o: { generation: number; afterSeq: number; signedBy?: KeyObject; proofBy?: KeyObject; payload?: Partial<RotateKeyPayload> },
): Buffer {
  const payload: RotateKeyPayload = {
    agentId: agent.agentId,
    generation: o.generation,
    previousKeyId: current.agentId,
    publicKey: next.publicKeyPem,
    afterSeq: o.afterSeq,
    requestedAt: new Date().toISOString(),
    nonce: randomBytes(16).toString('hex'),
    ...o.payload,
  };
  return signEnvelopeBy(PAYLOAD_TYPE_ROTATE_KEY, Buffer.from(JSON.stringify(payload)), [
    { key: o.signedBy ?? current.key, keyid: current.agentId },
    { key: o.proofBy ?? next.key, keyid: next.agentId },
  ]);
}
