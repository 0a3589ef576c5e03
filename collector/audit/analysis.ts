// Builds the audit model from a period's evidence, one agent at a time in seq order: the verdicts
// come from the facts under the policy in force when each result was collected (as the collector
// judges at ingest), never from the agent's own status. Memory holds one agent's open runs and the
// per host, control and day counters, never the envelopes.
import type { CheckId } from '../../checks/types.js';
import { CHECK_IDS } from '../../checks/types.js';
import type { FindingPredicate, PolicyDocument, SpoolDropPredicate } from '../contract.js';
import { activeException, effectivePolicy } from '../policy.js';
import { judge } from '../state.js';
import type {
  AuditCell,
  AuditDayRow,
  AuditDayTally,
  AuditException,
  AuditFailure,
  AuditGap,
  AuditHost,
  AuditSilence,
  ControlState,
  FileRef,
} from './model.js';

const DAY_MS = 86_400_000;
const iso = (ms: number) => new Date(ms).toISOString();

export interface PolicyVersionInForce {
  doc: PolicyDocument;
  createdAtMs: number;
}

/** The policy in force at a time: the newest version created at or before it (the first one before any). */
export function policyAt(versions: readonly PolicyVersionInForce[], ms: number): PolicyDocument | null {
  let chosen: PolicyDocument | null = versions[0]?.doc ?? null;
  for (const v of versions) if (v.createdAtMs <= ms) chosen = v.doc;
  return chosen;
}

export interface AgentInfo {
  agentId: string;
  hostname: string;
  os: string;
  agentVersion: string;
  enrolledAt: string;
  revokedAt: string | null;
}

interface DayCell {
  results: number;
  passes: number;
  fails: number;
  unknowns: number;
  waived: number;
  firstFailure: number | null;
  lastFailure: number | null;
  lastSeen: number;
  /** The last result of the day: its state and time (for the end-of-day tally). */
  lastState: ControlState;
  lastAt: number;
}

interface OpenRun {
  first: number;
  last: number;
  exceptionId: string | null;
}

export class ModelBuilder {
  readonly hosts: AuditHost[] = [];
  readonly cells: AuditCell[] = [];
  readonly days: AuditDayRow[] = [];
  readonly failures: AuditFailure[] = [];
  readonly silences: AuditSilence[] = [];
  readonly gaps: AuditGap[] = [];
  readonly #exceptions = new Map<string, AuditException>();
  /** day → control → state → hosts, at the end of each day. */
  readonly #tally = new Map<string, Map<CheckId, Record<ControlState, number>>>();
  readonly #days: string[] = [];
  readonly controls: CheckId[];

  // The agent being fed.
  #agent: AgentInfo | null = null;
  #files: FileRef[] = [];
  #byDay = new Map<string, Map<CheckId, DayCell>>();
  #runs = new Map<CheckId, OpenRun>();
  #cells = new Map<CheckId, AuditCell>();
  #lastSeq = 0;
  #lastAt: number | null = null;
  #first: number | null = null;
  #results = 0;
  #drops: { seq: number; firstSeq: number; lastSeq: number; count: number; reason: string; from: number; to: number }[] = [];
  #gapsOpen: { fromSeq: number; toSeq: number }[] = [];
  #silences: { from: number; to: number }[] = [];

  constructor(
    readonly vendor: string,
    readonly fromMs: number,
    /** The end of what the bundle covers: the period's end, or the export time for a period not ended. */
    readonly untilMs: number,
    readonly policies: readonly PolicyVersionInForce[],
  ) {
    for (let d = Math.floor(fromMs / DAY_MS) * DAY_MS; d < untilMs; d += DAY_MS) this.#days.push(iso(d).slice(0, 10));
    const enabled = new Set<CheckId>();
    for (const p of policies) for (const [id, c] of Object.entries(effectivePolicy(p.doc, vendor).checks)) if (c.enabled) enabled.add(id as CheckId);
    this.controls = CHECK_IDS.filter((c) => enabled.has(c));
  }

