// The identity side of credential_age: the real Okta SDK against the local Okta-compatible
// server, with the access handed over the way the agent hands it (IdentityProviderAccess), and
// the verdicts computed from what each scenario was built to contain.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { collectAt, configSchema, credentialAge, evaluate, type Facts } from '../../../checks/credential_age/index.js';
import { ReplayHostIO } from '../../../checks/replay.js';
import { budgetFor, runCheck } from '../../../checks/runner.js';
import { ssoCoverage } from '../../../checks/sso_coverage/index.js';
import type { IdentityProviderAccess } from '../../../checks/types.js';
import { startOktaServer, type OktaServer, type OktaServerOptions } from '../../helpers/okta-server.js';
import { AGENT_CLI, REPO, runCli, tempDir } from '../../helpers/processes.js';
import { TOKEN } from '../sso_coverage/harness.js';
import { baseScenario, materialize, type Scenario } from '../sso_coverage/scenario.js';

const ACTIVE = new Set(['ACTIVE', 'PASSWORD_EXPIRED', 'LOCKED_OUT', 'RECOVERY']);
const servers: OktaServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function org(s: Scenario, opts: Partial<OktaServerOptions> = {}): Promise<OktaServer> {
  const server = await startOktaServer({ org: materialize(s).org, apiTokens: [TOKEN], ...opts });
  servers.push(server);
  return server;
}

/** What the agent builds from its config: the org, the auth, and the secret on demand. */
function access(orgUrl: string, token = TOKEN): IdentityProviderAccess & { calls: number } {
  const a = { calls: 0, okta: { orgUrl, auth: { type: 'apiToken' as const }, secret: () => (a.calls++, Promise.resolve(token)) } };
  return a;
}

const noHost = new ReplayHostIO({ version: 1, platform: 'linux', calls: [] });

/** `idp` null: the agent has no Okta access. */
async function collectIdp(s: Scenario, server: OktaServer, config: Record<string, unknown>, idp: IdentityProviderAccess | null = access(server.url)) {
  const cfg = configSchema.parse({ identityProvider: { population: { group: s.groupName }, hostCredentials: false }, ...config });
  const facts = await collectAt({ io: noHost, platform: 'linux', config: cfg, signal: new AbortController().signal, identityProvider: idp ?? undefined }, s.now.getTime());
  return { facts, verdict: evaluate(facts, cfg) };
}

/** The staff whose Okta passwords are judged: in the group, active, Okta-mastered. */
/** A policy document holding just these checks. */
function policyWith(checks: Record<string, { enabled: boolean; intervalSeconds: number; config: unknown }>) {
  return { version: 1, createdAt: '2026-11-01T00:00:00.000Z', freshnessSeconds: 7200, checks };
}

const judgedPasswords = (s: Scenario) => s.people.filter((p) => p.inGroup && ACTIVE.has(p.status) && p.provider === 'OKTA');
const loginOf = (s: Scenario, n: number) => s.people.find((p) => p.n === n)!.login;

