// Target: the idle RSS of the running daemon, 10 minutes in, is at most 1.5× that of a bare
// `node -e "setInterval(()=>{},1e3)"` started at the same moment (stretch: 1.35×).
// BENCH_IDLE_SECONDS (default 600, the issue's 10 minutes) shortens it for a quick look.
// The daemon is started exactly as the shipped systemd unit starts it (its node flags and
// environment), enrolled to a real collector on loopback, with the default policy: it runs every
// check once at start (all are overdue), delivers, then idles on its schedule. The same daemon
// without the unit's flags is measured beside it, for the record.
import { spawn } from 'node:child_process';
import { AGENT_CLI, collectorWithAgent, memoryOf, onLinux, report, serviceLaunch, sleep, startProcess } from './agent-lib.mjs';

if (!onLinux()) {
  console.log('SKIP: needs /proc (Linux)');
  process.exit(0);
}
const seconds = Number(process.env.BENCH_IDLE_SECONDS ?? 600);
const env = await collectorWithAgent('idle');
let exit = 0;
try {
  const { nodeFlags, env: unitEnv } = serviceLaunch();
  const bare = spawn(process.execPath, ['-e', 'setInterval(()=>{},1e3)'], { stdio: 'ignore' });
  const common = { VCM_CONFIG: '', VCM_WATCHDOG_ENABLED: 'false' };
  const shipped = startProcess([...nodeFlags, AGENT_CLI, 'run', '--state-dir', env.enroll('bench-idle')], { ...unitEnv, ...common });
  const plain = startProcess([AGENT_CLI, 'run', '--state-dir', env.enroll('bench-idle-plain')], common);
  for (const d of [shipped, plain]) await d.waitFor((l) => l.msg === 'cycle done', 120_000, 'the first cycle');
  console.log(`idle for ${seconds} s (BENCH_IDLE_SECONDS) …`);
  const t0 = Date.now();
  while (Date.now() - t0 < seconds * 1000) {
    await sleep(Math.min(60_000, seconds * 1000 - (Date.now() - t0)));
    const s = memoryOf(shipped.child.pid);
    console.log(`  t=${Math.round((Date.now() - t0) / 1000)} s: daemon RSS ${s.rssMb.toFixed(1)} MiB, bare ${memoryOf(bare.pid).rssMb.toFixed(1)} MiB`);
  }
  // Sample when no check is running (a scheduled slot may fall in the window).
  const busy = (d) => {
    const started = d.lines.filter((l) => l.msg === 'check started').length;
    return started > d.lines.filter((l) => l.msg === 'check done').length;
  };
  while (busy(shipped) || busy(plain)) await sleep(500);
  const b = memoryOf(bare.pid);
  const s = memoryOf(shipped.child.pid);
  const p = memoryOf(plain.child.pid);
  const runs = shipped.lines.filter((l) => l.msg === 'check done').length;
  console.log(`daemon as shipped: node ${nodeFlags.join(' ')}${Object.keys(unitEnv).length ? ` (env ${Object.entries(unitEnv).map(([k, v]) => `${k}=${v}`).join(' ')})` : ''}`);
  console.log(`  RSS ${s.rssMb.toFixed(1)} MiB = ${s.sharedMb.toFixed(1)} shared (node binary, libraries) + ${s.anonMb.toFixed(1)} anonymous; PSS ${s.pssMb.toFixed(1)}; peak ${s.peakMb.toFixed(1)}; ${runs} check runs`);
  console.log(`daemon without flags: RSS ${p.rssMb.toFixed(1)} MiB (${(p.rssMb / b.rssMb).toFixed(2)}×), peak ${p.peakMb.toFixed(1)}`);
  console.log(`bare node: RSS ${b.rssMb.toFixed(1)} MiB = ${b.sharedMb.toFixed(1)} shared + ${b.anonMb.toFixed(1)} anonymous`);
  const ratio = s.rssMb / b.rssMb;
  report({
    name: `idle RSS of the daemon, ${seconds} s in`,
    target: '≤ 1.5× bare node (stretch 1.35×)',
    measured: s.rssMb,
    baseline: b.rssMb,
    unit: 'MiB',
    pass: ratio <= 1.5,
    note: ratio <= 1.35 ? 'stretch goal met' : `stretch goal (1.35×) ${ratio <= 1.35 ? 'met' : 'missed'}`,
  });
  bare.kill();
  await Promise.all([shipped.stop(), plain.stop()]);
} catch (err) {
  console.error(err);
  exit = 1;
} finally {
  await env.close();
}
process.exit(exit);
