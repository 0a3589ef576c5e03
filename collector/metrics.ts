// Prometheus metrics (contract: names and labels in collector/README.md, "Where the metrics are"). Per-host
// gauges are computed at scrape time from the state, so staleness follows the clock, not the last
// ingest.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { CheckId } from '../checks/types.js';
import type { PolicyDocument } from './contract.js';
import { INGEST_REJECT_REASONS } from './errors.js';
import { SSO_METRICS, type MetricSample } from '../checks/sso_coverage/metrics.js';
import { activeException, effectivePolicy } from './policy.js';
import type { AgentRegistry, RegisteredAgent } from './registry.js';
import type { CollectorState } from './state.js';

export const CONTROL_STATES = ['pass', 'fail', 'unknown', 'waived', 'stale'] as const;
export type ControlState = (typeof CONTROL_STATES)[number];

export interface Metrics {
  registry: Registry;
  envelopes: Counter<'outcome'>;
  rejected: Counter<'reason'>;
  writeDuration: Histogram;
  chainGaps: Counter<'vendor'>;
  storeErrors: Counter;
  enrollments: Counter<'outcome'>;
  keyRotations: Counter<'outcome'>;
  spoolDropped: Counter<'vendor'>;
  ingestDuration: Histogram<'outcome'>;
  preflightOk: Gauge;
  /** The Prometheus text exposition, computed from the state at this moment, in chunks. */
  chunks(): AsyncIterable<string>;
  /** The same, as one string (for tests and small fleets). */
  render(): Promise<string>;
}


