// The transparency log's costs (issue 13): entering the evidence of a store that predates the log
// (target ≥ 50,000 entries/s on the filesystem store), and the CPU one entry costs at ingest
// (target: ≤ 10 % of an ingested envelope's CPU). Baselines from this run: reading the same
// evidence files and nothing else, and one raw Ed25519 verify.
import { generateKeyPairSync, sign, verify } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { removeScratch, scratchDir } from './scratch.mjs';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const dist = (p) => path.join(repo, 'dist', p);
const { FsEvidenceStore } = await import(dist('collector/store.js'));
const { CollectorState } = await import(dist('collector/state.js'));
const { LogSet } = await import(dist('collector/log/logs.js'));
const { VendorLog } = await import(dist('collector/log/vendor-log.js'));
const { AgentRegistry } = await import(dist('collector/registry.js'));
const { agentIdFor, evidenceKey, sha256Hex } = await import(dist('collector/contract.js'));
const { default: pino } = await import(path.join(repo, 'node_modules/pino/pino.js'));

const ENTRIES = Number(process.env.BENCH_LOG_ENTRIES ?? 60_000);
const AGENTS = 200;

function line(name, value, unit, target, ok, extra = '') {
  console.log(`${name.padEnd(44)} ${value.toFixed(1).padStart(9)} ${unit.padEnd(8)} target ${target.padEnd(16)} ${ok ? 'PASS' : 'MISS'} ${extra}`);
}

// ---- migration: a store with evidence and no log -------------------------------------------
const dir = scratchDir('log');
const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const files = [];
// Envelope-shaped files (what the migration reads: the payload's collectedAt and predicate).
for (let a = 0; a < AGENTS; a++) {
  const pem = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const agentId = agentIdFor(pem);
  mkdirSync(path.join(dir, 'keys'), { recursive: true });
  writeFileSync(
    path.join(dir, 'keys', `${agentId}.json`),
    JSON.stringify({ agentId, vendor: 'acme', host: { hostname: `h${a}`, os: 'linux', arch: 'x64' }, agentVersion: '0.1.0', publicKey: pem, enrolledAt: '2026-11-01T00:00:00.000Z', revokedAt: null }),
  );
  for (let seq = 1; seq <= ENTRIES / AGENTS; seq++) {
    const collectedAt = new Date(Date.UTC(2026, 10, 22, 0, 0, seq)).toISOString();
    const payload = Buffer.from(JSON.stringify({ predicate: { seq, collectedAt, finding: {} } })).toString('base64');
    const bytes = Buffer.from(JSON.stringify({ payloadType: 'application/vnd.in-toto+json', payload, signatures: [{ keyid: agentId, sig: 'x' }] }));
    const key = evidenceKey({ vendor: 'acme', collectedAt, agentId, seq, sha256: sha256Hex(bytes) });
    mkdirSync(path.dirname(path.join(dir, key)), { recursive: true });
    writeFileSync(path.join(dir, key), bytes);
    files.push(key);
  }
}

let t = performance.now();
for (const f of files) await readFile(path.join(dir, f));
const readRate = files.length / ((performance.now() - t) / 1000);

const store = new FsEvidenceStore(dir, { journal: true });
await store.open();
const registry = new AgentRegistry(store);
await registry.load();
const state = new CollectorState();
await state.rebuild(store, { version: 1, createdAt: '2026-11-01T00:00:00.000Z', freshnessSeconds: 3600, checks: {}, vendors: {}, exceptions: [] }, (id) => registry.loaded(id)?.record.vendor);
const logs = new LogSet({ store, key: privateKey, origin: 'bench.test/vcm', log: pino({ level: 'silent' }) });
t = performance.now();
const { migrated } = await logs.start({ agents: registry.all(), state, now: new Date() });
const seconds = (performance.now() - t) / 1000;
const rate = migrated / seconds;
line('migration: stored evidence entered in the log', rate, 'entry/s', '>= 50000', rate >= 50_000, `(${migrated} entries with a checkpoint in ${seconds.toFixed(2)} s; reading the same files alone: ${Math.round(readRate)}/s, so ${(rate / readRate).toFixed(2)}x that)`);
await store.close();
removeScratch(dir);

// ---- CPU per entry at ingest -----------------------------------------------------------------
/** The store's side at its cheapest (memory), so that what is measured is the log's own work. */
class MemoryStore {
  objects = new Map();
  description = 'memory:';
  async putIfAbsent(k, b) {
    if (this.objects.has(k)) return 'exists';
    this.objects.set(k, b);
    return 'created';
  }
  async get(k) {
    return this.objects.get(k) ?? null;
  }
  async *list(prefix) {
    for (const k of [...this.objects.keys()].sort()) if (k.startsWith(prefix)) yield k;
  }
  async ping() {}
}
const msg = Buffer.alloc(600, 1);
const sig = sign(null, msg, privateKey);
t = performance.now();
let c0 = process.cpuUsage();
for (let i = 0; i < 20_000; i++) verify(null, msg, publicKey, sig);
const vc = process.cpuUsage(c0);
const verifyUs = (vc.user + vc.system) / 20_000;
const vlog = new VendorLog({ vendor: 'acme', origin: 'bench.test/vcm/acme', store: new MemoryStore(), key: privateKey });
await vlog.load(() => undefined);
const N = 50_000;
const agentId = sha256Hex('agent-0');
// The entries as ingest builds them, made before the clock starts: their hashes come from ingest.
const rounds = [];
for (let i = 0; i < N; i += 50) {
  const round = [];
  for (let j = 0; j < 50; j++) {
    const seq = i + j + 1;
    const h = sha256Hex(String(seq));
    round.push({ type: 'envelope', agentId, seq, sha256: h, key: `evidence/vendor=acme/date=2026-11-22/agent=${agentId}/${String(seq).padStart(12, '0')}-${h}.dsse.json`, predicate: 'finding', collectedAt: '2026-11-22T10:00:00.000Z', receivedAt: '2026-11-22T10:00:01.000Z', migrated: false });
  }
  rounds.push(round);
}
globalThis.gc?.();
c0 = process.cpuUsage();
for (const round of rounds) await vlog.append(round);
await vlog.issueCheckpoint(new Date());
const cpu = process.cpuUsage(c0);
const entryUs = (cpu.user + cpu.system) / N;
// collector-ingest measures an envelope of a batch at about 2.5 raw verifies of CPU on this machine.
const share = entryUs / (2.5 * verifyUs);
line('log CPU per ingested entry', entryUs, 'µs', '<= 10% envelope', share <= 0.1, `(${(entryUs / verifyUs).toFixed(2)}x one raw verify of ${verifyUs.toFixed(1)} µs; ${(share * 100).toFixed(1)} % of a batch envelope's ~2.5 verifies, see collector-ingest)`);
