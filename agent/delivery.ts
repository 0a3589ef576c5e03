// Delivery: spooled envelopes go to POST /v1/results in sequence order, in NDJSON batches.
//   200           each line's outcome: accepted or duplicate → leaves the spool;
//                 rejected → that one envelope goes to quarantine, the rest carry on
//   5xx, 408, 429, network error, unreadable answer → everything stays; back off and retry
//   other 4xx     a batch is retried one envelope at a time; a single envelope refused with a
//                 4xx goes to quarantine (never retried forever)
// The Deliverer runs passes with exponential backoff and jitter, honouring Retry-After.
import type { Logger } from 'pino';
import { RESULTS_CONTENT_TYPES, resultsResponseSchema, type IngestOutcome } from '../collector/contract.js';
import { isAgentError } from './errors.js';
import { errorOf, retryAfterMs, unverifiedStatus, type CollectorClient, type HttpResponse } from './http.js';
import type { DeliverySpool } from './ledger.js';
import type { SpoolEntry } from './spool.js';

export interface Delivery {
  seq: number;
  outcome: IngestOutcome['outcome'] | 'kept' | 'quarantined';
  detail?: string;
}

export interface BatchLimits {
  maxCount: number;
  /** The collector's body limit is 1 MiB by default; stay well under it. */
  maxBytes: number;
}

export const DEFAULT_BATCH_LIMITS: BatchLimits = { maxCount: 100, maxBytes: 512 * 1024 };

export interface PassResult {
  deliveries: Delivery[];
  accepted: number;
  duplicates: number;
  quarantined: number;
  /** The last receipt: the log index the collector gave the newest envelope it took. */
  lastReceipt: { seq: number; logIndex: number } | null;
  /** Why the pass stopped with envelopes still in the spool; null when it emptied the spool. */
  stopped: { reason: 'unreachable' | 'unverified' | 'status' | 'protocol'; status?: number; retryAfterMs: number | null; detail: string } | null;
}

function retryable(status: number): boolean {
  return status >= 500 || status === 408 || status === 429 || status < 200 || (status >= 300 && status < 400);
}

