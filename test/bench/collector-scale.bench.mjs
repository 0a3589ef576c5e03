// 100,000 simulated agents, each with the six controls in state (issue 6): collector RSS ≤ 1 GB and
// one /metrics scrape ≤ 2 s. The agents are registered in the store and loaded the way a restart
// loads them; their latest results are put in the state directly (sending 600,000 signed envelopes
// would measure ingest, which collector-ingest.bench.mjs does). Baselines from this run: the same
// process with no agents, and a scrape of it.
import { execFile } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { removeScratch, scratchDir } from './scratch.mjs';

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

/** One scrape from another process, as Prometheus does: curl's total time and the bytes it read. */
function curlScrape(url) {
  return new Promise((resolve, reject) => {
    execFile('curl', ['-s', '-o', '/dev/null', '-w', '%{time_total} %{size_download} %{http_code}', `${url}/metrics`], (err, out) => {
      if (err) return reject(err);
      const [t, size, code] = out.trim().split(' ');
      if (code !== '200') return reject(new Error(`HTTP ${code}`));
      resolve({ ms: Number(t) * 1000, bytes: Number(size) });
    });
  });
}

async function scrape(url) {
  const cold = await curlScrape(url);
  const warm = [await curlScrape(url), await curlScrape(url)];
  return { cold, warm: { ms: Math.max(...warm.map((w) => w.ms)), bytes: warm[0].bytes } };
}

function line(name, value, unit, target, ok, extra = '') {
  console.log(`${name.padEnd(40)} ${value.toFixed(1).padStart(9)} ${unit.padEnd(5)} target ${target.padEnd(10)} ${ok ? 'PASS' : 'MISS'} ${extra}`);
}

const dir = scratchDir('scale');
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
  const t2 = performance.now();
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
  // Let the collector finish what each burst of results triggers (rendering the changed hosts'
  // series), as it does after every ingest request.
  await new Promise((r) => setImmediate(r));
  const recordMs = performance.now() - t2;
  console.log(`recorded ${AGENTS * CHECKS.length} results and rendered the changed hosts in ${(recordMs / 1000).toFixed(1)} s (${((recordMs * 1000) / (AGENTS * CHECKS.length)).toFixed(1)} µs per result, paid at ingest)`);
  const rss = rssMiB();
  const s = await scrape(collector.url);
  const rssAfterScrape = rssMiB();
  line('RSS with 100k agents x 6 controls', rssAfterScrape, 'MiB', '<= 1024', rssAfterScrape <= 1024, `(${(rssAfterScrape / baseRss).toFixed(2)}x the empty collector's ${baseRss.toFixed(0)} MiB; ${rss.toFixed(0)} MiB before any scrape)`);
  line('first /metrics scrape after all changed', s.cold.ms, 'ms', '<= 2000', s.cold.ms <= 2000, `(${(s.cold.bytes / 2 ** 20).toFixed(1)} MiB; empty collector ${baseScrape.cold.ms.toFixed(1)} ms)`);
  line('later /metrics scrape (rendered hosts reused)', s.warm.ms, 'ms', '<= 2000', s.warm.ms <= 2000, `(${(s.warm.ms / s.cold.ms).toFixed(2)}x the first)`);
  await collector.close();
  // The first collector's state is garbage now: collect it here, not in the next scrape.
  globalThis.gc?.();

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
  await new Promise((r) => setImmediate(r));
  globalThis.gc?.();
  const l = await scrape(lean.url);
  line('first scrape, per-host series non-passing only', l.cold.ms, 'ms', '<= 2000', l.cold.ms <= 2000, `(${(l.cold.bytes / 2 ** 20).toFixed(1)} MiB; later ${l.warm.ms.toFixed(0)} ms)`);
  await lean.close();
} finally {
  removeScratch(dir);
}
