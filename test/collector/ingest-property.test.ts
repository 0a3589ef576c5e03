// Property test of POST /v1/results against a real collector process: random bytes, random JSON,
// well-formed envelopes with random fields, and mutations of genuine envelopes. Whatever arrives,
// the answer is a 4xx with a stable code, a duplicate for an exact resend of accepted evidence,
// or `accepted` for an envelope this test signed with an enrolled key. The process never dies, and
// the store holds exactly the accepted envelopes.
import { createHash, sign, type KeyObject } from 'node:crypto';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PAYLOAD_TYPE_ENROLL, PAYLOAD_TYPE_STATEMENT, buildStatement, pae } from '../../collector/contract.js';
import { COLLECTOR_ERRORS } from '../../collector/errors.js';
import { FsEvidenceStore } from '../../collector/store.js';
import { enrollTestAgent, finding, newKey, resultEnvelope, type TestAgent } from '../helpers/agents.js';
import { expectAccepted, listTree, postRaw, type RawAnswer } from '../helpers/collector-probe.js';
import { startCollectorProcess, tempDir, type CollectorProcess } from '../helpers/processes.js';

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
const recent = () => new Date(Date.now() - 60_000).toISOString();

/** The documented client-error codes and their statuses: anything else in a 4xx is not stable. */
const CLIENT_ERRORS = new Map<string, number>(Object.entries(COLLECTOR_ERRORS).filter(([, e]) => e.status >= 400 && e.status < 500).map(([code, e]) => [code, e.status]));

interface Envelope {
  payloadType: string;
  payload: string;
  signatures: { keyid: string; sig: string }[];
}
const parseEnvelope = (bytes: Buffer) => JSON.parse(bytes.toString('utf8')) as Envelope;
const encode = (env: unknown) => Buffer.from(JSON.stringify(env));

let data: Awaited<ReturnType<typeof tempDir>>;
let collector: CollectorProcess;
let store: FsEvidenceStore;
let A: TestAgent;
let B: TestAgent;
/** Never enrolled: what it signs is not "signed with a registered key". */
let stranger: TestAgent;

beforeAll(async () => {
  data = await tempDir('ingest-property');
  collector = await startCollectorProcess(data.dir);
  store = new FsEvidenceStore(data.dir);
  A = await enrollTestAgent(collector.url, store, 'acme', 'host-a');
  B = await enrollTestAgent(collector.url, store, 'acme', 'host-b');
  stranger = { ...newKey(), hostname: 'stranger' };
});

afterAll(async () => {
  await collector?.stop();
  await data?.cleanup();
});

async function expectAlive(): Promise<void> {
  expect(collector.child.exitCode, `the collector exited:\n${collector.logs().slice(-3000)}`).toBeNull();
  expect((await fetch(new URL('/healthz', collector.url))).status).toBe(200);
}

/** Evidence files of the given agents, relative to evidence/. */
async function evidenceOf(agents: readonly TestAgent[]): Promise<string[]> {
  const dirs = agents.map((a) => `agent=${a.agentId}`);
  return (await listTree(path.join(data.dir, 'evidence'), collector.url)).filter((f) => f.split(path.sep).some((part) => dirs.includes(part)));
}

// ---------------------------------------------------------------------------------------------
// What the test sends

type Field = 'payloadType' | 'payload' | 'keyid' | 'sig';
type Mutation =
  | { op: 'flip'; at: number; bit: number }
  | { op: 'insert'; at: number; byte: number }
  | { op: 'delete'; at: number; len: number }
  | { op: 'swap'; a: Field; b: Field }
  | { op: 'rebase64'; field: 'payload' | 'sig'; how: 'url' | 'nopad' | 'mime' | 'space' | 'extra-pad' | 'unused-bits' }
  | { op: 'extra-sig'; keyid: 'same' | 'other' | 'stranger' | 'random'; sig: 'garbage' | 'copy' | 'other-key' | 'empty' }
  | { op: 'no-sig' }
  | { op: 'keyid'; to: 'other' | 'stranger' | 'random' | 'empty' | 'upper' }
  | { op: 'resign'; by: 'other' | 'stranger' }
  | { op: 'statement'; change: 'status' | 'seq' | 'agentId' | 'collectedAt' }
  /** Same signed content, other bytes: must be refused (the canonical-form tests below). */
  | { op: 'reserialize'; how: 'reorder' | 'indent' | 'escape' };

