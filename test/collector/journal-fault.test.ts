// A real collector process SIGKILLed while many agents send to it (its store journal mid-group,
// segments not yet checkpointed), then restarted on the same folder: every acknowledged envelope
// is stored exactly once, the chains verify, and the agents' resends complete them.
import { once } from 'node:events';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { Pool } from 'undici';
import { describe, expect, it } from 'vitest';
import { FsEvidenceStore } from '../../collector/store.js';
import { chain, enrollTestAgent, finding, type TestAgent } from '../helpers/agents.js';
import { auditChain } from '../helpers/collector-probe.js';
import { startCollectorProcess, tempDir, type CollectorProcess } from '../helpers/processes.js';

const AGENTS = 12;
const CHAIN = 150;

interface Sender {
  agent: TestAgent;
  envelopes: Buffer[];
  acked: number[];
}

/** Sends each agent's chain in order, one envelope per request, until a request fails. */
async function send(url: string, senders: Sender[], from: (s: Sender) => number, failures: unknown[] = []): Promise<unknown[]> {
  const pool = new Pool(url, { connections: senders.length });
  try {
    await Promise.all(
      senders.map(async (s) => {
        for (let seq = from(s); seq <= s.envelopes.length; seq++) {
          let status: number;
          let text: string;
          try {
            const res = await pool.request({ path: '/v1/results', method: 'POST', headers: { 'content-type': 'application/json' }, body: s.envelopes[seq - 1]! });
            status = res.statusCode;
            text = await res.body.text();
          } catch (err) {
            failures.push(err);
            return; // the collector is gone: this envelope has no acknowledgement
          }
          if (status !== 200) throw new Error(`seq ${seq}: HTTP ${status} ${text}`);
          const outcome = (JSON.parse(text) as { results: { outcome: string }[] }).results[0]?.outcome;
          if (outcome !== 'accepted' && outcome !== 'duplicate') throw new Error(`seq ${seq}: ${text}`);
          s.acked.push(seq);
        }
      }),
    );
  } finally {
    await pool.destroy();
  }
  return failures;
}

describe('the collector SIGKILLed under load, with its store journal', () => {
  it('keeps every acknowledged envelope exactly once, and the chains verify after a restart', { timeout: 120_000 }, async () => {
    const dir = await tempDir('journal-kill');
    const dataDir = path.join(dir.dir, 'store');
    let collector: CollectorProcess | undefined;
    try {
      collector = await startCollectorProcess(dataDir, { args: ['--rate-limit', '100000/100000'] });
      const store = new FsEvidenceStore(dataDir); // beside the collector, as the CLI writes tokens
      const senders: Sender[] = [];
      for (let i = 0; i < AGENTS; i++) {
        const agent = await enrollTestAgent(collector.url, store, 'acme', `host-${i}`);
        const at = new Date().toISOString();
        senders.push({ agent, envelopes: chain(agent, CHAIN, (seq) => finding({ collectedAt: at, durationMs: seq })), acked: [] });
      }

      // Killed once a good number of envelopes are acknowledged, while requests are in flight.
      const victim = collector;
      const load = send(victim.url, senders, () => 1);
      const total = () => senders.reduce((n, s) => n + s.acked.length, 0);
      while (total() < (AGENTS * CHAIN) / 4) await new Promise((r) => setTimeout(r, 5));
      const exited = once(victim.child, 'exit');
      victim.child.kill('SIGKILL');
      await exited;
      await load;
      const ackedBeforeKill = total();
      expect(ackedBeforeKill).toBeLessThan(AGENTS * CHAIN);
      // The journal still holds segments: nothing was checkpointed yet. Files of acknowledged
      // envelopes may still be missing; opening the store (as the CLI does) replays them.
      expect((await readdir(path.join(dataDir, '.journal'))).filter((f) => f.endsWith('.wal')).length).toBeGreaterThan(0);
      const replay = await new FsEvidenceStore(dataDir).open();
      expect(replay).toMatchObject({ journal: 'off', replay: { problems: [] } });
      expect(replay.replay!.records).toBeGreaterThanOrEqual(ackedBeforeKill);
      for (const s of senders) {
        const audit = await auditChain(dataDir, s.agent.agentId);
        expect(audit.problems).toEqual([]);
        // Acknowledged means stored: each acknowledged seq is there, and at most one more.
        const stored = audit.links.map((l) => l.seq);
        expect(stored.slice(0, s.acked.length)).toEqual(s.acked);
        expect(stored.length - s.acked.length).toBeLessThanOrEqual(1);
      }

      collector = await startCollectorProcess(dataDir, { args: ['--rate-limit', '100000/100000'] });
      // The agents resend everything without an acknowledgement (one may come back as a duplicate).
      expect(await send(collector.url, senders, (s) => s.acked.length + 1)).toEqual([]);
      // A clean stop makes every file and checkpoints the journal, leaving it empty.
      await collector.stop();
      expect(await readdir(path.join(dataDir, '.journal'))).toEqual([]);
      for (const s of senders) {
        expect(s.acked).toEqual(Array.from({ length: CHAIN }, (_, i) => i + 1));
        const audit = await auditChain(dataDir, s.agent.agentId);
        expect(audit.problems).toEqual([]);
        expect(audit.links.map((l) => l.seq)).toEqual(s.acked);
      }
    } finally {
      await collector?.stop();
      await dir.cleanup();
    }
  });
});
