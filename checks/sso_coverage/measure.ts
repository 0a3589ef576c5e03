// From what the Okta API returned (plain records, see okta.ts) to the check's facts: population,
// MFA strength, app sign-on classes, roster join, leavers and their lag, stale accounts,
// credential ages, and the numerator/denominator counts. Pure: no I/O, the clock is a parameter.
import {
  ACCESS_STATUSES,
  FACTOR_STRENGTH,
  SIGN_ON_CLASS,
  type Account,
  type App,
  type Config,
  type Counts,
  type Facts,
  type IdpCredential,
  type Leaver,
  type LeaverState,
  type MfaClass,
  type Ratio,
  type SignOnClass,
  type Strength,
} from './schema.js';
import { accountKey, rosterPeople, type JoinOn, type RosterRow } from './roster.js';

export interface RawUser {
  id: string;
  status: string;
  login: string;
  email: string | null;
  employeeNumber: string | null;
  created: string | null;
  lastLogin: string | null;
  passwordChanged: string | null;
  statusChanged: string | null;
  credentialProvider: string | null;
  hasPassword: boolean;
  /** The profile attribute the population selector names, as a string (absent: null). */
  selectorValue: string | null;
}

export interface RawFactor {
  factorType: string;
  provider: string | null;
  status: string | null;
}

export interface RawApp {
  id: string;
  label: string;
  name: string | null;
  signOnMode: string | null;
  status: string | null;
}

export interface RawApiToken {
  id: string;
  name: string;
  userId: string | null;
  created: string | null;
  expiresAt: string | null;
}

export type PopulationSelector = Facts['population']['selector'];

export interface RawObservations {
  observedAt: Date;
  source: Omit<Facts['source'], 'endpoints' | 'requests' | 'rateLimitRetries'> & {
    endpoints: readonly string[];
    requests: number;
    rateLimitRetries: number;
  };
  selector: PopulationSelector;
  /** Every account of the org, DEPROVISIONED ones included. */
  users: readonly RawUser[];
  /** Group members' ids when the population is a group, else null. */
  groupMemberIds: ReadonlySet<string> | null;
  /** Active factors per account (only accounts whose factors were read). */
  factors: ReadonlyMap<string, readonly RawFactor[]>;
  /** Accounts that disappeared between the user list and their factor read. */
  vanished: number;
  apps: readonly RawApp[];
  /** User ids assigned to each active app. */
  appAssignments: ReadonlyMap<string, readonly string[]>;
  systemLog: Facts['systemLog'];
  /** user id → the latest `user.lifecycle.deactivate` time found in the System Log. */
  deactivations: ReadonlyMap<string, string>;
  apiTokens: { readable: true; tokens: readonly RawApiToken[] } | { readable: false; reason: string };
  roster: { file: string; joinOn: JoinOn; rows: readonly RosterRow[] } | null;
}

/** What the identity side of credential_age reads: accounts, the population, API tokens. */
export type IdentityObservations = Pick<RawObservations, 'observedAt' | 'source' | 'selector' | 'users' | 'groupMemberIds' | 'apiTokens'>;

const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;

// Code-unit order: independent of the host's locale.
const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

const ratio = (numerator: number, denominator: number): Ratio => ({ numerator, denominator });

export function factorStrength(factorType: string): Strength | null {
  return FACTOR_STRENGTH[factorType] ?? null;
}

/** The strongest class among active factors; `none` when no factor counts as MFA. */
export function strongestClass(factorTypes: readonly string[]): MfaClass {
  const classes = new Set(factorTypes.map(factorStrength));
  if (classes.has('phishing_resistant')) return 'phishing_resistant';
  if (classes.has('otp_push')) return 'otp_push';
  if (classes.has('phone_email')) return 'phone_email';
  return 'none';
}

export function signOnClass(signOnMode: string | null): SignOnClass {
  return (signOnMode !== null ? SIGN_ON_CLASS[signOnMode] : undefined) ?? 'other';
}

export const isActiveStatus = (status: string): boolean => ACCESS_STATUSES.has(status);

export function ageDays(since: string | null, now: Date): number | null {
  if (since === null) return null;
  return Math.floor((now.getTime() - Date.parse(since)) / DAY_MS);
}

/** No sign-in for `days`; an account that never signed in counts from its creation. */
export function isStale(a: Pick<Account, 'lastLogin' | 'created'>, days: number, now: Date): boolean {
  const ref = a.lastLogin ?? a.created;
  if (ref === null) return true;
  return now.getTime() - Date.parse(ref) > days * DAY_MS;
}