type Action =
  | { kind: 'bytes'; bytes: Uint8Array }
  | { kind: 'text'; text: string }
  | { kind: 'json'; text: string }
  | { kind: 'envelope'; env: { payloadType: string; payload: string; signatures: { keyid: string; sig: string }[] } }
  | { kind: 'genuine'; agent: 0 | 1; seq: 'next' | number; prev: 'chain' | 'null' | 'random'; when: 'recent' | 'old' | 'future'; status: 'pass' | 'fail' | 'unknown' }
  | { kind: 'stranger' }
  | { kind: 'resend'; pick: number }
  | { kind: 'mutate'; pick: number; mutation: Mutation };

interface Request {
  contentType: 'application/json' | 'application/x-ndjson' | 'text/plain';
  actions: Action[];
}

const hex64 = fc.stringMatching(/^[0-9a-f]{64}$/);
const b64of = (min: number, max: number) => fc.uint8Array({ minLength: min, maxLength: max }).map((b) => Buffer.from(b).toString('base64'));
const field = fc.constantFrom<Field>('payloadType', 'payload', 'keyid', 'sig');

function arbitraries() {
  const keyid = fc.oneof(fc.constant(A.agentId), fc.constant(B.agentId), fc.constant(stranger.agentId), hex64, fc.string({ maxLength: 80 }));
  const unsignedStatement = fc.record({ seq: fc.integer({ min: 1, max: 50 }), status: fc.constantFrom('pass' as const, 'fail' as const) }).map(({ seq, status }) => {
    const at = recent();
    const st = buildStatement({
      agentId: A.agentId,
      agentVersion: '0.1.0',
      host: { hostname: A.hostname, os: 'linux', arch: 'x64' },
      seq,
      prev: null,
      collectedAt: at,
      policyVersion: 1,
      finding: finding({ collectedAt: at, status }),
    });
    return Buffer.from(JSON.stringify(st)).toString('base64');
  });
  const envelope = fc.record({
    payloadType: fc.oneof(fc.constant(PAYLOAD_TYPE_STATEMENT), fc.constant(PAYLOAD_TYPE_ENROLL), fc.string({ maxLength: 40 })),
    payload: fc.oneof(b64of(0, 300), fc.string({ maxLength: 200 }), fc.json({ maxDepth: 3 }).map((j) => Buffer.from(j).toString('base64')), unsignedStatement),
    signatures: fc.array(fc.record({ keyid, sig: fc.oneof(b64of(64, 64), b64of(0, 100), fc.string({ maxLength: 100 })) }), { maxLength: 5 }),
  });
  const mutation: fc.Arbitrary<Mutation> = fc.oneof(
    { arbitrary: fc.record({ op: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }), weight: 4 },
    { arbitrary: fc.record({ op: fc.constant('insert' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }), weight: 2 },
    { arbitrary: fc.record({ op: fc.constant('delete' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 8 }) }), weight: 2 },
    { arbitrary: fc.record({ op: fc.constant('swap' as const), a: field, b: field }), weight: 1 },
    {
      arbitrary: fc.record({
        op: fc.constant('rebase64' as const),
        field: fc.constantFrom('payload' as const, 'sig' as const),
        how: fc.constantFrom('url' as const, 'nopad' as const, 'mime' as const, 'space' as const, 'extra-pad' as const, 'unused-bits' as const),
      }),
      weight: 3,
    },
    {
      arbitrary: fc.record({
        op: fc.constant('extra-sig' as const),
        keyid: fc.constantFrom('same' as const, 'other' as const, 'stranger' as const, 'random' as const),
        sig: fc.constantFrom('garbage' as const, 'copy' as const, 'other-key' as const, 'empty' as const),
      }),
      weight: 2,
    },
    { arbitrary: fc.constant({ op: 'no-sig' as const }), weight: 1 },
    { arbitrary: fc.record({ op: fc.constant('keyid' as const), to: fc.constantFrom('other' as const, 'stranger' as const, 'random' as const, 'empty' as const, 'upper' as const) }), weight: 2 },
    { arbitrary: fc.record({ op: fc.constant('resign' as const), by: fc.constantFrom('other' as const, 'stranger' as const) }), weight: 1 },
    { arbitrary: fc.record({ op: fc.constant('statement' as const), change: fc.constantFrom('status' as const, 'seq' as const, 'agentId' as const, 'collectedAt' as const) }), weight: 2 },
    { arbitrary: fc.record({ op: fc.constant('reserialize' as const), how: fc.constantFrom('reorder' as const, 'indent' as const, 'escape' as const) }), weight: 1 },
  );
  const action: fc.Arbitrary<Action> = fc.oneof(
    { arbitrary: fc.record({ kind: fc.constant('bytes' as const), bytes: fc.uint8Array({ maxLength: 600 }) }), weight: 2 },
    { arbitrary: fc.record({ kind: fc.constant('text' as const), text: fc.string({ unit: 'binary', maxLength: 300 }) }), weight: 1 },
    { arbitrary: fc.record({ kind: fc.constant('json' as const), text: fc.json({ maxDepth: 4 }) }), weight: 2 },
    { arbitrary: fc.record({ kind: fc.constant('envelope' as const), env: envelope }), weight: 3 },
    {
      arbitrary: fc.record({
        kind: fc.constant('genuine' as const),
        agent: fc.constantFrom(0 as const, 1 as const),
        seq: fc.oneof({ arbitrary: fc.constant('next' as const), weight: 4 }, { arbitrary: fc.integer({ min: 1, max: 400 }), weight: 1 }),
        prev: fc.oneof({ arbitrary: fc.constant('chain' as const), weight: 4 }, fc.constant('null' as const), fc.constant('random' as const)),
        when: fc.oneof({ arbitrary: fc.constant('recent' as const), weight: 6 }, fc.constant('old' as const), fc.constant('future' as const)),
        status: fc.constantFrom('pass' as const, 'fail' as const, 'unknown' as const),
      }),
      weight: 3,
    },
    { arbitrary: fc.constant({ kind: 'stranger' as const }), weight: 1 },
    { arbitrary: fc.record({ kind: fc.constant('resend' as const), pick: fc.nat() }), weight: 2 },
    { arbitrary: fc.record({ kind: fc.constant('mutate' as const), pick: fc.nat(), mutation }), weight: 8 },
  );
  return fc.record({
    contentType: fc.oneof(
      { arbitrary: fc.constant('application/json' as const), weight: 8 },
      { arbitrary: fc.constant('application/x-ndjson' as const), weight: 2 },
      { arbitrary: fc.constant('text/plain' as const), weight: 1 },
    ),
    actions: fc.array(action, { minLength: 1, maxLength: 3 }),
  });
}

