// Faults between the real agent CLI and a real collector process:
//   - the collector is SIGKILLed between receiving a result and the agent getting its answer (a
//     proxy on 127.0.0.1 forwards the request, then kills the collector instead of answering);
//     after a restart on the same port, the agent's next run delivers everything exactly once;
//   - the collector's disk is full (a tmpfs of a few MiB): ingest answers 503, the agent keeps its
//     spool, nothing partial is stored, and after space is freed everything arrives exactly once.
import { once } from 'node:events';
import { mkdir, readFile, readdir, rm, stat, statfs, truncate } from 'node:fs/promises';
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsEvidenceStore } from '../../collector/store.js';
import { createToken } from '../../collector/tokens.js';
import { enrollTestAgent, finding, resultEnvelope, type TestAgent } from '../helpers/agents.js';
import { auditChain, counterDeltas, counters, expectAccepted, listTree, postRaw } from '../helpers/collector-probe.js';
import { AGENT_CLI, runCli, startCollectorProcess, tempDir, type CollectorProcess } from '../helpers/processes.js';
import { fillUp, mountTmpfs, unmountTmpfs } from '../helpers/tmpfs.js';

interface AgentStatus {
  lastSeq: number;
  spoolDepth: number;
  quarantined: number;
}

async function agentStatus(stateDir: string): Promise<AgentStatus> {
  const res = await runCli(AGENT_CLI, ['status', '--state-dir', stateDir, '--format', 'json']);
  if (res.code !== 0) throw new Error(`vcm-agent status: ${res.code} ${res.stderr}`);
  return JSON.parse(res.stdout) as AgentStatus;
}

/**
 * Enrolls the real agent CLI. The token is made on the store the collector process serves, as
 * `vcm-collector token create --data-dir` does (without the cost of one more process).
 */
/**
 * The envelope entries of a vendor's transparency log, read straight from its write-ahead rounds
 * (one JSON entry per line), with whether each entry's evidence file exists.
 */
async function loggedEnvelopes(dataDir: string, vendor: string): Promise<{ seq: number; key: string; evidence: boolean }[]> {
  const dir = path.join(dataDir, `log/vendor=${vendor}/wal`);
  const out: { seq: number; key: string; evidence: boolean }[] = [];
  for (const name of (await readdir(dir).catch(() => [] as string[])).sort()) {
    for (const line of (await readFile(path.join(dir, name), 'utf8')).split('\n')) {
      if (line === '') continue;
      const e = JSON.parse(line) as { type: string; seq: number; key: string };
      if (e.type !== 'envelope') continue;
      const evidence = await stat(path.join(dataDir, e.key)).then(
        () => true,
        () => false,
      );
      out.push({ seq: e.seq, key: e.key, evidence });
    }
  }
  return out;
}

async function enrollAgent(dataDir: string, collectorUrl: string, stateDir: string): Promise<string> {
  const { token } = await createToken(new FsEvidenceStore(dataDir), { vendor: 'acme' });
  const enrolled = await runCli(AGENT_CLI, ['enroll', '--collector', collectorUrl, '--token', token, '--state-dir', stateDir, '--hostname', 'fault-host']);
  expect(enrolled.code, enrolled.stderr).toBe(0);
  const agentId = / as agent ([0-9a-f]{64}) /.exec(enrolled.stdout)?.[1];
  if (agentId === undefined) throw new Error(`no agent id in: ${enrolled.stdout}`);
  return agentId;
}

const runOnce = (stateDir: string) => runCli(AGENT_CLI, ['run', '--once', '--state-dir', stateDir], { timeoutMs: 60_000 });
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

async function sigkill(c: CollectorProcess): Promise<void> {
  if (c.child.exitCode !== null || c.child.signalCode !== null) return;
  const exited = once(c.child, 'exit');
  c.child.kill('SIGKILL');
  await exited;
}

function readAll(stream: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => resolve(Buffer.concat(chunks)));
    stream.on('error', reject);
  });
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length']);
function endToEnd(headers: IncomingMessage['headers']): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v;
  return out;
}

type KillPoint = 'half-body' | 'body-sent' | 'response';

/** The sequence numbers of the envelopes in a results body (one envelope, or NDJSON lines). */
function seqsIn(body: Buffer): number[] {
  return body
    .toString('utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      const env = JSON.parse(line) as { payload: string };
      return (JSON.parse(Buffer.from(env.payload, 'base64').toString('utf8')) as { predicate: { seq: number } }).predicate.seq;
    });
}

/**
 * An HTTP proxy on 127.0.0.1 between the agent and the collector. Armed, it lets the first
 * POST /v1/results that carries a matching envelope reach the collector up to a kill point,
 * SIGKILLs the collector there, and drops the agent's connection: no answer reaches the agent.
 * It works the same whether the agent sends one envelope per request or NDJSON batches.
 */
