// The self-watchdog (osquery's idea, without a second process): sample resident memory and CPU
// time; over budget, report a violation once. The daemon then logs it, records a
// watchdog_restart event (it rides in the next signed envelope, after the restart), stops
// cleanly and exits with WATCHDOG_EXIT_CODE, and the service manager starts it again. Nothing in
// the spool is lost: the spool is on disk, and shutdown waits for the check in flight.
export const WATCHDOG_EXIT_CODE = 75; // EX_TEMPFAIL: "try again later"

export interface WatchdogBudget {
  rssMaxBytes: number;
  /** Percent of one core, averaged over the window. */
  cpuMaxPercent: number;
  cpuWindowMs: number;
  sampleMs: number;
  /** Consecutive samples over the RSS budget before it counts (a GC usually follows a spike). */
  rssSamples?: number;
}

export interface Sample {
  /** Monotonic milliseconds. */
  at: number;
  rssBytes: number;
  /** User + system CPU time, microseconds. */
  cpuMicros: number;
}

export interface Violation {
  reason: 'rss' | 'cpu';
  rssMb: number;
  cpuPercent: number | null;
  budgetRssMb: number;
  budgetCpuPercent: number;
}

export function processSample(): Sample {
  const cpu = process.cpuUsage();
  return { at: performance.now(), rssBytes: process.memoryUsage.rss(), cpuMicros: cpu.user + cpu.system };
}

/** Pure evaluation over a series of samples (oldest first). */
export class WatchdogState {
  readonly #budget: WatchdogBudget;
  readonly #samples: Sample[] = [];
  #rssOver = 0;

  constructor(budget: WatchdogBudget) {
    this.#budget = budget;
  }

  /** CPU percent over the window, once the samples span it; null before. */
  cpuPercent(): number | null {
    const last = this.#samples.at(-1);
    const first = this.#samples[0];
    if (last === undefined || first === undefined || last.at - first.at < this.#budget.cpuWindowMs * 0.99) return null;
    return ((last.cpuMicros - first.cpuMicros) / 1000 / (last.at - first.at)) * 100;
  }

  add(sample: Sample): Violation | null {
    this.#samples.push(sample);
    // Keep just enough history to span the window.
    while (this.#samples.length > 2 && sample.at - this.#samples[1]!.at >= this.#budget.cpuWindowMs) this.#samples.shift();
    this.#rssOver = sample.rssBytes > this.#budget.rssMaxBytes ? this.#rssOver + 1 : 0;
    const cpu = this.cpuPercent();
    const base = {
      rssMb: Math.round(sample.rssBytes / 1048576),
      cpuPercent: cpu === null ? null : Math.round(cpu * 10) / 10,
      budgetRssMb: Math.round(this.#budget.rssMaxBytes / 1048576),
      budgetCpuPercent: this.#budget.cpuMaxPercent,
    };
    if (this.#rssOver >= (this.#budget.rssSamples ?? 2)) return { reason: 'rss', ...base };
    if (cpu !== null && cpu > this.#budget.cpuMaxPercent) return { reason: 'cpu', ...base };
    return null;
  }
}

/** Samples on a timer (unref'd: it never keeps the process alive) and reports one violation. */
export class Watchdog {
  readonly #state: WatchdogState;
  readonly #budget: WatchdogBudget;
  readonly #onViolation: (v: Violation) => void;
  readonly #sample: () => Sample;
  #timer: NodeJS.Timeout | undefined;
  #fired = false;

  constructor(budget: WatchdogBudget, onViolation: (v: Violation) => void, sample: () => Sample = processSample) {
    this.#budget = budget;
    this.#state = new WatchdogState(budget);
    this.#onViolation = onViolation;
    this.#sample = sample;
  }

  start(): void {
    this.#state.add(this.#sample());
    this.#timer = setInterval(() => this.tick(), this.#budget.sampleMs);
    this.#timer.unref();
  }

  tick(): void {
    if (this.#fired) return;
    const v = this.#state.add(this.#sample());
    if (v === null) return;
    this.#fired = true;
    this.stop();
    this.#onViolation(v);
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
