// The log at start: evidence stored before the log existed (or whose entry a crash kept out) is
// entered, marked migrated, and the first checkpoint says so; a byte changed in a stored tile is
// found, reported and never repaired. The collector runs in-process on 127.0.0.1.
import { readFile, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createAdminToken } from '../../../collector/admin.js';
import { parseCollectorConfig, startCollector, type RunningCollector } from '../../../collector/server.js';
import { chain, enrollTestAgent, type TestAgent } from '../../helpers/agents.js';
import { expectAccepted } from '../../helpers/collector-probe.js';
import { sample, tempDir } from '../../helpers/processes.js';

let data: Awaited<ReturnType<typeof tempDir>>;
let collector: RunningCollector;
let agent: TestAgent;

const start = () => startCollector(parseCollectorConfig({ dataDir: data.dir, listen: '127.0.0.1:0', logOrigin: 'recovery.test/vcm' }), { log: pino({ level: 'silent' }) });

/** The log's entries, through the store (a round's own file is made just after it is durable). */
async function entries(): Promise<{ type: string; seq?: number; migrated?: boolean; receivedAt?: string | null }[]> {
  const out = [];
  for await (const key of collector.store.list('log/vendor=acme/wal/')) {
    for (const line of (await collector.store.get(key))!.toString('utf8').split('\n')) if (line !== '') out.push(JSON.parse(line) as { type: string });
  }
  return out;
}

beforeEach(async () => {
  data = await tempDir('log-recovery');
  collector = await start();
  agent = await enrollTestAgent(collector.url, collector.store);
});

afterEach(async () => {
  await collector.close();
  await data.cleanup();
});

describe('the log at start', () => {
  it('enters evidence stored before the log existed, in evidence order, marked migrated; the first checkpoint says how many', async () => {
    for (const e of chain(agent, 3)) await expectAccepted(collector.url, e);
    await collector.close();
    // The store as it was before the log: evidence, keys and policy only.
    await rm(path.join(data.dir, 'log'), { recursive: true });
    collector = await start();
    const got = await entries();
    expect(got.map((e) => [e.type, e.seq ?? null, e.migrated ?? null])).toEqual([
      ['key_event', null, null],
      ['envelope', 1, true],
      ['envelope', 2, true],
      ['envelope', 3, true],
    ]);
    expect(got.filter((e) => e.type === 'envelope').every((e) => e.receivedAt === null)).toBe(true);
    const note = collector.logs.get('acme')!.latest!.note;
    expect(note).toMatch(/^recovery\.test\/vcm\/acme\n4\n[A-Za-z0-9+/]{43}=\nissued [^\n]+\nmigrated 4\n\n/);
    // Nothing is entered twice at the next start.
    await collector.close();
    collector = await start();
    expect(await entries()).toHaveLength(4);
  });

  it('enters evidence whose entry a crash kept out, once, and answers its resend with the receipt', async () => {
    const [e1, e2] = chain(agent, 2);
    await expectAccepted(collector.url, e1!);
    await collector.close();
    // Evidence stored, entry not: what a crash between the two leaves (written behind its back).
    const key = (await readdir(path.join(data.dir, 'evidence'), { recursive: true })).find((f) => f.endsWith('.dsse.json'))!;
    const second = path.join(data.dir, 'evidence', path.dirname(key), `${String(2).padStart(12, '0')}-${(await import('node:crypto')).createHash('sha256').update(e2!).digest('hex')}.dsse.json`);
    await writeFile(second, e2!);
    collector = await start();
    const got = await entries();
    expect(got.filter((e) => e.type === 'envelope').map((e) => [e.seq, e.migrated])).toEqual([
      [1, false],
      [2, true],
    ]);
    const resent = await expectAccepted(collector.url, e2!, 'duplicate');
    expect((resent.json as { results: { logIndex?: number }[] }).results[0]?.logIndex).toBe(got.length - 1);
    expect(await entries()).toHaveLength(got.length);
  });

  it('a byte changed in a stored tile is found at start: vcm_log_consistent 0, no checkpoint over it, and the tile is left as it is', async () => {
    const envelopes = chain(agent, 5);
    for (const e of envelopes.slice(0, 3)) await expectAccepted(collector.url, e);
    const admin = await createAdminToken(collector.store, { name: 'recovery', role: 'admin' });
    const issue = () => fetch(`${collector.url}/v1/log/acme/checkpoint`, { method: 'POST', headers: { authorization: `Bearer ${admin}` } });
    expect((await issue()).status).toBe(200);
    await collector.close();
    const tileDir = path.join(data.dir, 'log/vendor=acme/tile/0');
    const tile = path.join(tileDir, (await readdir(tileDir, { recursive: true })).find((f) => f.includes('.p/'))!);
    const bytes = await readFile(tile);
    bytes[5]! ^= 0xff;
    await writeFile(tile, bytes);
    collector = await start();
    const metrics = await (await fetch(`${collector.url}/metrics`)).text();
    expect(sample(metrics, 'vcm_log_consistent{vendor="acme"}')).toBe(0);
    for (const e of envelopes.slice(3)) await expectAccepted(collector.url, e);
    const refused = await issue();
    expect(refused.status).toBe(503);
    expect(((await refused.json()) as { error: { message: string } }).error.message).toContain('disagrees with the entries');
    expect((await readFile(tile)).equals(bytes)).toBe(true);
  });
});
