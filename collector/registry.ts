// The agent registry: keys/<agent id>.json, written once at enrollment, keys/<agent id>.key-<n>.json,
// written once per key rotation, and keys/<agent id>.revoked.json, written once at revocation.
// None is ever rewritten.
import { createPublicKey, type KeyObject } from 'node:crypto';
import * as z from 'zod';
import type { LogEntry } from './log/entries.js';
import { agentIdFor, agentIdSchema, envelopeSchema, hostSchema, vendorSchema } from './contract.js';
import type { EvidenceStore } from './store.js';

/**
 * A stored record's host: enrollment now takes only what a host name can be (hostSchema), but a
 * record written before that rule is still read, never refused; what prints or labels it escapes.
 */
const storedHostSchema = hostSchema.extend({ hostname: z.string().min(1).max(1024) });

export const agentRecordSchema = z
  .object({
    agentId: agentIdSchema,
    vendor: vendorSchema,
    host: storedHostSchema,
    agentVersion: z.string(),
    publicKey: z.string(),
    enrolledAt: z.iso.datetime({ offset: false }),
    revokedAt: z.iso.datetime({ offset: false }).nullable(),
  })
  .strict();
export type AgentRecord = z.infer<typeof agentRecordSchema>;

/**
 * A revocation: when, why, and the chain head then (`afterSeq`). From then on only results that
 * stored evidence already commits to (its `prev`) are taken, whatever their seq (ingest.ts).
 */
export const revocationSchema = z
  .object({
    revokedAt: z.iso.datetime({ offset: false }),
    afterSeq: z.number().int().min(0),
    reason: z.string().max(500),
    by: z.string().max(200),
  })
  .strict();
export type Revocation = z.infer<typeof revocationSchema>;

/**
 * A key rotation, written once as keys/<agent id>.key-<generation>.json next to the record. It
 * keeps the signed request as received, so that anyone can check offline that the previous key
 * introduced this one and that the new key's holder signed it too.
 */
export const keyEventSchema = z
  .object({
    generation: z.number().int().min(1),
    /** The new key's fingerprint (SHA-256 of its SPKI DER, as agent ids are). */
    keyId: agentIdSchema,
    publicKey: z.string(),
    /** Results with seq <= afterSeq verify under the previous key, later ones under this one. */
    afterSeq: z.number().int().min(0),
    rotatedAt: z.iso.datetime({ offset: false }),
    request: envelopeSchema,
  })
  .strict();
export type KeyEvent = z.infer<typeof keyEventSchema>;

/** One key in an agent's history: generation 0 is the enrolled key. */
export interface AgentKey {
  generation: number;
  keyId: string;
  publicKey: string;
  /** The key signs seq > afterSeq (up to the next key's afterSeq). */
  afterSeq: number;
  since: string;
  /** Parsed on first use: PEM parsing costs ~150 µs, minutes for a large fleet at start. */
  readonly key: KeyObject;
}

export interface RegisteredAgent {
  record: AgentRecord;
  revocation: Revocation | null;
  /** Oldest first; never empty. */
  keys: AgentKey[];
  /** The rotations as stored (keys[1..]). */
  events: KeyEvent[];
}

function agentKey(generation: number, keyId: string, publicKey: string, afterSeq: number, since: string): AgentKey {
  let key: KeyObject | undefined;
  return {
    generation,
    keyId,
    publicKey,
    afterSeq,
    since,
    get key() {
      return (key ??= createPublicKey(publicKey));
    },
  };
}

function entryFor(record: AgentRecord, revocation: Revocation | null, events: KeyEvent[] = []): RegisteredAgent {
  return {
    record: { ...record, revokedAt: revocation?.revokedAt ?? null },
    revocation,
    keys: [
      agentKey(0, record.agentId, record.publicKey, 0, record.enrolledAt),
      ...events.map((e) => agentKey(e.generation, e.keyId, e.publicKey, e.afterSeq, e.rotatedAt)),
    ],
    events,
  };
}

/** The key that must have signed the result with this sequence number. */
export function keyForSeq(agent: Pick<RegisteredAgent, 'keys'>, seq: number): AgentKey {
  let chosen = agent.keys[0]!;
  for (const k of agent.keys) if (k.afterSeq < seq) chosen = k;
  return chosen;
}

export function currentKey(agent: Pick<RegisteredAgent, 'keys'>): AgentKey {
  return agent.keys.at(-1)!;
}

