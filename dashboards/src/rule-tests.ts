// `promtool test rules` cases: for every alert, synthetic series on which it fires (with the
// labels and annotations expected) and series on which it must stay silent; and the recorded
// ratios on known counts.
import { JOB, RULES } from './names.js';
import { allAlerts, DEFAULT_ALERT_SETTINGS, type AlertRule } from './rules.js';
import type { Yaml } from './yaml.js';

const T = `job="${JOB}",instance="collector:8470"`;
const TARGET = { job: JOB, instance: 'collector:8470' };

interface Series {
  series: string;
  values: string;
}

interface Expected {
  labels: Record<string, string>;
  /** What `{{ $value }}` (or `| humanizeDuration`) renders as, where a template shows it. */
  value?: string;
}

export interface AlertCase {
  alert: string;
  /** What the case shows: it fires, or why it stays silent. */
  title: string;
  series: Series[];
  evalTime: string;
  /** Empty: the alert must be silent at evalTime. */
  expect: Expected[];
}

export const ALERT_CASES: AlertCase[] = [
  {
    alert: 'VcmControlFailing',
    title: 'fires after an hour of failing',
    series: [{ series: `vcm_control_state{${T},vendor="acme",host="web-1",agent_id="id-web-1",control="vpn",state="fail"}`, values: '1x90' }],
    evalTime: '65m',
    expect: [{ labels: { ...TARGET, vendor: 'acme', host: 'web-1', agent_id: 'id-web-1', control: 'vpn', state: 'fail' } }],
  },
  {
    alert: 'VcmControlFailing',
    title: 'two hosts of one name (cloned VMs) are two alerts, told apart by agent_id',
    series: [
      { series: `vcm_control_state{${T},vendor="acme",host="clone",agent_id="id-clone-a",control="vpn",state="fail"}`, values: '1x90' },
      { series: `vcm_control_state{${T},vendor="acme",host="clone",agent_id="id-clone-b",control="vpn",state="fail"}`, values: '1x90' },
    ],
    evalTime: '65m',
    expect: [
      { labels: { ...TARGET, vendor: 'acme', host: 'clone', agent_id: 'id-clone-a', control: 'vpn', state: 'fail' } },
      { labels: { ...TARGET, vendor: 'acme', host: 'clone', agent_id: 'id-clone-b', control: 'vpn', state: 'fail' } },
    ],
  },
  {
    alert: 'VcmControlFailing',
    title: 'silent for a waived failure, and for a failure shorter than the threshold',
    series: [
      { series: `vcm_control_state{${T},vendor="acme",host="web-1",agent_id="id-web-1",control="vpn",state="waived"}`, values: '1x90' },
      // Failing for 30 minutes, then passing.
      { series: `vcm_control_state{${T},vendor="acme",host="web-2",agent_id="id-web-2",control="vpn",state="fail"}`, values: '1x30 stale' },
      { series: `vcm_control_state{${T},vendor="acme",host="web-2",agent_id="id-web-2",control="vpn",state="pass"}`, values: '_x30 1x60' },
    ],
    evalTime: '65m',
    expect: [],
  },
  {
    alert: 'VcmAgentSilent',
    title: 'fires when nothing was accepted for more than 2 h',
    // Last seen at t=0, never again.
    series: [{ series: `vcm_agent_last_seen_timestamp_seconds{${T},vendor="acme",host="web-3",agent_id="id-web-3"}`, values: '0x180' }],
    evalTime: '2h15m',
    expect: [{ labels: { ...TARGET, vendor: 'acme', host: 'web-3', agent_id: 'id-web-3' }, value: '2h 15m 0s' }],
  },
  {
    alert: 'VcmAgentSilent',
    title: 'silent for an agent quiet for less than the threshold, and for one that delivers',
    series: [
      { series: `vcm_agent_last_seen_timestamp_seconds{${T},vendor="acme",host="web-3",agent_id="id-web-3"}`, values: '0x180' },
      { series: `vcm_agent_last_seen_timestamp_seconds{${T},vendor="acme",host="web-4",agent_id="id-web-4"}`, values: '0+60x180' },
    ],
    evalTime: '1h55m',
    expect: [],
  },
  {
    alert: 'VcmControlStale',
    title: 'fires for a stale control of an agent that still delivers',
    series: [
      { series: `vcm_control_state{${T},vendor="globex",host="db-1",agent_id="id-db-1",control="credential_age",state="stale"}`, values: '1x60' },
      { series: `vcm_agent_last_seen_timestamp_seconds{${T},vendor="globex",host="db-1",agent_id="id-db-1"}`, values: '0+60x60' },
    ],
    evalTime: '45m',
    expect: [{ labels: { ...TARGET, vendor: 'globex', host: 'db-1', agent_id: 'id-db-1', control: 'credential_age', state: 'stale' } }],
  },
  {
    alert: 'VcmControlStale',
    title: 'silent while stale for less than 30 minutes',
    series: [
      { series: `vcm_control_state{${T},vendor="globex",host="db-1",agent_id="id-db-1",control="vpn",state="pass"}`, values: '1x30 stale' },
      { series: `vcm_control_state{${T},vendor="globex",host="db-1",agent_id="id-db-1",control="vpn",state="stale"}`, values: '_x30 1x30' },
      { series: `vcm_agent_last_seen_timestamp_seconds{${T},vendor="globex",host="db-1",agent_id="id-db-1"}`, values: '0+60x60' },
    ],
    evalTime: '50m',
    expect: [],
  },
  {
    alert: 'VcmControlStale',
    title: 'silent for the controls of a silent agent (VcmAgentSilent covers them)',
    series: [
      { series: `vcm_control_state{${T},vendor="globex",host="db-2",agent_id="id-db-2",control="vpn",state="stale"}`, values: '1x200' },
      { series: `vcm_agent_last_seen_timestamp_seconds{${T},vendor="globex",host="db-2",agent_id="id-db-2"}`, values: '0x200' },
    ],
    evalTime: '2h50m',
    expect: [],
  },
  {
    alert: 'VcmChainGap',
    title: 'fires when a vendor\'s gap counter moves from 0',
    series: [{ series: `vcm_evidence_chain_gaps_total{${T},vendor="acme"}`, values: '0 0 0 1 1 1 1' }],
    evalTime: '5m',
    expect: [{ labels: { ...TARGET, vendor: 'acme' } }],
  },
  {
    alert: 'VcmChainGap',
    title: 'silent while the counter stays at 0, and 15 minutes after the last gap',
    series: [
      { series: `vcm_evidence_chain_gaps_total{${T},vendor="acme"}`, values: '0 1 1x40' },
      { series: `vcm_evidence_chain_gaps_total{${T},vendor="globex"}`, values: '0x40' },
    ],
    evalTime: '30m',
    expect: [],
  },
  {
    alert: 'VcmIngestRejectionBurst',
    title: 'fires on a burst of bad signatures',
    series: [{ series: `vcm_ingest_rejected_total{${T},reason="bad_signature"}`, values: '0+5x20' }],
    evalTime: '15m',
    expect: [{ labels: { ...TARGET, reason: 'bad_signature' } }],
  },
  {
    alert: 'VcmIngestRejectionBurst',
    title: 'silent for a trickle of bad signatures and a burst of other reasons',
    series: [
      { series: `vcm_ingest_rejected_total{${T},reason="bad_signature"}`, values: '0+0.5x20' },
      { series: `vcm_ingest_rejected_total{${T},reason="replay"}`, values: '0x20' },
      { series: `vcm_ingest_rejected_total{${T},reason="too_large"}`, values: '0+50x20' },
    ],
    evalTime: '15m',
    expect: [],
  },
  {
    alert: 'VcmEvidenceStorePreflightFailed',
    title: 'fires when the preflight failed',
    series: [{ series: `vcm_evidence_store_preflight_ok{${T}}`, values: '0x10' }],
    evalTime: '5m',
    expect: [{ labels: { ...TARGET } }],
  },
  {
    alert: 'VcmEvidenceStorePreflightFailed',
    title: 'silent when it passed',
    series: [{ series: `vcm_evidence_store_preflight_ok{${T}}`, values: '1x10' }],
    evalTime: '5m',
    expect: [],
  },
  {
    alert: 'VcmEvidenceStoreErrors',
    title: 'fires after 10 minutes of store errors',
    series: [{ series: `vcm_evidence_store_errors_total{${T}}`, values: '0+3x30' }],
    evalTime: '20m',
    expect: [{ labels: { ...TARGET } }],
  },
  {
    alert: 'VcmEvidenceStoreErrors',
    title: 'silent once the errors stopped for 5 minutes',
    series: [{ series: `vcm_evidence_store_errors_total{${T}}`, values: '0+3x10 30x30' }],
    evalTime: '25m',
    expect: [],
  },
  {
    alert: 'VcmEvidenceFilesPending',
    title: 'fires when files stay pending for 15 minutes',
    series: [{ series: `vcm_evidence_files_pending{${T}}`, values: '40x30' }],
    evalTime: '20m',
    expect: [{ labels: { ...TARGET }, value: '40' }],
  },
  {
    alert: 'VcmEvidenceFilesPending',
    title: 'silent when the backlog drains between bursts',
    series: [{ series: `vcm_evidence_files_pending{${T}}`, values: '40 0 40 0 40 0 40 0 40 0 40 0 40 0 40 0 40 0 40 0 40 0' }],
    evalTime: '20m',
    expect: [],
  },
  {
    alert: 'VcmExceptionExpiring',
    title: 'fires for an exception expiring within 7 days',
    // Expires at 5 days (432000 s) after the start.
    series: [{ series: `vcm_exception_expiry_timestamp_seconds{${T},vendor="acme",control="disk_encryption",exception_id="EXC-7"}`, values: '432000x10' }],
    evalTime: '10m',
    expect: [{ labels: { ...TARGET, vendor: 'acme', control: 'disk_encryption', exception_id: 'EXC-7' }, value: '4d 23h 50m 0s' }],
  },
  {
    alert: 'VcmExceptionExpiring',
    title: 'silent for an exception 10 days out, and for one already expired',
    series: [
      { series: `vcm_exception_expiry_timestamp_seconds{${T},vendor="acme",control="vpn",exception_id="EXC-8"}`, values: '864000x10' },
      { series: `vcm_exception_expiry_timestamp_seconds{${T},vendor="acme",control="usb_policy",exception_id="EXC-9"}`, values: '60x10' },
    ],
    evalTime: '10m',
    expect: [],
  },
  {
    alert: 'VcmLeaverActivePastDeadline',
    title: 'fires while a leaver is active past the deadline',
    series: [{ series: `vcm_sso_leavers_past_deadline{${T},vendor="globex",status="active"}`, values: '2x10' }],
    evalTime: '5m',
    expect: [{ labels: { ...TARGET, vendor: 'globex', status: 'active' }, value: '2' }],
  },
  {
    alert: 'VcmLeaverActivePastDeadline',
    title: 'silent for leavers deprovisioned late, and none active',
    series: [
      { series: `vcm_sso_leavers_past_deadline{${T},vendor="globex",status="active"}`, values: '0x10' },
      { series: `vcm_sso_leavers_past_deadline{${T},vendor="globex",status="deprovisioned"}`, values: '3x10' },
    ],
    evalTime: '5m',
    expect: [],
  },
  {
    alert: 'VcmLogCheckpointOld',
    title: 'fires when a growing log has no checkpoint for 30 minutes',
    series: [
      { series: `vcm_log_size{${T},vendor="acme"}`, values: '10+1x60' },
      { series: `vcm_log_checkpoint_timestamp_seconds{${T},vendor="acme"}`, values: '0x60' },
    ],
    evalTime: '40m',
    expect: [{ labels: { ...TARGET, vendor: 'acme' } }],
  },
  {
    alert: 'VcmLogCheckpointOld',
    title: 'fires for a log with entries and no checkpoint at all',
    series: [{ series: `vcm_log_size{${T},vendor="initech"}`, values: '3x20' }],
    evalTime: '10m',
    expect: [{ labels: { ...TARGET, vendor: 'initech' } }],
  },
  {
    alert: 'VcmLogCheckpointOld',
    title: 'silent for an idle log with an old checkpoint, and a growing one checkpointed each minute',
    series: [
      { series: `vcm_log_size{${T},vendor="acme"}`, values: '10x60' },
      { series: `vcm_log_checkpoint_timestamp_seconds{${T},vendor="acme"}`, values: '0x60' },
      { series: `vcm_log_size{${T},vendor="globex"}`, values: '10+1x60' },
      { series: `vcm_log_checkpoint_timestamp_seconds{${T},vendor="globex"}`, values: '0+60x60' },
    ],
    evalTime: '40m',
    expect: [],
  },
  {
    alert: 'VcmLogInconsistent',
    title: 'fires when a self-check found the log inconsistent',
    series: [{ series: `vcm_log_consistent{${T},vendor="acme"}`, values: '1 1 0x10' }],
    evalTime: '5m',
    expect: [{ labels: { ...TARGET, vendor: 'acme' } }],
  },
  {
    alert: 'VcmLogInconsistent',
    title: 'silent for a consistent log',
    series: [{ series: `vcm_log_consistent{${T},vendor="acme"}`, values: '1x10' }],
    evalTime: '5m',
    expect: [],
  },
  {
    alert: 'VcmCollectorDown',
    title: 'fires when the scrape fails',
    series: [{ series: `up{${T}}`, values: '1 0x20' }],
    evalTime: '10m',
    expect: [{ labels: { ...TARGET } }],
  },
  {
    alert: 'VcmCollectorDown',
    title: 'fires when Prometheus has no collector target at all',
    series: [{ series: 'up{job="node",instance="node:9100"}', values: '1x20' }],
    evalTime: '10m',
    expect: [{ labels: { job: JOB } }],
  },
  {
    alert: 'VcmCollectorDown',
    title: 'silent while up, and after a scrape failure shorter than 5 minutes',
    series: [{ series: `up{${T}}`, values: '1 0 0 1x20' }],
    evalTime: '10m',
    expect: [],
  },
];