describe('credential_age: identity-provider credentials from Okta', () => {
  it('dates every staff Okta password and every API token, and fails exactly the token past its maximum', async () => {
    const s = baseScenario({ staff: 120 });
    const server = await org(s);
    const { facts, verdict } = await collectIdp(s, server, {});
    const pw = facts.credentials.filter((c) => c.kind === 'idp_password');
    expect(pw.map((c) => [c.account, c.ageDays]).sort()).toEqual(judgedPasswords(s).map((p) => [p.login, p.passwordChangedDaysAgo]).sort());
    expect(pw.every((c) => c.dateFrom === 'okta' && c.path === null && c.active)).toBe(true);
    const tokens = facts.credentials.filter((c) => c.kind === 'idp_api_token');
    expect(tokens.map((c) => ({ account: c.account, name: c.name, ageDays: c.ageDays })).sort((a, b) => a.ageDays! - b.ageDays!)).toEqual(
      s.apiTokens.map((t) => ({ account: loginOf(s, t.ownerN), name: t.name, ageDays: t.createdDaysAgo })).sort((a, b) => a.ageDays - b.ageDays),
    );
    // Host credentials were switched off: nothing of the host was read or reported.
    expect(facts.accounts).toEqual([]);
    expect(facts.credentials.some((c) => !c.kind.startsWith('idp_'))).toBe(false);
    noHost.assertComplete();
    expect(facts.identityProvider).toMatchObject({ vendor: 'okta', orgUrl: server.url, auth: 'apiToken', population: { kind: 'group', groupName: s.groupName } });
    expect(facts.sources.map((x) => [x.path, x.state])).toEqual([
      [`${server.url}/api/v1/api-tokens`, 'read'],
      [`${server.url}/api/v1/users`, 'read'],
    ]);
    // Default maxima (365 days): only the 400-day token fails.
    const old = s.apiTokens.filter((t) => t.createdDaysAgo > 365);
    expect(old.length).toBeGreaterThan(0);
    expect(verdict.status).toBe('fail');
    expect(verdict.reasons.map((r) => [r.code, r.subject])).toEqual(old.map((t) => ['CHK_FAIL_CREDENTIAL_TOO_OLD', `idp_api_token:${loginOf(s, t.ownerN)}:${t.name}`]));
    // The factor, app and log endpoints are sso_coverage's business, not read here.
    expect(server.requests.some((q) => /factors|\/apps|\/logs/.test(q.path))).toBe(false);
    expect(JSON.stringify(facts)).not.toContain(TOKEN);
  });

  it('a tighter password maximum fails exactly the staff passwords older than it; null switches a kind off', async () => {
    const s = baseScenario({ staff: 120 });
    const server = await org(s);
    const { verdict } = await collectIdp(s, server, { maxAgeDays: { idp_password: 100, idp_api_token: null } });
    const expected = judgedPasswords(s)
      .filter((p) => p.passwordChangedDaysAgo! > 100)
      .map((p) => `idp_password:${p.login}`)
      .sort();
    expect(expected.length).toBeGreaterThan(10);
    expect(verdict.status).toBe('fail');
    expect(verdict.reasons.map((r) => r.subject).sort()).toEqual(expected);
    expect(verdict.reasons.every((r) => r.code === 'CHK_FAIL_CREDENTIAL_TOO_OLD')).toBe(true);
  });

  it('API tokens the role may not list: unknown with Okta\'s 403 as the reason, unless their maximum is off', async () => {
    const s = baseScenario({ staff: 60 });
    const server = await org(s, { forbidden: ['GET /api/v1/api-tokens'] });
    const judged = await collectIdp(s, server, {});
    expect(judged.verdict.status).toBe('unknown');
    expect(judged.verdict.reasons).toEqual([
      { code: 'CHK_ERR_PERMISSION', subject: `${server.url}/api/v1/api-tokens`, message: expect.stringMatching(/403 E0000006.*so idp_api_token cannot be judged/) },
    ]);
    const off = await collectIdp(s, server, { maxAgeDays: { idp_api_token: null } });
    expect(off.verdict).toEqual({ status: 'pass', reasons: [] });
  });

  it('a revoked token (401): both Okta sources unreadable, unknown with CHK_ERR_PERMISSION, the token never in the evidence', async () => {
    const s = baseScenario({ staff: 60 });
    const server = await org(s, { apiTokens: ['another-token'] });
    const { facts, verdict } = await collectIdp(s, server, {});
    expect(facts.identityProvider).toBeNull();
    expect(facts.credentials).toEqual([]);
    expect(verdict.status).toBe('unknown');
    expect(new Set(verdict.reasons.map((r) => r.code))).toEqual(new Set(['CHK_ERR_PERMISSION']));
    expect(verdict.reasons.map((r) => r.subject).sort()).toEqual([`${server.url}/api/v1/api-tokens`, `${server.url}/api/v1/users`]);
    expect(JSON.stringify({ facts, verdict })).not.toContain(TOKEN);
  });

  it('the policy pins the org: an agent configured for another org answers unknown instead of measuring it', async () => {
    const s = baseScenario({ staff: 30 });
    const server = await org(s);
    const idp = access(server.url);
    const { verdict } = await collectIdp(s, server, { identityProvider: { okta: { orgUrl: 'https://other.okta.com' }, hostCredentials: false } }, idp);
    expect(verdict.status).toBe('unknown');
    expect(verdict.reasons[0]).toMatchObject({ code: 'CHK_ERR_NOT_CONFIGURED', message: expect.stringContaining('the policy names the Okta org https://other.okta.com') });
    // The secret was never asked for, and Okta never called.
    expect(idp.calls).toBe(0);
    expect(server.requests).toHaveLength(0);
    // Credentials a policy names are refused by the schema: they come from the agent's config only.
    expect(configSchema.safeParse({ identityProvider: { okta: { orgUrl: server.url, auth: { type: 'apiToken', tokenFile: '/etc/shadow' } } } }).success).toBe(false);
    // No access at all: this agent is not the one that reads Okta. Its sources are absent (with
    // the reason), nothing is judged for them, and Okta is never called.
    const before = server.requests.length;
    const none = await collectIdp(s, server, {}, null);
    expect(none.facts.sources.map((x) => [x.state, x.reason])).toEqual([
      ['absent', expect.stringContaining('no Okta access')],
      ['absent', expect.stringContaining('no Okta access')],
    ]);
    expect(none.verdict).toEqual({ status: 'pass', reasons: [] });
    expect(server.requests.length).toBe(before);
  });

  it('host and identity credentials together: a host failure and an Okta failure are both reported', async () => {
    const s = baseScenario({ staff: 30 });
    const server = await org(s);
    const io = await ReplayHostIO.load(path.join(REPO, 'test/fixtures/checks/credential_age/linux/old-ssh-keys'));
    const cfg = configSchema.parse({ identityProvider: { population: { group: s.groupName } } });
    const facts: Facts = await collectAt({ io, platform: 'linux', config: cfg, signal: new AbortController().signal, identityProvider: access(server.url) }, s.now.getTime());
    io.assertComplete();
    const v = evaluate(facts, cfg);
    expect(v.status).toBe('fail');
    const kinds = new Set(v.reasons.map((r) => r.subject!.split(':')[0]));
    expect(kinds).toEqual(new Set(['ssh_private_key', 'ssh_authorized_keys', 'ssh_host_key', 'idp_api_token']));
    expect(facts.accounts.map((a) => a.name)).toContain('alice');
  });

  it('the daemon schedules sso_coverage only where there is Okta access; credential_age everywhere', async () => {
    const { enabledChecks } = await import('../../../agent/cycle.js');
    const policy = policyWith({
      credential_age: { enabled: true, intervalSeconds: 86400, config: { identityProvider: {} } },
      sso_coverage: { enabled: true, intervalSeconds: 3600, config: {} },
    });
    expect(enabledChecks(policy).map((c) => c.id)).toEqual(['credential_age']);
    expect(enabledChecks(policy, access('https://acme.okta.com')).map((c) => c.id)).toEqual(['credential_age', 'sso_coverage']);
    // Credentials named in a policy are never access: the agent refuses that policy whole (#17).
    const named = { ...policy, checks: { sso_coverage: { enabled: true, intervalSeconds: 3600, config: { okta: { orgUrl: 'https://acme.okta.com', auth: { type: 'apiToken', tokenEnv: 'T' } } } } } };
    const { refuseLocalOnly } = await import('../../../agent/trust.js');
    expect(() => refuseLocalOnly(named)).toThrow(expect.objectContaining({ code: 'AGT_ERR_POLICY_LOCAL_ONLY', message: expect.stringContaining('checks.sso_coverage.config.okta.auth') }));
    // A config the check refuses still runs (and says so).
    const refused = { ...policy, checks: { sso_coverage: { enabled: true, intervalSeconds: 3600, config: { nonsense: 1 } } } };
    expect(enabledChecks(refused).map((c) => c.id)).toEqual(['sso_coverage']);
  });

  it('with hostCredentials off, credential_age runs only where Okta can be read: elsewhere it would read nothing and pass', async () => {
    const { enabledChecks } = await import('../../../agent/cycle.js');
    const policy = policyWith({ credential_age: { enabled: true, intervalSeconds: 86400, config: { identityProvider: { hostCredentials: false } } } });
    expect(enabledChecks(policy).map((c) => c.id)).toEqual([]);
    expect(enabledChecks(policy, access('https://acme.okta.com')).map((c) => c.id)).toEqual(['credential_age']);
  });

  it('budgets: 30 s for host checks, 10 minutes when an identity provider is read, and the policy\'s timeoutSeconds over both', async () => {
    const host = configSchema.parse({});
    const idp = configSchema.parse({ identityProvider: {} });
    expect(budgetFor(credentialAge, host, {})).toBe(30_000);
    expect(budgetFor(credentialAge, idp, {})).toBe(600_000);
    expect(budgetFor(ssoCoverage, {}, {})).toBe(600_000);
    expect(budgetFor(ssoCoverage, {}, { timeoutsMs: { sso_coverage: 5000 }, timeoutMs: 1000 })).toBe(5000);
    // A hung Okta read ends at the policy's budget as unknown, CHK_ERR_TIMEOUT.
    const s = baseScenario({ staff: 10 });
    const server = await org(s, { hang: ['GET /api/v1/users'] });
    const started = performance.now();
    const finding = await runCheck(credentialAge, {
      io: noHost,
      configs: { credential_age: { identityProvider: { hostCredentials: false } } },
      timeoutsMs: { credential_age: 1000 },
      identityProvider: access(server.url),
    });
    expect(finding.status).toBe('unknown');
    expect(finding.reasons.map((r) => r.code)).toContain('CHK_ERR_TIMEOUT');
    expect(performance.now() - started).toBeLessThan(20_000);
  });

  it('through the agent: `vcm-agent check` hands the config\'s Okta access to both checks; the token is never printed', async () => {
    const s = baseScenario({ staff: 60 });
    const server = await org(s);
    const dir = await tempDir('vcm-idp-');
    try {
      const stateDir = path.join(dir.dir, 'state');
      await mkdir(stateDir, { recursive: true });
      const config = path.join(dir.dir, 'config.json');
      // orgUrl with a trailing slash, as people paste it: normalized.
      await writeFile(config, JSON.stringify({ stateDir, okta: { orgUrl: `${server.url}/`, tokenEnv: 'VCM_TEST_OKTA' } }));
      const policy = {
        version: 3,
        createdAt: '2026-11-01T00:00:00.000Z',
        freshnessSeconds: 7200,
        checks: {
          sso_coverage: { enabled: true, intervalSeconds: 3600, timeoutSeconds: 120, config: { population: { group: s.groupName } } },
          credential_age: {
            enabled: true,
            intervalSeconds: 86400,
            config: { maxAgeDays: { idp_api_token: null }, identityProvider: { population: { group: s.groupName }, hostCredentials: false } },
          },
        },
      };
      await writeFile(path.join(stateDir, 'policy.json'), JSON.stringify(policy));
      const r = await runCli(AGENT_CLI, ['check', 'sso_coverage', 'credential_age', '--format', 'json', '--config', config, '--state-dir', stateDir], {
        env: { VCM_TEST_OKTA: TOKEN, VCM_CONFIG: '' },
      });
      expect(r.code, r.stderr).toBe(0);
      const findings = JSON.parse(r.stdout) as { check: string; status: string; reasons: unknown[]; facts: { source?: { orgUrl: string } } }[];
      expect(findings.map((f) => [f.check, f.status])).toEqual([
        ['sso_coverage', 'pass'],
        ['credential_age', 'pass'],
      ]);
      expect(findings.find((f) => f.check === 'sso_coverage')!.facts.source!.orgUrl).toBe(server.url);
      expect(r.stdout + r.stderr).not.toContain(TOKEN);
      // Without the variable: both unknown with the reference named, the agent itself fine.
      const missing = await runCli(AGENT_CLI, ['check', 'sso_coverage', '--format', 'json', '--config', config, '--state-dir', stateDir], { env: { VCM_CONFIG: '' } });
      expect(missing.code, missing.stderr).toBe(3); // some check is not passing; no agent error
      const [f] = JSON.parse(missing.stdout) as { status: string; reasons: { code: string; message: string }[] }[];
      expect(f).toMatchObject({ status: 'unknown', reasons: [{ code: 'CHK_ERR_NOT_CONFIGURED', message: expect.stringContaining('env VCM_TEST_OKTA') }] });
    } finally {
      await dir.cleanup();
    }
  });
});
