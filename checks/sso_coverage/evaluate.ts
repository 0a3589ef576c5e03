// The verdict from the facts and the policy: pure, run by the agent and by the collector.
import type { Evaluation, Reason } from '../types.js';
import { isActivePastDeadline, isActiveStatus, isDeprovisionedLate, isStale } from './measure.js';
import type { Config, Facts } from './schema.js';
import { verdict } from '../verdict.js';

/** Fail codes of this check; README.md documents each one, and a test keeps the two equal. */
export const SSO_FAIL_CODES = {
  CHK_FAIL_MFA_MISSING: 'an active staff account has no MFA factor',
  CHK_FAIL_MFA_NOT_PHISHING_RESISTANT: 'an active staff account has no phishing-resistant factor, and the policy requires one',
  CHK_FAIL_PASSWORD_VAULTED_APP: 'staff accounts are assigned an app that signs in with a vaulted password',
  CHK_FAIL_LEAVER_ACTIVE: "a leaver's account is still active past the deprovisioning deadline",
  CHK_FAIL_LEAVER_DEPROVISIONED_LATE: "a leaver's accounts were deactivated after the deadline",
  CHK_FAIL_STALE_ACCOUNT: 'an active staff account has not signed in within the staleness window',
  CHK_FAIL_ACCOUNT_NOT_ON_ROSTER: 'an active staff account matches nobody on the roster',
} as const;
export type SsoFailCode = keyof typeof SSO_FAIL_CODES;

const fail = (code: SsoFailCode, subject: string): Reason => ({ code, message: SSO_FAIL_CODES[code], subject });

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

export function evaluate(facts: Facts, config: Config): Evaluation {
  const now = new Date(facts.observedAt);
  const failures: Reason[] = [];
  const unresolved: Reason[] = [];
  const active = facts.accounts.filter((a) => isActiveStatus(a.status));

  if (active.length === 0) {
    unresolved.push({ code: 'CHK_ERR_UNRESOLVED', message: 'the population has no active account: nothing to judge' });
  }
  for (const a of active) {
    if (a.factors === null) {
      unresolved.push({ code: 'CHK_ERR_UNRESOLVED', message: "the account's factors were not read", subject: a.login });
    } else if (a.mfa === 'none') {
      failures.push(fail('CHK_FAIL_MFA_MISSING', a.login));
    } else if (config.requirePhishingResistant && a.mfa !== 'phishing_resistant') {
      failures.push(fail('CHK_FAIL_MFA_NOT_PHISHING_RESISTANT', a.login));
    }
    if (config.failOnStale && isStale(a, config.staleAfterDays, now)) failures.push(fail('CHK_FAIL_STALE_ACCOUNT', a.login));
  }

  if (!config.allowVaultedApps) {
    for (const app of facts.apps) {
      if (app.signOnClass === 'password_vaulted' && app.assignments > 0) failures.push(fail('CHK_FAIL_PASSWORD_VAULTED_APP', app.label));
    }
  }

  const needsRoster = config.roster !== undefined || config.failOnAccountsNotOnRoster;
  if (needsRoster && facts.roster === null) {
    unresolved.push({ code: 'CHK_ERR_UNRESOLVED', message: 'the policy names a roster, and these facts were collected without one' });
  }
  if (facts.roster !== null) {
    for (const l of facts.leavers) {
      const who = l.accounts.map((a) => a.login).join(', ') || l.key;
      if (isActivePastDeadline(l, config.leaverDeadlineHours, now)) failures.push(fail('CHK_FAIL_LEAVER_ACTIVE', who));
      if (config.failOnLateDeprovisioning) {
        if (isDeprovisionedLate(l, config.leaverDeadlineHours)) failures.push(fail('CHK_FAIL_LEAVER_DEPROVISIONED_LATE', who));
        else if (l.state === 'deprovisioned' && l.deprovisionedAt === null) {
          unresolved.push({ code: 'CHK_ERR_UNRESOLVED', message: 'when this leaver was deactivated is not known', subject: who });
        }
      }
    }
    if (config.failOnAccountsNotOnRoster) {
      for (const a of active) if (a.roster === 'absent') failures.push(fail('CHK_FAIL_ACCOUNT_NOT_ON_ROSTER', a.login));
    }
  }

  const order = (a: Reason, b: Reason) => cmp(a.code, b.code) || cmp(a.subject ?? '', b.subject ?? '');
  return verdict(failures.sort(order), unresolved.sort(order));
}