/** Recorded series on known counts. */
const RECORDING_TESTS: Yaml = {
  interval: '1m',
  input_series: [
    ...Object.entries({ pass: 3, fail: 1, unknown: 0, stale: 1, waived: 0 }).map(([state, n]) => ({
      series: `vcm_control_hosts{${T},vendor="acme",control="vpn",state="${state}"}`,
      values: `${n}x10`,
    })),
    { series: `vcm_sso_mfa_eligible_accounts{${T},vendor="acme"}`, values: '200x10' },
    { series: `vcm_sso_mfa_accounts{${T},vendor="acme",strength="any"}`, values: '190x10' },
    { series: `vcm_sso_mfa_accounts{${T},vendor="acme",strength="phishing_resistant"}`, values: '50x10' },
    { series: `vcm_sso_mfa_eligible_accounts{${T},vendor="empty"}`, values: '0x10' },
    { series: `vcm_sso_mfa_accounts{${T},vendor="empty",strength="any"}`, values: '0x10' },
    { series: `vcm_sso_app_assignments{${T},vendor="acme",sign_on_class="federated"}`, values: '30x10' },
    { series: `vcm_sso_app_assignments{${T},vendor="acme",sign_on_class="password_vaulted"}`, values: '10x10' },
    { series: `vcm_sso_app_assignments{${T},vendor="acme",sign_on_class="other"}`, values: '0x10' },
  ],
  promql_expr_test: [
    {
      expr: RULES.stateRatio,
      eval_time: '5m',
      exp_samples: Object.entries({ pass: 0.6, fail: 0.2, unknown: 0, stale: 0.2, waived: 0 }).map(([state, v]) => ({
        labels: `${RULES.stateRatio}{${T},vendor="acme",control="vpn",state="${state}"}`,
        value: v,
      })),
    },
    {
      expr: `${RULES.vendorStateRatio}{state="pass"}`,
      eval_time: '5m',
      exp_samples: [{ labels: `${RULES.vendorStateRatio}{${T},vendor="acme",state="pass"}`, value: 0.6 }],
    },
    {
      expr: RULES.mfaRatio,
      eval_time: '5m',
      exp_samples: [
        { labels: `${RULES.mfaRatio}{${T},vendor="acme",strength="any"}`, value: 0.95 },
        { labels: `${RULES.mfaRatio}{${T},vendor="acme",strength="phishing_resistant"}`, value: 0.25 },
      ],
    },
    {
      expr: RULES.assignmentRatio,
      eval_time: '5m',
      exp_samples: [
        { labels: `${RULES.assignmentRatio}{${T},vendor="acme",sign_on_class="federated"}`, value: 0.75 },
        { labels: `${RULES.assignmentRatio}{${T},vendor="acme",sign_on_class="password_vaulted"}`, value: 0.25 },
        { labels: `${RULES.assignmentRatio}{${T},vendor="acme",sign_on_class="other"}`, value: 0 },
      ],
    },
  ],
};

