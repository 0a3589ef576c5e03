// One agent cycle: observe, sign each finding into the chain, spool it durably, then deliver.
import type { KeyObject } from 'node:crypto';
import type { Logger } from 'pino';
import { CHECKS, allowListFor } from '../checks/index.js';
import { RealHostIO, currentPlatform } from '../checks/host-io.js';
import { runChecks } from '../checks/runner.js';
import type { Finding } from '../checks/types.js';
import {
  PAYLOAD_TYPE_STATEMENT,
  buildStatement,
  policySchema,
  resultsResponseSchema,
  sha256Hex,
  signEnvelope,
  type IngestOutcome,
  type Policy,
} from '../collector/contract.js';
import { AgentError } from './errors.js';
import { CollectorClient, describeError, type HttpOptions } from './http.js';
import { Spool } from './spool.js';
import type { ChainHead, Identity, StateDir } from './state.js';
import { AGENT_VERSION } from './version.js';

export interface CycleOptions {
  root?: string;
  http?: HttpOptions;
  log: Logger;
}

export interface Delivery {
  seq: number;
  outcome: IngestOutcome['outcome'] | 'kept' | 'quarantined';
  detail?: string;
}

export interface CycleResult {
  findings: { finding: Finding; seq: number }[];
  deliveries: Delivery[];
  policyVersion: number | null;
}

/** Fetches the current policy, falling back to the cached one when the collector is away. */
async function refreshPolicy(state: StateDir, client: CollectorClient, log: Logger): Promise<Policy | null> {
  try {
    const res = await client.send('GET', '/v1/policy');
    if (res.status === 200) {
      const policy = policySchema.parse(JSON.parse(res.body.toString('utf8')));
      await state.writePolicy(policy);
      return policy;
    }
    log.warn({ status: res.status }, 'policy fetch refused; using the cached policy');
  } catch (err) {
    log.warn({ err }, 'policy fetch failed; using the cached policy');
  }
  return state.policy();
}

/** After a crash between spooling and writing chain.json, the spool is ahead: trust the spool. */
async function chainHead(state: StateDir, spool: Spool): Promise<ChainHead> {
  const chain = await state.chain();
  const newest = await spool.newest();
  return newest !== null && newest.seq > chain.seq ? { seq: newest.seq, head: newest.hash } : chain;
}

export async function signAndSpool(
  state: StateDir,
  spool: Spool,
  identity: Identity,
  key: KeyObject,
  findings: readonly Finding[],
  policyVersion: number | null,
): Promise<{ finding: Finding; seq: number }[]> {
  let chain = await chainHead(state, spool);
  const out: { finding: Finding; seq: number }[] = [];
  for (const finding of findings) {
    const seq = chain.seq + 1;
    const statement = buildStatement({
      agentId: identity.agentId,
      agentVersion: AGENT_VERSION,
      host: identity.host,
      seq,
      prev: chain.head,
      collectedAt: finding.collectedAt,
      policyVersion,
      finding,
    });
    const bytes = signEnvelope(PAYLOAD_TYPE_STATEMENT, Buffer.from(JSON.stringify(statement)), key, identity.agentId);
    // Spool first, then the chain head: a crash in between is repaired from the spool on restart.
    await spool.put(seq, bytes);
    chain = { seq, head: sha256Hex(bytes) };
    await state.writeChain(chain);
    out.push({ finding, seq });
  }
  return out;
}

/** Sends spooled envelopes in order. Acknowledged ones leave the spool; refused ones go to quarantine. */
export async function deliver(spool: Spool, client: CollectorClient, log: Logger): Promise<Delivery[]> {
  const deliveries: Delivery[] = [];
  for (const entry of await spool.list()) {
    const bytes = await spool.read(entry);
    let res;
    try {
      res = await client.send('POST', '/v1/results', bytes, { 'content-type': 'application/json' });
    } catch (err) {
      log.warn({ err, seq: entry.seq }, 'collector unreachable; results stay in the spool');
      deliveries.push({ seq: entry.seq, outcome: 'kept', detail: (err as Error).message });
      break;
    }
    if (res.status === 200) {
      const body = resultsResponseSchema.parse(JSON.parse(res.body.toString('utf8')));
      await spool.remove(entry);
      deliveries.push({ seq: entry.seq, outcome: body.results[0]?.outcome ?? 'accepted' });
    } else if (res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429) {
      const where = await spool.quarantine(entry);
      log.error({ seq: entry.seq, status: res.status, error: describeError(res), file: where }, 'collector refused a result; moved to quarantine');
      deliveries.push({ seq: entry.seq, outcome: 'quarantined', detail: describeError(res) });
    } else {
      log.warn({ seq: entry.seq, status: res.status }, 'collector not ready; results stay in the spool');
      deliveries.push({ seq: entry.seq, outcome: 'kept', detail: describeError(res) });
      break;
    }
  }
  return deliveries;
}

export async function runOnce(state: StateDir, opts: CycleOptions): Promise<CycleResult> {
  const { identity, key } = await state.requireIdentity();
  const client = new CollectorClient(identity.collectorUrl, opts.http);
  try {
    const policy = await refreshPolicy(state, client, opts.log);
    const checks = CHECKS.filter((c) => policy === null || policy.checks[c.id]?.enabled === true);
    const configs = Object.fromEntries(checks.map((c) => [c.id, policy?.checks[c.id]?.config ?? {}]));
    const io = new RealHostIO({ ...(opts.root === undefined ? {} : { root: opts.root }), allowedCommands: allowListFor(checks, currentPlatform()) });
    const findings = await runChecks(checks, { io, configs });
    const spool = new Spool(state.spoolDir, state.quarantineDir);
    const signed = await signAndSpool(state, spool, identity, key, findings, policy?.version ?? null);
    const deliveries = await deliver(spool, client, opts.log);
    return { findings: signed, deliveries, policyVersion: policy?.version ?? null };
  } finally {
    await client.close();
  }
}

export function assertDelivered(result: CycleResult): void {
  const kept = result.deliveries.filter((d) => d.outcome === 'kept' || d.outcome === 'quarantined');
  if (kept.length > 0) {
    throw new AgentError('AGT_ERR_DELIVERY', `${kept.length} result(s) not acknowledged: ${kept[0]?.detail ?? ''}`);
  }
}