/** One pass: send until the spool is empty or the collector says "not now". */
export async function deliveryPass(
  spool: DeliverySpool,
  client: CollectorClient,
  opts: { log: Logger; limits?: Partial<BatchLimits>; signal?: AbortSignal; now?: () => Date },
): Promise<PassResult> {
  const limits = { ...DEFAULT_BATCH_LIMITS, ...opts.limits };
  const result: PassResult = { deliveries: [], accepted: 0, duplicates: 0, quarantined: 0, lastReceipt: null, stopped: null };
  /** After a batch got a 4xx: how many envelopes to send one at a time to find the refused one. */
  let probe = 0;
  const done = new Set<number>();
  let proved = !client.pinned;
  /** Why an envelope was left in the spool while the others were sent (an unsigned refusal). */
  let unsent: string | null = null;
  for (;;) {
    if (opts.signal?.aborted === true) {
      result.stopped = { reason: 'unreachable', retryAfterMs: null, detail: 'stopping' };
      return result;
    }
    const entries = (await spool.list()).filter((e) => !done.has(e.seq));
    if (entries.length === 0) {
      if (unsent !== null) result.stopped = { reason: 'unverified', retryAfterMs: null, detail: unsent };
      return result;
    }
    if (!proved) {
      // Nothing observed leaves the host before the server proves it holds the pinned key.
      try {
        await client.hello(opts.signal);
        proved = true;
      } catch (err) {
        const unverified = isAgentError(err) && err.code === 'AGT_ERR_COLLECTOR_UNVERIFIED';
        const detail = isAgentError(err) ? `${err.code}: ${err.message}` : String(err);
        opts.log.warn({ seq: entries[0]!.seq, err: detail }, unverified ? 'the server did not prove it is the enrolled collector; nothing was sent' : 'collector unreachable; results stay in the spool');
        result.deliveries.push({ seq: entries[0]!.seq, outcome: 'kept', detail });
        result.stopped = { reason: unverified ? 'unverified' : 'unreachable', retryAfterMs: null, detail };
        return result;
      }
    }
    const batch: { entry: SpoolEntry; bytes: Buffer }[] = [];
    let size = 0;
    for (const entry of entries) {
      if (batch.length >= (probe > 0 ? 1 : limits.maxCount)) break;
      const bytes = await spool.read(entry);
      if (batch.length > 0 && size + bytes.length + 1 > limits.maxBytes) break;
      batch.push({ entry, bytes });
      size += bytes.length + 1;
    }
    const single = batch.length === 1;
    const body = single ? batch[0]!.bytes : Buffer.concat(batch.flatMap((b) => [b.bytes, Buffer.from('\n')]));
    const first = batch[0]!.entry.seq;
    let res: HttpResponse;
    try {
      res = await client.send(
        'POST',
        '/v1/results',
        body,
        { 'content-type': single ? RESULTS_CONTENT_TYPES.single : RESULTS_CONTENT_TYPES.batch },
        opts.signal,
      );
    } catch (err) {
      const unverified = isAgentError(err) && err.code === 'AGT_ERR_COLLECTOR_UNVERIFIED';
      const detail = isAgentError(err) ? `${err.code}: ${err.message}` : String(err);
      const status = unverifiedStatus(err);
      if (status !== null && status >= 400 && status < 500 && !retryable(status)) {
        // The server proved itself for this pass, yet this refusal is unsigned: something in
        // between (a proxy, a WAF) refused it. It is not trusted enough to quarantine on: find
        // the envelope it refused, keep that one in the spool, and send the rest.
        if (!single) {
          opts.log.warn({ seq: first, count: batch.length, status }, 'an unsigned refusal of a batch; retrying one envelope at a time');
          probe = batch.length;
          continue;
        }
        probe = Math.max(0, probe - 1);
        done.add(first);
        unsent = unsent ?? detail;
        opts.log.warn({ seq: first, status }, 'an unsigned refusal of one envelope; it stays in the spool and the rest are sent');
        result.deliveries.push({ seq: first, outcome: 'kept', detail });
        continue;
      }
      opts.log.warn({ seq: first, err: detail }, unverified ? 'the answer is not the enrolled collector\'s; results stay in the spool' : 'collector unreachable; results stay in the spool');
      result.deliveries.push({ seq: first, outcome: 'kept', detail });
      result.stopped = { reason: unverified ? 'unverified' : 'unreachable', retryAfterMs: null, detail };
      return result;
    }

    if (res.status === 200) {
      let outcomes: IngestOutcome[];
      try {
        outcomes = resultsResponseSchema.parse(JSON.parse(res.body.toString('utf8'))).results;
      } catch {
        const detail = 'the collector answered 200 with an unreadable body';
        opts.log.warn({ seq: first }, `${detail}; results stay in the spool`);
        result.deliveries.push({ seq: first, outcome: 'kept', detail });
        result.stopped = { reason: 'protocol', status: 200, retryAfterMs: null, detail };
        return result;
      }
      const mismatch = outcomes.length !== batch.length ? `${outcomes.length} outcomes for ${batch.length} envelopes` : outcomes.findIndex((o, i) => o.outcome !== 'rejected' && o.seq !== batch[i]!.entry.seq);
      if (mismatch !== -1) {
        // A protocol error: nothing in the batch is taken as acknowledged; it is sent again, and
        // what the collector did store comes back as duplicates.
        const detail = `the collector answered ${typeof mismatch === 'string' ? mismatch : `seq ${outcomes[mismatch]!.seq} for seq ${batch[mismatch]!.entry.seq}`}`;
        opts.log.warn({ seq: first }, `${detail}; results stay in the spool`);
        result.deliveries.push(...batch.map(({ entry }) => ({ seq: entry.seq, outcome: 'kept' as const, detail })));
        result.stopped = { reason: 'protocol', status: 200, retryAfterMs: null, detail };
        return result;
      }
      const acked: SpoolEntry[] = [];
      for (const [i, { entry }] of batch.entries()) {
        const o = outcomes[i]!;
        if (o.outcome === 'rejected') {
          const why = { status: 200, code: o.error?.code ?? 'rejected', message: o.error?.message ?? 'rejected' };
          await spool.quarantine(entry, why);
          result.quarantined++;
          result.deliveries.push({ seq: entry.seq, outcome: 'quarantined', detail: `${why.code}: ${why.message}` });
        } else {
          acked.push(entry);
          if (o.outcome === 'accepted') result.accepted++;
          else result.duplicates++;
          if (o.logIndex !== undefined && (result.lastReceipt === null || entry.seq > result.lastReceipt.seq)) result.lastReceipt = { seq: entry.seq, logIndex: o.logIndex };
          result.deliveries.push({ seq: entry.seq, outcome: o.outcome });
        }
        done.add(entry.seq);
      }
      await spool.acknowledge(acked);
      if (probe > 0) probe--;
      continue;
    }

    const error = errorOf(res);
    if (retryable(res.status) || (res.status >= 200 && res.status < 300)) {
      const wait = retryAfterMs(res, opts.now?.());
      opts.log.warn({ seq: first, status: res.status, code: error.code, retryAfterMs: wait }, 'collector not ready; results stay in the spool');
      result.deliveries.push({ seq: first, outcome: 'kept', detail: `${error.code}: ${error.message}` });
      result.stopped = { reason: 'status', status: res.status, retryAfterMs: wait, detail: `${error.code}: ${error.message}` };
      return result;
    }
    // A 4xx: say which envelope, by sending them one at a time.
    if (!single) {
      opts.log.warn({ seq: first, count: batch.length, status: res.status, code: error.code }, 'collector refused a batch; retrying one envelope at a time');
      probe = batch.length;
      continue;
    }
    probe = 0;
    await spool.quarantine(batch[0]!.entry, { status: res.status, code: error.code, message: error.message });
    done.add(first);
    result.quarantined++;
    result.deliveries.push({ seq: first, outcome: 'quarantined', detail: `${error.code}: ${error.message}` });
  }
}

