// Delivery through outages and refusals, with real collector processes and the real daemon.
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AGENT_CLI, runCli, sample, startCollectorProcess, tempDir, type CollectorProcess } from '../../helpers/processes.js';
import { AgentDaemon, enroll, sleep, storedEvidence, verifyChain } from './harness.js';

let dir: Awaited<ReturnType<typeof tempDir>>;
let collector: CollectorProcess;
let dataDir: string;
let stateDir: string;
let agentId: string;

beforeEach(async () => {
  dir = await tempDir('outage');
  dataDir = path.join(dir.dir, 'store');
  collector = await startCollectorProcess(dataDir);
  stateDir = path.join(dir.dir, 'agent');
  agentId = await enroll(collector.url, dataDir, stateDir);
});

afterEach(async () => {
  await collector?.stop();
  await dir?.cleanup();
});

async function metric(url: string, series: string): Promise<number> {
  return sample(await (await fetch(`${url}/metrics`)).text(), series) ?? 0;
}

function seqOf(envelope: Buffer): number {
  const e = JSON.parse(envelope.toString()) as { payload: string };
  return (JSON.parse(Buffer.from(e.payload, 'base64').toString()) as { predicate: { seq: number } }).predicate.seq;
}

describe('delivery through outages (real collector)', () => {
  it('the collector stopped for a while, then restarted: every result arrives exactly once, in order', async () => {
    const daemon = new AgentDaemon(['--state-dir', stateDir, '--interval', '1']);
    await daemon.waitFor((l) => l.msg === 'delivery pass' && (l.accepted as number) > 0, 20_000, 'a first delivery');
    const listen = new URL(collector.url).host;
    expect(await metric(collector.url, 'vcm_evidence_chain_gaps_total{vendor="acme"}')).toBe(0);
    await collector.stop();
    // What the first collector stored (the daemon kept delivering until the stop; a clean stop
    // makes every acknowledged file).
    const storedBefore = (await storedEvidence(dataDir, agentId)).length;
    const downAt = daemon.lines.length;
    // While it is away: results pile up in the spool, delivery backs off.
    await daemon.waitFor((l) => daemon.lines.indexOf(l) > downAt && l.msg === 'delivery pass' && (l.kept as number) >= 3, 20_000, 'results kept while the collector is down');
    await sleep(1500);
    collector = await startCollectorProcess(dataDir, { listen });
    const upAt = daemon.lines.length;
    await daemon.waitFor((l) => daemon.lines.indexOf(l) >= upAt && l.msg === 'delivery pass' && l.kept === 0 && l.stopped === null, 20_000, 'the spool drained after the restart');
    expect((await daemon.stop()).code).toBe(0);

    const chain = JSON.parse(await readFile(path.join(stateDir, 'chain.json'), 'utf8')) as { seq: number };
    const stored = await storedEvidence(dataDir, agentId);
    const { head, missing } = verifyChain(stored);
    expect(missing).toEqual([]);
    expect(head).toBe(chain.seq);
    expect(stored.length).toBeGreaterThan(6);
    // Exactly once: the restarted collector accepted exactly what the first had not stored, and
    // every one is one stored file; in order: no gap was ever recorded.
    const acceptedAfter = await metric(collector.url, 'vcm_ingest_envelopes_total{outcome="accepted"}');
    expect(storedBefore + acceptedAfter).toBe(stored.length);
    expect(await metric(collector.url, 'vcm_evidence_chain_gaps_total{vendor="acme"}')).toBe(0);
    expect(await metric(collector.url, 'vcm_ingest_envelopes_total{outcome="rejected"}')).toBe(0);
    expect(await readdir(path.join(stateDir, 'spool'))).toEqual([]);
  }, 90_000);

  it('a full spool drops the oldest results into a signed drop record, and the collector stores and counts it', async () => {
    // The collector is unreachable for this run (a closed port), and the spool holds 8.
    const daemon = new AgentDaemon(['--state-dir', stateDir, '--interval', '1'], { VCM_COLLECTOR_URL: 'http://127.0.0.1:9', VCM_SPOOL_MAX_COUNT: '8' });
    await daemon.waitFor((l) => l.msg === 'spool full: dropped the oldest results and signed a drop record', 30_000, 'a drop');
    await daemon.waitFor((l) => l.msg === 'check done' && (l.seq as number) >= 20, 30_000, 'more results');
    expect((await daemon.stop()).code).toBe(0);
    const spooled = await readdir(path.join(stateDir, 'spool'));
    expect(spooled.length).toBeLessThanOrEqual(8);
    expect(spooled.some((f) => f.endsWith('.drop.dsse.json'))).toBe(true);

    const status = JSON.parse((await runCli(AGENT_CLI, ['status', '--state-dir', stateDir, '--format', 'json'], { env: { VCM_CONFIG: '' } })).stdout) as { drops: { records: number; results: number } };
    expect(status.drops.records).toBeGreaterThan(0);

    // Now the real collector: the drop records travel in the chain like results.
    const drain = new AgentDaemon(['--state-dir', stateDir]);
    await drain.waitDrained();
    expect((await drain.stop()).code).toBe(0);
    const stored = await storedEvidence(dataDir, agentId);
    const { missing, droppedCount } = verifyChain(stored);
    const drops = stored.filter((s) => s.predicate.dropped !== undefined);
    expect(drops.length).toBeGreaterThan(0);
    expect(missing.length).toBeGreaterThan(0);
    for (const d of drops) {
      expect(d.predicateType).toBe('https://vcm.dev/attestation/spool-drop/v1');
      expect(d.predicate.dropped!.reason).toBe('spool_full_count');
    }
    expect(droppedCount).toBe(status.drops.results);
    expect(await metric(collector.url, 'vcm_agent_spool_dropped_total{vendor="acme"}')).toBe(droppedCount);
  }, 90_000);

  it('an envelope corrupted in the spool is refused by the collector (per line) and quarantined; the rest flow', async () => {
    const offline = new AgentDaemon(['--state-dir', stateDir, '--interval', '1'], { VCM_COLLECTOR_URL: 'http://127.0.0.1:9' });
    await offline.waitFor((l) => l.msg === 'check done' && (l.seq as number) >= 6, 30_000, 'six spooled results');
    expect((await offline.stop()).code).toBe(0);
    const file = path.join(stateDir, 'spool', '000000000003.dsse.json');
    const bytes = await readFile(file);
    const sigAt = bytes.indexOf('"sig":"') + 10;
    bytes[sigAt] = bytes[sigAt] === 0x41 ? 0x42 : 0x41;
    await writeFile(file, bytes);

    const daemon = new AgentDaemon(['--state-dir', stateDir, '--interval', '1']);
    await daemon.waitFor((l) => l.msg === 'collector refused a result; moved to quarantine', 20_000, 'the quarantine');
    const at = daemon.lines.length;
    await daemon.waitFor((l) => daemon.lines.indexOf(l) >= at && l.msg === 'check done', 20_000, 'another check');
    await daemon.waitDrained(daemon.lines.length - 1);
    expect((await daemon.stop()).code).toBe(0);

    expect(await readdir(path.join(stateDir, 'quarantine'))).toEqual(['000000000003.dsse.json']);
    const stored = await storedEvidence(dataDir, agentId);
    const { missing } = verifyChain(stored, { allowedGaps: [3] });
    expect(missing).toEqual([3]);
    // The refusal is evidence too: the next envelope signed carries the event.
    const events = stored.flatMap((s) => (s.predicate.events ?? []).map((e) => ({ ...e, seq: s.seq })));
    const q = events.find((e) => e.type === 'spool_quarantine');
    expect(q?.detail).toMatchObject({ firstSeq: 3, lastSeq: 3, count: 1, code: 'COL_ERR_BAD_SIGNATURE' });
    expect(q!.seq).toBeGreaterThan(6);
    const status = JSON.parse((await runCli(AGENT_CLI, ['status', '--state-dir', stateDir, '--format', 'json'], { env: { VCM_CONFIG: '' } })).stdout) as { quarantined: number; lastError: { message: string } | null };
    expect(status.quarantined).toBe(1);
    expect(status.lastError?.message).toContain('quarantined seq 3');
  }, 90_000);

  it('a proxy in front of the collector answers an unsigned 400 for one envelope: it stays in the spool, not quarantined, while the rest flow (proxy)', async () => {
    const refuse = 4;
    const proxy: Server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        if (req.method === 'POST' && body.length > 0) {
          const lines = body.toString().split('\n').filter((l) => l !== '');
          if (lines.some((l) => seqOf(Buffer.from(l)) === refuse)) {
            res.writeHead(400, { 'content-type': 'application/json' });
            res.end(JSON.stringify({ error: { code: 'COL_ERR_MALFORMED', message: 'refused by the test proxy' } }));
            return;
          }
        }
        const target = new URL(req.url ?? '/', collector.url);
        const fwd = httpRequest(target, { method: req.method, headers: { ...req.headers, host: target.host } }, (up) => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
        });
        fwd.on('error', () => {
          res.writeHead(502);
          res.end();
        });
        fwd.end(body);
      });
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    const proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
    try {
      const daemon = new AgentDaemon(['--state-dir', stateDir, '--interval', '1'], { VCM_COLLECTOR_URL: proxyUrl });
      const later = await daemon.waitFor((l) => l.msg === 'check done' && (l.seq as number) >= refuse + 6, 30_000, 'results after the refused one');
      // A pass after those results that sent everything but the refused envelope.
      const after = daemon.lines.indexOf(later);
      await daemon.waitFor((l) => daemon.lines.indexOf(l) > after && l.msg === 'delivery pass' && l.kept === 1, 30_000, 'a pass that keeps only the refused one');
      expect((await daemon.stop()).code).toBe(0);
    } finally {
      await new Promise((r) => proxy.close(r));
    }
    // Nothing is quarantined on an answer the collector did not sign; the envelope waits.
    expect(await readdir(path.join(stateDir, 'quarantine')).catch(() => [])).toEqual([]);
    expect(await readdir(path.join(stateDir, 'spool'))).toContain(`00000000000${refuse}.dsse.json`);
    const stored = await storedEvidence(dataDir, agentId);
    const { missing, head } = verifyChain(stored, { allowedGaps: [refuse] });
    expect(missing).toEqual([refuse]);
    expect(head).toBeGreaterThanOrEqual(refuse + 6);
    const status = JSON.parse((await runCli(AGENT_CLI, ['status', '--state-dir', stateDir, '--format', 'json'], { env: { VCM_CONFIG: '' } })).stdout) as { lastError: { code: string; message: string } | null };
    expect(status.lastError?.message).toContain('AGT_ERR_COLLECTOR_UNVERIFIED');
  }, 90_000);
});
