// The agent registry: keys/<agent id>.json, written once at enrollment.
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

export interface RegisteredAgent {
  record: AgentRecord;
  key: KeyObject;
}

export class AgentRegistry {
  readonly #agents = new Map<string, RegisteredAgent>();
  readonly #store: EvidenceStore;

  constructor(store: EvidenceStore) {
    this.#store = store;
  }

  async load(): Promise<void> {
    for await (const key of this.#store.list('keys/')) {
      const m = /^keys\/([0-9a-f]{64})\.json$/.exec(key);
      if (m?.[1] !== undefined) await this.#read(m[1]);
    }
  }

  async #read(agentId: string): Promise<RegisteredAgent | undefined> {
    const raw = await this.#store.get(`keys/${agentId}.json`);
    if (raw === null) return undefined;
    const record = agentRecordSchema.parse(JSON.parse(raw.toString('utf8')));
    const entry = { record, key: createPublicKey(record.publicKey) };
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
    this.#agents.set(record.agentId, { record, key: createPublicKey(record.publicKey) });
    return true;
  }

  all(): RegisteredAgent[] {
    return [...this.#agents.values()];
  }
}
