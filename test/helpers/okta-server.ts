// A local Okta-compatible management API on 127.0.0.1 (random port), for the real
// @okta/okta-sdk-nodejs to talk to, unmocked. It speaks the wire format the SDK expects:
//   - SSWS API tokens (`Authorization: SSWS <token>`) and OAuth service apps: a private_key_jwt
//     client assertion POSTed to /oauth2/v1/token buys a Bearer token with scopes;
//   - cursor pagination with absolute `Link: <…>; rel="next"` URLs pointing at this server;
//   - X-Rate-Limit-Limit/-Remaining/-Reset on every answer, and injected 429 storms;
//   - Okta's error body { errorCode, errorSummary, errorLink, errorId, errorCauses }
//     (E0000011 invalid token, E0000006 forbidden, E0000047 rate limited, E0000007 not found);
//   - the traps: the plain user list leaves DEPROVISIONED users out, and a System Log query
//     without `until` (a polling query) always has a next link.
// Resources are plain JSON in Okta's shapes; see test/checks/sso_coverage/scenario.ts.
import { createPublicKey, randomBytes, verify, type KeyObject } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type Json = Record<string, unknown>;

export interface OktaOrg {
  users: Json[];
  /** userId → factors (GET /api/v1/users/{id}/factors). */
  factors: Record<string, Json[]>;
  groups: Json[];
  /** groupId → member user ids. */
  groupMembers: Record<string, string[]>;
  apps: Json[];
  /** appId → app users ({ id: userId, scope, status, … }). */
  appUsers: Record<string, Json[]>;
  logs: Json[];
  apiTokens: Json[];
}

export interface ServiceApp {
  clientId: string;
  publicKey: KeyObject | string;
  /** Scopes granted to the app; a token request for more is refused (invalid_scope). */
  scopes: string[];
}

export interface Storm {
  /** Endpoint template, e.g. `GET /api/v1/users`. */
  endpoint: string;
  /** Requests to let through before the storm starts. */
  skip?: number;
  /** Consecutive 429 answers. */
  count: number;
}

export interface OktaServerOptions {
  org: OktaOrg;
  /** Valid SSWS tokens. */
  apiTokens?: string[];
  serviceApps?: ServiceApp[];
  /** Endpoint templates answered with 403 E0000006 (a role that may not read them). */
  forbidden?: string[];
  storms?: Storm[];
  /** X-Rate-Limit-Reset of a 429 is now + this many seconds. */
  resetAfterSeconds?: number;
  /** SSWS tokens stop working after this many API requests (a token revoked mid-run). */
  revokeAfterRequests?: number;
  /** The System Log sends a next link on every page, even for bounded (until) queries. */
  logsAlwaysNext?: boolean;
  /** Endpoint templates that never answer (for timeouts). */
  hang?: string[];
  /** Endpoint templates answering 200 with a body that is not JSON (a proxy's error page). */
  malformed?: string[];
  /** Origin put in Link headers instead of this server's (a next link pointing elsewhere). */
  linkOrigin?: string;
  /** User ids whose factor list answers 404 (deleted after the user list was read). */
  goneUsers?: string[];
}

export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  endpoint: string;
  auth: 'SSWS' | 'Bearer' | 'DPoP' | 'none' | 'other';
  /** The raw credential presented, so tests can check which one was used. */
  credential: string | null;
  status: number;
  retryCount: string | null;
  retryFor: string | null;
  /** Arrival (ms since epoch). */
  at: number;
  /** For a 429: the X-Rate-Limit-Reset sent, in ms. */
  resetAtMs: number | null;
}

export interface OktaServer {
  url: string;
  requests: RecordedRequest[];
  close(): Promise<void>;
}

const RATE_LIMIT = 600;
const PAGE_DEFAULTS: Record<string, { def: number; max: number }> = {
  users: { def: 200, max: 200 },
  groups: { def: 10000, max: 10000 },
  groupUsers: { def: 1000, max: 1000 },
  apps: { def: 20, max: 200 },
  appUsers: { def: 50, max: 500 },
  logs: { def: 100, max: 1000 },
  apiTokens: { def: 20, max: 200 },
};

const REQUIRED_SCOPE: Record<string, string> = {
  'GET /api/v1/users': 'okta.users.read',
  'GET /api/v1/users/{id}/factors': 'okta.users.read',
  'GET /api/v1/groups': 'okta.groups.read',
  'GET /api/v1/groups/{id}': 'okta.groups.read',
  'GET /api/v1/groups/{id}/users': 'okta.groups.read',
  'GET /api/v1/apps': 'okta.apps.read',
  'GET /api/v1/apps/{id}/users': 'okta.apps.read',
  'GET /api/v1/logs': 'okta.logs.read',
  'GET /api/v1/api-tokens': 'okta.apiTokens.read',
};

