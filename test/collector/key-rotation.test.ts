// Key rotation against a real collector process over HTTP: the new key is introduced by a request
// signed with the current one, results verify by sequence number against the stored key history
// (checked here with node:crypto from the files on disk), refusals store nothing and are counted,
// and a restart rebuilds the history from the store.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdminToken } from '../../collector/admin.js';
import { FsEvidenceStore } from '../../collector/store.js';
import { createToken } from '../../collector/tokens.js';
import { enrollBody, enrollTestAgent, finding, newKey, resultEnvelope, rotationBody, type TestAgent, type TestKey } from '../helpers/agents.js';
import { INGEST_COUNTERS, auditChain, counterDeltas, counters, expectAccepted, listTree, postRaw, type RawAnswer } from '../helpers/collector-probe.js';
import { COLLECTOR_CLI, runCli, startCollectorProcess, tempDir, type CollectorProcess } from '../helpers/processes.js';

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
const recent = () => new Date(Date.now() - 60_000).toISOString();
const FAMILIES = [...INGEST_COUNTERS, 'vcm_key_rotations_total'];

let data: Awaited<ReturnType<typeof tempDir>>;
let collector: CollectorProcess;
let store: FsEvidenceStore;
let adminToken: string;
/** Rotated twice in these tests: A's keys by generation. */
let A: TestAgent;
const keysOfA: TestKey[] = [];
/** Another agent: its key must not be reusable. */
let B: TestAgent;
/** Revoked before it tries to rotate. */
let R: TestAgent;
/** A's envelopes by seq, as signed. */
const sent = new Map<number, Buffer>();
let rotation1: Buffer;
let rotation2: Buffer;

/** A's result `seq`, chained to what A signed before it, signed by `key`. */
function signA(seq: number, key: TestKey): Buffer {
  const bytes = resultEnvelope({ ...A, key: key.key }, seq, seq === 1 ? null : sha256(sent.get(seq - 1)!), finding({ collectedAt: recent() }));
  return bytes;
}

const rotate = (body: Buffer) => postRaw(collector.url, '/v1/keys/rotate', body);
const results = (body: Buffer) => postRaw(collector.url, '/v1/results', body);

