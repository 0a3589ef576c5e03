// One agent cycle (`run --once`): refresh the policy, observe, sign each finding into the chain,
// spool it durably, then deliver. The daemon (daemon.ts) uses the same parts on a schedule.
import type { KeyObject } from 'node:crypto';
import type { Logger } from 'pino';
import { CHECKS, allowListFor } from '../checks/index.js';
import { RealHostIO, currentPlatform } from '../checks/host-io.js';
import { configFor, policyTimeouts, runChecks } from '../checks/runner.js';
import type { AnyCheck, Finding, IdentityProviderAccess } from '../checks/types.js';
import { agentAuthorization, policySchema, type Policy } from '../collector/contract.js';
import { identityProviderAccess, type AgentConfig } from './config.js';
import { deliveryPass, type Delivery, type PassResult } from './delivery.js';
import { AgentError, isAgentError } from './errors.js';
import { enrolledClient, errorOf, jsonBody, type CollectorClient, type HttpOptions } from './http.js';
import { Ledger, spoolForDelivery } from './ledger.js';
import type { Spool } from './spool.js';
import type { Identity, StateDir } from './state.js';
import { checkLog, type LogCheck } from './log-check.js';
import { StatusFile } from './status.js';
import { refuseLocalOnly, trustedCachedPolicy } from './trust.js';

export type { Delivery } from './delivery.js';

export interface CycleOptions {
  root?: string;
  http?: HttpOptions;
  log: Logger;
  /** Spool bounds and batch limits; defaults when absent. */
  config?: Pick<AgentConfig, 'spool' | 'delivery' | 'collectorUrl' | 'okta' | 'probes'>;
}

export interface CycleResult {
  findings: { finding: Finding; seq: number }[];
  deliveries: Delivery[];
  policyVersion: number | null;
  /** Results still in the spool after the pass (this cycle's and any earlier ones). */
  pending: number;
  /** Why the pass stopped with results in the spool, or null. */
  stopped: PassResult['stopped'];
}

/** What the agent's config lets probes reach (RealHostIO options). */
export function probeAccess(config: Pick<AgentConfig, 'probes'> | undefined): { allowedProbeUrls: readonly string[]; allowPrivateProbeTargets: boolean } {
  return { allowedProbeUrls: config?.probes.allowedUrls ?? [], allowPrivateProbeTargets: config?.probes.allowPrivateTargets ?? false };
}

export function httpOptions(config: Pick<AgentConfig, 'caFile' | 'tls' | 'delivery'>): HttpOptions {
  return {
    ...(config.caFile === undefined ? {} : { caFile: config.caFile }),
    ...(config.tls === undefined ? {} : { certFile: config.tls.certFile, keyFile: config.tls.keyFile }),
    keepAliveTimeoutMs: config.delivery.keepAliveSeconds * 1000,
    timeoutMs: config.delivery.timeoutSeconds * 1000,
  };
}

export interface PolicyFetch {
  policy: Policy | null;
  /** True when the collector answered with a policy that differs from the cached one. */
  changed: boolean;
  error: string | null;
}

/**
 * Fetches this agent's policy (its vendor's effective policy: `?agent=<id>`) and caches it; falls
 * back to the cached one when the collector is away.
 */
export async function refreshPolicy(state: StateDir, client: CollectorClient, agentId: string, key: KeyObject, log: Logger, signal?: AbortSignal): Promise<PolicyFetch> {
  const cached = await trustedCachedPolicy(state).catch(() => null);
  let error: string;
  try {
    // Signed: the collector answers its vendor's policy only to the agent itself.
    const target = `/v1/policy?agent=${encodeURIComponent(agentId)}`;
    const res = await client.send('GET', target, undefined, { authorization: agentAuthorization(agentId, key, 'GET', target) }, signal);
    if (res.status === 200) {
      const parsed = policySchema.safeParse(jsonBody(res));
      if (!parsed.success) {
        const first = parsed.error.issues[0];
        const where = first === undefined ? '' : ` (${first.path.join('.') || 'the document'}: ${first.message})`;
        throw new AgentError('AGT_ERR_POLICY_INVALID', `the collector's policy answer is not a valid policy${where}; the cached policy stays`);
      }
      const policy = refuseLocalOnly(parsed.data);
      const changed = JSON.stringify(policy) !== JSON.stringify(cached);
      if (changed) await state.writePolicy(policy);
      return { policy, changed, error: null };
    }
    const e = errorOf(res);
    error = `${e.code}: ${e.message}`;
    log.warn({ status: res.status, code: e.code }, 'policy fetch refused; using the cached policy');
  } catch (err) {
    if (isAgentError(err)) {
      error = `${err.code}: ${err.message}`;
      log.warn({ code: err.code, err: err.message }, 'policy refused; using the cached policy');
      return { policy: cached, changed: false, error };
    }
    error = `AGT_ERR_STATE: ${(err as Error).message}`;
    log.warn({ err: error }, 'policy fetch failed; using the cached policy');
  }
  return { policy: cached, changed: false, error };
}

