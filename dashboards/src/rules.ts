// Prometheus rules: the ratios the dashboards and alerts share, and the alerts. Each alert's
// runbook is the section of dashboards/README.md named after it.
import { JOB, RULES } from './names.js';

export interface RecordingRule {
  record: string;
  expr: string;
}

export type Severity = 'critical' | 'warning';

export interface AlertRule {
  alert: string;
  expr: string;
  for?: string;
  labels: { severity: Severity };
  annotations: { summary: string; description: string; runbook: string };
}

export interface RuleGroup<R> {
  name: string;
  rules: R[];
}

export interface RuleFile<R> {
  groups: RuleGroup<R>[];
}

/** Thresholds and `for:` durations; tests copy the rules with shorter ones. */
export interface AlertSettings {
  /** How long a control fails (unwaived) before VcmControlFailing fires. */
  failingFor: string;
  /** Seconds without an accepted result before an agent counts as silent (the default freshness window). */
  silentSeconds: number;
  staleFor: string;
  /** Bad signatures or replays per 10 minutes, per reason, that count as a burst. */
  burstPer10m: number;
  exceptionWarnDays: number;
  /** Seconds a growing log may go without a checkpoint. */
  checkpointMaxAgeSeconds: number;
  downFor: string;
}

export const DEFAULT_ALERT_SETTINGS: AlertSettings = {
  failingFor: '1h',
  silentSeconds: 7200,
  staleFor: '30m',
  burstPer10m: 10,
  exceptionWarnDays: 7,
  checkpointMaxAgeSeconds: 1800,
  downFor: '5m',
};

export function recordingRules(): RuleFile<RecordingRule> {
  return {
    groups: [
      {
        name: 'vcm-recording',
        rules: [
          {
            // Every state is in the denominator: unknown, stale and waived hosts never count as passing.
            record: RULES.stateRatio,
            expr: 'vcm_control_hosts / ignoring (state) group_left () sum without (state) (vcm_control_hosts)',
          },
          {
            record: RULES.vendorStateRatio,
            expr: 'sum without (control) (vcm_control_hosts) / ignoring (state) group_left () sum without (control, state) (vcm_control_hosts)',
          },
          {
            record: RULES.mfaRatio,
            expr: 'vcm_sso_mfa_accounts / ignoring (strength) group_left () (vcm_sso_mfa_eligible_accounts > 0)',
          },
          {
            record: RULES.assignmentRatio,
            expr: 'vcm_sso_app_assignments / ignoring (sign_on_class) group_left () (sum without (sign_on_class) (vcm_sso_app_assignments) > 0)',
          },
        ],
      },
    ],
  };
}

const runbook = (alert: string) => `dashboards/README.md#${alert.toLowerCase()}`;

function alert(name: string, severity: Severity, expr: string, forDuration: string | undefined, summary: string, description: string): AlertRule {
  return {
    alert: name,
    expr,
    ...(forDuration === undefined ? {} : { for: forDuration }),
    labels: { severity },
    annotations: { summary, description, runbook: runbook(name) },
  };
}