// ---------------------------------------------------------------------------------------------
// The model: what the test signed, and what the collector accepted

class Model {
  /** Every envelope this test signed with an enrolled key, by the hash of its bytes. */
  readonly genuine = new Map<string, Buffer>();
  /** The same, in signing order: the bases for resends and mutations. */
  readonly pool: Buffer[] = [];
  /** Bodies answered `accepted`, by hash. */
  readonly accepted = new Set<string>();
  readonly heads = new Map<string, { seq: number; hash: string | null }>();
  readonly stats = new Map<string, number>();

  count(what: string): void {
    this.stats.set(what, (this.stats.get(what) ?? 0) + 1);
  }

  sign(agent: TestAgent, opts: { seq?: number; prev?: string | null; collectedAt?: string; status?: 'pass' | 'fail' | 'unknown' } = {}): Buffer {
    const head = this.heads.get(agent.agentId) ?? { seq: 0, hash: null };
    const seq = opts.seq ?? head.seq + 1;
    const prev = opts.prev === undefined ? (seq === 1 ? null : head.hash) : opts.prev;
    const bytes = resultEnvelope(agent, seq, prev, finding({ collectedAt: opts.collectedAt ?? recent(), status: opts.status ?? 'pass' }));
    if (seq > head.seq) this.heads.set(agent.agentId, { seq, hash: sha256(bytes) });
    this.genuine.set(sha256(bytes), bytes);
    this.pool.push(bytes);
    return bytes;
  }
}

function otherSig(body: Buffer, key: KeyObject): string {
  const env = parseEnvelope(body);
  return sign(null, pae(env.payloadType, Buffer.from(env.payload, 'base64')), key).toString('base64');
}

