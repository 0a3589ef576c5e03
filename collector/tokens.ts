// Enrollment tokens: shown once, stored only as a SHA-256 hash, scoped to one vendor, expiring.
// A use is claimed by a create-only marker, so two enrollments racing for one token cannot both win,
// whether they hit one collector, several, or the CLI and a running `serve`.
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { sha256Hex, vendorSchema } from './contract.js';
import { CollectorError } from './errors.js';
import type { EvidenceStore } from './store.js';

export const TOKEN_PREFIX = 'vcm_et_';
export const DEFAULT_TOKEN_TTL_SECONDS = 24 * 3600;

const tokenRecordSchema = z
  .object({
    vendor: vendorSchema,
    createdAt: z.iso.datetime({ offset: false }),
    expiresAt: z.iso.datetime({ offset: false }),
    uses: z.number().int().min(1),
  })
  .strict();
export type TokenRecord = z.infer<typeof tokenRecordSchema>;

const TOKEN_RE = /^vcm_et_[A-Za-z0-9_-]{43}$/;

export async function createToken(
  store: EvidenceStore,
  opts: { vendor: string; ttlSeconds?: number; uses?: number; now?: Date },
): Promise<{ token: string; record: TokenRecord }> {
  const now = opts.now ?? new Date();
  const record = tokenRecordSchema.parse({
    vendor: opts.vendor,
    createdAt: now.toISOString(),
    expiresAt: new Date(now.getTime() + (opts.ttlSeconds ?? DEFAULT_TOKEN_TTL_SECONDS) * 1000).toISOString(),
    uses: opts.uses ?? 1,
  });
  const token = `${TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;
  await store.putIfAbsent(`tokens/${sha256Hex(token)}.json`, Buffer.from(`${JSON.stringify(record)}\n`));
  return { token, record };
}

/** Claims one use of `token` and returns its vendor. Every failure looks the same to the caller. */
export async function consumeToken(store: EvidenceStore, token: string, now: Date = new Date()): Promise<TokenRecord> {
  const invalid = new CollectorError('COL_ERR_TOKEN_INVALID');
  if (!TOKEN_RE.test(token)) throw invalid;
  const hash = sha256Hex(token);
  const raw = await store.get(`tokens/${hash}.json`);
  if (raw === null) throw invalid;
  const record = tokenRecordSchema.parse(JSON.parse(raw.toString('utf8')));
  if (Date.parse(record.expiresAt) <= now.getTime()) throw invalid;
  for (let use = 1; use <= record.uses; use++) {
    const marker = Buffer.from(`${JSON.stringify({ usedAt: now.toISOString() })}\n`);
    if ((await store.putIfAbsent(`tokens/${hash}.use-${use}`, marker)) === 'created') return record;
  }
  throw invalid;
}
