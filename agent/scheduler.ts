// The scheduler: node-cron tasks for the enabled checks, on the policy's intervals. Checks that
// share an interval share one task (one cron expression, see "Spread"): node-cron computes every
// next run through Intl, and one task per check paid that once per check per slot.
//   - Spread: each agent gets a stable offset inside the period, derived from its id, so that a
//     fleet's runs spread evenly over the period; node-cron's maxRandomDelay adds random jitter on
//     top, so that the fleet never lines up on the same second (also not after a mass restart).
//     Checks of one agent that share a period share the offset: they run back to back and their
//     results leave in one batch.
//   - No overlap: a check is never queued or run twice at once; runs of different checks go one
//     at a time through one queue, which bounds the agent's CPU and memory. A slot that finds a
//     check still queued or running skips that check only, not the others of its interval.
//   - Sleep and suspend: node-cron reports each slot it missed (execution:missed); they collapse
//     into one catch-up run, never a burst. The same holds at start: a check whose last run is
//     older than its interval runs once, soon after start (after a random delay up to the jitter).
//   - A policy change re-plans: only checks whose interval changed get a new task.
// Cron cannot express every interval: an interval is rounded down to the nearest period it can
// (1–30 s, 1–30 min dividing an hour, 1–12 h dividing a day, a day, a week). Rounding down means
// a check runs at least as often as the policy asks, never less.
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { ScheduledTask, TaskOptions } from 'node-cron';

export const CRON_PERIODS_SECONDS = [
  1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30,
  60, 120, 180, 240, 300, 360, 600, 720, 900, 1200, 1800,
  3600, 7200, 10800, 14400, 21600, 28800, 43200,
  86400, 604800,
] as const;

/** The largest period cron can express that is not longer than the interval. */
export function cronPeriod(intervalSeconds: number): number {
  let best: number = CRON_PERIODS_SECONDS[0];
  for (const p of CRON_PERIODS_SECONDS) if (p <= intervalSeconds) best = p;
  return best;
}

/** A stable offset in [0, period) seconds, from the agent id: the same on every start. */
export function stableOffset(agentId: string, periodSeconds: number): number {
  const h = createHash('sha256').update(`vcm-schedule:${agentId}`).digest();
  return h.readUIntBE(0, 6) % periodSeconds;
}

/** A six-field node-cron expression (seconds first) firing every `period` s at `offset` s. */
export function cronExpression(periodSeconds: number, offsetSeconds: number): string {
  const o = offsetSeconds % periodSeconds;
  const sec = o % 60;
  const min = Math.floor(o / 60) % 60;
  const hour = Math.floor(o / 3600) % 24;
  if (periodSeconds < 60) return `${o}-59/${periodSeconds} * * * * *`;
  if (periodSeconds < 3600) return `${sec} ${Math.floor(o / 60)}-59/${periodSeconds / 60} * * * *`;
  if (periodSeconds < 86400) return `${sec} ${min} ${Math.floor(o / 3600)}-23/${periodSeconds / 3600} * * *`;
  if (periodSeconds === 86400) return `${sec} ${min} ${hour} * * *`;
  return `${sec} ${min} ${hour} * * ${Math.floor(o / 86400) % 7}`;
}

export type RunReason = 'schedule' | 'catch-up' | 'start' | 'manual';

export interface CronModule {
  createTask(expression: string, fn: () => Promise<void> | void, options?: TaskOptions): ScheduledTask;
}

export interface CheckSchedule {
  id: string;
  intervalSeconds: number;
}

export interface SchedulerOptions {
  agentId: string;
  jitterSeconds: number;
  cron: CronModule;
  /** Runs one check to the end (observe, sign, spool). Errors are logged, never thrown out. */
  run: (id: string, reason: RunReason) => Promise<void>;
  /** Called when the queue drains: a good moment to deliver what the runs spooled. */
  onIdle?: () => void;
  /** Epoch ms of a check's last run, to decide what is overdue at start. */
  lastRun?: (id: string) => number | undefined;
  log: Logger;
  random?: () => number;
  now?: () => number;
}

interface Planned {
  intervalSeconds: number;
  periodSeconds: number;
  expression: string;
}