export function leaverDeadline(l: Pick<Leaver, 'end'>, hours: number): number {
  return Date.parse(l.end) + hours * HOUR_MS;
}

/** Seconds from the end to deactivation (deactivated) or to now (still active); else null. */
export function leaverLagSeconds(l: Leaver, now: Date): number | null {
  if (l.state === 'active') return Math.round((now.getTime() - Date.parse(l.end)) / 1000);
  if (l.state === 'deprovisioned' && l.deprovisionedAt !== null) return Math.round((Date.parse(l.deprovisionedAt) - Date.parse(l.end)) / 1000);
  return null;
}

export function isActivePastDeadline(l: Leaver, hours: number, now: Date): boolean {
  return l.state === 'active' && now.getTime() > leaverDeadline(l, hours);
}

export function isDeprovisionedLate(l: Leaver, hours: number): boolean {
  return l.state === 'deprovisioned' && l.deprovisionedAt !== null && Date.parse(l.deprovisionedAt) > leaverDeadline(l, hours);
}

function leaverState(accounts: readonly RawUser[]): LeaverState {
  if (accounts.length === 0) return 'no_account';
  if (accounts.some((a) => isActiveStatus(a.status))) return 'active';
  if (accounts.some((a) => a.status === 'SUSPENDED')) return 'suspended';
  if (accounts.some((a) => a.status !== 'DEPROVISIONED')) return 'pending';
  return 'deprovisioned';
}

/** Whether an account belongs to the population the selector names (group members or attribute value). */
export function inPopulation(u: RawUser, raw: Pick<RawObservations, 'selector' | 'groupMemberIds'>): boolean {
  switch (raw.selector.kind) {
    case 'all':
      return true;
    case 'group':
      return raw.groupMemberIds?.has(u.id) ?? false;
    case 'profileAttribute':
      return u.selectorValue === raw.selector.value;
  }
}

const keyOf = (u: RawUser, joinOn: JoinOn) => accountKey({ email: u.email, login: u.login, employeeNumber: u.employeeNumber }, joinOn);

function apiTokenCredentials(raw: IdentityObservations, loginById: ReadonlyMap<string, string>): IdpCredential[] {
  if (!raw.apiTokens.readable) return [];
  return raw.apiTokens.tokens
    .map(
      (t): IdpCredential => ({
        kind: 'idp_api_token',
        account: (t.userId !== null ? (loginById.get(t.userId) ?? t.userId) : null) ?? t.name,
        lastChanged: t.created,
        ageDays: ageDays(t.created, raw.observedAt),
        name: t.name,
        id: t.id,
        expiresAt: t.expiresAt,
      }),
    )
    .sort((a, b) => cmp(a.account, b.account) || cmp(a.id ?? '', b.id ?? ''));
}

const maxOrNull = (xs: readonly number[]): number | null => (xs.length === 0 ? null : Math.max(...xs));

