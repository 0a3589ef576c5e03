// Verification and storage of one signed result. Order matters: nothing is parsed as trusted
// before the signature over the exact received bytes has verified against the registered key.
import type { Logger } from 'pino';
import {
  DEFAULT_CLOCK_SKEW_SECONDS,
  PAYLOAD_TYPE_STATEMENT,
  PREDICATE_TYPE_FINDING,
  PREDICATE_TYPE_SPOOL_DROP,
  STATEMENT_TYPE,
  anyStatementSchema,
  canonicalEnvelope,
  envelopeSchema,
  evidenceKey,
  parseCanonicalEnvelope,
  sha256Hex,
  strictBase64,
  verifyEnvelopeAsync,
  type Envelope,
  type AnyStatement,
  type IngestOutcome,
  type PolicyDocument,
} from './contract.js';
import { CollectorError } from './errors.js';
import type { LogEntry } from './log/entries.js';
import type { LogSet } from './log/logs.js';
import { parseRequestJson as parseJson } from './strict-json.js';
import type { Metrics } from './metrics.js';
import { keyForSeq, type AgentRegistry, type RegisteredAgent } from './registry.js';
import { judge, type CollectorState, type StoredLink } from './state.js';
import type { EvidenceStore } from './store.js';

export interface IngestDeps {
  store: EvidenceStore;
  registry: AgentRegistry;
  state: CollectorState;
  metrics: Metrics;
  policy: () => PolicyDocument;
  now: () => Date;
  log: Logger;
  clockSkewSeconds?: number;
  /** The transparency logs; without them (unit tests of verification alone) nothing is entered. */
  logs?: LogSet;
  /** Envelopes per second each agent may send, with a burst allowance; undefined = unlimited. */
  rateLimit?: { perSecond: number; burst: number };
}

/** A token bucket per agent: refilled by the clock, so an idle agent is never short. */
class RateLimiter {
  readonly #buckets = new Map<string, { tokens: number; at: number }>();
  constructor(
    readonly perSecond: number,
    readonly burst: number,
  ) {}

  take(agentId: string, nowMs: number): boolean {
    const b = this.#buckets.get(agentId) ?? { tokens: this.burst, at: nowMs };
    b.tokens = Math.min(this.burst, b.tokens + ((nowMs - b.at) / 1000) * this.perSecond);
    b.at = nowMs;
    const ok = b.tokens >= 1;
    if (ok) b.tokens -= 1;
    this.#buckets.set(agentId, b);
    return ok;
  }
}

/**
 * Failed lines per source address: a token bucket that only refusals spend. While a source has
 * budget, its batches stop at MAX_UNTRUSTED_FAILURES failed lines; once it is spent, at the first.
 * An agent's batches verify, so they never notice, even behind a proxy or NAT address that a
 * sender of garbage shares: nobody is refused for where they come from. Bounded: the sources
 * seen longest ago are forgotten first.
 */
class FailureBudget {
  readonly #buckets = new Map<string, { tokens: number; at: number }>();
  constructor(
    readonly burst = 64,
    readonly perSecond = 8,
    readonly maxSources = 10_000,
  ) {}

  #bucket(source: string, nowMs: number): { tokens: number; at: number } {
    const b = this.#buckets.get(source) ?? { tokens: this.burst, at: nowMs };
    // A wall clock set back refills nothing.
    b.tokens = Math.min(this.burst, b.tokens + (Math.max(0, nowMs - b.at) / 1000) * this.perSecond);
    b.at = nowMs;
    this.#buckets.delete(source);
    this.#buckets.set(source, b);
    if (this.#buckets.size > this.maxSources) this.#buckets.delete(this.#buckets.keys().next().value!);
    return b;
  }

  /** How many failed lines a batch from this source may have before it stops. */
  limit(source: string, nowMs: number): number {
    return this.#bucket(source, nowMs).tokens >= 1 ? MAX_UNTRUSTED_FAILURES : 1;
  }

  spend(source: string, failures: number, nowMs: number): void {
    if (failures > 0) this.#bucket(source, nowMs).tokens -= failures;
  }
}

