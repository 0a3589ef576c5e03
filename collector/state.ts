// Derived state: chain heads and the latest verdict per host and control. Everything here can be
// rebuilt from the store at start, so it is never the only copy of anything.
import { checkById } from '../checks/index.js';
import { ssoMetricSamples, type MetricSample } from '../checks/sso_coverage/metrics.js';
import { factsSchema as ssoFactsSchema } from '../checks/sso_coverage/schema.js';
import { evaluateFacts } from '../checks/runner.js';
import type { CheckId, Evaluation, Reason, Status } from '../checks/types.js';
import {
  EVIDENCE_FILE_RE,
  envelopeSchema,
  statementSchema,
  strictBase64,
  type FindingPredicate,
  type PolicyDocument,
} from './contract.js';
import { effectivePolicy } from './policy.js';
import type { EvidenceStore } from './store.js';

export interface StoredLink {
  hash: string;
  key: string;
}

export interface LatestResult {
  check: CheckId;
  seq: number;
  collectedAtMs: number;
  /** The collector's verdict under `policyVersion`; the agent's own status is kept apart. */
  verdict: Status;
  reasons: Reason[];
  agentStatus: Status;
  policyVersion: number;
  /**
   * When the verdict fails: collectedAt of the first result of the unbroken run of failing
   * results it ends (the failure's start, as the evidence shows it); null otherwise.
   */
  failingSinceMs: number | null;
}

export interface AgentState {
  /** seq → stored envelope. */
  links: Map<number, StoredLink>;
  headSeq: number;
  latest: Map<CheckId, LatestResult>;
  lastSeenMs: number | null;
  /** Counts from the latest sso_coverage facts this agent sent (never a person: counts only). */
  sso: { seq: number; samples: MetricSample[] } | null;
  /** Bumped whenever something a metric shows changes, so rendered series can be reused. */
  version: number;
}

/** Judges a finding under the vendor's policy: the agent's facts count, not its verdict. */
export function judge(predicate: FindingPredicate, doc: PolicyDocument, vendor: string): Evaluation {
  const { finding } = predicate;
  const check = checkById(finding.check);
  if (check === undefined) {
    return { status: 'unknown', reasons: [{ code: 'CHK_ERR_UNSUPPORTED_PLATFORM', message: `this collector does not know ${finding.check}` }] };
  }
  if (finding.facts === null || finding.facts === undefined) {
    // The agent could not collect: its reason is the whole story.
    return { status: 'unknown', reasons: finding.reasons.length > 0 ? finding.reasons : [{ code: 'CHK_ERR_INTERNAL', message: 'no facts' }] };
  }
  return evaluateFacts(check, finding.facts, effectivePolicy(doc, vendor).checks[finding.check]?.config);
}

export class CollectorState {
  readonly agents = new Map<string, AgentState>();
  /** Called after an agent's state changed (the metrics render its series ahead of the scrape). */
  onChange: ((agentId: string) => void) | null = null;

  agent(agentId: string): AgentState {
    let a = this.agents.get(agentId);
    if (a === undefined) {
      a = { links: new Map(), headSeq: 0, latest: new Map(), lastSeenMs: null, sso: null, version: 0 };
      this.agents.set(agentId, a);
    }
    return a;
  }

  recordStored(agentId: string, seq: number, link: StoredLink): void {
    const a = this.agent(agentId);
    a.links.set(seq, link);
    if (seq > a.headSeq) a.headSeq = seq;
  }

