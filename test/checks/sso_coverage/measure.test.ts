// buildFacts and evaluate on small literal observations: each rule on its own.
import { describe, expect, it } from 'vitest';
import { evaluate } from '../../../checks/sso_coverage/evaluate.js';
import { buildFacts, idpCredentials, isStale, signOnClass, strongestClass, type RawObservations, type RawUser } from '../../../checks/sso_coverage/measure.js';
import { configSchema, factsSchema, type Config } from '../../../checks/sso_coverage/schema.js';
import type { RosterRow } from '../../../checks/sso_coverage/roster.js';

const NOW = new Date('2026-03-10T12:00:00.000Z');
const DAY = 86_400_000;
const ago = (days: number) => new Date(NOW.getTime() - days * DAY).toISOString();

function user(id: string, over: Partial<RawUser> = {}): RawUser {
  return {
    id,
    status: 'ACTIVE',
    login: `${id}@x.example`,
    email: `${id}@x.example`,
    employeeNumber: null,
    created: ago(400),
    lastLogin: ago(1),
    passwordChanged: ago(30),
    statusChanged: null,
    credentialProvider: 'OKTA',
    hasPassword: true,
    selectorValue: null,
    ...over,
  };
}

const row = (id: string, email: string, end: string | null): RosterRow => ({ id, email, login: null, employeeNumber: null, start: ago(1000), end, where: id });

function raw(over: Partial<RawObservations> = {}): RawObservations {
  const users = over.users ?? [user('a'), user('b')];
  return {
    observedAt: NOW,
    source: { vendor: 'okta', orgUrl: 'https://x.okta.com', auth: 'apiToken', sdk: 'sdk', endpoints: ['GET /api/v1/users'], requests: 3, rateLimitRetries: 0 },
    selector: { kind: 'all' },
    users,
    groupMemberIds: null,
    factors: new Map(users.map((u) => [u.id, [{ factorType: 'webauthn', provider: 'FIDO', status: 'ACTIVE' }]])),
    vanished: 0,
    apps: [],
    appAssignments: new Map(),
    systemLog: { readable: true, reason: null, since: ago(90), until: NOW.toISOString(), pages: 1, events: 0, truncated: false },
    deactivations: new Map(),
    apiTokens: { readable: true, tokens: [] },
    roster: null,
    ...over,
  };
}

const config = (c: Record<string, unknown> = {}): Config => configSchema.parse(c);

describe('classification', () => {
  it('the strongest active factor class; question and unknown types are not MFA', () => {
    expect(strongestClass(['sms', 'webauthn'])).toBe('phishing_resistant');
    expect(strongestClass(['signed_nonce'])).toBe('phishing_resistant');
    expect(strongestClass(['u2f'])).toBe('phishing_resistant');
    expect(strongestClass(['email', 'push'])).toBe('otp_push');
    expect(strongestClass(['token:software:totp'])).toBe('otp_push');
    expect(strongestClass(['call'])).toBe('phone_email');
    expect(strongestClass(['question'])).toBe('none');
    expect(strongestClass(['some:future:factor'])).toBe('none');
    expect(strongestClass([])).toBe('none');
  });

  it('sign-on modes: SAML/OIDC/WS-Fed federated, SWA family vaulted, bookmark and unknown other', () => {
    expect(['SAML_2_0', 'SAML_1_1', 'OPENID_CONNECT', 'WS_FEDERATION'].map(signOnClass)).toEqual(Array(4).fill('federated'));
    expect(['BROWSER_PLUGIN', 'AUTO_LOGIN', 'BASIC_AUTH', 'SECURE_PASSWORD_STORE'].map(signOnClass)).toEqual(Array(4).fill('password_vaulted'));
    expect([signOnClass('BOOKMARK'), signOnClass(null), signOnClass('SOMETHING_NEW')]).toEqual(['other', 'other', 'other']);
  });

  it('stale: no sign-in within N days; never signed in counts from creation', () => {
    expect(isStale({ lastLogin: ago(91), created: ago(400) }, 90, NOW)).toBe(true);
    expect(isStale({ lastLogin: ago(89), created: ago(400) }, 90, NOW)).toBe(false);
    expect(isStale({ lastLogin: null, created: ago(89) }, 90, NOW)).toBe(false);
    expect(isStale({ lastLogin: null, created: ago(91) }, 90, NOW)).toBe(true);
    expect(isStale({ lastLogin: null, created: null }, 90, NOW)).toBe(true);
  });
});

