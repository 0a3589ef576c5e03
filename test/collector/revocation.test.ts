// A stolen key against the chain (#17, high 3 and medium 7, 9): sequence numbers cannot jump out
// of reach, revocation keeps only what stored evidence already commits to, and a gap is filled
// only by the envelope its stored successor names. The collector runs in-process on 127.0.0.1.
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createAdminToken } from '../../collector/admin.js';
import { MAX_SEQ, sha256Hex } from '../../collector/contract.js';
import { MAX_SEQ_JUMP } from '../../collector/ingest.js';
import { parseCollectorConfig, startCollector, type RunningCollector } from '../../collector/server.js';
import { chain, enrollTestAgent, finding, resultEnvelope, type TestAgent } from '../helpers/agents.js';
import { sample, tempDir } from '../helpers/processes.js';

let data: Awaited<ReturnType<typeof tempDir>>;
let collector: RunningCollector;
let agent: TestAgent;
let adminToken: string;

async function post(body: Buffer): Promise<{ outcome: string; code?: string }> {
  const res = await fetch(`${collector.url}/v1/results`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  const json = (await res.json()) as { error?: { code: string }; results?: { outcome: string }[] };
  return json.error !== undefined ? { outcome: 'rejected', code: json.error.code } : { outcome: json.results![0]!.outcome };
}

async function revoke(): Promise<{ revoked: { afterSeq: number } }> {
  const res = await fetch(`${collector.url}/v1/admin/agents/${agent.agentId}/revoke`, {
    method: 'POST',
    headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ reason: 'key reported stolen' }),
  });
  expect(res.status).toBe(200);
  return (await res.json()) as { revoked: { afterSeq: number } };
}

/** An envelope at `seq` after `prevBytes`, as whoever holds the key can sign it. */
function signedAt(seq: number, prevBytes: Buffer | null, status: 'pass' | 'fail' = 'pass'): Buffer {
  return resultEnvelope(agent, seq, prevBytes === null ? null : sha256Hex(prevBytes), finding({ status }));
}

async function metric(series: string): Promise<number | undefined> {
  return sample(await (await fetch(`${collector.url}/metrics`)).text(), series);
}

beforeEach(async () => {
  data = await tempDir('revocation');
  collector = await startCollector(parseCollectorConfig({ dataDir: data.dir, listen: '127.0.0.1:0' }), { log: pino({ level: 'silent' }) });
  agent = await enrollTestAgent(collector.url, collector.store);
  adminToken = await createAdminToken(collector.store, { name: 'revocation test', role: 'admin' });
});

afterEach(async () => {
  await collector.close();
  await data.cleanup();
});

describe('a stolen key', () => {
  it('cannot push the chain head out of reach: 2^53−1 and anything past the 12-digit layout are refused, and so is a jump of more than MAX_SEQ_JUMP', async () => {
    const [e1] = chain(agent, 1);
    expect(await post(e1!)).toEqual({ outcome: 'accepted' });
    expect(await post(signedAt(Number.MAX_SAFE_INTEGER, e1!))).toEqual({ outcome: 'rejected', code: 'COL_ERR_SCHEMA' });
    expect(await post(signedAt(MAX_SEQ + 1, e1!))).toEqual({ outcome: 'rejected', code: 'COL_ERR_SCHEMA' });
    expect(await post(signedAt(1 + MAX_SEQ_JUMP + 1, e1!))).toEqual({ outcome: 'rejected', code: 'COL_ERR_SEQ_JUMP' });
    expect(await metric('vcm_ingest_rejected_total{reason="seq_jump"}')).toBe(1);
    // A gap within the bound is what a full spool leaves: accepted, and counted as a gap.
    expect(await post(signedAt(1 + MAX_SEQ_JUMP, e1!))).toEqual({ outcome: 'accepted' });
    expect(await metric('vcm_evidence_chain_gaps_total{vendor="acme"}')).toBe(1);
  });

  it('after revocation, nothing new is taken, whatever its seq; only what stored evidence commits to', async () => {
    const envs = chain(agent, 5);
    for (const i of [0, 1, 3, 4]) expect(await post(envs[i]!)).toEqual({ outcome: 'accepted' });
    // The thief's envelope from before the revocation, just past the head.
    const t6 = signedAt(6, envs[4]!);
    expect(await post(t6)).toEqual({ outcome: 'accepted' });
    expect((await revoke()).revoked.afterSeq).toBe(6);
    // Three results after the revocation, each chained to the one before.
    const t7 = signedAt(7, t6);
    const t8 = signedAt(8, t7);
    for (const e of [t7, t8, signedAt(9, t8)]) expect(await post(e)).toEqual({ outcome: 'rejected', code: 'COL_ERR_REVOKED' });
    expect(await metric('vcm_ingest_rejected_total{reason="revoked"}')).toBe(3);
    // A made-up seq 3 under the revocation point: stored seq 4 commits to another envelope.
    expect(await post(signedAt(3, envs[1]!, 'fail'))).toEqual({ outcome: 'rejected', code: 'COL_ERR_CHAIN_BROKEN' });
    // The real seq 3, signed before the revocation and delivered late, is what seq 4 names.
    expect(await post(envs[2]!)).toEqual({ outcome: 'accepted' });
    expect(await post(envs[4]!)).toEqual({ outcome: 'duplicate' });
  });

  it('a head pushed ahead before the revocation does not open the seqs under it', async () => {
    const [e1] = chain(agent, 1);
    expect(await post(e1!)).toEqual({ outcome: 'accepted' });
    const far = 1 + MAX_SEQ_JUMP;
    expect(await post(signedAt(far, e1!))).toEqual({ outcome: 'accepted' });
    expect((await revoke()).revoked.afterSeq).toBe(far);
    // The revocation point is far ahead; the seqs under it are still closed to new results.
    for (const e of [signedAt(2, e1!), signedAt(3, null), signedAt(1000, null)]) expect(await post(e)).toEqual({ outcome: 'rejected', code: 'COL_ERR_REVOKED' });
  });
});

describe('filling a gap', () => {
  it('takes only the envelope the stored next one commits to; the real one delivered late is not a replay', async () => {
    const envs = chain(agent, 3);
    expect(await post(envs[0]!)).toEqual({ outcome: 'accepted' });
    expect(await post(envs[2]!)).toEqual({ outcome: 'accepted' });
    const forged = signedAt(2, envs[0]!, 'fail');
    expect(await post(forged)).toEqual({ outcome: 'rejected', code: 'COL_ERR_CHAIN_BROKEN' });
    expect(await post(envs[1]!)).toEqual({ outcome: 'accepted' });
  });

  it('in one batch, the next envelope of the same batch counts as stored', async () => {
    const envs = chain(agent, 3);
    expect(await post(envs[0]!)).toEqual({ outcome: 'accepted' });
    const forged = signedAt(2, envs[0]!, 'fail');
    const res = await fetch(`${collector.url}/v1/results`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-ndjson' },
      body: Buffer.concat([envs[2]!, Buffer.from('\n'), forged, Buffer.from('\n'), envs[1]!]),
    });
    const json = (await res.json()) as { results: { outcome: string; error?: { code: string } }[] };
    expect(json.results.map((r) => r.error?.code ?? r.outcome)).toEqual(['accepted', 'COL_ERR_CHAIN_BROKEN', 'accepted']);
  });
});