export function alertRules(s: AlertSettings = DEFAULT_ALERT_SETTINGS): RuleFile<AlertRule> {
  const seenAgo = 'time() - vcm_agent_last_seen_timestamp_seconds';
  return {
    groups: [
      {
        name: 'vcm-hosts',
        rules: [
          alert(
            'VcmControlFailing',
            'warning',
            'vcm_control_state{state="fail"} == 1',
            s.failingFor,
            '{{ $labels.control }} fails on {{ $labels.host }} ({{ $labels.vendor }})',
            `The control {{ $labels.control }} on host {{ $labels.host }} (agent {{ $labels.agent_id }}) of vendor {{ $labels.vendor }} has failed for more than ${s.failingFor} under the collector's policy, and no exception covers it.`,
          ),
          alert(
            'VcmAgentSilent',
            'warning',
            `${seenAgo} > ${s.silentSeconds}`,
            '10m',
            'The agent on {{ $labels.host }} ({{ $labels.vendor }}) is silent',
            `The collector has accepted no result from host {{ $labels.host }} (agent {{ $labels.agent_id }}) of vendor {{ $labels.vendor }} for more than ${s.silentSeconds / 3600} h (last one {{ $value | humanizeDuration }} ago). Its controls show as stale, never as passing.`,
          ),
          alert(
            'VcmControlStale',
            'warning',
            // A silent agent is one alert (VcmAgentSilent), not one per control.
            `vcm_control_state{state="stale"} == 1 unless on (job, instance, vendor, host, agent_id) (${seenAgo} > ${s.silentSeconds})`,
            s.staleFor,
            '{{ $labels.control }} on {{ $labels.host }} ({{ $labels.vendor }}) has no fresh result',
            'The latest result of {{ $labels.control }} on host {{ $labels.host }} (agent {{ $labels.agent_id }}) of vendor {{ $labels.vendor }} is older than the policy\'s freshness window, or the control never reported, while the agent still delivers other results.',
          ),
          alert(
            'VcmExceptionExpiring',
            'warning',
            `(vcm_exception_expiry_timestamp_seconds - time()) > 0 < ${s.exceptionWarnDays * 86_400}`,
            undefined,
            'Exception {{ $labels.exception_id }} ({{ $labels.vendor }}, {{ $labels.control }}) expires soon',
            'Policy exception {{ $labels.exception_id }} for {{ $labels.control }} on vendor {{ $labels.vendor }} expires in {{ $value | humanizeDuration }}; the failures it waives will then count as failing.',
          ),
          alert(
            'VcmLeaverActivePastDeadline',
            'critical',
            'vcm_sso_leavers_past_deadline{status="active"} > 0',
            undefined,
            '{{ $value }} leaver(s) of {{ $labels.vendor }} still active past the deadline',
            'The newest sso_coverage result of vendor {{ $labels.vendor }} counts {{ $value }} people who left but whose account is still active after the deprovisioning deadline.',
          ),
        ],
      },
      {
        name: 'vcm-evidence',
        rules: [
          alert(
            'VcmChainGap',
            'warning',
            'increase(vcm_evidence_chain_gaps_total[15m]) > 0',
            undefined,
            'Gap in an evidence chain of {{ $labels.vendor }}',
            'An agent of vendor {{ $labels.vendor }} delivered results after a gap in its chain in the last 15 minutes: evidence the collector never received. The host is in the vendor\'s transparency log (a chain_gap entry).',
          ),
          alert(
            'VcmIngestRejectionBurst',
            'critical',
            `sum by (job, instance, reason) (increase(vcm_ingest_rejected_total{reason=~"bad_signature|replay"}[10m])) > ${s.burstPer10m}`,
            undefined,
            'Burst of {{ $labels.reason }} rejections',
            `The collector rejected more than ${s.burstPer10m} envelopes as {{ $labels.reason }} in 10 minutes: envelopes not signed by a registered key, or rewriting stored history.`,
          ),
          alert(
            'VcmEvidenceStorePreflightFailed',
            'critical',
            'vcm_evidence_store_preflight_ok == 0',
            undefined,
            'Evidence store failed its preflight; ingest is refused',
            'The collector {{ $labels.instance }} found its evidence store unprotected at start (S3 versioning or Object Lock) and refuses every result until it is fixed.',
          ),
          alert(
            'VcmEvidenceStoreErrors',
            'critical',
            'rate(vcm_evidence_store_errors_total[5m]) > 0',
            '10m',
            'Evidence store operations are failing',
            'Evidence store operations on {{ $labels.instance }} have failed for more than 10 minutes; results are refused and agents keep them in their spool.',
          ),
          alert(
            'VcmEvidenceFilesPending',
            'warning',
            'vcm_evidence_files_pending > 0',
            '15m',
            'Acknowledged evidence is not reaching its files',
            'On {{ $labels.instance }}, {{ $value }} acknowledged evidence records have been durable only in the journal for more than 15 minutes: the disk refuses the files.',
          ),
          alert(
            'VcmLogCheckpointOld',
            'warning',
            `(time() - vcm_log_checkpoint_timestamp_seconds > ${s.checkpointMaxAgeSeconds} and on (job, instance, vendor) delta(vcm_log_size[${s.checkpointMaxAgeSeconds}s]) > 0)\nor\n(vcm_log_size > 0 unless on (job, instance, vendor) vcm_log_checkpoint_timestamp_seconds)`,
            '5m',
            'No recent checkpoint for the log of {{ $labels.vendor }}',
            `The transparency log of vendor {{ $labels.vendor }} grows, but its latest signed checkpoint is older than ${s.checkpointMaxAgeSeconds / 60} minutes (or it has none): agents and auditors cannot check what was added.`,
          ),
          alert(
            'VcmLogInconsistent',
            'critical',
            'vcm_log_consistent == 0',
            undefined,
            'The transparency log of {{ $labels.vendor }} disagrees with its stored state',
            'A self-check found the log of vendor {{ $labels.vendor }} out of agreement with its stored rounds, tiles or checkpoints; no checkpoint is issued over it.',
          ),
        ],
      },
      {
        name: 'vcm-collector',
        rules: [
          alert(
            'VcmCollectorDown',
            'critical',
            `up{job="${JOB}"} == 0 or absent(up{job="${JOB}"})`,
            s.downFor,
            'The vcm collector is down or not scraped',
            `Prometheus cannot scrape job ${JOB} ({{ $labels.instance }}): agents spool their results, and no state, rule or dashboard is current.`,
          ),
        ],
      },
    ],
  };
}

/** Every alert, by name. */
export function allAlerts(s: AlertSettings = DEFAULT_ALERT_SETTINGS): AlertRule[] {
  return alertRules(s).groups.flatMap((g) => g.rules);
}
