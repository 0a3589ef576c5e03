// Backdated evidence (#17, medium 8): time runs forward along a host's chain. A result dated 2019,
// sent after a seq 1 dated now, was stored under date=2019-03-01/ and would fill an audit period
// after the fact. It is refused with COL_ERR_BACKDATED, and nothing is stored for it. The
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

beforeAll(async () => {
  data = await tempDir('backdated');
  collector = await startCollector(parseCollectorConfig({ dataDir: data.dir, listen: '127.0.0.1:0' }), { log: pino({ level: 'silent' }) });
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
    const now = new Date().toISOString();
    const first = resultEnvelope(agent, 1, null, finding({ collectedAt: now }));
    expect((await post(first)).results?.[0]?.outcome).toBe('accepted');
    const old = resultEnvelope(agent, 2, sha256Hex(first), finding({ collectedAt: '2019-03-01T10:00:00.000Z' }));
    const refused = await post(old);
    expect(refused.status).toBe(422);
    expect(refused.error?.code).toBe('COL_ERR_BACKDATED');
    expect(refused.error?.message).toContain('collected 2019-03-01T10:00:00.000Z, before the day of seq 1');
    const days = await readdir(path.join(data.dir, 'evidence', 'vendor=acme'));
    expect(days).toEqual([`date=${now.slice(0, 10)}`]);
    const next = resultEnvelope(agent, 2, sha256Hex(first), finding({ collectedAt: new Date().toISOString() }));
    expect((await post(next)).results?.[0]?.outcome).toBe('accepted');
  });
});