export function endpointOf(method: string, path: string): string {
  const p = path.replace(/^\/api\/v1\/(users|apps|groups)\/[^/]+(\/.*)?$/, (_, kind: string, rest: string | undefined) => `/api/v1/${kind}/{id}${rest ?? ''}`);
  return `${method} ${p}`;
}

class HttpFailure extends Error {
  constructor(
    readonly status: number,
    readonly errorCode: string,
    readonly summary: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(summary);
  }
}

const notFound = (what: string) => new HttpFailure(404, 'E0000007', `Not found: Resource not found: ${what}`);
const badSearch = (expr: string) => new HttpFailure(400, 'E0000031', `Invalid search criteria. ${expr}`);

const encodeCursor = (s: string) => Buffer.from(s, 'utf8').toString('base64url');
const decodeCursor = (s: string) => Buffer.from(s, 'base64url').toString('utf8');

type Clause = { field: string; value: string };

/**
 * The subset of Okta's filter/search language the check sends: `field eq "value"` clauses
 * joined by `and` (all must hold) or `or` (any), without parentheses.
 */
export function parseExpression(expr: string): { op: 'and' | 'or'; clauses: Clause[] } {
  const clauses: Clause[] = [];
  const ops = new Set<string>();
  const re = /\s*([A-Za-z][\w.]*)\s+eq\s+"((?:[^"\\]|\\.)*)"\s*(?:(and|or)\b|$)/gy;
  let m: RegExpExecArray | null;
  let last = 0;
  while ((m = re.exec(expr)) !== null) {
    clauses.push({ field: m[1]!, value: m[2]!.replace(/\\(.)/g, '$1') });
    if (m[3] !== undefined) ops.add(m[3]);
    last = re.lastIndex;
    if (m[3] === undefined) break;
  }
  if (clauses.length === 0 || last !== expr.length || ops.size > 1) throw badSearch(expr);
  return { op: ops.has('or') ? 'or' : 'and', clauses };
}

function fieldValue(obj: Json, field: string): unknown {
  return field.split('.').reduce<unknown>((v, k) => (v !== null && typeof v === 'object' ? (v as Json)[k] : undefined), obj);
}

function matches(obj: Json, e: { op: 'and' | 'or'; clauses: Clause[] }): boolean {
  const test = (c: Clause) => {
    const v = fieldValue(obj, c.field);
    return v !== undefined && v !== null && String(v) === c.value;
  };
  return e.op === 'and' ? e.clauses.every(test) : e.clauses.some(test);
}

function base64urlJson(part: string): Json {
  return JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as Json;
}