/** One node-cron task and the checks it starts, in the order they were planned. */
interface Slot {
  task: ScheduledTask;
  checks: Set<string>;
  /** node-cron's next run, kept until that moment passes (see #nextRun). */
  next: Date | null;
}

export class Scheduler {
  readonly #opts: SchedulerOptions;
  readonly #planned = new Map<string, Planned>();
  /** By cron expression. */
  readonly #slots = new Map<string, Slot>();
  readonly #queue: { id: string; reason: RunReason; done: () => void }[] = [];
  readonly #waiting = new Map<string, Promise<void>>();
  readonly #startTimers = new Set<NodeJS.Timeout>();
  #running: { id: string; promise: Promise<void> } | null = null;
  #draining = false;
  #stopped = false;

  constructor(opts: SchedulerOptions) {
    this.#opts = opts;
  }

  get running(): string | null {
    return this.#running?.id ?? null;
  }

  /** The checks planned now, with their cron expressions. */
  plan(): { id: string; intervalSeconds: number; periodSeconds: number; expression: string; nextRunAt: Date | null }[] {
    return [...this.#planned].map(([id, p]) => ({
      id,
      intervalSeconds: p.intervalSeconds,
      periodSeconds: p.periodSeconds,
      expression: p.expression,
      nextRunAt: this.#nextRun(p),
    }));
  }

  /** One check's plan, with its next run. */
  planned(id: string): { intervalSeconds: number; periodSeconds: number; expression: string; nextRunAt: Date | null } | undefined {
    const p = this.#planned.get(id);
    return p === undefined ? undefined : { intervalSeconds: p.intervalSeconds, periodSeconds: p.periodSeconds, expression: p.expression, nextRunAt: this.#nextRun(p) };
  }

  /**
   * node-cron's next run, which costs it a dozen Intl date conversions: computed once per slot of
   * the task, and kept until that moment passes.
   */
  #nextRun(p: Planned): Date | null {
    const slot = this.#slots.get(p.expression)!;
    // node-cron reads the wall clock, so this does too.
    if (slot.next === null || slot.next.getTime() <= Date.now() || slot.task.getStatus() === 'stopped') slot.next = slot.task.getNextRun();
    return slot.next === null ? null : new Date(slot.next);
  }

  task(id: string): ScheduledTask | undefined {
    const p = this.#planned.get(id);
    return p === undefined ? undefined : this.#slots.get(p.expression)?.task;
  }

  /** Plans exactly these checks; unchanged ones keep their task. */
  apply(schedules: readonly CheckSchedule[]): void {
    if (this.#stopped) return;
    const wanted = new Map(schedules.map((s) => [s.id, s]));
    for (const [id, p] of this.#planned) {
      const w = wanted.get(id);
      if (w === undefined || cronPeriod(w.intervalSeconds) !== p.periodSeconds) {
        this.#planned.delete(id);
        const slot = this.#slots.get(p.expression)!;
        slot.checks.delete(id);
        if (slot.checks.size === 0) {
          void slot.task.destroy();
          this.#slots.delete(p.expression);
        }
        if (w === undefined) this.#opts.log.info({ check: id }, 'check unscheduled');
      }
    }
    const now = (this.#opts.now ?? Date.now)();
    const overdue: string[] = [];
    for (const s of schedules) {
      if (this.#planned.has(s.id)) continue;
      const periodSeconds = cronPeriod(s.intervalSeconds);
      const expression = cronExpression(periodSeconds, stableOffset(this.#opts.agentId, periodSeconds));
      const { task } = this.#slotFor(expression, periodSeconds, s.id);
      this.#planned.set(s.id, { intervalSeconds: s.intervalSeconds, periodSeconds, expression });
      if (periodSeconds !== s.intervalSeconds) {
        this.#opts.log.info({ check: s.id, intervalSeconds: s.intervalSeconds, periodSeconds }, 'interval rounded down to a period cron can express');
      }
      this.#opts.log.info({ check: s.id, cron: expression, nextRunAt: task.getNextRun()?.toISOString() }, 'check scheduled');
      const last = this.#opts.lastRun?.(s.id);
      if (last === undefined || now - last >= periodSeconds * 1000) overdue.push(s.id);
    }
    this.#startSoon(overdue);
  }

  /** The task for `expression`, created on first use, now also starting `id`. */
  #slotFor(expression: string, periodSeconds: number, id: string): Slot {
    const known = this.#slots.get(expression);
    if (known !== undefined) {
      known.checks.add(id);
      return known;
    }
    const slot: Slot = { task: null!, checks: new Set([id]), next: null };
    // Queues the runs and returns: the queue keeps each check from overlapping itself. Waiting for
    // the runs here would make node-cron skip the next slot for every check of the task whenever
    // one of them is slow.
    const runAll = (reason: RunReason) => {
      for (const c of slot.checks) void this.trigger(c, reason);
    };
    slot.task = this.#opts.cron.createTask(expression, () => runAll('schedule'), {
      name: `vcm-checks-every-${periodSeconds}s`,
      maxRandomDelay: Math.round(Math.min(this.#opts.jitterSeconds, periodSeconds / 2) * 1000),
      timezone: 'Etc/UTC',
    });
    // Slots missed while the machine slept (or the loop was blocked) become one catch-up run.
    slot.task.on('execution:missed', () => runAll('catch-up'));
    void slot.task.start();
    this.#slots.set(expression, slot);
    return slot;
  }

  /**
   * Overdue at start: one run each, after a random delay up to the jitter. Checks drawn the same
   * delay (all of them, without jitter) are queued by one timer, together: one cycle and one
   * delivery, however quickly the first of them finishes.
   */
  #startSoon(ids: readonly string[]): void {
    const byDelay = new Map<number, string[]>();
    for (const id of ids) {
      const delay = Math.round((this.#opts.random ?? Math.random)() * this.#opts.jitterSeconds * 1000);
      const group = byDelay.get(delay);
      if (group === undefined) byDelay.set(delay, [id]);
      else group.push(id);
    }
    for (const [delay, group] of byDelay) {
      const timer = setTimeout(() => {
        this.#startTimers.delete(timer);
        for (const id of group) void this.trigger(id, 'start');
      }, delay);
      this.#startTimers.add(timer);
    }
  }

  /**
   * Queues one run of a check, unless it is already queued or running (no overlap; bursts of
   * triggers collapse). Resolves when that run is over.
   */
  trigger(id: string, reason: RunReason): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    const waiting = this.#waiting.get(id);
    if (waiting !== undefined) {
      this.#opts.log.debug({ check: id, reason }, 'run already queued; collapsed');
      return waiting;
    }
    if (this.#running?.id === id) {
      this.#opts.log.debug({ check: id, reason }, 'run in progress; skipped');
      return this.#running.promise;
    }
    let done!: () => void;
    const promise = new Promise<void>((resolve) => (done = resolve));
    this.#waiting.set(id, promise);
    this.#queue.push({ id, reason, done });
    void this.#drain();
    return promise;
  }

  async #drain(): Promise<void> {
    if (this.#draining) return;
    this.#draining = true;
    try {
      for (let item = this.#queue.shift(); item !== undefined; item = this.#queue.shift()) {
        this.#waiting.delete(item.id);
        if (this.#stopped) {
          item.done();
          continue;
        }
        const promise = this.#opts.run(item.id, item.reason).catch((err: unknown) => {
          this.#opts.log.error({ err, check: item.id }, 'check run failed');
        });
        this.#running = { id: item.id, promise };
        await promise;
        this.#running = null;
        item.done();
      }
    } finally {
      this.#draining = false;
    }
    if (!this.#stopped) this.#opts.onIdle?.();
  }

  /** Stops planning new runs, drops queued ones, and waits for the run in flight. */
  async stop(): Promise<void> {
    this.#stopped = true;
    for (const t of this.#startTimers) clearTimeout(t);
    this.#startTimers.clear();
    for (const slot of this.#slots.values()) await slot.task.destroy();
    this.#slots.clear();
    this.#planned.clear();
    for (const q of this.#queue.splice(0)) q.done();
    this.#waiting.clear();
    await this.#running?.promise;
  }
}
