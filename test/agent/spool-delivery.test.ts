// The agent's chain, spool and delivery against an in-process collector on 127.0.0.1.
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { deliver, signAndSpool } from '../../agent/cycle.js';
import { enrollAgent } from '../../agent/enroll.js';
import { CollectorClient } from '../../agent/http.js';
import { Spool } from '../../agent/spool.js';
import { StateDir } from '../../agent/state.js';
import { sha256Hex } from '../../collector/contract.js';
import { parseCollectorConfig, startCollector, type RunningCollector } from '../../collector/server.js';
import { createToken } from '../../collector/tokens.js';
import { finding } from '../helpers/agents.js';
import { tempDir } from '../helpers/processes.js';

const log = pino({ level: 'silent' });
let dir: Awaited<ReturnType<typeof tempDir>>;
let collector: RunningCollector;
let state: StateDir;
let spool: Spool;

beforeEach(async () => {
  dir = await tempDir('agent');
  collector = await startCollector(parseCollectorConfig({ dataDir: path.join(dir.dir, 'store'), listen: '127.0.0.1:0' }), { log });
  state = new StateDir(path.join(dir.dir, 'state'));
  const { token } = await createToken(collector.store, { vendor: 'acme' });
  await enrollAgent(state, { collectorUrl: collector.url, token });
  spool = new Spool(state.spoolDir, state.quarantineDir);
});

afterEach(async () => {
  await collector.close();
  await dir.cleanup();
});

async function stored(): Promise<string[]> {
  const keys: string[] = [];
  for await (const k of collector.store.list('evidence/')) keys.push(k);
  return keys;
}

describe('chain and spool', () => {
  it('spools every envelope before sending, linked by hash, and keeps them while the collector is away', async () => {
    const { identity, key } = await state.requireIdentity();
    const signed = await signAndSpool(state, spool, identity, key, [finding(), finding({ check: 'disk_encryption', facts: null, status: 'unknown', reasons: [{ code: 'CHK_ERR_PERMISSION', message: 'x' }] })], 1);
    expect(signed.map((s) => s.seq)).toEqual([1, 2]);
    const entries = await spool.list();
    expect(entries.map((e) => e.seq)).toEqual([1, 2]);
    const first = await spool.read(entries[0]!);
    const second = JSON.parse(Buffer.from((JSON.parse((await spool.read(entries[1]!)).toString()) as { payload: string }).payload, 'base64').toString()) as { predicate: { prev: string } };
    expect(second.predicate.prev).toBe(sha256Hex(first));
    expect(await state.chain()).toEqual({ seq: 2, head: sha256Hex(await spool.read(entries[1]!)) });

    const away = new CollectorClient('http://127.0.0.1:9');
    const attempt = await deliver(spool, away, log);
    await away.close();
    expect(attempt).toEqual([{ seq: 1, outcome: 'kept', detail: expect.any(String) }]);
    expect((await spool.list()).length).toBe(2);

    const client = new CollectorClient(collector.url);
    const delivered = await deliver(spool, client, log);
    await client.close();
    expect(delivered.map((d) => d.outcome)).toEqual(['accepted', 'accepted']);
    expect(await spool.list()).toEqual([]);
    expect(await stored()).toHaveLength(2);
  });

  it('after a crash between spooling and writing the chain head, never reuses a sequence number', async () => {
    const { identity, key } = await state.requireIdentity();
    await signAndSpool(state, spool, identity, key, [finding()], 1);
    const headAfterOne = await state.chain();
    await signAndSpool(state, spool, identity, key, [finding({ durationMs: 2 })], 1);
    // Simulate the crash: chain.json still says seq 1 while seq 2 is in the spool.
    await state.writeChain(headAfterOne);
    await signAndSpool(state, spool, identity, key, [finding({ durationMs: 3 })], 1);
    const entries = await spool.list();
    expect(entries.map((e) => e.seq)).toEqual([1, 2, 3]);
    const client = new CollectorClient(collector.url);
    const delivered = await deliver(spool, client, log);
    await client.close();
    expect(delivered.map((d) => d.outcome)).toEqual(['accepted', 'accepted', 'accepted']);
    expect(await stored()).toHaveLength(3);
  });

  it('moves an envelope the collector refuses to quarantine, and delivers the rest', async () => {
    const { identity, key } = await state.requireIdentity();
    await signAndSpool(state, spool, identity, key, [finding(), finding()], 1);
    // Corrupt the first one on disk: the collector answers 4xx for it.
    const [first] = await spool.list();
    const bytes = await readFile(first!.file);
    bytes[bytes.length - 5] = bytes[bytes.length - 5]! ^ 0x01;
    await spool.put(1, bytes);
    const client = new CollectorClient(collector.url);
    const delivered = await deliver(spool, client, log);
    await client.close();
    expect(delivered.map((d) => d.outcome)).toEqual(['quarantined', 'accepted']);
    expect(await readdir(state.quarantineDir)).toEqual(['000000000001.dsse.json']);
    expect(await spool.list()).toEqual([]);
    expect(await stored()).toHaveLength(1);
  });

  it('keeps the key private and refuses to enroll the same state directory twice', async () => {
    const { token } = await createToken(collector.store, { vendor: 'acme' });
    await expect(enrollAgent(state, { collectorUrl: collector.url, token })).rejects.toMatchObject({ code: 'AGT_ERR_ALREADY_ENROLLED' });
    const identity = JSON.parse(await readFile(state.identityFile, 'utf8')) as Record<string, unknown>;
    expect(JSON.stringify(identity)).not.toContain('PRIVATE KEY');
  });
});