export async function startOktaServer(opts: OktaServerOptions): Promise<OktaServer> {
  const org = opts.org;
  const requests: RecordedRequest[] = [];
  const validSsws = new Set(opts.apiTokens ?? []);
  const accessTokens = new Map<string, Set<string>>();
  const forbidden = new Set(opts.forbidden ?? []);
  const hang = new Set(opts.hang ?? []);
  const storms = (opts.storms ?? []).map((s) => ({ ...s, seen: 0, sent: 0 }));
  const windows = new Map<string, { reset: number; used: number }>();
  const hanging = new Set<ServerResponse>();
  let apiRequests = 0;
  let base = '';

  const usersById = new Map(org.users.map((u) => [String(u.id), u]));

  function page(res: ServerResponse, url: URL, items: Json[], kind: keyof typeof PAGE_DEFAULTS, cursorOf: (item: Json, index: number) => string, opts2: { alwaysNext?: boolean } = {}) {
    const { def, max } = PAGE_DEFAULTS[kind]!;
    const limitParam = url.searchParams.get('limit');
    const limit = limitParam === null ? def : Math.min(max, Math.max(1, Number.parseInt(limitParam, 10) || def));
    const after = url.searchParams.get('after');
    let start = 0;
    if (after !== null) {
      const cursor = decodeCursor(after);
      const i = items.findIndex((it, idx) => cursorOf(it, idx) === cursor);
      start = i === -1 ? items.length : i + 1;
    }
    const slice = items.slice(start, start + limit);
    const origin = opts.linkOrigin ?? base;
    const links = [`<${origin}${url.pathname}${url.search}>; rel="self"`];
    const hasMore = start + limit < items.length;
    if (hasMore || opts2.alwaysNext) {
      const next = new URL(url.pathname, origin);
      for (const [k, v] of url.searchParams) if (k !== 'after' && k !== 'limit') next.searchParams.set(k, v);
      next.searchParams.set('limit', String(limit));
      const lastIndex = slice.length > 0 ? start + slice.length - 1 : start - 1;
      const cursorItem = lastIndex >= 0 ? items[lastIndex] : undefined;
      next.searchParams.set('after', cursorItem === undefined ? (after ?? encodeCursor('')) : encodeCursor(cursorOf(cursorItem, lastIndex)));
      links.push(`<${next.toString()}>; rel="next"`);
    }
    res.setHeader('Link', links);
    return slice;
  }

  function authorize(req: IncomingMessage, endpoint: string): { auth: RecordedRequest['auth']; credential: string | null } {
    const h = req.headers.authorization ?? '';
    const m = /^(\S+)\s+(.+)$/.exec(h);
    const scheme = m?.[1] ?? '';
    const credential = m?.[2] ?? null;
    const auth: RecordedRequest['auth'] = h === '' ? 'none' : scheme === 'SSWS' ? 'SSWS' : scheme === 'Bearer' ? 'Bearer' : scheme === 'DPoP' ? 'DPoP' : 'other';
    const invalid = new HttpFailure(401, 'E0000011', 'Invalid token provided');
    if (auth === 'SSWS') {
      const revoked = opts.revokeAfterRequests !== undefined && apiRequests > opts.revokeAfterRequests;
      if (credential === null || !validSsws.has(credential) || revoked) throw Object.assign(invalid, { auth, credential });
    } else if (auth === 'Bearer') {
      const scopes = credential === null ? undefined : accessTokens.get(credential);
      if (scopes === undefined) throw Object.assign(invalid, { auth, credential });
      const need = REQUIRED_SCOPE[endpoint];
      if (need !== undefined && !scopes.has(need)) {
        throw Object.assign(
          new HttpFailure(403, 'E0000006', 'You do not have permission to perform the requested action', {
            'WWW-Authenticate': `Bearer authorization_uri="${base}/oauth2/v1/authorize", realm="${base}", scope="${need}", error="insufficient_scope", error_description="The access token provided does not contain the required scopes.", resource="${endpoint.split(' ')[1]}"`,
          }),
          { auth, credential },
        );
      }
    } else {
      throw Object.assign(invalid, { auth, credential });
    }
    return { auth, credential };
  }

  function rateHeaders(res: ServerResponse, endpoint: string, nowSec: number) {
    let w = windows.get(endpoint);
    if (w === undefined || w.reset <= nowSec) {
      w = { reset: nowSec + 60, used: 0 };
      windows.set(endpoint, w);
    }
    w.used++;
    res.setHeader('X-Rate-Limit-Limit', String(RATE_LIMIT));
    res.setHeader('X-Rate-Limit-Remaining', String(Math.max(0, RATE_LIMIT - w.used)));
    res.setHeader('X-Rate-Limit-Reset', String(w.reset));
  }

  async function tokenEndpoint(req: IncomingMessage, res: ServerResponse): Promise<{ status: number; body: Json }> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
    const oauthError = (status: number, error: string, description: string) => ({ status, body: { error, error_description: description } });
    if (form.get('grant_type') !== 'client_credentials') return oauthError(400, 'unsupported_grant_type', 'The authorization grant type is not supported.');
    if (form.get('client_assertion_type') !== 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer') {
      return oauthError(401, 'invalid_client', 'Client authentication failed.');
    }
    const parts = (form.get('client_assertion') ?? '').split('.');
    if (parts.length !== 3) return oauthError(401, 'invalid_client', 'The client_assertion is not a JWT.');
    let header: Json;
    let claims: Json;
    try {
      header = base64urlJson(parts[0]!);
      claims = base64urlJson(parts[1]!);
    } catch {
      return oauthError(401, 'invalid_client', 'The client_assertion is not a JWT.');
    }
    const app = (opts.serviceApps ?? []).find((a) => a.clientId === claims.iss);
    if (app === undefined || claims.sub !== claims.iss) return oauthError(401, 'invalid_client', 'The client_id is not registered.');
    const key = typeof app.publicKey === 'string' ? createPublicKey(app.publicKey) : app.publicKey;
    const data = Buffer.from(`${parts[0]}.${parts[1]}`);
    const sig = Buffer.from(parts[2]!, 'base64url');
    const ok =
      header.alg === 'RS256'
        ? verify('RSA-SHA256', data, key, sig)
        : header.alg === 'ES256'
          ? verify('SHA256', data, { key, dsaEncoding: 'ieee-p1363' }, sig)
          : false;
    if (!ok) return oauthError(401, 'invalid_client', 'The client_assertion signature is invalid.');
    const nowSec = Math.floor(Date.now() / 1000);
    if (claims.aud !== `${base}/oauth2/v1/token` || typeof claims.exp !== 'number' || claims.exp < nowSec) {
      return oauthError(401, 'invalid_client', 'The client_assertion token is expired or has the wrong audience.');
    }
    const requested = (form.get('scope') ?? '').split(' ').filter((s) => s !== '');
    const missing = requested.filter((s) => !app.scopes.includes(s));
    if (requested.length === 0 || missing.length > 0) {
      return oauthError(400, 'invalid_scope', `The following scopes are not allowed: ${missing.join(', ')}`);
    }
    const token = randomBytes(24).toString('base64url');
    accessTokens.set(token, new Set(requested));
    res.setHeader('Cache-Control', 'no-cache, no-store');
    return { status: 200, body: { token_type: 'Bearer', expires_in: 3600, access_token: token, scope: requested.join(' ') } };
  }

  function route(method: string, url: URL, res: ServerResponse): unknown {
    const path = url.pathname;
    let m: RegExpExecArray | null;
    if (method !== 'GET') throw new HttpFailure(405, 'E0000022', 'The endpoint does not support the provided HTTP method');

    if (path === '/api/v1/users') {
      const search = url.searchParams.get('search') ?? url.searchParams.get('filter');
      let list = [...org.users].sort((a, b) => (String(a.id) < String(b.id) ? -1 : 1));
      if (search === null) list = list.filter((u) => u.status !== 'DEPROVISIONED');
      else {
        const e = parseExpression(search);
        // Okta leaves DEPROVISIONED users out unless the expression asks for a status.
        const asksStatus = e.clauses.some((c) => c.field === 'status');
        list = list.filter((u) => matches(u, e) && (asksStatus || u.status !== 'DEPROVISIONED'));
      }
      return page(res, url, list, 'users', (u) => String(u.id));
    }
    if ((m = /^\/api\/v1\/users\/([^/]+)\/factors$/.exec(path)) !== null) {
      const id = decodeURIComponent(m[1]!);
      if (!usersById.has(id) || (opts.goneUsers ?? []).includes(id)) throw notFound(`${id} (User)`);
      return org.factors[id] ?? [];
    }
    if (path === '/api/v1/groups') {
      let list = [...org.groups];
      const search = url.searchParams.get('search') ?? url.searchParams.get('filter');
      if (search !== null) list = list.filter((g) => matches(g, parseExpression(search)));
      const q = url.searchParams.get('q');
      if (q !== null) list = list.filter((g) => String(fieldValue(g, 'profile.name') ?? '').toLowerCase().startsWith(q.toLowerCase()));
      return page(res, url, list, 'groups', (g) => String(g.id));
    }
    if ((m = /^\/api\/v1\/groups\/([^/]+)$/.exec(path)) !== null) {
      const g = org.groups.find((x) => x.id === decodeURIComponent(m![1]!));
      if (g === undefined) throw notFound(`${m[1]} (UserGroup)`);
      return g;
    }
    if ((m = /^\/api\/v1\/groups\/([^/]+)\/users$/.exec(path)) !== null) {
      const id = decodeURIComponent(m[1]!);
      if (!org.groups.some((g) => g.id === id)) throw notFound(`${id} (UserGroup)`);
      const members = (org.groupMembers[id] ?? []).map((uid) => usersById.get(uid)).filter((u): u is Json => u !== undefined);
      return page(res, url, members, 'groupUsers', (u) => String(u.id));
    }
    if (path === '/api/v1/apps') {
      let list = [...org.apps];
      const filter = url.searchParams.get('filter');
      if (filter !== null) list = list.filter((a) => matches(a, parseExpression(filter)));
      return page(res, url, list, 'apps', (a) => String(a.id));
    }
    if ((m = /^\/api\/v1\/apps\/([^/]+)\/users$/.exec(path)) !== null) {
      const id = decodeURIComponent(m[1]!);
      if (!org.apps.some((a) => a.id === id)) throw notFound(`${id} (AppInstance)`);
      return page(res, url, org.appUsers[id] ?? [], 'appUsers', (u) => String(u.id));
    }
    if (path === '/api/v1/logs') {
      const since = url.searchParams.get('since');
      const until = url.searchParams.get('until');
      const filter = url.searchParams.get('filter');
      const e = filter === null ? null : parseExpression(filter);
      const sinceMs = since === null ? Date.now() - 7 * 86_400_000 : Date.parse(since);
      const untilMs = until === null ? Number.POSITIVE_INFINITY : Date.parse(until);
      let list = org.logs.filter((ev) => {
        const t = Date.parse(String(ev.published));
        return t >= sinceMs && t < untilMs && (e === null || matches(ev, e));
      });
      list.sort((a, b) => Date.parse(String(a.published)) - Date.parse(String(b.published)));
      if (url.searchParams.get('sortOrder') === 'DESCENDING') list = list.reverse();
      // A polling query (no until) always links to the next page: it never ends by itself.
      return page(res, url, list, 'logs', (ev) => String(ev.uuid), { alwaysNext: until === null || opts.logsAlwaysNext === true });
    }
    if (path === '/api/v1/api-tokens') {
      return page(res, url, org.apiTokens, 'apiTokens', (t) => String(t.id));
    }
    throw new HttpFailure(404, 'E0000022', 'The endpoint does not support the provided HTTP method');
  }

  const server: Server = createServer((req, res) => {
    void (async () => {
      const at = Date.now();
      const nowSec = Math.floor(at / 1000);
      const url = new URL(req.url ?? '/', base);
      const method = req.method ?? 'GET';
      const endpoint = endpointOf(method, url.pathname);
      const record: RecordedRequest = {
        method,
        path: url.pathname,
        query: Object.fromEntries(url.searchParams),
        endpoint,
        auth: 'none',
        credential: null,
        status: 0,
        retryCount: (req.headers['x-okta-retry-count'] as string | undefined) ?? null,
        retryFor: (req.headers['x-okta-retry-for'] as string | undefined) ?? null,
        at,
        resetAtMs: null,
      };
      requests.push(record);
      res.setHeader('Date', new Date(nowSec * 1000).toUTCString());
      res.setHeader('X-Okta-Request-Id', randomBytes(9).toString('base64url'));
      const send = (status: number, body: unknown) => {
        record.status = status;
        res.statusCode = status;
        res.setHeader('Content-Type', 'application/json');
        res.end(JSON.stringify(body));
      };
      try {
        if (method === 'POST' && url.pathname === '/oauth2/v1/token') {
          const r = await tokenEndpoint(req, res);
          send(r.status, r.body);
          return;
        }
        apiRequests++;
        const who = authorize(req, endpoint);
        record.auth = who.auth;
        record.credential = who.credential;
        if (hang.has(endpoint)) {
          hanging.add(res);
          return;
        }
        const storm = storms.find((s) => s.endpoint === endpoint && s.seen++ >= (s.skip ?? 0) && s.sent < s.count);
        if (storm !== undefined) {
          storm.sent++;
          const reset = nowSec + (opts.resetAfterSeconds ?? 1);
          record.resetAtMs = reset * 1000;
          res.setHeader('X-Rate-Limit-Limit', String(RATE_LIMIT));
          res.setHeader('X-Rate-Limit-Remaining', '0');
          res.setHeader('X-Rate-Limit-Reset', String(reset));
          throw new HttpFailure(429, 'E0000047', 'API call exceeded rate limit due to too many requests.');
        }
        if (forbidden.has(endpoint)) throw new HttpFailure(403, 'E0000006', 'You do not have permission to perform the requested action');
        if ((opts.malformed ?? []).includes(endpoint)) {
          record.status = 200;
          res.setHeader('Content-Type', 'text/html');
          res.end('<html><body>Bad gateway</body></html>');
          return;
        }
        rateHeaders(res, endpoint, nowSec);
        send(200, route(method, url, res));
      } catch (err) {
        const failure = err instanceof HttpFailure ? err : new HttpFailure(500, 'E0000009', 'Internal Server Error');
        const who = err as { auth?: RecordedRequest['auth']; credential?: string | null };
        if (who.auth !== undefined) {
          record.auth = who.auth;
          record.credential = who.credential ?? null;
        }
        for (const [k, v] of Object.entries(failure.headers)) res.setHeader(k, v);
        res.removeHeader('Link');
        send(failure.status, {
          errorCode: failure.errorCode,
          errorSummary: failure.summary,
          errorLink: failure.errorCode,
          errorId: `oae${randomBytes(11).toString('base64url')}`,
          errorCauses: [],
        });
      }
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: base,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        for (const res of hanging) res.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