export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  /** Retry-After beyond this is capped: a confused proxy must not park the agent for days. */
  retryAfterMaxMs?: number;
  random?: () => number;
}

/**
 * Exponential backoff with "equal jitter": attempt n waits between d/2 and d, d = initial·2^(n-1)
 * capped at max. A Retry-After answer is honoured as a floor (never retry sooner), plus up to 10 %
 * jitter so that a fleet told "60" does not return in the same second.
 */
export function backoffDelayMs(attempt: number, retryAfter: number | null, opts: BackoffOptions): number {
  const random = opts.random ?? Math.random;
  if (retryAfter !== null) {
    const floor = Math.min(retryAfter, opts.retryAfterMaxMs ?? 3_600_000);
    return Math.round(floor + floor * 0.1 * random());
  }
  const d = Math.min(opts.maxMs, opts.initialMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(d / 2 + (d / 2) * random());
}

export interface DelivererOptions {
  log: Logger;
  limits?: Partial<BatchLimits>;
  backoff: BackoffOptions;
  /** Called after every pass (status file, logs). */
  onPass?: (pass: PassResult, next: { retryInMs: number | null }) => void | Promise<void>;
}

/**
 * Runs delivery passes: one at a time, again after a kick, and after failures on a backoff timer.
 * A kick during backoff does not cut the wait short: the collector asked for room.
 */
export class Deliverer {
  readonly #run: (signal: AbortSignal) => Promise<PassResult>;
  readonly #opts: DelivererOptions;
  #attempt = 0;
  #timer: NodeJS.Timeout | undefined;
  #retryAt: number | null = null;
  #inFlight: Promise<void> | null = null;
  #again = false;
  #stopped = false;
  readonly #abort = new AbortController();

  constructor(run: (signal: AbortSignal) => Promise<PassResult>, opts: DelivererOptions) {
    this.#run = run;
    this.#opts = opts;
  }

  /** Epoch ms of the next retry while backing off; null otherwise. */
  get retryAt(): number | null {
    return this.#retryAt;
  }

  get busy(): boolean {
    return this.#inFlight !== null;
  }

  kick(): void {
    if (this.#stopped || this.#timer !== undefined) return;
    if (this.#inFlight !== null) {
      this.#again = true;
      return;
    }
    this.#inFlight = this.#loop().finally(() => {
      this.#inFlight = null;
    });
  }

  async #loop(): Promise<void> {
    do {
      this.#again = false;
      let pass: PassResult;
      try {
        pass = await this.#run(this.#abort.signal);
      } catch (err) {
        this.#opts.log.error({ err }, 'delivery pass failed');
        pass = { deliveries: [], accepted: 0, duplicates: 0, quarantined: 0, lastReceipt: null, stopped: { reason: 'protocol', retryAfterMs: null, detail: String(err) } };
      }
      let delay: number | null = null;
      if (pass.stopped === null) {
        this.#attempt = 0;
        this.#retryAt = null;
      } else {
        this.#attempt++;
        delay = backoffDelayMs(this.#attempt, pass.stopped.retryAfterMs, this.#opts.backoff);
        this.#retryAt = this.#stopped ? null : Date.now() + delay;
      }
      await this.#opts.onPass?.(pass, { retryInMs: this.#stopped ? null : delay });
      if (this.#stopped) return;
      if (delay !== null) {
        this.#timer = setTimeout(() => {
          this.#timer = undefined;
          this.kick();
        }, delay);
        return;
      }
    } while (this.#again && !this.#stopped);
  }

  /**
   * Stops retrying. With `flushMs`, first makes one last pass (unless backing off), aborted at the
   * deadline: an aborted send is safe, since nothing leaves the spool without an acknowledgement.
   */
  async stop(opts: { flushMs?: number } = {}): Promise<void> {
    const backingOff = this.#timer !== undefined;
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const flushMs = opts.flushMs ?? 0;
    const deadline = setTimeout(() => this.#abort.abort(), flushMs);
    try {
      // A pass in flight finishes (or is aborted at the deadline); the loop then returns.
      if (this.#inFlight !== null) await this.#inFlight;
      else if (flushMs > 0 && !backingOff) await this.#run(this.#abort.signal).catch(() => undefined);
    } finally {
      clearTimeout(deadline);
    }
  }
}
