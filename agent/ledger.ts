// The ledger owns the agent's side of the evidence chain: the chain head (chain.json), the spool,
// the events waiting for the next envelope (events.json), and the spool's bounds. Every change
// goes through one mutex, and every step is ordered so that a crash (SIGKILL, power loss) at any
// point leaves a state that the next open() repairs without reusing a sequence number:
//
//   sign → spool file (fsync, rename, fsync dir)                          [append]
//       a crash before the spool rename loses only bytes that were never sent: the seq was
//       never used. The spool's newest file *is* the chain head, so chain.json is written only
//       when the head is about to leave the spool (before any removal) and at shutdown: open()
//       takes the newer of chain.json and the spool's newest file. One fsync'd write per
//       envelope instead of two.
//   drop record spooled → chain.json → victims unlinked                    [spool full]
//       a crash before the unlink leaves victims beside the record that covers them: open()
//       removes every spooled entry inside a spooled drop record's range.
//   event written (events.json) → rename into quarantine/                  [4xx]
//       a crash in between re-sends the envelope, which is refused again; the event is
//       coalesced, not duplicated.
//   events ride in the next envelope signed: an event recorded at head seq H is attached to
//       seq H+1 and is pending only while the head is still H, so a crash after spooling H+1
//       cannot attach it twice.
import type { KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import * as z from 'zod';
import { CHECK_IDS, type CheckId, type Finding } from '../checks/types.js';
import {
  PAYLOAD_TYPE_STATEMENT,
  PREDICATE_TYPE_FINDING,
  PREDICATE_TYPE_SPOOL_DROP,
  agentEventSchema,
  buildSpoolDropStatement,
  buildStatement,
  sha256Hex,
  signEnvelope,
  type AgentEvent,
  type SpoolDropPredicate,
} from '../collector/contract.js';
import { AgentError } from './errors.js';
import { removeTempFiles, writeFileDurable } from './fs-util.js';
import { Mutex } from './mutex.js';
import { Spool, type SpoolEntry } from './spool.js';
import { keyInUse, type ChainHead, type Identity, type StateDir } from './state.js';
import { AGENT_VERSION } from './version.js';

export interface SpoolBounds {
  maxCount: number;
  maxBytes: number;
  quarantineMaxCount: number;
}

export const DEFAULT_SPOOL_BOUNDS: SpoolBounds = { maxCount: 10_000, maxBytes: 64 * 1024 * 1024, quarantineMaxCount: 1000 };

/** When full, drop down to this fraction of the bounds, so that drops come in a few chunks. */
const LOW_WATER = 0.9;
/** Room kept for the drop record itself. */
const DROP_RECORD_RESERVE_BYTES = 4096;
/** The contract allows this many events per envelope. */
const MAX_EVENTS_PER_ENVELOPE = 100;
const MAX_PENDING_EVENTS = 1000;

export type Dropped = SpoolDropPredicate['dropped'];

export interface AppendResult {
  signed: { finding: Finding; seq: number }[];
  /**
   * Set when the spool overflowed and a signed drop record was written. `results` is how many
   * results this drop removed (`dropped.count` also counts those of older records it folded in).
   */
  drop: { seq: number; dropped: Dropped; results: number } | null;
}

export interface QuarantineReason {
  status: number;
  code: string;
  message: string;
}

/** What a delivery pass needs from the spool; the ledger and a bare Spool both provide it. */
export interface DeliverySpool {
  list(): Promise<SpoolEntry[]>;
  read(entry: SpoolEntry): Promise<Buffer>;
  /** Acknowledged (accepted or duplicate): leaves the spool. */
  acknowledge(entries: readonly SpoolEntry[]): Promise<void>;
  /** Refused for good (4xx): moves to quarantine, with an error log and an agent event. */
  quarantine(entry: SpoolEntry, why: QuarantineReason): Promise<string>;
}

const pendingEventSchema = z.object({ afterSeq: z.number().int().min(0), event: agentEventSchema }).strict();
const eventsFileSchema = z.object({ events: z.array(pendingEventSchema).max(MAX_PENDING_EVENTS) }).strict();
type PendingEvent = z.infer<typeof pendingEventSchema>;

/** The statement inside an envelope, or null when the bytes are not one. */
export function decodeStatement(bytes: Buffer): { predicateType?: unknown; predicate?: Record<string, unknown> } | null {
  try {
    const envelope = JSON.parse(bytes.toString('utf8')) as { payload?: unknown };
    if (typeof envelope.payload !== 'string') return null;
    return JSON.parse(Buffer.from(envelope.payload, 'base64').toString('utf8')) as { predicateType?: unknown; predicate?: Record<string, unknown> };
  } catch {
    return null;
  }
}

function isCheckId(v: unknown): v is CheckId {
  return typeof v === 'string' && (CHECK_IDS as readonly string[]).includes(v);
}

export interface LedgerOptions {
  log: Logger;
  bounds?: Partial<SpoolBounds>;
  now?: () => Date;
  /** Defaults to a Spool over the state directory's spool/ and quarantine/. */
  spool?: Spool;
}

export class Ledger {
  readonly spool: Spool;
  readonly #state: StateDir;
  readonly #identity: Identity;
  readonly #key: KeyObject;
  readonly #bounds: SpoolBounds;
  readonly #log: Logger;
  readonly #now: () => Date;
  readonly #mutex = new Mutex();
  #head: ChainHead = { seq: 0, head: null };
  /** The sequence number chain.json holds. */
  #flushed = 0;
  /** The spool, in sequence order, with sizes: kept in step with the directory by every change. */
  #entries: SpoolEntry[] = [];
  #bytes = 0;
  #pending: PendingEvent[] = [];
  /** The policy version the next envelope names. */
  policyVersion: number | null = null;

  private constructor(state: StateDir, identity: Identity, key: KeyObject, opts: LedgerOptions) {
    this.#state = state;
    this.#identity = identity;
    this.#key = key;
    this.#bounds = { ...DEFAULT_SPOOL_BOUNDS, ...opts.bounds };
    this.#log = opts.log;
    this.#now = opts.now ?? (() => new Date());
    this.spool = opts.spool ?? new Spool(state.spoolDir, state.quarantineDir);
  }

  /** Opens the ledger and repairs whatever a crash left half done. */
  static async open(state: StateDir, identity: Identity, key: KeyObject, opts: LedgerOptions): Promise<Ledger> {
    const ledger = new Ledger(state, identity, key, opts);
    await ledger.#recover();
    return ledger;
  }

  get head(): Readonly<ChainHead> {
    return this.#head;
  }

  get bounds(): Readonly<SpoolBounds> {
    return this.#bounds;
  }

  /** Spool depth from the in-memory index (no disk access). */
  depth(): { count: number; bytes: number; oldestSeq: number | null } {
    return { count: this.#entries.length, bytes: this.#bytes, oldestSeq: this.#entries[0]?.seq ?? null };
  }

  pendingEvents(): readonly AgentEvent[] {
    return this.#pending.map((p) => p.event);
  }

  async #recover(): Promise<void> {
    await removeTempFiles(this.#state.dir);
    const removed = await this.spool.removeTemp();
    if (removed.length > 0) this.#log.warn({ files: removed }, 'removed partial spool writes left by a crash (never sent)');
    let entries = await this.spool.list({ sizes: true });

    // A drop record is spooled before its victims are unlinked: finish the job. Its victims are
    // the results in its span, and the older records it folded (their spans lie inside its own).
    const spans = new Map<number, { first: number; last: number }>();
    for (const drop of entries.filter((e) => e.kind === 'drop')) {
      const dropped = decodeStatement(await this.spool.read(drop))?.predicate?.dropped as { firstSeq?: unknown; lastSeq?: unknown } | undefined;
      if (typeof dropped?.firstSeq === 'number' && typeof dropped.lastSeq === 'number') spans.set(drop.seq, { first: dropped.firstSeq, last: dropped.lastSeq });
    }
    for (const [dropSeq, { first, last }] of spans) {
      const inside = (x: number) => x >= first && x <= last;
      const covered = entries.filter((e) => {
        if (e.seq >= dropSeq || !inside(e.seq)) return false;
        if (e.kind === 'result') return true;
        const span = spans.get(e.seq);
        return span !== undefined && inside(span.first) && inside(span.last);
      });
      if (covered.length > 0) {
        // Only older entries go, never the newest: the head stays in the spool.
        await this.spool.removeMany(covered);
        this.#log.warn({ seqs: covered.map((e) => e.seq), dropRecord: dropSeq }, 'finished removing what a drop record covers');
        entries = entries.filter((e) => !covered.includes(e));
      }
    }
    this.#entries = entries;
    this.#bytes = entries.reduce((n, e) => n + (e.size ?? 0), 0);

    // The spool may be ahead of chain.json (a crash between the two writes): trust the spool.
    const chain = await this.#state.chain();
    const newest = entries.at(-1);
    this.#flushed = chain.seq;
    if (newest !== undefined && newest.seq > chain.seq) {
      this.#head = { seq: newest.seq, head: sha256Hex(await this.spool.read(newest)) };
      this.#log.debug({ seq: newest.seq, chainJson: chain.seq }, 'chain head taken from the spool');
    } else {
      this.#head = chain;
    }
    this.#pending = (await this.#readEvents()).filter((p) => p.afterSeq >= this.#head.seq);
  }

  async #readEvents(): Promise<PendingEvent[]> {
    let text: string;
    try {
      text = await readFile(this.#state.eventsFile, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw new AgentError('AGT_ERR_STATE', `cannot read ${this.#state.eventsFile}`, { cause: err });
    }
    try {
      return eventsFileSchema.parse(JSON.parse(text)).events;
    } catch {
      // Events are evidence about the agent, not results: a damaged file is logged, not fatal.
      this.#log.error({ file: this.#state.eventsFile }, 'events file is damaged; pending agent events are lost');
      return [];
    }
  }

  async #writeEvents(): Promise<void> {
    await writeFileDurable(this.#state.eventsFile, `${JSON.stringify({ events: this.#pending })}\n`, 0o600);
  }

  #sign(build: (link: { seq: number; prev: string | null; events?: AgentEvent[] }) => object): { seq: number; bytes: Buffer; events: PendingEvent[] } {
    const seq = this.#head.seq + 1;
    const attached = this.#pending.slice(0, MAX_EVENTS_PER_ENVELOPE);
    const statement = build({ seq, prev: this.#head.head, ...(attached.length > 0 ? { events: attached.map((p) => p.event) } : {}) });
    // The keyid names the key that signs (its fingerprint): after a rotation, the new key's, as
    // DSSE tools that match keyids strictly expect. The collector finds the agent by any of them.
    const bytes = signEnvelope(PAYLOAD_TYPE_STATEMENT, Buffer.from(JSON.stringify(statement)), this.#key, keyInUse(this.#identity).keyId);
    return { seq, bytes, events: attached };
  }

  /** Writes chain.json if the head moved since: before anything leaves the spool, and at stop. */
  async #flush(): Promise<void> {
    if (this.#head.seq <= this.#flushed) return;
    const head = { ...this.#head };
    await this.#state.writeChain(head);
    this.#flushed = head.seq;
  }

  /** Makes chain.json current (the daemon calls it when it stops). */
  flushHead(): Promise<void> {
    return this.#mutex.run(() => this.#flush());
  }

  /** After an envelope is spooled: move the head, and forget the events it carried. */
  async #advance(seq: number, bytes: Buffer, entry: SpoolEntry, attached: PendingEvent[]): Promise<void> {
    this.#entries.push(entry);
    this.#bytes += bytes.length;
    // The spooled file is the durable head now; chain.json follows lazily (see #flush).
    this.#head = { seq, head: sha256Hex(bytes) };
    if (attached.length > 0) {
      this.#pending = this.#pending.slice(attached.length);
      if (this.#pending.length > 0) {
        // More than one envelope's worth: the rest wait for the next one.
        for (const p of this.#pending) p.afterSeq = seq;
        await this.#writeEvents();
      }
    }
  }

  /** Signs each finding into the chain and spools it durably, in order. */
  append(findings: readonly Finding[], policyVersion: number | null = this.policyVersion): Promise<AppendResult> {
    return this.#mutex.run(async () => {
      this.policyVersion = policyVersion;
      const signed: AppendResult['signed'] = [];
      for (const finding of findings) {
        const { seq, bytes, events } = this.#sign((link) =>
          buildStatement({
            agentId: this.#identity.agentId,
            agentVersion: AGENT_VERSION,
            host: this.#identity.host,
            ...link,
            collectedAt: finding.collectedAt,
            policyVersion,
            finding,
          }),
        );
        const entry = await this.spool.put(seq, bytes);
        await this.#advance(seq, bytes, entry, events);
        signed.push({ finding, seq });
      }
      const drop = await this.#enforceBounds();
      return { signed, drop };
    });
  }

  /** Records something that happened to the agent; it rides in the next envelope signed. */
  recordEvent(type: AgentEvent['type'], detail?: AgentEvent['detail']): Promise<void> {
    return this.#mutex.run(() => this.#recordEvent(type, detail));
  }

  async #recordEvent(type: AgentEvent['type'], detail?: AgentEvent['detail']): Promise<void> {
    const event: AgentEvent = { type, at: this.#now().toISOString(), ...(detail === undefined ? {} : { detail }) };
    if (this.#pending.length >= MAX_PENDING_EVENTS) {
      this.#log.warn({ dropped: this.#pending[0]?.event.type }, 'too many pending agent events; the oldest is dropped');
      this.#pending.shift();
    }
    this.#pending.push({ afterSeq: this.#head.seq, event });
    await this.#writeEvents();
  }

  /**
   * Over a bound: drop the oldest results down to 90 % of the bounds and sign a record of them.
   * A drop record covers one span of sequence numbers, [firstSeq, lastSeq], and counts the results
   * dropped in it. Records themselves are kept (they are small, and they are the evidence), so
   * spans never overlap. Only if records would crowd out results (more than half the spool) are
   * all of them folded, with every older result, into one record over everything but the newest.
   */
  async #enforceBounds(): Promise<AppendResult['drop']> {
    const { maxCount, maxBytes } = this.#bounds;
    if (this.#entries.length <= maxCount && this.#bytes <= maxBytes) return null;
    const reason: Dropped['reason'] = this.#entries.length > maxCount ? 'spool_full_count' : 'spool_full_bytes';
    const targetCount = Math.max(1, Math.floor(maxCount * LOW_WATER)) - 1;
    const targetBytes = Math.floor(maxBytes * LOW_WATER) - DROP_RECORD_RESERVE_BYTES;
    // The newest entry always stays.
    const candidates = this.#entries.slice(0, -1);
    const fits = (count: number, bytes: number) => count <= targetCount && bytes <= targetBytes;
    let victims: SpoolEntry[] = [];
    let count = this.#entries.length;
    let bytes = this.#bytes;
    for (const e of candidates) {
      if (fits(count, bytes)) break;
      if (e.kind !== 'result') continue;
      victims.push(e);
      count--;
      bytes -= e.size ?? 0;
    }
    const records = this.#entries.filter((e) => e.kind === 'drop').length + 1;
    if (!fits(count, bytes) || records > maxCount / 2) victims = candidates; // fold everything
    if (victims.length === 0) return null;
    const dropped = await this.#summarize(victims, reason);
    const { seq, bytes: record, events } = this.#sign((link) =>
      buildSpoolDropStatement({
        agentId: this.#identity.agentId,
        agentVersion: AGENT_VERSION,
        host: this.#identity.host,
        ...link,
        collectedAt: this.#now().toISOString(),
        policyVersion: this.policyVersion,
        dropped,
      }),
    );
    // The record first, then the victims: a crash in between is finished by open().
    const entry = await this.spool.put(seq, record, 'drop');
    await this.#advance(seq, record, entry, events);
    await this.#flush();
    await this.spool.removeMany(victims);
    const gone = new Set(victims);
    this.#entries = this.#entries.filter((e) => !gone.has(e));
    this.#bytes -= victims.reduce((n, e) => n + (e.size ?? 0), 0);
    const results = victims.filter((v) => v.kind === 'result').length;
    this.#log.warn({ dropRecord: seq, dropped, results }, 'spool full: dropped the oldest results and signed a drop record');
    return { seq, dropped, results };
  }

  async #summarize(victims: readonly SpoolEntry[], reason: Dropped['reason']): Promise<Dropped> {
    let count = 0;
    let firstSeq = Number.MAX_SAFE_INTEGER;
    let lastSeq = 0;
    const checks = new Set<CheckId>();
    const times: string[] = [];
    for (const v of victims) {
      firstSeq = Math.min(firstSeq, v.seq);
      lastSeq = Math.max(lastSeq, v.seq);
      const p = decodeStatement(await this.spool.read(v));
      if (p?.predicateType === PREDICATE_TYPE_SPOOL_DROP && p.predicate !== undefined) {
        // An older drop record that was never delivered: this one takes over what it covered.
        const d = p.predicate.dropped as Partial<Dropped> | undefined;
        count += typeof d?.count === 'number' ? d.count : 0;
        if (typeof d?.firstSeq === 'number') firstSeq = Math.min(firstSeq, d.firstSeq);
        if (typeof d?.lastSeq === 'number') lastSeq = Math.max(lastSeq, d.lastSeq);
        for (const c of d?.checks ?? []) if (isCheckId(c)) checks.add(c);
        if (typeof d?.from === 'string') times.push(d.from);
        if (typeof d?.to === 'string') times.push(d.to);
        continue;
      }
      count++;
      if (p?.predicateType === PREDICATE_TYPE_FINDING && p.predicate !== undefined) {
        const finding = p.predicate.finding as { check?: unknown } | undefined;
        if (isCheckId(finding?.check)) checks.add(finding.check);
        if (typeof p.predicate.collectedAt === 'string') times.push(p.predicate.collectedAt);
      }
    }
    times.sort();
    const now = this.#now().toISOString();
    return {
      count: Math.max(1, count),
      firstSeq,
      lastSeq,
      checks: CHECK_IDS.filter((c) => checks.has(c)),
      from: times[0] ?? now,
      to: times.at(-1) ?? now,
      reason,
    };
  }

  /** Runs a delivery pass with the spool to itself: nothing is appended or dropped meanwhile. */
  exclusive<T>(work: (spool: DeliverySpool) => Promise<T>): Promise<T> {
    return this.#mutex.run(() =>
      work({
        list: async () => [...this.#entries],
        read: (entry) => this.spool.read(entry),
        acknowledge: async (entries) => {
          await this.#flush();
          await this.spool.removeMany(entries);
          const gone = new Set(entries.map((e) => e.seq));
          this.#entries = this.#entries.filter((e) => {
            if (!gone.has(e.seq)) return true;
            this.#bytes -= e.size ?? 0;
            return false;
          });
        },
        quarantine: async (entry, why) => {
          await this.#flush();
          await this.#noteQuarantine(entry.seq, why);
          const target = await this.spool.quarantine(entry);
          this.#entries = this.#entries.filter((e) => e.seq !== entry.seq);
          this.#bytes -= entry.size ?? 0;
          this.#log.error({ seq: entry.seq, status: why.status, code: why.code, error: why.message, file: target }, 'collector refused a result; moved to quarantine');
          const trimmed = await this.spool.trimQuarantine(this.#bounds.quarantineMaxCount);
          if (trimmed.length > 0) this.#log.warn({ files: trimmed }, 'quarantine full: removed the oldest quarantined envelopes');
          return target;
        },
      }),
    );
  }

  /** One event per run of refusals with the same code: {count, firstSeq, lastSeq, status, code}. */
  async #noteQuarantine(seq: number, why: QuarantineReason): Promise<void> {
    const last = this.#pending.at(-1);
    const d = last?.event.detail;
    if (last !== undefined && last.event.type === 'spool_quarantine' && d?.code === why.code && d.status === why.status) {
      if (typeof d.lastSeq === 'number' && seq <= d.lastSeq) return; // the same refusal again, after a crash
      d.count = (typeof d.count === 'number' ? d.count : 1) + 1;
      d.lastSeq = seq;
      await this.#writeEvents();
      return;
    }
    await this.#recordEvent('spool_quarantine', { count: 1, firstSeq: seq, lastSeq: seq, status: why.status, code: why.code });
  }
}

/** A bare spool as a DeliverySpool (no index, no events): for one-off passes and tests. */
export function spoolForDelivery(spool: Spool, log: Logger): DeliverySpool {
  return {
    list: () => spool.list({ sizes: true }),
    read: (entry) => spool.read(entry),
    acknowledge: (entries) => spool.removeMany(entries),
    quarantine: async (entry, why) => {
      const target = await spool.quarantine(entry);
      log.error({ seq: entry.seq, status: why.status, code: why.code, error: why.message, file: target }, 'collector refused a result; moved to quarantine');
      return target;
    },
  };
}
