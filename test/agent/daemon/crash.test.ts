// The daemon killed with SIGKILL at random points during runs, against a real collector process:
// no sequence number reused, nothing lost or stored twice, and the stored chain verifies end to end.
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sample, startCollectorProcess, tempDir, type CollectorProcess } from '../../helpers/processes.js';
import { AgentDaemon, enroll, sleep, storedEvidence, verifyChain } from './harness.js';

const KILLS = 24;

describe('daemon under SIGKILL (real collector, real processes)', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let collector: CollectorProcess;
  let stateDir: string;
  let agentId: string;

  beforeAll(async () => {
    dir = await tempDir('crash');
    collector = await startCollectorProcess(path.join(dir.dir, 'store'));
    stateDir = path.join(dir.dir, 'agent');
    agentId = await enroll(collector.url, path.join(dir.dir, 'store'), stateDir);
  });

  afterAll(async () => {
    await collector?.stop();
    await dir?.cleanup();
  });

  it(`${KILLS} kills at random points: no seq reused, no envelope lost or duplicated, the chain verifies`, async () => {
    // A seeded generator, so that a failure can be replayed: the seed is in the test output.
    let seed = Number(process.env.VCM_CRASH_SEED ?? Date.now() % 1_000_000);
    console.log(`crash test seed ${seed} (VCM_CRASH_SEED to replay)`);
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const killedDuring: string[] = [];
    for (let i = 0; i < KILLS; i++) {
      const daemon = new AgentDaemon(['--state-dir', stateDir, '--interval', '1', '--log-level', 'debug']);
      // Aim at different moments: while a check runs, while spooling, while delivering, at start.
      const target = ['check started', 'check done', 'delivery pass', 'agent started'][i % 4]!;
      try {
        await daemon.waitFor((l) => l.msg === target, 15_000, target);
      } catch {
        // it may have been killed by an earlier round's leftovers; go on
      }
      await sleep(Math.floor(random() * 60));
      killedDuring.push(target);
      await daemon.stop('SIGKILL');
    }
    // A last run drains the spool, then stops cleanly.
    const last = new AgentDaemon(['--state-dir', stateDir, '--interval', '1']);
    await last.waitFor((l) => l.msg === 'check done', 20_000, 'a check');
    await last.waitDrained(last.lines.findIndex((l) => l.msg === 'check done'));
    expect((await last.stop('SIGTERM')).code).toBe(0);

    const chain = JSON.parse(await readFile(path.join(stateDir, 'chain.json'), 'utf8')) as { seq: number; head: string };
    const stored = await storedEvidence(path.join(dir.dir, 'store'), agentId);
    const { head, missing } = verifyChain(stored);
    expect(killedDuring).toHaveLength(KILLS);
    // Everything the agent ever signed into its chain is stored, once, in one unbroken chain.
    expect(missing).toEqual([]);
    expect(head).toBe(chain.seq);
    expect(stored.at(-1)!.hash).toBe(chain.head);
    expect(stored.length).toBeGreaterThan(KILLS / 2);
    // The collector never saw a sequence number reused with other bytes, and refused nothing.
    const metrics = await (await fetch(`${collector.url}/metrics`)).text();
    expect(sample(metrics, 'vcm_ingest_rejected_total{reason="replay"}') ?? 0).toBe(0);
    expect(sample(metrics, 'vcm_ingest_envelopes_total{outcome="rejected"}') ?? 0).toBe(0);
    expect(sample(metrics, 'vcm_ingest_envelopes_total{outcome="accepted"}')).toBe(stored.length);
    expect(await readdir(path.join(stateDir, 'quarantine')).catch(() => [])).toEqual([]);
    expect(await readdir(path.join(stateDir, 'spool'))).toEqual([]);
    // Each restart after a kill is itself evidence: the next envelope says the last run crashed.
    const starts = stored.flatMap((s) => s.predicate.events ?? []).filter((e) => e.type === 'started');
    expect(starts.length).toBeGreaterThan(0);
    expect(starts.some((e) => e.detail?.previousStop === 'crash')).toBe(true);
  }, 240_000);
});