/** How long, and for how many ids, an id the store did not hold is remembered as absent. */
const ABSENT_TTL_MS = 60_000;
const ABSENT_MAX = 10_000;

/** The key events of an agent, as its vendor's transparency log enters them. */
export function keyEventEntries(a: RegisteredAgent): LogEntry[] {
  const out: LogEntry[] = a.keys.map((k) => ({
    type: 'key_event',
    event: k.generation === 0 ? 'enrolled' : 'rotated',
    agentId: a.record.agentId,
    keyId: k.keyId,
    generation: k.generation,
    afterSeq: k.afterSeq,
    at: k.since,
  }));
  if (a.revocation !== null) out.push(revocationEntry(a.record.agentId, a.revocation, a.keys.length - 1));
  return out;
}

function revocationEntry(agentId: string, r: Revocation, generation: number): LogEntry {
  return { type: 'key_event', event: 'revoked', agentId, keyId: null, generation, afterSeq: r.afterSeq, at: r.revokedAt };
}

const KEYS_FILE_RE = /^keys\/([0-9a-f]{64})(?:(\.revoked)|\.key-([1-9]\d{0,6}))?\.json$/;

export class AgentRegistry {
  readonly #agents = new Map<string, RegisteredAgent>();
  /** Every key fingerprint ever registered (enrolled or rotated to) → its agent. */
  readonly #keyOwners = new Map<string, string>();
  /** Ids the store did not hold, until when (performance.now() ms). */
  readonly #absent = new Map<string, number>();
  readonly #reading = new Map<string, Promise<RegisteredAgent | undefined>>();
  readonly #store: EvidenceStore;

  constructor(store: EvidenceStore) {
    this.#store = store;
  }

  async load(): Promise<void> {
    const ids: string[] = [];
    const revoked = new Set<string>();
    const generations = new Map<string, number>();
    for await (const key of this.#store.list('keys/')) {
      const m = KEYS_FILE_RE.exec(key);
      if (m?.[1] === undefined) continue;
      if (m[2] !== undefined) revoked.add(m[1]);
      else if (m[3] !== undefined) generations.set(m[1], Math.max(generations.get(m[1]) ?? 0, Number(m[3])));
      else ids.push(m[1]);
    }
    // Many reads in flight: a restart with 100,000 agents must not take minutes.
    for (let i = 0; i < ids.length; i += 256) {
      await Promise.all(ids.slice(i, i + 256).map((id) => this.#read(id, revoked.has(id), generations.get(id) ?? 0)));
    }
  }

  /** `generations` known from a listing; undefined: look for them one by one. */
  async #read(agentId: string, mayBeRevoked = true, generations?: number): Promise<RegisteredAgent | undefined> {
    const raw = await this.#store.get(`keys/${agentId}.json`);
    if (raw === null) return undefined;
    const record = agentRecordSchema.parse(JSON.parse(raw.toString('utf8')));
    const rev = mayBeRevoked ? await this.#store.get(`keys/${agentId}.revoked.json`) : null;
    const revocation = rev === null ? null : revocationSchema.parse(JSON.parse(rev.toString('utf8')));
    const events = await this.#readEvents(agentId, generations);
    const entry = entryFor(record, revocation, events);
    this.#agents.set(agentId, entry);
    for (const k of entry.keys) this.#keyOwners.set(k.keyId, agentId);
    return entry;
  }

  /** Rotations 1..n, in order; each must follow the one before. */
  async #readEvents(agentId: string, generations: number | undefined): Promise<KeyEvent[]> {
    const events: KeyEvent[] = [];
    for (let g = 1; generations === undefined || g <= generations; g++) {
      const raw = await this.#store.get(`keys/${agentId}.key-${g}.json`);
      if (raw === null) {
        if (generations === undefined) break;
        throw new Error(`keys/${agentId}.key-${g}.json is missing while a later rotation exists`);
      }
      const event = keyEventSchema.parse(JSON.parse(raw.toString('utf8')));
      const before = events.at(-1)?.afterSeq ?? 0;
      if (event.generation !== g || event.afterSeq < before || event.keyId !== agentIdFor(event.publicKey)) {
        throw new Error(`keys/${agentId}.key-${g}.json does not follow the rotation before it`);
      }
      events.push(event);
    }
    return events;
  }