/**
 * The checks this agent runs: enabled by the policy (all without one), and meant for this agent
 * (sso_coverage only where there is Okta access). A config the check refuses still runs, so that
 * the mistake shows as unknown.
 */
export function enabledChecks(policy: Policy | null, identityProvider?: IdentityProviderAccess): AnyCheck[] {
  return CHECKS.filter((c) => {
    if (policy !== null && policy.checks[c.id]?.enabled !== true) return false;
    if (c.runsHere === undefined) return true;
    const cfg = configFor(c, policy?.checks[c.id]?.config ?? {});
    return !cfg.ok || c.runsHere(cfg.config, identityProvider);
  });
}

/** Compatibility: signs findings into the chain with a ledger opened for the occasion. */
export async function signAndSpool(
  state: StateDir,
  spool: Spool,
  identity: Identity,
  key: KeyObject,
  findings: readonly Finding[],
  policyVersion: number | null,
  log?: Logger,
): Promise<{ finding: Finding; seq: number }[]> {
  const { default: pino } = await import('pino');
  const ledger = await Ledger.open(state, identity, key, { log: log ?? pino({ level: 'silent' }), spool });
  const { signed } = await ledger.append(findings, policyVersion);
  await ledger.flushHead();
  return signed;
}

/** Compatibility: one delivery pass over a bare spool. */
export async function deliver(spool: Spool, client: CollectorClient, log: Logger): Promise<Delivery[]> {
  return (await deliveryPass(spoolForDelivery(spool, log), client, { log })).deliveries;
}

/** The log check, never failing the cycle: a collector away or an old one is a note in the status. */
export async function checkLogSafely(state: StateDir, client: CollectorClient, identity: Identity, key: KeyObject, log: Logger, ledger: Ledger): Promise<LogCheck> {
  try {
    return await checkLog(state, client, identity, key, log, (detail) => ledger.recordEvent('log_inconsistent', detail));
  } catch (err) {
    return { checkpoint: null, error: isAgentError(err) ? err : new AgentError('AGT_ERR_COLLECTOR_UNREACHABLE', `the log checkpoint could not be fetched: ${(err as Error).message}`) };
  }
}

export async function recordLogCheck(status: StatusFile, check: LogCheck, now = new Date()): Promise<void> {
  await status.update((s) => {
    if (check.checkpoint !== null) s.log.checkpoint = { ...check.checkpoint, checkedAt: now.toISOString() };
    s.log.lastError = check.error === null ? null : `${check.error.code}: ${check.error.message}`;
    if (check.error?.code === 'AGT_ERR_LOG_INCONSISTENT') s.lastError = { at: now.toISOString(), code: check.error.code, message: check.error.message };
  });
}

export async function recordPass(status: StatusFile, pass: PassResult, retryInMs: number | null, now = new Date()): Promise<void> {
  await status.update((s) => {
    const d = s.delivery;
    d.lastAttemptAt = now.toISOString();
    d.accepted += pass.accepted;
    d.duplicates += pass.duplicates;
    d.quarantined += pass.quarantined;
    if (pass.lastReceipt !== null) s.log.lastReceipt = { ...pass.lastReceipt, at: now.toISOString() };
    if (pass.stopped === null) {
      d.lastOutcome = 'delivered';
      d.lastSuccessAt = now.toISOString();
      d.lastDetail = null;
      d.nextRetryAt = null;
    } else {
      d.lastOutcome = pass.accepted + pass.duplicates > 0 ? 'partial' : 'kept';
      d.lastDetail = pass.stopped.detail;
      d.nextRetryAt = retryInMs === null ? null : new Date(now.getTime() + retryInMs).toISOString();
      s.lastError = { at: now.toISOString(), code: 'AGT_ERR_DELIVERY', message: pass.stopped.detail };
    }
    if (pass.quarantined > 0) {
      const q = pass.deliveries.find((x) => x.outcome === 'quarantined');
      s.lastError = { at: now.toISOString(), code: 'AGT_ERR_DELIVERY', message: `quarantined seq ${q?.seq ?? '?'}: ${q?.detail ?? ''}` };
    }
  });
}