function rebase64(value: string, how: Extract<Mutation, { op: 'rebase64' }>['how']): string {
  const bytes = Buffer.from(value, 'base64');
  switch (how) {
    case 'url':
      return bytes.toString('base64url');
    case 'nopad':
      return value.replace(/=+$/, '') === value ? `${value}=` : value.replace(/=+$/, '');
    case 'mime':
      return value.replace(/.{1,76}/g, '$&\r\n');
    case 'space':
      return `${value.slice(0, value.length >> 1)} ${value.slice(value.length >> 1)}`;
    case 'extra-pad':
      return `${value}==`;
    case 'unused-bits': {
      // Set a bit the decoder ignores in the last character before the padding (same bytes, other text).
      const pad = value.length - value.replace(/=+$/, '').length;
      if (pad === 0) return `${value}A`;
      const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
      const at = value.length - pad - 1;
      return value.slice(0, at) + alphabet[alphabet.indexOf(value[at]!) | 1] + value.slice(at + 1);
    }
  }
}

function mutate(base: Buffer, m: Mutation): Buffer {
  const env = parseEnvelope(base);
  const sig0 = env.signatures[0]!;
  switch (m.op) {
    case 'flip': {
      const out = Buffer.from(base);
      const at = m.at % out.length;
      out[at] = out[at]! ^ (1 << m.bit);
      return out;
    }
    case 'insert': {
      const at = m.at % (base.length + 1);
      return Buffer.concat([base.subarray(0, at), Buffer.from([m.byte]), base.subarray(at)]);
    }
    case 'delete': {
      const at = m.at % base.length;
      return Buffer.concat([base.subarray(0, at), base.subarray(at + m.len)]);
    }
    case 'swap': {
      const get = (f: Field) => (f === 'payloadType' ? env.payloadType : f === 'payload' ? env.payload : f === 'keyid' ? sig0.keyid : sig0.sig);
      const set = (f: Field, v: string) => {
        if (f === 'payloadType') env.payloadType = v;
        else if (f === 'payload') env.payload = v;
        else if (f === 'keyid') sig0.keyid = v;
        else sig0.sig = v;
      };
      const [a, b] = m.a === m.b ? (['payload', 'sig'] as const) : [m.a, m.b];
      const va = get(a);
      set(a, get(b));
      set(b, va);
      return encode(env);
    }
    case 'rebase64':
      if (m.field === 'payload') env.payload = rebase64(env.payload, m.how);
      else sig0.sig = rebase64(sig0.sig, m.how);
      return encode(env);
    case 'extra-sig': {
      const keyid = { same: sig0.keyid, other: B.agentId, stranger: stranger.agentId, random: sha256(base) }[m.keyid];
      const sig = { garbage: Buffer.alloc(64, 7).toString('base64'), copy: sig0.sig, 'other-key': otherSig(base, stranger.key), empty: '' }[m.sig];
      env.signatures.push({ keyid, sig });
      return encode(env);
    }
    case 'no-sig':
      env.signatures = [];
      return encode(env);
    case 'keyid':
      sig0.keyid = { other: sig0.keyid === A.agentId ? B.agentId : A.agentId, stranger: stranger.agentId, random: sha256(sig0.sig), empty: '', upper: sig0.keyid.toUpperCase() }[m.to];
      return encode(env);
    case 'resign':
      sig0.sig = otherSig(base, m.by === 'stranger' ? stranger.key : sig0.keyid === A.agentId ? B.key : A.key);
      return encode(env);
    case 'statement': {
      const st = JSON.parse(Buffer.from(env.payload, 'base64').toString('utf8')) as { predicate: { seq: number; agentId: string; collectedAt: string; finding: { status: string; collectedAt: string } } };
      if (m.change === 'status') st.predicate.finding.status = st.predicate.finding.status === 'pass' ? 'fail' : 'pass';
      else if (m.change === 'seq') st.predicate.seq += 1;
      else if (m.change === 'agentId') st.predicate.agentId = st.predicate.agentId === A.agentId ? B.agentId : A.agentId;
      else st.predicate.collectedAt = st.predicate.finding.collectedAt = recent();
      env.payload = Buffer.from(JSON.stringify(st)).toString('base64');
      return encode(env);
    }
    case 'reserialize':
      if (m.how === 'reorder') return encode({ signatures: env.signatures, payload: env.payload, payloadType: env.payloadType });
      if (m.how === 'indent') return Buffer.from(JSON.stringify(env, null, 1));
      return Buffer.from(base.toString('utf8').replace('"payloadType"', '"payload\\u0054ype"'));
  }
}