  recordResult(agentId: string, predicate: FindingPredicate, ev: Evaluation, policyVersion: number, receivedAtMs: number): void {
    const a = this.agent(agentId);
    const collectedAtMs = Date.parse(predicate.collectedAt);
    const prior = a.latest.get(predicate.finding.check);
    // Late delivery of older results must not hide a newer one.
    if (prior === undefined || prior.seq < predicate.seq) {
      const failingSinceMs = ev.status !== 'fail' ? null : prior?.verdict === 'fail' && prior.failingSinceMs !== null ? prior.failingSinceMs : collectedAtMs;
      a.latest.set(predicate.finding.check, {
        check: predicate.finding.check,
        seq: predicate.seq,
        collectedAtMs,
        verdict: ev.status,
        reasons: ev.reasons,
        agentStatus: predicate.finding.status,
        policyVersion,
        failingSinceMs,
      });
    }
    if (predicate.finding.check === 'sso_coverage' && (a.sso === null || a.sso.seq < predicate.seq)) {
      const facts = ssoFactsSchema.safeParse(predicate.finding.facts);
      // Facts that do not parse give no counts rather than wrong ones; the verdict says unknown.
      a.sso = facts.success ? { seq: predicate.seq, samples: ssoMetricSamples(facts.data) } : { seq: predicate.seq, samples: [] };
    }
    this.recordSeen(agentId, receivedAtMs);
  }

  recordSeen(agentId: string, receivedAtMs: number): void {
    const a = this.agent(agentId);
    a.lastSeenMs = Math.max(a.lastSeenMs ?? 0, receivedAtMs);
    a.version++;
    this.onChange?.(agentId);
  }

  /** Rebuilds chains and latest verdicts from the evidence in the store. */
  async rebuild(store: EvidenceStore, policy: PolicyDocument, vendorOf: (agentId: string) => string | undefined): Promise<void> {
    for await (const key of store.list('evidence/')) {
      const parts = key.split('/');
      const agentPart = parts[3];
      const m = EVIDENCE_FILE_RE.exec(parts[4] ?? '');
      if (parts.length !== 5 || agentPart?.startsWith('agent=') !== true || m?.[1] === undefined || m[2] === undefined) continue;
      this.recordStored(agentPart.slice('agent='.length), Number(m[1]), { hash: m[2], key });
    }
    for (const [agentId, a] of this.agents) {
      const seqs = [...a.links.keys()].sort((x, y) => y - x);
      // Controls whose latest result fails, while older results of theirs still fail: their
      // failure began at or before the oldest of those.
      const failing = new Set<CheckId>();
      // Newest first, the latest result of each control, and a failing one's run back to where it
      // began (bounded: the newest 500 results; a failure older than those shows from the oldest).
      for (const seq of seqs.slice(0, REBUILD_LOOK_BACK)) {
        const link = a.links.get(seq);
        const raw = link === undefined ? null : await store.get(link.key);
        const predicate = raw === null ? null : decodeStoredPredicate(raw);
        if (predicate === null) continue;
        const vendor = vendorOf(agentId);
        if (vendor === undefined) continue;
        const check = predicate.finding.check;
        const latest = a.latest.get(check);
        if (latest === undefined) {
          this.recordResult(agentId, predicate, judge(predicate, policy, vendor), policy.version, Date.parse(predicate.collectedAt));
          if (a.latest.get(check)?.verdict === 'fail') failing.add(check);
        } else if (failing.has(check)) {
          if (judge(predicate, policy, vendor).status === 'fail') latest.failingSinceMs = Date.parse(predicate.collectedAt);
          else failing.delete(check);
        }
      }
    }
  }
}

/** Results read back per agent at start, newest first: enough for each control's latest. */
const REBUILD_LOOK_BACK = 500;

/** Decodes evidence that was verified when it was stored. */
export function decodeStoredPredicate(raw: Buffer): FindingPredicate | null {
  try {
    const env = envelopeSchema.parse(JSON.parse(raw.toString('utf8')));
    const payload = strictBase64(env.payload);
    if (payload === null) return null;
    const parsed = statementSchema.safeParse(JSON.parse(payload.toString('utf8')));
    // Spool-drop records are chain links, not results.
    return parsed.success ? parsed.data.predicate : null;
  } catch {
    return null;
  }
}
