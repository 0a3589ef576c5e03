// Prometheus metrics (contract: names and labels in DESIGN.md). Per-host gauges are computed at
// scrape time from the state, so staleness follows the clock, not the last ingest.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { CheckId } from '../checks/types.js';
import type { Policy } from './contract.js';
import { INGEST_REJECT_REASONS } from './errors.js';
import type { AgentRegistry } from './registry.js';
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
}

export interface MetricsSources {
  state: CollectorState;
  registry: AgentRegistry;
  policy: () => Policy;
  now: () => Date;
}

export function createMetrics(src: MetricsSources, opts: { defaultMetrics?: boolean } = {}): Metrics {
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

  const enrollments = new Counter({
    name: 'vcm_enrollments_total',
    help: 'Enrollment requests, by outcome.',
    labelNames: ['outcome'],
    registers: [registry],
  });

  const live = () => src.registry.all().filter((a) => a.record.revokedAt === null);

  const stateOf = (collectedAtMs: number, verdict: ControlState, freshnessMs: number, nowMs: number): ControlState =>
    nowMs - collectedAtMs > freshnessMs ? 'stale' : verdict;

  new Gauge({
    name: 'vcm_control_state',
    help: 'The current state of each host and control (1 for the state it is in).',
    labelNames: ['vendor', 'host', 'control', 'state'],
    registers: [registry],
    collect() {
      this.reset();
      const nowMs = src.now().getTime();
      const freshnessMs = src.policy().freshnessSeconds * 1000;
      for (const { record } of live()) {
        const a = src.state.agents.get(record.agentId);
        for (const r of a?.latest.values() ?? []) {
          const state = stateOf(r.collectedAtMs, r.verdict, freshnessMs, nowMs);
          this.set({ vendor: record.vendor, host: record.host.hostname, control: r.check, state }, 1);
        }
      }
    },
  });

  new Gauge({
    name: 'vcm_control_hosts',
    help: 'Hosts per vendor, control and state.',
    labelNames: ['vendor', 'control', 'state'],
    registers: [registry],
    collect() {
      this.reset();
      const nowMs = src.now().getTime();
      const policy = src.policy();
      const freshnessMs = policy.freshnessSeconds * 1000;
      const counts = new Map<string, Map<CheckId, Record<ControlState, number>>>();
      const bucket = (vendor: string, control: CheckId) => {
        let byControl = counts.get(vendor);
        if (byControl === undefined) counts.set(vendor, (byControl = new Map()));
        let c = byControl.get(control);
        if (c === undefined) byControl.set(control, (c = { pass: 0, fail: 0, unknown: 0, waived: 0, stale: 0 }));
        return c;
      };
      const required = (Object.keys(policy.checks) as CheckId[]).filter((id) => policy.checks[id]?.enabled !== false);
      for (const { record } of live()) {
        const latest = src.state.agents.get(record.agentId)?.latest;
        // A required control that never reported is stale, not absent.
        for (const control of required) if (latest?.has(control) !== true) bucket(record.vendor, control).stale++;
        for (const r of latest?.values() ?? []) bucket(record.vendor, r.check)[stateOf(r.collectedAtMs, r.verdict, freshnessMs, nowMs)]++;
      }
      for (const [vendor, byControl] of counts) {
        for (const [control, c] of byControl) {
          for (const state of CONTROL_STATES) this.set({ vendor, control, state }, c[state]);
        }
      }
    },
  });

  new Gauge({
    name: 'vcm_control_last_result_timestamp_seconds',
    help: 'Collection time of the latest result per host and control.',
    labelNames: ['vendor', 'host', 'control'],
    registers: [registry],
    collect() {
      this.reset();
      for (const { record } of live()) {
        for (const r of src.state.agents.get(record.agentId)?.latest.values() ?? []) {
          this.set({ vendor: record.vendor, host: record.host.hostname, control: r.check }, r.collectedAtMs / 1000);
        }
      }
    },
  });

  new Gauge({
    name: 'vcm_agent_last_seen_timestamp_seconds',
    help: 'When the collector last accepted a result from the host.',
    labelNames: ['vendor', 'host'],
    registers: [registry],
    collect() {
      this.reset();
      for (const { record } of live()) {
        const seen = src.state.agents.get(record.agentId)?.lastSeenMs;
        if (seen !== null && seen !== undefined) this.set({ vendor: record.vendor, host: record.host.hostname }, seen / 1000);
      }
    },
  });

  new Gauge({
    name: 'vcm_agent_info',
    help: 'Enrolled agents (1 each).',
    labelNames: ['vendor', 'host', 'agent_id', 'os', 'version'],
    registers: [registry],
    collect() {
      this.reset();
      for (const { record } of live()) {
        this.set({ vendor: record.vendor, host: record.host.hostname, agent_id: record.agentId, os: record.host.os, version: record.agentVersion }, 1);
      }
    },
  });

  return { registry, envelopes, rejected, writeDuration, chainGaps, storeErrors, enrollments };
}