export async function runOnce(state: StateDir, opts: CycleOptions): Promise<CycleResult> {
  const enrolled = (await state.requireIdentity()).identity;
  const client = enrolledClient(enrolled, opts.http, opts.config?.collectorUrl);
  const status = await StatusFile.open(state);
  try {
    // A rotation a crash left pending decides which key signs next: settle it first.
    const { settleRotation } = await import('./rotate.js');
    await settleRotation(state, client, opts.log);
    const { identity, key } = await state.requireIdentity();
    const { policy, error } = await refreshPolicy(state, client, identity.agentId, key, opts.log);
    await status.update((s) => {
      s.policy = { version: policy?.version ?? null, fetchedAt: error === null ? new Date().toISOString() : s.policy.fetchedAt, lastFetchError: error };
    });
    const identityProvider = opts.config === undefined ? undefined : identityProviderAccess(opts.config);
    const checks = enabledChecks(policy, identityProvider);
    const configs = Object.fromEntries(checks.map((c) => [c.id, policy?.checks[c.id]?.config ?? {}]));
    const io = new RealHostIO({ ...(opts.root === undefined ? {} : { root: opts.root }), allowedCommands: allowListFor(checks, currentPlatform()), ...probeAccess(opts.config) });
    const findings = await runChecks(checks, { io, configs, timeoutsMs: policyTimeouts(policy?.checks), ...(identityProvider === undefined ? {} : { identityProvider }) });
    const ledger = await Ledger.open(state, identity, key, { log: opts.log, ...(opts.config === undefined ? {} : { bounds: opts.config.spool }) });
    const { signed, drop } = await ledger.append(findings, policy?.version ?? null);
    await status.update((s) => {
      for (const { finding, seq } of signed) {
        s.checks[finding.check] = {
          lastRunAt: finding.collectedAt,
          lastStatus: finding.status,
          lastSeq: seq,
          durationMs: finding.durationMs,
          cpuMs: null,
          intervalSeconds: policy?.checks[finding.check]?.intervalSeconds ?? null,
          nextRunAt: null,
        };
      }
      if (drop !== null) {
        s.drops.records++;
        s.drops.results += drop.results;
        s.drops.lastAt = new Date().toISOString();
      }
    });
    const limits = opts.config === undefined ? {} : { maxCount: opts.config.delivery.batchMaxCount, maxBytes: opts.config.delivery.batchMaxBytes };
    const { pass, pending } = await ledger.exclusive(async (spool) => {
      const done = await deliveryPass(spool, client, { log: opts.log, limits });
      return { pass: done, pending: (await spool.list()).length };
    });
    await ledger.flushHead();
    await recordPass(status, pass, null);
    if (pass.accepted + pass.duplicates > 0) await recordLogCheck(status, await checkLogSafely(state, client, identity, key, opts.log, ledger));
    await status.flush();
    return { findings: signed, deliveries: pass.deliveries, policyVersion: policy?.version ?? null, pending, stopped: pass.stopped };
  } finally {
    await client.close();
  }
}

/**
 * `run --once` fails whenever anything stays in the spool, whatever the answers said, and when the
 * collector refused a result (it went to quarantine).
 */
export function assertDelivered(result: Pick<CycleResult, 'pending' | 'stopped' | 'deliveries'>): void {
  const quarantined = result.deliveries.filter((d) => d.outcome === 'quarantined');
  if (result.pending === 0 && quarantined.length === 0) return;
  const code = result.stopped?.reason === 'unverified' ? 'AGT_ERR_COLLECTOR_UNVERIFIED' : 'AGT_ERR_DELIVERY';
  const parts: string[] = [];
  if (result.pending > 0) {
    const why = result.stopped?.detail ?? '';
    const detail = why.startsWith(`${code}: `) ? why.slice(code.length + 2) : why;
    parts.push(`${result.pending} result(s) wait in the spool${detail === '' ? '' : ` (${detail})`}`);
  }
  if (quarantined.length > 0) parts.push(`${quarantined.length} refused and quarantined (seq ${quarantined[0]!.seq}: ${quarantined[0]!.detail ?? ''})`);
  throw new AgentError(code, parts.join('; '));
}
