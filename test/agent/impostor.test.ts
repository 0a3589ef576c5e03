// An agent talks only to the collector it enrolled with (#16). The collector signs every answer to
// an agent over the agent's fresh nonce; the agent pinned the collector key at enrollment, asks
// the server to prove itself before it sends any result, and refuses anything else with
// AGT_ERR_COLLECTOR_UNVERIFIED. Here a real collector and a real agent (its CLI) meet impostors on
// 127.0.0.1: one that answers like the reproduction, one that replays answers the real
// collector signed earlier, and one that relays to the real collector but alters what it says.
import { createHash, randomBytes } from 'node:crypto';
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_CLI, COLLECTOR_CLI, runCli, startCollectorProcess, tempDir, type CollectorProcess } from '../helpers/processes.js';

interface Seen {
  method: string;
  url: string;
  body: Buffer;
}

/** A server on loopback that records every request and answers with `answer`. */
async function impostor(answer: (req: IncomingMessage, body: Buffer, res: ServerResponse) => void): Promise<{ url: string; seen: Seen[]; close: () => Promise<void> }> {
  const seen: Seen[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      seen.push({ method: req.method ?? '', url: req.url ?? '', body });
      answer(req, body, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** GET `target` from the real collector with a nonce of our choosing: its body and headers. */
function capture(base: string, target: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, string>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(new URL(target, base), { headers: { 'vcm-nonce': randomBytes(32).toString('base64url'), ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers as Record<string, string>, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('an agent sends nothing to a server that does not prove it is its collector', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let store: string;
  let state: string;
  let collector: CollectorProcess;
  const env = { VCM_CONFIG: '' };
  const agent = (args: string[], extra: Record<string, string> = {}) => runCli(AGENT_CLI, [...args, '--state-dir', state], { env: { ...env, ...extra } });
  const statusJson = async () =>
    JSON.parse((await agent(['status', '--format', 'json'])).stdout) as {
      policy: { lastFetchError: string | null };
      spoolDepth: number;
      lastError: { code: string; message: string } | null;
    };
  const spooled = async () => (await readdir(path.join(state, 'spool'))).filter((f) => f.endsWith('.dsse.json')).length;

  beforeAll(async () => {
    dir = await tempDir('impostor');
    store = path.join(dir.dir, 'store');
    state = path.join(dir.dir, 'agent');
    collector = await startCollectorProcess(store);
    const token = (await runCli(COLLECTOR_CLI, ['token', 'create', '--vendor', 'acme', '--data-dir', store])).stdout.trim();
    const enrolled = await runCli(AGENT_CLI, ['enroll', '--collector', collector.url, '--token', token, '--state-dir', state], { env });
    expect(enrolled.code, enrolled.stderr).toBe(0);
    // One good cycle: the agent now holds a cached policy, a chain, and an empty spool.
    const first = await agent(['run', '--once']);
    expect(first.code, first.stderr).toBe(0);
  }, 120_000);
  afterAll(async () => {
    await collector.stop();
    await dir.cleanup();
  });

  it("the issue's impostor (a policy-shaped document, and {\"results\":[]}) gets no result; run --once exits 2 naming what waits in the spool", async () => {
    const policy = await readFile(path.join(state, 'policy.json'));
    const fake = await impostor((req, _body, res) => {
      if (req.url?.startsWith('/v1/policy') === true) return res.writeHead(200, { 'content-type': 'application/json' }).end(policy);
      if (req.url === '/v1/results') return res.writeHead(200, { 'content-type': 'application/json' }).end('{"results":[]}');
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"service":"vcm-collector"}');
    });
    try {
      const run = await agent(['run', '--once'], { VCM_COLLECTOR_URL: fake.url });
      expect(run.code, run.stderr).toBe(2);
      const waiting = await spooled();
      expect(waiting).toBeGreaterThan(0);
      expect(run.stderr).toContain(`AGT_ERR_COLLECTOR_UNVERIFIED: ${waiting} result(s) wait in the spool`);
      // It saw the policy request and the proof request, and never a result.
      expect(fake.seen.map((s) => `${s.method} ${s.url.split('?')[0]}`)).toEqual(['GET /v1/policy', 'GET /v1/hello']);
      expect(fake.seen.every((s) => s.body.length === 0)).toBe(true);
      const s = await statusJson();
      expect(s.policy.lastFetchError).toMatch(/^AGT_ERR_COLLECTOR_UNVERIFIED: http:\/\/127\.0\.0\.1:\d+ gave an unsigned answer \(HTTP 200\)/);
      expect(s.lastError?.code).toBe('AGT_ERR_DELIVERY');
      expect(s.lastError?.message).toMatch(/^AGT_ERR_COLLECTOR_UNVERIFIED: /);
      expect(s.spoolDepth).toBe(waiting);
    } finally {
      await fake.close();
    }
  }, 60_000);

  it('replaying answers the real collector signed earlier (its hello, this agent\'s own policy) gets nothing either: the proof is bound to a nonce', async () => {
    const hello = await capture(collector.url, '/v1/hello');
    const policy = await capture(collector.url, '/v1/policy');
    expect(hello.headers['vcm-collector-proof']).toMatch(/^[A-Za-z0-9+/]{86}==$/);
    expect(policy.headers['vcm-collector-proof']).toMatch(/^[A-Za-z0-9+/]{86}==$/);
    const fake = await impostor((req, _body, res) => {
      const replay = req.url?.startsWith('/v1/policy') === true ? policy : hello;
      res.writeHead(200, { 'content-type': 'application/json', 'vcm-collector-proof': replay.headers['vcm-collector-proof']! }).end(replay.body);
    });
    try {
      const before = await spooled();
      const run = await agent(['run', '--once'], { VCM_COLLECTOR_URL: fake.url });
      expect(run.code).toBe(2);
      expect(run.stderr).toContain('AGT_ERR_COLLECTOR_UNVERIFIED');
      expect(fake.seen.filter((s) => s.method === 'POST')).toEqual([]);
      expect(await spooled()).toBeGreaterThan(before);
      expect((await statusJson()).policy.lastFetchError).toMatch(/^AGT_ERR_COLLECTOR_UNVERIFIED: .*a signature that does not verify|^AGT_ERR_COLLECTOR_UNVERIFIED: .*whose signature does not verify/);
    } finally {
      await fake.close();
    }
  }, 60_000);

  it('a relay that passes the proof through but alters the policy is caught, and the cached policy stays', async () => {
    // What the impostors were refused is still in the spool.
    expect(await spooled()).toBeGreaterThan(0);
    const cachedBefore = await readFile(path.join(state, 'policy.json'), 'utf8');
    const relay = await impostor((req, body, res) => {
      const up = request(new URL(req.url ?? '/', collector.url), { method: req.method, headers: req.headers }, (r) => {
        const chunks: Buffer[] = [];
        r.on('data', (c: Buffer) => chunks.push(c));
        r.on('end', () => {
          let answer = Buffer.concat(chunks);
          if (req.url?.startsWith('/v1/policy') === true) {
            const doc = JSON.parse(answer.toString('utf8')) as { checks: Record<string, { enabled: boolean }> };
            for (const c of Object.values(doc.checks)) c.enabled = false;
            answer = Buffer.from(JSON.stringify(doc));
          }
          const { 'transfer-encoding': _chunked, ...headers } = r.headers;
          res.writeHead(r.statusCode ?? 502, { ...headers, 'content-length': String(answer.length) }).end(answer);
        });
      });
      up.end(body);
    });
    try {
      const run = await agent(['run', '--once'], { VCM_COLLECTOR_URL: relay.url });
      // The results themselves went through the relay unaltered, proved and acknowledged.
      expect(run.code, run.stderr).toBe(0);
      expect(await spooled()).toBe(0);
      expect((await statusJson()).policy.lastFetchError).toMatch(/^AGT_ERR_COLLECTOR_UNVERIFIED: .*signature does not verify/);
      expect(await readFile(path.join(state, 'policy.json'), 'utf8')).toBe(cachedBefore);
    } finally {
      await relay.close();
    }
  }, 60_000);

  it('back at the real collector, the policy refreshes again and run --once exits 0', async () => {
    const run = await agent(['run', '--once']);
    expect(run.code, run.stderr).toBe(0);
    expect(await spooled()).toBe(0);
    expect((await statusJson()).policy.lastFetchError).toBeNull();
  }, 60_000);

  it('the collector signs every answer to a nonce (errors too) with its key, over the request and the answer; none without a nonce', async () => {
    const { createPublicKey, verify } = await import('node:crypto');
    const pem = (await runCli(COLLECTOR_CLI, ['key', 'fingerprint', '--data-dir', store, '--format', 'json'])).stdout;
    const key = createPublicKey((JSON.parse(pem) as { publicKey: string }).publicKey);
    const hex = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    for (const target of ['/v1/hello', '/v1/policy', '/v1/nothing-here', '/v1/log/checkpoint']) {
      const nonce = randomBytes(32).toString('base64url');
      const res = await capture(collector.url, target, { 'vcm-nonce': nonce });
      // The message, written here from agent/README.md's description of the signed answer.
      const message = `vcm-collector-answer v1\nGET\n${target}\n${nonce}\n${hex(Buffer.alloc(0))}\n${res.status}\n${hex(res.body)}\n`;
      expect(verify(null, Buffer.from(message), key, Buffer.from(res.headers['vcm-collector-proof'] ?? '', 'base64')), `${target} (${res.status})`).toBe(true);
    }
    const plain = await new Promise<Record<string, unknown>>((resolve, reject) => request(new URL('/v1/hello', collector.url), (r) => resolve(r.headers)).on('error', reject).end());
    expect(plain['vcm-collector-proof']).toBeUndefined();
  }, 60_000);

  it('enroll --collector-fingerprint: a wrong fingerprint fails before the token is sent (the token still works); the right one enrolls', async () => {
    const token = (await runCli(COLLECTOR_CLI, ['token', 'create', '--vendor', 'acme', '--data-dir', store])).stdout.trim();
    const fp = (await runCli(COLLECTOR_CLI, ['key', 'fingerprint', '--data-dir', store])).stdout.trim().split(/\s+/)[0]!;
    expect(fp).toMatch(/^[0-9a-f]{64}$/);
    const wrong = createHash('sha256').update('another key').digest('hex');
    const other = path.join(dir.dir, 'agent-2');
    const refused = await runCli(AGENT_CLI, ['enroll', '--collector', collector.url, '--token', token, '--state-dir', other, '--collector-fingerprint', wrong], { env });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(`AGT_ERR_COLLECTOR_UNVERIFIED: the collector at ${collector.url} holds the key ${fp}, not ${wrong}; the token was not sent`);
    const ok = await runCli(AGENT_CLI, ['enroll', '--collector', collector.url, '--token', token, '--state-dir', other, '--collector-fingerprint', fp.toUpperCase()], { env });
    expect(ok.code, ok.stderr).toBe(0);
  }, 60_000);
});
