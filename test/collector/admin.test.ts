// The admin and auditor API, revocation from a chain point, policy versions, vendor overrides,
// exceptions (waived, and back to fail on expiry), and the per-agent rate limit.
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createAdminToken, settleTokenUses } from '../../collector/admin.js';
import { agentAuthorization, sha256Hex } from '../../collector/contract.js';
import { parseCollectorConfig, startCollector, type CollectorConfigInput, type RunningCollector } from '../../collector/server.js';
import { FsEvidenceStore, type EvidenceStore } from '../../collector/store.js';
import { createToken } from '../../collector/tokens.js';
import { chain, dateFixturesAt, enrollBody, enrollTestAgent, finding, newKey, resultEnvelope, type TestAgent } from '../helpers/agents.js';
import { sample, tempDir } from '../helpers/processes.js';

let data: Awaited<ReturnType<typeof tempDir>>;
let collector: RunningCollector;
let clock: Date;
let admin: string;

async function start(extra: Partial<CollectorConfigInput> = {}): Promise<RunningCollector> {
  return startCollector(parseCollectorConfig({ dataDir: data.dir, listen: '127.0.0.1:0', ...extra }), { log: pino({ level: 'silent' }), now: () => clock });
}

async function call(method: string, path: string, token: string | undefined, body?: unknown) {
  const res = await fetch(`${collector.url}${path}`, {
    method,
    headers: { ...(token === undefined ? {} : { authorization: `Bearer ${token}` }), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, headers: res.headers, json: (await res.json()) as Record<string, unknown> & { error?: { code: string } } };
}

async function post(body: Buffer, contentType = 'application/json') {
  const res = await fetch(`${collector.url}/v1/results`, { method: 'POST', headers: { 'content-type': contentType }, body });
  return { status: res.status, headers: res.headers, json: (await res.json()) as { error?: { code: string }; results?: { outcome: string }[] } };
}

async function metrics(): Promise<string> {
  return (await fetch(`${collector.url}/metrics`)).text();
}

// Results at 10:00 on the 22nd unless a test says otherwise; the collector's clock is 12:00.
dateFixturesAt('2026-11-22T10:00:00.000Z');

/** Agents enroll on the 20th, before the results they send (the collector refuses earlier ones). */
async function enrollAgent(...args: Parameters<typeof enrollTestAgent>): Promise<TestAgent> {
  const at = clock;
  clock = new Date('2026-11-20T00:00:00Z');
  try {
    return await enrollTestAgent(...args);
  } finally {
    clock = at;
  }
}

const wildcardSsh = () =>
  finding({
    collectedAt: '2026-11-22T11:59:00.000Z',
    facts: {
      listeners: [{ protocol: 'tcp', family: 'ipv4', address: '0.0.0.0', port: 22, scope: 'wildcard', uid: 0, inode: 1, process: { pid: 1, name: 'sshd' }, processState: 'resolved' }],
      missingSources: [],
      processScan: { pids: 1, denied: 0, vanished: 0 },
    },
  });

beforeEach(async () => {
  clock = new Date('2026-11-22T12:00:00Z');
  data = await tempDir('admin');
  collector = await start();
  admin = await createAdminToken(collector.store, { name: 'ops', role: 'admin' });
});

afterEach(async () => {
  await collector.close();
  await data.cleanup();
});

describe('admin API authentication and roles', () => {
  it('refuses requests without a valid bearer token', async () => {
    expect((await call('GET', '/v1/admin/agents', undefined)).json.error?.code).toBe('COL_ERR_UNAUTHORIZED');
    expect((await call('GET', '/v1/admin/agents', `vcm_at_${'x'.repeat(43)}`)).status).toBe(401);
    const { token: enrollment } = await createToken(collector.store, { vendor: 'acme' });
    expect((await call('GET', '/v1/admin/agents', enrollment)).status).toBe(401);
  });

  it('says a token given was not accepted, and that one is required only when none was given', async () => {
    const none = await call('GET', '/v1/admin/agents', undefined);
    expect(none.json.error).toEqual({ code: 'COL_ERR_UNAUTHORIZED', message: 'an admin or auditor bearer token is required' });
    for (const wrong of [`vcm_at_${'x'.repeat(43)}`, 'not-a-token']) {
      const res = await call('GET', '/v1/admin/agents', wrong);
      expect(res.status).toBe(401);
      expect(res.json.error).toEqual({ code: 'COL_ERR_UNAUTHORIZED', message: 'the bearer token given was not accepted' });
    }
  });

  it('records when a token was last used, at most once a minute, and shows it with the expiry', async () => {
    const ops = sha256Hex(admin);
    // A use is recorded beside the request, not in it: wait for the marks before reading them.
    const listed = async () => (await settleTokenUses(collector.store), (await call('GET', '/v1/admin/admin-tokens', admin)).json.tokens as { id: string; lastUsedAt: string | null; expiresAt: string | null }[]).find((t) => t.id === ops)!;
    const fresh = await createAdminToken(collector.store, { name: 'unused', role: 'auditor' });
    for (let i = 0; i < 5; i++) expect((await call('GET', '/v1/admin/agents', admin)).status).toBe(200);
    const first = await listed();
    expect(first.lastUsedAt).toBe('2026-11-22T12:00:00.000Z');
    expect(first.expiresAt).toMatch(/^\d{4}-\d\d-\d\dT/);
    const unused = ((await call('GET', '/v1/admin/admin-tokens', admin)).json.tokens as { id: string; lastUsedAt: string | null }[]).find((t) => t.id === sha256Hex(fresh))!;
    expect(unused.lastUsedAt).toBeNull();
    clock = new Date('2026-11-22T12:07:30Z');
    await call('GET', '/v1/admin/agents', admin);
    expect((await listed()).lastUsedAt).toBe('2026-11-22T12:07:00.000Z');
    await settleTokenUses(collector.store);
    const marks: string[] = [];
    for await (const key of collector.store.list(`admin/token-use/${ops}/`)) marks.push(key);
    // Seven requests (and the listings') in two minutes: two marks, not one per request.
    expect(marks).toEqual([`admin/token-use/${ops}/20261122T1200`, `admin/token-use/${ops}/20261122T1207`]);
  });

  it('answers a request even when recording the token\'s use fails', async () => {
    await collector.close();
    const fs = new FsEvidenceStore(data.dir);
    const failing: EvidenceStore = {
      description: 'failing token-use writes',
      putIfAbsent: (key, bytes) => (key.startsWith('admin/token-use/') ? Promise.reject(new Error('disk full')) : fs.putIfAbsent(key, bytes)),
      get: (key) => fs.get(key),
      list: (prefix) => fs.list(prefix),
      ping: () => fs.ping(),
    };
    collector = await startCollector(parseCollectorConfig({ dataDir: data.dir, listen: '127.0.0.1:0' }), { log: pino({ level: 'silent' }), now: () => clock, store: failing });
    for (let i = 0; i < 3; i++) expect((await call('GET', '/v1/admin/agents', admin)).status).toBe(200);
    await settleTokenUses(collector.store);
    const tokens = (await call('GET', '/v1/admin/admin-tokens', admin)).json.tokens as { id: string; lastUsedAt: string | null }[];
    expect(tokens.find((t) => t.id === sha256Hex(admin))?.lastUsedAt).toBeNull();
  });

  it('refuses expired admin tokens', async () => {
    const old = await createAdminToken(collector.store, { name: 'old', role: 'admin', ttlSeconds: 60, now: new Date('2026-11-22T11:00:00Z') });
    expect((await call('GET', '/v1/admin/agents', old)).json.error?.code).toBe('COL_ERR_UNAUTHORIZED');
  });

  it('lets an auditor read only its vendors, and change nothing', async () => {
    await enrollAgent(collector.url, collector.store, 'acme', 'a1');
    const other = await enrollAgent(collector.url, collector.store, 'globex', 'g1');
    const auditor = await createAdminToken(collector.store, { name: 'auditor-acme', role: 'auditor', vendors: ['acme'] });
    const list = await call('GET', '/v1/admin/agents', auditor);
    expect((list.json.agents as { vendor: string }[]).map((a) => a.vendor)).toEqual(['acme']);
    expect((await call('GET', `/v1/admin/agents/${other.agentId}`, auditor)).status).toBe(404);
    expect((await call('POST', `/v1/admin/agents/${other.agentId}/revoke`, auditor, { reason: 'x' })).json.error?.code).toBe('COL_ERR_FORBIDDEN');
    expect((await call('GET', '/v1/admin/tokens', auditor)).json.error?.code).toBe('COL_ERR_FORBIDDEN');
    expect((await call('PUT', '/v1/admin/policy', auditor, {})).json.error?.code).toBe('COL_ERR_FORBIDDEN');
    const all = await call('GET', '/v1/admin/agents', admin);
    expect((all.json.agents as unknown[]).length).toBe(2);
  });
});

describe('policy reads by an auditor (#17, medium 5)', () => {
  it("an auditor of acme reads neither globex's overrides nor its exceptions, in the current policy or any version", async () => {
    const exception = (vendor: string) => ({ id: `EX-${vendor}`, vendor, hosts: '*', check: 'usb_policy', justification: 'a lab that flashes firmware', approver: 'ciso@customer.example', expires: '2027-03-31T00:00:00.000Z' });
    const doc = {
      freshnessSeconds: 7200,
      checks: { usb_policy: { enabled: true, intervalSeconds: 3600, config: {} } },
      vendors: { acme: { freshnessSeconds: 3600, checks: {} }, globex: { freshnessSeconds: 600, checks: {} } },
      exceptions: [exception('acme'), exception('globex')],
    };
    const written = await call('PUT', '/v1/admin/policy', admin, doc);
    expect(written.status).toBe(201);
    const version = (written.json as { version: number }).version;
    const auditor = await createAdminToken(collector.store, { name: 'auditor-acme', role: 'auditor', vendors: ['acme'] });
    for (const path of ['/v1/admin/policy', `/v1/admin/policy/versions/${version}`]) {
      const seen = (await call('GET', path, auditor)).json as { vendors: Record<string, unknown>; exceptions: { vendor: string }[] };
      expect(Object.keys(seen.vendors), path).toEqual(['acme']);
      expect(seen.exceptions.map((e) => e.vendor), path).toEqual(['acme']);
      expect(JSON.stringify(seen), path).not.toContain('globex');
      const full = (await call('GET', path, admin)).json as { vendors: Record<string, unknown> };
      expect(Object.keys(full.vendors).sort(), path).toEqual(['acme', 'globex']);
    }
    // A version number past what is stored: 404 with a stable code, never a 500.
    const huge = await call('GET', '/v1/admin/policy/versions/99999999999999999999999', admin);
    expect([huge.status, huge.json.error?.code]).toEqual([404, 'COL_ERR_NOT_FOUND']);
  });
});

describe('enrollment tokens over the admin API', () => {
  it('creates, lists (by hash only) and revokes tokens; a revoked token cannot enroll', async () => {
    const created = await call('POST', '/v1/admin/tokens', admin, { vendor: 'acme', ttlSeconds: 3600, uses: 2 });
    expect(created.status).toBe(201);
    const token = created.json.token as string;
    expect(created.json.id).toBe(sha256Hex(token));
    const listed = (await call('GET', '/v1/admin/tokens', admin)).json.tokens as { id: string; state: string; uses: number }[];
    expect(listed).toEqual([expect.objectContaining({ id: sha256Hex(token), state: 'usable', uses: 2 })]);
    expect(JSON.stringify(listed)).not.toContain(token);
    const revoked = await call('POST', `/v1/admin/tokens/${sha256Hex(token).slice(0, 10)}/revoke`, admin);
    expect(revoked.json.state).toBe('revoked');
    const k = newKey();
    const res = await fetch(`${collector.url}/v1/enroll`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: enrollBody(k, token) });
    expect(res.status).toBe(401);
  });

  it('refuses a bad vendor name and an unknown token id with stable codes', async () => {
    expect((await call('POST', '/v1/admin/tokens', admin, { vendor: 'Not A Vendor' })).json.error?.code).toBe('COL_ERR_SCHEMA');
    expect((await call('POST', `/v1/admin/tokens/${'0'.repeat(16)}/revoke`, admin)).json.error?.code).toBe('COL_ERR_NOT_FOUND');
  });
});

describe('agent revocation', () => {
  let agent: TestAgent;
  beforeEach(async () => {
    agent = await enrollAgent(collector.url, collector.store, 'acme', 'laptop-7');
  });

  it('takes effect from the chain head: later results are refused, earlier late ones still count, series disappear', async () => {
    const envs = chain(agent, 4);
    await post(envs[0]!);
    await post(envs[2]!); // seq 2 is still in the agent's spool: a gap for now
    expect(sample(await metrics(), 'vcm_agent_info{vendor="acme",host="laptop-7",agent_id="' + agent.agentId + '",os="linux",version="0.1.0"}')).toBe(1);
    const revoked = await call('POST', `/v1/admin/agents/${agent.agentId}/revoke`, admin, { reason: 'laptop stolen' });
    expect(revoked.json.revoked).toMatchObject({ afterSeq: 3, reason: 'laptop stolen' });
    expect((await post(envs[3]!)).json.error?.code).toBe('COL_ERR_REVOKED');
    // Signed before the revocation point, delivered late: accepted.
    expect((await post(envs[1]!)).json.results?.[0]?.outcome).toBe('accepted');
    const m = await metrics();
    expect(m).not.toContain('host="laptop-7"');
    expect(sample(m, 'vcm_ingest_rejected_total{reason="revoked"}')).toBe(1);
  });

  it('survives a restart', async () => {
    await call('POST', `/v1/admin/agents/${agent.agentId}/revoke`, admin, { reason: 'decommissioned' });
    await collector.close();
    collector = await start();
    expect((await post(chain(agent, 1)[0]!)).json.error?.code).toBe('COL_ERR_REVOKED');
    const shown = await call('GET', `/v1/admin/agents/${agent.agentId}`, admin);
    expect(shown.json.revoked).toMatchObject({ reason: 'decommissioned', afterSeq: 0 });
  });
});

describe('policy versions, vendor overrides and exceptions', () => {
  let agent: TestAgent;
  beforeEach(async () => {
    agent = await enrollAgent(collector.url, collector.store, 'acme', 'build-01');
  });

  it('writes each change as a new version, keeps the old ones, and refuses invalid documents', async () => {
    const current = (await call('GET', '/v1/admin/policy', admin)).json;
    expect(current.version).toBe(1);
    const bad = await call('PUT', '/v1/admin/policy', admin, { ...current, checks: { open_ports: { config: { allow: [{ protocol: 'tcp', port: 99999 }] } } } });
    expect(bad.status).toBe(422);
    expect(bad.json.error?.code).toBe('COL_ERR_POLICY_INVALID');
    const next = await call('PUT', '/v1/admin/policy', admin, { ...current, freshnessSeconds: 600 });
    expect(next.json.version).toBe(2);
    expect((await call('GET', '/v1/admin/policy/versions/1', admin)).json.freshnessSeconds).toBe(7200);
    expect((await call('GET', '/v1/admin/policy', admin)).json.freshnessSeconds).toBe(600);
  });

  it('serves each agent its vendor effective policy, and judges with it', async () => {
    const current = (await call('GET', '/v1/admin/policy', admin)).json;
    await call('PUT', '/v1/admin/policy', admin, {
      ...current,
      vendors: { acme: { checks: { open_ports: { config: { allow: [{ protocol: 'tcp', port: 22, process: 'sshd' }] } } } } },
    });
    // Signed by the agent (at the collector's clock): only then is the answer its vendor's.
    const target = `/v1/policy?agent=${agent.agentId}`;
    const authorization = agentAuthorization(agent.agentId, agent.key, 'GET', target, Math.floor(clock.getTime() / 1000));
    const forAgent = (await (await fetch(`${collector.url}${target}`, { headers: { authorization } })).json()) as { version: number; checks: { open_ports: { config: unknown } } };
    expect(forAgent.version).toBe(2);
    expect(forAgent.checks.open_ports.config).toEqual({ allow: [{ protocol: 'tcp', port: 22, process: 'sshd' }] });
    const defaults = (await (await fetch(`${collector.url}/v1/policy`)).json()) as { checks: { open_ports: { config: unknown } } };
    expect(defaults.checks.open_ports.config).toEqual({});
    await post(chain(agent, 1, wildcardSsh)[0]!);
    expect(sample(await metrics(), `vcm_control_state{vendor="acme",host="build-01",agent_id="${agent.agentId}",control="open_ports",state="pass"}`)).toBe(1);
  });

  it('waives a failure under an unexpired exception, and shows it failing again once it expires', async () => {
    const current = (await call('GET', '/v1/admin/policy', admin)).json;
    const put = await call('PUT', '/v1/admin/policy', admin, {
      ...current,
      exceptions: [
        { id: 'EX-1', vendor: 'acme', hosts: 'build-*', check: 'open_ports', justification: 'build agents expose ssh for CI until the bastion lands', approver: 'ciso@example.com', expires: '2026-11-22T13:00:00.000Z' },
      ],
    });
    expect(put.status).toBe(201);
    await post(chain(agent, 1, wildcardSsh)[0]!);
    expect(sample(await metrics(), `vcm_control_state{vendor="acme",host="build-01",agent_id="${agent.agentId}",control="open_ports",state="waived"}`)).toBe(1);
    clock = new Date('2026-11-22T13:00:01Z');
    const after = await metrics();
    expect(sample(after, `vcm_control_state{vendor="acme",host="build-01",agent_id="${agent.agentId}",control="open_ports",state="fail"}`)).toBe(1);
    expect(sample(after, 'vcm_control_hosts{vendor="acme",control="open_ports",state="waived"}')).toBe(0);
  });

  it('refuses an exception without a real justification', async () => {
    const current = (await call('GET', '/v1/admin/policy', admin)).json;
    const res = await call('PUT', '/v1/admin/policy', admin, {
      ...current,
      exceptions: [{ id: 'EX-2', vendor: 'acme', check: 'vpn', justification: 'ok', approver: 'x', expires: '2027-01-01T00:00:00.000Z' }],
    });
    expect(res.json.error?.code).toBe('COL_ERR_POLICY_INVALID');
  });
});

describe('per-agent rate limit', () => {
  it('answers 429 with Retry-After past the burst, and stops a batch there without rejecting its lines', async () => {
    await collector.close();
    collector = await start({ rateLimit: { perSecond: 0.001, burst: 3 } });
    const agent = await enrollAgent(collector.url, collector.store);
    const envs = chain(agent, 5);
    for (const e of envs.slice(0, 3)) expect((await post(e)).status).toBe(200);
    const limited = await post(envs[3]!);
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('1');
    expect(limited.json.error?.code).toBe('COL_ERR_RATE_LIMITED');
    const batch = await post(Buffer.concat([envs[3]!, Buffer.from('\n'), envs[4]!]), 'application/x-ndjson');
    expect(batch.status).toBe(429);
    // Another agent has its own allowance.
    const other = await enrollAgent(collector.url, collector.store, 'acme', 'host-2');
    expect((await post(resultEnvelope(other, 1, null))).status).toBe(200);
  });
  it('spends a batch\'s allowance in the batch\'s order: the lines stored are the first ones, with no gap', async () => {
    await collector.close();
    collector = await start({ rateLimit: { perSecond: 0.001, burst: 4 } });
    const agent = await enrollAgent(collector.url, collector.store);
    const envs = chain(agent, 12);
    // Signatures are checked in parallel; the allowance must still go to lines 1–4, whatever order they verify in.
    const res = await post(Buffer.concat(envs.flatMap((e) => [e, Buffer.from('\n')])), 'application/x-ndjson');
    expect(res.status).toBe(429);
    const keys: string[] = [];
    for await (const k of collector.store.list('evidence/')) keys.push(k);
    expect(keys.map((k) => Number(/\/(\d{12})-/.exec(k)![1])).sort((a, b) => a - b)).toEqual([1, 2, 3, 4]);
  });
});

describe('admin and auditor tokens can be listed and revoked (#17, medium 10)', () => {
  it('lists tokens by hash, revokes one over the API (refused at once), and expires new ones after 90 days by default', async () => {
    const auditor = await createAdminToken(collector.store, { name: 'auditor-acme', role: 'auditor', vendors: ['acme'] });
    expect((await call('GET', '/v1/admin/agents', auditor)).status).toBe(200);
    const listed = (await call('GET', '/v1/admin/admin-tokens', admin)).json as { tokens: { id: string; name: string; state: string; expiresAt: string | null }[] };
    const mine = listed.tokens.find((t) => t.name === 'auditor-acme')!;
    expect(mine.id).toBe(sha256Hex(auditor));
    expect(JSON.stringify(listed)).not.toContain(auditor);
    // 90 days from the real clock: the default expiry.
    expect(Date.parse(mine.expiresAt!) - Date.now()).toBeGreaterThan(89 * 86_400_000);
    expect((await call('GET', '/v1/admin/admin-tokens', auditor)).json.error?.code).toBe('COL_ERR_FORBIDDEN');
    const revoked = await call('POST', `/v1/admin/admin-tokens/${mine.id.slice(0, 10)}/revoke`, admin);
    expect((revoked.json as { state: string }).state).toBe('revoked');
    expect((await call('GET', '/v1/admin/agents', auditor)).json.error?.code).toBe('COL_ERR_UNAUTHORIZED');
    const after = (await call('GET', '/v1/admin/admin-tokens', admin)).json as { tokens: { id: string; state: string }[] };
    expect(after.tokens.find((t) => t.id === mine.id)?.state).toBe('revoked');
    // An id shorter than the 8-character minimum prefix is a usage error, not a missing token.
    expect((await call('POST', '/v1/admin/admin-tokens/zz/revoke', admin)).json.error?.code).toBe('COL_ERR_USAGE');
    expect((await call('POST', '/v1/admin/tokens/abc/revoke', admin)).json.error?.code).toBe('COL_ERR_USAGE');
  });

  it('the CLI lists and revokes on the store; --ttl none makes a token that never expires', async () => {
    const { COLLECTOR_CLI, runCli } = await import('../helpers/processes.js');
    const created = await runCli(COLLECTOR_CLI, ['admin-token', 'create', '--role', 'admin', '--name', 'forever', '--ttl', 'none', '--data-dir', data.dir]);
    expect(created.code, created.stderr).toBe(0);
    const list = await runCli(COLLECTOR_CLI, ['admin-token', 'list', '--format', 'json', '--data-dir', data.dir]);
    const tokens = JSON.parse(list.stdout) as { id: string; name: string; expiresAt: string | null }[];
    const forever = tokens.find((t) => t.name === 'forever')!;
    expect(forever.expiresAt).toBeNull();
    const revoke = await runCli(COLLECTOR_CLI, ['admin-token', 'revoke', forever.id.slice(0, 12), '--data-dir', data.dir]);
    expect(revoke.code, revoke.stderr).toBe(0);
    expect((await call('GET', '/v1/admin/agents', created.stdout.trim())).json.error?.code).toBe('COL_ERR_UNAUTHORIZED');
  });
});
