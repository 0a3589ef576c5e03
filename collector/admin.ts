// The admin and auditor API: bearer tokens with roles. `admin` manages tokens, agents and the
// policy; `auditor` reads, and only the vendors its token names. The CLI uses the same functions
// directly on a local store, or this API remotely.
import { randomBytes } from 'node:crypto';
import * as z from 'zod';
import type { CheckId } from '../checks/types.js';
import { sha256Hex, vendorSchema, type PolicyDocument } from './contract.js';
import { CollectorError } from './errors.js';
import { parseRequestJson } from './strict-json.js';
import { currentKey, type AgentRegistry, type RegisteredAgent } from './registry.js';
import type { CollectorState } from './state.js';
import type { EvidenceStore } from './store.js';
import { createToken, listTokens, revokeToken } from './tokens.js';

export const ADMIN_TOKEN_PREFIX = 'vcm_at_';
const ADMIN_TOKEN_RE = /^vcm_at_[A-Za-z0-9_-]{43}$/;

const adminTokenSchema = z
  .object({
    name: z.string().min(1).max(200),
    role: z.enum(['admin', 'auditor']),
    /** Vendors an auditor may read; null means every vendor (admins always see all). */
    vendors: z.array(vendorSchema).nullable(),
    createdAt: z.iso.datetime({ offset: false }),
    expiresAt: z.iso.datetime({ offset: false }).nullable(),
  })
  .strict();
export type Principal = z.infer<typeof adminTokenSchema>;

