// The real @okta/okta-sdk-nodejs against the local Okta-compatible server, unmocked: scenarios
// of a few hundred users over several pages. Expectations come from the scenario specs.
import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { identityProviderAccess } from '../../../agent/config.js';
import { isCheckError } from '../../../checks/errors.js';
import { ReplayHostIO } from '../../../checks/replay.js';
import { runCheck } from '../../../checks/runner.js';
import { factsSchema, idpCredentials, ssoCoverage, ssoMetricSamples } from '../../../checks/sso_coverage/index.js';
import { startOktaServer } from '../../helpers/okta-server.js';
import { expectedFor, isActive, ROSTER_CSV, ROSTER_FILE, runScenario, TOKEN } from './harness.js';
import { baseScenario, endInstant, FACTOR_SETS, GROUP_ID, materialize, NO_MFA_SETS, plainStaff, spread, type Scenario } from './scenario.js';

const codes = (v: { reasons: { code: string }[] } | null) => [...new Set((v?.reasons ?? []).map((r) => r.code))].sort();
const subjects = (v: { reasons: { code: string; subject?: string }[] } | null, code: string) =>
  (v?.reasons ?? []).filter((r) => r.code === code).map((r) => r.subject).sort();
const sorted = (xs: string[]) => [...xs].sort();

function errorCode(err: unknown): string | null {
  return isCheckError(err) ? err.code : null;
}