function bodyFor(action: Action, model: Model): Buffer {
  switch (action.kind) {
    case 'bytes':
      return Buffer.from(action.bytes);
    case 'text':
    case 'json':
      return Buffer.from(action.text, 'utf8');
    case 'envelope':
      return encode(action.env);
    case 'genuine': {
      const agent = action.agent === 0 ? A : B;
      const when = { recent: recent(), old: '2020-02-29T12:00:00.000Z', future: new Date(Date.now() + 3_600_000).toISOString() }[action.when];
      const seq = action.seq === 'next' ? undefined : action.seq;
      const prev = action.prev === 'chain' ? undefined : action.prev === 'null' ? null : sha256(String(action.seq));
      return model.sign(agent, { ...(seq === undefined ? {} : { seq }), ...(prev === undefined ? {} : { prev }), collectedAt: when, status: action.status });
    }
    case 'stranger':
      return resultEnvelope(stranger, 1, null, finding({ collectedAt: recent() }));
    case 'resend':
      return model.pool[action.pick % model.pool.length]!;
    case 'mutate':
      return mutate(model.pool[action.pick % model.pool.length]!, action.mutation);
  }
}

/** How the collector splits a batch: one envelope per line, empty lines skipped. */
function lines(body: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let start = 0;
  while (start < body.length) {
    let end = body.indexOf(0x0a, start);
    if (end === -1) end = body.length;
    if (end > start) out.push(body.subarray(start, end));
    start = end + 1;
  }
  return out;
}

/** Checks one answered envelope against the model; returns what is wrong, or null. */
function judgeOutcome(body: Buffer, r: { outcome?: unknown; error?: { code?: unknown } }, model: Model, where: string): string | null {
  const h = sha256(body);
  if (r.outcome === 'accepted') {
    if (model.accepted.has(h)) return `${where}: accepted a second time (stored twice?)`;
    if (!model.genuine.has(h)) {
      // Only the exact bytes this test signed may be accepted: not even other bytes around a genuine signature.
      return `${where}: ACCEPTED a body that is not byte-identical to an envelope this test signed: ${body.toString('utf8').slice(0, 300)}`;
    }
    model.accepted.add(h);
    model.count('accepted');
    return null;
  }
  if (r.outcome === 'duplicate') {
    model.count('duplicate');
    return model.accepted.has(h) ? null : `${where}: "duplicate" for a body never accepted: ${body.toString('utf8').slice(0, 300)}`;
  }
  if (r.outcome === 'rejected') {
    const code = r.error?.code;
    model.count(`rejected ${String(code)}`);
    return typeof code === 'string' && CLIENT_ERRORS.has(code) ? null : `${where}: rejected with an unstable code ${String(code)}`;
  }
  return `${where}: unknown outcome ${String(r.outcome)}`;
}

function judgeAnswer(req: Request, body: Buffer, res: RawAnswer, model: Model): string | null {
  if (res.status >= 400 && res.status < 500) {
    const code = res.code;
    const ok = code !== undefined && CLIENT_ERRORS.get(code) === res.status && Object.keys(res.json as object).length === 1;
    model.count(`${res.status} ${String(code)}`);
    return ok ? null : `${res.status} with an unstable error body: ${res.body.toString('utf8').slice(0, 300)}`;
  }
  if (res.status !== 200) return `answered ${res.status}: ${res.body.toString('utf8').slice(0, 300)}`;
  const results = (res.json as { results?: { outcome?: unknown; error?: { code?: unknown } }[] } | undefined)?.results;
  if (!Array.isArray(results)) return `200 without results: ${res.body.toString('utf8').slice(0, 300)}`;
  const sent = req.contentType === 'application/x-ndjson' ? lines(body) : [body];
  if (results.length !== sent.length) return `${results.length} results for ${sent.length} envelopes`;
  if (req.contentType === 'application/json' && results[0]?.outcome === 'rejected') return 'a single envelope rejected inside a 200';
  for (const [i, r] of results.entries()) {
    const wrong = judgeOutcome(sent[i]!, r, model, `line ${i + 1}`);
    if (wrong !== null) return wrong;
  }
  return null;
}

