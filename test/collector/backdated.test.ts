// Backdated evidence (#17, medium 8): time runs forward along a host's chain. A result dated 2019,
// sent after a seq 1 dated now, was stored under date=2019-03-01/ and would fill an audit period
// after the fact. A new agent's seq 1 dated 2020 was stored too. Both are refused with
// COL_ERR_BACKDATED, and nothing is stored for them. The
// collector runs in-process on 127.0.0.1 with the filesystem store; requests are real HTTP.
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../collector/contract.js';
import { parseCollectorConfig, startCollector, type RunningCollector } from '../../collector/server.js';
import { enrollTestAgent, finding, resultEnvelope, type TestAgent } from '../helpers/agents.js';
import { tempDir } from '../helpers/processes.js';

let data: Awaited<ReturnType<typeof tempDir>>;
let collector: RunningCollector;
let agent: TestAgent;
/** The collector's clock: enrollment on 20 November, then what each test sets. */
let clock = new Date('2026-11-20T10:00:00.000Z');

beforeAll(async () => {
  data = await tempDir('backdated');
  collector = await startCollector(parseCollectorConfig({ dataDir: data.dir, listen: '127.0.0.1:0' }), { log: pino({ level: 'silent' }), now: () => clock });
  agent = await enrollTestAgent(collector.url, collector.store);
});
afterAll(async () => {
  await collector.close();
  await data.cleanup();
});

async function post(body: Buffer): Promise<{ status: number; results?: { outcome: string }[]; error?: { code: string; message: string } }> {
  const res = await fetch(`${collector.url}/v1/results`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  return { status: res.status, ...((await res.json()) as object) };
}

describe('a result dated before the one it follows', () => {
  it('is refused with COL_ERR_BACKDATED, nothing is stored under its date, and a result dated after still links', async () => {
    clock = new Date('2026-11-22T10:00:00.000Z');
    const first = resultEnvelope(agent, 1, null, finding({ collectedAt: clock.toISOString() }));
    expect((await post(first)).results?.[0]?.outcome).toBe('accepted');
    // After enrollment (the 20th), but before the day of seq 1 (the 22nd).
    const old = resultEnvelope(agent, 2, sha256Hex(first), finding({ collectedAt: '2026-11-21T10:00:00.000Z' }));
    const refused = await post(old);
    expect(refused.status).toBe(422);
    expect(refused.error?.code).toBe('COL_ERR_BACKDATED');
    expect(refused.error?.message).toContain('collected 2026-11-21T10:00:00.000Z, before the day of seq 1 (2026-11-22)');
    const days = await readdir(path.join(data.dir, 'evidence', 'vendor=acme'));
    expect(days).toEqual(['date=2026-11-22']);
    const next = resultEnvelope(agent, 2, sha256Hex(first), finding({ collectedAt: '2026-11-22T10:05:00.000Z' }));
    expect((await post(next)).results?.[0]?.outcome).toBe('accepted');
  });
});

describe('a result dated before its agent enrolled', () => {
  it('is refused with COL_ERR_BACKDATED even as seq 1, and the skew still lets a clock a little behind through', async () => {
    clock = new Date('2026-11-25T10:00:00.000Z');
    const fresh = await enrollTestAgent(collector.url, collector.store, 'beta', 'host-2');
    const old = resultEnvelope(fresh, 1, null, finding({ collectedAt: '2020-06-01T10:00:00.000Z' }));
    const refused = await post(old);
    expect(refused.status).toBe(422);
    expect(refused.error?.code).toBe('COL_ERR_BACKDATED');
    expect(refused.error?.message).toBe('collected 2020-06-01T10:00:00.000Z, before the agent enrolled (2026-11-25T10:00:00.000Z)');
    await expect(readdir(path.join(data.dir, 'evidence', 'vendor=beta'))).rejects.toMatchObject({ code: 'ENOENT' });
    // A clock two minutes behind the collector's is within the 5-minute skew.
    const behind = resultEnvelope(fresh, 1, null, finding({ collectedAt: '2026-11-25T09:58:00.000Z' }));
    expect((await post(behind)).results?.[0]?.outcome).toBe('accepted');
  });
});