async function admin(method: string, pathname: string, body?: unknown): Promise<{ status: number; json: unknown }> {
  const res = await fetch(new URL(pathname, collector.url), {
    method,
    headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, json: await res.json() };
}

/** Sends `attempt`; it must be refused with `code`, counted once under `counted`, and store nothing. */
async function refused(attempt: () => Promise<RawAnswer>, status: number, code: string, counted: Record<string, number>): Promise<void> {
  const files = await listTree(data.dir, collector.url);
  const before = await counters(collector.url, FAMILIES);
  const res = await attempt();
  expect(res.status, res.body.toString()).toBe(status);
  expect(res.json).toEqual({ error: { code, message: expect.any(String) } });
  expect(counterDeltas(before, await counters(collector.url, FAMILIES))).toEqual(counted);
  expect(await listTree(data.dir, collector.url)).toEqual(files);
}

const rotationRefused = (reason: string) => ({ [`vcm_key_rotations_total{outcome="${reason}"}`]: 1 });
const ingestRefused = (reason: string) => ({ 'vcm_ingest_envelopes_total{outcome="rejected"}': 1, [`vcm_ingest_rejected_total{reason="${reason}"}`]: 1 });

beforeAll(async () => {
  data = await tempDir('rotate');
  collector = await startCollectorProcess(data.dir);
  store = new FsEvidenceStore(data.dir);
  adminToken = await createAdminToken(store, { name: 'key-rotation', role: 'admin' });
  A = await enrollTestAgent(collector.url, store, 'acme', 'host-a');
  B = await enrollTestAgent(collector.url, store, 'acme', 'host-b');
  R = await enrollTestAgent(collector.url, store, 'acme', 'host-r');
  keysOfA.push({ key: A.key, publicKeyPem: A.publicKeyPem, agentId: A.agentId }, newKey(), newKey());
  for (let seq = 1; seq <= 4; seq++) sent.set(seq, signA(seq, keysOfA[0]!));
  // Seq 4 stays "in the agent's spool" until after the rotation: late delivery.
  for (let seq = 1; seq <= 3; seq++) await expectAccepted(collector.url, sent.get(seq)!);
  await expectAccepted(collector.url, resultEnvelope(R, 1, null, finding({ collectedAt: recent() })));
  expect((await admin('POST', `/v1/admin/agents/${R.agentId}/revoke`, { reason: 'key rotation test' })).status).toBe(200);
});

afterAll(async () => {
  await collector?.stop();
  await data?.cleanup();
});

describe('key rotation over HTTP against a collector process', () => {
  describe('refusals, each storing nothing', () => {
    const [k0, k1] = [() => keysOfA[0]!, () => keysOfA[1]!];
    const cases: { name: string; body: () => Buffer; status: number; code: string; reason: string }[] = [
      { name: 'a bad proof of possession (the new key did not sign)', body: () => rotationBody(A, k0(), k1(), { generation: 1, afterSeq: 4, proofBy: newKey().key }), status: 401, code: 'COL_ERR_BAD_KEY_PROOF', reason: 'bad_key_proof' },
      { name: 'a wrong old signature (not the current key)', body: () => rotationBody(A, k0(), k1(), { generation: 1, afterSeq: 4, signedBy: newKey().key }), status: 401, code: 'COL_ERR_BAD_SIGNATURE', reason: 'bad_signature' },
      { name: 'by a revoked agent, with its own key', body: () => rotationBody(R, R, newKey(), { generation: 1, afterSeq: 1 }), status: 403, code: 'COL_ERR_REVOKED', reason: 'revoked' },
      { name: 'by an agent nobody enrolled', body: () => { const s = newKey(); return rotationBody(s, s, newKey(), { generation: 1, afterSeq: 0 }); }, status: 401, code: 'COL_ERR_UNKNOWN_AGENT', reason: 'unknown_agent' },
      { name: 'a rotation point below the chain head the collector holds (3)', body: () => rotationBody(A, k0(), k1(), { generation: 1, afterSeq: 2 }), status: 409, code: 'COL_ERR_ROTATION_BEHIND', reason: 'rotation_behind' },
      { name: 'a new key that is another agent\'s', body: () => rotationBody(A, k0(), B, { generation: 1, afterSeq: 4 }), status: 409, code: 'COL_ERR_KEY_REUSED', reason: 'key_reused' },
      { name: 'a new key that is the current one', body: () => rotationBody(A, k0(), k0(), { generation: 1, afterSeq: 4 }), status: 409, code: 'COL_ERR_KEY_REUSED', reason: 'key_reused' },
      { name: 'a generation that skips one', body: () => rotationBody(A, k0(), k1(), { generation: 2, afterSeq: 4 }), status: 409, code: 'COL_ERR_ROTATION_REPLAY', reason: 'rotation_replay' },
      { name: 'dated an hour ahead', body: () => rotationBody(A, k0(), k1(), { generation: 1, afterSeq: 4, payload: { requestedAt: new Date(Date.now() + 3_600_000).toISOString() } }), status: 422, code: 'COL_ERR_FUTURE', reason: 'future' },
      {
        name: 'one signature only (the old key\'s)',
        body: () => {
          const env = JSON.parse(rotationBody(A, k0(), k1(), { generation: 1, afterSeq: 4 }).toString()) as { signatures: unknown[] };
          env.signatures = env.signatures.slice(0, 1);
          return Buffer.from(JSON.stringify(env));
        },
        status: 400,
        code: 'COL_ERR_MALFORMED',
        reason: 'malformed',
      },
      { name: 'an extra field in the signed request', body: () => rotationBody(A, k0(), k1(), { generation: 1, afterSeq: 4, payload: { extra: 1 } as object }), status: 422, code: 'COL_ERR_SCHEMA', reason: 'schema' },
    ];
    for (const c of cases) {
      it(`${c.status} ${c.code}: ${c.name}`, async () => {
        await refused(() => rotate(c.body()), c.status, c.code, rotationRefused(c.reason));
      });
    }
  });

  it('rotates, and answers a retry of the same bytes without writing again', async () => {
    rotation1 = rotationBody(A, keysOfA[0]!, keysOfA[1]!, { generation: 1, afterSeq: 4 });
    const files = await listTree(data.dir, collector.url);
    const before = await counters(collector.url, FAMILIES);
    const res = await rotate(rotation1);
    expect(res.status, res.body.toString()).toBe(200);
    expect(res.json).toEqual({ agentId: A.agentId, generation: 1, keyId: keysOfA[1]!.agentId, afterSeq: 4, rotatedAt: expect.any(String), duplicate: false });
    // The key event, and the transparency-log round that enters it.
    const added = (await listTree(data.dir, collector.url)).filter((f) => !files.includes(f));
    expect(added).toEqual([`keys/${A.agentId}.key-1.json`, expect.stringMatching(/^log\/vendor=acme\/wal\/\d{12}\.jsonl$/)]);
    expect(counterDeltas(before, await counters(collector.url, FAMILIES))).toEqual({ 'vcm_key_rotations_total{outcome="rotated"}': 1 });

    const again = await rotate(rotation1);
    expect(again.status).toBe(200);
    expect(again.json).toEqual({ ...(res.json as object), duplicate: true });
    expect((await listTree(data.dir, collector.url)).filter((f) => !files.includes(f))).toEqual(added);
  });

  it('takes the new key after the rotation point, the old key up to it (late delivery), and refuses the old key after it', async () => {
    sent.set(5, signA(5, keysOfA[1]!));
    await expectAccepted(collector.url, sent.get(5)!);
    await expectAccepted(collector.url, sent.get(4)!); // signed by the old key before the rotation, delivered after it
    await refused(() => results(signA(6, keysOfA[0]!)), 401, 'COL_ERR_BAD_SIGNATURE', ingestRefused('bad_signature'));
    // The new key is refused where the old one is due, whatever the keyid says.
    await refused(() => results(resultEnvelope({ ...A, key: keysOfA[1]!.key }, 4, sha256(sent.get(3)!), finding({ collectedAt: recent(), status: 'fail' }))), 401, 'COL_ERR_BAD_SIGNATURE', ingestRefused('bad_signature'));
    sent.set(6, signA(6, keysOfA[1]!));
    await expectAccepted(collector.url, sent.get(6)!);

    const audit = await auditChain(data.dir, A.agentId);
    expect(audit.problems).toEqual([]);
    expect(audit.links.map((l) => l.seq)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('refuses a replayed rotation, one signed by a retired key, and a key used before', async () => {
    rotation2 = rotationBody(A, keysOfA[1]!, keysOfA[2]!, { generation: 2, afterSeq: 6 });
    expect((await rotate(rotation2)).status).toBe(200);

    await refused(() => rotate(rotation1), 409, 'COL_ERR_ROTATION_REPLAY', rotationRefused('rotation_replay'));
    // Whoever still holds the enrolled key cannot introduce a key of their own.
    const thief = newKey();
    await refused(
      () => rotate(rotationBody(A, { ...keysOfA[2]!, key: keysOfA[0]!.key }, thief, { generation: 3, afterSeq: 6 })),
      401,
      'COL_ERR_BAD_SIGNATURE',
      rotationRefused('bad_signature'),
    );
    await refused(() => rotate(rotationBody(A, keysOfA[2]!, keysOfA[1]!, { generation: 3, afterSeq: 6 })), 409, 'COL_ERR_KEY_REUSED', rotationRefused('key_reused'));
    // A key an agent rotated to cannot be enrolled as another agent.
    const { token } = await createToken(store, { vendor: 'acme' });
    await refused(
      () => postRaw(collector.url, '/v1/enroll', enrollBody(keysOfA[1]!, token), { headers: { authorization: `Bearer ${token}` } }),
      409,
      'COL_ERR_AGENT_EXISTS',
      { 'vcm_enrollments_total{outcome="agent_exists"}': 1 },
    );
    expect((await auditChain(data.dir, A.agentId)).problems).toEqual([]);
  });

  it('lists the key events in the admin API and `agents show`; the per-host series stay the same', async () => {
    const detail = await admin('GET', `/v1/admin/agents/${A.agentId}`);
    expect(detail.status).toBe(200);
    expect(detail.json).toMatchObject({
      agentId: A.agentId,
      keyGeneration: 2,
      publicKey: keysOfA[2]!.publicKeyPem,
      keys: [
        { generation: 0, keyId: A.agentId, afterSeq: 0, event: 'enrolled' },
        { generation: 1, keyId: keysOfA[1]!.agentId, afterSeq: 4, event: 'rotated' },
        { generation: 2, keyId: keysOfA[2]!.agentId, afterSeq: 6, event: 'rotated' },
      ],
    });
    const show = await runCli(COLLECTOR_CLI, ['agents', 'show', A.agentId, '--collector', collector.url], { env: { VCM_ADMIN_TOKEN: adminToken } });
    expect(show.code, show.stderr).toBe(0);
    expect(show.stdout).toMatch(new RegExp(`key 1\\s+${keysOfA[1]!.agentId} rotated \\S+, signs after seq 4\\n`));
    expect(show.stdout).toMatch(new RegExp(`key 2\\s+${keysOfA[2]!.agentId} rotated \\S+, signs after seq 6 \\(in use\\)`));

    const metrics = await (await fetch(new URL('/metrics', collector.url))).text();
    const info = metrics.split('\n').filter((l) => l.startsWith('vcm_agent_info{') && l.includes('host="host-a"'));
    expect(info).toEqual([expect.stringContaining(`agent_id="${A.agentId}"`)]);
    expect(metrics).toContain(`vcm_control_state{vendor="acme",host="host-a",agent_id="${A.agentId}",control="open_ports",state="pass"} 1`);
  });

  it('keeps the key history across a restart (rebuilt from the store)', async () => {
    await collector.stop();
    collector = await startCollectorProcess(data.dir);
    sent.set(7, signA(7, keysOfA[2]!));
    await refused(() => results(signA(7, keysOfA[1]!)), 401, 'COL_ERR_BAD_SIGNATURE', ingestRefused('bad_signature'));
    await expectAccepted(collector.url, sent.get(7)!);
    await expectAccepted(collector.url, sent.get(4)!, 'duplicate');
    const retry = await rotate(rotation2);
    expect(retry.status).toBe(200);
    expect((retry.json as { duplicate: boolean }).duplicate).toBe(true);
    await refused(() => rotate(rotation1), 409, 'COL_ERR_ROTATION_REPLAY', rotationRefused('rotation_replay'));
    expect(((await admin('GET', `/v1/admin/agents/${A.agentId}`)).json as { keys: unknown[] }).keys).toHaveLength(3);
    expect((await auditChain(data.dir, A.agentId)).problems).toEqual([]);
  });

  it('revokes a rotated agent: its new key is refused after the revocation point, and it cannot rotate again', async () => {
    const revoked = await admin('POST', `/v1/admin/agents/${A.agentId}/revoke`, { reason: 'decommissioned' });
    expect(revoked.json).toMatchObject({ revoked: { afterSeq: 7 } });
    await refused(() => results(signA(8, keysOfA[2]!)), 403, 'COL_ERR_REVOKED', ingestRefused('revoked'));
    await refused(() => rotate(rotationBody(A, keysOfA[2]!, newKey(), { generation: 3, afterSeq: 7 })), 403, 'COL_ERR_REVOKED', rotationRefused('revoked'));
    // Results signed before the revocation point still count.
    await expectAccepted(collector.url, sent.get(7)!, 'duplicate');
  });
});
