// 100,000 simulated agents, each with the six controls in state (issue 6): collector RSS ≤ 1 GB and
// one /metrics scrape ≤ 2 s. The agents are registered in the store and loaded the way a restart
// loads them; their latest results are put in the state directly (sending 600,000 signed envelopes
// would measure ingest, which collector-ingest.bench.mjs does). Baselines from this run: the same
// process with no agents, and a scrape of it.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const dist = (p) => path.join(repo, 'dist', p);
const { parseCollectorConfig, startCollector } = await import(dist('collector/server.js'));
const { default: pino } = await import(path.join(repo, 'node_modules/pino/pino.js'));

const AGENTS = Number(process.env.BENCH_AGENTS ?? 100_000);
const CHECKS = ['vpn', 'disk_encryption', 'usb_policy', 'credential_age', 'sso_coverage', 'open_ports'];
const STATES = ['pass', 'pass', 'pass', 'fail', 'unknown'];

const rssMiB = () => {
  globalThis.gc?.();
  return process.memoryUsage().rss / 2 ** 20;
};

async function scrape(url, runs = 3) {
  const times = [];
  let bytes = 0;
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const text = await (await fetch(`${url}/metrics`)).text();
    times.push(performance.now() - t0);
    bytes = text.length;
  }
  return { ms: Math.max(...times), bytes };
}

function line(name, value, unit, target, ok, extra = '') {
  console.log(`${name.padEnd(40)} ${value.toFixed(1).padStart(9)} ${unit.padEnd(5)} target ${target.padEnd(10)} ${ok ? 'PASS' : 'MISS'} ${extra}`);
}

const dir = await mkdtemp(path.join(tmpdir(), 'vcm-bench-scale-'));
try {
  const log = pino({ level: 'silent' });
  const empty = await startCollector(parseCollectorConfig({ dataDir: path.join(dir, 'empty'), listen: '127.0.0.1:0' }), { log });
  const baseScrape = await scrape(empty.url);
  await empty.close();
  const baseRss = rssMiB();

  // Registered agents, as enrollment leaves them in keys/.
  const keysDir = path.join(dir, 'store', 'keys');
  await mkdir(keysDir, { recursive: true });
  const pems = Array.from({ length: 64 }, () => generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }).toString());
  const ids = [];
  const t0 = performance.now();
  for (let i = 0; i < AGENTS; i += 1000) {
    await Promise.all(
      Array.from({ length: Math.min(1000, AGENTS - i) }, async (_, k) => {
        const n = i + k;
        const agentId = randomBytes(32).toString('hex');
        ids.push(agentId);
        const record = {
          agentId,
          vendor: `vendor-${n % 50}`,
          host: { hostname: `host-${n}.corp.example`, os: 'linux', arch: 'x64' },
          agentVersion: '0.1.0',
          publicKey: pems[n % pems.length],
          enrolledAt: '2026-11-01T00:00:00.000Z',
          revokedAt: null,
        };
        await writeFile(path.join(keysDir, `${agentId}.json`), JSON.stringify(record));
      }),
    );
  }
  console.log(`wrote ${AGENTS} agent records in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  const t1 = performance.now();
  const collector = await startCollector(parseCollectorConfig({ dataDir: path.join(dir, 'store'), listen: '127.0.0.1:0' }), { log });
  console.log(`collector loaded them in ${((performance.now() - t1) / 1000).toFixed(1)} s`);
  const now = new Date();
  for (const [n, agentId] of ids.entries()) {
    for (const [c, check] of CHECKS.entries()) {
      const verdict = STATES[(n + c) % STATES.length];
      collector.state.recordStored(agentId, c + 1, { hash: '0'.repeat(64), key: 'x' });
      collector.state.recordResult(
        agentId,
        { seq: c + 1, collectedAt: now.toISOString(), finding: { check, status: verdict } },
        { status: verdict, reasons: verdict === 'pass' ? [] : [{ code: 'CHK_FAIL_X', message: 'x' }] },
        1,
        now.getTime(),
      );
    }
  }
  const rss = rssMiB();
  const tr = performance.now();
  await collector.metrics.render();
  console.log(`render alone: ${(performance.now() - tr).toFixed(0)} ms`);
  const s = await scrape(collector.url);
  const rssAfterScrape = rssMiB();
  line('RSS with 100k agents x 6 controls', rssAfterScrape, 'MiB', '<= 1024', rssAfterScrape <= 1024, `(${(rssAfterScrape / baseRss).toFixed(2)}x the empty collector's ${baseRss.toFixed(0)} MiB; ${rss.toFixed(0)} MiB before the scrape)`);
  line('one /metrics scrape', s.ms, 'ms', '<= 2000', s.ms <= 2000, `(${(s.bytes / 2 ** 20).toFixed(1)} MiB of text; empty collector scrape ${baseScrape.ms.toFixed(1)} ms)`);
  await collector.close();

  const lean = await startCollector(
    parseCollectorConfig({ dataDir: path.join(dir, 'store'), listen: '127.0.0.1:0', perHostSeries: 'non-passing' }),
    { log },
  );
  for (const [n, agentId] of ids.entries()) {
    for (const [c, check] of CHECKS.entries()) {
      const verdict = STATES[(n + c) % STATES.length];
      lean.state.recordResult(agentId, { seq: c + 1, collectedAt: now.toISOString(), finding: { check, status: verdict } }, { status: verdict, reasons: [] }, 1, now.getTime());
    }
  }
  const l = await scrape(lean.url);
  line('scrape, per-host series non-passing only', l.ms, 'ms', '<= 2000', l.ms <= 2000, `(${(l.bytes / 2 ** 20).toFixed(1)} MiB of text)`);
  await lean.close();
} finally {
  await rm(dir, { recursive: true, force: true });
}
