// The collector's transparency logs, one per vendor: loaded at start and reconciled with the
// evidence, appended to by ingest and the key and policy events, checkpointed on a timer and on
// demand. One collector writes a vendor's log at a time (collector/README.md: "The transparency log").
import { createHash, type KeyObject } from 'node:crypto';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { PolicyDocument } from '../contract.js';
import { keyEventEntries, type RegisteredAgent } from '../registry.js';
import type { CollectorState } from '../state.js';
import type { EvidenceStore } from '../store.js';
import type { LogEntry } from './entries.js';
import { VendorLog, type StoredCheckpoint } from './vendor-log.js';

export interface LogSetOptions {
  store: EvidenceStore;
  /** The collector's Ed25519 key: it signs every checkpoint. */
  key: KeyObject;
  /** The collector's origin; a vendor's log is `<origin>/<vendor>`. */
  origin: string;
  log: Logger;
  registry?: Registry;
}

/** A vendor's log origin, as its checkpoints name it. */
export function vendorOrigin(origin: string, vendor: string): string {
  return `${origin}/${vendor}`;
}

export class LogSet {
  readonly #opts: LogSetOptions;
  readonly #logs = new Map<string, VendorLog>();
  readonly #appendErrors: Counter;
  /** Log indexes of stored envelopes, by agent and seq: the receipt for a resent envelope. */
  readonly #indexOf = new Map<string, Map<number, number>>();
  /** The newest policy version each vendor's log holds. */
  readonly #policyVersion = new Map<string, number>();
  /** Appends wait until the logs are loaded and reconciled (an enrollment can come during start). */
  #started!: () => void;
  readonly #ready = new Promise<void>((resolve) => (this.#started = resolve));

