// Builds Okta orgs for the scenario tests: people with intended properties (MFA strength,
// staleness, leaver timing…), materialized as Okta wire JSON for the local server plus a roster.
// Tests compute their expectations from these specs, never from hard-coded numbers.
import type { Json, OktaOrg } from '../../helpers/okta-server.js';

export type Strongest = 'phishing_resistant' | 'otp_push' | 'phone_email' | 'none';

/** Factor sets and the strength each is meant to give (written independently of the check). */
export const FACTOR_SETS: readonly { factors: readonly { type: string; status?: string }[]; strongest: Strongest }[] = [
  { factors: [{ type: 'webauthn' }], strongest: 'phishing_resistant' },
  { factors: [{ type: 'signed_nonce' }, { type: 'push' }], strongest: 'phishing_resistant' },
  { factors: [{ type: 'push' }, { type: 'sms' }], strongest: 'otp_push' },
  { factors: [{ type: 'token:software:totp' }], strongest: 'otp_push' },
  { factors: [{ type: 'sms' }], strongest: 'phone_email' },
  { factors: [{ type: 'email' }, { type: 'call' }], strongest: 'phone_email' },
  { factors: [{ type: 'u2f' }, { type: 'question' }], strongest: 'phishing_resistant' },
  { factors: [{ type: 'token:hardware' }, { type: 'webauthn', status: 'PENDING_ACTIVATION' }], strongest: 'otp_push' },
];
export const NO_MFA_SETS: readonly (readonly { type: string; status?: string }[])[] = [
  [],
  [{ type: 'sms', status: 'PENDING_ACTIVATION' }],
  [{ type: 'question' }],
  [{ type: 'webauthn', status: 'INACTIVE' }],
];

const PROVIDER: Record<string, string> = {
  webauthn: 'FIDO',
  u2f: 'FIDO',
  signed_nonce: 'OKTA',
  push: 'OKTA',
  'token:software:totp': 'GOOGLE',
  'token:hardware': 'YUBICO',
  sms: 'OKTA',
  call: 'OKTA',
  email: 'OKTA',
  question: 'OKTA',
};

export interface PersonSpec {
  n: number;
  id: string;
  login: string;
  status: string;
  factors: readonly { type: string; status?: string }[];
  strongest: Strongest;
  createdDaysAgo: number;
  lastLoginDaysAgo: number | null;
  passwordChangedDaysAgo: number | null;
  provider: 'OKTA' | 'FEDERATION';
  inGroup: boolean;
  department: string;
  /** Roster row; null for accounts nobody on the roster has. */
  roster: { id: string; startDaysAgo: number; endDaysAgo: number | null } | null;
  /** For DEPROVISIONED leavers: hours after the end instant, and whether the log has it. */
  deactivation: { hoursAfterEnd: number; logged: boolean } | null;
  tags: string[];
}

export interface AppSpec {
  id: string;
  label: string;
  name: string;
  signOnMode: string;
  status: 'ACTIVE' | 'INACTIVE';
  /** Person numbers assigned. */
  assigned: number[];
}

export interface Scenario {
  now: Date;
  people: PersonSpec[];
  /** Roster people with no Okta account. */
  rosterOnly: { id: string; email: string; startDaysAgo: number; endDaysAgo: number | null }[];
  apps: AppSpec[];
  apiTokens: { id: string; name: string; ownerN: number; createdDaysAgo: number }[];
  groupName: string;
  groupId: string;
}

const DAY = 86_400_000;
const HOUR = 3_600_000;
export const GROUP_ID = '00gstaff0000000000g4';
export const GROUP_NAME = 'Provider Staff';

const oktaId = (prefix: string, n: number) => `${prefix}${n.toString(36).padStart(17, '0')}`;
const isoAgo = (now: Date, days: number) => new Date(now.getTime() - days * DAY).toISOString();
export const dateAgo = (now: Date, days: number) => isoAgo(now, days).slice(0, 10);
/** The instant a date-only roster end means: the end of that day, UTC. */
export const endInstant = (now: Date, endDaysAgo: number) => Date.parse(`${dateAgo(now, endDaysAgo)}T00:00:00.000Z`) + DAY;