export async function createAdminToken(
  store: EvidenceStore,
  /** ttlSeconds: default DEFAULT_ADMIN_TOKEN_TTL_SECONDS; null for a token that never expires. */
  opts: { name: string; role: 'admin' | 'auditor'; vendors?: string[]; ttlSeconds?: number | null; now?: Date },
): Promise<string> {
  const now = opts.now ?? new Date();
  const record = adminTokenSchema.parse({
    name: opts.name,
    role: opts.role,
    vendors: opts.role === 'auditor' && opts.vendors !== undefined && opts.vendors.length > 0 ? opts.vendors : null,
    createdAt: now.toISOString(),
    expiresAt: opts.ttlSeconds === null ? null : new Date(now.getTime() + (opts.ttlSeconds ?? DEFAULT_ADMIN_TOKEN_TTL_SECONDS) * 1000).toISOString(),
  });
  const token = `${ADMIN_TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;
  await store.putIfAbsent(`admin/tokens/${sha256Hex(token)}.json`, Buffer.from(`${JSON.stringify(record, null, 2)}\n`));
  return token;
}

/** Admin and auditor tokens expire after this unless created with another ttl (or none, explicitly). */
export const DEFAULT_ADMIN_TOKEN_TTL_SECONDS = 90 * 86_400;

export interface AdminTokenInfo {
  /** The SHA-256 of the token: the token itself is never stored. */
  id: string;
  name: string;
  role: 'admin' | 'auditor';
  vendors: string[] | null;
  createdAt: string;
  expiresAt: string | null;
  /** When the admin API last accepted it, to the minute; null if never (or before this was recorded). */
  lastUsedAt: string | null;
  state: 'usable' | 'expired' | 'revoked';
}

export async function listAdminTokens(store: EvidenceStore, now: Date = new Date()): Promise<AdminTokenInfo[]> {
  const records = new Map<string, Principal>();
  const revoked = new Set<string>();
  for await (const key of store.list('admin/tokens/')) {
    const m = /^admin\/tokens\/([0-9a-f]{64})\.(json|revoked)$/.exec(key);
    if (m?.[1] === undefined) continue;
    if (m[2] === 'revoked') revoked.add(m[1]);
    else {
      const raw = await store.get(key);
      if (raw !== null) records.set(m[1], adminTokenSchema.parse(JSON.parse(raw.toString('utf8'))));
    }
  }
  // Keys sort by time within a token's folder: the last one is the latest use.
  const lastUsed = new Map<string, string>();
  for await (const key of store.list(`${TOKEN_USE_PREFIX}`)) {
    const m = /^admin\/token-use\/([0-9a-f]{64})\/(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)$/.exec(key);
    if (m !== null) lastUsed.set(m[1]!, `${m[2]}-${m[3]}-${m[4]}T${m[5]}:${m[6]}:00.000Z`);
  }
  return [...records].map(([id, r]) => ({
    id,
    ...r,
    lastUsedAt: lastUsed.get(id) ?? null,
    state: revoked.has(id) ? 'revoked' : r.expiresAt !== null && Date.parse(r.expiresAt) <= now.getTime() ? 'expired' : 'usable',
  }));
}

/**
 * Where a token's uses are marked: one create-only key per token and minute of use
 * (admin/token-use/<id>/<YYYYMMDDTHHMM>), since the store never overwrites.
 */
const TOKEN_USE_PREFIX = 'admin/token-use/';
/** The minute last marked per store and token, so that a busy token costs one write a minute, not one a request. */
const markedMinute = new WeakMap<EvidenceStore, Map<string, string>>();

function noteUse(store: EvidenceStore, hash: string, now: Date): void {
  const minute = now.toISOString().slice(0, 16).replace(/[-:]/g, '');
  let marked = markedMinute.get(store);
  if (marked === undefined) markedMinute.set(store, (marked = new Map()));
  if (marked.get(hash) === minute) return;
  marked.set(hash, minute);
  // Never part of the request: a failure to record a use does not fail it.
  const write: Promise<void> = Promise.resolve()
    .then(() => store.putIfAbsent(`${TOKEN_USE_PREFIX}${hash}/${minute}`, Buffer.from(`${JSON.stringify({ usedAt: now.toISOString() })}\n`)))
    .then(
      () => undefined,
      () => {
        if (marked.get(hash) === minute) marked.delete(hash);
      },
    )
    .finally(() => writing.get(store)?.delete(write));
  let pending = writing.get(store);
  if (pending === undefined) writing.set(store, (pending = new Set()));
  pending.add(write);
}

const writing = new WeakMap<EvidenceStore, Set<Promise<void>>>();

/** Waits for the use marks still being written, so that a closing collector leaves none behind. */
export async function settleTokenUses(store: EvidenceStore): Promise<void> {
  await Promise.all([...(writing.get(store) ?? [])]);
}

/** Revokes an admin or auditor token by its id (or a unique prefix of 8+ hex characters); it stops working at once. */
export async function revokeAdminToken(store: EvidenceStore, idOrPrefix: string, now: Date = new Date()): Promise<AdminTokenInfo> {
  if (!/^[0-9a-f]{8,64}$/.test(idOrPrefix)) throw new CollectorError('COL_ERR_USAGE', 'an admin token id is 8 to 64 hex characters (a unique prefix of the id admin-token list shows)');
  const matches = (await listAdminTokens(store, now)).filter((t) => t.id.startsWith(idOrPrefix));
  if (matches.length !== 1) throw new CollectorError('COL_ERR_NOT_FOUND', matches.length === 0 ? 'no such admin token' : 'that prefix names several tokens');
  await store.putIfAbsent(`admin/tokens/${matches[0]!.id}.revoked`, Buffer.from(`${JSON.stringify({ revokedAt: now.toISOString() })}\n`));
  return { ...matches[0]!, state: 'revoked' };
}

export async function authenticate(store: EvidenceStore, authorization: string | undefined, now: Date): Promise<Principal> {
  if (authorization === undefined || authorization === '') throw new CollectorError('COL_ERR_UNAUTHORIZED');
  // A token was given: say it was not accepted, not that one is required.
  const refused = new CollectorError('COL_ERR_UNAUTHORIZED', 'the bearer token given was not accepted');
  const m = /^Bearer (\S+)$/.exec(authorization);
  const token = m?.[1];
  if (token === undefined || !ADMIN_TOKEN_RE.test(token)) throw refused;
  const hash = sha256Hex(token);
  const raw = await store.get(`admin/tokens/${hash}.json`);
  if (raw === null) throw refused;
  const principal = adminTokenSchema.parse(JSON.parse(raw.toString('utf8')));
  if (principal.expiresAt !== null && Date.parse(principal.expiresAt) <= now.getTime()) throw new CollectorError('COL_ERR_UNAUTHORIZED', 'the token has expired');
  if ((await store.get(`admin/tokens/${hash}.revoked`)) !== null) throw new CollectorError('COL_ERR_UNAUTHORIZED', 'the token is revoked');
  noteUse(store, hash, now);
  return principal;
}

export function canRead(p: Principal, vendor: string): boolean {
  return p.role === 'admin' || p.vendors === null || p.vendors.includes(vendor);
}

function requireAdmin(p: Principal): void {
  if (p.role !== 'admin') throw new CollectorError('COL_ERR_FORBIDDEN', 'this needs an admin token');
}

export interface AgentSummary {
  agentId: string;
  vendor: string;
  host: string;
  os: string;
  agentVersion: string;
  enrolledAt: string;
  revoked: { revokedAt: string; afterSeq: number; reason: string } | null;
  headSeq: number;
  lastSeenAt: string | null;
  /** 0 until the agent first rotates its key. */
  keyGeneration: number;
}

/** One key of the agent's history: it verifies results with seq > afterSeq, up to the next key's. */
export interface KeyHistoryEntry {
  generation: number;
  keyId: string;
  afterSeq: number;
  since: string;
  event: 'enrolled' | 'rotated';
}

export interface AgentDetail extends AgentSummary {
  /** The key in use now (PEM). */
  publicKey: string;
  keys: KeyHistoryEntry[];
  latest: { check: CheckId; seq: number; verdict: string; agentStatus: string; collectedAt: string; policyVersion: number; reasons: { code: string; subject?: string }[] }[];
}

export function summarize(a: RegisteredAgent, state: CollectorState): AgentSummary {
  const s = state.agents.get(a.record.agentId);
  return {
    agentId: a.record.agentId,
    vendor: a.record.vendor,
    host: a.record.host.hostname,
    os: a.record.host.os,
    agentVersion: a.record.agentVersion,
    enrolledAt: a.record.enrolledAt,
    revoked: a.revocation === null ? null : { revokedAt: a.revocation.revokedAt, afterSeq: a.revocation.afterSeq, reason: a.revocation.reason },
    headSeq: s?.headSeq ?? 0,
    lastSeenAt: s?.lastSeenMs === null || s?.lastSeenMs === undefined ? null : new Date(s.lastSeenMs).toISOString(),
    keyGeneration: currentKey(a).generation,
  };
}

export function detail(a: RegisteredAgent, state: CollectorState): AgentDetail {
  const s = state.agents.get(a.record.agentId);
  return {
    ...summarize(a, state),
    publicKey: currentKey(a).publicKey,
    keys: a.keys.map((k) => ({ generation: k.generation, keyId: k.keyId, afterSeq: k.afterSeq, since: k.since, event: k.generation === 0 ? 'enrolled' : 'rotated' })),
    latest: [...(s?.latest.values() ?? [])]
      .sort((x, y) => x.check.localeCompare(y.check))
      .map((r) => ({
        check: r.check,
        seq: r.seq,
        verdict: r.verdict,
        agentStatus: r.agentStatus,
        collectedAt: new Date(r.collectedAtMs).toISOString(),
        policyVersion: r.policyVersion,
        reasons: r.reasons.map((x) => (x.subject === undefined ? { code: x.code } : { code: x.code, subject: x.subject })),
      })),
  };
}

/**
 * A policy as a token may read it: an auditor sees the defaults and its own vendors' overrides
 * and exceptions, nothing of another vendor, not even its name.
 */
export function policyFor(who: Principal, doc: PolicyDocument): PolicyDocument {
  if (who.role === 'admin' || who.vendors === null) return doc;
  return {
    ...doc,
    vendors: Object.fromEntries(Object.entries(doc.vendors).filter(([vendor]) => canRead(who, vendor))),
    exceptions: doc.exceptions.filter((e) => canRead(who, e.vendor)),
  };
}

export interface AdminDeps {
  store: EvidenceStore;
  registry: AgentRegistry;
  state: CollectorState;
  policy: () => PolicyDocument;
  setPolicy: (raw: unknown) => Promise<PolicyDocument>;
  readPolicy: (version: number) => Promise<PolicyDocument | null>;
  now: () => Date;
}

export interface AdminAnswer {
  status: number;
  body: unknown;
}

function jsonBody(body: Buffer): Record<string, unknown> {
  // The strict parser of results: duplicate keys, lone surrogates and the like are refused, saying which.
  const v = body.length === 0 ? {} : parseRequestJson(body);
  if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v as Record<string, unknown>;
  throw new CollectorError('COL_ERR_MALFORMED', 'the body must be a JSON object');
}

const createTokenBody = z
  .object({ vendor: vendorSchema, ttlSeconds: z.number().int().min(60).max(30 * 86400).default(86400), uses: z.number().int().min(1).max(10_000).default(1) })
  .strict();

/** Routes /v1/admin/…; null when the path is not an admin path. */
export async function handleAdmin(deps: AdminDeps, method: string, url: URL, authorization: string | undefined, body: () => Promise<Buffer>): Promise<AdminAnswer | null> {
  const path = url.pathname;
  if (!path.startsWith('/v1/admin/')) return null;
  const who = await authenticate(deps.store, authorization, deps.now());
  const parts = path.slice('/v1/admin/'.length).split('/');
  const route = `${method} ${parts.map((p, i) => (i === 1 && parts[0] !== 'policy' ? ':id' : p)).join('/')}`;
  const id = parts[1] ?? '';

  const agentFor = async (): Promise<RegisteredAgent> => {
    const a = await deps.registry.get(id);
    if (a === undefined || !canRead(who, a.record.vendor)) throw new CollectorError('COL_ERR_NOT_FOUND', 'no such agent');
    return a;
  };

  switch (route) {
    case 'GET tokens': {
      requireAdmin(who);
      return { status: 200, body: { tokens: await listTokens(deps.store, deps.now()) } };
    }
    case 'POST tokens': {
      requireAdmin(who);
      const parsed = createTokenBody.safeParse(jsonBody(await body()));
      if (!parsed.success) throw new CollectorError('COL_ERR_SCHEMA', parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
      const { token, record } = await createToken(deps.store, { vendor: parsed.data.vendor, ttlSeconds: parsed.data.ttlSeconds, uses: parsed.data.uses, now: deps.now() });
      return { status: 201, body: { token, id: sha256Hex(token), ...record } };
    }
    case 'GET admin-tokens': {
      requireAdmin(who);
      return { status: 200, body: { tokens: await listAdminTokens(deps.store, deps.now()) } };
    }
    case 'POST admin-tokens/:id/revoke': {
      requireAdmin(who);
      return { status: 200, body: await revokeAdminToken(deps.store, id, deps.now()) };
    }
    case 'POST tokens/:id/revoke': {
      requireAdmin(who);
      return { status: 200, body: await revokeToken(deps.store, id, deps.now()) };
    }
    case 'GET agents': {
      const vendor = url.searchParams.get('vendor');
      const agents = deps.registry
        .all()
        .filter((a) => canRead(who, a.record.vendor) && (vendor === null || a.record.vendor === vendor))
        .map((a) => summarize(a, deps.state))
        .sort((x, y) => x.vendor.localeCompare(y.vendor) || x.host.localeCompare(y.host) || x.agentId.localeCompare(y.agentId));
      return { status: 200, body: { agents } };
    }
    case 'GET agents/:id':
      return { status: 200, body: detail(await agentFor(), deps.state) };
    case 'POST agents/:id/revoke': {
      requireAdmin(who);
      const agent = await agentFor();
      const reason = jsonBody(await body()).reason;
      // Everything the agent signed up to what is stored now stays valid; anything later is refused.
      const revoked = await deps.registry.revoke(agent.record.agentId, {
        revokedAt: deps.now().toISOString(),
        afterSeq: deps.state.agents.get(agent.record.agentId)?.headSeq ?? 0,
        reason: typeof reason === 'string' ? reason.slice(0, 500) : '',
        by: who.name,
      });
      return { status: 200, body: detail(revoked!, deps.state) };
    }
    case 'GET policy':
      return { status: 200, body: policyFor(who, deps.policy()) };
    case 'PUT policy': {
      requireAdmin(who);
      return { status: 201, body: await deps.setPolicy(jsonBody(await body())) };
    }
    default: {
      const m = /^GET policy\/versions\/(\d{1,9})$/.exec(route);
      if (m?.[1] !== undefined) {
        const doc = await deps.readPolicy(Number(m[1]));
        if (doc === null) throw new CollectorError('COL_ERR_NOT_FOUND', 'no such policy version');
        return { status: 200, body: policyFor(who, doc) };
      }
      throw new CollectorError('COL_ERR_NOT_FOUND');
    }
  }
}