describe('buildFacts', () => {
  it('only ACTIVE factors count, and facts validate against the schema', () => {
    const facts = buildFacts(
      raw({
        factors: new Map([
          ['a', [{ factorType: 'webauthn', provider: 'FIDO', status: 'PENDING_ACTIVATION' }, { factorType: 'sms', provider: 'OKTA', status: 'ACTIVE' }]],
          ['b', [{ factorType: 'push', provider: 'OKTA', status: 'INACTIVE' }]],
        ]),
      }),
      config(),
    );
    expect(factsSchema.safeParse(facts).success).toBe(true);
    expect(facts.accounts.map((a) => [a.login, a.factors, a.mfa])).toEqual([
      ['a@x.example', ['sms'], 'phone_email'],
      ['b@x.example', [], 'none'],
    ]);
    expect(facts.counts.mfa).toEqual({
      any: { numerator: 1, denominator: 2 },
      phishingResistant: { numerator: 0, denominator: 2 },
      strongest: { phishing_resistant: 0, otp_push: 0, phone_email: 1, none: 1 },
    });
  });

  it('populations: a group, a profile attribute, or everyone', () => {
    const users = [user('a', { selectorValue: 'Delivery' }), user('b', { selectorValue: 'Sales' }), user('c', { status: 'DEPROVISIONED', selectorValue: 'Delivery' })];
    const group = buildFacts(raw({ users, selector: { kind: 'group', groupId: '00g1', groupName: 'Staff' }, groupMemberIds: new Set(['b', 'c']) }), config());
    expect(group.accounts.map((a) => a.id)).toEqual(['b', 'c']);
    const attr = buildFacts(raw({ users, selector: { kind: 'profileAttribute', name: 'department', value: 'Delivery' } }), config());
    expect(attr.accounts.map((a) => a.id)).toEqual(['a', 'c']);
    expect(attr.counts.accounts).toEqual({ ACTIVE: 1, DEPROVISIONED: 1 });
    expect(buildFacts(raw({ users }), config()).accounts).toHaveLength(3);
  });

  it('apps: inactive ones are left out; assignments count active staff only; vaulted apps list assignees', () => {
    const users = [user('a'), user('b'), user('s', { status: 'SUSPENDED' }), user('o')];
    const facts = buildFacts(
      raw({
        users,
        selector: { kind: 'group', groupId: 'g', groupName: null },
        groupMemberIds: new Set(['a', 'b', 's']),
        apps: [
          { id: '1', label: 'SAML app', name: null, signOnMode: 'SAML_2_0', status: 'ACTIVE' },
          { id: '2', label: 'SWA app', name: 'template_swa', signOnMode: 'AUTO_LOGIN', status: 'ACTIVE' },
          { id: '3', label: 'Old SWA', name: null, signOnMode: 'AUTO_LOGIN', status: 'INACTIVE' },
        ],
        appAssignments: new Map([
          ['1', ['a', 'b', 's', 'o']],
          ['2', ['b', 'b', 'o']],
          ['3', ['a']],
        ]),
      }),
      config(),
    );
    expect(facts.apps).toEqual([
      { id: '1', label: 'SAML app', name: null, signOnMode: 'SAML_2_0', signOnClass: 'federated', assignments: 2, assignees: [] },
      { id: '2', label: 'SWA app', name: 'template_swa', signOnMode: 'AUTO_LOGIN', signOnClass: 'password_vaulted', assignments: 1, assignees: ['b@x.example'] },
    ]);
    expect(facts.counts.appAssignments).toEqual({ federated: { numerator: 2, denominator: 3 }, passwordVaulted: { numerator: 1, denominator: 3 }, other: 0 });
    expect(evaluate(facts, config()).reasons).toEqual([{ code: 'CHK_FAIL_PASSWORD_VAULTED_APP', message: expect.any(String), subject: 'SWA app' }]);
  });

  it('leavers: state from every matching account; deactivation time from the log for all of them, else statusChanged', () => {
    const users = [
      user('act'),
      user('sus', { status: 'SUSPENDED' }),
      user('pend', { status: 'PROVISIONED' }),
      user('dep1', { status: 'DEPROVISIONED', statusChanged: ago(9) }),
      user('dep2', { status: 'DEPROVISIONED', statusChanged: ago(8), email: 'two@x.example' }),
      user('dep3', { status: 'DEPROVISIONED', statusChanged: ago(7), email: 'two@x.example' }),
      user('cur'),
    ];
    const end = ago(10);
    const facts = buildFacts(
      raw({
        users,
        deactivations: new Map([
          ['dep1', ago(9.5)],
          ['dep2', ago(8.5)],
        ]),
        roster: {
          file: '/r.csv',
          joinOn: 'email',
          rows: [
            row('1', 'act@x.example', end),
            row('2', 'sus@x.example', end),
            row('3', 'pend@x.example', end),
            row('4', 'dep1@x.example', end),
            row('5', 'two@x.example', end),
            row('6', 'nobody@x.example', end),
            row('7', 'cur@x.example', null),
            row('8', 'ancient@x.example', ago(400)),
            row('9', 'missing@x.example', null),
          ],
        },
      }),
      config(),
    );
    expect(facts.leavers.map((l) => [l.key, l.state, l.deprovisionedAt, l.deprovisionedSource])).toEqual([
      ['act@x.example', 'active', null, null],
      ['dep1@x.example', 'deprovisioned', ago(9.5), 'system_log'],
      ['nobody@x.example', 'no_account', null, null],
      ['pend@x.example', 'pending', null, null],
      ['sus@x.example', 'suspended', null, null],
      // One of two accounts lacks a log event: statusChanged, the later of the two.
      ['two@x.example', 'deprovisioned', ago(7), 'status_changed'],
    ]);
    expect(facts.roster).toEqual({ file: '/r.csv', joinOn: 'email', people: 9, current: 2, future: 0, leavers: 7, currentWithoutAccount: ['9'] });
    expect(facts.counts.roster).toEqual({
      withAccount: { numerator: 1, denominator: 2 },
      withoutAccount: 1,
      accountsNotOnRoster: { numerator: 0, denominator: 2 },
    });
    expect(facts.counts.leavers).toMatchObject({
      byState: { active: 1, suspended: 1, pending: 1, deprovisioned: 2, no_account: 1 },
      stillActive: { numerator: 1, denominator: 6 },
      activePastDeadline: 1,
      // two@x: deactivated 3 days after the end.
      deprovisionedLate: 1,
      maxLagSeconds: { active: 10 * 86400, deprovisioned: 3 * 86400 },
    });
  });

  it('an account on no roster row is "absent"; a future starter is "future"', () => {
    const facts = buildFacts(
      raw({
        users: [user('a'), user('f'), user('x')],
        roster: { file: '/r', joinOn: 'email', rows: [row('1', 'a@x.example', null), { ...row('2', 'f@x.example', null), start: ago(-5) }] },
      }),
      config(),
    );
    expect(facts.accounts.map((a) => [a.id, a.roster])).toEqual([
      ['a', 'current'],
      ['f', 'future'],
      ['x', 'absent'],
    ]);
    expect(evaluate(facts, config({ failOnAccountsNotOnRoster: true })).reasons.map((r) => [r.code, r.subject])).toEqual([['CHK_FAIL_ACCOUNT_NOT_ON_ROSTER', 'x@x.example']]);
  });

  it('credentials: Okta-mastered passwords of active staff; API tokens named by their owner', () => {
    const users = [user('a'), user('fed', { credentialProvider: 'FEDERATION', hasPassword: false, passwordChanged: null }), user('nopw', { hasPassword: false }), user('s', { status: 'SUSPENDED' })];
    const facts = buildFacts(
      raw({
        users,
        apiTokens: {
          readable: true,
          tokens: [
            { id: 't1', name: 'reader', userId: 'a', created: ago(45), expiresAt: null },
            { id: 't2', name: 'orphan', userId: 'gone', created: null, expiresAt: ago(-1) },
          ],
        },
      }),
      config(),
    );
    expect(idpCredentials(facts)).toEqual([
      { kind: 'idp_password', account: 'a@x.example', lastChanged: ago(30), ageDays: 30 },
      { kind: 'idp_api_token', account: 'a@x.example', lastChanged: ago(45), ageDays: 45, name: 'reader', id: 't1', expiresAt: null },
      { kind: 'idp_api_token', account: 'gone', lastChanged: null, ageDays: null, name: 'orphan', id: 't2', expiresAt: ago(-1) },
    ]);
    expect(facts.counts.passwords).toEqual({ oktaMastered: 1, maxAgeDays: 30 });
    expect(facts.counts.apiTokens).toEqual({ readable: true, tokens: 2, maxAgeDays: 45 });
  });
});

