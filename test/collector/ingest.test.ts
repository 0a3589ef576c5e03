// The collector in-process (startCollector on 127.0.0.1), driven over real HTTP by test agents.
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../collector/contract.js';
import { parseCollectorConfig, startCollector, type RunningCollector } from '../../collector/server.js';
import { createToken } from '../../collector/tokens.js';
import { chain, dateFixturesAt, dropEnvelope, enrollBody, enrollTestAgent, finding, newKey, resultEnvelope, type TestAgent } from '../helpers/agents.js';
import { sample, tempDir } from '../helpers/processes.js';

let data: Awaited<ReturnType<typeof tempDir>>;
let collector: RunningCollector;
let clock = new Date('2026-11-22T12:00:00Z');
// Results at 10:00 on the 22nd unless a test says otherwise; agents enroll on the 20th.
dateFixturesAt('2026-11-22T10:00:00.000Z');

async function start(): Promise<RunningCollector> {
  return startCollector(parseCollectorConfig({ dataDir: data.dir, listen: '127.0.0.1:0' }), { log: pino({ level: 'silent' }), now: () => clock });
}

async function post(body: Buffer, contentType = 'application/json') {
  const res = await fetch(`${collector.url}/v1/results`, { method: 'POST', headers: { 'content-type': contentType }, body });
  return { status: res.status, json: (await res.json()) as { error?: { code: string }; results?: { outcome: string; seq: number | null; error?: { code: string } }[] } };
}

async function metric(series: string): Promise<number | undefined> {
  return sample(await (await fetch(`${collector.url}/metrics`)).text(), series);
}

async function evidenceCount(): Promise<number> {
  let n = 0;
  for await (const _ of collector.store.list('evidence/')) n++;
  return n;
}

beforeEach(async () => {
  clock = new Date('2026-11-22T12:00:00Z');
  data = await tempDir('ingest');
  collector = await start();
});

afterEach(async () => {
  await collector.close();
  await data.cleanup();
});

