// Delivery against a stub collector on 127.0.0.1 (a mock: the real collector never answers 503
// with Retry-After, 429, or a short batch answer, so those paths need one), plus the backoff
// arithmetic and the Deliverer's timers under fake timers.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Deliverer, backoffDelayMs, deliveryPass, type PassResult } from '../../../agent/delivery.js';
import { CollectorClient, checkCollectorUrl, retryAfterMs } from '../../../agent/http.js';
import type { DeliverySpool, QuarantineReason } from '../../../agent/ledger.js';
import type { SpoolEntry } from '../../../agent/spool.js';

const log = pino({ level: 'silent' });

/** An in-memory spool: envelopes are `{"seq":N}` so the stub can tell them apart. */
function memorySpool(seqs: number[]) {
  const entries = new Map<number, SpoolEntry>(seqs.map((seq) => [seq, { seq, file: `mem:${seq}`, kind: 'result' as const, size: 10 }]));
  const quarantined: { seq: number; why: QuarantineReason }[] = [];
  const spool: DeliverySpool = {
    list: async () => [...entries.values()].sort((a, b) => a.seq - b.seq),
    read: async (e) => Buffer.from(JSON.stringify({ seq: e.seq })),
    acknowledge: async (es) => {
      for (const e of es) entries.delete(e.seq);
    },
    quarantine: async (e, why) => {
      entries.delete(e.seq);
      quarantined.push({ seq: e.seq, why });
      return `q:${e.seq}`;
    },
  };
  return { spool, entries, quarantined };
}

interface Req {
  contentType: string;
  seqs: number[];
}

let server: Server;
let url: string;
let requests: Req[];
let handler: (req: Req, res: ServerResponse) => void;
const sockets = new Set<Socket>();

