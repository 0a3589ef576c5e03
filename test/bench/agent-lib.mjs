// Shared by the agent benchmarks: real processes from dist/, a collector on loopback, an enrolled
// agent, /proc readings, and one way to print a target beside its baseline.
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { removeScratch, scratchDir } from './scratch.mjs';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const AGENT_CLI = process.env.BENCH_AGENT_CLI ?? path.join(REPO, 'dist/vcm-agent/cli.js');
export const COLLECTOR_CLI = path.join(REPO, 'dist/collector/cli.js');
export const UNIT_FILE = path.join(REPO, 'agent/systemd/vcm-agent.service');

export function onLinux() {
  return process.platform === 'linux';
}

export function tempDir(prefix) {
  const dir = scratchDir(prefix);
  return { dir, cleanup: () => removeScratch(dir) };
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function percentile(xs, p) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
}

/** A process with its stdout split into JSON lines. */
export function startProcess(args, env = {}) {
  const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines = [];
  let stderr = '';
  let buf = '';
  const waiters = [];
  child.stdout.on('data', (d) => {
    buf += d.toString();
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const text = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      try {
        const line = JSON.parse(text);
        lines.push(line);
        for (const w of waiters.splice(0)) if (!w(line)) waiters.push(w);
      } catch {
        // not a log line
      }
    }
  });
  child.stderr.on('data', (d) => (stderr += d.toString()));
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  return {
    child,
    lines,
    stderr: () => stderr,
    exited,
    waitFor(pred, timeoutMs = 60_000, what = 'a log line') {
      const seen = lines.find(pred);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}\n${stderr}`)), timeoutMs);
        waiters.push((l) => {
          if (!pred(l)) return false;
          clearTimeout(timer);
          resolve(l);
          return true;
        });
      });
    },
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** A collector on a free loopback port with an agent enrolled to it. */
export async function collectorWithAgent(name) {
  const tmp = tempDir(name);
  const dataDir = path.join(tmp.dir, 'store');
  const collector = startProcess([COLLECTOR_CLI, 'serve', '--data-dir', dataDir, '--listen', '127.0.0.1:0']);
  const { url } = await collector.waitFor((l) => l.msg === 'collector ready', 20_000, 'the collector');
  const agents = [];
  const enroll = (hostname) => {
    const stateDir = path.join(tmp.dir, `agent-${hostname}`);
    const token = spawnSync(process.execPath, [COLLECTOR_CLI, 'token', 'create', '--vendor', 'bench', '--data-dir', dataDir], { encoding: 'utf8' });
    if (token.status !== 0) throw new Error(token.stderr);
    const res = spawnSync(process.execPath, [AGENT_CLI, 'enroll', '--collector', url, '--token', token.stdout.trim(), '--state-dir', stateDir, '--hostname', hostname], {
      encoding: 'utf8',
      env: { ...process.env, VCM_CONFIG: '' },
    });
    if (res.status !== 0) throw new Error(res.stderr);
    agents.push(stateDir);
    return stateDir;
  };
  return {
    url,
    enroll,
    async close() {
      await collector.stop();
      tmp.cleanup();
    },
  };
}

/** Resident and proportional set size of a process, in MiB (Linux). */
export function memoryOf(pid) {
  const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const kib = (k) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(rollup)?.[1] ?? NaN);
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const hwm = Number(/^VmHWM:\s+(\d+)/m.exec(status)?.[1] ?? NaN);
  return { rssMb: kib('Rss') / 1024, pssMb: kib('Pss') / 1024, anonMb: kib('Anonymous') / 1024, sharedMb: kib('Shared_Clean') / 1024, peakMb: hwm / 1024 };
}

/** User + system CPU time of a live process, in ms (Linux; clock-tick resolution). */
export function cpuMsOf(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  const hz = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;
  return (ticks * 1000) / hz;
}

/** The node flags and environment the shipped systemd unit starts the agent with. */
export function serviceLaunch() {
  const unit = readFileSync(UNIT_FILE, 'utf8');
  const exec = /^ExecStart=(.*)$/m.exec(unit)[1].trim().split(/\s+/);
  const script = exec.findIndex((t) => t.endsWith('/vcm-agent/cli.js'));
  const env = {};
  for (const m of unit.matchAll(/^Environment=(\w+)=(.*)$/gm)) env[m[1]] = m[2];
  // BENCH_AGENT_NODE_FLAGS adds Node flags, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof".
  const extra = (process.env.BENCH_AGENT_NODE_FLAGS ?? '').split(' ').filter(Boolean);
  return { nodeFlags: [...exec.slice(1, script), ...extra], env };
}

/** Prints one target: what, target, measured, baseline, ratio, PASS/MISS. */
export function report({ name, target, measured, baseline, unit, pass, note }) {
  const ratio = baseline > 0 ? measured / baseline : NaN;
  const fmt = (v) => (typeof v === 'number' ? `${v.toFixed(unit === 'ms' ? 1 : 1)} ${unit}` : String(v));
  console.log(`${pass ? 'PASS' : 'MISS'}  ${name}`);
  console.log(`      target    ${target}`);
  console.log(`      measured  ${fmt(measured)}`);
  console.log(`      baseline  ${fmt(baseline)}`);
  console.log(`      ratio     ${ratio.toFixed(2)}×`);
  if (note) console.log(`      note      ${note}`);
  return pass;
}