describe('evaluate', () => {
  it('passes a covered population', () => {
    expect(evaluate(buildFacts(raw(), config()), config())).toEqual({ status: 'pass', reasons: [] });
  });

  it('an active account whose factors were not read is unknown, not a pass', () => {
    const facts = buildFacts(raw({ factors: new Map([['a', [{ factorType: 'push', provider: 'OKTA', status: 'ACTIVE' }]]]) }), config());
    expect(evaluate(facts, config())).toMatchObject({ status: 'unknown', reasons: [{ code: 'CHK_ERR_UNRESOLVED', subject: 'b@x.example' }] });
  });

  it('is unknown when the population has no active account (never a pass on nothing)', () => {
    const facts = buildFacts(raw({ users: [user('a', { status: 'SUSPENDED' })] }), config());
    expect(evaluate(facts, config())).toMatchObject({ status: 'unknown', reasons: [{ code: 'CHK_ERR_UNRESOLVED' }] });
  });

  it('is unknown when the policy names a roster and the facts have none; fail still dominates', () => {
    const facts = buildFacts(raw(), config());
    const withRoster = config({ roster: { file: '/r.csv' } });
    expect(evaluate(facts, withRoster)).toMatchObject({ status: 'unknown', reasons: [{ code: 'CHK_ERR_UNRESOLVED' }] });
    const failing = buildFacts(raw({ factors: new Map([['a', []]]) }), config());
    expect(evaluate(failing, withRoster).status).toBe('fail');
  });

  it('judges with its own thresholds, not those the counts used', () => {
    const facts = buildFacts(raw({ users: [user('a', { lastLogin: ago(40) })] }), config());
    expect(evaluate(facts, config()).status).toBe('pass');
    expect(evaluate(facts, config({ staleAfterDays: 30 })).reasons.map((r) => r.code)).toEqual(['CHK_FAIL_STALE_ACCOUNT']);
  });

  it('a leaver inside the deadline passes; past it fails; a longer deadline passes again', () => {
    const rows = [row('1', 'a@x.example', new Date(NOW.getTime() - 30 * 3_600_000).toISOString())];
    const facts = buildFacts(raw({ users: [user('a'), user('b')], roster: { file: '/r', joinOn: 'email', rows: [...rows, row('2', 'b@x.example', null)] } }), config());
    expect(evaluate(facts, config({ roster: { file: '/r' } })).reasons.map((r) => [r.code, r.subject])).toEqual([['CHK_FAIL_LEAVER_ACTIVE', 'a@x.example']]);
    expect(evaluate(facts, config({ roster: { file: '/r' }, leaverDeadlineHours: 48 })).status).toBe('pass');
  });

  it('late deprovisioning with an unknown time is unknown when the policy judges lateness', () => {
    const users = [user('d', { status: 'DEPROVISIONED', statusChanged: null }), user('b')];
    const facts = buildFacts(raw({ users, roster: { file: '/r', joinOn: 'email', rows: [row('1', 'd@x.example', ago(3)), row('2', 'b@x.example', null)] } }), config());
    expect(facts.leavers[0]).toMatchObject({ state: 'deprovisioned', deprovisionedAt: null });
    expect(evaluate(facts, config({ roster: { file: '/r' } })).status).toBe('pass');
    expect(evaluate(facts, config({ roster: { file: '/r' }, failOnLateDeprovisioning: true }))).toMatchObject({ status: 'unknown', reasons: [{ code: 'CHK_ERR_UNRESOLVED', subject: 'd@x.example' }] });
  });

  it('reasons are sorted by code, then subject', () => {
    const users = [user('z', { lastLogin: ago(200) }), user('a', { lastLogin: ago(200) })];
    const facts = buildFacts(raw({ users, factors: new Map(users.map((u) => [u.id, []])) }), config());
    expect(evaluate(facts, config()).reasons.map((r) => [r.code, r.subject])).toEqual([
      ['CHK_FAIL_MFA_MISSING', 'a@x.example'],
      ['CHK_FAIL_MFA_MISSING', 'z@x.example'],
      ['CHK_FAIL_STALE_ACCOUNT', 'a@x.example'],
      ['CHK_FAIL_STALE_ACCOUNT', 'z@x.example'],
    ]);
  });
});
