// The agent registry: keys/<agent id>.json, written once at enrollment, and
// keys/<agent id>.revoked.json, written once at revocation. Neither is ever rewritten.
import { createPublicKey, type KeyObject } from 'node:crypto';
import { z } from 'zod';
import { agentIdSchema, hostSchema, vendorSchema } from './contract.js';
import type { EvidenceStore } from './store.js';

export const agentRecordSchema = z
  .object({
    agentId: agentIdSchema,
    vendor: vendorSchema,
    host: hostSchema,
    agentVersion: z.string(),
    publicKey: z.string(),
    enrolledAt: z.iso.datetime({ offset: false }),
    revokedAt: z.iso.datetime({ offset: false }).nullable(),
  })
  .strict();
export type AgentRecord = z.infer<typeof agentRecordSchema>;

/** Revocation takes effect from a point in the chain: results signed after `afterSeq` are refused. */
export const revocationSchema = z
  .object({
    revokedAt: z.iso.datetime({ offset: false }),
    afterSeq: z.number().int().min(0),
    reason: z.string().max(500),
    by: z.string().max(200),
  })
  .strict();
export type Revocation = z.infer<typeof revocationSchema>;

export interface RegisteredAgent {
  record: AgentRecord;
  /** Parsed on first use: PEM parsing costs ~150 µs, minutes for a large fleet at start. */
  readonly key: KeyObject;
  revocation: Revocation | null;
}

function entryFor(record: AgentRecord, revocation: Revocation | null): RegisteredAgent {
  let key: KeyObject | undefined;
  return {
    record: { ...record, revokedAt: revocation?.revokedAt ?? null },
    revocation,
    get key() {
      return (key ??= createPublicKey(record.publicKey));
    },
  };
}

export class AgentRegistry {
  readonly #agents = new Map<string, RegisteredAgent>();
  readonly #store: EvidenceStore;

  constructor(store: EvidenceStore) {
    this.#store = store;
  }

  async load(): Promise<void> {
    const ids: string[] = [];
    const revoked = new Set<string>();
    for await (const key of this.#store.list('keys/')) {
      const m = /^keys\/([0-9a-f]{64})(\.revoked)?\.json$/.exec(key);
      if (m?.[1] === undefined) continue;
      if (m[2] === undefined) ids.push(m[1]);
      else revoked.add(m[1]);
    }
    // Many reads in flight: a restart with 100,000 agents must not take minutes.
    for (let i = 0; i < ids.length; i += 256) {
      await Promise.all(ids.slice(i, i + 256).map((id) => this.#read(id, revoked.has(id))));
    }
  }

  async #read(agentId: string, mayBeRevoked = true): Promise<RegisteredAgent | undefined> {
    const raw = await this.#store.get(`keys/${agentId}.json`);
    if (raw === null) return undefined;
    const record = agentRecordSchema.parse(JSON.parse(raw.toString('utf8')));
    const rev = mayBeRevoked ? await this.#store.get(`keys/${agentId}.revoked.json`) : null;
    const revocation = rev === null ? null : revocationSchema.parse(JSON.parse(rev.toString('utf8')));
    const entry = entryFor(record, revocation);
    this.#agents.set(agentId, entry);
    return entry;
  }

  /** Looks in memory first, then in the store (another process may have enrolled it). */
  async get(agentId: string): Promise<RegisteredAgent | undefined> {
    if (!agentIdSchema.safeParse(agentId).success) return undefined;
    return this.#agents.get(agentId) ?? (await this.#read(agentId));
  }

  /** Registers a new agent; false when the key is already enrolled. */
  async register(record: AgentRecord): Promise<boolean> {
    const bytes = Buffer.from(`${JSON.stringify(record, null, 2)}\n`);
    if ((await this.#store.putIfAbsent(`keys/${record.agentId}.json`, bytes)) === 'exists') return false;
    this.#agents.set(record.agentId, entryFor(record, null));
    return true;
  }

  /** Revokes an agent from a point in its chain. A second revocation keeps the first. */
  async revoke(agentId: string, revocation: Revocation): Promise<RegisteredAgent | undefined> {
    const agent = await this.get(agentId);
    if (agent === undefined) return undefined;
    await this.#store.putIfAbsent(`keys/${agentId}.revoked.json`, Buffer.from(`${JSON.stringify(revocation, null, 2)}\n`));
    this.#agents.delete(agentId);
    return this.#read(agentId);
  }

  all(): RegisteredAgent[] {
    return [...this.#agents.values()];
  }

  /** The agent as loaded, without reading the store; undefined when not loaded (or revoked). */
  loaded(agentId: string): RegisteredAgent | undefined {
    return this.#agents.get(agentId);
  }
}