function person(n: number, over: Partial<PersonSpec>): PersonSpec {
  const set = FACTOR_SETS[n % FACTOR_SETS.length]!;
  return {
    n,
    id: oktaId('00u', n),
    login: `person${n}@provider.example`,
    status: 'ACTIVE',
    factors: set.factors,
    strongest: set.strongest,
    createdDaysAgo: 400 + (n % 50),
    lastLoginDaysAgo: n % 30,
    passwordChangedDaysAgo: 10 + (n % 170),
    provider: n % 10 === 0 ? 'FEDERATION' : 'OKTA',
    inGroup: true,
    department: 'Delivery',
    roster: { id: `HR${n}`, startDaysAgo: 400 + (n % 50), endDaysAgo: null },
    deactivation: null,
    tags: [],
    ...over,
  };
}

/**
 * A provider org that passes under the default policy: `staff` active staff accounts in the
 * group, some not active, contractors outside the group, leavers deprovisioned in time (one of
 * them late, which the default policy does not fail), one leaver still within the deadline.
 */
export function baseScenario(opts: { staff?: number; now?: Date } = {}): Scenario {
  const now = opts.now ?? new Date();
  const staff = opts.staff ?? 300;
  const people: PersonSpec[] = [];
  let n = 1;
  for (let i = 0; i < staff; i++, n++) {
    const status = i % 41 === 7 ? 'PASSWORD_EXPIRED' : i % 53 === 11 ? 'LOCKED_OUT' : 'ACTIVE';
    // Every 37th has never signed in, but was created recently: not stale.
    people.push(person(n, i % 37 === 5 ? { status, lastLoginDaysAgo: null, createdDaysAgo: 10, roster: { id: `HR${n}`, startDaysAgo: 10, endDaysAgo: null } } : { status }));
  }
  // Staff accounts that are not active: no factors read, no MFA judged.
  for (const status of ['SUSPENDED', 'STAGED', 'PROVISIONED', 'SUSPENDED']) {
    people.push(person(n++, { status, factors: [], strongest: 'none', lastLoginDaysAgo: status === 'SUSPENDED' ? 300 : null, tags: ['inactive-staff'] }));
  }
  // A future starter: roster start in 10 days, account staged.
  people.push(person(n++, { status: 'STAGED', factors: [], strongest: 'none', lastLoginDaysAgo: null, createdDaysAgo: 1, roster: { id: `HR${n - 1}`, startDaysAgo: -10, endDaysAgo: null }, tags: ['future'] }));
  // A service account in the group that nobody on the roster has.
  people.push(person(n++, { login: 'svc-backup@provider.example', roster: null, tags: ['not-on-roster'] }));
  // Contractors outside the staff group: weak or no MFA, stale; none of it is judged.
  for (let i = 0; i < 25; i++) {
    people.push(person(n++, { inGroup: false, department: 'Contractors', factors: [], strongest: 'none', lastLoginDaysAgo: 200, roster: null, tags: ['outside'] }));
  }
  // Leavers deprovisioned in time (one only visible through statusChanged), one late.
  for (let i = 0; i < 16; i++) {
    const endDaysAgo = 3 + i * 4;
    const late = i === 9;
    people.push(
      person(n++, {
        status: 'DEPROVISIONED',
        factors: [],
        strongest: 'none',
        inGroup: i % 2 === 0,
        roster: { id: `HR${n - 1}`, startDaysAgo: 900, endDaysAgo },
        deactivation: { hoursAfterEnd: late ? 50 : 1 + (i % 20), logged: i !== 4 },
        tags: late ? ['leaver', 'deprovisioned-late'] : ['leaver', 'deprovisioned'],
      }),
    );
  }
  // Leavers outside the lookback window (deprovisioned long ago): not reported.
  for (let i = 0; i < 2; i++) {
    people.push(
      person(n++, {
        status: 'DEPROVISIONED',
        factors: [],
        strongest: 'none',
        inGroup: false,
        roster: { id: `HR${n - 1}`, startDaysAgo: 900, endDaysAgo: 200 + i },
        deactivation: { hoursAfterEnd: 2, logged: false },
        tags: ['old-leaver'],
      }),
    );
  }
  // A leaver whose end was yesterday: still active, within the 24-hour deadline.
  people.push(person(n++, { roster: { id: `HR${n - 1}`, startDaysAgo: 500, endDaysAgo: 1 }, tags: ['leaver', 'active-within-deadline'] }));

  const staffNs = people.filter((p) => p.inGroup && p.tags.length === 0).map((p) => p.n);
  const outsideNs = people.filter((p) => p.tags.includes('outside')).map((p) => p.n);
  const apps: AppSpec[] = [
    { id: oktaId('0oa', 1), label: 'Jira', name: 'template_saml_2_0', signOnMode: 'SAML_2_0', status: 'ACTIVE', assigned: staffNs },
    { id: oktaId('0oa', 2), label: 'Slack', name: 'slack', signOnMode: 'SAML_2_0', status: 'ACTIVE', assigned: staffNs.filter((x) => x % 2 === 0) },
    { id: oktaId('0oa', 3), label: 'Internal portal', name: 'oidc_client', signOnMode: 'OPENID_CONNECT', status: 'ACTIVE', assigned: staffNs.filter((x) => x % 3 === 0) },
    { id: oktaId('0oa', 4), label: 'Office 365', name: 'office365', signOnMode: 'WS_FEDERATION', status: 'ACTIVE', assigned: staffNs.filter((x) => x % 5 === 0) },
    { id: oktaId('0oa', 5), label: 'Legacy SAML 1.1', name: 'legacy', signOnMode: 'SAML_1_1', status: 'ACTIVE', assigned: staffNs.slice(0, 3) },
    { id: oktaId('0oa', 6), label: 'Handbook', name: 'bookmark', signOnMode: 'BOOKMARK', status: 'ACTIVE', assigned: staffNs.slice(0, 40) },
    // Password apps that must not count: inactive, or assigned only outside the staff.
    { id: oktaId('0oa', 7), label: 'Old CRM', name: 'template_swa', signOnMode: 'BROWSER_PLUGIN', status: 'INACTIVE', assigned: staffNs.slice(0, 10) },
    { id: oktaId('0oa', 8), label: 'Contractor timesheets', name: 'template_swa3field', signOnMode: 'AUTO_LOGIN', status: 'ACTIVE', assigned: outsideNs },
  ];
  return {
    now,
    people,
    rosterOnly: [
      { id: 'HR9001', email: 'newhire1@provider.example', startDaysAgo: 2, endDaysAgo: null },
      { id: 'HR9002', email: 'newhire2@provider.example', startDaysAgo: 5, endDaysAgo: null },
      // A leaver who never had an account.
      { id: 'HR9003', email: 'gone@provider.example', startDaysAgo: 300, endDaysAgo: 20 },
    ],
    apps,
    apiTokens: [
      { id: oktaId('00T', 1), name: 'vcm-reader', ownerN: 1, createdDaysAgo: 30 },
      { id: oktaId('00T', 2), name: 'provisioning', ownerN: 2, createdDaysAgo: 400 },
    ],
    groupName: GROUP_NAME,
    groupId: GROUP_ID,
  };
}