interface Verified {
  bytes: Buffer;
  hash: string;
  agent: RegisteredAgent;
  /** The generation of the key that verified it: checked again under the agent's lock. */
  generation: number;
  predicate: AnyStatement['predicate'];
}

/**
 * The sequence number an envelope claims, read before its signature is checked, only to choose
 * which of the agent's keys must verify it. Nothing else is taken from it: the signature covers
 * the seq, and the statement is parsed strictly after it verified.
 */
function claimedSeq(envelope: Envelope): number | null {
  try {
    const seq = (JSON.parse(Buffer.from(envelope.payload, 'base64').toString('utf8')) as { predicate?: { seq?: unknown } } | null)?.predicate?.seq;
    return typeof seq === 'number' && Number.isSafeInteger(seq) && seq >= 1 ? seq : null;
  } catch {
    return null;
  }
}

/** Strict JSON, the envelope schema, then canonical form: the first that fails is the reason. */
function checkedEnvelope(bytes: Buffer): Envelope {
  const parsed = envelopeSchema.safeParse(parseJson(bytes));
  if (!parsed.success) throw new CollectorError('COL_ERR_MALFORMED', 'the body is not a DSSE envelope');
  const envelope: Envelope = parsed.data;
  if (envelope.signatures.length !== 1 || !bytes.equals(canonicalEnvelope(envelope))) {
    throw new CollectorError('COL_ERR_MALFORMED', 'the envelope is not in canonical form (one signature, compact JSON, fixed member order)');
  }
  return envelope;
}

/**
 * How far past the chain head a sequence number may jump. An agent numbers every result, so a
 * jump is results lost in between (a full spool drops the oldest, and says so): a million is years
 * of outage at the default intervals. A stolen key cannot push the head out of reach at once.
 */
export const MAX_SEQ_JUMP = 1_000_000;

/** Lines one batch may hold: the most an agent sends (its delivery.batchMaxCount tops out here). */
export const MAX_BATCH_LINES = 1000;
/**
 * A batch stops at this many lines refused before or at their signature check: an agent's own
 * batches are all well-formed and signed by a known key, so more of them is not an agent.
 */
export const MAX_UNTRUSTED_FAILURES = 8;
/** Lines verified at once within a batch (signatures run on libuv's threads); above the default batch of 100. */
const VERIFY_WINDOW = 128;

export class Ingestor {
  readonly #deps: IngestDeps;
  /** One ingest at a time per agent, so that chain checks and writes never interleave. */
  readonly #locks = new Map<string, Promise<unknown>>();
  readonly #limiter: RateLimiter | undefined;
  readonly #failures = new FailureBudget();

  constructor(deps: IngestDeps) {
    this.#deps = deps;
    this.#limiter = deps.rateLimit === undefined ? undefined : new RateLimiter(deps.rateLimit.perSecond, deps.rateLimit.burst);
  }

  /** One envelope: its outcome, or a CollectorError for a rejection (4xx) or a store failure (5xx). */
  async ingest(bytes: Buffer, source?: string): Promise<IngestOutcome> {
    const [result] = await this.ingestMany([bytes], source);
    if (result instanceof CollectorError) throw result;
    return result!;
  }

