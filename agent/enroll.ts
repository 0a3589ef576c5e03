// `vcm-agent enroll`: make the host key here, prove possession to the collector, keep the answer.
import { createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { arch, hostname } from 'node:os';
import path from 'node:path';
import { currentPlatform } from '../checks/host-io.js';
import {
  PAYLOAD_TYPE_ENROLL,
  agentIdFor,
  enrollResponseSchema,
  keyFingerprint,
  sha256Hex,
  verifyAnswer,
  signEnvelope,
  type EnrollPayload,
  type HostInfo,
  type Policy,
} from '../collector/contract.js';
import { AgentError } from './errors.js';
import { CollectorClient, describeError, jsonBody, type HttpOptions } from './http.js';
import type { Identity, StateDir } from './state.js';
import { refuseLocalOnly } from './trust.js';
import { AGENT_VERSION } from './version.js';

export function hostInfo(name?: string): HostInfo {
  return { hostname: name ?? hostname(), os: currentPlatform(), arch: arch() };
}

export async function enrollAgent(
  state: StateDir,
  opts: {
    collectorUrl: string;
    token: string;
    hostname?: string;
    http?: HttpOptions;
    /** The collector key's fingerprint (vcm-collector key fingerprint), obtained out of band. */
    collectorFingerprint?: string;
  },
): Promise<Identity> {
  const client = new CollectorClient(opts.collectorUrl, opts.http);
  try {
    await state.ensure();
    if ((await state.identity()) !== null) {
      throw new AgentError('AGT_ERR_ALREADY_ENROLLED', `${state.dir} is already enrolled; remove it or choose another --state-dir`);
    }
    // With a fingerprint, the collector proves its key before the token is spent.
    if (opts.collectorFingerprint !== undefined) await proveFingerprint(client, opts.collectorFingerprint);
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const agentId = agentIdFor(publicKeyPem);
    const host = hostInfo(opts.hostname);
    const payload: EnrollPayload = {
      publicKey: publicKeyPem,
      host,
      agentVersion: AGENT_VERSION,
      tokenSha256: sha256Hex(opts.token),
      requestedAt: new Date().toISOString(),
    };
    const body = signEnvelope(PAYLOAD_TYPE_ENROLL, Buffer.from(JSON.stringify(payload)), privateKey, agentId);
    const res = await client.send('POST', '/v1/enroll', body, {
      'content-type': 'application/json',
      authorization: `Bearer ${opts.token}`,
    });
    if (res.status !== 201) throw new AgentError('AGT_ERR_ENROLL_REJECTED', describeError(res));
    const answer = enrollResponseSchema.safeParse(JSON.parse(res.body.toString('utf8')));
    if (!answer.success || answer.data.agentId !== agentId) {
      throw new AgentError('AGT_ERR_ENROLL_REJECTED', 'the collector answered with an unexpected body');
    }
    // The key the agent pins from now on: the answer must be signed with it over this request's
    // nonce, and match the fingerprint given out of band when there is one.
    let collectorKey: KeyObject;
    try {
      collectorKey = createPublicKey(answer.data.collectorPublicKey);
    } catch {
      throw new AgentError('AGT_ERR_ENROLL_REJECTED', 'the collector answered with a key that is not a public key');
    }
    const proof = res.proof;
    if (proof?.signature === undefined || !verifyAnswer(proof.binding, proof.signature, collectorKey)) {
      throw new AgentError('AGT_ERR_COLLECTOR_UNVERIFIED', `${client.base.origin} did not sign its enrollment answer with the key it gave; nothing was kept`);
    }
    const fingerprint = keyFingerprint(collectorKey);
    if (opts.collectorFingerprint !== undefined && opts.collectorFingerprint.toLowerCase() !== fingerprint) {
      throw new AgentError('AGT_ERR_COLLECTOR_UNVERIFIED', `the collector's key has fingerprint ${fingerprint}, not ${opts.collectorFingerprint}; nothing was kept`);
    }
    // The key is written before the identity: an identity file always has its key beside it.
    await state.writeKey(privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
    const identity: Identity = {
      collectorUrl: client.base.toString().replace(/\/$/, ''),
      agentId,
      vendor: answer.data.vendor,
      host,
      collectorPublicKey: answer.data.collectorPublicKey,
      ...(opts.http?.caFile === undefined ? {} : { caFile: path.resolve(opts.http.caFile) }),
      enrolledAt: new Date().toISOString(),
    };
    // A policy that names a local-only setting is not cached: the first refresh refuses it again
    // and the status says why (AGT_ERR_POLICY_LOCAL_ONLY). The enrollment itself stands.
    if (acceptable(answer.data.policy)) await state.writePolicy(answer.data.policy);
    await state.writeIdentity(identity);
    return identity;
  } finally {
    await client.close();
  }
}

function proveFingerprint(client: CollectorClient, expected: string): Promise<void> {
  return client.send('GET', '/v1/hello').then((res) => {
    const pem = (jsonBody(res) as { collectorPublicKey?: unknown } | undefined)?.collectorPublicKey;
    let key: KeyObject | undefined;
    try {
      key = typeof pem === 'string' ? createPublicKey(pem) : undefined;
    } catch {
      key = undefined;
    }
    const proof = res.proof;
    if (res.status !== 200 || key === undefined || proof?.signature === undefined || !verifyAnswer(proof.binding, proof.signature, key)) {
      throw new AgentError('AGT_ERR_COLLECTOR_UNVERIFIED', `${client.base.origin} did not prove a collector key (GET /v1/hello: HTTP ${res.status}); the token was not sent`);
    }
    const fingerprint = keyFingerprint(key);
    if (fingerprint !== expected.toLowerCase()) {
      throw new AgentError('AGT_ERR_COLLECTOR_UNVERIFIED', `the collector at ${client.base.origin} holds the key ${fingerprint}, not ${expected}; the token was not sent`);
    }
  });
}

function acceptable(policy: Policy): boolean {
  try {
    refuseLocalOnly(policy);
    return true;
  } catch {
    return false;
  }
}