describe('POST /v1/results', () => {
  let agent: TestAgent;
  beforeEach(async () => {
    clock = new Date('2026-11-20T00:00:00Z');
    agent = await enrollTestAgent(collector.url, collector.store);
    clock = new Date('2026-11-22T12:00:00Z');
  });

  it('accepts a chain in order and stores each envelope once under its hash', async () => {
    const envs = chain(agent, 3);
    for (const [i, e] of envs.entries()) {
      const res = await post(e);
      expect(res.status).toBe(200);
      // The receipt: the vendor's log holds the enrollment (0) and the policy version in force (1) first.
      expect(res.json.results).toEqual([{ seq: i + 1, outcome: 'accepted', key: expect.stringContaining(sha256Hex(e)), logIndex: i + 2 }]);
    }
    expect(await evidenceCount()).toBe(3);
    expect(await metric('vcm_ingest_envelopes_total{outcome="accepted"}')).toBe(3);
  });

  it('acknowledges a resent envelope as a duplicate and stores it once', async () => {
    const [e1] = chain(agent, 1);
    await post(e1!);
    const again = await post(e1!);
    expect(again.json.results?.[0]?.outcome).toBe('duplicate');
    expect(await evidenceCount()).toBe(1);
  });

  it('rejects the same sequence number with other bytes as a replay, and keeps the first', async () => {
    const [e1] = chain(agent, 1);
    await post(e1!);
    const forged = resultEnvelope(agent, 1, null, finding({ status: 'fail' }));
    const res = await post(forged);
    expect(res.status).toBe(409);
    expect(res.json.error?.code).toBe('COL_ERR_REPLAY');
    expect(await metric('vcm_ingest_rejected_total{reason="replay"}')).toBe(1);
    expect(await evidenceCount()).toBe(1);
  });

  it('rejects a result whose previous hash does not match the stored chain', async () => {
    const [e1] = chain(agent, 1);
    await post(e1!);
    const res = await post(resultEnvelope(agent, 2, 'f'.repeat(64)));
    expect(res.json.error?.code).toBe('COL_ERR_CHAIN_BROKEN');
    expect(await evidenceCount()).toBe(1);
  });

  it('accepts a gap, records it, and accepts the late result that fills it', async () => {
    const envs = chain(agent, 3);
    await post(envs[0]!);
    expect((await post(envs[2]!)).json.results?.[0]?.outcome).toBe('accepted');
    expect(await metric('vcm_evidence_chain_gaps_total{vendor="acme"}')).toBe(1);
    // The host's own hole, until the late result fills it (absent: a chain without holes).
    const missing = `vcm_agent_chain_missing_results{vendor="acme",host="host-1",agent_id="${agent.agentId}"}`;
    expect(await metric(missing)).toBe(1);
    // A restart rebuilds it from the store.
    await collector.close();
    collector = await start();
    expect(await metric(missing)).toBe(1);
    expect((await post(envs[1]!)).json.results?.[0]?.outcome).toBe('accepted');
    expect(await evidenceCount()).toBe(3);
    expect(await metric(missing)).toBeUndefined();
  });

  it('stores a signed spool-drop record, counts the dropped results, and sees the gap it explains', async () => {
    const envs = chain(agent, 3);
    await post(envs[0]!);
    // Results 2 and 3 were dropped from the agent's full spool; record 4 says so.
    const drop = dropEnvelope(agent, 4, sha256Hex(envs[2]!), 2, 3);
    expect((await post(drop)).json.results?.[0]?.outcome).toBe('accepted');
    expect(await metric('vcm_agent_spool_dropped_total{vendor="acme"}')).toBe(2);
    expect(await metric('vcm_evidence_chain_gaps_total{vendor="acme"}')).toBe(1);
    expect(await evidenceCount()).toBe(2);
  });

  it('refuses results from the future beyond the clock skew, and accepts late ones', async () => {
    const future = resultEnvelope(agent, 1, null, finding({ collectedAt: '2026-11-22T12:10:00.000Z' }));
    expect((await post(future)).json.error?.code).toBe('COL_ERR_FUTURE');
    const late = resultEnvelope(agent, 1, null, finding({ collectedAt: '2026-11-20T08:00:00.000Z' }));
    expect((await post(late)).status).toBe(200);
  });

  it('refuses an unknown agent, and a key that is not the registered one', async () => {
    const stranger = { ...newKey(), hostname: 'x' };
    expect((await post(chain(stranger, 1)[0]!)).json.error?.code).toBe('COL_ERR_UNKNOWN_AGENT');
    // Signed by another key, but claiming the enrolled agent's id.
    const impostor = { ...stranger, agentId: agent.agentId };
    expect((await post(chain(impostor, 1)[0]!)).json.error?.code).toBe('COL_ERR_BAD_SIGNATURE');
    expect(await evidenceCount()).toBe(0);
  });

  it('refuses malformed, oversized and wrongly typed bodies with stable codes', async () => {
    expect((await post(Buffer.from('{"payloadType":'))).json.error?.code).toBe('COL_ERR_MALFORMED');
    expect((await post(Buffer.from('[]'))).json.error?.code).toBe('COL_ERR_MALFORMED');
    const big = await post(Buffer.alloc(2 * 1024 * 1024, 0x20));
    expect(big.status).toBe(413);
    expect(big.json.error?.code).toBe('COL_ERR_TOO_LARGE');
    const wrongType = await post(chain(agent, 1)[0]!, 'text/plain');
    expect(wrongType.status).toBe(415);
    expect(await metric('vcm_ingest_rejected_total{reason="too_large"}')).toBe(1);
    expect(await evidenceCount()).toBe(0);
  });

  it('refuses facts that do not match the check schema', async () => {
    const bad = resultEnvelope(agent, 1, null, finding({ facts: { listeners: 'none' } }));
    const res = await post(bad);
    expect(res.status).toBe(200);
    // Well-formed statement, but the facts are judged unknown rather than trusted.
    expect(res.json.results?.[0]?.outcome).toBe('accepted');
    const m = await (await fetch(`${collector.url}/metrics`)).text();
    expect(sample(m, `vcm_control_state{vendor="acme",host="host-1",agent_id="${agent.agentId}",control="open_ports",state="unknown"}`)).toBe(1);
  });

  it('takes a batch as NDJSON, in order, answering per line', async () => {
    const envs = chain(agent, 3);
    const batch = Buffer.concat([envs[0]!, Buffer.from('\n'), Buffer.from('{"nope":1}\n'), envs[1]!, Buffer.from('\n'), envs[2]!, Buffer.from('\n')]);
    const res = await post(batch, 'application/x-ndjson');
    expect(res.status).toBe(200);
    expect(res.json.results?.map((r) => r.outcome)).toEqual(['accepted', 'rejected', 'accepted', 'accepted']);
    expect(res.json.results?.[1]?.error?.code).toBe('COL_ERR_MALFORMED');
    expect(await evidenceCount()).toBe(3);
  });

  it('judges the facts under the collector policy and shows stale once the freshness window passes', async () => {
    const envs = chain(agent, 2, (seq) =>
      seq === 1
        ? finding({ check: 'open_ports', status: 'pass', facts: { listeners: [{ protocol: 'tcp', family: 'ipv4', address: '0.0.0.0', port: 22, scope: 'wildcard', uid: 0, inode: 1, process: null, processState: 'not_found' }], missingSources: [], processScan: { pids: 1, denied: 0, vanished: 0 } } })
        : finding({ check: 'disk_encryption', collectedAt: '2026-11-22T11:59:00.000Z', facts: null, status: 'unknown', reasons: [{ code: 'CHK_ERR_PERMISSION', message: 'denied' }] }),
    );
    for (const e of envs) expect((await post(e)).status).toBe(200);
    const m = await (await fetch(`${collector.url}/metrics`)).text();
    // The agent said pass; the default policy allows no wildcard listener, so the verdict is fail.
    expect(sample(m, `vcm_control_state{vendor="acme",host="host-1",agent_id="${agent.agentId}",control="open_ports",state="fail"}`)).toBe(1);
    expect(sample(m, `vcm_control_state{vendor="acme",host="host-1",agent_id="${agent.agentId}",control="disk_encryption",state="unknown"}`)).toBe(1);
    clock = new Date('2026-11-22T16:00:00Z');
    const later = await (await fetch(`${collector.url}/metrics`)).text();
    expect(sample(later, `vcm_control_state{vendor="acme",host="host-1",agent_id="${agent.agentId}",control="open_ports",state="stale"}`)).toBe(1);
    expect(sample(later, 'vcm_control_hosts{vendor="acme",control="open_ports",state="stale"}')).toBe(1);
    expect(sample(later, 'vcm_control_hosts{vendor="acme",control="open_ports",state="fail"}')).toBe(0);
  });

  it('shows since when a control has failed without a break, from the evidence, and again after a restart', async () => {
    const wildcard = { listeners: [{ protocol: 'tcp', family: 'ipv4', address: '0.0.0.0', port: 22, scope: 'wildcard', uid: 0, inode: 1, process: null, processState: 'not_found' }], missingSources: [], processScan: { pids: 1, denied: 0, vanished: 0 } };
    const clean = finding().facts;
    // pass at 10:00, fail at 10:15 and 10:30 (the run), pass at 10:45, fail at 11:00 and 11:15.
    const times = ['10:00', '10:15', '10:30', '10:45', '11:00', '11:15'];
    const failing = [false, true, true, false, true, true];
    const envs = chain(agent, 6, (seq) => finding({ facts: failing[seq - 1] ? wildcard : clean, collectedAt: `2026-11-22T${times[seq - 1]}:00.000Z` }));
    const since = `vcm_control_failing_since_timestamp_seconds{vendor="acme",host="host-1",agent_id="${agent.agentId}",control="open_ports"}`;
    const scrape = async () => sample(await (await fetch(`${collector.url}/metrics`)).text(), since);
    for (const e of envs.slice(0, 3)) await post(e);
    expect(await scrape()).toBe(Date.parse('2026-11-22T10:15:00Z') / 1000);
    await post(envs[3]!);
    expect(await scrape()).toBeUndefined(); // passing: no line
    for (const e of envs.slice(4)) await post(e);
    // The run that began after the pass: 11:00, not 10:15.
    expect(await scrape()).toBe(Date.parse('2026-11-22T11:00:00Z') / 1000);
    await collector.close();
    collector = await start();
    expect(await scrape()).toBe(Date.parse('2026-11-22T11:00:00Z') / 1000);
    // Stale is not failing now: no line.
    clock = new Date('2026-11-22T16:00:00Z');
    expect(await scrape()).toBeUndefined();
  });

  it('rebuilds chain heads and verdicts from the store after a restart', async () => {
    const envs = chain(agent, 3);
    await post(envs[0]!);
    await post(envs[1]!);
    await collector.close();
    collector = await start();
    expect((await post(envs[1]!)).json.results?.[0]?.outcome).toBe('duplicate');
    expect((await post(resultEnvelope(agent, 2, null))).json.error?.code).toBe('COL_ERR_REPLAY');
    expect((await post(envs[2]!)).json.results?.[0]?.outcome).toBe('accepted');
    expect(await metric(`vcm_control_state{vendor="acme",host="host-1",agent_id="${agent.agentId}",control="open_ports",state="pass"}`)).toBe(1);
  });
});

