// `vcm-agent run`: the daemon. It wires the parts together and owns the lifecycle:
//   start   take the state lock, repair the ledger (ledger.ts), record a `started` event, plan the
//           checks from the cached policy, fetch the current policy, start the watchdog
//   run     node-cron tasks per check (scheduler.ts) → observe → sign → spool → deliver in
//           batches when the run queue drains (delivery.ts); the policy is refetched on a timer
//           and a change re-plans the checks without a restart
//   stop    SIGTERM/SIGINT: no new runs, the check in flight finishes and is spooled, one last
//           delivery pass gets `delivery.shutdownFlushSeconds`, status.json is written, exit 0.
//           A second signal exits at once (every step on disk is crash-safe anyway).
//   watchdog over budget: record `watchdog_restart`, stop as above, exit 75 for the service
//           manager to restart us.
import type { Logger } from 'pino';
import cron from 'node-cron';
import { allowListFor, checkById } from '../checks/index.js';
import { RealHostIO, currentPlatform } from '../checks/host-io.js';
import { policyTimeouts, runCheck } from '../checks/runner.js';
import type { Policy } from '../collector/contract.js';
import { identityProviderAccess, type LoadedConfig } from './config.js';
import { checkLogSafely, enabledChecks, httpOptions, probeAccess, recordLogCheck, recordPass, refreshPolicy } from './cycle.js';
import { Deliverer, backoffDelayMs, deliveryPass, type BackoffOptions } from './delivery.js';
import { isAgentError } from './errors.js';
import { enrolledClient, type CollectorClient } from './http.js';
import { Ledger } from './ledger.js';
import { acquireStateLock } from './lock.js';
import { Scheduler, cronExpression, cronPeriod, stableOffset, type CheckSchedule, type CronModule, type RunReason } from './scheduler.js';
import { StateDir } from './state.js';
import { StatusFile } from './status.js';
import { trustedCachedPolicy } from './trust.js';
import { installUtcFormats } from './utc-format.js';
import { AGENT_VERSION } from './version.js';
import { WATCHDOG_EXIT_CODE, Watchdog, type Violation } from './watchdog.js';

export interface DaemonDeps {
  cron?: CronModule;
  /** Install signal handlers (the CLI does; in-process tests do not). */
  signals?: boolean;
}

export interface Daemon {
  /** Resolves with the process exit code once stopped. */
  readonly done: Promise<number>;
  stop(reason?: string): Promise<number>;
  readonly scheduler: Scheduler;
  readonly ledger: Ledger;
}

