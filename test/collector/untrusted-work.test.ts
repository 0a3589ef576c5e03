// What an unauthenticated sender can make the collector do (#17, high 2): a batch holds at most
// what an agent sends, stops at the first few lines that fail verification, answers small, and
// key ids nobody enrolled cost one store read, not one per line. The collector runs in-process on
// 127.0.0.1 and is driven over real HTTP.
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MAX_BATCH_LINES, MAX_UNTRUSTED_FAILURES } from '../../collector/ingest.js';
import { parseCollectorConfig, startCollector, type RunningCollector } from '../../collector/server.js';
import { FsEvidenceStore } from '../../collector/store.js';
import { chain, enrollTestAgent, newKey, resultEnvelope, type TestAgent } from '../helpers/agents.js';
import { sample, tempDir } from '../helpers/processes.js';

/** A filesystem store that counts the reads of agent records. */
class CountingStore extends FsEvidenceStore {
  keyReads = 0;
  override async get(key: string): Promise<Buffer | null> {
    if (key.startsWith('keys/')) this.keyReads++;
    return super.get(key);
  }
}

let data: Awaited<ReturnType<typeof tempDir>>;
let store: CountingStore;
let collector: RunningCollector;
let agent: TestAgent;

async function postBatch(body: Buffer | string): Promise<{ status: number; bytes: number; json: { error?: { code: string; message: string }; results?: { outcome: string; error?: { code: string } }[] } }> {
  const res = await fetch(`${collector.url}/v1/results`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body });
  const text = await res.text();
  return { status: res.status, bytes: Buffer.byteLength(text), json: JSON.parse(text) as never };
}

/** A body sent from another loopback address. */
function postFrom(localAddress: string, body: Buffer, contentType = 'application/json'): Promise<string> {
  const url = new URL('/v1/results', collector.url);
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', localAddress, headers: { 'content-type': contentType } }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => (text += d)).on('end', () => resolve(text));
    });
    req.on('error', reject).end(body);
  });
}

async function evidenceCount(): Promise<number> {
  let n = 0;
  for await (const _ of collector.store.list('evidence/')) n++;
  return n;
}

async function metric(series: string): Promise<number | undefined> {
  return sample(await (await fetch(`${collector.url}/metrics`)).text(), series);
}

/**
 * The collector's clock, still for the duration of a test: the refusal budget refills by it, and a
 * loaded machine would otherwise refill it between the test's batches.
 */
let clock: Date;

beforeEach(async () => {
  data = await tempDir('untrusted');
  store = new CountingStore(data.dir);
  clock = new Date();
  collector = await startCollector(parseCollectorConfig({ dataDir: data.dir, listen: '127.0.0.1:0' }), { log: pino({ level: 'silent' }), store, now: () => clock });
  agent = await enrollTestAgent(collector.url, collector.store);
});

afterEach(async () => {
  await collector.close();
  await data.cleanup();
});