export function buildFacts(raw: RawObservations, config: Config): Facts {
  const now = raw.observedAt;
  const joinOn = raw.roster?.joinOn ?? 'email';
  const people = raw.roster === null ? null : rosterPeople(raw.roster.rows, joinOn, now);
  const personByKey = new Map((people ?? []).map((p) => [p.key, p]));

  const population = raw.users.filter((u) => inPopulation(u, raw));
  const accounts: Account[] = population
    .map((u): Account => {
      const factors = raw.factors.get(u.id);
      const types = factors === undefined ? null : [...new Set(factors.filter((f) => f.status === 'ACTIVE').map((f) => f.factorType))].sort(cmp);
      const key = people === null ? null : keyOf(u, joinOn);
      return {
        id: u.id,
        login: u.login,
        email: u.email,
        status: u.status,
        created: u.created,
        lastLogin: u.lastLogin,
        passwordChanged: u.passwordChanged,
        credentialProvider: u.credentialProvider,
        factors: types,
        mfa: types === null ? 'none' : strongestClass(types),
        roster: people === null ? null : ((key !== null ? personByKey.get(key)?.state : undefined) ?? 'absent'),
      };
    })
    .sort((a, b) => cmp(a.login, b.login) || cmp(a.id, b.id));
  const active = accounts.filter((a) => isActiveStatus(a.status));
  const activeIds = new Set(active.map((a) => a.id));
  const loginById = new Map(raw.users.map((u) => [u.id, u.login]));

  const apps: App[] = raw.apps
    .filter((a) => a.status === 'ACTIVE')
    .map((a): App => {
      const cls = signOnClass(a.signOnMode);
      const assigned = [...new Set(raw.appAssignments.get(a.id) ?? [])].filter((id) => activeIds.has(id));
      return {
        id: a.id,
        label: a.label,
        name: a.name,
        signOnMode: a.signOnMode,
        signOnClass: cls,
        assignments: assigned.length,
        assignees: cls === 'password_vaulted' ? assigned.map((id) => loginById.get(id) ?? id).sort(cmp) : [],
      };
    })
    .sort((a, b) => cmp(a.label, b.label) || cmp(a.id, b.id));

  // Roster join over every account of the org: a leaver may have left the staff group already.
  let rosterFacts: Facts['roster'] = null;
  let leavers: Leaver[] = [];
  if (people !== null && raw.roster !== null) {
    const usersByKey = new Map<string, RawUser[]>();
    for (const u of raw.users) {
      const k = keyOf(u, joinOn);
      if (k === null) continue;
      const list = usersByKey.get(k) ?? [];
      list.push(u);
      usersByKey.set(k, list);
    }
    const current = people.filter((p) => p.state === 'current');
    const currentWithoutAccount = current
      .filter((p) => !(usersByKey.get(p.key) ?? []).some((u) => isActiveStatus(u.status)))
      .map((p) => p.ids.join(','))
      .sort(cmp);
    rosterFacts = {
      file: raw.roster.file,
      joinOn,
      people: people.length,
      current: current.length,
      future: people.filter((p) => p.state === 'future').length,
      leavers: people.filter((p) => p.state === 'leaver').length,
      currentWithoutAccount,
    };
    const lookbackStart = now.getTime() - config.leaverLookbackDays * DAY_MS;
    leavers = people
      .filter((p) => p.state === 'leaver')
      .map((p): Leaver => {
        const matched = [...(usersByKey.get(p.key) ?? [])].sort((a, b) => cmp(a.login, b.login) || cmp(a.id, b.id));
        const state = leaverState(matched);
        let deprovisionedAt: string | null = null;
        let deprovisionedSource: Leaver['deprovisionedSource'] = null;
        if (state === 'deprovisioned') {
          const fromLog = matched.map((u) => raw.deactivations.get(u.id)).filter((t): t is string => t !== undefined);
          const fromStatus = matched.map((u) => u.statusChanged).filter((t): t is string => t !== null);
          // Every account of the person must be deactivated: the last deactivation counts.
          if (fromLog.length === matched.length) {
            deprovisionedAt = fromLog.sort().at(-1)!;
            deprovisionedSource = 'system_log';
          } else if (fromStatus.length === matched.length) {
            deprovisionedAt = fromStatus.sort().at(-1)!;
            deprovisionedSource = 'status_changed';
          }
        }
        return {
          rosterId: p.ids.join(','),
          key: p.key,
          end: p.end!,
          accounts: matched.map((u) => ({ id: u.id, login: u.login, status: u.status })),
          state,
          deprovisionedAt,
          deprovisionedSource,
        };
      })
      .filter((l) => l.state === 'active' || Date.parse(l.end) >= lookbackStart)
      .sort((a, b) => cmp(a.key, b.key));
  }

  const { passwords, tokens } = identityCredentials(raw);

  const facts: Omit<Facts, 'counts'> = {
    observedAt: now.toISOString(),
    source: { ...raw.source, endpoints: [...new Set(raw.source.endpoints)].sort(cmp) },
    population: { selector: raw.selector, vanished: raw.vanished },
    countedWith: {
      staleAfterDays: config.staleAfterDays,
      leaverDeadlineHours: config.leaverDeadlineHours,
      leaverLookbackDays: config.leaverLookbackDays,
    },
    accounts,
    apps,
    roster: rosterFacts,
    leavers,
    systemLog: raw.systemLog,
    credentials: {
      passwords,
      apiTokens: raw.apiTokens.readable ? { readable: true, reason: null, tokens } : { readable: false, reason: raw.apiTokens.reason, tokens: [] },
    },
  };
  return { ...facts, counts: countFacts(facts, config) };
}

/**
 * The identity-side credentials: Okta passwords of active, Okta-mastered population accounts
 * (federated accounts have none to age), and API tokens where the listing was allowed.
 */