class KillingProxy {
  readonly #server: Server;
  #armed: { when: (seqs: number[]) => boolean; point: KillPoint; kill: () => Promise<void> } | undefined;
  /** Sequence numbers whose acknowledgement (accepted or duplicate) reached the agent. */
  readonly acked: number[] = [];
  /** The envelopes in the request during which the collector was killed. */
  killedSeqs: number[] = [];
  killedAt: KillPoint | undefined;
  /** The collector's answer that the proxy kept from the agent (kill point `response`). */
  swallowed: { status: number; body: string } | undefined;

  constructor(readonly upstreamPort: number) {
    this.#server = createServer((req, res) => {
      this.#handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) res.writeHead(502).end(String(err));
        else res.destroy();
      });
    });
  }

  async listen(): Promise<string> {
    this.#server.listen(0, '127.0.0.1');
    await once(this.#server, 'listening');
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  arm(when: (seqs: number[]) => boolean, point: KillPoint, kill: () => Promise<void>): void {
    this.#armed = { when, point, kill };
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #upstream(req: IncomingMessage, length: number) {
    return request({
      host: '127.0.0.1',
      port: this.upstreamPort,
      method: req.method,
      path: req.url,
      headers: { ...endToEnd(req.headers), 'content-length': String(length) },
      agent: false,
    });
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readAll(req);
    const isResults = req.method === 'POST' && req.url === '/v1/results';
    const seqs = isResults ? seqsIn(body) : [];
    const armed = this.#armed;
    if (armed !== undefined && isResults && armed.when(seqs)) {
      this.#armed = undefined;
      this.killedSeqs = seqs;
      await this.#killDuring(req, body, armed);
      req.socket.destroy();
      return;
    }
    const up = this.#upstream(req, body.length);
    const answer = new Promise<IncomingMessage>((resolve, reject) => {
      up.once('response', resolve);
      up.once('error', reject);
    });
    up.end(body);
    const r = await answer;
    const payload = await readAll(r);
    if (isResults && r.statusCode === 200) {
      const { results } = JSON.parse(payload.toString('utf8')) as { results: { seq: number | null; outcome: string }[] };
      for (const o of results) if (o.seq !== null && o.outcome !== 'rejected') this.acked.push(o.seq);
    }
    res.writeHead(r.statusCode ?? 502, { ...endToEnd(r.headers), 'content-length': String(payload.length) });
    res.end(payload);
  }

  async #killDuring(req: IncomingMessage, body: Buffer, armed: { point: KillPoint; kill: () => Promise<void> }): Promise<void> {
    const up = this.#upstream(req, body.length);
    const failed = new Promise<never>((_, reject) => up.once('error', reject));
    failed.catch(() => undefined); // the collector dies under this request
    if (armed.point === 'half-body') {
      up.flushHeaders();
      await new Promise<void>((resolve) => up.write(body.subarray(0, body.length >> 1), () => resolve()));
    } else if (armed.point === 'body-sent') {
      await new Promise<void>((resolve) => up.end(body, () => resolve()));
    } else {
      const answered = new Promise<IncomingMessage>((resolve) => up.once('response', resolve));
      up.end(body);
      const r = await Promise.race([answered, failed]);
      this.swallowed = { status: r.statusCode ?? 0, body: (await readAll(r)).toString('utf8') };
    }
    await armed.kill();
    this.killedAt = armed.point;
    up.destroy();
  }
}

const sorted = (xs: Iterable<number>) => [...xs].sort((a, b) => a - b);