describe('work before a signature verifies is small and bounded', () => {
  it('a batch of 333,000 lines of {} is refused whole with a small 413, and the collector keeps answering', async () => {
    const res = await postBatch('{}\n'.repeat(333_000));
    expect(res.status).toBe(413);
    expect(res.json.error).toMatchObject({ code: 'COL_ERR_TOO_LARGE', message: expect.stringContaining(`${MAX_BATCH_LINES} envelopes`) });
    expect(res.bytes).toBeLessThan(512);
    expect((await fetch(`${collector.url}/healthz`)).status).toBe(200);
    expect(await metric('vcm_ingest_rejected_total{reason="too_large"}')).toBe(1);
  });

  it('a batch of exactly the line limit is read; one line more is refused unread', async () => {
    const at = await postBatch('x\n'.repeat(MAX_BATCH_LINES));
    expect(at).toMatchObject({ status: 400, json: { error: { code: 'COL_ERR_MALFORMED' } } });
    const over = await postBatch('x\n'.repeat(MAX_BATCH_LINES + 1));
    expect(over).toMatchObject({ status: 413, json: { error: { code: 'COL_ERR_TOO_LARGE' } } });
  });

  it(`stops at the ${MAX_UNTRUSTED_FAILURES}th line that fails verification: 400, nothing in the batch stored`, async () => {
    const [good] = chain(agent, 1);
    const junk = Array.from({ length: 20 }, () => Buffer.from('x'));
    const res = await postBatch(Buffer.concat([good!, ...junk].flatMap((e) => [e, Buffer.from('\n')])));
    expect(res.status).toBe(400);
    expect(res.json.error).toMatchObject({ code: 'COL_ERR_MALFORMED', message: expect.stringMatching(/refused at line 9: 8 lines failed verification/) });
    expect(res.bytes).toBeLessThan(512);
    expect(await evidenceCount()).toBe(0);
    expect(await metric('vcm_ingest_rejected_total{reason="malformed"}')).toBe(MAX_UNTRUSTED_FAILURES);
    // Fewer failures than that: answered line by line, and the good line is stored.
    const few = await postBatch(Buffer.concat([good!, Buffer.from('\nx\nx\n')]));
    expect(few.json.results?.map((r) => r.outcome)).toEqual(['accepted', 'rejected', 'rejected']);
    expect(await evidenceCount()).toBe(1);
  });

  it('a key id nobody enrolled costs one store read, however often it is sent', async () => {
    const stranger = { ...newKey(), hostname: 'nobody' };
    const before = store.keyReads;
    for (let i = 0; i < 3; i++) {
      const res = await postBatch(Buffer.concat([resultEnvelope(stranger, 1, null), Buffer.from('\n'), resultEnvelope(stranger, 2, null)]));
      expect(res.json.results?.map((r) => r.error?.code)).toEqual(['COL_ERR_UNKNOWN_AGENT', 'COL_ERR_UNKNOWN_AGENT']);
    }
    // keys/<id>.json once; the enrolled agent is in memory and costs none.
    expect(store.keyReads - before).toBe(1);
  });

  it('a source that keeps sending refused lines gets its batches stopped at the first one; verified batches from it, and other sources, are unaffected', async () => {
    const junk = (n: number) => Array.from({ length: n }, () => `{"payloadType":"x","payload":"","signatures":[{"keyid":"${randomBytes(32).toString('hex')}","sig":""}]}`);
    // While it has budget (64 refused lines), a batch stops at the 8th.
    for (let i = 0; i < 8; i++) {
      const res = await postBatch([...junk(MAX_UNTRUSTED_FAILURES), ...junk(4)].join('\n'));
      expect(res.json.error?.message).toMatch(/refused at line 8: 8 lines failed/);
    }
    // Spent: the next batch stops at its first refused line.
    const spent = await postBatch(junk(12).join('\n'));
    expect(spent).toMatchObject({ status: 400, json: { error: { code: 'COL_ERR_MALFORMED', message: expect.stringMatching(/refused at line 1: 1 lines failed/) } } });
    // An agent behind the same address still delivers: its lines verify.
    const envs = chain(agent, 2);
    const same = await postBatch(Buffer.concat(envs.flatMap((e) => [e, Buffer.from('\n')])));
    expect(same.json.results?.map((r) => r.outcome)).toEqual(['accepted', 'accepted']);
    // Another address has its own budget.
    const other = await postFrom('127.0.0.2', Buffer.from([...junk(3), ...junk(1)].join('\n')), 'application/x-ndjson');
    expect(JSON.parse(other).results).toHaveLength(4);
    // The budget comes back with time: 8 lines a second, so 8 s later a batch stops at the 8th again.
    clock = new Date(clock.getTime() + 8_000);
    const later = await postBatch([...junk(MAX_UNTRUSTED_FAILURES), ...junk(4)].join('\n'));
    expect(later.json.error?.message).toMatch(/refused at line 8: 8 lines failed/);
  });
});
