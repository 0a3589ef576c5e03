// `vcm-agent enroll`: make the host key here, prove possession to the collector, keep the answer.
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { arch, hostname } from 'node:os';
import { currentPlatform } from '../checks/host-io.js';
import {
  PAYLOAD_TYPE_ENROLL,
  agentIdFor,
  enrollResponseSchema,
  sha256Hex,
  signEnvelope,
  type EnrollPayload,
  type HostInfo,
  type Policy,
} from '../collector/contract.js';
import { AgentError } from './errors.js';
import { CollectorClient, describeError, type HttpOptions } from './http.js';
import type { Identity, StateDir } from './state.js';
import { refuseLocalOnly } from './trust.js';
import { AGENT_VERSION } from './version.js';

export function hostInfo(name?: string): HostInfo {
  return { hostname: name ?? hostname(), os: currentPlatform(), arch: arch() };
}

export async function enrollAgent(
  state: StateDir,
  opts: { collectorUrl: string; token: string; hostname?: string; http?: HttpOptions },
): Promise<Identity> {
  const client = new CollectorClient(opts.collectorUrl, opts.http);
  try {
    await state.ensure();
    if ((await state.identity()) !== null) {
      throw new AgentError('AGT_ERR_ALREADY_ENROLLED', `${state.dir} is already enrolled; remove it or choose another --state-dir`);
    }
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
    createPublicKey(answer.data.collectorPublicKey);
    // The key is written before the identity: an identity file always has its key beside it.
    await state.writeKey(privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
    const identity: Identity = {
      collectorUrl: client.base.toString().replace(/\/$/, ''),
      agentId,
      vendor: answer.data.vendor,
      host,
      collectorPublicKey: answer.data.collectorPublicKey,
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

function acceptable(policy: Policy): boolean {
  try {
    refuseLocalOnly(policy);
    return true;
  } catch {
    return false;
  }
}