describe('POST /v1/enroll', () => {
  async function enroll(body: Buffer, token: string) {
    const res = await fetch(`${collector.url}/v1/enroll`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body,
    });
    return { status: res.status, json: (await res.json()) as { agentId?: string; vendor?: string; error?: { code: string } } };
  }

  it('registers the key under its fingerprint and scopes it to the token vendor', async () => {
    const { token } = await createToken(collector.store, { vendor: 'globex' });
    const k = newKey();
    const res = await enroll(enrollBody(k, token), token);
    expect(res.status).toBe(201);
    expect(res.json).toMatchObject({ agentId: k.agentId, vendor: 'globex' });
    expect(await readdir(path.join(data.dir, 'keys'))).toEqual([`${k.agentId}.json`]);
  });

  it('refuses a token used twice, an expired token and a made-up token', async () => {
    const { token } = await createToken(collector.store, { vendor: 'acme' });
    expect((await enroll(enrollBody(newKey(), token), token)).status).toBe(201);
    expect((await enroll(enrollBody(newKey(), token), token)).json.error?.code).toBe('COL_ERR_TOKEN_INVALID');
    const { token: old } = await createToken(collector.store, { vendor: 'acme', ttlSeconds: 60, now: new Date('2026-11-22T11:00:00Z') });
    expect((await enroll(enrollBody(newKey(), old), old)).json.error?.code).toBe('COL_ERR_TOKEN_INVALID');
    const fake = `vcm_et_${'A'.repeat(43)}`;
    expect((await enroll(enrollBody(newKey(), fake), fake)).json.error?.code).toBe('COL_ERR_TOKEN_INVALID');
  });

  it('lets exactly one of many racing enrollments use a single-use token', async () => {
    const { token } = await createToken(collector.store, { vendor: 'acme' });
    const results = await Promise.all(Array.from({ length: 8 }, () => enroll(enrollBody(newKey(), token), token)));
    expect(results.filter((r) => r.status === 201)).toHaveLength(1);
    expect(results.filter((r) => r.json.error?.code === 'COL_ERR_TOKEN_INVALID')).toHaveLength(7);
  });

  it('honours tokens created for several uses', async () => {
    const { token } = await createToken(collector.store, { vendor: 'acme', uses: 2 });
    expect((await enroll(enrollBody(newKey(), token), token)).status).toBe(201);
    expect((await enroll(enrollBody(newKey(), token), token)).status).toBe(201);
    expect((await enroll(enrollBody(newKey(), token), token)).status).toBe(401);
  });

  it('requires proof of possession made for this token, without spending the token on a bad proof', async () => {
    const { token } = await createToken(collector.store, { vendor: 'acme' });
    const k = newKey();
    // Signed by a different key than the one registered.
    const other = newKey();
    const forged = enrollBody({ ...other, publicKeyPem: k.publicKeyPem, agentId: k.agentId }, token);
    expect((await enroll(forged, token)).json.error?.code).toBe('COL_ERR_BAD_SIGNATURE');
    // A proof made for another token.
    expect((await enroll(enrollBody(k, `vcm_et_${'B'.repeat(43)}`), token)).json.error?.code).toBe('COL_ERR_BAD_SIGNATURE');
    expect((await enroll(enrollBody(k, token), token)).status).toBe(201);
    // The same key again.
    const { token: t2 } = await createToken(collector.store, { vendor: 'acme' });
    expect((await enroll(enrollBody(k, t2), t2)).json.error?.code).toBe('COL_ERR_AGENT_EXISTS');
  });
});

