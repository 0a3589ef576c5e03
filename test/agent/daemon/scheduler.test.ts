// The scheduler with node-cron under fake timers: no test here waits on the wall clock.
import cron from 'node-cron';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CRON_PERIODS_SECONDS, Scheduler, cronExpression, cronPeriod, stableOffset, type RunReason } from '../../../agent/scheduler.js';

const log = pino({ level: 'silent' });
const AGENT = 'a'.repeat(64);
const T0 = new Date('2026-11-22T10:00:00.000Z');

function agentId(i: number): string {
  return i.toString(16).padStart(64, '0');
}

describe('cron plans', () => {
  it('rounds an interval down to a period cron can express, never up', () => {
    expect(cronPeriod(900)).toBe(900);
    expect(cronPeriod(901)).toBe(900);
    expect(cronPeriod(5400)).toBe(3600);
    expect(cronPeriod(86400 * 3)).toBe(86400);
    expect(cronPeriod(7 * 86400)).toBe(604800);
    expect(cronPeriod(7)).toBe(6);
    for (let s = 1; s <= 8 * 86400; s += 997) expect(cronPeriod(s)).toBeLessThanOrEqual(s);
  });

  it('every period and offset gives a valid expression that fires exactly once per period, at the offset', () => {
    for (const period of CRON_PERIODS_SECONDS) {
      for (const offset of new Set([0, 1 % period, Math.floor(period / 2), period - 1])) {
        const expr = cronExpression(period, offset);
        expect(cron.validate(expr), `${period}/${offset}: ${expr}`).toBe(true);
        const task = cron.createTask(expr, () => undefined, { timezone: 'Etc/UTC' });
        const runs = task.getNextRuns(4).map((d) => d.getTime() / 1000);
        for (let i = 1; i < runs.length; i++) expect(runs[i]! - runs[i - 1]!, `${period}/${offset}: ${expr}`).toBe(period);
        // Weeks start on Sunday (cron day 0); 2026-11-22 is one.
        const epoch = period === 604800 ? Date.UTC(2026, 10, 22) / 1000 : 0;
        expect(((runs[0]! - epoch) % period + period) % period, `${period}/${offset}: ${expr}`).toBe(offset);
        void task.destroy();
      }
    }
  });

  it('the offset is stable per agent and spreads 10,000 agents over the period', () => {
    expect(stableOffset(AGENT, 900)).toBe(stableOffset(AGENT, 900));
    const perSecond = new Map<number, number>();
    for (let i = 0; i < 10_000; i++) {
      const o = stableOffset(agentId(i), 900);
      expect(o).toBeGreaterThanOrEqual(0);
      expect(o).toBeLessThan(900);
      perSecond.set(o, (perSecond.get(o) ?? 0) + 1);
    }
    // 10,000 / 900 ≈ 11 per second on average; a uniform spread keeps the busiest second small.
    expect(Math.max(...perSecond.values())).toBeLessThan(30);
    expect(perSecond.size).toBeGreaterThan(850);
  });
});

