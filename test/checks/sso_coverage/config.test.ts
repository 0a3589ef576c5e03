import { describe, expect, it } from 'vitest';
import { credentialAge } from '../../../checks/credential_age/index.js';
import { localOnlyViolations } from '../../../checks/local-only.js';
import { ssoCoverage, ssoMetricSamples, SSO_METRICS } from '../../../checks/sso_coverage/index.js';
import { buildFacts } from '../../../checks/sso_coverage/measure.js';
import { configSchema } from '../../../checks/sso_coverage/schema.js';

const okta = (over: Record<string, unknown> = {}) => ({ orgUrl: 'https://acme.okta.com', ...over });
const parses = (c: unknown) => configSchema.safeParse(c).success;

describe('config', () => {
  it('{} parses: Okta absent, every policy setting at its default', () => {
    expect(configSchema.parse({})).toEqual({
      population: {},
      staleAfterDays: 90,
      failOnStale: true,
      leaverDeadlineHours: 24,
      leaverLookbackDays: 90,
      failOnLateDeprovisioning: false,
      requirePhishingResistant: false,
      allowVaultedApps: false,
      failOnAccountsNotOnRoster: false,
    });
  });

  it('okta settings get their defaults', () => {
    expect(configSchema.parse({ okta: okta() }).okta).toEqual({
      orgUrl: 'https://acme.okta.com',
      requestTimeoutMs: 30000,
      pageSize: 200,
      concurrency: 4,
      rateLimit: { maxRetries: 4, maxWaitMs: 65000 },
      systemLog: { maxPages: 50, pageSize: 1000 },
    });
  });

  it.each([
    ['https://acme.okta.com/', 'https://acme.okta.com'],
    ['  https://ACME.okta.com  ', 'https://acme.okta.com'],
    ['http://127.0.0.1:8080/', 'http://127.0.0.1:8080'],
    ['http://localhost:9', 'http://localhost:9'],
  ])('orgUrl %j becomes %j', (input, out) => {
    expect(configSchema.parse({ okta: okta({ orgUrl: input }) }).okta!.orgUrl).toBe(out);
  });

  it.each(['http://acme.okta.com', 'https://acme.okta.com/admin', 'https://acme.okta.com/?x=1', 'https://u:p@acme.okta.com', 'acme.okta.com', ''])(
    'refuses orgUrl %j',
    (orgUrl) => expect(parses({ okta: okta({ orgUrl }) })).toBe(false),
  );

  it('a policy cannot name the Okta credentials: the schema refuses auth, and the trust rule names it (#17)', () => {
    for (const auth of [{ type: 'apiToken', tokenFile: '/etc/shadow' }, { type: 'apiToken', tokenEnv: 'AWS_SECRET_ACCESS_KEY' }, { type: 'privateKey', clientId: '0oa1', privateKeyFile: '/root/.ssh/id_ed25519' }]) {
      expect(parses({ okta: okta({ auth }) })).toBe(false);
      expect(localOnlyViolations(ssoCoverage, { okta: okta({ auth }) })).toEqual([{ check: 'sso_coverage', path: 'okta.auth', instead: expect.stringContaining('agent config') }]);
      expect(localOnlyViolations(credentialAge, { identityProvider: { okta: okta({ auth }) } })).toMatchObject([{ check: 'credential_age', path: 'identityProvider.okta.auth' }]);
    }
    expect(localOnlyViolations(ssoCoverage, { okta: okta() })).toEqual([]);
    expect(localOnlyViolations(ssoCoverage, { okta: null })).toEqual([]);
  });

  it('the population is a group or a profile attribute, not both; unknown keys are refused', () => {
    expect(parses({ population: { group: 'Staff' } })).toBe(true);
    expect(parses({ population: { profileAttribute: { name: 'department', value: 'Delivery' } } })).toBe(true);
    expect(parses({ population: { group: 'Staff', profileAttribute: { name: 'department', value: 'x' } } })).toBe(false);
    expect(parses({ population: { profileAttribute: { name: 'bad name', value: 'x' } } })).toBe(false);
    expect(parses({ staleDays: 3 })).toBe(false);
    expect(parses({ okta: okta({ cache: true }) })).toBe(false);
  });
});

describe('metric samples', () => {
  const now = new Date('2026-03-10T12:00:00Z');
  const facts = (roster: boolean) =>
    buildFacts(
      {
        observedAt: now,
        source: { vendor: 'okta', orgUrl: 'https://x', auth: 'apiToken', sdk: 's', endpoints: [], requests: 0, rateLimitRetries: 0 },
        selector: { kind: 'all' },
        users: [
          { id: 'u1', status: 'ACTIVE', login: 'ada@x', email: 'ada@x', employeeNumber: null, created: now.toISOString(), lastLogin: null, passwordChanged: null, statusChanged: null, credentialProvider: 'OKTA', hasPassword: true, selectorValue: null },
        ],
        groupMemberIds: null,
        factors: new Map([['u1', [{ factorType: 'sms', provider: 'OKTA', status: 'ACTIVE' }]]]),
        vanished: 0,
        apps: [],
        appAssignments: new Map(),
        systemLog: { readable: true, reason: null, since: now.toISOString(), until: now.toISOString(), pages: 0, events: 0, truncated: false },
        deactivations: new Map(),
        apiTokens: { readable: false, reason: 'Okta answered 403' },
        roster: roster ? { file: '/r', joinOn: 'email', rows: [{ id: 'HR1', email: 'ada@x', login: null, employeeNumber: null, start: null, end: null, where: 'r' }] } : null,
      },
      configSchema.parse({}),
    );

  it('every sample is a declared series with its declared labels, from fixed vocabularies', () => {
    const allowed: Record<string, Set<string>> = {
      strength: new Set(['any', 'phishing_resistant', 'otp_push', 'phone_email', 'none']),
      sign_on_class: new Set(['federated', 'password_vaulted', 'other']),
      status: new Set(['active', 'password_expired', 'locked_out', 'recovery', 'suspended', 'staged', 'provisioned', 'deprovisioned', 'pending', 'no_account', 'with_account', 'without_account']),
    };
    for (const withRoster of [true, false]) {
      for (const m of ssoMetricSamples(facts(withRoster))) {
        const def = SSO_METRICS[m.name as keyof typeof SSO_METRICS];
        expect(def, m.name).toBeDefined();
        expect(Object.keys(m.labels).sort()).toEqual([...def.labelNames].sort());
        for (const [k, v] of Object.entries(m.labels)) expect(allowed[k]!.has(v!), `${m.name} ${k}=${v}`).toBe(true);
        expect(Number.isFinite(m.value)).toBe(true);
      }
    }
  });

  it('roster and leaver series only with a roster; API token series only when readable', () => {
    const names = (r: boolean) => new Set(ssoMetricSamples(facts(r)).map((m) => m.name));
    expect(names(true).has('vcm_sso_roster_people')).toBe(true);
    expect(names(true).has('vcm_sso_leavers')).toBe(true);
    expect(names(false).has('vcm_sso_roster_people')).toBe(false);
    expect(names(false).has('vcm_sso_leavers')).toBe(false);
    expect(names(false).has('vcm_sso_api_tokens')).toBe(false);
    expect(ssoMetricSamples(facts(false))).toEqual(ssoMetricSamples(facts(false)));
  });
});