  /**
   * Looks in memory first, then in the store (another process may have enrolled it). An id the
   * store did not hold is remembered for a while, so that key ids nobody enrolled cost one store
   * read, not one per line. An agent's id is its key's fingerprint, unknown before it enrolls, so
   * only ids presented before their enrollment can be remembered wrongly, and not for long.
   */
  async get(agentId: string): Promise<RegisteredAgent | undefined> {
    if (!agentIdSchema.safeParse(agentId).success) return undefined;
    const known = this.#agents.get(agentId);
    if (known !== undefined) return known;
    const nowMs = performance.now();
    const until = this.#absent.get(agentId);
    if (until !== undefined && until > nowMs) return undefined;
    // Lines of one batch verify at once: they share one read of the same id.
    let reading = this.#reading.get(agentId);
    if (reading === undefined) {
      this.#reading.set(agentId, (reading = this.#read(agentId)));
      void reading.finally(() => this.#reading.delete(agentId)).catch(() => undefined);
    }
    const read = await reading;
    if (read === undefined) {
      this.#absent.delete(agentId);
      this.#absent.set(agentId, nowMs + ABSENT_TTL_MS);
      if (this.#absent.size > ABSENT_MAX) this.#absent.delete(this.#absent.keys().next().value!);
    } else this.#absent.delete(agentId);
    return read;
  }

  /** Registers a new agent; false when the key is already enrolled. */
  async register(record: AgentRecord): Promise<boolean> {
    const bytes = Buffer.from(`${JSON.stringify(record, null, 2)}\n`);
    if ((await this.#store.putIfAbsent(`keys/${record.agentId}.json`, bytes)) === 'exists') return false;
    this.#agents.set(record.agentId, entryFor(record, null));
    this.#keyOwners.set(record.agentId, record.agentId);
    this.#absent.delete(record.agentId);
    await this.onKeyEvent?.(record.vendor, { type: 'key_event', event: 'enrolled', agentId: record.agentId, keyId: record.agentId, generation: 0, afterSeq: 0, at: record.enrolledAt });
    return true;
  }

  /**
   * Called after each key event is stored, before it is answered (the transparency log enters it).
   * A failure fails the request; the stored event stands, and a later start does not re-enter it.
   */
  onKeyEvent: ((vendor: string, entry: LogEntry) => Promise<unknown>) | null = null;

  /** The agent a key fingerprint belongs to (any generation), if this process knows it. */
  keyOwner(keyId: string): string | undefined {
    return this.#keyOwners.get(keyId);
  }

  /**
   * Writes the next key event, create-only. 'exists' when that generation was taken first (a
   * concurrent rotation, or another process): the entry is reloaded from the store then.
   */
  async addKeyEvent(agentId: string, event: KeyEvent): Promise<{ put: 'created' | 'exists'; agent: RegisteredAgent | undefined }> {
    const bytes = Buffer.from(`${JSON.stringify(event, null, 2)}\n`);
    const put = await this.#store.putIfAbsent(`keys/${agentId}.key-${event.generation}.json`, bytes);
    this.#agents.delete(agentId);
    const agent = await this.#read(agentId);
    if (put === 'created' && agent !== undefined) {
      await this.onKeyEvent?.(agent.record.vendor, { type: 'key_event', event: 'rotated', agentId, keyId: event.keyId, generation: event.generation, afterSeq: event.afterSeq, at: event.rotatedAt });
    }
    return { put, agent };
  }

  /** Revokes an agent from a point in its chain. A second revocation keeps the first. */
  async revoke(agentId: string, revocation: Revocation): Promise<RegisteredAgent | undefined> {
    const agent = await this.get(agentId);
    if (agent === undefined) return undefined;
    const put = await this.#store.putIfAbsent(`keys/${agentId}.revoked.json`, Buffer.from(`${JSON.stringify(revocation, null, 2)}\n`));
    this.#agents.delete(agentId);
    const read = await this.#read(agentId);
    if (put === 'created') await this.onKeyEvent?.(agent.record.vendor, revocationEntry(agentId, revocation, agent.keys.length - 1));
    return read;
  }

  all(): RegisteredAgent[] {
    return [...this.#agents.values()];
  }

  /** The agent as loaded, without reading the store; undefined when not loaded (or revoked). */
  loaded(agentId: string): RegisteredAgent | undefined {
    return this.#agents.get(agentId);
  }
}