  /**
   * A batch, answered per envelope in order. Every envelope is verified first; then each agent's
   * envelopes are chain-checked under one lock and written together, so that a batch costs one
   * folder fsync instead of one per envelope. A store failure rejects the whole call (503):
   * nothing in it is acknowledged, and the agent sends it again.
   */
  async ingestMany(lines: readonly Buffer[], source?: string): Promise<(IngestOutcome | CollectorError)[]> {
    const { metrics } = this.#deps;
    if (lines.length > MAX_BATCH_LINES) throw new CollectorError('COL_ERR_TOO_LARGE', `a batch holds at most ${MAX_BATCH_LINES} envelopes`);
    const limit = source === undefined ? MAX_UNTRUSTED_FAILURES : this.#failures.limit(source, this.#deps.now().getTime());
    const results: (IngestOutcome | CollectorError)[] = new Array(lines.length);
    const groups = new Map<string, { index: number; v: Verified }[]>();
    const verified = await this.#verifyBatch(lines, limit, (n) => {
      if (source !== undefined) this.#failures.spend(source, n, this.#deps.now().getTime());
    });
    for (const [index, v] of verified.entries()) {
      if (v instanceof CollectorError) {
        results[index] = v;
        continue;
      }
      // Counted after verification, so that nobody can spend another agent's allowance, and in the
      // batch's order, so that the lines past the limit are the last ones.
      if (this.#limiter !== undefined && !this.#limiter.take(v.agent.record.agentId, performance.now())) {
        results[index] = new CollectorError('COL_ERR_RATE_LIMITED');
        continue;
      }
      let group = groups.get(v.agent.record.agentId);
      if (group === undefined) groups.set(v.agent.record.agentId, (group = []));
      group.push({ index, v });
    }
    await Promise.all([...groups].map(([agentId, group]) => this.#serialized(agentId, () => this.#commit(group, results))));
    for (const [index, r] of results.entries()) {
      if (r instanceof CollectorError) {
        metrics.envelopes.inc({ outcome: 'rejected' });
        // Verification failures were counted by reason as they came.
        if (!(verified[index] instanceof CollectorError)) metrics.rejected.inc({ reason: r.reason });
      } else {
        metrics.envelopes.inc({ outcome: r.outcome });
      }
    }
    return results;
  }

  /**
   * Verifies a batch window by window, in parallel within a window (signatures on libuv's
   * threads). Once `limit` lines have failed and more lines follow, it stops and refuses the
   * whole batch, with nothing stored: what an unauthenticated sender can make the collector do
   * stays that small. `spent` learns how many lines failed.
   */
  async #verifyBatch(lines: readonly Buffer[], limit: number, spent: (failures: number) => void): Promise<(Verified | CollectorError)[]> {
    const out: (Verified | CollectorError)[] = [];
    let failures = 0;
    try {
      for (let start = 0; start < lines.length; start += VERIFY_WINDOW) {
        const window = lines.slice(start, start + VERIFY_WINDOW);
        const done = await Promise.all(window.map((bytes) => this.#verify(bytes).catch((err: unknown) => (err instanceof CollectorError ? err : Promise.reject(err)))));
        for (const [i, v] of done.entries()) {
          if (!(v instanceof CollectorError)) continue;
          this.#deps.metrics.rejected.inc({ reason: v.reason });
          const line = start + i + 1;
          if (++failures < limit || line === lines.length) continue;
          this.#deps.metrics.envelopes.inc({ outcome: 'rejected' }, failures);
          throw new CollectorError(
            'COL_ERR_MALFORMED',
            `the batch was refused at line ${line}: ${failures} lines failed verification (${v.code} last); nothing in it was stored`,
          );
        }
        out.push(...done);
      }
      return out;
    } finally {
      spent(failures);
    }
  }

  /** Everything that can be decided from the bytes and the registry alone. */
  async #verify(bytes: Buffer): Promise<Verified> {
    // The signature covers only the payload, but the chain hashes the stored bytes: so the only
    // bytes accepted are the canonical form of a one-signature envelope, and a relay cannot make
    // different bytes (white space, member order, escapes, extra signatures) of the same result.
    // An agent's envelope is recognised by its byte form at once; anything else is checked in
    // full, which says what is wrong with it (or accepts it, if only its strings had escapes).
    const envelope: Envelope = parseCanonicalEnvelope(bytes) ?? checkedEnvelope(bytes);
    const keyid = envelope.signatures[0]?.keyid ?? '';
    // The keyid only says which registered agent to look at (by any of its keys' fingerprints);
    // the key for the sequence number, and the signature, decide.
    const agent = await this.#deps.registry.get(this.#deps.registry.keyOwner(keyid) ?? keyid);
    if (agent === undefined) throw new CollectorError('COL_ERR_UNKNOWN_AGENT');
    // After a rotation the sequence number decides which key must have signed: the old key's
    // results up to the rotation point still count (late delivery), and nothing after it.
    const signer = agent.keys.length === 1 ? agent.keys[0]! : keyForSeq(agent, claimedSeq(envelope) ?? Number.MAX_SAFE_INTEGER);
    // Decoded once, for the signature and then for the statement; not canonical base64 is a bad signature.
    const payload = strictBase64(envelope.payload);
    if (payload === null || !(await verifyEnvelopeAsync(envelope, signer.key, payload))) throw new CollectorError('COL_ERR_BAD_SIGNATURE');
    if (envelope.payloadType !== PAYLOAD_TYPE_STATEMENT) throw new CollectorError('COL_ERR_UNKNOWN_TYPE', 'unknown payloadType');

    const statementJson = parseJson(payload) as Record<string, unknown> | null;
    const predicateType = statementJson?.predicateType;
    if (statementJson?._type !== STATEMENT_TYPE || (predicateType !== PREDICATE_TYPE_FINDING && predicateType !== PREDICATE_TYPE_SPOOL_DROP)) {
      throw new CollectorError('COL_ERR_UNKNOWN_TYPE', 'unknown statement or predicate type');
    }
    const statement = anyStatementSchema.safeParse(statementJson);
    if (!statement.success) {
      throw new CollectorError('COL_ERR_SCHEMA', statement.error.issues.slice(0, 3).map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
    }
    const predicate = statement.data.predicate;
    const finding = 'finding' in predicate ? predicate.finding : null;
    if (predicate.agentId !== agent.record.agentId || (finding !== null && finding.collectedAt !== predicate.collectedAt)) {
      throw new CollectorError('COL_ERR_SCHEMA', 'the statement names another agent, or its times disagree');
    }
    const skew = (this.#deps.clockSkewSeconds ?? DEFAULT_CLOCK_SKEW_SECONDS) * 1000;
    const collectedMs = Date.parse(predicate.collectedAt);
    if (collectedMs > this.#deps.now().getTime() + skew) throw new CollectorError('COL_ERR_FUTURE');
    // Nothing is observed by an agent before it exists: a result dated before enrollment would
    // let a provider fill past audit periods after the fact.
    if (collectedMs < Date.parse(agent.record.enrolledAt) - skew) {
      throw new CollectorError('COL_ERR_BACKDATED', `collected ${predicate.collectedAt}, before the agent enrolled (${agent.record.enrolledAt})`);
    }
    return { bytes, hash: sha256Hex(bytes), agent, generation: signer.generation, predicate };
  }

  /** Chain checks for one agent's envelopes (under its lock), then their writes, together. */
  async #commit(group: { index: number; v: Verified }[], results: (IngestOutcome | CollectorError)[]): Promise<void> {
    const { state, store, metrics, log } = this.#deps;
    const skew = (this.#deps.clockSkewSeconds ?? DEFAULT_CLOCK_SKEW_SECONDS) * 1000;
    const agentId = group[0]!.v.agent.record.agentId;
    const a = state.agent(agentId);
    // Links accepted earlier in this same batch count as stored for the checks that follow.
    const pending = new Map<number, StoredLink & { prev: string | null }>();
    const linkAt = (seq: number) => a.links.get(seq) ?? pending.get(seq);
    /** The highest sequence number stored or accepted earlier in this batch. */
    let head = a.headSeq;
    const headAtStart = head;
    const writes: { index: number; v: Verified; key: string; gap: boolean }[] = [];
    /** Envelopes already stored: answered with their log index, and entered if a crash kept them out. */
    const duplicates: { index: number; v: Verified; key: string }[] = [];
    // The registry as it is now, under the lock: a rotation or revocation since verification counts.
    const now = (await this.#deps.registry.get(agentId)) ?? group[0]!.v.agent;
    for (const { index, v } of group) {
      const { seq, prev } = v.predicate;
      if (keyForSeq(now, seq).generation !== v.generation) {
        results[index] = new CollectorError('COL_ERR_BAD_SIGNATURE', 'the key for this sequence number changed while it was verified');
        continue;
      }
      const existing = linkAt(seq);
      if (existing !== undefined) {
        if (existing.hash === v.hash) {
          results[index] = { seq, outcome: 'duplicate', key: existing.key };
          duplicates.push({ index, v, key: existing.key });
        }
        else {
          log.warn({ agentId, seq }, 'sequence number reused with other content');
          results[index] = new CollectorError('COL_ERR_REPLAY');
        }
        continue;
      }
      const before = linkAt(seq - 1);
      if ((before !== undefined && prev !== before.hash) || (seq === 1 && prev !== null)) {
        results[index] = new CollectorError('COL_ERR_CHAIN_BROKEN', seq === 1 ? 'the first result has no predecessor' : undefined);
        continue;
      }
      // Time runs forward along a chain: a result is not dated before the day of the one it
      // follows (the stored link's day, less the skew; its exact time is not kept in memory).
      const beforeDay = before === undefined ? null : dayOfKey(before.key);
      if (beforeDay !== null && Date.parse(v.predicate.collectedAt) < beforeDay - skew) {
        results[index] = new CollectorError('COL_ERR_BACKDATED', `collected ${v.predicate.collectedAt}, before the day of seq ${seq - 1} (${new Date(beforeDay).toISOString().slice(0, 10)})`);
        continue;
      }
      // A gap is filled only by the envelope the stored next one commits to.
      const after = linkAt(seq + 1);
      const committed = after === undefined ? null : (await this.#prevOf(after)) === v.hash;
      if (committed === false) {
        results[index] = new CollectorError('COL_ERR_CHAIN_BROKEN', 'the stored next result commits to another envelope at this sequence number');
        continue;
      }
      // After revocation the key may be in a thief's hands: only what a stored result already
      // commits to (signed before the revocation, delivered late) can still be added.
      if (now.revocation !== null && committed !== true) {
        results[index] = new CollectorError('COL_ERR_REVOKED', 'the agent is revoked; only results that stored evidence commits to are still taken');
        continue;
      }
      if (seq - head > MAX_SEQ_JUMP) {
        results[index] = new CollectorError('COL_ERR_SEQ_JUMP', `seq ${seq} is more than ${MAX_SEQ_JUMP} past the chain head ${head}`);
        continue;
      }
      const key = evidenceKey({ vendor: v.agent.record.vendor, collectedAt: v.predicate.collectedAt, agentId, seq, sha256: v.hash });
      pending.set(seq, { hash: v.hash, key, prev });
      writes.push({ index, v, key, gap: before === undefined && seq > 1 && seq > head });
      head = Math.max(head, seq);
    }
    if (writes.length === 0) return this.#enter(agentId, [], duplicates, results, headAtStart);

    const stopTimer = metrics.writeDuration.startTimer();
    let puts;
    try {
      puts = await Promise.all(writes.map((w) => store.putIfAbsent(w.key, w.v.bytes)));
    } catch (err) {
      metrics.storeErrors.inc();
      throw err;
    } finally {
      stopTimer();
    }
    const receivedAt = this.#deps.now().getTime();
    const policy = this.#deps.policy();
    for (const [i, w] of writes.entries()) {
      const { seq } = w.v.predicate;
      state.recordStored(agentId, seq, { hash: w.v.hash, key: w.key });
      if (puts[i] === 'exists') {
        results[w.index] = { seq, outcome: 'duplicate', key: w.key };
        duplicates.push(w);
        continue;
      }
      if (w.gap) {
        metrics.chainGaps.inc({ vendor: w.v.agent.record.vendor });
        log.warn({ agentId, seq }, 'gap in evidence chain');
      }
      const predicate = w.v.predicate;
      if ('dropped' in predicate) {
        // The agent lost results to a full spool and says so, signed: count it, alert on it.
        metrics.spoolDropped.inc({ vendor: w.v.agent.record.vendor }, predicate.dropped.count);
        log.warn({ agentId, dropped: predicate.dropped }, 'agent reports dropped results');
        state.recordSeen(agentId, receivedAt);
      } else {
        state.recordResult(agentId, predicate, judge(predicate, policy, w.v.agent.record.vendor), policy.version, receivedAt);
      }
      results[w.index] = { seq, outcome: 'accepted', key: w.key };
    }
    const accepted = writes.filter((_, i) => puts[i] === 'created');
    await this.#enter(agentId, accepted, duplicates, results, headAtStart, new Date(receivedAt).toISOString());
  }

  /**
   * Enters accepted envelopes (and the gaps before them) in the vendor's transparency log and
   * waits until the entries are durable: only then is anything acknowledged. A resent envelope
   * adds nothing, unless its entry never got written (the log was failing when it first came);
   * it is answered with its index.
   */
  async #enter(
    agentId: string,
    accepted: readonly { index: number; v: Verified; key: string; gap: boolean }[],
    duplicates: readonly { index: number; v: Verified; key: string }[],
    results: (IngestOutcome | CollectorError)[],
    headBefore: number,
    receivedAt = this.#deps.now().toISOString(),
  ): Promise<void> {
    const logs = this.#deps.logs;
    if (logs === undefined) return;
    const vendor = (accepted[0] ?? duplicates[0])?.v.agent.record.vendor;
    if (vendor === undefined) return;
    const entries: LogEntry[] = [];
    const slots: { index: number; at: number }[] = [];
    const envelopeEntry = (w: { v: Verified; key: string }): LogEntry => ({
      type: 'envelope',
      agentId,
      seq: w.v.predicate.seq,
      sha256: w.v.hash,
      key: w.key,
      predicate: 'dropped' in w.v.predicate ? 'spool_drop' : 'finding',
      collectedAt: w.v.predicate.collectedAt,
      receivedAt,
      migrated: false,
    });
    let head = headBefore;
    for (const w of [...accepted].sort((x, y) => x.v.predicate.seq - y.v.predicate.seq)) {
      if (w.gap) entries.push({ type: 'chain_gap', agentId, seq: w.v.predicate.seq, headSeq: head, receivedAt });
      head = Math.max(head, w.v.predicate.seq);
      slots.push({ index: w.index, at: entries.length });
      entries.push(envelopeEntry(w));
    }
    for (const d of duplicates) {
      if (logs.indexOf(agentId, d.v.predicate.seq) !== undefined) continue;
      slots.push({ index: d.index, at: entries.length });
      entries.push(envelopeEntry(d));
    }
    if (entries.length > 0) {
      const first = await logs.append(vendor, entries, this.#deps.policy());
      for (const { index, at } of slots) (results[index] as IngestOutcome).logIndex = first + at;
    }
    for (const d of duplicates) {
      const logIndex = logs.indexOf(agentId, d.v.predicate.seq);
      if (logIndex !== undefined) (results[d.index] as IngestOutcome).logIndex = logIndex;
    }
  }

  /** The `prev` a link commits to: known for links of this batch, read from the store otherwise. */
  async #prevOf(link: StoredLink & { prev?: string | null }): Promise<string | null | undefined> {
    if (link.prev !== undefined) return link.prev;
    const bytes = await this.#deps.store.get(link.key);
    if (bytes === null) return undefined;
    // Stored bytes verified when they came, so they are read as trusted here.
    const envelope = JSON.parse(bytes.toString('utf8')) as Envelope;
    return (JSON.parse(Buffer.from(envelope.payload, 'base64').toString('utf8')) as { predicate: { prev: string | null } }).predicate.prev;
  }

  /** Runs `work` while no result of this agent is being chain-checked or written (key rotation). */
  exclusive<T>(agentId: string, work: () => Promise<T>): Promise<T> {
    return this.#serialized(agentId, work);
  }

  async #serialized<T>(agentId: string, work: () => Promise<T>): Promise<T> {
    const prior = this.#locks.get(agentId) ?? Promise.resolve();
    const next = prior.then(work, work);
    const settled = next.catch(() => undefined);
    this.#locks.set(agentId, settled);
    try {
      return await next;
    } finally {
      if (this.#locks.get(agentId) === settled) this.#locks.delete(agentId);
    }
  }
}

/** The UTC midnight (epoch ms) of a stored envelope's `date=YYYY-MM-DD` folder, or null. */
function dayOfKey(key: string): number | null {
  const m = /\/date=(\d{4}-\d{2}-\d{2})\//.exec(key);
  return m === null ? null : Date.parse(`${m[1]}T00:00:00Z`);
}