describe('serving', () => {
  it('answers unknown paths and methods with stable codes', async () => {
    const notFound = await fetch(`${collector.url}/nope`);
    expect(notFound.status).toBe(404);
    expect(((await notFound.json()) as { error: { code: string } }).error.code).toBe('COL_ERR_NOT_FOUND');
    const method = await fetch(`${collector.url}/v1/results`);
    expect(method.status).toBe(405);
  });

  it('serves the current policy to agents', async () => {
    const res = await fetch(`${collector.url}/v1/policy`);
    const policy = (await res.json()) as { version: number; checks: Record<string, { enabled: boolean }> };
    expect(policy.version).toBe(1);
    expect(policy.checks.open_ports?.enabled).toBe(true);
  });

  it('refuses plain HTTP beyond loopback unless the operator allows it', () => {
    expect(() => parseCollectorConfig({ dataDir: data.dir, listen: '0.0.0.0:8470' })).toThrow(/COL_ERR_CONFIG|refusing plain HTTP/);
    expect(parseCollectorConfig({ dataDir: data.dir, listen: '0.0.0.0:8470', allowPlainHttp: true }).listen).toEqual({ host: '0.0.0.0', port: 8470 });
    expect(parseCollectorConfig({ dataDir: data.dir, listen: '[::1]:9' }).listen).toEqual({ host: '::1', port: 9 });
    expect(() => parseCollectorConfig({ dataDir: data.dir, listen: 'nonsense' })).toThrow();
  });
});