/** An annotation as Prometheus renders it for these labels (the templates use only labels and $value). */
export function renderTemplate(template: string, e: Expected): string {
  return template.replace(/\{\{ (\$labels\.(\w+)|\$value(?: \| humanizeDuration)?) \}\}/g, (_m, _all, label: string | undefined) => {
    if (label !== undefined) return e.labels[label] ?? '';
    if (e.value === undefined) throw new Error(`a case for a template that shows $value must give it: ${template}`);
    return e.value;
  });
}

function alertTest(c: AlertCase, rule: AlertRule): Yaml {
  return {
    interval: '1m',
    input_series: c.series.map((s) => ({ series: s.series, values: s.values })),
    alert_rule_test: [
      {
        eval_time: c.evalTime,
        alertname: c.alert,
        exp_alerts: c.expect.map((e) => ({
          exp_labels: { ...e.labels, severity: rule.labels.severity },
          exp_annotations: {
            summary: renderTemplate(rule.annotations.summary, e),
            description: renderTemplate(rule.annotations.description, e),
            runbook: rule.annotations.runbook,
          },
        })),
      },
    ],
  };
}

/** The promtool test file; rule files are named relative to it. */
export function ruleTests(ruleFiles: string[]): Yaml {
  const alerts = new Map(allAlerts(DEFAULT_ALERT_SETTINGS).map((a) => [a.alert, a]));
  return {
    rule_files: ruleFiles,
    evaluation_interval: '1m',
    tests: [
      RECORDING_TESTS,
      ...ALERT_CASES.map((c) => {
        const rule = alerts.get(c.alert);
        if (rule === undefined) throw new Error(`no alert ${c.alert}`);
        return alertTest(c, rule);
      }),
    ],
  };
}