  constructor(opts: LogSetOptions) {
    this.#opts = opts;
    const registers = opts.registry === undefined ? [] : [opts.registry];
    this.#appendErrors = new Counter({ name: 'vcm_log_append_errors_total', help: 'Transparency-log writes that failed (retried until they succeed).', registers });
    const logs = () => [...this.#logs.values()];
    new Gauge({
      name: 'vcm_log_size',
      help: 'Entries in each vendor transparency log.',
      labelNames: ['vendor'],
      registers,
      collect() {
        for (const l of logs()) this.set({ vendor: l.vendor }, l.size);
      },
    });
    new Gauge({
      name: 'vcm_log_checkpoint_timestamp_seconds',
      help: 'When the latest checkpoint of each vendor log was issued.',
      labelNames: ['vendor'],
      registers,
      collect() {
        for (const l of logs()) if (l.latest !== undefined && l.latest.issuedAt !== '') this.set({ vendor: l.vendor }, Date.parse(l.latest.issuedAt) / 1000);
      },
    });
    new Gauge({
      name: 'vcm_log_consistent',
      help: '1 while a vendor log agrees with its stored checkpoints and rounds; 0 after a self-check found otherwise (no checkpoint is issued over it).',
      labelNames: ['vendor'],
      registers,
      collect() {
        for (const l of logs()) this.set({ vendor: l.vendor }, l.broken === null && l.damaged === null ? 1 : 0);
      },
    });
  }

  vendors(): string[] {
    return [...this.#logs.keys()].sort();
  }

  get(vendor: string): VendorLog | undefined {
    return this.#logs.get(vendor);
  }

  #open(vendor: string): VendorLog {
    let l = this.#logs.get(vendor);
    if (l === undefined) {
      l = new VendorLog({
        vendor,
        origin: vendorOrigin(this.#opts.origin, vendor),
        store: this.#opts.store,
        key: this.#opts.key,
        onAppendError: (err) => {
          this.#appendErrors.inc();
          this.#opts.log.error({ err, vendor }, 'transparency log write failed; retrying');
        },
      });
      this.#logs.set(vendor, l);
    }
    return l;
  }

  #remember(agentId: string, seq: number, index: number): void {
    let m = this.#indexOf.get(agentId);
    if (m === undefined) this.#indexOf.set(agentId, (m = new Map()));
    m.set(seq, index);
  }

  indexOf(agentId: string, seq: number): number | undefined {
    return this.#indexOf.get(agentId)?.get(seq);
  }

  /**
   * Loads each vendor's log, then enters what the store holds and the log does not: evidence from
   * before the log existed, or whose entry a crash kept from being written. In evidence order,
   * marked `migrated`; each log that took any gets a checkpoint saying how many. Entries whose
   * evidence is gone are reported: that is what the log is for.
   */
  async start(args: { agents: readonly RegisteredAgent[]; state: CollectorState; now: Date }): Promise<{ migrated: number; missingEvidence: number }> {
    try {
      return await this.#start(args);
    } finally {
      this.#started();
    }
  }

  async #start(args: { agents: readonly RegisteredAgent[]; state: CollectorState; now: Date }): Promise<{ migrated: number; missingEvidence: number }> {
    const { state, now } = args;
    const vendorOfId = new Map(args.agents.map((a) => [a.record.agentId, a.record.vendor]));
    const vendorOf = (id: string) => vendorOfId.get(id);
    const keyEvents = new Set<string>();
    const eventId = (e: { agentId: string; event: string; generation: number }) => `${e.agentId}:${e.event}:${e.generation}`;
    let missingEvidence = 0;
    for (const vendor of new Set(vendorOfId.values())) {
      await this.#open(vendor).load((entry, index) => {
        if (entry.type === 'policy') this.#policyVersion.set(vendor, Math.max(this.#policyVersion.get(vendor) ?? 0, entry.version));
        if (entry.type === 'key_event') keyEvents.add(eventId(entry));
        if (entry.type !== 'envelope') return;
        this.#remember(entry.agentId, entry.seq, index);
        if (state.agents.get(entry.agentId)?.links.get(entry.seq)?.hash !== entry.sha256) missingEvidence++;
      });
    }
    // What is stored is checked before anything is added to it.
    await this.selfCheck();
    const missing: { vendor: string; agentId: string; seq: number; hash: string; key: string }[] = [];
    for (const [agentId, a] of state.agents) {
      const vendor = vendorOf(agentId);
      if (vendor === undefined) continue;
      for (const [seq, link] of a.links) if (this.indexOf(agentId, seq) === undefined) missing.push({ vendor, agentId, seq, ...link });
    }
    missing.sort((x, y) => (x.key < y.key ? -1 : x.key > y.key ? 1 : 0));
    const byVendor = new Map<string, LogEntry[]>();
    // Key events first (enrollments, rotations, revocations), by time, then the evidence.
    const events = args.agents.flatMap(keyEventEntries).filter((e) => e.type === 'key_event' && !keyEvents.has(eventId(e)));
    events.sort((x, y) => (x.type === 'key_event' && y.type === 'key_event' ? Date.parse(x.at) - Date.parse(y.at) : 0));
    for (const e of events) {
      const vendor = vendorOf((e as { agentId: string }).agentId)!;
      let list = byVendor.get(vendor);
      if (list === undefined) byVendor.set(vendor, (list = []));
      list.push(e);
    }
    // Entered from what the store's listing says; the envelope itself (its hash is in the entry)
    // says when it was collected and what it is. Reading every file would make a migration of a
    // large store take hours.
    for (const m of missing) {
      let list = byVendor.get(m.vendor);
      if (list === undefined) byVendor.set(m.vendor, (list = []));
      list.push({ type: 'envelope', agentId: m.agentId, seq: m.seq, sha256: m.hash, key: m.key, predicate: null, collectedAt: null, receivedAt: null, migrated: true });
    }
    for (const [vendor, entries] of byVendor) {
      const l = this.#open(vendor);
      // Rounds of a few thousand: one write each, and no round grows past what a read holds.
      for (let i = 0; i < entries.length; i += 4096) {
        const chunk = entries.slice(i, i + 4096);
        const first = await l.append(chunk);
        for (const [j, e] of chunk.entries()) if (e.type === 'envelope') this.#remember(e.agentId, e.seq, first + j);
      }
      await l.issueCheckpoint(now, [`migrated ${entries.length}`]).catch((err: unknown) => this.#opts.log.error({ err, vendor }, 'no checkpoint after the migration'));
    }
    if (missingEvidence > 0) this.#opts.log.error({ missingEvidence }, 'the transparency log names evidence the store no longer holds');
    return { migrated: missing.length + events.length, missingEvidence };
  }

  /**
   * Appends one vendor's entries; resolves with the index of the first of `entries` once they are
   * durable. With `policy`, the policy version they were judged under is entered first when the
   * vendor's log does not hold it yet.
   */
  async append(vendor: string, entries: readonly LogEntry[], policy?: PolicyDocument): Promise<number> {
    await this.#ready;
    const lead: LogEntry[] = [];
    if (policy !== undefined && (this.#policyVersion.get(vendor) ?? 0) < policy.version) {
      const bytes = await this.#opts.store.get(`policy/${policy.version}.json`);
      // A policy not stored (a store that refuses writes) has nothing to name yet.
      if (bytes !== null) lead.push({ type: 'policy', version: policy.version, sha256: createHash('sha256').update(bytes).digest('hex'), createdAt: policy.createdAt });
    }
    const first = (await this.#open(vendor).append([...lead, ...entries])) + lead.length;
    if (lead.length > 0) this.#policyVersion.set(vendor, Math.max(this.#policyVersion.get(vendor) ?? 0, policy!.version));
    for (const [i, e] of entries.entries()) if (e.type === 'envelope') this.#remember(e.agentId, e.seq, first + i);
    return first;
  }

  /** Checks every log's stored tiles against its entries; problems are logged and shown in vcm_log_consistent. */
  async selfCheck(): Promise<void> {
    for (const l of this.#logs.values()) {
      if (l.broken !== null) {
        this.#opts.log.error({ vendor: l.vendor, problem: l.broken }, 'transparency log is broken; it takes no entries');
        continue;
      }
      const problem = await l.selfCheck().catch((err: unknown) => `the self-check could not read the log: ${(err as Error).message}`);
      if (problem !== null) this.#opts.log.error({ vendor: l.vendor, problem }, 'transparency log disagrees with its stored tiles; no checkpoint is issued over it');
    }
  }

  /** Issues a checkpoint for every log that grew since its last one. */
  async checkpointAll(now: Date): Promise<StoredCheckpoint[]> {
    const out: StoredCheckpoint[] = [];
    for (const l of this.#logs.values()) {
      if (l.broken !== null || l.damaged !== null || (l.latest?.size ?? -1) >= l.size) continue;
      try {
        out.push(await l.issueCheckpoint(now));
      } catch (err) {
        this.#appendErrors.inc();
        this.#opts.log.error({ err, vendor: l.vendor }, 'checkpoint failed');
      }
    }
    return out;
  }
}