export async function startDaemon(loaded: LoadedConfig, log: Logger, deps: DaemonDeps = {}): Promise<Daemon> {
  const config = loaded.config;
  const state = new StateDir(config.stateDir);
  const enrolled = (await state.requireIdentity()).identity;
  const lock = acquireStateLock(state);
  try {
    return await start();
  } catch (err) {
    lock.release();
    throw err;
  }

  async function start(): Promise<Daemon> {
    const client = enrolledClient(enrolled, httpOptions(config), config.collectorUrl);
    const backoff: BackoffOptions = { initialMs: config.delivery.backoffInitialSeconds * 1000, maxMs: config.delivery.backoffMaxSeconds * 1000 };
    await settlePendingRotation(state, client, log, backoff);
    const { identity, key } = await state.requireIdentity();
    const ledger = await Ledger.open(state, identity, key, { log, bounds: config.spool });
    const status = await StatusFile.open(state, { debounceMs: 1000 });
    const previous = status.current.daemon;
    await ledger.recordEvent('started', {
      agentVersion: AGENT_VERSION,
      // A previous run that never wrote its stop crashed or was killed.
      previousStop: previous === null ? null : (previous.stopReason ?? 'crash'),
    });
    await status.update((s) => {
      s.daemon = { pid: process.pid, agentVersion: AGENT_VERSION, startedAt: new Date().toISOString(), stoppedAt: null, stopReason: null };
    });
    // At once, not debounced: a run that dies before it writes its stop is then told apart as a crash.
    await status.flush();

    // The policy in force, with its per-check budgets: both change together, on a refresh only.
    let policy: Policy | null = await trustedCachedPolicy(state).catch(() => null);
    let timeoutsMs = policyTimeouts(policy?.checks);
    ledger.policyVersion = policy?.version ?? null;
    // Okta access from this host's config, handed to the checks that read the identity provider.
    const identityProvider = identityProviderAccess(config);
    const schedules = (p: Policy | null): CheckSchedule[] =>
      enabledChecks(p, identityProvider).map((c) => ({ id: c.id, intervalSeconds: config.schedule.intervalSeconds ?? p?.checks[c.id]?.intervalSeconds ?? 900 }));

    // A "cycle" for logs and benchmarks: from the first run after an idle queue to the end of the
    // delivery that follows, with the process CPU time it took.
    interface Cycle {
      cpu: NodeJS.CpuUsage;
      at: number;
      checks: number;
      checksCpuMs: number;
    }
    let cycle: Cycle | null = null;
    let cycleAwaitingDelivery: Cycle | null = null;
    const endCycle = (c: Cycle, delivered: boolean) => {
      const cpu = process.cpuUsage(c.cpu);
      log.info({ checks: c.checks, cpuMs: Math.round((cpu.user + cpu.system) / 100) / 10, checksCpuMs: Math.round(c.checksCpuMs * 10) / 10, wallMs: Math.round(performance.now() - c.at), delivered, spool: ledger.depth().count }, 'cycle done');
    };

    const deliverer = new Deliverer((signal) => ledger.exclusive((spool) => deliveryPass(spool, client, { log, limits: { maxCount: config.delivery.batchMaxCount, maxBytes: config.delivery.batchMaxBytes }, signal })), {
      log,
      backoff,
      onPass: async (pass, next) => {
        await recordPass(status, pass, next.retryInMs);
        // The log is checked after deliveries the collector took, not on every idle pass.
        if (pass.accepted > 0) await recordLogCheck(status, await checkLogSafely(state, client, identity, key, log, ledger));
        if (pass.accepted + pass.duplicates + pass.quarantined > 0 || pass.stopped !== null) {
          log.info({ accepted: pass.accepted, duplicates: pass.duplicates, quarantined: pass.quarantined, kept: ledger.depth().count, retryInMs: next.retryInMs, stopped: pass.stopped?.detail ?? null }, 'delivery pass');
        }
        if (cycleAwaitingDelivery !== null) {
          endCycle(cycleAwaitingDelivery, pass.stopped === null);
          cycleAwaitingDelivery = null;
        }
      },
    });

    // What each check keeps between its runs (parsed files it reads again only when they change).
    const caches = new Map<string, Map<string, unknown>>();
    const runOne = async (id: string, reason: RunReason): Promise<void> => {
      const check = checkById(id);
      // Queued before a policy change turned it off: skip it.
      if (check === undefined || scheduler.task(id) === undefined) return;
      cycle ??= { cpu: process.cpuUsage(), at: performance.now(), checks: 0, checksCpuMs: 0 };
      cycle.checks++;
      const p = policy;
      log.debug({ check: id, reason }, 'check started');
      const cpu0 = process.cpuUsage();
      const io = new RealHostIO({ root: config.root, allowedCommands: allowListFor([check], currentPlatform()), ...probeAccess(config) });
      let cache = caches.get(id);
      if (cache === undefined) caches.set(id, (cache = new Map()));
      const finding = await runCheck(check, {
        io,
        configs: { [id]: p?.checks[check.id]?.config ?? {} },
        timeoutsMs,
        identityProvider,
        caches: { [id]: cache },
      });
      const cpu1 = process.cpuUsage(cpu0);
      const { signed, drop } = await ledger.append([finding], p?.version ?? null);
      const cpu2 = process.cpuUsage(cpu0);
      const cpuMs = Math.round((cpu1.user + cpu1.system) / 100) / 10;
      const spoolCpuMs = Math.round((cpu2.user + cpu2.system - cpu1.user - cpu1.system) / 100) / 10;
      cycle.checksCpuMs += cpuMs;
      const seq = signed[0]?.seq ?? null;
      log.info({ check: id, status: finding.status, seq, reason, durationMs: finding.durationMs, cpuMs, spoolCpuMs }, 'check done');
      const planned = scheduler.planned(id);
      void status.update((s) => {
        s.checks[id] = {
          lastRunAt: finding.collectedAt,
          lastStatus: finding.status,
          lastSeq: seq,
          durationMs: finding.durationMs,
          cpuMs,
          intervalSeconds: planned?.intervalSeconds ?? null,
          nextRunAt: planned?.nextRunAt?.toISOString() ?? null,
        };
        if (drop !== null) {
          s.drops.records++;
          s.drops.results += drop.results;
          s.drops.lastAt = new Date().toISOString();
        }
      });
    };

    const scheduler = new Scheduler({
      agentId: identity.agentId,
      jitterSeconds: config.schedule.jitterSeconds,
      cron: deps.cron ?? cron,
      run: runOne,
      onIdle: () => {
        const c: Cycle | null = cycle;
        cycle = null;
        deliverer.kick();
        if (c === null) return;
        if (deliverer.busy) cycleAwaitingDelivery = c;
        else endCycle(c, false);
      },
      lastRun: (id) => {
        const at = status.current.checks[id]?.lastRunAt;
        return at === undefined ? undefined : Date.parse(at);
      },
      log,
    });

    const refresh = async (): Promise<void> => {
      const r = await refreshPolicy(state, client, identity.agentId, key, log);
      await status.update((s) => {
        s.policy = { version: r.policy?.version ?? s.policy.version, fetchedAt: r.error === null ? new Date().toISOString() : s.policy.fetchedAt, lastFetchError: r.error };
      });
      if (r.error === null && r.changed) {
        log.info({ from: policy?.version ?? null, to: r.policy?.version ?? null }, 'policy changed; re-planning checks');
        policy = r.policy;
        timeoutsMs = policyTimeouts(policy?.checks);
        ledger.policyVersion = policy?.version ?? null;
        scheduler.apply(schedules(policy));
      }
    };
    const refreshPeriod = cronPeriod(config.schedule.policyRefreshSeconds);
    const policyTask = (deps.cron ?? cron).createTask(
      cronExpression(refreshPeriod, stableOffset(`${identity.agentId}:policy`, refreshPeriod)),
      () => refresh().catch((err: unknown) => log.error({ err }, 'policy refresh failed')),
      { name: 'vcm-policy', noOverlap: true, timezone: 'Etc/UTC' },
    );

    let resolveDone!: (code: number) => void;
    const done = new Promise<number>((resolve) => (resolveDone = resolve));
    let stopping: Promise<number> | null = null;
    const stop = (reason = 'signal', code = 0): Promise<number> => {
      stopping ??= (async () => {
        log.info({ reason, inFlight: scheduler.running }, 'stopping: finishing the check in flight');
        watchdog?.stop();
        await policyTask.destroy();
        await scheduler.stop();
        await deliverer.stop({ flushMs: config.delivery.shutdownFlushSeconds * 1000 });
        await ledger.flushHead();
        await status.update((s) => {
          if (s.daemon !== null) {
            s.daemon.stoppedAt = new Date().toISOString();
            s.daemon.stopReason = reason;
          }
        });
        await status.flush();
        await client.destroy().catch(() => undefined);
        lock.release();
        log.info({ reason, spool: ledger.depth().count, exitCode: code }, 'agent stopped');
        resolveDone(code);
        return code;
      })();
      return stopping;
    };

    const onViolation = (v: Violation): void => {
      log.error({ ...v }, 'watchdog: over budget; restarting cleanly');
      void (async () => {
        // The event first: it must survive whatever happens during the stop.
        await ledger.recordEvent('watchdog_restart', { ...v });
        await status.update((s) => {
          s.watchdog = { lastRestartAt: new Date().toISOString(), reason: v.reason };
        });
        await stop('watchdog', WATCHDOG_EXIT_CODE);
      })().catch((err: unknown) => {
        log.error({ err }, 'watchdog stop failed');
        lock.release();
        resolveDone(WATCHDOG_EXIT_CODE);
      });
    };
    const watchdog = config.watchdog.enabled
      ? new Watchdog(
          {
            rssMaxBytes: config.watchdog.rssMaxMb * 1024 * 1024,
            cpuMaxPercent: config.watchdog.cpuMaxPercent,
            cpuWindowMs: config.watchdog.cpuWindowSeconds * 1000,
            sampleMs: config.watchdog.sampleSeconds * 1000,
          },
          onViolation,
        )
      : null;

    if (deps.signals !== false) {
      let signalled = 0;
      const onSignal = (signal: NodeJS.Signals) => {
        signalled++;
        if (signalled > 1) {
          log.warn({ signal }, 'second signal: exiting now (the spool and chain are crash-safe)');
          lock.release();
          process.exit(130);
        }
        void stop(`signal ${signal}`);
      };
      process.on('SIGTERM', onSignal);
      process.on('SIGINT', onSignal);
      process.on('SIGHUP', () => {
        log.info('SIGHUP: refreshing the policy and delivering now');
        void refresh().catch(() => undefined);
        deliverer.kick();
      });
    }

    log.info(
      {
        agentId: identity.agentId,
        collector: client.base.origin,
        stateDir: state.dir,
        policyVersion: policy?.version ?? null,
        spool: ledger.depth(),
        head: ledger.head.seq,
        watchdog: config.watchdog.enabled ? { rssMaxMb: config.watchdog.rssMaxMb, cpuMaxPercent: config.watchdog.cpuMaxPercent } : false,
      },
      'agent started',
    );
    scheduler.apply(schedules(policy));
    await policyTask.start();
    void refresh().catch((err: unknown) => log.error({ err }, 'policy refresh failed'));
    // Whatever a previous run left in the spool goes out now.
    deliverer.kick();
    watchdog?.start();

    return { done, stop: (reason) => stop(reason), scheduler, ledger };
  }
}