export function identityCredentials(raw: IdentityObservations): { passwords: IdpCredential[]; tokens: IdpCredential[] } {
  const passwords = raw.users
    .filter((u) => inPopulation(u, raw) && isActiveStatus(u.status) && u.credentialProvider === 'OKTA' && u.hasPassword)
    .sort((a, b) => cmp(a.login, b.login) || cmp(a.id, b.id))
    .map((u): IdpCredential => ({ kind: 'idp_password', account: u.login, lastChanged: u.passwordChanged, ageDays: ageDays(u.passwordChanged, raw.observedAt) }));
  const loginById = new Map(raw.users.map((u) => [u.id, u.login]));
  return { passwords, tokens: apiTokenCredentials(raw, loginById) };
}

/** The numerator/denominator pairs (and plain counts) the metrics are made of. */
export function countFacts(facts: Omit<Facts, 'counts'>, config: Pick<Config, 'staleAfterDays' | 'leaverDeadlineHours'>): Counts {
  const now = new Date(facts.observedAt);
  const byStatus: Record<string, number> = {};
  // Keys in sorted order: facts are deterministic down to their serialization.
  for (const status of [...new Set(facts.accounts.map((a) => a.status))].sort(cmp)) {
    byStatus[status] = facts.accounts.filter((a) => a.status === status).length;
  }
  const active = facts.accounts.filter((a) => isActiveStatus(a.status));
  const strongest = { phishing_resistant: 0, otp_push: 0, phone_email: 0, none: 0 };
  for (const a of active) strongest[a.mfa]++;
  const apps = { federated: 0, password_vaulted: 0, other: 0 };
  const assignments = { federated: 0, password_vaulted: 0, other: 0 };
  for (const app of facts.apps) {
    apps[app.signOnClass]++;
    assignments[app.signOnClass] += app.assignments;
  }
  const totalAssignments = assignments.federated + assignments.password_vaulted + assignments.other;

  let roster: Counts['roster'] = null;
  if (facts.roster !== null) {
    const withoutAccount = facts.roster.currentWithoutAccount.length;
    roster = {
      withAccount: ratio(facts.roster.current - withoutAccount, facts.roster.current),
      withoutAccount,
      accountsNotOnRoster: ratio(active.filter((a) => a.roster === 'absent').length, active.length),
    };
  }

  let leavers: Counts['leavers'] = null;
  if (facts.roster !== null) {
    const byState = { active: 0, suspended: 0, pending: 0, deprovisioned: 0, no_account: 0 };
    for (const l of facts.leavers) byState[l.state]++;
    const activePast = facts.leavers.filter((l) => isActivePastDeadline(l, config.leaverDeadlineHours, now)).length;
    const late = facts.leavers.filter((l) => isDeprovisionedLate(l, config.leaverDeadlineHours)).length;
    const lags = (state: LeaverState) =>
      maxOrNull(facts.leavers.filter((l) => l.state === state).flatMap((l) => leaverLagSeconds(l, now) ?? []));
    leavers = {
      byState,
      stillActive: ratio(byState.active, facts.leavers.length),
      pastDeadline: ratio(activePast + late, facts.leavers.length),
      activePastDeadline: activePast,
      deprovisionedLate: late,
      maxLagSeconds: { active: lags('active'), deprovisioned: lags('deprovisioned') },
    };
  }

  const pwAges = facts.credentials.passwords.flatMap((p) => p.ageDays ?? []);
  const tokenAges = facts.credentials.apiTokens.tokens.flatMap((t) => t.ageDays ?? []);
  return {
    accounts: byStatus,
    activeAccounts: active.length,
    mfa: {
      any: ratio(active.length - strongest.none, active.length),
      phishingResistant: ratio(strongest.phishing_resistant, active.length),
      strongest,
    },
    apps,
    appAssignments: {
      federated: ratio(assignments.federated, totalAssignments),
      passwordVaulted: ratio(assignments.password_vaulted, totalAssignments),
      other: assignments.other,
    },
    roster,
    leavers,
    stale: ratio(active.filter((a) => isStale(a, config.staleAfterDays, now)).length, active.length),
    passwords: { oktaMastered: facts.credentials.passwords.length, maxAgeDays: maxOrNull(pwAges) },
    apiTokens: {
      readable: facts.credentials.apiTokens.readable,
      tokens: facts.credentials.apiTokens.tokens.length,
      maxAgeDays: maxOrNull(tokenAges),
    },
  };
}

/**
 * The identity-side credentials in the shape credential_age merges: Okta passwords of
 * Okta-mastered active staff accounts, and API tokens where the listing was allowed.
 */
export function idpCredentials(facts: Pick<Facts, 'credentials'>): IdpCredential[] {
  return [...facts.credentials.passwords, ...facts.credentials.apiTokens.tokens];
}