const FAR_PAST = (now: Date) => isoAgo(now, 1000);

function userJson(s: Scenario, p: PersonSpec): Json {
  const now = s.now;
  let statusChanged: string | null = null;
  if (p.deactivation !== null && p.roster?.endDaysAgo != null) {
    statusChanged = new Date(endInstant(now, p.roster.endDaysAgo) + p.deactivation.hoursAfterEnd * HOUR).toISOString();
  }
  return {
    id: p.id,
    status: p.status,
    created: isoAgo(now, p.createdDaysAgo),
    activated: p.status === 'STAGED' ? null : isoAgo(now, p.createdDaysAgo),
    statusChanged,
    lastLogin: p.lastLoginDaysAgo === null ? null : isoAgo(now, p.lastLoginDaysAgo),
    lastUpdated: isoAgo(now, 1),
    passwordChanged: p.provider === 'OKTA' && p.passwordChangedDaysAgo !== null ? isoAgo(now, p.passwordChangedDaysAgo) : null,
    type: { id: 'oty1162QAr8hJjTaq0g4' },
    profile: {
      firstName: 'Person',
      lastName: String(p.n),
      mobilePhone: null,
      secondEmail: null,
      login: p.login,
      email: p.login,
      employeeNumber: `E${p.n}`,
      department: p.department,
    },
    credentials:
      p.provider === 'OKTA'
        ? { password: {}, provider: { type: 'OKTA', name: 'OKTA' } }
        : { provider: { type: 'FEDERATION', name: 'FEDERATION' } },
    _links: { self: { href: `https://provider.okta.example/api/v1/users/${p.id}` } },
  };
}