describe('sso_coverage with the real Okta SDK against a local Okta server', () => {
  it('full coverage: passes, and the facts, counts and metrics are what the scenario holds', async () => {
    const s = baseScenario();
    const r = await runScenario(s);
    expect(r.error).toBeNull();
    r.io.assertComplete();
    expect(factsSchema.safeParse(r.facts).success).toBe(true);
    expect(r.verdict).toEqual({ status: 'pass', reasons: [] });
    const exp = expectedFor(s);
    expect(r.facts!.counts).toEqual(exp.counts);
    // Several pages of users, followed through absolute Link URLs with the same token.
    const userPages = r.server.requests.filter((q) => q.endpoint === 'GET /api/v1/users' && q.query.search === undefined);
    expect(userPages.length).toBeGreaterThanOrEqual(Math.ceil(s.people.filter((p) => p.status !== 'DEPROVISIONED').length / 50));
    expect(userPages.slice(1).every((q) => q.query.after !== undefined && q.query.limit === '50')).toBe(true);
    expect(r.server.requests.every((q) => q.auth === 'SSWS' && q.credential === TOKEN)).toBe(true);
    // DEPROVISIONED accounts are searched for explicitly.
    expect(r.server.requests.some((q) => q.endpoint === 'GET /api/v1/users' && q.query.search === 'status eq "DEPROVISIONED"')).toBe(true);
    // The System Log query is bounded.
    const logs = r.server.requests.filter((q) => q.endpoint === 'GET /api/v1/logs');
    expect(logs[0]!.query).toMatchObject({ until: s.now.toISOString(), filter: 'eventType eq "user.lifecycle.deactivate"' });
    expect(r.facts!.source.endpoints).toEqual([
      'GET /api/v1/api-tokens',
      'GET /api/v1/apps',
      'GET /api/v1/apps/{id}/users',
      'GET /api/v1/groups',
      'GET /api/v1/groups/{id}/users',
      'GET /api/v1/logs',
      'GET /api/v1/users',
      'GET /api/v1/users/{id}/factors',
    ]);
    expect(r.facts!.source.requests).toBe(r.server.requests.length);
    expect(r.facts!.population.selector).toEqual({ kind: 'group', groupId: GROUP_ID, groupName: s.groupName });
    expect(r.facts!.source.orgUrl).toBe(r.server.url);
    // Every staff account is in the evidence, each with its strongest factor class.
    expect(r.facts!.accounts.map((a) => a.login)).toEqual(sorted(exp.staff.map((p) => p.login)));
    const byLogin = new Map(s.people.map((p) => [p.login, p]));
    for (const a of r.facts!.accounts.filter(isActive)) expect(a.mfa, a.login).toBe(byLogin.get(a.login)!.strongest);
    // Deactivation times come from the System Log, and from statusChanged where it has no event.
    const logged = r.facts!.leavers.filter((l) => l.state === 'deprovisioned');
    const unlogged = s.people.filter((p) => p.deactivation !== null && !p.deactivation.logged && p.tags.includes('leaver'));
    expect(logged.filter((l) => l.deprovisionedSource === 'status_changed').map((l) => l.key)).toEqual(unlogged.map((p) => p.login));
    expect(r.facts!.systemLog).toMatchObject({ readable: true, truncated: false, events: logged.length - unlogged.length });
  });

  it('metrics carry the counts, with fixed label vocabularies and never a user', async () => {
    const s = baseScenario({ staff: 120 });
    const r = await runScenario(s);
    const exp = expectedFor(s).counts;
    const samples = ssoMetricSamples(r.facts!);
    const value = (name: string, labels: Record<string, string> = {}) =>
      samples.find((m) => m.name === name && JSON.stringify(m.labels) === JSON.stringify(labels))?.value;
    for (const [status, n] of Object.entries(exp.accounts)) expect(value('vcm_sso_accounts', { status: status.toLowerCase() })).toBe(n);
    expect(value('vcm_sso_mfa_eligible_accounts')).toBe(exp.activeAccounts);
    expect(value('vcm_sso_mfa_accounts', { strength: 'any' })).toBe(exp.mfa.any.numerator);
    expect(value('vcm_sso_mfa_accounts', { strength: 'phishing_resistant' })).toBe(exp.mfa.phishingResistant.numerator);
    for (const [strength, n] of Object.entries(exp.mfa.strongest)) expect(value('vcm_sso_mfa_strongest_accounts', { strength })).toBe(n);
    expect(value('vcm_sso_app_assignments', { sign_on_class: 'federated' })).toBe(exp.appAssignments.federated.numerator);
    expect(value('vcm_sso_app_assignments', { sign_on_class: 'password_vaulted' })).toBe(exp.appAssignments.passwordVaulted.numerator);
    for (const [state, n] of Object.entries(exp.leavers.byState)) expect(value('vcm_sso_leavers', { status: state })).toBe(n);
    expect(value('vcm_sso_leavers_past_deadline', { status: 'deprovisioned' })).toBe(exp.leavers.deprovisionedLate);
    expect(value('vcm_sso_roster_people', { status: 'without_account' })).toBe(exp.roster.withoutAccount);
    expect(value('vcm_sso_stale_accounts')).toBe(exp.stale.numerator);
    expect(value('vcm_sso_api_token_age_max_seconds')).toBe(exp.apiTokens.maxAgeDays! * 86400);
    const people = new Set(s.people.flatMap((p) => [p.login, p.id, p.login.split('@')[0]!]));
    for (const m of samples) for (const v of Object.values(m.labels)) expect(people.has(v!), `${m.name} ${v}`).toBe(false);
  });

  it('missing MFA: fails with CHK_FAIL_MFA_MISSING for exactly the accounts without an active factor', async () => {
    const s = baseScenario();
    const victims = spread(s, plainStaff, 7);
    victims.forEach((p, i) => {
      p.factors = NO_MFA_SETS[i % NO_MFA_SETS.length]!;
      p.strongest = 'none';
    });
    const r = await runScenario(s);
    expect(r.verdict!.status).toBe('fail');
    expect(codes(r.verdict)).toEqual(['CHK_FAIL_MFA_MISSING']);
    expect(subjects(r.verdict, 'CHK_FAIL_MFA_MISSING')).toEqual(sorted(victims.map((p) => p.login)));
    expect(r.facts!.counts).toEqual(expectedFor(s).counts);
    expect(r.facts!.counts.mfa.any.numerator).toBe(r.facts!.counts.activeAccounts - victims.length);
  });

  it('phishing-resistant policy: fails for every active account whose strongest factor is weaker', async () => {
    const s = baseScenario({ staff: 80 });
    const r = await runScenario(s, { config: { requirePhishingResistant: true } });
    const weaker = s.people.filter((p) => p.inGroup && isActive(p) && p.strongest !== 'phishing_resistant');
    expect(weaker.length).toBeGreaterThan(0);
    expect(codes(r.verdict)).toEqual(['CHK_FAIL_MFA_NOT_PHISHING_RESISTANT']);
    expect(subjects(r.verdict, 'CHK_FAIL_MFA_NOT_PHISHING_RESISTANT')).toEqual(sorted(weaker.map((p) => p.login)));
    expect(FACTOR_SETS.some((f) => f.strongest === 'phishing_resistant')).toBe(true);
  });

  it('a leaver still active past the deadline fails, even one already out of the staff group', async () => {
    const s = baseScenario();
    const [inGroup, leftGroup] = spread(s, plainStaff, 2);
    inGroup!.roster!.endDaysAgo = 5;
    leftGroup!.roster!.endDaysAgo = 10;
    leftGroup!.inGroup = false;
    const r = await runScenario(s);
    expect(codes(r.verdict)).toEqual(['CHK_FAIL_LEAVER_ACTIVE']);
    expect(subjects(r.verdict, 'CHK_FAIL_LEAVER_ACTIVE')).toEqual(sorted([inGroup!.login, leftGroup!.login]));
    const exp = expectedFor(s);
    expect(r.facts!.counts).toEqual(exp.counts);
    expect(r.facts!.counts.leavers!.activePastDeadline).toBe(2);
    // The lag of a still-active leaver runs to the collection time.
    expect(r.facts!.counts.leavers!.maxLagSeconds.active).toBe(Math.round((s.now.getTime() - endInstant(s.now, 10)) / 1000));
    const leaver = r.facts!.leavers.find((l) => l.key === leftGroup!.login)!;
    expect(leaver).toMatchObject({ state: 'active', accounts: [{ id: leftGroup!.id, login: leftGroup!.login, status: 'ACTIVE' }] });
  });

  it('a stale account fails (no sign-in in 90 days, or never since creation 90 days ago)', async () => {
    const s = baseScenario();
    const victims = spread(s, plainStaff, 4);
    victims.slice(0, 3).forEach((p, i) => (p.lastLoginDaysAgo = 91 + i * 50));
    victims[3]!.lastLoginDaysAgo = null;
    victims[3]!.createdDaysAgo = 100;
    const r = await runScenario(s);
    expect(codes(r.verdict)).toEqual(['CHK_FAIL_STALE_ACCOUNT']);
    expect(subjects(r.verdict, 'CHK_FAIL_STALE_ACCOUNT')).toEqual(sorted(victims.map((p) => p.login)));
    expect(r.facts!.counts).toEqual(expectedFor(s).counts);
    // Not a failure when the policy says so.
    expect(ssoCoverage.evaluate(r.facts!, { ...r.config, failOnStale: false }).status).toBe('pass');
  });

  it('password-vaulted apps assigned to staff fail, one reason per app, with the assignees in the evidence', async () => {
    const s = baseScenario();
    const swa = spread(s, plainStaff, 12).map((p) => p.n);
    const sps = spread(s, plainStaff, 3).map((p) => p.n);
    s.apps.push(
      { id: '0oavault0000000000a1', label: 'Payroll (SWA)', name: 'template_swa', signOnMode: 'BROWSER_PLUGIN', status: 'ACTIVE', assigned: swa },
      { id: '0oavault0000000000a2', label: 'Vendor portal', name: 'template_sps', signOnMode: 'SECURE_PASSWORD_STORE', status: 'ACTIVE', assigned: sps },
    );
    const r = await runScenario(s);
    expect(codes(r.verdict)).toEqual(['CHK_FAIL_PASSWORD_VAULTED_APP']);
    expect(subjects(r.verdict, 'CHK_FAIL_PASSWORD_VAULTED_APP')).toEqual(['Payroll (SWA)', 'Vendor portal']);
    const payroll = r.facts!.apps.find((a) => a.label === 'Payroll (SWA)')!;
    const logins = new Map(s.people.map((p) => [p.n, p.login]));
    expect(payroll).toMatchObject({ signOnClass: 'password_vaulted', signOnMode: 'BROWSER_PLUGIN', assignments: swa.length });
    expect(payroll.assignees).toEqual(sorted(swa.map((n) => logins.get(n)!)));
    expect(r.facts!.counts).toEqual(expectedFor(s).counts);
    expect(ssoCoverage.evaluate(r.facts!, { ...r.config, allowVaultedApps: true }).status).toBe('pass');
  });

  it('a revoked token (401 E0000011) is unknown with CHK_ERR_PERMISSION, and the token is never in the message', async () => {
    const s = baseScenario({ staff: 60 });
    const r = await runScenario(s, { server: { apiTokens: ['another-token'] } });
    expect(r.facts).toBeNull();
    expect(errorCode(r.error)).toBe('CHK_ERR_PERMISSION');
    expect((r.error as Error).message).toContain('401 E0000011');
    expect(JSON.stringify(r.error)).not.toContain(TOKEN);
    expect((r.error as Error).message).not.toContain(TOKEN);
  });

  it('a token revoked in the middle of paging: the error surfaces mid-iteration and nothing partial is judged', async () => {
    const s = baseScenario();
    const r = await runScenario(s, { server: { revokeAfterRequests: 3 } });
    const ok = r.server.requests.filter((q) => q.status === 200 && q.endpoint === 'GET /api/v1/users');
    expect(ok.length).toBe(3);
    expect(r.facts).toBeNull();
    expect(errorCode(r.error)).toBe('CHK_ERR_PERMISSION');
  });

  it('a 429 storm: waits for X-Rate-Limit-Reset, retries the same page, completes with the same facts', async () => {
    const s = baseScenario({ staff: 150 });
    const r = await runScenario(s, { server: { storms: [{ endpoint: 'GET /api/v1/users', skip: 2, count: 3 }] }, okta: { rateLimit: { maxRetries: 4 } } });
    expect(r.error).toBeNull();
    expect(r.verdict!.status).toBe('pass');
    expect(r.facts!.counts).toEqual(expectedFor(s).counts);
    expect(r.facts!.source.rateLimitRetries).toBe(3);
    const users = r.server.requests.filter((q) => q.endpoint === 'GET /api/v1/users');
    const limited = users.filter((q) => q.status === 429);
    expect(limited.length).toBe(3);
    const first = users.indexOf(limited[0]!);
    // The retries are the same request (same page cursor), counted by X-Okta-Retry-Count.
    expect(users.slice(first, first + 4).map((q) => q.query.after)).toEqual(Array(4).fill(users[first]!.query.after));
    expect(users.slice(first, first + 4).map((q) => q.retryCount)).toEqual([null, '1', '2', '3']);
    // Each retry came no earlier than the reset the 429 announced.
    for (let i = first; i < first + 3; i++) expect(users[i + 1]!.at).toBeGreaterThanOrEqual(users[i]!.resetAtMs!);
  });

  it('a 429 storm longer than the retry budget is unknown (CHK_ERR_TIMEOUT), not a partial pass', async () => {
    const s = baseScenario({ staff: 150 });
    const r = await runScenario(s, { server: { storms: [{ endpoint: 'GET /api/v1/users', skip: 1, count: 3 }] }, okta: { rateLimit: { maxRetries: 2 } } });
    expect(r.facts).toBeNull();
    expect(errorCode(r.error)).toBe('CHK_ERR_TIMEOUT');
    expect(r.server.requests.filter((q) => q.status === 429)).toHaveLength(3);
  });

  it('a 429 asking for a longer wait than maxWaitMs is not waited for', async () => {
    const s = baseScenario({ staff: 20 });
    const r = await runScenario(s, { server: { storms: [{ endpoint: 'GET /api/v1/apps', count: 1 }], resetAfterSeconds: 120 }, okta: { rateLimit: { maxWaitMs: 5000 } } });
    expect(errorCode(r.error)).toBe('CHK_ERR_TIMEOUT');
    expect(r.server.requests.filter((q) => q.endpoint === 'GET /api/v1/apps')).toHaveLength(1);
  });

  it('API tokens the role may not list (403) are reported as not readable; the check still judges', async () => {
    const s = baseScenario({ staff: 60 });
    const r = await runScenario(s, { server: { forbidden: ['GET /api/v1/api-tokens'] } });
    expect(r.verdict!.status).toBe('pass');
    expect(r.facts!.credentials.apiTokens).toMatchObject({ readable: false, tokens: [] });
    expect(r.facts!.credentials.apiTokens.reason).toContain('403 E0000006');
    expect(ssoMetricSamples(r.facts!).find((m) => m.name === 'vcm_sso_api_tokens_readable')!.value).toBe(0);
    expect(ssoMetricSamples(r.facts!).some((m) => m.name === 'vcm_sso_api_tokens')).toBe(false);
  });

  it('identity-side credentials: Okta-mastered passwords and API tokens, with ages', async () => {
    const s = baseScenario({ staff: 60 });
    const r = await runScenario(s);
    const creds = idpCredentials(r.facts!);
    const exp = expectedFor(s);
    const pw = exp.active.filter((p) => p.provider === 'OKTA');
    expect(creds.filter((c) => c.kind === 'idp_password').map((c) => [c.account, c.ageDays])).toEqual(
      sorted(pw.map((p) => p.login)).map((l) => [l, s.people.find((p) => p.login === l)!.passwordChangedDaysAgo]),
    );
    const byN = new Map(s.people.map((p) => [p.n, p]));
    expect(creds.filter((c) => c.kind === 'idp_api_token').map((c) => ({ account: c.account, name: c.name, ageDays: c.ageDays }))).toEqual(
      s.apiTokens.map((t) => ({ account: byN.get(t.ownerN)!.login, name: t.name, ageDays: t.createdDaysAgo })).sort((a, b) => (a.account < b.account ? -1 : 1)),
    );
    // Federated accounts have no Okta password to age.
    expect(creds.some((c) => exp.active.find((p) => p.login === c.account)?.provider === 'FEDERATION' && c.kind === 'idp_password')).toBe(false);
  });

  it('without the System Log (403), deactivation times fall back to statusChanged', async () => {
    const s = baseScenario({ staff: 40 });
    const r = await runScenario(s, { server: { forbidden: ['GET /api/v1/logs'] } });
    expect(r.facts!.systemLog).toMatchObject({ readable: false, pages: 0 });
    const dep = r.facts!.leavers.filter((l) => l.state === 'deprovisioned');
    expect(dep.length).toBeGreaterThan(0);
    expect(dep.every((l) => l.deprovisionedSource === 'status_changed')).toBe(true);
    expect(r.facts!.counts).toEqual(expectedFor(s).counts);
  });

  it('a System Log that links to a next page forever stops at the first empty page', async () => {
    const s = baseScenario({ staff: 40 });
    const r = await runScenario(s, { server: { logsAlwaysNext: true }, okta: { systemLog: { pageSize: 4 } } });
    expect(r.error).toBeNull();
    const logs = r.server.requests.filter((q) => q.endpoint === 'GET /api/v1/logs');
    const events = r.facts!.systemLog.events;
    expect(logs.length).toBe(r.facts!.systemLog.pages);
    expect(r.facts!.systemLog.pages).toBeGreaterThanOrEqual(Math.ceil(events / 4) + 1);
    expect(r.facts!.systemLog.truncated).toBe(false);
    expect(r.facts!.counts).toEqual(expectedFor(s).counts);
  });

  it('a System Log longer than maxPages is cut off, said so, and the lags fall back to statusChanged', async () => {
    const s = baseScenario({ staff: 40 });
    const r = await runScenario(s, { okta: { systemLog: { pageSize: 2, maxPages: 3 } } });
    expect(r.facts!.systemLog).toMatchObject({ pages: 3, truncated: true });
    expect(r.server.requests.filter((q) => q.endpoint === 'GET /api/v1/logs')).toHaveLength(3);
    expect(r.facts!.leavers.some((l) => l.deprovisionedSource === 'status_changed')).toBe(true);
    expect(r.facts!.counts).toEqual(expectedFor(s).counts);
  });

  it('late deprovisioning fails only when the policy asks for it', async () => {
    const s = baseScenario({ staff: 40 });
    const r = await runScenario(s, { config: { failOnLateDeprovisioning: true } });
    const late = s.people.filter((p) => p.tags.includes('deprovisioned-late'));
    expect(codes(r.verdict)).toEqual(['CHK_FAIL_LEAVER_DEPROVISIONED_LATE']);
    expect(subjects(r.verdict, 'CHK_FAIL_LEAVER_DEPROVISIONED_LATE')).toEqual(sorted(late.map((p) => p.login)));
  });

  it('the population by group id, and by a profile attribute (searching the org, DEPROVISIONED included)', async () => {
    const s = baseScenario({ staff: 60 });
    const byId = await runScenario(s, { config: { population: { group: GROUP_ID } } });
    expect(byId.facts!.counts).toEqual(expectedFor(s).counts);
    expect(byId.server.requests.some((q) => q.endpoint === 'GET /api/v1/groups/{id}')).toBe(true);
    const byAttr = await runScenario(s, { config: { population: { profileAttribute: { name: 'department', value: 'Delivery' } } } });
    const delivery = (p: { department: string }) => p.department === 'Delivery';
    expect(byAttr.facts!.population.selector).toEqual({ kind: 'profileAttribute', name: 'department', value: 'Delivery' });
    expect(byAttr.facts!.counts.accounts).toEqual(expectedFor(s, delivery).counts.accounts);
    expect(byAttr.server.requests.some((q) => q.endpoint.startsWith('GET /api/v1/groups'))).toBe(false);
  });

  it('an answer that is not JSON is CHK_ERR_PARSE; a next link off the org URL is refused (CHK_ERR_PARSE)', async () => {
    const s = baseScenario({ staff: 60 });
    const html = await runScenario(s, { server: { malformed: ['GET /api/v1/apps'] } });
    expect(errorCode(html.error)).toBe('CHK_ERR_PARSE');
    const elsewhere = await runScenario(s, { server: { linkOrigin: 'http://127.0.0.2:9' } });
    expect(errorCode(elsewhere.error)).toBe('CHK_ERR_PARSE');
    // The first page was read; the foreign next link was never followed.
    expect(elsewhere.server.requests.filter((q) => q.endpoint === 'GET /api/v1/users')).toHaveLength(1);
  });

  it('an account deleted between the user list and its factor read is left out and counted as vanished', async () => {
    const s = baseScenario({ staff: 60 });
    const gone = spread(s, plainStaff, 2);
    const r = await runScenario(s, { server: { goneUsers: gone.map((p) => p.id) } });
    expect(r.facts!.population.vanished).toBe(2);
    expect(r.facts!.accounts.some((a) => gone.some((p) => p.id === a.id))).toBe(false);
    for (const p of gone) p.inGroup = false;
    expect(r.facts!.counts.activeAccounts).toBe(expectedFor(s).counts.activeAccounts);
  });

  it('an unknown group name is CHK_ERR_SOURCE_MISSING', async () => {
    const r = await runScenario(baseScenario({ staff: 5 }), { config: { population: { group: 'No Such Group' } } });
    expect(errorCode(r.error)).toBe('CHK_ERR_SOURCE_MISSING');
  });

  it('a private key the SDK cannot use is unknown, CHK_ERR_NOT_CONFIGURED, and the key is never quoted', async () => {
    const s = baseScenario({ staff: 10 });
    const keyFile = '/etc/vcm/okta-key.pem';
    const garbage = 'not-a-key-but-secret-material-0123456789';
    const r = await runScenario(s, {
      localAuth: { auth: { type: 'privateKey' as const, clientId: '0oaservice00000000a1' }, file: keyFile },
      secretFile: { path: keyFile, content: garbage },
    });
    expect(r.facts).toBeNull();
    expect(r.error).toMatchObject({ code: 'CHK_ERR_NOT_CONFIGURED', message: expect.stringContaining("the Okta service app's private key cannot be used") });
    expect(String((r.error as Error).message)).not.toContain(garbage);
    // Nothing reached Okta: the key failed before the first request.
    expect(r.server.requests.filter((q) => q.path.startsWith('/api/'))).toHaveLength(0);
  });

  it('a private-key service app: client assertion, Bearer token, read-only scopes; API tokens need a scope it lacks', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const s = baseScenario({ staff: 60 });
    const keyFile = '/etc/vcm/okta-key.pem';
    const scopes = ['okta.users.read', 'okta.groups.read', 'okta.apps.read', 'okta.logs.read'];
    const r = await runScenario(s, {
      localAuth: { auth: { type: 'privateKey' as const, clientId: '0oaservice00000000a1' }, file: keyFile },
      secretFile: { path: keyFile, content: pem },
      server: { serviceApps: [{ clientId: '0oaservice00000000a1', publicKey, scopes }] },
    });
    expect(r.error).toBeNull();
    r.io.assertComplete();
    expect(r.verdict!.status).toBe('pass');
    const api = r.server.requests.filter((q) => q.path.startsWith('/api/'));
    expect(api.every((q) => q.auth === 'Bearer')).toBe(true);
    expect(r.server.requests.filter((q) => q.path === '/oauth2/v1/token')).toHaveLength(1);
    expect(r.facts!.source.auth).toBe('privateKey');
    expect(r.facts!.credentials.apiTokens.readable).toBe(false);
    expect(r.facts!.counts).toEqual({ ...expectedFor(s).counts, apiTokens: { readable: false, tokens: 0, maxAgeDays: null } });
  });

  it('a private-key app Okta does not know, or scopes it was not granted, is CHK_ERR_PERMISSION', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const s = baseScenario({ staff: 5 });
    const keyFile = '/etc/vcm/okta-key.pem';
    const base = { localAuth: { auth: { type: 'privateKey' as const, clientId: '0oaservice00000000a1' }, file: keyFile }, secretFile: { path: keyFile, content: pem } };
    const unknownApp = await runScenario(s, { ...base, server: { serviceApps: [] } });
    expect(errorCode(unknownApp.error)).toBe('CHK_ERR_PERMISSION');
    const narrow = await runScenario(s, { ...base, server: { serviceApps: [{ clientId: '0oaservice00000000a1', publicKey, scopes: ['okta.users.read'] }] } });
    expect(errorCode(narrow.error)).toBe('CHK_ERR_PERMISSION');
    expect((narrow.error as Error).message).not.toContain('PRIVATE KEY');
  });

  it('Okta unreachable is CHK_ERR_NETWORK; an Okta request that never answers is CHK_ERR_TIMEOUT', async () => {
    const s = baseScenario({ staff: 5 });
    const down = await runScenario(s, { closeFirst: true });
    expect(errorCode(down.error)).toBe('CHK_ERR_NETWORK');
    const hung = await runScenario(s, { server: { hang: ['GET /api/v1/apps'] }, okta: { requestTimeoutMs: 1000 } });
    expect(errorCode(hung.error)).toBe('CHK_ERR_TIMEOUT');
  });

  it("the runner's time budget stops the reads: unknown CHK_ERR_TIMEOUT", async () => {
    const s = baseScenario({ staff: 5 });
    const m = materialize(s);
    const server = await startOktaServer({ org: m.org, apiTokens: [TOKEN], hang: ['GET /api/v1/users'] });
    try {
      const io = new ReplayHostIO({ version: 1, platform: 'linux', calls: [] });
      const finding = await runCheck(ssoCoverage, {
        io,
        timeoutMs: 500,
        identityProvider: { okta: { orgUrl: server.url, auth: { type: 'apiToken' }, secret: () => Promise.resolve(TOKEN) } },
      });
      expect(finding).toMatchObject({ status: 'unknown', facts: null, reasons: [{ code: 'CHK_ERR_TIMEOUT' }] });
    } finally {
      await server.close();
    }
  });

  it('through the runner: a pass with schema-valid facts, and unknown "Okta is not configured" without okta', async () => {
    const s = baseScenario({ staff: 60 });
    const m = materialize(s);
    const server = await startOktaServer({ org: m.org, apiTokens: [TOKEN] });
    const env = 'VCM_TEST_OKTA_TOKEN';
    process.env[env] = TOKEN;
    try {
      const io = new ReplayHostIO({ version: 1, platform: 'linux', calls: [] });
      // The agent's own config gives the access, exactly as `vcm-agent` builds it.
      const finding = await runCheck(ssoCoverage, {
        io,
        configs: { sso_coverage: { okta: { orgUrl: server.url }, population: { group: s.groupName } } },
        identityProvider: identityProviderAccess({ okta: { orgUrl: server.url, tokenEnv: env } }),
      });
      expect(finding.status, JSON.stringify(finding.reasons)).toBe('pass');
      expect(JSON.stringify(finding)).not.toContain(TOKEN);
      io.assertComplete();
      const none = await runCheck(ssoCoverage, { io: new ReplayHostIO({ version: 1, platform: 'linux', calls: [] }) });
      expect(none).toMatchObject({ status: 'unknown', facts: null, reasons: [{ code: 'CHK_ERR_NOT_CONFIGURED', message: expect.stringMatching(/^Okta is not configured/) }] });
    } finally {
      delete process.env[env];
      await server.close();
    }
  });

  it('a CSV roster gives the same facts as the JSON one', async () => {
    const s = baseScenario({ staff: 60 });
    const csv = await runScenario(s, { config: { roster: { file: ROSTER_CSV } } });
    csv.io.assertComplete();
    expect(csv.facts!.roster!.file).toBe(ROSTER_CSV);
    expect(csv.facts!.counts).toEqual(expectedFor(s).counts);
    expect(csv.facts!.leavers).toEqual((await runScenario(s)).facts!.leavers);
  });

  it('a roster the agent config does not list is never read: unknown, CHK_ERR_NOT_CONFIGURED (#17)', async () => {
    const s = baseScenario({ staff: 5 });
    const r = await runScenario(s, { config: { roster: { file: '/etc/shadow', format: 'csv' } }, rosterFiles: [ROSTER_FILE] });
    expect(r.facts).toBeNull();
    expect(r.error).toMatchObject({ code: 'CHK_ERR_NOT_CONFIGURED', subject: 'roster.file', message: expect.stringContaining("okta.rosterFiles does not list") });
    // The replay recorded a read of the file; it never came.
    expect(() => r.io.assertComplete()).toThrow(/\/etc\/shadow/);
    expect(r.server.requests).toHaveLength(0);
  });

  it('the roster joins on employeeNumber as well as on e-mail', async () => {
    const s: Scenario = baseScenario({ staff: 40 });
    const r = await runScenario(s, { config: { roster: { file: '/etc/vcm/staff-roster.json', joinOn: 'employeeNumber' } } });
    // rosterOnly people carry their HR id as employeeNumber, staff carry E<n>: the same joins.
    expect(r.facts!.roster).toMatchObject({ joinOn: 'employeeNumber' });
    expect(r.facts!.counts.roster).toEqual(expectedFor(s).counts.roster);
    expect(r.facts!.counts.leavers).toEqual(expectedFor(s).counts.leavers);
  });
});
