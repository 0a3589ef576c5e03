// The audit model: what a bundle says about one vendor over one period, computed from its verified
// evidence. The CSV summary, the OSCAL documents and the HTML report are all renderings of it, so
// they cannot disagree. Times are ISO 8601 UTC with milliseconds; days are UTC dates (YYYY-MM-DD).
import type { CheckId } from '../../checks/types.js';

/** What a host's control was at a moment. `waived`: a failure an exception in force covered. */
export type ControlState = 'pass' | 'fail' | 'unknown' | 'waived' | 'stale';
export const CONTROL_STATES: readonly ControlState[] = ['pass', 'fail', 'unknown', 'waived', 'stale'];

/** A file inside the bundle, named by its path there and its SHA-256 (hex). */
export interface FileRef {
  path: string;
  sha256: string;
}

export interface AuditHost {
  agentId: string;
  hostname: string;
  os: string;
  agentVersion: string;
  enrolledAt: string;
  revokedAt: string | null;
  /** collectedAt of its first and last result in the period; null when it sent none. */
  firstSeen: string | null;
  lastSeen: string | null;
  /** Results (finding envelopes) it sent for the period. */
  results: number;
  /** The bundle file with its envelopes, one per day it sent any. */
  evidence: FileRef[];
}

/** One host and one control over the whole period. */
export interface AuditCell {
  agentId: string;
  hostname: string;
  control: CheckId;
  results: number;
  pass: number;
  fail: number;
  unknown: number;
  /** Failures an exception in force covered (counted here, not in `fail`). */
  waived: number;
  firstFailure: string | null;
  lastFailure: string | null;
  lastSeen: string | null;
  /** The state at the period's end (or now, for a period not ended): stale when the last result is too old. */
  lastState: ControlState;
  /** The envelopes behind it: the day files holding this host's results for this control. */
  evidence: FileRef[];
}

/** One row of summary.csv: host, control and day. */
export interface AuditDayRow {
  agentId: string;
  hostname: string;
  control: CheckId;
  day: string;
  results: number;
  passes: number;
  fails: number;
  unknowns: number;
  waived: number;
  firstFailure: string | null;
  lastFailure: string | null;
  lastSeen: string | null;
}

/** For the charts: per control and day, how many hosts ended the day in each state. */
export interface AuditDayTally {
  day: string;
  control: CheckId;
  counts: Record<ControlState, number>;
}

/** A run of failing results of one host and control, from its first failure to the next non-failure. */
export interface AuditFailure {
  agentId: string;
  hostname: string;
  control: CheckId;
  firstSeen: string;
  lastSeen: string;
  durationSeconds: number;
  /** Still failing at the period's end. */
  open: boolean;
  /** The exception that covered it, when one did. */
  exceptionId: string | null;
}

/** A host that sent nothing for longer than its freshness allows, inside the period. */
export interface AuditSilence {
  agentId: string;
  hostname: string;
  from: string;
  to: string;
  /** What explains it, when something does: enrolled or revoked then, a spool-drop record. */
  explanation: string | null;
}

/** Sequence numbers the collector never received from an agent. */
export interface AuditGap {
  agentId: string;
  hostname: string;
  /** The missing seqs, inclusive. */
  fromSeq: number;
  toSeq: number;
  /** A spool-drop record that accounts for them, or null when nothing does. */
  explanation: string | null;
}

export interface AuditException {
  id: string;
  control: CheckId;
  /** Host-name glob it covers. */
  hosts: string;
  justification: string;
  approver: string;
  expires: string;
  /** The policy versions in the period that carried it. */
  policyVersions: number[];
  /** Failing results it waived in the period. */
  waivedResults: number;
}

export interface AuditPolicyVersion {
  version: number;
  createdAt: string;
  file: FileRef;
}

export interface AuditDefect {
  /** Stable: AUD_* codes named in the bundle's README.txt. */
  code: string;
  message: string;
  file?: string;
  logIndex?: number;
  agentId?: string;
  seq?: number;
}

export interface AuditVerification {
  verified: boolean;
  /** Who checked: the exporter at export time, or a verifier run. */
  by: string;
  at: string;
  defects: AuditDefect[];
}

export interface AuditModel {
  vendor: string;
  /** [from, to): results collected in it, whenever they were delivered. */
  period: { from: string; to: string; ended: boolean };
  exportedAt: string;
  /** e.g. "vcm-collector 0.1.0". */
  generator: string;
  collector: { origin: string; fingerprint: string; key: FileRef };
  log: {
    startSize: number;
    endSize: number;
    start: { size: number; rootHash: string; file: FileRef } | null;
    end: { size: number; rootHash: string; issuedAt: string; file: FileRef };
    entries: FileRef;
  };
  controls: CheckId[];
  hosts: AuditHost[];
  cells: AuditCell[];
  days: AuditDayRow[];
  tallies: AuditDayTally[];
  failures: AuditFailure[];
  silences: AuditSilence[];
  gaps: AuditGap[];
  exceptions: AuditException[];
  policyVersions: AuditPolicyVersion[];
  verification: AuditVerification | null;
}