function factorJson(s: Scenario, p: PersonSpec, f: { type: string; status?: string }, i: number): Json {
  return {
    id: `fct${p.n.toString(36).padStart(10, '0')}${i}`,
    factorType: f.type,
    provider: PROVIDER[f.type] ?? 'OKTA',
    vendorName: PROVIDER[f.type] ?? 'OKTA',
    status: f.status ?? 'ACTIVE',
    created: FAR_PAST(s.now),
    lastUpdated: FAR_PAST(s.now),
    profile: f.type === 'sms' || f.type === 'call' ? { phoneNumber: '+1 XXX-XXX-0000' } : f.type === 'webauthn' ? { credentialId: 'cred', authenticatorName: 'Security key' } : {},
    _links: { self: { href: `https://provider.okta.example/api/v1/users/${p.id}/factors/x${i}` } },
  };
}

export function deactivationLog(s: Scenario, p: PersonSpec, publishedMs: number, outcome = 'SUCCESS'): Json {
  return {
    uuid: `evt-${p.id}-${publishedMs}-${outcome}`,
    published: new Date(publishedMs).toISOString(),
    eventType: 'user.lifecycle.deactivate',
    version: '0',
    severity: 'INFO',
    legacyEventType: 'core.user.config.user_deactivated',
    displayMessage: 'Deactivate Okta user',
    actor: { id: '00uadmin0000000000a1', type: 'User', alternateId: 'it-admin@provider.example', displayName: 'IT Admin', detailEntry: null },
    client: { userAgent: { rawUserAgent: 'okta-sdk', os: 'Unknown', browser: 'UNKNOWN' }, zone: 'null', device: 'Unknown', id: null, ipAddress: '203.0.113.7' },
    outcome: { result: outcome, reason: null },
    target: [{ id: p.id, type: 'User', alternateId: p.login, displayName: `Person ${p.n}`, detailEntry: null }],
    transaction: { type: 'WEB', id: 'trs', detail: {} },
    debugContext: { debugData: {} },
    authenticationContext: { authenticationStep: 0, externalSessionId: 'x' },
    securityContext: {},
    request: { ipChain: [] },
  };
}

export interface Materialized {
  org: OktaOrg;
  roster: { id: string; email: string; employeeNumber: string; start: string; end: string }[];
}

