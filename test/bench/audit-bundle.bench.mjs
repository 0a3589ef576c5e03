// The audit bundle's costs (issue 14): export (target ≥ 20,000 envelopes/s, RSS ≤ 256 MiB and flat
// in the bundle's size) and verify (target ≥ 0.8× the raw Ed25519 verify rate of all cores; RSS
// ≤ 256 MiB). A store of real signed envelopes is built, entered in the log as a migration, then
// exported and verified at two sizes, each by vcm-collector in a process of its own (its peak RSS
// is the process's). Baselines from this run: reading the same evidence files and nothing else
// (one at a time, 64 at a time, and through the store's getMany as the export does), and raw
// Ed25519 verifies on every core at once (worker threads).
// BENCH_AUDIT_SIZES=100000,1000000 for the sizes (the default is smaller, to stay short).
import { generateKeyPairSync, sign, verify } from 'node:crypto';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, readFile as readFileCb, readFileSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { removeScratch, scratchDir } from './scratch.mjs';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const dist = (p) => path.join(repo, 'dist', p);
const { FsEvidenceStore } = await import(dist('collector/store.js'));
const { CollectorState } = await import(dist('collector/state.js'));
const { LogSet } = await import(dist('collector/log/logs.js'));
const { AgentRegistry } = await import(dist('collector/registry.js'));
const { agentIdFor, evidenceKey, sha256Hex, signEnvelope, buildStatement, PAYLOAD_TYPE_STATEMENT } = await import(dist('collector/contract.js'));
const { unpackTarGz } = await import(dist('collector/audit/tar.js'));
const { default: pino } = await import(path.join(repo, 'node_modules/pino/pino.js'));

const SIZES = (process.env.BENCH_AUDIT_SIZES ?? '20000,100000').split(',').map(Number);
const AGENTS = 100;
const MiB = 1024 * 1024;

function line(name, value, unit, target, ok, extra = '') {
  console.log(`${name.padEnd(44)} ${value.toFixed(1).padStart(9)} ${unit.padEnd(8)} target ${target.padEnd(16)} ${ok ? 'PASS' : 'MISS'} ${extra}`);
}

/** Runs vcm-collector with `args` in a process of its own: its output, wall time and peak RSS. */
async function cli(args) {
  const rssFile = path.join(scratchDir('audit-rss'), 'max-rss');
  const t0 = performance.now();
  const child = spawn(process.execPath, ['--import', path.join(repo, 'test/bench/max-rss.mjs'), dist('collector/cli.js'), ...args], { env: { ...process.env, BENCH_MAX_RSS_FILE: rssFile }, stdio: ['ignore', 'pipe', 'inherit'] });
  let stdout = '';
  child.stdout.on('data', (b) => (stdout += b));
  const [code] = await once(child, 'exit');
  const seconds = (performance.now() - t0) / 1000;
  if (code !== 0 && !(args[0] === 'verify' && code === 1)) throw new Error(`vcm-collector ${args[0]} exited ${code}`);
  const maxRssMiB = Number(readFileSync(rssFile, 'utf8')) / 1024;
  removeScratch(path.dirname(rssFile));
  return { stdout, seconds, maxRssMiB };
}

// ---- raw Ed25519 on every core: the verify baseline ------------------------------------------
const cores = availableParallelism();
const rawPerCore = await Promise.all(
  Array.from({ length: cores }, () =>
    new Promise((resolve, reject) => {
      const w = new Worker(
        `const { generateKeyPairSync, sign, verify } = require('node:crypto'); const { parentPort } = require('node:worker_threads');
         const { privateKey, publicKey } = generateKeyPairSync('ed25519'); const m = Buffer.alloc(2000, 1); const s = sign(null, m, privateKey);
         const t = performance.now(); for (let i = 0; i < 20000; i++) verify(null, m, publicKey, s); parentPort.postMessage(20000 / ((performance.now() - t) / 1000));`,
        { eval: true },
      );
      w.once('message', (r) => {
        resolve(r);
        void w.terminate();
      });
      w.once('error', reject);
    }),
  ),
);
const rawAllCores = rawPerCore.reduce((a, b) => a + b, 0);