/**
 * A key rotation a crash left pending must be settled before anything is signed: until the
 * collector answers, neither key is known to be the right one for the next sequence number.
 * Waits with the delivery backoff; a stop signal meanwhile ends the process (nothing is in flight).
 */
async function settlePendingRotation(state: StateDir, client: CollectorClient, log: Logger, backoff: BackoffOptions): Promise<void> {
  const { settleRotation } = await import('./rotate.js');
  for (let attempt = 1; ; attempt++) {
    try {
      await settleRotation(state, client, log);
      return;
    } catch (err) {
      if (!isAgentError(err) || err.code !== 'AGT_ERR_ROTATION_PENDING') throw err;
      const delayMs = backoffDelayMs(attempt, null, backoff);
      log.warn({ err: err.message, retryInMs: delayMs }, 'key rotation pending; waiting for the collector before signing anything');
      await new Promise((resolve) => setTimeout(resolve, delayMs));
    }
  }
}

/** The CLI's entry: run until stopped, then return the exit code. */
export async function runDaemon(loaded: LoadedConfig, log: Logger): Promise<number> {
  // The process is the daemon's own: node-cron's UTC dates come without ICU (utc-format.ts).
  installUtcFormats();
  try {
    const daemon = await startDaemon(loaded, log);
    return await daemon.done;
  } catch (err) {
    if (isAgentError(err)) throw err;
    log.fatal({ err }, 'agent failed');
    return 1;
  }
}