export function materialize(s: Scenario): Materialized {
  const byN = new Map(s.people.map((p) => [p.n, p]));
  const users = s.people.map((p) => userJson(s, p));
  const factors: Record<string, Json[]> = {};
  for (const p of s.people) factors[p.id] = p.factors.map((f, i) => factorJson(s, p, f, i));
  const logs: Json[] = [];
  for (const p of s.people) {
    if (p.deactivation?.logged && p.roster?.endDaysAgo != null) {
      logs.push(deactivationLog(s, p, endInstant(s.now, p.roster.endDaysAgo) + p.deactivation.hoursAfterEnd * HOUR));
    }
  }
  // Noise the query must filter out: other event types, a failed deactivation, and the future.
  const someone = s.people[0]!;
  logs.push({ ...deactivationLog(s, someone, s.now.getTime() - 2 * DAY), uuid: 'evt-session', eventType: 'user.session.start' });
  logs.push(deactivationLog(s, someone, s.now.getTime() - 3 * DAY, 'FAILURE'));
  logs.push({ ...deactivationLog(s, someone, s.now.getTime() + HOUR), uuid: 'evt-future' });
  const apps = s.apps.map((a) => ({
    id: a.id,
    name: a.name,
    label: a.label,
    status: a.status,
    lastUpdated: FAR_PAST(s.now),
    created: FAR_PAST(s.now),
    accessibility: { selfService: false, errorRedirectUrl: null, loginRedirectUrl: null },
    visibility: { autoSubmitToolbar: false, hide: { iOS: false, web: false }, appLinks: {} },
    features: [],
    signOnMode: a.signOnMode,
    credentials: { userNameTemplate: { template: '${source.login}', type: 'BUILT_IN' }, signing: {} },
    settings: { app: {} },
    _links: { self: { href: `https://provider.okta.example/api/v1/apps/${a.id}` } },
  }));
  const appUsers: Record<string, Json[]> = {};
  for (const a of s.apps) {
    appUsers[a.id] = a.assigned.map((n) => {
      const p = byN.get(n)!;
      return {
        id: p.id,
        externalId: null,
        created: FAR_PAST(s.now),
        lastUpdated: FAR_PAST(s.now),
        scope: n % 2 === 0 ? 'GROUP' : 'USER',
        status: 'ACTIVE',
        statusChanged: FAR_PAST(s.now),
        passwordChanged: null,
        syncState: 'DISABLED',
        credentials: { userName: p.login },
        profile: {},
        _links: { app: { href: `https://provider.okta.example/api/v1/apps/${a.id}` }, user: { href: `https://provider.okta.example/api/v1/users/${p.id}` } },
      };
    });
  }
  const roster = [
    ...s.people
      .filter((p) => p.roster !== null)
      .map((p) => ({
        id: p.roster!.id,
        email: p.login,
        employeeNumber: `E${p.n}`,
        start: dateAgo(s.now, p.roster!.startDaysAgo),
        end: p.roster!.endDaysAgo === null ? '' : dateAgo(s.now, p.roster!.endDaysAgo),
      })),
    ...s.rosterOnly.map((r) => ({
      id: r.id,
      email: r.email,
      employeeNumber: r.id,
      start: dateAgo(s.now, r.startDaysAgo),
      end: r.endDaysAgo === null ? '' : dateAgo(s.now, r.endDaysAgo),
    })),
  ];
  return {
    org: {
      users,
      factors,
      groups: [
        { id: s.groupId, created: FAR_PAST(s.now), lastUpdated: FAR_PAST(s.now), lastMembershipUpdated: FAR_PAST(s.now), objectClass: ['okta:user_group'], type: 'OKTA_GROUP', profile: { name: s.groupName, description: 'Everyone working for the customer' }, _links: {} },
        { id: '00gcontractors000000', created: FAR_PAST(s.now), lastUpdated: FAR_PAST(s.now), lastMembershipUpdated: FAR_PAST(s.now), objectClass: ['okta:user_group'], type: 'OKTA_GROUP', profile: { name: 'Provider Staff Alumni', description: '' }, _links: {} },
      ],
      groupMembers: {
        [s.groupId]: s.people.filter((p) => p.inGroup).map((p) => p.id),
        '00gcontractors000000': s.people.filter((p) => !p.inGroup).map((p) => p.id),
      },
      apps,
      appUsers,
      logs,
      apiTokens: s.apiTokens.map((t) => ({
        id: t.id,
        name: t.name,
        userId: byN.get(t.ownerN)!.id,
        clientName: 'Okta API',
        created: isoAgo(s.now, t.createdDaysAgo),
        expiresAt: isoAgo(s.now, -30),
        lastUpdated: isoAgo(s.now, 1),
        tokenWindow: 'P30D',
        network: { connection: 'ANYWHERE' },
        _link: { self: { href: `https://provider.okta.example/api/v1/api-tokens/${t.id}` } },
      })),
    },
    roster,
  };
}

/** Person numbers to change in a variant, spread over the list (so across pages). */
export function spread(s: Scenario, pred: (p: PersonSpec) => boolean, count: number): PersonSpec[] {
  const pool = s.people.filter(pred);
  const step = Math.max(1, Math.floor(pool.length / count));
  return Array.from({ length: count }, (_, i) => pool[(i * step) % pool.length]!);
}

/** Plain staff accounts: active, in the group, on the roster, no special role in the scenario. */
export const plainStaff = (p: PersonSpec) => p.inGroup && p.tags.length === 0 && p.status === 'ACTIVE';
