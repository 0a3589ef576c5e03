// Enrollment tokens: shown once, stored only as a SHA-256 hash, scoped to one vendor, expiring.
// A use is claimed by a create-only marker, so two enrollments racing for one token cannot both win,
// whether they hit one collector, several, or the CLI and a running `serve`.
import { randomBytes } from 'node:crypto';
import * as z from 'zod';
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
  if ((await store.get(`tokens/${hash}.revoked`)) !== null) throw invalid;
  for (let use = 1; use <= record.uses; use++) {
    const marker = Buffer.from(`${JSON.stringify({ usedAt: now.toISOString() })}\n`);
    if ((await store.putIfAbsent(`tokens/${hash}.use-${use}`, marker)) === 'created') return record;
  }
  throw invalid;
}

export interface TokenInfo {
  /** The SHA-256 of the token: safe to show, and the handle for revoking it. */
  id: string;
  vendor: string;
  createdAt: string;
  expiresAt: string;
  uses: number;
  used: number;
  revoked: boolean;
  state: 'usable' | 'used' | 'expired' | 'revoked';
}

export async function listTokens(store: EvidenceStore, now: Date = new Date()): Promise<TokenInfo[]> {
  const byId = new Map<string, { record?: TokenRecord; used: number; revoked: boolean }>();
  const entry = (id: string) => {
    let e = byId.get(id);
    if (e === undefined) byId.set(id, (e = { used: 0, revoked: false }));
    return e;
  };
  for await (const key of store.list('tokens/')) {
    const m = /^tokens\/([0-9a-f]{64})\.(json|use-\d+|revoked)$/.exec(key);
    if (m?.[1] === undefined) continue;
    const e = entry(m[1]);
    if (m[2] === 'json') {
      const raw = await store.get(key);
      if (raw !== null) e.record = tokenRecordSchema.parse(JSON.parse(raw.toString('utf8')));
    } else if (m[2] === 'revoked') e.revoked = true;
    else e.used++;
  }
  const out: TokenInfo[] = [];
  for (const [id, e] of byId) {
    if (e.record === undefined) continue;
    const expired = Date.parse(e.record.expiresAt) <= now.getTime();
    const state = e.revoked ? 'revoked' : e.used >= e.record.uses ? 'used' : expired ? 'expired' : 'usable';
    out.push({ id, vendor: e.record.vendor, createdAt: e.record.createdAt, expiresAt: e.record.expiresAt, uses: e.record.uses, used: e.used, revoked: e.revoked, state });
  }
  return out.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
}

/** Finds a token by its id or a unique prefix of at least 8 characters. */
export async function findToken(store: EvidenceStore, idOrPrefix: string): Promise<TokenInfo> {
  if (!/^[0-9a-f]{8,64}$/.test(idOrPrefix)) throw new CollectorError('COL_ERR_USAGE', 'a token id is 8 to 64 hex characters (a unique prefix of the id token list shows)');
  const matches = (await listTokens(store)).filter((t) => t.id.startsWith(idOrPrefix));
  if (matches.length !== 1) throw new CollectorError('COL_ERR_NOT_FOUND', matches.length === 0 ? 'no such token' : 'that prefix names several tokens');
  return matches[0]!;
}

export async function revokeToken(store: EvidenceStore, idOrPrefix: string, now: Date = new Date()): Promise<TokenInfo> {
  const token = await findToken(store, idOrPrefix);
  await store.putIfAbsent(`tokens/${token.id}.revoked`, Buffer.from(`${JSON.stringify({ revokedAt: now.toISOString() })}\n`));
  return findToken(store, token.id);
}
