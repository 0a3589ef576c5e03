// The daemon's lifecycle as an operator meets it: stop, watchdog restart, one process per state
// directory, status, policy changes without a restart, uninstall. Real collector, real processes.
import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_CLI, COLLECTOR_CLI, runCli, startCollectorProcess, tempDir, type CollectorProcess } from '../../helpers/processes.js';
import { AgentDaemon, enroll, storedEvidence } from './harness.js';

let dir: Awaited<ReturnType<typeof tempDir>>;
let collector: CollectorProcess;
let dataDir: string;
let n = 0;

beforeAll(async () => {
  dir = await tempDir('lifecycle');
  dataDir = path.join(dir.dir, 'store');
  collector = await startCollectorProcess(dataDir);
});

afterAll(async () => {
  await collector?.stop();
  await dir?.cleanup();
});

async function freshAgent(): Promise<{ stateDir: string; agentId: string }> {
  const stateDir = path.join(dir.dir, `agent-${++n}`);
  return { stateDir, agentId: await enroll(collector.url, dataDir, stateDir, `host-${n}`) };
}

const cli = (args: string[], env: Record<string, string> = {}) => runCli(AGENT_CLI, args, { env: { VCM_CONFIG: '', ...env } });

describe('daemon lifecycle (real collector)', () => {
  it('SIGTERM finishes the check in flight, spools it, writes status, and exits 0', async () => {
    const { stateDir } = await freshAgent();
    const daemon = new AgentDaemon(['--state-dir', stateDir, '--log-level', 'debug']);
    await daemon.waitFor((l) => l.msg === 'check started', 20_000, 'a check start');
    daemon.child.kill('SIGTERM');
    const { code } = await daemon.exited;
    expect(code).toBe(0);
    const msgs = daemon.lines.map((l) => l.msg);
    const stopping = msgs.indexOf('stopping: finishing the check in flight');
    expect(stopping).toBeGreaterThan(-1);
    // The check in flight when the signal was handled: the last one started before it (the first
    // may have finished between its log line and the signal).
    const inFlight = daemon.lines.slice(0, stopping).filter((l) => l.msg === 'check started').at(-1)!;
    const finished = daemon.lines.findIndex((l) => l.msg === 'check done' && l.check === inFlight.check);
    expect(finished).toBeGreaterThan(-1);
    expect(daemon.lines.filter((l) => l.msg === 'check done').at(-1)).toBe(daemon.lines[finished]);
    expect(msgs.lastIndexOf('agent stopped')).toBeGreaterThan(finished);
    // Nothing after the stop began: the checks still queued were dropped, not run.
    expect(daemon.lines.slice(stopping).filter((l) => l.msg === 'check started')).toEqual([]);
    const chain = JSON.parse(await readFile(path.join(stateDir, 'chain.json'), 'utf8')) as { seq: number };
    expect(chain.seq).toBe(daemon.lines[finished]!.seq);
    const status = JSON.parse(await readFile(path.join(stateDir, 'status.json'), 'utf8')) as { daemon: { stopReason: string; stoppedAt: string } };
    expect(status.daemon.stopReason).toBe('signal SIGTERM');
    expect(await readdir(stateDir)).not.toContain('agent.lock');
  }, 60_000);

  it('over its memory budget, the watchdog restarts it cleanly (exit 75), and the next envelope says so', async () => {
    const { stateDir, agentId } = await freshAgent();
    const first = new AgentDaemon(['--state-dir', stateDir], { VCM_WATCHDOG_ENABLED: 'true', VCM_WATCHDOG_RSS_MAX_MB: '16', VCM_WATCHDOG_SAMPLE_SECONDS: '1' });
    const { code } = await first.exited;
    expect(code).toBe(75);
    expect(first.lines.find((l) => l.msg === 'watchdog: over budget; restarting cleanly')).toMatchObject({ reason: 'rss', budgetRssMb: 16 });
    // What the service manager does next: start it again.
    const second = new AgentDaemon(['--state-dir', stateDir, '--interval', '1']);
    await second.waitFor((l) => l.msg === 'delivery pass' && (l.accepted as number) > 0, 30_000, 'a delivery');
    expect((await second.stop()).code).toBe(0);
    const stored = await storedEvidence(dataDir, agentId);
    const events = stored.flatMap((s) => s.predicate.events ?? []);
    expect(events.find((e) => e.type === 'watchdog_restart')?.detail).toMatchObject({ reason: 'rss', budgetRssMb: 16 });
    expect(events.filter((e) => e.type === 'started').map((e) => e.detail?.previousStop)).toContain('watchdog');
    const status = await cli(['status', '--state-dir', stateDir]);
    expect(status.stdout).toMatch(/watchdog\s+restarted .* \(rss\)/);
  }, 60_000);

  it('one process per state directory: a second daemon or run --once is refused while one runs', async () => {
    const { stateDir } = await freshAgent();
    const daemon = new AgentDaemon(['--state-dir', stateDir]);
    await daemon.waitFor((l) => l.msg === 'agent started');
    const second = await cli(['run', '--state-dir', stateDir]);
    expect(second.code).toBe(2);
    expect(second.stderr).toContain('AGT_ERR_STATE_LOCKED');
    const once = await cli(['run', '--once', '--state-dir', stateDir]);
    expect(once.code).toBe(2);
    expect(once.stderr).toContain('AGT_ERR_STATE_LOCKED');
    const uninstall = await cli(['uninstall', '--state-dir', stateDir]);
    expect(uninstall.code).toBe(2);
    expect(uninstall.stderr).toContain('AGT_ERR_STATE_LOCKED');
    const status = JSON.parse((await cli(['status', '--state-dir', stateDir, '--format', 'json'])).stdout) as { daemon: { state: string; pid: number } };
    expect(status.daemon).toMatchObject({ state: 'running', pid: daemon.child.pid });
    expect((await daemon.stop()).code).toBe(0);
  }, 60_000);

  it('status shows enrolled to, agent id, daemon, last run per check, spool, last delivery and last error', async () => {
    const { stateDir, agentId } = await freshAgent();
    const daemon = new AgentDaemon(['--state-dir', stateDir]);
    await daemon.waitDrained();
    expect((await daemon.stop()).code).toBe(0);
    const text = (await cli(['status', '--state-dir', stateDir])).stdout;
    for (const label of ['enrolled to', 'agent id', 'daemon', 'policy', 'chain head', 'spool', 'last delivery', 'last error']) expect(text).toMatch(new RegExp(`^${label}\\s`, 'm'));
    expect(text).toContain(collector.url);
    expect(text).toContain(agentId);
    expect(text).toMatch(/daemon\s+stopped \(signal SIGTERM/);
    expect(text).toMatch(/^open_ports\s+(PASS|FAIL|UNKNOWN)\s+\d{4}-/m);
    const json = JSON.parse((await cli(['status', '--state-dir', stateDir, '--format', 'json'])).stdout) as {
      enrolled: boolean;
      agentId: string;
      spoolDepth: number;
      checks: Record<string, { lastRunAt: string; lastSeq: number }>;
      delivery: { lastOutcome: string; accepted: number };
      lastError: unknown;
    };
    expect(json).toMatchObject({ enrolled: true, agentId, spoolDepth: 0, lastError: null, delivery: { lastOutcome: 'delivered' } });
    expect(Object.keys(json.checks)).toEqual(expect.arrayContaining(['vpn', 'disk_encryption', 'usb_policy', 'credential_age', 'open_ports']));
  }, 60_000);

  it('a policy change at the collector is picked up without a restart (SIGHUP asks for a refresh now)', async () => {
    const { stateDir } = await freshAgent();
    const daemon = new AgentDaemon(['--state-dir', stateDir, '--interval', '1']);
    await daemon.waitFor((l) => l.msg === 'check done' && l.check === 'vpn', 30_000, 'a vpn run');
    const admin = await runCli(COLLECTOR_CLI, ['admin-token', 'create', '--role', 'admin', '--name', 'test', '--data-dir', dataDir]);
    expect(admin.code, admin.stderr).toBe(0);
    const tokenFile = path.join(dir.dir, 'admin-token');
    await writeFile(tokenFile, admin.stdout.trim());
    const policyFile = path.join(dir.dir, 'policy.json');
    await writeFile(
      policyFile,
      JSON.stringify({
        freshnessSeconds: 7200,
        checks: {
          vpn: { enabled: false, intervalSeconds: 900, config: {} },
          disk_encryption: { enabled: false, intervalSeconds: 3600, config: {} },
          usb_policy: { enabled: false, intervalSeconds: 3600, config: {} },
          credential_age: { enabled: false, intervalSeconds: 86400, config: {} },
          sso_coverage: { enabled: false, intervalSeconds: 3600, config: {} },
          open_ports: { enabled: true, intervalSeconds: 60, config: {} },
        },
      }),
    );
    const set = await runCli(COLLECTOR_CLI, ['policy', 'set', policyFile, '--collector', collector.url, '--admin-token-file', tokenFile]);
    expect(set.code, set.stderr).toBe(0);
    daemon.child.kill('SIGHUP');
    const changed = await daemon.waitFor((l) => l.msg === 'policy changed; re-planning checks', 20_000, 'the policy change');
    const from = daemon.lines.indexOf(changed);
    await daemon.waitFor((l) => daemon.lines.indexOf(l) > from && l.msg === 'check done' && l.check === 'open_ports', 20_000, 'open_ports under the new policy');
    const inFlight = daemon.lines.slice(from).findIndex((l) => l.msg === 'check done');
    await daemon.waitFor((l) => daemon.lines.indexOf(l) > from + inFlight + 2 && l.msg === 'check done', 20_000, 'more runs');
    expect((await daemon.stop()).code).toBe(0);
    // After the change (and the run that was in flight), only open_ports runs.
    const after = daemon.lines.slice(from + inFlight + 1).filter((l) => l.msg === 'check done');
    expect(after.length).toBeGreaterThan(0);
    expect(new Set(after.map((l) => l.check))).toEqual(new Set(['open_ports']));
    const cached = JSON.parse(await readFile(path.join(stateDir, 'policy.json'), 'utf8')) as { version: number; checks: { vpn: { enabled: boolean } } };
    expect(cached.checks.vpn.enabled).toBe(false);
  }, 90_000);

  it('uninstall leaves nothing behind but what the operator keeps', async () => {
    const { stateDir } = await freshAgent();
    const daemon = new AgentDaemon(['--state-dir', stateDir]);
    await daemon.waitDrained();
    expect((await daemon.stop()).code).toBe(0);
    const configDir = path.join(dir.dir, `etc-${n}`);
    await mkdir(configDir);
    const config = path.join(configDir, 'config.json');
    await writeFile(config, JSON.stringify({ stateDir }));
    await writeFile(path.join(stateDir, 'operator-notes.txt'), 'mine');

    const dry = await cli(['uninstall', '--config', config, '--dry-run']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain('would remove');
    expect((await stat(path.join(stateDir, 'agent-ed25519.pem'))).isFile()).toBe(true);

    const keep = await cli(['uninstall', '--config', config, '--keep-key', '--keep-config']);
    expect(keep.code, keep.stderr).toBe(0);
    expect((await readdir(stateDir)).sort()).toEqual(['agent-ed25519.pem', 'identity.json', 'operator-notes.txt']);
    expect(keep.stdout).toMatch(/left\s+.*operator-notes\.txt \(not created by vcm-agent\)/);
    expect(keep.stdout).toContain('systemctl disable --now vcm-agent');

    const all = await cli(['uninstall', '--config', config]);
    expect(all.code, all.stderr).toBe(0);
    expect(await readdir(stateDir)).toEqual(['operator-notes.txt']);
    await expect(stat(config)).rejects.toThrow();
    await expect(stat(configDir)).rejects.toThrow();
  }, 60_000);

  it('refuses to empty a folder that is not a state directory', async () => {
    const other = path.join(dir.dir, 'not-state');
    await mkdir(other);
    await writeFile(path.join(other, 'precious.txt'), 'x');
    const res = await cli(['uninstall', '--state-dir', other]);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('does not look like a vcm-agent state directory');
    expect(await readdir(other)).toEqual(['precious.txt']);
  });

  it('a daemon without an enrollment says so and exits 2 (the service manager does not retry)', async () => {
    const empty = path.join(dir.dir, 'empty');
    const res = await cli(['run', '--state-dir', empty]);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('AGT_ERR_NOT_ENROLLED');
  });
});
