// The counts of sso_coverage facts as metric samples for the collector's vcm_sso_* series.
// Labels are vendor-independent and come from fixed vocabularies (strength, sign_on_class,
// status); the collector adds `vendor`. Never a user: names live in the signed evidence only.
import type { Facts } from './schema.js';

export type SsoLabel = 'strength' | 'sign_on_class' | 'status';

export interface MetricSample {
  name: string;
  labels: Partial<Record<SsoLabel, string>>;
  value: number;
}

/** Every series ssoMetricSamples can produce: help text and label names, for registration. */
export const SSO_METRICS = {
  vcm_sso_accounts: { help: 'Staff accounts by Okta status (lower case)', labelNames: ['status'] },
  vcm_sso_mfa_eligible_accounts: { help: 'Active staff accounts: the denominator of MFA coverage', labelNames: [] },
  vcm_sso_mfa_accounts: {
    help: 'Active staff accounts with at least one active factor of the strength (any, phishing_resistant)',
    labelNames: ['strength'],
  },
  vcm_sso_mfa_strongest_accounts: {
    help: 'Active staff accounts by their strongest active factor (phishing_resistant, otp_push, phone_email, none); sums to the eligible accounts',
    labelNames: ['strength'],
  },
  vcm_sso_apps: { help: 'Active apps by sign-on class (federated, password_vaulted, other)', labelNames: ['sign_on_class'] },
  vcm_sso_app_assignments: { help: 'App assignments of active staff accounts by sign-on class', labelNames: ['sign_on_class'] },
  vcm_sso_roster_people: { help: 'Current roster people with and without an active account (status)', labelNames: ['status'] },
  vcm_sso_accounts_not_on_roster: { help: 'Active staff accounts matching nobody on the roster', labelNames: [] },
  vcm_sso_leavers: { help: 'Leavers reported, by the state of their accounts', labelNames: ['status'] },
  vcm_sso_leavers_past_deadline: {
    help: 'Leavers still active past the deadline (status=active) or deactivated after it (status=deprovisioned)',
    labelNames: ['status'],
  },
  vcm_sso_leaver_lag_max_seconds: {
    help: 'Longest lag from a roster end to deactivation (status=deprovisioned) or to now (status=active)',
    labelNames: ['status'],
  },
  vcm_sso_leaver_deadline_seconds: { help: 'The deprovisioning deadline the counts used', labelNames: [] },
  vcm_sso_stale_accounts: { help: 'Active staff accounts with no sign-in within the staleness window', labelNames: [] },
  vcm_sso_okta_password_accounts: { help: 'Active Okta-mastered staff accounts with a password', labelNames: [] },
  vcm_sso_okta_password_age_max_seconds: { help: 'Age of the oldest such password', labelNames: [] },
  vcm_sso_api_tokens_readable: { help: '1 when the API token list could be read, else 0', labelNames: [] },
  vcm_sso_api_tokens: { help: 'Okta API tokens', labelNames: [] },
  vcm_sso_api_token_age_max_seconds: { help: 'Age of the oldest Okta API token', labelNames: [] },
} as const satisfies Record<string, { help: string; labelNames: readonly SsoLabel[] }>;

export type SsoMetricName = keyof typeof SSO_METRICS;

const DAY_S = 86_400;

/** Pure: the same facts always give the same samples, in the same order. */
export function ssoMetricSamples(facts: Pick<Facts, 'counts' | 'countedWith'>): MetricSample[] {
  const c = facts.counts;
  const out: MetricSample[] = [];
  const add = (name: SsoMetricName, value: number, labels: MetricSample['labels'] = {}) => out.push({ name, labels, value });

  for (const status of Object.keys(c.accounts).sort()) add('vcm_sso_accounts', c.accounts[status]!, { status: status.toLowerCase() });
  add('vcm_sso_mfa_eligible_accounts', c.activeAccounts);
  add('vcm_sso_mfa_accounts', c.mfa.any.numerator, { strength: 'any' });
  add('vcm_sso_mfa_accounts', c.mfa.phishingResistant.numerator, { strength: 'phishing_resistant' });
  for (const strength of ['phishing_resistant', 'otp_push', 'phone_email', 'none'] as const) {
    add('vcm_sso_mfa_strongest_accounts', c.mfa.strongest[strength], { strength });
  }
  for (const cls of ['federated', 'password_vaulted', 'other'] as const) add('vcm_sso_apps', c.apps[cls], { sign_on_class: cls });
  add('vcm_sso_app_assignments', c.appAssignments.federated.numerator, { sign_on_class: 'federated' });
  add('vcm_sso_app_assignments', c.appAssignments.passwordVaulted.numerator, { sign_on_class: 'password_vaulted' });
  add('vcm_sso_app_assignments', c.appAssignments.other, { sign_on_class: 'other' });

  if (c.roster !== null) {
    add('vcm_sso_roster_people', c.roster.withAccount.numerator, { status: 'with_account' });
    add('vcm_sso_roster_people', c.roster.withoutAccount, { status: 'without_account' });
    add('vcm_sso_accounts_not_on_roster', c.roster.accountsNotOnRoster.numerator);
  }
  if (c.leavers !== null) {
    for (const state of ['active', 'suspended', 'pending', 'deprovisioned', 'no_account'] as const) {
      add('vcm_sso_leavers', c.leavers.byState[state], { status: state });
    }
    add('vcm_sso_leavers_past_deadline', c.leavers.activePastDeadline, { status: 'active' });
    add('vcm_sso_leavers_past_deadline', c.leavers.deprovisionedLate, { status: 'deprovisioned' });
    for (const state of ['active', 'deprovisioned'] as const) {
      const lag = c.leavers.maxLagSeconds[state];
      if (lag !== null) add('vcm_sso_leaver_lag_max_seconds', lag, { status: state });
    }
    add('vcm_sso_leaver_deadline_seconds', facts.countedWith.leaverDeadlineHours * 3600);
  }
  add('vcm_sso_stale_accounts', c.stale.numerator);
  add('vcm_sso_okta_password_accounts', c.passwords.oktaMastered);
  if (c.passwords.maxAgeDays !== null) add('vcm_sso_okta_password_age_max_seconds', c.passwords.maxAgeDays * DAY_S);
  add('vcm_sso_api_tokens_readable', c.apiTokens.readable ? 1 : 0);
  if (c.apiTokens.readable) {
    add('vcm_sso_api_tokens', c.apiTokens.tokens);
    if (c.apiTokens.maxAgeDays !== null) add('vcm_sso_api_token_age_max_seconds', c.apiTokens.maxAgeDays * DAY_S);
  }
  return out;
}