describe('Scheduler (fake timers)', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: T0 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  /** `runMs`: how long each run takes, the same for every check or per check. */
  function make(opts: { runMs?: number | ((id: string) => number); lastRun?: (id: string) => number | undefined; jitterSeconds?: number } = {}) {
    const runs: { id: string; reason: RunReason; at: number }[] = [];
    let running = 0;
    let maxConcurrent = 0;
    const idle = vi.fn();
    const scheduler = new Scheduler({
      agentId: AGENT,
      jitterSeconds: opts.jitterSeconds ?? 0,
      cron,
      log,
      random: () => 0.5,
      onIdle: idle,
      lastRun: opts.lastRun ?? (() => Date.now()),
      run: async (id, reason) => {
        runs.push({ id, reason, at: Date.now() });
        running++;
        maxConcurrent = Math.max(maxConcurrent, running);
        await new Promise((r) => setTimeout(r, typeof opts.runMs === 'function' ? opts.runMs(id) : (opts.runMs ?? 10)));
        running--;
      },
    });
    return { scheduler, runs, idle, maxConcurrent: () => maxConcurrent };
  }

  it('runs each check on its period at the agent\'s stable offset', async () => {
    const { scheduler, runs } = make();
    scheduler.apply([{ id: 'vpn', intervalSeconds: 900 }]);
    const offset = stableOffset(AGENT, 900);
    await vi.advanceTimersByTimeAsync(3 * 900_000 + 1000);
    expect(runs.map((r) => r.reason)).toEqual(['schedule', 'schedule', 'schedule']);
    for (const r of runs) expect(((r.at - T0.getTime()) / 1000) % 900).toBe(offset);
    await scheduler.stop();
  });

  it('checks that share an interval share one node-cron task, and each still runs in every slot', async () => {
    const created = vi.spyOn(cron, 'createTask');
    const { scheduler, runs } = make();
    scheduler.apply(['vpn', 'disk_encryption', 'usb_policy'].map((id) => ({ id, intervalSeconds: 900 })).concat([{ id: 'open_ports', intervalSeconds: 60 }]));
    expect(created).toHaveBeenCalledTimes(2);
    created.mockRestore();
    expect(scheduler.task('vpn')).toBe(scheduler.task('usb_policy'));
    expect(scheduler.task('vpn')).not.toBe(scheduler.task('open_ports'));
    await vi.advanceTimersByTimeAsync(2 * 900_000 + 1000);
    const count = (id: string) => runs.filter((r) => r.id === id && r.reason === 'schedule').length;
    for (const id of ['vpn', 'disk_encryption', 'usb_policy']) expect(count(id), id).toBe(2);
    expect(count('open_ports')).toBe(30);
    // Dropping two of the three keeps the shared task for the third; dropping it too destroys it.
    const shared = scheduler.task('vpn')!;
    scheduler.apply([{ id: 'vpn', intervalSeconds: 900 }, { id: 'open_ports', intervalSeconds: 60 }]);
    expect(scheduler.task('vpn')).toBe(shared);
    expect(shared.getStatus()).not.toBe('destroyed');
    scheduler.apply([{ id: 'open_ports', intervalSeconds: 60 }]);
    expect(shared.getStatus()).toBe('destroyed');
    await scheduler.stop();
  });

  it('planned() gives node-cron\'s next run at every moment, computing it once per expression and slot', async () => {
    const { scheduler } = make({ runMs: 300 });
    scheduler.apply([
      { id: 'vpn', intervalSeconds: 5 },
      { id: 'usb_policy', intervalSeconds: 5 },
      { id: 'open_ports', intervalSeconds: 60 },
    ]);
    const ids = ['vpn', 'usb_policy', 'open_ports'];
    const computed = ids.map((id) => vi.spyOn(scheduler.task(id)!, 'getNextRun'));
    const calls = () => computed.reduce((n, c) => n + c.mock.calls.length, 0);
    // Steps that land before, on and just after the slots, over several minutes.
    for (const step of [1, 250, 999, 1000, 1, 4749, 3000, 2000, 1999, 1, 60_000, 7, 12_345, 100_000]) {
      await vi.advanceTimersByTimeAsync(step);
      for (const id of ids) {
        const before = calls();
        const got = scheduler.planned(id)?.nextRunAt?.getTime();
        // usb_policy shares vpn's expression, just computed at this very moment.
        if (id === 'usb_policy') expect(calls() - before).toBe(0);
        const truth = scheduler.task(id)!.getNextRun()?.getTime();
        expect(got, `${id} at +${Date.now() - T0.getTime()} ms`).toBe(truth);
        expect(got).toBeGreaterThan(Date.now());
      }
    }
    await scheduler.stop();
  });

  it('adds random jitter on top of the offset (node-cron maxRandomDelay), bounded by the setting', async () => {
    const random = vi.spyOn(Math, 'random').mockReturnValue(0.999);
    const { scheduler, runs } = make({ jitterSeconds: 30 });
    scheduler.apply([{ id: 'vpn', intervalSeconds: 900 }]);
    await vi.advanceTimersByTimeAsync(900_000 + 31_000);
    random.mockRestore();
    expect(runs).toHaveLength(1);
    const late = ((runs[0]!.at - T0.getTime()) / 1000) % 900 - stableOffset(AGENT, 900);
    expect(late).toBeGreaterThan(29);
    expect(late).toBeLessThanOrEqual(30);
    await scheduler.stop();
  });

  it('never runs a check twice at once, and a slow run does not queue a burst behind it', async () => {
    // Each run takes 3.5 periods: slots arrive while it runs and must be skipped, not queued.
    const { scheduler, runs, maxConcurrent } = make({ runMs: 3_500 });
    scheduler.apply([{ id: 'vpn', intervalSeconds: 1 }]);
    await vi.advanceTimersByTimeAsync(10_000);
    const stopping = scheduler.stop();
    await vi.advanceTimersByTimeAsync(3_500);
    await stopping;
    expect(maxConcurrent()).toBe(1);
    // About one run per 3.5 s, not one per second.
    expect(runs.length).toBeGreaterThanOrEqual(2);
    expect(runs.length).toBeLessThanOrEqual(4);
  });

  it('a slow check does not cost the other checks of its interval their next slot', async () => {
    // vpn takes one and a half periods; usb_policy, planned first, is quick.
    const { scheduler, runs, maxConcurrent } = make({ runMs: (id) => (id === 'vpn' ? 90_000 : 10) });
    scheduler.apply(['usb_policy', 'vpn'].map((id) => ({ id, intervalSeconds: 60 })));
    const first = T0.getTime() + stableOffset(AGENT, 60) * 1000;
    // Up to just before the third slot: the second came while vpn was still running.
    await vi.advanceTimersByTimeAsync(first + 2 * 60_000 - 1000 - Date.now());
    const usb = runs.filter((r) => r.id === 'usb_policy');
    expect(usb.map((r) => r.reason)).toEqual(['schedule', 'schedule']);
    // Its second run waited in the queue for vpn's run to end, inside the second slot's period.
    expect(usb[1]!.at).toBeGreaterThanOrEqual(first + 60_000);
    expect(usb[1]!.at).toBeLessThan(first + 2 * 60_000);
    // vpn itself skipped the slot it was still running in.
    expect(runs.filter((r) => r.id === 'vpn')).toHaveLength(1);
    expect(maxConcurrent()).toBe(1);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(runs.filter((r) => r.id === 'vpn')).toHaveLength(2);
    const stopping = scheduler.stop();
    await vi.advanceTimersByTimeAsync(90_000);
    await stopping;
  });

  it('runs different checks one at a time through one queue, then reports idle once', async () => {
    const { scheduler, runs, idle, maxConcurrent } = make({ runMs: 100 });
    scheduler.apply(['vpn', 'disk_encryption', 'open_ports'].map((id) => ({ id, intervalSeconds: 900 })));
    await vi.advanceTimersByTimeAsync(900_000);
    expect(runs.map((r) => r.id)).toEqual(['vpn', 'disk_encryption', 'open_ports']);
    expect(maxConcurrent()).toBe(1);
    expect(idle).toHaveBeenCalledTimes(1);
    await scheduler.stop();
  });

  it('after a suspend, the missed runs collapse into one catch-up run', async () => {
    const { scheduler, runs } = make();
    scheduler.apply([{ id: 'vpn', intervalSeconds: 900 }, { id: 'open_ports', intervalSeconds: 900 }]);
    await vi.advanceTimersByTimeAsync(900_000);
    expect(runs).toHaveLength(2);
    // The machine sleeps 8 hours: the wall clock jumps, timers fire late (monotonic time stood still).
    vi.setSystemTime(Date.now() + 8 * 3600_000);
    await vi.advanceTimersByTimeAsync(900_000);
    const after = runs.slice(2);
    // 32 slots were missed per check: one catch-up run each (plus at most the next regular slot).
    expect(after.filter((r) => r.id === 'vpn').length).toBeLessThanOrEqual(2);
    expect(after.filter((r) => r.id === 'vpn' && r.reason === 'catch-up')).toHaveLength(1);
    expect(after.filter((r) => r.id === 'open_ports' && r.reason === 'catch-up')).toHaveLength(1);
    await scheduler.stop();
  });

  it('at start, runs once what is overdue (after a jitter delay), and leaves fresh checks to their slot', async () => {
    const last: Record<string, number> = { vpn: T0.getTime() - 1000 * 1000, open_ports: T0.getTime() - 10_000 };
    const { scheduler, runs } = make({ lastRun: (id) => last[id], jitterSeconds: 20 });
    scheduler.apply([
      { id: 'vpn', intervalSeconds: 900 },
      { id: 'open_ports', intervalSeconds: 900 },
      { id: 'disk_encryption', intervalSeconds: 3600 },
    ]);
    await vi.advanceTimersByTimeAsync(9_000);
    expect(runs).toEqual([]);
    await vi.advanceTimersByTimeAsync(2_000); // random() = 0.5 → 10 s
    expect(runs.map((r) => [r.id, r.reason]).sort()).toEqual([
      ['disk_encryption', 'start'],
      ['vpn', 'start'],
    ]);
    await scheduler.stop();
  });

  it('at start without jitter, the overdue checks are queued together: one idle after all, even when a run needs no timer', async () => {
    const runs: string[] = [];
    const idle = vi.fn();
    const scheduler = new Scheduler({
      agentId: AGENT,
      jitterSeconds: 0,
      cron,
      log,
      onIdle: idle,
      lastRun: () => undefined,
      // A run that completes in microtasks only: nothing lets another timer fire in between.
      run: async (id) => {
        runs.push(id);
        await Promise.resolve();
      },
    });
    scheduler.apply(['vpn', 'disk_encryption', 'usb_policy'].map((id) => ({ id, intervalSeconds: 900 })));
    await vi.advanceTimersByTimeAsync(5);
    expect(runs).toEqual(['vpn', 'disk_encryption', 'usb_policy']);
    expect(idle).toHaveBeenCalledTimes(1);
    await scheduler.stop();
  });

  it('a policy change re-plans only what changed, without a restart', async () => {
    const { scheduler, runs } = make();
    scheduler.apply([{ id: 'vpn', intervalSeconds: 900 }, { id: 'open_ports', intervalSeconds: 900 }]);
    const vpnTask = scheduler.task('vpn');
    scheduler.apply([{ id: 'vpn', intervalSeconds: 900 }, { id: 'open_ports', intervalSeconds: 60 }, { id: 'usb_policy', intervalSeconds: 3600 }]);
    expect(scheduler.task('vpn')).toBe(vpnTask);
    expect(scheduler.plan().find((p) => p.id === 'open_ports')?.periodSeconds).toBe(60);
    scheduler.apply([{ id: 'open_ports', intervalSeconds: 60 }]);
    expect(scheduler.plan().map((p) => p.id)).toEqual(['open_ports']);
    expect(vpnTask?.getStatus()).toBe('destroyed');
    await vi.advanceTimersByTimeAsync(600_000);
    expect(new Set(runs.map((r) => r.id))).toEqual(new Set(['open_ports']));
    expect(runs.length).toBeGreaterThanOrEqual(9);
    await scheduler.stop();
  });

  it('stop waits for the run in flight, drops what is queued, and plans nothing more', async () => {
    const { scheduler, runs } = make({ runMs: 5_000 });
    scheduler.apply(['vpn', 'disk_encryption'].map((id) => ({ id, intervalSeconds: 900 })));
    await vi.advanceTimersByTimeAsync((stableOffset(AGENT, 900) + 1) * 1000);
    expect(scheduler.running).toBe('vpn');
    let stopped = false;
    const stopping = scheduler.stop().then(() => (stopped = true));
    await vi.advanceTimersByTimeAsync(1000);
    expect(stopped).toBe(false);
    await vi.advanceTimersByTimeAsync(5000);
    await stopping;
    expect(runs.map((r) => r.id)).toEqual(['vpn']);
    await vi.advanceTimersByTimeAsync(3 * 900_000);
    expect(runs).toHaveLength(1);
  });

  it('execute() on a task runs it now, through the same no-overlap queue', async () => {
    const { scheduler, runs } = make({ runMs: 1000 });
    scheduler.apply([{ id: 'vpn', intervalSeconds: 900 }]);
    const task = scheduler.task('vpn')!;
    const first = task.execute();
    const second = task.execute();
    await vi.advanceTimersByTimeAsync(1500);
    await Promise.all([first, second]);
    expect(runs.map((r) => r.reason)).toEqual(['schedule']);
    await scheduler.stop();
  });
});
