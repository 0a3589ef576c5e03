// status.json: what the daemon (or `run --once`) last did, for `vcm-agent status`. Advisory and
// rebuildable: it is written atomically but not fsynced, and a damaged file is ignored.
import { readFile } from 'node:fs/promises';
import * as z from 'zod';
import { writeFileAtomic } from './fs-util.js';
import type { StateDir } from './state.js';

const when = z.iso.datetime({ offset: false });

export const statusSchema = z
  .object({
    daemon: z
      .object({
        pid: z.number().int(),
        agentVersion: z.string(),
        startedAt: when,
        stoppedAt: when.nullable(),
        /** Why it stopped: signal, watchdog, error. */
        stopReason: z.string().nullable(),
      })
      .strict()
      .nullable()
      .default(null),
    policy: z
      .object({ version: z.number().int().nullable(), fetchedAt: when.nullable(), lastFetchError: z.string().nullable() })
      .strict()
      .default({ version: null, fetchedAt: null, lastFetchError: null }),
    checks: z
      .record(
        z.string(),
        z
          .object({
            lastRunAt: when,
            lastStatus: z.enum(['pass', 'fail', 'unknown']),
            lastSeq: z.number().int().nullable(),
            durationMs: z.number(),
            cpuMs: z.number().nullable(),
            intervalSeconds: z.number().nullable(),
            nextRunAt: when.nullable(),
          })
          .strict(),
      )
      .default({}),
    delivery: z
      .object({
        lastAttemptAt: when.nullable(),
        lastSuccessAt: when.nullable(),
        lastOutcome: z.enum(['delivered', 'kept', 'partial']).nullable(),
        lastDetail: z.string().nullable(),
        nextRetryAt: when.nullable(),
        accepted: z.number().int(),
        duplicates: z.number().int(),
        quarantined: z.number().int(),
      })
      .strict()
      .default({ lastAttemptAt: null, lastSuccessAt: null, lastOutcome: null, lastDetail: null, nextRetryAt: null, accepted: 0, duplicates: 0, quarantined: 0 }),
    drops: z
      .object({ records: z.number().int(), results: z.number().int(), lastAt: when.nullable() })
      .strict()
      .default({ records: 0, results: 0, lastAt: null }),
    lastError: z.object({ at: when, code: z.string(), message: z.string() }).strict().nullable().default(null),
    /** The transparency log: the last receipt the collector gave, and the last checkpoint checked. */
    log: z
      .object({
        lastReceipt: z.object({ seq: z.number().int(), logIndex: z.number().int(), at: when }).strict().nullable(),
        checkpoint: z.object({ origin: z.string(), size: z.number().int(), checkedAt: when }).strict().nullable(),
        lastError: z.string().nullable(),
      })
      .strict()
      .default({ lastReceipt: null, checkpoint: null, lastError: null }),
    watchdog: z
      .object({ lastRestartAt: when.nullable(), reason: z.string().nullable() })
      .strict()
      .default({ lastRestartAt: null, reason: null }),
  })
  .strict();

export type AgentStatus = z.output<typeof statusSchema>;

export async function readStatus(state: StateDir): Promise<AgentStatus> {
  try {
    return statusSchema.parse(JSON.parse(await readFile(state.statusFile, 'utf8')));
  } catch {
    return statusSchema.parse({});
  }
}

/**
 * In-memory status, written at most once per `debounceMs` (the file is advisory: the daemon
 * updates it after every check and delivery, and a burst becomes one write). flush() writes now.
 */
export class StatusFile {
  readonly #state: StateDir;
  readonly #debounceMs: number;
  #status: AgentStatus;
  #timer: NodeJS.Timeout | undefined;
  #writing: Promise<void> = Promise.resolve();

  private constructor(state: StateDir, status: AgentStatus, debounceMs: number) {
    this.#state = state;
    this.#status = status;
    this.#debounceMs = debounceMs;
  }

  static async open(state: StateDir, opts: { debounceMs?: number } = {}): Promise<StatusFile> {
    return new StatusFile(state, await readStatus(state), opts.debounceMs ?? 0);
  }

  get current(): Readonly<AgentStatus> {
    return this.#status;
  }

  update(change: (s: AgentStatus) => void): Promise<void> {
    change(this.#status);
    if (this.#debounceMs === 0) return this.#write();
    if (this.#timer === undefined) {
      this.#timer = setTimeout(() => void this.#write(), this.#debounceMs);
      this.#timer.unref();
    }
    return Promise.resolve();
  }

  #write(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const text = `${JSON.stringify(this.#status, null, 2)}\n`;
    this.#writing = this.#writing.then(() => writeFileAtomic(this.#state.statusFile, text, 0o644).catch(() => undefined));
    return this.#writing;
  }

  /** Writes what is pending now. */
  flush(): Promise<void> {
    return this.#timer === undefined ? this.#writing : this.#write();
  }
}

/** True when a process with this pid exists (it may not be ours if the pid was reused). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