describe('the collector killed between receiving and acknowledging', () => {
  const points: { point: KillPoint; when: string }[] = [
    { point: 'half-body', when: 'when half of the request body has been forwarded (it cannot have stored it)' },
    { point: 'body-sent', when: 'as soon as the whole request body has been forwarded (stored or not: a race)' },
    { point: 'response', when: 'after it answered 200, before the answer reaches the agent (it has stored it)' },
  ];

  for (const p of points) {
    // Each case runs a collector twice and the agent CLI three times: real processes take seconds.
    it(`killed ${p.when}: the agent keeps the results, resends them after a restart, and each is stored exactly once`, { timeout: 90_000 }, async () => {
      const dir = await tempDir('fault-kill');
      const dataDir = path.join(dir.dir, 'store');
      const stateDir = path.join(dir.dir, 'agent');
      let collector: CollectorProcess | undefined;
      let proxy: KillingProxy | undefined;
      try {
        collector = await startCollectorProcess(dataDir);
        const port = Number(new URL(collector.url).port);
        proxy = new KillingProxy(port);
        const proxyUrl = await proxy.listen();
        const agentId = await enrollAgent(dataDir, proxyUrl, stateDir);

        // Killed during the request that carries seq 2 (an agent sending one envelope per request
        // has had seq 1 acknowledged by then; a batching agent sends them all at once).
        const victim = collector;
        proxy.arm((seqs) => seqs.some((s) => s >= 2), p.point, () => sigkill(victim));
        const first = await runOnce(stateDir);
        expect(first.code, first.stdout + first.stderr).toBe(2);
        expect(first.stderr).toContain('AGT_ERR_DELIVERY');
        expect(proxy.killedAt).toBe(p.point);
        expect(collector.child.signalCode).toBe('SIGKILL');
        expect(proxy.killedSeqs).toContain(2);
        const s1 = await agentStatus(stateDir);
        // Everything the agent has no acknowledgement for is still in its spool.
        expect(s1.spoolDepth).toBe(s1.lastSeq - proxy.acked.length);

        // Acknowledged means durable in the store's journal: opening the store, as the CLI does
        // for a collector that is not running, replays it into files.
        await new FsEvidenceStore(dataDir).open();
        const killed = await auditChain(dataDir, agentId);
        expect(killed.problems).toEqual([]);
        const storedSeqs = killed.links.map((l) => l.seq);
        const acked = sorted(proxy.acked);
        if (p.point === 'half-body') expect(storedSeqs).toEqual(acked);
        if (p.point === 'response') {
          expect(storedSeqs).toEqual(sorted(new Set([...acked, ...proxy.killedSeqs])));
          const answer = JSON.parse(proxy.swallowed?.body ?? '{}') as { results?: { seq: number; outcome: string }[] };
          expect(proxy.swallowed?.status).toBe(200);
          expect(answer.results?.map((r) => [r.seq, r.outcome])).toEqual(proxy.killedSeqs.map((s) => [s, 'accepted']));
        }
        if (p.point === 'body-sent') {
          expect(storedSeqs).toEqual(expect.arrayContaining(acked));
          expect(sorted(new Set([...acked, ...proxy.killedSeqs]))).toEqual(expect.arrayContaining(storedSeqs));
        }
        // Only a write cut by the kill itself may leave a temporary file behind.
        if (p.point !== 'body-sent') expect(killed.temporaries).toEqual([]);
        // Never an entry without its evidence; everything acknowledged has its entry.
        const loggedAtKill = await loggedEnvelopes(dataDir, 'acme');
        expect(loggedAtKill.filter((e) => !e.evidence)).toEqual([]);
        expect(sorted(loggedAtKill.map((e) => e.seq))).toEqual(expect.arrayContaining(acked));

        collector = await startCollectorProcess(dataDir, { listen: `127.0.0.1:${port}` });
        const second = await runOnce(stateDir);
        expect(second.code, second.stdout + second.stderr).toBe(0);
        const s2 = await agentStatus(stateDir);
        expect(s2).toMatchObject({ spoolDepth: 0, quarantined: 0 });
        expect(s2.lastSeq).toBeGreaterThan(s1.lastSeq);

        // The restarted collector took the resent results it had stored before as duplicates.
        const m = await counters(collector.url);
        const storedUnacked = storedSeqs.filter((s) => !acked.includes(s)).length;
        expect(m.get('vcm_ingest_envelopes_total{outcome="duplicate"}')).toBe(storedUnacked);
        expect(m.get('vcm_ingest_envelopes_total{outcome="accepted"}')).toBe(s2.lastSeq - storedSeqs.length);
        expect(m.get('vcm_ingest_envelopes_total{outcome="rejected"}')).toBe(0);
        // Files are made just after the acknowledgement; a clean stop has made them all.
        await collector.stop();
        const audit = await auditChain(dataDir, agentId);
        expect(audit.problems).toEqual([]);
        expect(audit.links.map((l) => l.seq)).toEqual(range(1, s2.lastSeq));
        // After the restart's replay: each stored envelope has exactly one entry, and no more.
        const logged = await loggedEnvelopes(dataDir, 'acme');
        expect(sorted(logged.map((e) => e.seq))).toEqual(range(1, s2.lastSeq));
        expect(logged.every((e) => e.evidence)).toBe(true);
      } finally {
        await proxy?.close();
        await collector?.stop();
        await dir.cleanup();
      }
    });
  }
});

