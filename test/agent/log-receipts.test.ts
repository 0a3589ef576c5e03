// Receipts for the vendor: the agent keeps the log index the collector gives each envelope,
// fetches its vendor log's checkpoint with a signed request, checks the pinned collector key
// signed it and that it extends the one held before. A collector showing a forked head (signed,
// but not an extension) is caught, logged with a stable code, and reported in the next envelope.
import { createHash, createPrivateKey, createPublicKey, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { filesSettled } from '../helpers/collector-probe.js';
import { AGENT_CLI, COLLECTOR_CLI, runCli, startCollectorProcess, tempDir, type CollectorProcess } from '../helpers/processes.js';

interface Status {
  log: { lastReceipt: { seq: number; logIndex: number } | null; checkpoint: { origin: string; size: number } | null; lastError: string | null };
}

let dir: Awaited<ReturnType<typeof tempDir>>;
let store: string;
let collector: CollectorProcess;
let admin: string;
let state: string;
let agentId: string;

const agent = (args: string[], env: NodeJS.ProcessEnv = {}) => runCli(AGENT_CLI, [...args, '--state-dir', state], { env, timeoutMs: 60_000 });
const status = async (): Promise<Status> => JSON.parse((await agent(['status', '--format', 'json'])).stdout) as Status;
const issue = async () => (await fetch(`${collector.url}/v1/log/acme/checkpoint`, { method: 'POST', headers: { authorization: `Bearer ${admin}` } })).text();

/** A C2SP checkpoint note signed with the collector's own key, written here from the specs. */
function signedCheckpoint(origin: string, size: number, root: Buffer): string {
  const key = createPrivateKey(readFileSync(path.join(store, 'secrets', 'collector-ed25519.pem')));
  const raw = createPublicKey(key).export({ type: 'spki', format: 'der' }).subarray(-32);
  const keyId = createHash('sha256').update(`${origin}\n`).update(Buffer.from([1])).update(raw).digest().subarray(0, 4);
  const text = `${origin}\n${size}\n${root.toString('base64')}\n`;
  return `${text}\n\u2014 ${origin} ${Buffer.concat([keyId, sign(null, Buffer.from(text), key)]).toString('base64')}\n`;
}

beforeAll(async () => {
  dir = await tempDir('receipts');
  store = path.join(dir.dir, 'store');
  state = path.join(dir.dir, 'agent');
  collector = await startCollectorProcess(store, { args: ['--log-origin', 'receipts.test/vcm', '--checkpoint-interval', '1h'] });
  admin = (await runCli(COLLECTOR_CLI, ['admin-token', 'create', '--role', 'admin', '--name', 'receipts', '--data-dir', store])).stdout.trim();
  const token = (await runCli(COLLECTOR_CLI, ['token', 'create', '--vendor', 'acme', '--data-dir', store])).stdout.trim();
  const enrolled = await agent(['enroll', '--collector', collector.url, '--token', token, '--hostname', 'receipts-host']);
  expect(enrolled.code, enrolled.stderr).toBe(0);
  agentId = / as agent ([0-9a-f]{64}) /.exec(enrolled.stdout)![1]!;
}, 60_000);

afterAll(async () => {
  await collector.stop();
  await dir.cleanup();
});

describe('receipts and checkpoints at the agent', () => {
  it('keeps the last receipt, and checks each new checkpoint: signed by the pinned key and consistent with the one before', async () => {
    const first = await agent(['run', '--once']);
    expect(first.code, first.stderr).toBe(0);
    const s1 = await status();
    expect(s1.log.lastReceipt).toMatchObject({ seq: expect.any(Number), logIndex: expect.any(Number) });
    // No checkpoint was issued yet: nothing to check, and that is not an error.
    expect(s1.log).toMatchObject({ checkpoint: null, lastError: null });

    await issue();
    expect((await agent(['run', '--once'])).code).toBe(0);
    const s2 = await status();
    expect(s2.log.checkpoint?.origin).toBe('receipts.test/vcm/acme');
    const held = s2.log.checkpoint!.size;
    expect(s2.log.lastReceipt!.logIndex).toBeGreaterThan(s1.log.lastReceipt!.logIndex);

    await issue();
    expect((await agent(['run', '--once'])).code).toBe(0);
    const s3 = await status();
    expect(s3.log.checkpoint!.size).toBeGreaterThan(held);
    expect(s3.log.lastError).toBeNull();
    const text = (await agent(['status'])).stdout;
    expect(text).toMatch(/log receipt\s+seq \d+ is entry \d+ of the vendor log/);
    expect(text).toMatch(/log checkpoint\s+receipts\.test\/vcm\/acme at \d+ entries, signed and consistent/);
  }, 180_000);

  it('a collector showing a head that does not extend the held one is caught: AGT_ERR_LOG_INCONSISTENT, and a signed log_inconsistent event in the next envelope', async () => {
    const held = (await status()).log.checkpoint!;
    // In front of the real collector, a proxy answers the checkpoint with a fork: signed by the
    // collector's own key (whoever controls the collector has it), larger, with another history.
    const proxy = createServer((req: IncomingMessage, res: ServerResponse) => {
      if (req.url?.startsWith('/v1/log/checkpoint') === true) {
        const note = signedCheckpoint(held.origin, held.size + 5, createHash('sha256').update('another history').digest());
        const body = Buffer.from(JSON.stringify({ checkpoint: note, consistency: { from: held.size, to: held.size + 5, hashes: [] } }));
        // Whoever holds the collector key also signs the answer over the agent's nonce (the
        // signed-answer message, written here from agent/README.md's description of it).
        const hex = (b: Buffer) => createHash('sha256').update(b).digest('hex');
        const message = `vcm-collector-answer v1\nGET\n${req.url}\n${String(req.headers['vcm-nonce'])}\n${hex(Buffer.alloc(0))}\n200\n${hex(body)}\n`;
        const key = createPrivateKey(readFileSync(path.join(store, 'secrets', 'collector-ed25519.pem')));
        res.writeHead(200, { 'content-type': 'application/json', 'vcm-collector-proof': sign(null, Buffer.from(message), key).toString('base64') }).end(body);
        return;
      }
      const up = request(new URL(req.url ?? '/', collector.url), { method: req.method, headers: req.headers }, (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      });
      req.pipe(up);
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const via = { VCM_COLLECTOR_URL: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}` };
    try {
      const run = await agent(['run', '--once'], via);
      expect(`${run.stdout}${run.stderr}`).toContain('AGT_ERR_LOG_INCONSISTENT');
      const s = await status();
      expect(s.log.lastError).toMatch(/^AGT_ERR_LOG_INCONSISTENT: /);
      // The checkpoint held is still the good one.
      expect(s.log.checkpoint!.size).toBe(held.size);
      expect(await readFile(path.join(state, 'log-checkpoint.txt'), 'utf8')).toContain(`\n${held.size}\n`);
    } finally {
      await new Promise<void>((resolve) => proxy.close(() => resolve()));
    }
    // The next cycle's envelope carries the event, signed, to the real collector.
    expect((await agent(['run', '--once'])).code).toBe(0);
    await filesSettled(collector.url);
    const events: { type: string; detail?: Record<string, unknown> }[] = [];
    for (const rel of await readdir(path.join(store, 'evidence'), { recursive: true })) {
      if (!rel.includes(`agent=${agentId}`) || !rel.endsWith('.dsse.json')) continue;
      const env = JSON.parse(await readFile(path.join(store, 'evidence', rel), 'utf8')) as { payload: string };
      const st = JSON.parse(Buffer.from(env.payload, 'base64').toString('utf8')) as { predicate: { events?: typeof events } };
      events.push(...(st.predicate.events ?? []));
    }
    expect(events).toContainEqual(expect.objectContaining({ type: 'log_inconsistent', detail: expect.objectContaining({ heldSize: held.size, shownSize: held.size + 5 }) }));
  }, 180_000);
});
