// The daemon started in-process (startDaemon) against an in-process collector: the same wiring
// as `vcm-agent run`, observable from the test (its scheduler, its ledger, its log lines).
import path from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../agent/config.js';
import { startDaemon } from '../../../agent/daemon.js';
import { enrollAgent } from '../../../agent/enroll.js';
import { StateDir } from '../../../agent/state.js';
import { parseCollectorConfig, startCollector, type RunningCollector } from '../../../collector/server.js';
import { createToken } from '../../../collector/tokens.js';
import { tempDir } from '../../helpers/processes.js';
import { FAST_ENV } from './harness.js';

let dir: Awaited<ReturnType<typeof tempDir>>;
let collector: RunningCollector;
let stateDir: string;

beforeEach(async () => {
  dir = await tempDir('inproc');
  collector = await startCollector(parseCollectorConfig({ dataDir: path.join(dir.dir, 'store'), listen: '127.0.0.1:0' }), { log: pino({ level: 'silent' }) });
  stateDir = path.join(dir.dir, 'agent');
  const { token } = await createToken(collector.store, { vendor: 'acme' });
  await enrollAgent(new StateDir(stateDir), { collectorUrl: collector.url, token });
});

afterEach(async () => {
  await collector.close();
  await dir.cleanup();
});

function capture(): { log: pino.Logger; lines: { msg: string; [k: string]: unknown }[]; until: (pred: (l: { msg: string; [k: string]: unknown }) => boolean, ms?: number) => Promise<void> } {
  const lines: { msg: string; [k: string]: unknown }[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const text of chunk.toString().split('\n')) if (text !== '') lines.push(JSON.parse(text) as { msg: string });
      cb();
    },
  });
  const until = async (pred: (l: { msg: string }) => boolean, ms = 20_000) => {
    const deadline = Date.now() + ms;
    while (!lines.some(pred)) {
      if (Date.now() > deadline) throw new Error(`timed out; log: ${lines.slice(-10).map((l) => l.msg).join(' | ')}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  };
  return { log: pino({ level: 'debug' }, stream), lines, until };
}

describe('daemon (in-process)', () => {
  it('plans the policy\'s checks, runs them, delivers, and stops cleanly with the head flushed', async () => {
    const { log, lines, until } = capture();
    const loaded = loadConfig({ stateDir, interval: 1 }, { ...FAST_ENV, VCM_CONFIG: '' });
    const daemon = await startDaemon(loaded, log, { signals: false });
    expect(daemon.scheduler.plan().map((p) => p.id).sort()).toEqual(['credential_age', 'disk_encryption', 'open_ports', 'usb_policy', 'vpn']);
    await until((l) => l.msg === 'cycle done' && l.delivered === true);
    const code = await daemon.stop('test');
    expect(code).toBe(0);
    expect(await daemon.done).toBe(0);
    const state = new StateDir(stateDir);
    expect((await state.chain()).seq).toBe(daemon.ledger.head.seq);
    expect(lines.find((l) => l.msg === 'agent stopped')).toMatchObject({ reason: 'test', exitCode: 0 });
    const stored: string[] = [];
    for await (const k of collector.store.list('evidence/')) stored.push(k);
    expect(stored.length).toBe(daemon.ledger.head.seq);
  }, 30_000);

  it('refuses a second daemon on the same state directory', async () => {
    const { log } = capture();
    const loaded = loadConfig({ stateDir }, { ...FAST_ENV, VCM_CONFIG: '' });
    const daemon = await startDaemon(loaded, log, { signals: false });
    await expect(startDaemon(loaded, log, { signals: false })).rejects.toMatchObject({ code: 'AGT_ERR_STATE_LOCKED' });
    await daemon.stop();
  });
});