/** Label values escaped as the Prometheus text format requires. */
function esc(value: string): string {
  return /["\\\n]/.test(value) ? value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n') : value;
}

/** One agent's per-host series, rendered once and reused until something they show changes. */
interface AgentRender {
  version: number;
  doc: PolicyDocument;
  /** The first moment a row would change by the clock alone (turning stale, an exception expiring). */
  validUntil: number;
  /** vendor \0 control \0 state, one per row, for vcm_control_hosts: shared strings (rowKey). */
  rows: string[];
  state: string;
  lastResult: string;
  /** Only for controls failing now (not waived, not stale): most hosts cost no line. */
  failingSince: string;
  seen: string;
  /** Only for an agent whose chain has holes below its head: healthy chains cost no line. */
  chain: string;
  info: string;
}

/**
 * One string per vendor, control and state, shared by every row that has it: a few thousand
 * strings for any fleet instead of one per host and control, and counting them for
 * vcm_control_hosts is a map lookup of a string whose hash is already known. It only grows with
 * new vendors (each adds its controls × five states), for the life of the process.
 */
const rowKeys = new Map<string, string>();
function rowKey(vendor: string, control: string, st: ControlState): string {
  const k = `${vendor}\u0000${control}\u0000${st}`;
  const shared = rowKeys.get(k);
  if (shared !== undefined) return shared;
  rowKeys.set(k, k);
  return k;
}

/** States as a scrape sees them: stale by the clock, waived by unexpired exceptions. */
function renderAgent(src: MetricsSources, agent: RegisteredAgent, doc: PolicyDocument, now: Date, nonPassingOnly: boolean): AgentRender {
  const { record } = agent;
  const a = src.state.agents.get(record.agentId);
  const policy = effectivePolicy(doc, record.vendor);
  const freshnessMs = policy.freshnessSeconds * 1000;
  const nowMs = now.getTime();
  const vendor = esc(record.vendor);
  // agent_id makes every per-host series unique: two hosts of one name (cloned VMs) stay two.
  const host = `${esc(record.host.hostname)}",agent_id="${record.agentId}`;
  const rows: string[] = [];
  const state: string[] = [];
  const lastResult: string[] = [];
  const failingSince: string[] = [];
  let validUntil = Number.POSITIVE_INFINITY;
  const add = (control: CheckId, st: ControlState, collectedAtMs: number | null) => {
    rows.push(rowKey(record.vendor, control, st));
    if (nonPassingOnly && st === 'pass') return;
    state.push(`vcm_control_state{vendor="${vendor}",host="${host}",control="${control}",state="${st}"} 1\n`);
    if (collectedAtMs !== null) lastResult.push(`vcm_control_last_result_timestamp_seconds{vendor="${vendor}",host="${host}",control="${control}"} ${collectedAtMs / 1000}\n`);
  };
  for (const [control, c] of Object.entries(policy.checks) as [CheckId, { enabled: boolean }][]) {
    // A required control that never reported is stale, not absent.
    if (c.enabled && a?.latest.has(control) !== true) add(control, 'stale', null);
  }
  for (const r of a?.latest.values() ?? []) {
    const staleAt = r.collectedAtMs + freshnessMs;
    let st: ControlState = nowMs > staleAt ? 'stale' : r.verdict;
    if (st !== 'stale') validUntil = Math.min(validUntil, staleAt + 1);
    if (st === 'fail') {
      const exception = activeException(doc, record.vendor, record.host.hostname, r.check, now);
      if (exception !== undefined) {
        st = 'waived';
        validUntil = Math.min(validUntil, Date.parse(exception.expires));
      }
    }
    add(r.check, st, r.collectedAtMs);
    if (st === 'fail' && r.failingSinceMs !== null) failingSince.push(`vcm_control_failing_since_timestamp_seconds{vendor="${vendor}",host="${host}",control="${r.check}"} ${r.failingSinceMs / 1000}\n`);
  }
  const seenMs = a?.lastSeenMs;
  // Sequence numbers below the head with nothing stored: lost, dropped from a full spool, or late.
  const missing = a === undefined ? 0 : a.headSeq - a.links.size;
  return {
    version: a?.version ?? -1,
    doc,
    validUntil,
    rows,
    state: state.join(''),
    lastResult: lastResult.join(''),
    failingSince: failingSince.join(''),
    seen: seenMs === null || seenMs === undefined ? '' : `vcm_agent_last_seen_timestamp_seconds{vendor="${vendor}",host="${host}"} ${seenMs / 1000}\n`,
    chain: missing > 0 ? `vcm_agent_chain_missing_results{vendor="${vendor}",host="${host}"} ${missing}\n` : '',
    info: `vcm_agent_info{vendor="${vendor}",host="${host}",os="${record.host.os}",version="${esc(record.agentVersion)}"} 1\n`,
  };
}

export interface MetricsSources {
  state: CollectorState;
  /** Acknowledged evidence not yet in its own file (the filesystem store's journal). */
  pendingFiles?: () => number;
  registry: AgentRegistry;
  policy: () => PolicyDocument;
  now: () => Date;
}

export interface MetricsOptions {
  defaultMetrics?: boolean;
  /** 'non-passing' keeps per-host series only for hosts not passing, for very large fleets. */
  perHostSeries?: 'all' | 'non-passing';
}

export function createMetrics(src: MetricsSources, opts: MetricsOptions = {}): Metrics {
  const registry = new Registry();
  if (opts.defaultMetrics !== false) {
    collectDefaultMetrics({ register: registry, prefix: 'vcm_collector_' });
    // prom-client's nodejs_active_{handles,requests,resources}_total are gauges named like
    // counters (promtool warns; a rate() over them means nothing). Each is the sum of the
    // family of the same name without _total, by type, which stays.
    for (const family of ['handles', 'requests', 'resources']) registry.removeSingleMetric(`vcm_collector_nodejs_active_${family}_total`);
  }

  // Vendors this collector knows at this scrape (its live agents and the policy's vendors): their
  // per-vendor counters start at 0, so that increase() over them sees 0 instead of no data.
  let knownVendors = new Set<string>();
  function zeroForKnownVendors(this: Counter<'vendor'>): void {
    for (const vendor of knownVendors) this.inc({ vendor }, 0);
  }

  const envelopes = new Counter({
    name: 'vcm_ingest_envelopes_total',
    help: 'Envelopes received, by outcome.',
    labelNames: ['outcome'],
    registers: [registry],
  });
  for (const outcome of ['accepted', 'duplicate', 'rejected']) envelopes.inc({ outcome }, 0);

  const rejected = new Counter({
    name: 'vcm_ingest_rejected_total',
    help: 'Envelopes rejected, by reason.',
    labelNames: ['reason'],
    registers: [registry],
  });
  for (const reason of INGEST_REJECT_REASONS) rejected.inc({ reason }, 0);

  const writeDuration = new Histogram({
    name: 'vcm_evidence_write_duration_seconds',
    help: 'Durable evidence writes (fsync or S3 200).',
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });

  const chainGaps = new Counter({
    name: 'vcm_evidence_chain_gaps_total',
    help: 'Results accepted after a gap in their agent chain.',
    labelNames: ['vendor'],
    registers: [registry],
    collect: zeroForKnownVendors,
  });

  const storeErrors = new Counter({
    name: 'vcm_evidence_store_errors_total',
    help: 'Evidence store operations that failed.',
    registers: [registry],
  });

  const spoolDropped = new Counter({
    name: 'vcm_agent_spool_dropped_total',
    help: 'Results agents report they dropped because their spool was full (from signed drop records).',
    labelNames: ['vendor'],
    registers: [registry],
    collect: zeroForKnownVendors,
  });

  const ingestDuration = new Histogram({
    name: 'vcm_ingest_duration_seconds',
    help: 'Time from a result request being read to its answer, by outcome.',
    labelNames: ['outcome'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });

  const preflightOk = new Gauge({
    name: 'vcm_evidence_store_preflight_ok',
    help: '1 when the evidence store passed its start-up preflight (versioning, Object Lock); ingest is refused at 0.',
    registers: [registry],
  });
  preflightOk.set(1);

  new Gauge({
    name: 'vcm_evidence_files_pending',
    help: 'Acknowledged evidence durable in the journal whose own file is not made yet.',
    registers: [registry],
    collect() {
      this.set(src.pendingFiles?.() ?? 0);
    },
  });

  const enrollments = new Counter({
    name: 'vcm_enrollments_total',
    help: 'Enrollment requests, by outcome.',
    labelNames: ['outcome'],
    registers: [registry],
  });

  const keyRotations = new Counter({
    name: 'vcm_key_rotations_total',
    help: 'Agent key rotation requests, by outcome: rotated, duplicate (a retry), or the refusal reason.',
    labelNames: ['outcome'],
    registers: [registry],
  });
  for (const outcome of ['rotated', 'duplicate']) keyRotations.inc({ outcome }, 0);

  const live = () => src.registry.all().filter((a) => a.record.revokedAt === null);

  // Rendered series per agent, reused across scrapes until the agent's state, the policy or the
  // clock (a result turning stale, an exception expiring) changes them: at 100,000 hosts a scrape
  // then mostly copies strings instead of formatting over a million series.
  let cache = new Map<string, AgentRender>();
  let current: AgentRender[] = [];
  const refresh = () => {
    const doc = src.policy();
    const now = src.now();
    const next = new Map<string, AgentRender>();
    current = [];
    const vendors = new Set(Object.keys(doc.vendors));
    for (const agent of live()) {
      const id = agent.record.agentId;
      vendors.add(agent.record.vendor);
      let r = cache.get(id);
      const version = src.state.agents.get(id)?.version ?? -1;
      if (r === undefined || r.version !== version || r.doc !== doc || now.getTime() >= r.validUntil) {
        r = renderAgent(src, agent, doc, now, opts.perHostSeries === 'non-passing');
      }
      next.set(id, r);
      current.push(r);
    }
    cache = next;
    knownVendors = vendors;
  };

  // Agents whose state changed are rendered right after the change (once per burst of results,
  // in a microtask), not at the next scrape: a scrape after many hosts reported then copies
  // strings instead of formatting every changed host. The scrape still re-renders anything the
  // policy or the clock changed since.
  const dirty = new Set<string>();
  const renderDirty = () => {
    const doc = src.policy();
    const now = src.now();
    for (const id of dirty) {
      const agent = src.registry.loaded(id);
      if (agent !== undefined && agent.record.revokedAt === null) cache.set(id, renderAgent(src, agent, doc, now, opts.perHostSeries === 'non-passing'));
    }
    dirty.clear();
  };
  src.state.onChange = (agentId) => {
    if (dirty.size === 0) {
      queueMicrotask(() => {
        try {
          renderDirty();
        } catch {
          // Left to the scrape, which renders whatever is out of date and reports its own errors.
          dirty.clear();
        }
      });
    }
    dirty.add(agentId);
  };

  // From the current policy at each scrape, like the states: a new policy version shows at once.
  new Gauge({
    name: 'vcm_exception_expiry_timestamp_seconds',
    help: 'When each policy exception expires (its waiver of failures ends), by vendor, control and exception id.',
    labelNames: ['vendor', 'control', 'exception_id'],
    registers: [registry],
    collect() {
      this.reset();
      for (const e of src.policy().exceptions) this.set({ vendor: e.vendor, control: e.check, exception_id: e.id }, Date.parse(e.expires) / 1000);
    },
  });

  new Gauge({
    name: 'vcm_control_hosts',
    help: 'Hosts per vendor, control and state.',
    labelNames: ['vendor', 'control', 'state'],
    registers: [registry],
    collect() {
      this.reset();
      const counts = new Map<string, number>();
      for (const r of current) for (const row of r.rows) counts.set(row, (counts.get(row) ?? 0) + 1);
      // Every state of a vendor and control that has any row, zeros included.
      const pairs = new Set<string>();
      for (const row of counts.keys()) pairs.add(row.slice(0, row.lastIndexOf('\u0000')));
      for (const pair of pairs) {
        const [vendor, control] = pair.split('\u0000') as [string, string];
        for (const state of CONTROL_STATES) this.set({ vendor, control, state }, counts.get(rowKey(vendor, control, state)) ?? 0);
      }
    },
  });

  const header = (name: string, help: string) => `# HELP ${name} ${help}\n# TYPE ${name} gauge\n`;

  /** The per-host families, and vcm_sso_*, in chunks of about a megabyte. */
  function* perHostChunks(): Generator<string> {
    const families: [keyof AgentRender & ('state' | 'lastResult' | 'failingSince' | 'seen' | 'chain' | 'info'), string, string][] = [
      ['state', 'vcm_control_state', 'The current state of each host and control (1 for the state it is in).'],
      ['lastResult', 'vcm_control_last_result_timestamp_seconds', 'Collection time of the latest result per host and control.'],
      ['failingSince', 'vcm_control_failing_since_timestamp_seconds', 'For a host and control failing now (not waived): collection time of the first result of its unbroken run of failing results. Absent otherwise.'],
      ['seen', 'vcm_agent_last_seen_timestamp_seconds', 'When the collector last accepted a result from the host.'],
      ['chain', 'vcm_agent_chain_missing_results', 'Sequence numbers below the host chain head with no stored result: lost, dropped from a full spool, or still on their way. Absent when none.'],
      ['info', 'vcm_agent_info', 'Enrolled agents (1 each).'],
    ];
    for (const [field, name, help] of families) {
      let chunk = [header(name, help)];
      let size = 0;
      for (const r of current) {
        const text = r[field];
        if (text === '') continue;
        chunk.push(text);
        size += text.length;
        if (size >= 1 << 16) {
          yield chunk.join('');
          chunk = [];
          size = 0;
        }
      }
      yield chunk.join('');
    }
    yield ssoText();
  }

  // vcm_sso_*: per vendor, the counts from the newest sso_coverage result of its agents.
  const ssoText = (): string => {
    const out: string[] = [];
    const ssoByVendor = new Map<string, { at: number; samples: MetricSample[] }>();
    for (const [agentId, a] of src.state.agents) {
      if (a.sso === null) continue;
      const record = src.registry.loaded(agentId)?.record;
      if (record === undefined || record.revokedAt !== null) continue;
      const at = a.latest.get('sso_coverage')?.collectedAtMs ?? 0;
      const prior = ssoByVendor.get(record.vendor);
      if (prior === undefined || prior.at < at) ssoByVendor.set(record.vendor, { at, samples: a.sso.samples });
    }
    for (const [name, meta] of Object.entries(SSO_METRICS)) {
      out.push(header(name, `${meta.help}.`));
      for (const [vendor, { samples }] of ssoByVendor) {
        for (const sample of samples) {
          if (sample.name !== name) continue;
          const labels = Object.entries(sample.labels).map(([k, v]) => `,${k}="${esc(String(v))}"`).join('');
          out.push(`${name}{vendor="${esc(vendor)}"${labels}} ${sample.value}\n`);
        }
      }
    }
    return out.join('');
  };

  async function* metricsChunks(): AsyncGenerator<string> {
    refresh();
    yield `${await registry.metrics()}\n`;
    yield* perHostChunks();
  }

  return {
    registry,
    envelopes,
    rejected,
    writeDuration,
    chainGaps,
    storeErrors,
    enrollments,
    keyRotations,
    spoolDropped,
    ingestDuration,
    preflightOk,
    chunks: metricsChunks,
    render: async () => {
      const parts: string[] = [];
      for await (const c of metricsChunks()) parts.push(c);
      return parts.join('');
    },
  };
}
