// Verification and storage of one signed result. Order matters: nothing is parsed as trusted
// before the signature over the exact received bytes has verified against the registered key.
import type { Logger } from 'pino';
import {
  DEFAULT_CLOCK_SKEW_SECONDS,
  PAYLOAD_TYPE_STATEMENT,
  PREDICATE_TYPE_FINDING,
  STATEMENT_TYPE,
  envelopeSchema,
  evidenceKey,
  sha256Hex,
  statementSchema,
  strictBase64,
  verifyEnvelope,
  type Envelope,
  type IngestOutcome,
  type Policy,
} from './contract.js';
import { CollectorError } from './errors.js';
import type { Metrics } from './metrics.js';
import type { AgentRegistry } from './registry.js';
import { judge, type CollectorState } from './state.js';
import type { EvidenceStore } from './store.js';

export interface IngestDeps {
  store: EvidenceStore;
  registry: AgentRegistry;
  state: CollectorState;
  metrics: Metrics;
  policy: () => Policy;
  now: () => Date;
  log: Logger;
  clockSkewSeconds?: number;
}

function parseJson(bytes: Buffer): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new CollectorError('COL_ERR_MALFORMED', 'the body is not JSON');
  }
}

export class Ingestor {
  readonly #deps: IngestDeps;
  /** One ingest at a time per agent, so that chain checks and writes never interleave. */
  readonly #locks = new Map<string, Promise<unknown>>();

  constructor(deps: IngestDeps) {
    this.#deps = deps;
  }

  async ingest(bytes: Buffer): Promise<IngestOutcome> {
    const { metrics } = this.#deps;
    try {
      const outcome = await this.#ingest(bytes);
      metrics.envelopes.inc({ outcome: outcome.outcome });
      return outcome;
    } catch (err) {
      if (err instanceof CollectorError && err.status < 500) {
        metrics.envelopes.inc({ outcome: 'rejected' });
        metrics.rejected.inc({ reason: err.reason });
      }
      throw err;
    }
  }

  async #ingest(bytes: Buffer): Promise<IngestOutcome> {
    const parsed = envelopeSchema.safeParse(parseJson(bytes));
    if (!parsed.success) throw new CollectorError('COL_ERR_MALFORMED', 'the body is not a DSSE envelope');
    const envelope: Envelope = parsed.data;
    const keyid = envelope.signatures[0]?.keyid ?? '';
    // The keyid only says which registered key to try; the signature decides.
    const agent = await this.#deps.registry.get(keyid);
    if (agent === undefined) throw new CollectorError('COL_ERR_UNKNOWN_AGENT');
    if (!verifyEnvelope(envelope, agent.key)) throw new CollectorError('COL_ERR_BAD_SIGNATURE');
    if (envelope.signatures.some((s) => s.keyid !== keyid)) {
      throw new CollectorError('COL_ERR_BAD_SIGNATURE', 'every signature must name the same key');
    }
    if (agent.record.revokedAt !== null) throw new CollectorError('COL_ERR_REVOKED');
    if (envelope.payloadType !== PAYLOAD_TYPE_STATEMENT) throw new CollectorError('COL_ERR_UNKNOWN_TYPE', 'unknown payloadType');

    const statementJson = parseJson(strictBase64(envelope.payload) ?? Buffer.alloc(0)) as Record<string, unknown> | null;
    if (statementJson?._type !== STATEMENT_TYPE || statementJson.predicateType !== PREDICATE_TYPE_FINDING) {
      throw new CollectorError('COL_ERR_UNKNOWN_TYPE', 'unknown statement or predicate type');
    }
    const statement = statementSchema.safeParse(statementJson);
    if (!statement.success) {
      throw new CollectorError('COL_ERR_SCHEMA', statement.error.issues.slice(0, 3).map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
    }
    const predicate = statement.data.predicate;
    if (predicate.agentId !== agent.record.agentId || predicate.finding.collectedAt !== predicate.collectedAt) {
      throw new CollectorError('COL_ERR_SCHEMA', 'the statement names another agent, or its times disagree');
    }
    const now = this.#deps.now();
    const skew = (this.#deps.clockSkewSeconds ?? DEFAULT_CLOCK_SKEW_SECONDS) * 1000;
    if (Date.parse(predicate.collectedAt) > now.getTime() + skew) throw new CollectorError('COL_ERR_FUTURE');

    return this.#serialized(agent.record.agentId, async () => {
      const hash = sha256Hex(bytes);
      const a = this.#deps.state.agent(agent.record.agentId);
      const existing = a.links.get(predicate.seq);
      if (existing !== undefined) {
        if (existing.hash === hash) return { seq: predicate.seq, outcome: 'duplicate', key: existing.key };
        this.#deps.log.warn({ agentId: agent.record.agentId, seq: predicate.seq }, 'sequence number reused with other content');
        throw new CollectorError('COL_ERR_REPLAY');
      }
      const before = a.links.get(predicate.seq - 1);
      if (before !== undefined && predicate.prev !== before.hash) throw new CollectorError('COL_ERR_CHAIN_BROKEN');
      if (predicate.seq === 1 && predicate.prev !== null) throw new CollectorError('COL_ERR_CHAIN_BROKEN', 'the first result has no predecessor');
      const gap = before === undefined && predicate.seq > 1 && predicate.seq > a.headSeq;

      const key = evidenceKey({
        vendor: agent.record.vendor,
        collectedAt: predicate.collectedAt,
        agentId: agent.record.agentId,
        seq: predicate.seq,
        sha256: hash,
      });
      const stopTimer = this.#deps.metrics.writeDuration.startTimer();
      let put;
      try {
        put = await this.#deps.store.putIfAbsent(key, bytes);
      } catch (err) {
        this.#deps.metrics.storeErrors.inc();
        throw err;
      } finally {
        stopTimer();
      }
      this.#deps.state.recordStored(agent.record.agentId, predicate.seq, { hash, key });
      if (put === 'exists') return { seq: predicate.seq, outcome: 'duplicate', key };
      if (gap) {
        this.#deps.metrics.chainGaps.inc({ vendor: agent.record.vendor });
        this.#deps.log.warn({ agentId: agent.record.agentId, seq: predicate.seq, headSeq: a.headSeq }, 'gap in evidence chain');
      }
      const policy = this.#deps.policy();
      this.#deps.state.recordResult(agent.record.agentId, predicate, judge(predicate, policy), policy.version, now.getTime());
      return { seq: predicate.seq, outcome: 'accepted', key };
    });
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
