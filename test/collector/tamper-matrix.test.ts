// The tamper matrix: a real collector process on 127.0.0.1, fed tampered envelopes and enrollment
// requests over HTTP. Each row must be refused with its status, code and counted reason, store
// nothing, and leave the collector serving. A new case is one row in `cases`.
import { createHash } from 'node:crypto';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdminToken } from '../../collector/admin.js';
import { PAYLOAD_TYPE_STATEMENT, buildStatement, signEnvelope } from '../../collector/contract.js';
import { FsEvidenceStore } from '../../collector/store.js';
import { createToken } from '../../collector/tokens.js';
import { enrollBody, enrollTestAgent, finding, newKey, resultEnvelope, type TestAgent } from '../helpers/agents.js';
import { counterDeltas, counters, expectAccepted, listTree, postRaw, type RawAnswer } from '../helpers/collector-probe.js';
import { startCollectorProcess, tempDir, type CollectorProcess } from '../helpers/processes.js';

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

interface Envelope {
  payloadType: string;
  payload: string;
  signatures: { keyid: string; sig: string }[];
}
const parse = (bytes: Buffer) => JSON.parse(bytes.toString('utf8')) as Envelope;
const encode = (env: Envelope) => Buffer.from(JSON.stringify(env));
function edit(bytes: Buffer, change: (env: Envelope) => void): Buffer {
  const env = parse(bytes);
  change(env);
  return encode(env);
}
function flipBit(buf: Buffer, at: number, bit = 0): Buffer {
  const out = Buffer.from(buf);
  out[at] = out[at]! ^ (1 << bit);
  return out;
}

/** A collection time the collector's real clock accepts: a minute ago. */
const recent = () => new Date(Date.now() - 60_000).toISOString();
/** Well past the 5-minute clock skew allowance. */
const future = () => new Date(Date.now() + 3_600_000).toISOString();

/** What one case sends: a result (POST /v1/results) or an enrollment (POST /v1/enroll). */
interface Attempt {
  path: '/v1/results' | '/v1/enroll';
  body: Buffer;
  headers?: Record<string, string>;
  chunked?: boolean;
}

interface Expected {
  status: number;
  /** The error code of a refusal; absent for an accepted request. */
  code?: string;
  /** The outcome in a 200 answer. */
  outcome?: 'duplicate';
  /** Every counter series that must move, by how much; all the others must not. */
  counted: Record<string, number>;
}

const rejected = (reason: string) => ({ 'vcm_ingest_envelopes_total{outcome="rejected"}': 1, [`vcm_ingest_rejected_total{reason="${reason}"}`]: 1 });
const enrollRefused = (reason: string) => ({ [`vcm_enrollments_total{outcome="${reason}"}`]: 1 });

let data: Awaited<ReturnType<typeof tempDir>>;
let collector: CollectorProcess;
let store: FsEvidenceStore;
let adminToken: string;
/** A, with seq 1 stored: most rows tamper with A's genuine (unsent) seq 2. */
let A: TestAgent;
/** Another agent of the same vendor, with seq 1 and 2 stored. */
let B: TestAgent;
/** Revoked by its row. */
let R: TestAgent;
const stored: { a1?: Buffer; b1?: Buffer; b2?: Buffer; r1?: Buffer } = {};

/** A's genuine next result, which the collector would accept as it is. */
const aNext = () => resultEnvelope(A, 2, sha256(stored.a1!), finding({ collectedAt: recent() }));

async function send(a: Attempt): Promise<RawAnswer> {
  return postRaw(collector.url, a.path, a.body, { ...(a.headers === undefined ? {} : { headers: a.headers }), ...(a.chunked === undefined ? {} : { chunked: a.chunked }) });
}

