// Log entries: what each leaf of a vendor's transparency log says. An entry is one canonical JSON
// text (RFC 8785: members sorted, no white space; our values are strings, integers, booleans and
// null, for which that is JSON.stringify with sorted keys). Its leaf hash is RFC 6962's over
// exactly those bytes, without a newline.
import * as z from 'zod';
import { agentIdSchema } from '../contract.js';
import { CollectorError } from '../errors.js';

const sha256 = z.string().regex(/^[0-9a-f]{64}$/);
const when = z.iso.datetime({ offset: false });
const seq = z.number().int().min(1);

export const logEntrySchema = z.discriminatedUnion('type', [
  z
    .object({
      type: z.literal('envelope'),
      agentId: agentIdSchema,
      seq,
      /** SHA-256 of the envelope's exact bytes, as stored. */
      sha256,
      /** Its key in the evidence store. */
      key: z.string().min(1).max(1024),
      /** Finding or spool-drop record; null when entered after the fact (migrated: read the envelope). */
      predicate: z.enum(['finding', 'spool_drop']).nullable(),
      /** The collection time the envelope states; null when migrated, as above. */
      collectedAt: when.nullable(),
      /** When the collector received it; null for evidence entered after the fact (migrated). */
      receivedAt: when.nullable(),
      /** Stored before the log (or before a crash let its entry be written), entered at a start. */
      migrated: z.boolean(),
    })
    .strict(),
  z
    .object({
      type: z.literal('chain_gap'),
      agentId: agentIdSchema,
      /** The first seq accepted after the gap; the seqs between the head and it are missing. */
      seq,
      headSeq: z.number().int().min(0),
      receivedAt: when,
    })
    .strict(),
  z
    .object({
      type: z.literal('key_event'),
      event: z.enum(['enrolled', 'rotated', 'revoked']),
      agentId: agentIdSchema,
      /** The key's fingerprint (enrolled, rotated); null for a revocation. */
      keyId: sha256.nullable(),
      generation: z.number().int().min(0),
      /** Rotations: the new key signs seq > afterSeq. Revocations: the chain head then. */
      afterSeq: z.number().int().min(0),
      at: when,
    })
    .strict(),
  z
    .object({
      type: z.literal('policy'),
      version: z.number().int().min(1),
      /** SHA-256 of policy/<version>.json as stored. */
      sha256,
      createdAt: when,
    })
    .strict(),
  z
    .object({
      type: z.literal('export'),
      /** The audit bundle's period, [from, to). */
      from: when,
      to: when,
      /** Its log range: entries [startSize, endSize). */
      startSize: z.number().int().min(0),
      endSize: z.number().int().min(0),
      /** SHA-256 of the bundle file as sent. */
      sha256,
      /** Who asked: the admin or auditor token's name, or "local" for an export from the store. */
      by: z.string().min(1).max(200),
      at: when,
    })
    .strict(),
]);
export type LogEntry = z.infer<typeof logEntrySchema>;

/** Sorted member names per shape of object: entries come in a handful of shapes. */
const sortedKeys = new Map<string, string[]>();

/** RFC 8785 for our values: members sorted (by UTF-16 code units, as Array.sort does), no white space. */
function canonical(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  const o = value as Record<string, unknown>;
  const keys = Object.keys(o);
  const shape = keys.join('\u0000');
  let order = sortedKeys.get(shape);
  if (order === undefined) sortedKeys.set(shape, (order = [...keys].sort()));
  // Rebuilt in sorted order, then one native JSON.stringify: the same text, several times faster.
  const sorted: Record<string, unknown> = {};
  let nested = false;
  for (const k of order) {
    const v = o[k];
    if (v === undefined) continue;
    if (v !== null && typeof v === 'object') nested = true;
    sorted[k] = v;
  }
  if (!nested) return JSON.stringify(sorted);
  return `{${Object.keys(sorted)
    .map((k) => `${JSON.stringify(k)}:${canonical(sorted[k])}`)
    .join(',')}}`;
}

/**
 * The entry's bytes as hashed: canonical JSON, UTF-8, no newline. Entries are built by the
 * collector from values it verified, so they are not parsed again here (decodeEntry is strict).
 */
export function encodeEntry(entry: LogEntry): Buffer {
  return Buffer.from(canonical(entry), 'utf8');
}

/** Parses an entry and holds it to its canonical form: other bytes for the same entry are refused. */
export function decodeEntry(bytes: Uint8Array): LogEntry {
  const text = Buffer.from(bytes).toString('utf8');
  let parsed: LogEntry;
  try {
    parsed = logEntrySchema.parse(JSON.parse(text));
  } catch {
    throw new CollectorError('COL_ERR_MALFORMED', 'a log entry is not valid');
  }
  if (canonical(parsed) !== text) throw new CollectorError('COL_ERR_MALFORMED', 'a log entry is not in canonical form');
  return parsed;
}