  #freshnessMs(ms: number): number {
    const doc = policyAt(this.policies, ms);
    return (doc === null ? 7200 : effectivePolicy(doc, this.vendor).freshnessSeconds) * 1000;
  }

  startAgent(info: AgentInfo): void {
    this.#agent = info;
    this.#files = [];
    this.#byDay = new Map();
    this.#runs = new Map();
    this.#cells = new Map();
    this.#lastSeq = 0;
    this.#lastAt = null;
    this.#first = null;
    this.#results = 0;
    this.#drops = [];
    this.#gapsOpen = [];
    this.#silences = [];
  }

  addFile(ref: FileRef): void {
    this.#files.push(ref);
  }

  #cell(control: CheckId): AuditCell {
    let c = this.#cells.get(control);
    if (c === undefined) {
      const a = this.#agent!;
      this.#cells.set(control, (c = { agentId: a.agentId, hostname: a.hostname, control, results: 0, pass: 0, fail: 0, unknown: 0, waived: 0, firstFailure: null, lastFailure: null, lastSeen: null, lastState: 'stale', evidence: [] }));
    }
    return c;
  }

  /** The seq of the agent's newest envelope before the period: a gap after it, up to the first of the period, is named. */
  prior(seq: number): void {
    this.#lastSeq = seq;
  }

  #seen(seq: number, ms: number): void {
    // Without an envelope before the period, seqs from 1 up to the first one are missing.
    if (seq > this.#lastSeq + 1) this.#gapsOpen.push({ fromSeq: this.#lastSeq + 1, toSeq: seq - 1 });
    this.#lastSeq = Math.max(this.#lastSeq, seq);
    const since = this.#lastAt ?? Math.max(this.fromMs, Date.parse(this.#agent!.enrolledAt));
    if (ms - since > this.#freshnessMs(ms)) this.#silences.push({ from: since, to: ms });
    this.#lastAt = Math.max(this.#lastAt ?? ms, ms);
    this.#first ??= ms;
  }

  addFinding(p: FindingPredicate, file: FileRef): void {
    const ms = Date.parse(p.collectedAt);
    this.#seen(p.seq, ms);
    const control = p.finding.check;
    const doc = policyAt(this.policies, ms);
    const verdict = doc === null ? 'unknown' : judge(p, doc, this.vendor).status;
    const exception = verdict === 'fail' && doc !== null ? activeException(doc, this.vendor, this.#agent!.hostname, control, new Date(ms)) : undefined;
    const state: ControlState = exception !== undefined ? 'waived' : verdict;
    this.#results++;
    const c = this.#cell(control);
    c.results++;
    if (state === 'pass') c.pass++;
    else if (state === 'fail') c.fail++;
    else if (state === 'waived') c.waived++;
    else c.unknown++;
    c.lastSeen = p.collectedAt;
    if (c.evidence.at(-1)?.path !== file.path) c.evidence.push(file);
    const day = p.collectedAt.slice(0, 10);
    let byControl = this.#byDay.get(day);
    if (byControl === undefined) this.#byDay.set(day, (byControl = new Map()));
    let d = byControl.get(control);
    if (d === undefined) byControl.set(control, (d = { results: 0, passes: 0, fails: 0, unknowns: 0, waived: 0, firstFailure: null, lastFailure: null, lastSeen: ms, lastState: state, lastAt: ms }));
    d.results++;
    d.lastSeen = Math.max(d.lastSeen, ms);
    if (ms >= d.lastAt) {
      d.lastAt = ms;
      d.lastState = state;
    }
    if (state === 'pass') d.passes++;
    else if (state === 'waived') d.waived++;
    else if (state === 'unknown') d.unknowns++;
    if (state === 'fail' || state === 'waived') {
      if (state === 'fail') d.fails++;
      d.firstFailure ??= ms;
      d.lastFailure = ms;
      c.firstFailure ??= p.collectedAt;
      c.lastFailure = p.collectedAt;
      const run = this.#runs.get(control);
      if (run === undefined) this.#runs.set(control, { first: ms, last: ms, exceptionId: exception?.id ?? null });
      else {
        run.last = ms;
        run.exceptionId ??= exception?.id ?? null;
      }
    } else this.#closeRun(control, false);
    if (exception !== undefined) {
      let e = this.#exceptions.get(exception.id);
      if (e === undefined) this.#exceptions.set(exception.id, (e = this.#exceptionOf(exception.id)!));
      e.waivedResults++;
    }
  }

  addSpoolDrop(p: SpoolDropPredicate): void {
    const ms = Date.parse(p.collectedAt);
    this.#seen(p.seq, ms);
    const d = p.dropped;
    this.#drops.push({ seq: p.seq, firstSeq: d.firstSeq, lastSeq: d.lastSeq, count: d.count, reason: d.reason, from: Date.parse(d.from), to: Date.parse(d.to) });
  }

  #closeRun(control: CheckId, open: boolean): void {
    const run = this.#runs.get(control);
    if (run === undefined) return;
    this.#runs.delete(control);
    const a = this.#agent!;
    this.failures.push({ agentId: a.agentId, hostname: a.hostname, control, firstSeen: iso(run.first), lastSeen: iso(run.last), durationSeconds: (run.last - run.first) / 1000, open, exceptionId: run.exceptionId });
  }

  endAgent(): void {
    const a = this.#agent!;
    const until = a.revokedAt === null ? this.untilMs : Math.min(this.untilMs, Date.parse(a.revokedAt));
    const enrolledMs = Date.parse(a.enrolledAt);
    // Silent to the end (or since enrollment, for a host that sent nothing).
    const since = this.#lastAt ?? Math.max(this.fromMs, enrolledMs);
    if (until - since > this.#freshnessMs(until)) this.#silences.push({ from: since, to: until });
    for (const s of this.#silences) {
      const drop = this.#drops.find((d) => d.from <= s.to && d.to >= s.from);
      const explanation =
        drop !== undefined
          ? `spool-drop record at seq ${drop.seq}: ${drop.count} results dropped (${drop.reason})`
          : enrolledMs > s.from && enrolledMs <= s.to
            ? `enrolled at ${a.enrolledAt}`
            : a.revokedAt !== null && Date.parse(a.revokedAt) <= s.to
              ? `revoked at ${a.revokedAt}`
              : null;
      this.silences.push({ agentId: a.agentId, hostname: a.hostname, from: iso(s.from), to: iso(s.to), explanation });
    }
    for (const g of this.#gapsOpen) {
      const drop = this.#drops.find((d) => d.firstSeq <= g.fromSeq && d.lastSeq >= g.toSeq);
      this.gaps.push({ agentId: a.agentId, hostname: a.hostname, ...g, explanation: drop === undefined ? null : `spool-drop record at seq ${drop.seq}: ${drop.count} results dropped (${drop.reason})` });
    }
    for (const control of [...this.#runs.keys()]) this.#closeRun(control, true);
    const controls = new Set<CheckId>([...this.controls, ...this.#cells.keys()]);
    for (const control of CHECK_IDS.filter((c) => controls.has(c))) {
      const c = this.#cell(control);
      const lastMs = c.lastSeen === null ? null : Date.parse(c.lastSeen);
      const last = lastMs === null ? undefined : [...this.#byDay.values()].map((m) => m.get(control)).find((d) => d?.lastAt === lastMs);
      c.lastState = lastMs === null || until - lastMs > this.#freshnessMs(until) ? 'stale' : (last?.lastState ?? 'stale');
      this.cells.push(c);
    }
    for (const [day, byControl] of [...this.#byDay].sort(([x], [y]) => (x < y ? -1 : 1))) {
      for (const control of CHECK_IDS) {
        const d = byControl.get(control);
        if (d === undefined) continue;
        this.days.push({
          agentId: a.agentId,
          hostname: a.hostname,
          control,
          day,
          results: d.results,
          passes: d.passes,
          fails: d.fails,
          unknowns: d.unknowns,
          waived: d.waived,
          firstFailure: d.firstFailure === null ? null : iso(d.firstFailure),
          lastFailure: d.lastFailure === null ? null : iso(d.lastFailure),
          lastSeen: iso(d.lastSeen),
        });
      }
    }
    this.#tallyAgent(enrolledMs, until);
    this.hosts.push({
      ...a,
      firstSeen: this.#first === null ? null : iso(this.#first),
      lastSeen: this.#lastAt === null ? null : iso(this.#lastAt),
      results: this.#results,
      evidence: this.#files,
    });
    this.#agent = null;
  }

  /** Each day the host was enrolled: each control's state at the day's end (stale when its last result is too old then). */
  #tallyAgent(enrolledMs: number, until: number): void {
    const last = new Map<CheckId, { state: ControlState; at: number }>();
    for (const day of this.#days) {
      const dayEnd = Math.min(Date.parse(`${day}T00:00:00.000Z`) + DAY_MS, this.untilMs);
      const byControl = this.#byDay.get(day);
      for (const [control, d] of byControl ?? []) last.set(control, { state: d.lastState, at: d.lastAt });
      if (enrolledMs >= dayEnd || Date.parse(`${day}T00:00:00.000Z`) >= until) continue;
      let t = this.#tally.get(day);
      if (t === undefined) this.#tally.set(day, (t = new Map()));
      for (const control of this.controls) {
        const l = last.get(control);
        const state: ControlState = l === undefined || dayEnd - l.at > this.#freshnessMs(dayEnd) ? 'stale' : l.state;
        let counts = t.get(control);
        if (counts === undefined) t.set(control, (counts = { pass: 0, fail: 0, unknown: 0, waived: 0, stale: 0 }));
        counts[state]++;
      }
    }
  }

  #exceptionOf(id: string): AuditException | undefined {
    const versions: number[] = [];
    let found: AuditException | undefined;
    for (const p of this.policies) {
      const e = p.doc.exceptions.find((x) => x.id === id && x.vendor === this.vendor);
      if (e === undefined) continue;
      versions.push(p.doc.version);
      found = { id: e.id, control: e.check, hosts: e.hosts, justification: e.justification, approver: e.approver, expires: e.expires, policyVersions: versions, waivedResults: found?.waivedResults ?? 0 };
    }
    return found;
  }

  /** Every exception of this vendor in a policy version in force during the period, whether or not it waived anything. */
  exceptions(): AuditException[] {
    for (const p of this.policies) for (const e of p.doc.exceptions) if (e.vendor === this.vendor && !this.#exceptions.has(e.id)) this.#exceptions.set(e.id, this.#exceptionOf(e.id)!);
    return [...this.#exceptions.values()].sort((x, y) => (x.id < y.id ? -1 : 1));
  }

  tallies(): AuditDayTally[] {
    const out: AuditDayTally[] = [];
    for (const day of this.#days) {
      for (const control of this.controls) out.push({ day, control, counts: this.#tally.get(day)?.get(control) ?? { pass: 0, fail: 0, unknown: 0, waived: 0, stale: 0 } });
    }
    return out;
  }
}

/** summary.csv: one row per host, control and day (RFC 4180; host names cannot hold a comma or quote). */
export function summaryCsv(rows: readonly AuditDayRow[]): string {
  const head = 'host,agent_id,control,day,results,passes,fails,unknowns,waived,first_failure,last_failure,last_seen';
  const cell = (v: string | number | null) => {
    const s = v === null ? '' : String(v);
    return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  return `${[head, ...rows.map((r) => [r.hostname, r.agentId, r.control, r.day, r.results, r.passes, r.fails, r.unknowns, r.waived, r.firstFailure, r.lastFailure, r.lastSeen].map(cell).join(','))].join('\r\n')}\r\n`;
}