function answer(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

const accept = (req: Req, res: ServerResponse) => answer(res, 200, { results: req.seqs.map((seq) => ({ seq, outcome: 'accepted' })) });

beforeEach(async () => {
  requests = [];
  handler = accept;
  server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString();
      const r: Req = {
        contentType: req.headers['content-type'] ?? '',
        seqs: text.split('\n').filter((l) => l !== '').map((l) => (JSON.parse(l) as { seq: number }).seq),
      };
      requests.push(r);
      handler(r, res);
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterEach(async () => {
  vi.useRealTimers();
  for (const s of sockets) s.destroy();
  await new Promise((r) => server.close(r));
});

describe('delivery pass (stub collector)', () => {
  it('sends in sequence order, in NDJSON batches within the count and byte limits, and empties the spool', async () => {
    const { spool, entries } = memorySpool([5, 1, 3, 2, 4, 6, 7]);
    const client = new CollectorClient(url);
    const pass = await deliveryPass(spool, client, { log, limits: { maxCount: 3, maxBytes: 1 << 20 } });
    await client.close();
    expect(requests.map((r) => r.seqs)).toEqual([[1, 2, 3], [4, 5, 6], [7]]);
    expect(requests[0]!.contentType).toBe('application/x-ndjson');
    expect(requests[2]!.contentType).toBe('application/json');
    expect(pass).toMatchObject({ accepted: 7, stopped: null });
    expect(entries.size).toBe(0);
  });

  it('a duplicate acknowledgement removes the envelope like an accepted one', async () => {
    handler = (req, res) => answer(res, 200, { results: req.seqs.map((seq) => ({ seq, outcome: 'duplicate' })) });
    const { spool, entries } = memorySpool([1, 2]);
    const client = new CollectorClient(url);
    const pass = await deliveryPass(spool, client, { log });
    await client.close();
    expect(pass).toMatchObject({ duplicates: 2, accepted: 0, stopped: null });
    expect(entries.size).toBe(0);
  });

  it('a line rejected inside a 200 batch goes to quarantine alone; the rest are delivered', async () => {
    handler = (req, res) =>
      answer(res, 200, {
        results: req.seqs.map((seq) => (seq === 2 ? { seq: null, outcome: 'rejected', error: { code: 'COL_ERR_SCHEMA', message: 'bad' } } : { seq, outcome: 'accepted' })),
      });
    const { spool, entries, quarantined } = memorySpool([1, 2, 3]);
    const client = new CollectorClient(url);
    const pass = await deliveryPass(spool, client, { log });
    await client.close();
    expect(quarantined).toEqual([{ seq: 2, why: { status: 200, code: 'COL_ERR_SCHEMA', message: 'bad' } }]);
    expect(pass.deliveries.map((d) => d.outcome)).toEqual(['accepted', 'quarantined', 'accepted']);
    expect(entries.size).toBe(0);
  });

  it('a 4xx for a batch is retried one envelope at a time, and only the refused one is quarantined', async () => {
    handler = (req, res) => {
      if (req.seqs.includes(3)) return answer(res, 400, { error: { code: 'COL_ERR_MALFORMED', message: 'nope' } });
      accept(req, res);
    };
    const { spool, entries, quarantined } = memorySpool([1, 2, 3, 4, 5]);
    const client = new CollectorClient(url);
    const pass = await deliveryPass(spool, client, { log });
    await client.close();
    expect(requests.map((r) => r.seqs)).toEqual([[1, 2, 3, 4, 5], [1], [2], [3], [4, 5]]);
    expect(quarantined.map((q) => [q.seq, q.why.status, q.why.code])).toEqual([[3, 400, 'COL_ERR_MALFORMED']]);
    expect(pass).toMatchObject({ accepted: 4, quarantined: 1, stopped: null });
    expect(entries.size).toBe(0);
  });

  it.each([500, 503, 408, 429])('HTTP %i keeps everything and stops the pass', async (status) => {
    handler = (_req, res) => answer(res, status, { error: { code: 'X', message: 'later' } }, { 'retry-after': '7' });
    const { spool, entries } = memorySpool([1, 2]);
    const client = new CollectorClient(url);
    const pass = await deliveryPass(spool, client, { log });
    await client.close();
    expect(entries.size).toBe(2);
    expect(pass.stopped).toMatchObject({ reason: 'status', status, retryAfterMs: 7000 });
    expect(pass.deliveries).toEqual([{ seq: 1, outcome: 'kept', detail: 'X: later' }]);
  });

  it('a network error keeps everything', async () => {
    const { spool, entries } = memorySpool([1]);
    const client = new CollectorClient('http://127.0.0.1:9');
    const pass = await deliveryPass(spool, client, { log });
    await client.close();
    expect(entries.size).toBe(1);
    expect(pass.stopped?.reason).toBe('unreachable');
  });

  it('an answer with fewer outcomes than lines is a protocol error: nothing is acknowledged', async () => {
    handler = (req, res) => answer(res, 200, { results: req.seqs.slice(0, 1).map((seq) => ({ seq, outcome: 'accepted' })) });
    const { spool, entries } = memorySpool([1, 2, 3]);
    const client = new CollectorClient(url);
    const pass = await deliveryPass(spool, client, { log });
    await client.close();
    expect([...entries.keys()]).toEqual([1, 2, 3]);
    expect(pass.stopped).toMatchObject({ reason: 'protocol', detail: 'the collector answered 1 outcomes for 3 envelopes' });
    expect(pass.deliveries.map((d) => [d.seq, d.outcome])).toEqual([[1, 'kept'], [2, 'kept'], [3, 'kept']]);
  });

  it('an answer whose outcomes name other seqs than the lines sent is a protocol error', async () => {
    handler = (req, res) => answer(res, 200, { results: req.seqs.map((seq) => ({ seq: seq + 1, outcome: 'accepted' })) });
    const { spool, entries } = memorySpool([1, 2]);
    const client = new CollectorClient(url);
    const pass = await deliveryPass(spool, client, { log });
    await client.close();
    expect(entries.size).toBe(2);
    expect(pass.stopped).toMatchObject({ reason: 'protocol', detail: 'the collector answered seq 2 for seq 1' });
  });

  it('closes idle connections before the collector does, whatever keep-alive the server announces', async () => {
    // The stub announces 65 s (as the collector does); the agent is set to 1 s.
    const { spool } = memorySpool([1]);
    const client = new CollectorClient(url, { keepAliveTimeoutMs: 1000 });
    await deliveryPass(spool, client, { log });
    expect(sockets.size).toBe(1);
    const closedAt = await new Promise<number>((resolve) => [...sockets][0]!.once('close', () => resolve(Date.now())));
    const started = Date.now();
    expect(closedAt - started).toBeLessThan(5000);
    await client.close();
  });
});

describe('URLs and Retry-After', () => {
  it('refuses plain HTTP except to loopback', () => {
    expect(() => checkCollectorUrl('http://collector.example:8470')).toThrow(expect.objectContaining({ code: 'AGT_ERR_INSECURE_URL' }));
    for (const ok of ['http://127.0.0.1:1', 'http://[::1]:1', 'http://localhost:1', 'https://collector.example']) expect(checkCollectorUrl(ok).href).toContain(':');
    expect(() => checkCollectorUrl('ftp://x')).toThrow(expect.objectContaining({ code: 'AGT_ERR_CONFIG' }));
  });

  it('reads Retry-After as seconds or as an HTTP date', () => {
    const now = new Date('2026-11-22T10:00:00Z');
    expect(retryAfterMs({ headers: { 'retry-after': '120' } }, now)).toBe(120_000);
    expect(retryAfterMs({ headers: { 'retry-after': 'Sun, 22 Nov 2026 10:00:30 GMT' } }, now)).toBe(30_000);
    expect(retryAfterMs({ headers: { 'retry-after': 'soon' } }, now)).toBeNull();
    expect(retryAfterMs({ headers: {} }, now)).toBeNull();
  });

  it('refuses a client certificate without its key', () => {
    expect(() => new CollectorClient(url, { certFile: '/x' })).toThrow(expect.objectContaining({ code: 'AGT_ERR_CONFIG' }));
  });
});

describe('backoff', () => {
  const opts = { initialMs: 1000, maxMs: 60_000 };

  it('grows exponentially with jitter between half and all of the step, up to the cap', () => {
    for (const [attempt, lo, hi] of [
      [1, 500, 1000],
      [2, 1000, 2000],
      [4, 4000, 8000],
      [10, 30_000, 60_000],
    ] as const) {
      expect(backoffDelayMs(attempt, null, { ...opts, random: () => 0 })).toBe(lo);
      expect(backoffDelayMs(attempt, null, { ...opts, random: () => 1 })).toBe(hi);
    }
  });

  it('honours Retry-After as a floor, with a little jitter, capped at an hour', () => {
    expect(backoffDelayMs(1, 30_000, { ...opts, random: () => 0 })).toBe(30_000);
    expect(backoffDelayMs(1, 30_000, { ...opts, random: () => 1 })).toBe(33_000);
    expect(backoffDelayMs(1, 86_400_000, { ...opts, random: () => 0 })).toBe(3_600_000);
  });
});

describe('Deliverer (fake timers)', () => {
  function stopped(retryAfterMs: number | null = null): PassResult {
    return { deliveries: [], accepted: 0, duplicates: 0, quarantined: 0, lastReceipt: null, stopped: { reason: 'status', status: 503, retryAfterMs, detail: 'x' } };
  }
  const ok: PassResult = { deliveries: [], accepted: 1, duplicates: 0, quarantined: 0, lastReceipt: null, stopped: null };

  it('retries on the backoff timer, does not cut a backoff short on a kick, and resets after success', async () => {
    vi.useFakeTimers();
    const results = [stopped(), stopped(), stopped(10_000), ok];
    const run = vi.fn(async () => results.shift() ?? ok);
    const passes: (number | null)[] = [];
    const d = new Deliverer(run, { log, backoff: { initialMs: 1000, maxMs: 60_000, random: () => 1 }, onPass: (_p, next) => void passes.push(next.retryInMs) });
    d.kick();
    await vi.advanceTimersByTimeAsync(0);
    expect(run).toHaveBeenCalledTimes(1);
    d.kick(); // during backoff: no extra pass
    await vi.advanceTimersByTimeAsync(999);
    expect(run).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(run).toHaveBeenCalledTimes(2);
    await vi.advanceTimersByTimeAsync(2000);
    expect(run).toHaveBeenCalledTimes(3);
    // Retry-After 10 s (+ up to 10 % jitter) beats the 4 s step.
    await vi.advanceTimersByTimeAsync(10_999);
    expect(run).toHaveBeenCalledTimes(3);
    await vi.advanceTimersByTimeAsync(1);
    expect(run).toHaveBeenCalledTimes(4);
    expect(passes).toEqual([1000, 2000, 11_000, null]);
    expect(d.retryAt).toBeNull();
    await d.stop();
  });

  it('a kick while a pass runs makes one more pass after it, not two', async () => {
    vi.useFakeTimers();
    let release!: () => void;
    const run = vi.fn(() => new Promise<PassResult>((r) => (release = () => r(ok))));
    const d = new Deliverer(run, { log, backoff: { initialMs: 1000, maxMs: 1000 } });
    d.kick();
    d.kick();
    d.kick();
    await vi.advanceTimersByTimeAsync(0);
    release();
    await vi.advanceTimersByTimeAsync(0);
    release();
    await vi.advanceTimersByTimeAsync(0);
    expect(run).toHaveBeenCalledTimes(2);
    await d.stop();
  });

  it('stop makes one last pass within the flush deadline, and none while backing off', async () => {
    const run = vi.fn(async () => ok);
    const d = new Deliverer(run, { log, backoff: { initialMs: 1000, maxMs: 1000 } });
    await d.stop({ flushMs: 1000 });
    expect(run).toHaveBeenCalledTimes(1);
    const failing = vi.fn(async () => stopped());
    const e = new Deliverer(failing, { log, backoff: { initialMs: 60_000, maxMs: 60_000 } });
    e.kick();
    await vi.waitFor(() => expect(e.retryAt).not.toBeNull());
    await e.stop({ flushMs: 1000 });
    expect(failing).toHaveBeenCalledTimes(1);
  });
});