for (const N of SIZES) {
  // ---- a store of N real signed envelopes, entered in the log ---------------------------------
  const dir = scratchDir('audit');
  const collector = generateKeyPairSync('ed25519');
  mkdirSync(path.join(dir, 'secrets'), { recursive: true });
  writeFileSync(path.join(dir, 'secrets', 'collector-ed25519.pem'), collector.privateKey.export({ type: 'pkcs8', format: 'pem' }));
  mkdirSync(path.join(dir, 'keys'), { recursive: true });
  mkdirSync(path.join(dir, 'policy'), { recursive: true });
  writeFileSync(path.join(dir, 'policy', '1.json'), JSON.stringify({ version: 1, createdAt: '2026-10-01T00:00:00.000Z', freshnessSeconds: 7200, checks: { open_ports: { enabled: true, intervalSeconds: 900, config: {} } }, vendors: {}, exceptions: [] }));
  const files = [];
  const perAgent = N / AGENTS;
  for (let a = 0; a < AGENTS; a++) {
    const k = generateKeyPairSync('ed25519');
    const pem = k.publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const agentId = agentIdFor(pem);
    const hostname = `build-${a}.acme.example`;
    writeFileSync(path.join(dir, 'keys', `${agentId}.json`), JSON.stringify({ agentId, vendor: 'acme', host: { hostname, os: 'linux', arch: 'x64' }, agentVersion: '0.1.0', publicKey: pem, enrolledAt: '2026-10-01T00:00:00.000Z', revokedAt: null }));
    let prev = null;
    for (let seq = 1; seq <= perAgent; seq++) {
      // One result a minute from 2026-11-01, so that the envelopes spread over days.
      const collectedAt = new Date(Date.UTC(2026, 10, 1) + seq * 60_000).toISOString();
      const finding = { check: 'open_ports', checkVersion: '1.0.0', platform: 'linux', status: 'pass', reasons: [], facts: { listeners: [], missingSources: [], processScan: { pids: 0, denied: 0, vanished: 0 } }, collectedAt, durationMs: 1 };
      const statement = buildStatement({ agentId, agentVersion: '0.1.0', host: { hostname, os: 'linux', arch: 'x64' }, seq, prev, collectedAt, policyVersion: 1, finding });
      const bytes = signEnvelope(PAYLOAD_TYPE_STATEMENT, Buffer.from(JSON.stringify(statement)), k.privateKey, agentId);
      const hash = sha256Hex(bytes);
      const key = evidenceKey({ vendor: 'acme', collectedAt, agentId, seq, sha256: hash });
      mkdirSync(path.dirname(path.join(dir, key)), { recursive: true });
      writeFileSync(path.join(dir, key), bytes);
      files.push(key);
      prev = hash;
    }
  }
  let t = performance.now();
  for (const f of files) await readFile(path.join(dir, f));
  const readRate = files.length / ((performance.now() - t) / 1000);
  // And 64 at a time, as the export reads them.
  t = performance.now();
  {
    let next = 0;
    const one = (f) => new Promise((resolve, reject) => readFileCb(path.join(dir, f), (err, b) => (err ? reject(err) : resolve(b))));
    await Promise.all(Array.from({ length: 64 }, async () => { while (next < files.length) await one(files[next++]); }));
  }
  const readRate64 = files.length / ((performance.now() - t) / 1000);
  // And through the store's getMany, 256 at a time, on its read thread: what the export reads with.
  t = performance.now();
  {
    const reader = new FsEvidenceStore(dir);
    for (let i = 0; i < files.length; i += 256) await reader.getMany(files.slice(i, i + 256));
    await reader.close();
  }
  const readRateMany = files.length / ((performance.now() - t) / 1000);

  const store = new FsEvidenceStore(dir, { journal: true });
  await store.open();
  const registry = new AgentRegistry(store);
  await registry.load();
  const state = new CollectorState();
  await state.rebuild(store, { version: 1, createdAt: '2026-10-01T00:00:00.000Z', freshnessSeconds: 7200, checks: {}, vendors: {}, exceptions: [] }, (id) => registry.loaded(id)?.record.vendor);
  const logs = new LogSet({ store, key: collector.privateKey, origin: 'bench.test/vcm', log: pino({ level: 'silent' }) });
  await logs.start({ agents: registry.all(), state, now: new Date() });
  files.length = 0;

  // Nothing of the setup stays open: the CLI below opens the store itself, as a user's would.
  await logs.checkpointAll(new Date());
  await store.close();

  // ---- export: the CLI, in a process of its own --------------------------------------------
  const out = path.join(dir, 'bundle.tar.gz');
  const exported = await cli(['export', '--data-dir', dir, '--vendor', 'acme', '--from', '2026-11-01', '--to', '2027-01-01', '--out', out, '--tmp-dir', dir, '--format', 'json']);
  const summary = JSON.parse(exported.stdout);
  const exportRate = summary.envelopes / exported.seconds;
  line(`export, ${N} envelopes`, exportRate, 'env/s', '>= 20000', exportRate >= 20_000, `(vcm-collector export, start to end: ${exported.seconds.toFixed(1)} s, ${(summary.bytes / MiB).toFixed(0)} MiB bundle; reading the same files alone: ${Math.round(readRate)}/s one at a time, so ${(exportRate / readRate).toFixed(2)}x that; ${Math.round(readRate64)}/s 64 at a time, so ${(exportRate / readRate64).toFixed(2)}x; ${Math.round(readRateMany)}/s through the store's getMany, so ${(exportRate / readRateMany).toFixed(2)}x)`);
  line(`export RSS, ${N} envelopes`, exported.maxRssMiB, 'MiB', '<= 256', exported.maxRssMiB <= 256, '(the export process\'s peak)');

  // ---- verify: the CLI on the unpacked bundle, then on the .tar.gz (unpacking it too) ----------
  const unpacked = path.join(dir, 'unpacked');
  mkdirSync(unpacked);
  await unpackTarGz(out, unpacked);
  const keyFile = path.join(dir, 'collector.pub.pem');
  writeFileSync(keyFile, collector.publicKey.export({ type: 'spki', format: 'pem' }));
  for (const [what, target] of [['unpacked', unpacked], ['tar.gz', out]]) {
    const verified = await cli(['verify', target, '--collector-key', keyFile, '--format', 'json']);
    const v = JSON.parse(verified.stdout);
    if (!v.verified) console.log('the benchmark bundle did not verify:', JSON.stringify(v.defects.slice(0, 3)));
    const verifyRate = v.counts.envelopes / verified.seconds;
    const ratio = verifyRate / rawAllCores;
    line(`verify (${what}), ${N} envelopes`, verifyRate, 'env/s', '>= 0.8x raw', ratio >= 0.8, `(vcm-collector verify, start to end: ${ratio.toFixed(2)}x raw Ed25519 on ${cores} cores: ${Math.round(rawAllCores)}/s; ${verified.seconds.toFixed(1)} s${v.verified ? '' : ', NOT VERIFIED'})`);
    line(`verify RSS (${what}), ${N} envelopes`, verified.maxRssMiB, 'MiB', '<= 256', verified.maxRssMiB <= 256, "(the verify process's peak, its worker threads with it)");
  }
  removeScratch(dir);
}
// One raw single-core verify, for scale.
{
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const m = Buffer.alloc(2000, 1);
  const s = sign(null, m, privateKey);
  const t = performance.now();
  for (let i = 0; i < 5000; i++) verify(null, m, publicKey, s);
  console.log(`(raw Ed25519 verify on one core here: ${Math.round(5000 / ((performance.now() - t) / 1000))}/s)`);
}