describe('a full disk under the collector', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let mountPoint: string;
  let mounted = false;
  let missing = '';
  let collector: CollectorProcess | undefined;

  beforeAll(async () => {
    dir = await tempDir('fault-disk');
    mountPoint = path.join(dir.dir, 'store');
    await mkdir(mountPoint);
    missing = mountTmpfs(mountPoint, '2m') ?? '';
    mounted = missing === '';
    if (!mounted) console.warn(`full-disk test skipped: ${missing}`);
  });

  afterAll(async () => {
    await collector?.stop();
    if (mounted) unmountTmpfs(mountPoint);
    await dir?.cleanup();
  });

  async function freeBytes(): Promise<{ free: number; block: number }> {
    const s = await statfs(mountPoint);
    return { free: s.bavail * s.bsize, block: s.bsize };
  }

  it('answers 503 COL_ERR_STORE_UNAVAILABLE, stores nothing partial, the agent keeps its spool, and all arrives once after space is freed', { timeout: 90_000 }, async (ctx) => {
    if (!mounted) ctx.skip(missing);
    const stateDir = path.join(dir.dir, 'agent');
    const filler = path.join(mountPoint, 'filler');
    collector = await startCollectorProcess(mountPoint);
    const url = collector.url;
    const agentId = await enrollAgent(mountPoint, url, stateDir);
    // A test agent too, for one result larger than a page, which a nearly full disk can only half take.
    const big: TestAgent = await enrollTestAgent(url, new FsEvidenceStore(mountPoint), 'acme', 'big-host');
    const bigEnvelope = resultEnvelope(big, 1, null, finding({ collectedAt: new Date(Date.now() - 60_000).toISOString(), status: 'fail', reasons: Array.from({ length: 8 }, (_, i) => ({ code: 'CHK_FAIL_LISTENER_NOT_ALLOWED', message: `${i} ${'y'.repeat(1900)}` })) }));

    // Before the disk fills: one cycle delivered.
    const before = await runOnce(stateDir);
    expect(before.code, before.stderr).toBe(0);
    const delivered = (await agentStatus(stateDir)).lastSeq;
    const storedBefore = await listTree(path.join(mountPoint, 'evidence'));

    // One free page left: the large result's temporary file is cut short by ENOSPC.
    await fillUp(filler, 256 * 1024);
    const { block } = await freeBytes();
    const size = (await stat(filler)).size;
    await truncate(filler, (Math.ceil(size / block) - 1) * block);
    expect((await freeBytes()).free).toBe(block);
    expect(bigEnvelope.length).toBeGreaterThan(2 * block);
    let c0 = await counters(url);
    const partial = await postRaw(url, '/v1/results', bigEnvelope);
    expect(partial.status, partial.body.toString()).toBe(503);
    expect(partial.code).toBe('COL_ERR_STORE_UNAVAILABLE');
    expect(counterDeltas(c0, await counters(url))).toEqual({ vcm_evidence_store_errors_total: 1 });
    expect(await listTree(path.join(mountPoint, 'evidence'))).toEqual(storedBefore);

    // Full: the agent's cycle is refused, and everything it signed stays in its spool.
    await fillUp(filler, 256 * 1024);
    expect((await freeBytes()).free).toBe(0);
    c0 = await counters(url);
    const full = await runOnce(stateDir);
    expect(full.code, full.stdout + full.stderr).toBe(2);
    expect(full.stderr).toContain('AGT_ERR_DELIVERY');
    expect(full.stderr).toContain('COL_ERR_STORE_UNAVAILABLE');
    const kept = await agentStatus(stateDir);
    expect(kept.lastSeq).toBeGreaterThan(delivered);
    expect(kept).toMatchObject({ spoolDepth: kept.lastSeq - delivered, quarantined: 0 });
    // The agent stops at the first 503: one refused write, and no rejection (503 is "try again").
    expect(counterDeltas(c0, await counters(url))).toEqual({ vcm_evidence_store_errors_total: 1 });
    const spooled = (await readdir(path.join(stateDir, 'spool'))).sort();
    const direct = await postRaw(url, '/v1/results', await readFile(path.join(stateDir, 'spool', spooled[0]!)));
    expect(direct.status).toBe(503);
    expect(direct.code).toBe('COL_ERR_STORE_UNAVAILABLE');
    expect(await listTree(path.join(mountPoint, 'evidence'))).toEqual(storedBefore);
    expect(collector.child.exitCode).toBeNull();
    expect((await fetch(`${url}/healthz`)).status).toBe(200);

    // Space again: the next cycle delivers the spool and its own results, each exactly once.
    await rm(filler);
    const after = await runOnce(stateDir);
    expect(after.code, after.stderr).toBe(0);
    const done = await agentStatus(stateDir);
    expect(done).toMatchObject({ spoolDepth: 0, quarantined: 0 });
    // The refused large result was never taken for stored: it is accepted now, as new.
    await expectAccepted(url, bigEnvelope);
    // Files are made just after the acknowledgement; a clean stop has made them all.
    await collector.stop();
    const audit = await auditChain(mountPoint, agentId);
    expect(audit.problems).toEqual([]);
    expect(audit.temporaries).toEqual([]);
    expect(audit.links.map((l) => l.seq)).toEqual(range(1, done.lastSeq));
    const bigAudit = await auditChain(mountPoint, big.agentId);
    expect(bigAudit).toMatchObject({ problems: [], temporaries: [] });
    expect(bigAudit.links.map((l) => l.seq)).toEqual([1]);
  });
});