describe('POST /v1/results under random and mutated bodies (fast-check, real collector process)', () => {
  it('accepts only envelopes signed by an enrolled key, answers everything else with a stable 4xx, and never dies', async () => {
    const model = new Model();
    // A known start: one accepted envelope and its exact resend, so both answers are exercised.
    for (const [body, outcome] of [[model.sign(A), 'accepted'], [model.pool[0]!, 'duplicate']] as const) {
      const res = await expectAccepted(collector.url, body, outcome);
      expect(judgeOutcome(body, (res.json as { results: { outcome: string }[] }).results[0]!, model, 'prelude')).toBeNull();
    }

    let requests = 0;
    await fc.assert(
      fc.asyncProperty(arbitraries(), async (req) => {
        const bodies = req.actions.map((a) => bodyFor(a, model));
        const body = req.contentType === 'application/x-ndjson' ? Buffer.concat(bodies.flatMap((b) => [b, Buffer.from('\n')])) : bodies[0]!;
        const res = await postRaw(collector.url, '/v1/results', body, { headers: { 'content-type': req.contentType } });
        requests++;
        const wrong = judgeAnswer(req, body, res, model);
        if (wrong !== null) throw new Error(wrong);
        if (collector.child.exitCode !== null) throw new Error(`the collector exited with ${collector.child.exitCode}`);
      }),
      { numRuns: 300 },
    );

    await expectAlive();
    const stored = await evidenceOf([A, B]);
    // Exactly the accepted envelopes, each once, byte for byte.
    expect(stored).toHaveLength(model.accepted.size);
    expect(new Set(stored.map((f) => /-([0-9a-f]{64})\.dsse\.json$/.exec(f)?.[1]))).toEqual(model.accepted);
    expect(model.accepted.size).toBeGreaterThan(1);
    console.info(`ingest property: ${requests} requests; answers: ${JSON.stringify(Object.fromEntries([...model.stats].sort()))}`);
  });
});

// The DSSE signature covers the payloadType and payload, not the envelope's bytes, and the
// collector stores (and the next link hashes) the exact envelope bytes. So any re-encoding of a
// genuine envelope that keeps the signed content verifies, is stored, and takes the agent's seq.
describe('envelope bytes are the evidence', () => {
  const malleations: { name: string; apply: (e: Buffer) => Buffer }[] = [
    { name: 'a second, garbage signature under the same keyid', apply: (e) => addSig(e, (s) => ({ keyid: s.keyid, sig: Buffer.alloc(64).toString('base64') })) },
    { name: 'its own signature twice', apply: (e) => addSig(e, (s) => ({ ...s })) },
    { name: 'white space between members', apply: (e) => Buffer.from(JSON.stringify(parseEnvelope(e), null, 1)) },
    { name: 'its members in another order', apply: (e) => reorder(e) },
    { name: 'an escaped character in a member name', apply: (e) => Buffer.from(e.toString('utf8').replace('"payloadType"', '"payload\\u0054ype"')) },
    { name: 'an escaped character in a string value', apply: (e) => Buffer.from(e.toString('utf8').replace('"application/', '"\\u0061pplication/')) },
  ];

  for (const m of malleations) {
    it(`refuses a genuine envelope re-encoded with ${m.name}, so the agent's own bytes still go through`, async () => {
      const agent = await enrollTestAgent(collector.url, store, 'acme', `host-${sha256(m.name).slice(0, 8)}`);
      const e1 = resultEnvelope(agent, 1, null, finding({ collectedAt: recent() }));
      const e2 = resultEnvelope(agent, 2, sha256(e1), finding({ collectedAt: recent() }));
      const copy = m.apply(e1);
      expect(copy.equals(e1)).toBe(false);
      const res = await postRaw(collector.url, '/v1/results', copy);
      expect(res.status, res.body.toString('utf8')).toBeGreaterThanOrEqual(400);
      expect(res.status).toBeLessThan(500);
      expect(await evidenceOf([agent])).toEqual([]);
      // The agent's own envelope and the next link (whose prev is the hash of the agent's bytes) go through.
      for (const e of [e1, e2]) {
        const ok = await postRaw(collector.url, '/v1/results', e);
        expect(ok.status, ok.body.toString('utf8')).toBe(200);
      }
    });
  }
});

function addSig(e: Buffer, make: (s: { keyid: string; sig: string }) => { keyid: string; sig: string }): Buffer {
  const env = parseEnvelope(e);
  env.signatures.push(make(env.signatures[0]!));
  return encode(env);
}

function reorder(e: Buffer): Buffer {
  const env = parseEnvelope(e);
  return encode({ signatures: env.signatures, payload: env.payload, payloadType: env.payloadType });
}
