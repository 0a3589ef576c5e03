// Prometheus metrics (contract: names and labels in DESIGN.md). Per-host gauges are computed at
// scrape time from the state, so staleness follows the clock, not the last ingest.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { CheckId } from '../checks/types.js';
import type { Policy, PolicyDocument } from './contract.js';
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
  spoolDropped: Counter<'vendor'>;
  ingestDuration: Histogram<'outcome'>;
  preflightOk: Gauge;
  /** The Prometheus text exposition, computed from the state at this moment. */
  render(): Promise<string>;
}

interface StateRow {
  vendor: string;
  host: string;
  control: CheckId;
  state: ControlState;
  collectedAtMs: number | null;
}

/** Label values escaped as the Prometheus text format requires. */
function esc(value: string): string {
  return /["\\\n]/.test(value) ? value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n') : value;
}

/** States as a scrape sees them: stale by the clock, waived by unexpired exceptions. */
function currentStates(src: MetricsSources, agents: readonly RegisteredAgent[]): StateRow[] {
  const doc = src.policy();
  const now = src.now();
  const nowMs = now.getTime();
  const byVendor = new Map<string, Policy>();
  const rows: StateRow[] = [];
  for (const { record } of agents) {
    let policy = byVendor.get(record.vendor);
    if (policy === undefined) byVendor.set(record.vendor, (policy = effectivePolicy(doc, record.vendor)));
    const freshnessMs = policy.freshnessSeconds * 1000;
    const latest = src.state.agents.get(record.agentId)?.latest;
    const host = record.host.hostname;
    for (const [control, c] of Object.entries(policy.checks) as [CheckId, { enabled: boolean }][]) {
      // A required control that never reported is stale, not absent.
      if (c.enabled && latest?.has(control) !== true) rows.push({ vendor: record.vendor, host, control, state: 'stale', collectedAtMs: null });
    }
    for (const r of latest?.values() ?? []) {
      let state: ControlState = nowMs - r.collectedAtMs > freshnessMs ? 'stale' : r.verdict;
      if (state === 'fail' && activeException(doc, record.vendor, host, r.check, now) !== undefined) state = 'waived';
      rows.push({ vendor: record.vendor, host, control: r.check, state, collectedAtMs: r.collectedAtMs });
    }
  }
  return rows;
}

export interface MetricsSources {
  state: CollectorState;
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
  if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'vcm_collector_' });

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

  const enrollments = new Counter({
    name: 'vcm_enrollments_total',
    help: 'Enrollment requests, by outcome.',
    labelNames: ['outcome'],
    registers: [registry],
  });

  const live = () => src.registry.all().filter((a) => a.record.revokedAt === null);

  // One snapshot per scrape: every gauge below reads it, so 100,000 hosts are walked once.
  let snapshot: StateRow[] = [];
  const refresh = () => {
    snapshot = currentStates(src, live());
  };
  const perHost = (row: StateRow) => opts.perHostSeries !== 'non-passing' || row.state !== 'pass';

  new Gauge({
    name: 'vcm_control_hosts',
    help: 'Hosts per vendor, control and state.',
    labelNames: ['vendor', 'control', 'state'],
    registers: [registry],
    collect() {
      this.reset();
      const counts = new Map<string, Record<ControlState, number>>();
      for (const r of snapshot) {
        const k = `${r.vendor}\u0000${r.control}`;
        let c = counts.get(k);
        if (c === undefined) counts.set(k, (c = { pass: 0, fail: 0, unknown: 0, waived: 0, stale: 0 }));
        c[r.state]++;
      }
      for (const [k, c] of counts) {
        const [vendor, control] = k.split('\u0000') as [string, string];
        for (const state of CONTROL_STATES) this.set({ vendor, control, state }, c[state]);
      }
    },
  });

  // The per-host families are written as text directly: at 100,000 hosts they hold over a million
  // series, which prom-client's per-label-set bookkeeping cannot render within a scrape's budget.
  const perHostText = (): string => {
    const out: string[] = [];
    const family = (name: string, help: string) => out.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`);
    family('vcm_control_state', 'The current state of each host and control (1 for the state it is in).');
    for (const r of snapshot) {
      if (perHost(r)) out.push(`vcm_control_state{vendor="${esc(r.vendor)}",host="${esc(r.host)}",control="${r.control}",state="${r.state}"} 1`);
    }
    family('vcm_control_last_result_timestamp_seconds', 'Collection time of the latest result per host and control.');
    for (const r of snapshot) {
      if (r.collectedAtMs !== null && perHost(r)) {
        out.push(`vcm_control_last_result_timestamp_seconds{vendor="${esc(r.vendor)}",host="${esc(r.host)}",control="${r.control}"} ${r.collectedAtMs / 1000}`);
      }
    }
    const agents = live();
    family('vcm_agent_last_seen_timestamp_seconds', 'When the collector last accepted a result from the host.');
    for (const { record } of agents) {
      const seen = src.state.agents.get(record.agentId)?.lastSeenMs;
      if (seen !== null && seen !== undefined) out.push(`vcm_agent_last_seen_timestamp_seconds{vendor="${esc(record.vendor)}",host="${esc(record.host.hostname)}"} ${seen / 1000}`);
    }
    family('vcm_agent_info', 'Enrolled agents (1 each).');
    for (const { record } of agents) {
      out.push(
        `vcm_agent_info{vendor="${esc(record.vendor)}",host="${esc(record.host.hostname)}",agent_id="${record.agentId}",os="${record.host.os}",version="${esc(record.agentVersion)}"} 1`,
      );
    }
    // vcm_sso_*: per vendor, the counts from the newest sso_coverage result of its agents.
    const ssoByVendor = new Map<string, { seq: number; at: number; samples: MetricSample[] }>();
    for (const { record } of agents) {
      const a = src.state.agents.get(record.agentId);
      const at = a?.latest.get('sso_coverage')?.collectedAtMs ?? 0;
      if (a?.sso === null || a?.sso === undefined) continue;
      const prior = ssoByVendor.get(record.vendor);
      if (prior === undefined || prior.at < at) ssoByVendor.set(record.vendor, { seq: a.sso.seq, at, samples: a.sso.samples });
    }
    for (const [name, meta] of Object.entries(SSO_METRICS)) {
      family(name, `${meta.help}.`);
      for (const [vendor, { samples }] of ssoByVendor) {
        for (const sample of samples) {
          if (sample.name !== name) continue;
          const labels = Object.entries(sample.labels).map(([k, v]) => `,${k}="${esc(String(v))}"`).join('');
          out.push(`${name}{vendor="${esc(vendor)}"${labels}} ${sample.value}`);
        }
      }
    }
    out.push('');
    return out.join('\n');
  };

  return {
    registry,
    envelopes,
    rejected,
    writeDuration,
    chainGaps,
    storeErrors,
    enrollments,
    spoolDropped,
    ingestDuration,
    preflightOk,
    render: async () => {
      refresh();
      return `${await registry.metrics()}\n${perHostText()}`;
    },
  };
}
