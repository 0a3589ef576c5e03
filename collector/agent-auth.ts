// Requests an agent signs: reads of its own vendor's data (its policy, its log's checkpoint).
// The agent's current key signs the method, the exact target and the time (collector/contract.ts
// agentAuthorization), so the answer can be vendor-specific without any token.
import { verify as edVerify } from 'node:crypto';
import { AGENT_AUTH_RE, agentRequestMessage } from './contract.js';
import { CollectorError } from './errors.js';
import type { AgentRegistry, RegisteredAgent } from './registry.js';

export interface AgentAuthDeps {
  registry: AgentRegistry;
  now: () => Date;
  clockSkewSeconds: number;
}

/** The agent a signed request comes from; COL_ERR_UNAUTHORIZED (or COL_ERR_REVOKED) otherwise. */
export async function signedAgent(deps: AgentAuthDeps, method: string, target: string, authorization: string | undefined): Promise<RegisteredAgent> {
  const m = AGENT_AUTH_RE.exec(authorization ?? '');
  if (m === null) throw new CollectorError('COL_ERR_UNAUTHORIZED', 'sign the request as the agent (VCM-Agent authorization)');
  const [, agentId = '', created = '', sig = ''] = m;
  if (Math.abs(Number(created) - deps.now().getTime() / 1000) > deps.clockSkewSeconds) throw new CollectorError('COL_ERR_UNAUTHORIZED', 'the signed request is too old or in the future');
  const agent = await deps.registry.get(agentId);
  const key = agent?.keys.at(-1)?.key;
  if (agent === undefined || key === undefined || !edVerify(null, agentRequestMessage(method, target, Number(created)), key, Buffer.from(sig, 'base64'))) {
    throw new CollectorError('COL_ERR_UNAUTHORIZED', 'the request signature does not verify');
  }
  if (agent.revocation !== null) throw new CollectorError('COL_ERR_REVOKED');
  return agent;
}