async function admin(pathname: string, body: unknown): Promise<void> {
  const res = await fetch(new URL(pathname, collector.url), {
    method: 'POST',
    headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (res.status !== 200) throw new Error(`admin ${pathname}: ${res.status} ${await res.text()}`);
}

const enrollWith = (token: string): Attempt => ({ path: '/v1/enroll', body: enrollBody(newKey(), token), headers: { authorization: `Bearer ${token}` } });

interface Case {
  name: string;
  /** Builds the request. Whatever it must store first (a token use, a revocation) happens here, before the counts. */
  arrange: () => Attempt | Promise<Attempt>;
  expect: Expected;
}

const cases: Case[] = [
  // Flipped bits.
  {
    name: 'a flipped bit in the signed payload',
    arrange: () => ({ path: '/v1/results', body: edit(aNext(), (e) => (e.payload = flipBit(Buffer.from(e.payload, 'base64'), 40).toString('base64'))) }),
    expect: { status: 401, code: 'COL_ERR_BAD_SIGNATURE', counted: rejected('bad_signature') },
  },
  {
    name: 'a flipped bit in the payload base64 text (a letter changes case)',
    arrange: () => {
      const body = edit(aNext(), (e) => {
        const at = e.payload.slice(e.payload.length / 2).search(/[A-Za-z]/) + Math.floor(e.payload.length / 2);
        e.payload = flipBit(Buffer.from(e.payload), at, 5).toString();
      });
      return { path: '/v1/results', body };
    },
    expect: { status: 401, code: 'COL_ERR_BAD_SIGNATURE', counted: rejected('bad_signature') },
  },
  {
    name: 'a flipped bit in the payloadType (signed as part of the PAE)',
    arrange: () => ({ path: '/v1/results', body: edit(aNext(), (e) => (e.payloadType = flipBit(Buffer.from(e.payloadType), 0, 5).toString())) }),
    expect: { status: 401, code: 'COL_ERR_BAD_SIGNATURE', counted: rejected('bad_signature') },
  },
  {
    name: 'a flipped bit in the signature',
    arrange: () => ({ path: '/v1/results', body: edit(aNext(), (e) => (e.signatures[0]!.sig = flipBit(Buffer.from(e.signatures[0]!.sig, 'base64'), 10).toString('base64'))) }),
    expect: { status: 401, code: 'COL_ERR_BAD_SIGNATURE', counted: rejected('bad_signature') },
  },
  {
    name: 'a flipped bit in the JSON structure ("{" becomes "z")',
    arrange: () => ({ path: '/v1/results', body: flipBit(aNext(), 0, 0) }),
    expect: { status: 400, code: 'COL_ERR_MALFORMED', counted: rejected('malformed') },
  },
  {
    name: 'a validly signed envelope with a payloadType the collector does not take',
    arrange: () => {
      const payload = Buffer.from(parse(aNext()).payload, 'base64');
      return { path: '/v1/results', body: signEnvelope('application/json', payload, A.key, A.agentId) };
    },
    expect: { status: 400, code: 'COL_ERR_UNKNOWN_TYPE', counted: rejected('unknown_type') },
  },
  // Keys.
  {
    name: 'signed by another key, claiming the agent\'s keyid',
    arrange: () => ({ path: '/v1/results', body: resultEnvelope({ ...newKey(), agentId: A.agentId, hostname: A.hostname }, 2, sha256(stored.a1!), finding({ collectedAt: recent() })) }),
    expect: { status: 401, code: 'COL_ERR_BAD_SIGNATURE', counted: rejected('bad_signature') },
  },
  {
    name: 'signed by a key nobody enrolled, under its own keyid',
    arrange: () => ({ path: '/v1/results', body: resultEnvelope({ ...newKey(), hostname: 'stranger' }, 1, null, finding({ collectedAt: recent() })) }),
    expect: { status: 401, code: 'COL_ERR_UNKNOWN_AGENT', counted: rejected('unknown_agent') },
  },
  {
    name: 'from an agent revoked through the admin API',
    arrange: async () => {
      await admin(`/v1/admin/agents/${R.agentId}/revoke`, { reason: 'tamper matrix: key reported stolen' });
      return { path: '/v1/results', body: resultEnvelope(R, 2, sha256(stored.r1!), finding({ collectedAt: recent() })) };
    },
    expect: { status: 403, code: 'COL_ERR_REVOKED', counted: rejected('revoked') },
  },
  // Duplicate JSON keys.
  {
    name: 'a duplicate "payload" in the envelope, the genuine one last (what JSON.parse would keep)',
    arrange: () => {
      const genuine = aNext().toString('utf8');
      const decoy = Buffer.from(JSON.stringify({ forged: true })).toString('base64');
      return { path: '/v1/results', body: Buffer.from(`{"payload":"${decoy}",${genuine.slice(1)}`) };
    },
    expect: { status: 400, code: 'COL_ERR_MALFORMED', counted: rejected('malformed') },
  },
  {
    name: 'a duplicate "payloadType" with the same value in the envelope',
    arrange: () => ({ path: '/v1/results', body: Buffer.from(`{"payloadType":"${PAYLOAD_TYPE_STATEMENT}",${aNext().toString('utf8').slice(1)}`) }),
    expect: { status: 400, code: 'COL_ERR_MALFORMED', counted: rejected('malformed') },
  },
  {
    name: 'a duplicate "keyid" inside the signature object',
    arrange: () => ({ path: '/v1/results', body: Buffer.from(aNext().toString('utf8').replace('"keyid":', `"keyid":"${B.agentId}","keyid":`)) }),
    expect: { status: 400, code: 'COL_ERR_MALFORMED', counted: rejected('malformed') },
  },
  {
    name: 'a duplicate key inside the validly signed payload ("status" fail, then pass)',
    arrange: () => {
      const at = recent();
      const statement = JSON.stringify(
        buildStatement({
          agentId: A.agentId,
          agentVersion: '0.1.0',
          host: { hostname: A.hostname, os: 'linux', arch: 'x64' },
          seq: 2,
          prev: sha256(stored.a1!),
          collectedAt: at,
          policyVersion: 1,
          finding: finding({ collectedAt: at, status: 'pass' }),
        }),
      );
      const twoFaced = statement.replace('"status":"pass"', '"status":"fail","status":"pass"');
      if (twoFaced === statement) throw new Error('the statement has no "status":"pass" to duplicate');
      return { path: '/v1/results', body: signEnvelope(PAYLOAD_TYPE_STATEMENT, Buffer.from(twoFaced), A.key, A.agentId) };
    },
    expect: { status: 400, code: 'COL_ERR_MALFORMED', counted: rejected('malformed') },
  },
  // Sizes.
  {
    name: 'a validly signed envelope larger than the body limit, with Content-Length',
    arrange: () => ({ path: '/v1/results', body: resultEnvelope(A, 2, sha256(stored.a1!), bigFinding()) }),
    expect: { status: 413, code: 'COL_ERR_TOO_LARGE', counted: rejected('too_large') },
  },
  {
    name: 'a validly signed envelope larger than the body limit, chunked without Content-Length',
    arrange: () => ({ path: '/v1/results', body: resultEnvelope(A, 2, sha256(stored.a1!), bigFinding()), chunked: true }),
    expect: { status: 413, code: 'COL_ERR_TOO_LARGE', counted: rejected('too_large') },
  },
  {
    name: 'a genuine envelope cut in half',
    arrange: () => {
      const e = aNext();
      return { path: '/v1/results', body: e.subarray(0, e.length >> 1) };
    },
    expect: { status: 400, code: 'COL_ERR_MALFORMED', counted: rejected('malformed') },
  },
  {
    name: 'a genuine envelope without its last byte',
    arrange: () => {
      const e = aNext();
      return { path: '/v1/results', body: e.subarray(0, e.length - 1) };
    },
    expect: { status: 400, code: 'COL_ERR_MALFORMED', counted: rejected('malformed') },
  },
  {
    name: 'an empty body',
    arrange: () => ({ path: '/v1/results', body: Buffer.alloc(0) }),
    expect: { status: 400, code: 'COL_ERR_MALFORMED', counted: rejected('malformed') },
  },
  {
    name: 'a genuine envelope followed by trailing bytes',
    arrange: () => ({ path: '/v1/results', body: Buffer.concat([aNext(), Buffer.from('{}')]) }),
    expect: { status: 400, code: 'COL_ERR_MALFORMED', counted: rejected('malformed') },
  },
  // Replays and time.
  {
    name: 'a replay: the stored sequence number with other bytes',
    arrange: () => ({ path: '/v1/results', body: resultEnvelope(A, 1, null, finding({ collectedAt: recent(), status: 'fail' })) }),
    expect: { status: 409, code: 'COL_ERR_REPLAY', counted: rejected('replay') },
  },
  {
    name: 'the stored envelope again: a duplicate, acknowledged and stored once',
    arrange: () => ({ path: '/v1/results', body: stored.a1! }),
    expect: { status: 200, outcome: 'duplicate', counted: { 'vcm_ingest_envelopes_total{outcome="duplicate"}': 1 } },
  },
  {
    name: 'a next result whose prev is not the stored head',
    arrange: () => ({ path: '/v1/results', body: resultEnvelope(A, 2, 'f'.repeat(64), finding({ collectedAt: recent() })) }),
    expect: { status: 409, code: 'COL_ERR_CHAIN_BROKEN', counted: rejected('chain_broken') },
  },
  {
    name: 'from the future, beyond the clock skew',
    arrange: () => {
      const at = future();
      return { path: '/v1/results', body: resultEnvelope(A, 2, sha256(stored.a1!), finding({ collectedAt: at })) };
    },
    expect: { status: 422, code: 'COL_ERR_FUTURE', counted: rejected('future') },
  },
  // Another agent's sequence numbers. (A and B both hold a seq 1: chains are per agent.)
  {
    name: 'another agent\'s stored envelope with this agent\'s keyid swapped in',
    arrange: () => ({ path: '/v1/results', body: edit(stored.b1!, (e) => (e.signatures[0]!.keyid = A.agentId)) }),
    expect: { status: 401, code: 'COL_ERR_BAD_SIGNATURE', counted: rejected('bad_signature') },
  },
  {
    name: 'this agent\'s signature under another agent\'s keyid',
    arrange: () => ({ path: '/v1/results', body: edit(aNext(), (e) => (e.signatures[0]!.keyid = B.agentId)) }),
    expect: { status: 401, code: 'COL_ERR_BAD_SIGNATURE', counted: rejected('bad_signature') },
  },
  {
    name: 'another agent\'s stored statement re-signed with this agent\'s key',
    arrange: () => ({ path: '/v1/results', body: signEnvelope(PAYLOAD_TYPE_STATEMENT, Buffer.from(parse(stored.b2!).payload, 'base64'), A.key, A.agentId) }),
    expect: { status: 422, code: 'COL_ERR_SCHEMA', counted: rejected('schema') },
  },
  {
    name: 'the next link of another agent\'s chain, signed by this agent',
    arrange: () => {
      // Both times agree, so that nothing but the agent id is wrong.
      const at = recent();
      const statement = buildStatement({
        agentId: B.agentId,
        agentVersion: '0.1.0',
        host: { hostname: B.hostname, os: 'linux', arch: 'x64' },
        seq: 3,
        prev: sha256(stored.b2!),
        collectedAt: at,
        policyVersion: 1,
        finding: finding({ collectedAt: at }),
      });
      return { path: '/v1/results', body: signEnvelope(PAYLOAD_TYPE_STATEMENT, Buffer.from(JSON.stringify(statement)), A.key, A.agentId) };
    },
    expect: { status: 422, code: 'COL_ERR_SCHEMA', counted: rejected('schema') },
  },
  // Enrollment tokens.
  {
    name: 'an enrollment token used a second time',
    arrange: async () => {
      const { token } = await createToken(store, { vendor: 'acme' });
      const first = await send(enrollWith(token));
      if (first.status !== 201) throw new Error(`the first use should enroll: ${first.status} ${first.body.toString()}`);
      return enrollWith(token);
    },
    expect: { status: 401, code: 'COL_ERR_TOKEN_INVALID', counted: enrollRefused('token_invalid') },
  },
  {
    name: 'an expired enrollment token',
    arrange: async () => {
      const { token } = await createToken(store, { vendor: 'acme', ttlSeconds: 60, now: new Date(Date.now() - 3_600_000) });
      return enrollWith(token);
    },
    expect: { status: 401, code: 'COL_ERR_TOKEN_INVALID', counted: enrollRefused('token_invalid') },
  },
  {
    name: 'an enrollment token revoked through the admin API',
    arrange: async () => {
      const { token } = await createToken(store, { vendor: 'acme' });
      await admin(`/v1/admin/tokens/${sha256(token)}/revoke`, {});
      return enrollWith(token);
    },
    expect: { status: 401, code: 'COL_ERR_TOKEN_INVALID', counted: enrollRefused('token_invalid') },
  },
  {
    name: 'a made-up enrollment token',
    arrange: () => enrollWith(`vcm_et_${'Q'.repeat(43)}`),
    expect: { status: 401, code: 'COL_ERR_TOKEN_INVALID', counted: enrollRefused('token_invalid') },
  },
];

/** A finding whose signed envelope is over the 1 MiB body limit. */
function bigFinding() {
  const reasons = Array.from({ length: 700 }, (_, i) => ({ code: 'CHK_FAIL_LISTENER_NOT_ALLOWED', message: `${i} ${'x'.repeat(1500)}` }));
  return finding({ collectedAt: recent(), status: 'fail', reasons });
}

async function expectServing(): Promise<void> {
  expect(collector.child.exitCode, `collector exited:\n${collector.logs().slice(-2000)}`).toBeNull();
  expect((await fetch(new URL('/healthz', collector.url))).status).toBe(200);
  expect((await fetch(new URL('/readyz', collector.url))).status).toBe(200);
}

beforeAll(async () => {
  data = await tempDir('tamper');
  // No periodic checkpoint during the run: its tiles and note would appear between a case's two
  // listings of the store (after the revocation's log entry, say) and look like a stored write.
  collector = await startCollectorProcess(data.dir, { args: ['--checkpoint-interval', '1h'] });
  // The CLI does the same: token and admin-token commands work on the store a running `serve` uses.
  store = new FsEvidenceStore(data.dir);
  adminToken = await createAdminToken(store, { name: 'tamper-matrix', role: 'admin' });
  A = await enrollTestAgent(collector.url, store, 'acme', 'host-a');
  B = await enrollTestAgent(collector.url, store, 'acme', 'host-b');
  R = await enrollTestAgent(collector.url, store, 'acme', 'host-r');
  stored.a1 = resultEnvelope(A, 1, null, finding({ collectedAt: recent() }));
  stored.b1 = resultEnvelope(B, 1, null, finding({ collectedAt: recent() }));
  stored.b2 = resultEnvelope(B, 2, sha256(stored.b1), finding({ collectedAt: recent() }));
  stored.r1 = resultEnvelope(R, 1, null, finding({ collectedAt: recent() }));
  for (const e of [stored.a1, stored.b1, stored.b2, stored.r1]) await expectAccepted(collector.url, e);
});

afterAll(async () => {
  await collector?.stop();
  await data?.cleanup();
});

describe('tamper matrix over HTTP against a collector process', () => {
  for (const c of cases) {
    it(`${c.expect.status} ${c.expect.code ?? c.expect.outcome ?? ''}: ${c.name}`, async () => {
      const attempt = await c.arrange();
      const filesBefore = await listTree(data.dir, collector.url);
      const before = await counters(collector.url);

      const res = await send(attempt);

      expect(res.status, res.body.toString().slice(0, 500)).toBe(c.expect.status);
      if (c.expect.code !== undefined) {
        expect(res.json).toEqual({ error: { code: c.expect.code, message: expect.any(String) } });
      } else {
        expect((res.json as { results: { outcome: string }[] }).results).toEqual([expect.objectContaining({ outcome: c.expect.outcome })]);
      }
      expect(counterDeltas(before, await counters(collector.url))).toEqual(c.expect.counted);
      expect(await listTree(data.dir, collector.url)).toEqual(filesBefore);
      await expectServing();
    });
  }

  it('accepts the untampered originals afterwards, so each row was refused for its tampering alone', async () => {
    // A's genuine seq 2 (the base of most rows), and B's next link after the "other agent" rows.
    await expectAccepted(collector.url, aNext());
    await expectAccepted(collector.url, resultEnvelope(B, 3, sha256(stored.b2!), finding({ collectedAt: recent() })));
    // A's first result is still the one stored: the replay did not replace it.
    await expectAccepted(collector.url, stored.a1!, 'duplicate');
    const { token } = await createToken(store, { vendor: 'acme' });
    expect((await send(enrollWith(token))).status).toBe(201);
  });

  it('stores a body cut short on the wire nowhere, and keeps serving', async () => {
    const filesBefore = await listTree(data.dir, collector.url);
    const answer = await cutOnTheWire(aNext());
    // Node's HTTP parser refuses the incomplete request; whatever answers, it is a 4xx.
    expect(answer).toMatch(/^HTTP\/1\.1 4\d\d /);
    expect(await listTree(data.dir, collector.url)).toEqual(filesBefore);
    await expectServing();
  });

  it('a body cut short on the wire gets COL_ERR_MALFORMED, is counted as malformed, and is not logged as an unexpected error', async () => {
    const before = await counters(collector.url);
    const logLength = collector.logs().length;
    const answer = await cutOnTheWire(aNext());
    const body = answer.slice(answer.indexOf('\r\n\r\n') + 4);
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(body).toContain('"COL_ERR_MALFORMED"');
    expect(counterDeltas(before, await counters(collector.url))).toEqual(rejected('malformed'));
    expect(collector.logs().slice(logLength)).not.toContain('"unexpected error"');
  });
});

/**
 * Sends the headers and half of `body` with the full Content-Length, then ends the sending side
 * (the client still reads): the request is truncated on the wire, not in its content.
 */
async function cutOnTheWire(body: Buffer): Promise<string> {
  const url = new URL(collector.url);
  const socket = net.connect(Number(url.port), url.hostname);
  const chunks: Buffer[] = [];
  socket.on('data', (d: Buffer) => chunks.push(d));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  socket.write(`POST /v1/results HTTP/1.1\r\nHost: ${url.host}\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n`);
  socket.end(body.subarray(0, body.length >> 1));
  await new Promise<void>((resolve) => socket.once('close', () => resolve()));
  return Buffer.concat(chunks).toString('utf8');
}
