// Reads Okta through @okta/okta-sdk-nodejs: the org's users (DEPROVISIONED ones searched for
// explicitly), the staff group, factors, apps and their assignments, deactivation events from
// the System Log, and API tokens. The SDK is imported lazily, so agents without Okta never load
// it. Its HTTP goes to the org URL only: the one place a check talks to something other than
// the HostIO (see README.md).
import { createRequire } from 'node:module';
import type * as OktaSdk from '@okta/okta-sdk-nodejs';
import type { ApiToken, Application, AppUser, Client, Collection, LogEvent, User, UserFactor } from '@okta/okta-sdk-nodejs';
import { CheckError, isCheckError } from '../errors.js';
import { inPopulation, type IdentityObservations, type PopulationSelector, type RawApiToken, type RawApp, type RawFactor, type RawObservations, type RawUser } from './measure.js';
import { ACCESS_STATUSES, DEFAULT_SCOPES, type Config, type OktaConfig, type Population } from './schema.js';

type Sdk = typeof OktaSdk;

export const DEACTIVATE_EVENT = 'user.lifecycle.deactivate';
export const SYSTEM_LOG_RETENTION_DAYS = 90;

export interface OktaCollectInput {
  okta: OktaConfig;
  /** The SSWS token, or the service app's private key (PEM or JWK JSON). Never logged. */
  secret: string;
  population: Config['population'];
  leaverLookbackDays: number;
  signal: AbortSignal;
  now: Date;
}

export type OktaObservations = Omit<RawObservations, 'roster'>;

export interface Stats {
  requests: number;
  retries: number;
  endpoints: Set<string>;
}

/** `GET /api/v1/users/{id}/factors`: ids replaced, so the list names endpoints, not people. */
export function endpointTemplate(method: string, url: string): string {
  let path: string;
  try {
    path = new URL(url).pathname;
  } catch {
    path = url;
  }
  path = path
    .replace(/^\/api\/v1\/(users|apps|groups)\/[^/]+(\/.*)?$/, (_, kind: string, rest: string | undefined) => `/api/v1/${kind}/{id}${rest ?? ''}`)
    .replace(/\/factors\/[^/]+$/, '/factors/{id}');
  return `${method.toUpperCase()} ${path}`;
}

/** An Okta filter/search string literal. */
export function quoteFilterValue(v: string): string {
  return `"${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(abortError());
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(abortError());
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

function abortError(): Error {
  const e = new Error('aborted');
  e.name = 'AbortError';
  return e;
}

/**
 * The SDK's DefaultRequestExecutor already retries a 429 after X-Rate-Limit-Reset − Date + 1 s,
 * up to maxRetries per request. Wrapped here for what it lacks: a per-attempt timeout separate
 * from the retry budget (its `requestTimeout` is both), a cap on one wait, waits and requests
 * that stop when the check's budget is spent, and counters for the facts.
 */
function makeExecutor(sdk: Sdk, okta: OktaConfig, signal: AbortSignal, stats: Stats) {
  const base = sdk.RequestExecutor.prototype;
  class BoundedExecutor extends sdk.DefaultRequestExecutor {
    constructor() {
      // requestTimeout 0: the SDK's whole-request clock is off; the per-attempt timeout is below.
      super({ maxRetries: okta.rateLimit.maxRetries, requestTimeout: 0 });
    }

    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    override fetch(request: any): Promise<any> {
      if (signal.aborted) return Promise.reject(abortError());
      if (!request.startTime) request.startTime = new Date();
      // Not enumerable: the SDK deep-copies requests for retries, and a copied signal is no signal.
      Object.defineProperty(request, 'signal', { value: signal, enumerable: false, configurable: true, writable: true });
      request.timeout = okta.requestTimeoutMs;
      stats.requests++;
      stats.endpoints.add(endpointTemplate(String(request.method ?? 'GET'), String(request.url)));
      return base.fetch
        .call(this, request)
        .then((res) => this.parseResponse(request, res))
        .then((res) => {
          // The SDK reads a text/html 200 (a proxy's page) as a list of empty objects: refuse it.
          const type = String(res?.headers?.get?.('content-type') ?? '');
          if (res.status >= 200 && res.status < 300 && res.status !== 204 && !/\bjson\b/i.test(type)) {
            const e = new Error(`Okta answered ${res.status} with a ${type || 'missing'} content type`);
            e.name = 'NotJsonError';
            throw e;
          }
          return res;
        });
    }

    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    override parseResponse(request: any, response: any): any {
      // A wait longer than the cap is not taken: the 429 surfaces and the check answers unknown.
      if (response.status === 429 && this.validateRetryResponseHeaders(response) && this.getRetryDelayMs(response) > okta.rateLimit.maxWaitMs) {
        return response;
      }
      return super.parseResponse(request, response);
    }

    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    override retryRequest(request: any, response: any, delayMs: number): Promise<any> {
      stats.retries++;
      const requestId = this.getOktaRequestId(response);
      this.emit('backoff', request, response, requestId, delayMs);
      return sleep(Math.max(0, delayMs), signal).then(() => {
        const next = this.buildRetryRequest(request, requestId, delayMs);
        this.emit('resume', next, requestId);
        return this.fetch(next);
      });
    }
  }
  return new BoundedExecutor();
}

function httpStatus(err: unknown): number | null {
  const s = (err as { status?: unknown } | null)?.status;
  return typeof s === 'number' ? s : null;
}

/** Any thrown value → a CheckError with a stable code and a message free of the secret. */
export function toCheckError(err: unknown, what: string, secret: string, signal: AbortSignal): CheckError {
  if (isCheckError(err)) return err;
  const redact = (s: string) => (secret.length >= 4 ? s.split(secret).join('[redacted]') : s);
  const e = (err ?? {}) as { name?: unknown; type?: unknown; code?: unknown; errorCode?: unknown; url?: unknown; message?: unknown };
  const status = httpStatus(err);
  if (status !== null) {
    const okta = typeof e.errorCode === 'string' ? ` ${e.errorCode}` : '';
    if (typeof e.url === 'string' && e.url.endsWith('/oauth2/v1/token')) {
      return new CheckError('CHK_ERR_PERMISSION', `Okta refused the service app's access-token request (HTTP ${status})`, { subject: 'POST /oauth2/v1/token' });
    }
    if (status === 401 || status === 403) {
      return new CheckError('CHK_ERR_PERMISSION', `Okta answered ${status}${okta} reading ${what}`, { subject: what, cause: { status, errorCode: e.errorCode } });
    }
    if (status === 429) return new CheckError('CHK_ERR_TIMEOUT', `Okta kept answering 429 (rate limited) reading ${what}, beyond the retry budget`, { subject: what });
    if (status === 404) return new CheckError('CHK_ERR_SOURCE_MISSING', `Okta answered 404${okta} reading ${what}`, { subject: what });
    if (status >= 500) return new CheckError('CHK_ERR_NETWORK', `Okta answered ${status}${okta} reading ${what}`, { subject: what });
    return new CheckError('CHK_ERR_INTERNAL', `Okta refused the request for ${what}: HTTP ${status}${okta}`, { subject: what });
  }
  if (e.name === 'AbortError' || signal.aborted) return new CheckError('CHK_ERR_TIMEOUT', `the check ran out of time reading ${what}`);
  if (e.name === 'FetchError') {
    if (e.type === 'request-timeout' || e.type === 'body-timeout') {
      return new CheckError('CHK_ERR_TIMEOUT', `an Okta request timed out reading ${what}`, { subject: what });
    }
    if (e.type === 'invalid-json') return new CheckError('CHK_ERR_PARSE', `Okta returned a body that is not JSON reading ${what}`, { subject: what });
    const code = typeof e.code === 'string' ? e.code : String(e.type ?? 'error');
    return new CheckError('CHK_ERR_NETWORK', `could not reach Okta reading ${what} (${code})`, { subject: what });
  }
  if (err instanceof SyntaxError || e.name === 'NotJsonError') {
    return new CheckError('CHK_ERR_PARSE', `Okta returned a body that is not JSON reading ${what}`, { subject: what });
  }
  const message = typeof e.message === 'string' ? redact(e.message) : 'unknown error';
  return new CheckError('CHK_ERR_INTERNAL', `reading ${what} failed: ${message}`, { subject: what });
}

const iso = (v: unknown): string | null => {
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? null : v.toISOString();
  if (typeof v === 'string') {
    const ms = Date.parse(v);
    return Number.isNaN(ms) ? null : new Date(ms).toISOString();
  }
  return null;
};
const str = (v: unknown): string | null => (typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : null);

export function rawUser(u: User, selectorAttribute: string | null): RawUser {
  const profile = (u.profile ?? {}) as Record<string, unknown>;
  const creds = u.credentials as { provider?: { type?: unknown }; password?: unknown } | undefined;
  return {
    id: String(u.id),
    status: String(u.status ?? 'UNKNOWN'),
    login: str(profile.login) ?? String(u.id),
    email: str(profile.email),
    employeeNumber: str(profile.employeeNumber),
    created: iso(u.created),
    lastLogin: iso(u.lastLogin),
    passwordChanged: iso(u.passwordChanged),
    statusChanged: iso(u.statusChanged),
    credentialProvider: str(creds?.provider?.type),
    hasPassword: creds?.password !== undefined && creds.password !== null,
    selectorValue: selectorAttribute === null ? null : str(profile[selectorAttribute]),
  };
}

const hasId = (x: unknown): boolean => typeof (x as { id?: unknown }).id === 'string' && (x as { id: string }).id !== '';

class Reader {
  constructor(
    readonly orgUrl: string,
    readonly secret: string,
    readonly signal: AbortSignal,
  ) {}

  async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    if (this.signal.aborted) throw toCheckError(abortError(), what, this.secret, this.signal);
    try {
      return await fn();
    } catch (err) {
      throw toCheckError(err, what, this.secret, this.signal);
    }
  }

  /** Like `call`, but a 403 is an answer (what was refused), not a failure of the check. */
  async unlessForbidden<T>(what: string, fn: () => Promise<T>): Promise<T | { forbidden: string }> {
    try {
      return await fn();
    } catch (err) {
      const cause = (err as { cause?: unknown } | null)?.cause ?? err;
      if (httpStatus(cause) !== 403) throw err;
      const code = (cause as { errorCode?: unknown }).errorCode;
      return { forbidden: `Okta answered 403${typeof code === 'string' ? ` ${code}` : ''} reading ${what}` };
    }
  }

  /**
   * Every page of a collection, following the Link headers the SDK parsed. Errors surface
   * mid-iteration and abort the whole read: a partial list is never returned as complete.
   */
  async all<T>(what: string, open: () => Promise<Collection<T>>, opts: { maxPages?: number; stopOnEmptyPage?: boolean; valid?: (item: T) => boolean } = {}) {
    return this.call(what, async () => {
      const coll = await open();
      const items: T[] = [];
      let pages = 0;
      while (coll.nextUri) {
        if (opts.maxPages !== undefined && pages >= opts.maxPages) return { items, pages, truncated: true };
        if (!coll.nextUri.startsWith(`${this.orgUrl}/`)) {
          throw new CheckError('CHK_ERR_PARSE', `Okta sent a next link outside the org URL reading ${what}`, { subject: what });
        }
        if (this.signal.aborted) throw abortError();
        const page = (await coll.getNextPage()) as unknown as T[];
        pages++;
        if (!Array.isArray(page)) throw new CheckError('CHK_ERR_PARSE', `Okta returned something other than a list reading ${what}`, { subject: what });
        // Every item must look like what was asked for: the SDK maps any JSON onto its models.
        const valid = opts.valid ?? hasId;
        if (!page.every((x) => x !== null && typeof x === 'object' && valid(x))) {
          throw new CheckError('CHK_ERR_PARSE', `Okta returned an item without its identifying fields reading ${what}`, { subject: what });
        }
        items.push(...page);
        if (opts.stopOnEmptyPage && page.length === 0) break;
      }
      return { items, pages, truncated: false };
    });
  }
}

/** Runs `fn` over items, at most `limit` at a time; the first error stops the rest. */
async function mapLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (!failed && next < items.length) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  const results = await Promise.allSettled(Array.from({ length: Math.min(limit, items.length) }, worker));
  const rejected = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (rejected !== undefined) throw rejected.reason;
}

export function sdkVersion(): string {
  try {
    const pkg = createRequire(import.meta.url)('@okta/okta-sdk-nodejs/package.json') as { version?: string };
    return `@okta/okta-sdk-nodejs@${pkg.version ?? 'unknown'}`;
  } catch {
    return '@okta/okta-sdk-nodejs';
  }
}

const GROUP_ID = /^00g[A-Za-z0-9]{17}$/;

export interface OktaClient {
  client: Client;
  stats: Stats;
}

/**
 * The SDK turns the service app's key (PEM or JWK, RSA or EC) into a JWK only when it signs its
 * first client assertion, deep inside a request. Its own conversion, run here before any request,
 * tells a key it cannot use (a configuration problem) from a fault of the check.
 */
async function assertUsableKey(secret: string): Promise<void> {
  const { getPemAndJwk } = createRequire(import.meta.url)('@okta/okta-sdk-nodejs/src/jwt.js') as { getPemAndJwk(key: string): Promise<unknown> };
  try {
    await getPemAndJwk(secret);
  } catch (err) {
    const raw = err instanceof Error ? err.message : String(err);
    const message = secret.length >= 4 ? raw.split(secret).join('[redacted]') : raw;
    throw new CheckError('CHK_ERR_NOT_CONFIGURED', `the Okta service app's private key cannot be used: ${message}`, { subject: 'okta private key' });
  }
}

/**
 * An SDK client for the org: SSWS token or private-key JWT, the SDK's GET cache off
 * (`cacheMiddleware: null`), and the bounded executor above.
 */
export async function createOktaClient(okta: OktaConfig, secret: string, signal: AbortSignal): Promise<OktaClient> {
  let sdk: Sdk;
  try {
    sdk = await import('@okta/okta-sdk-nodejs');
  } catch (err) {
    throw new CheckError('CHK_ERR_INTERNAL', 'the Okta SDK (@okta/okta-sdk-nodejs) could not be loaded', { cause: err });
  }
  if (okta.auth.type === 'privateKey') await assertUsableKey(secret);
  const stats: Stats = { requests: 0, retries: 0, endpoints: new Set() };
  const requestExecutor = makeExecutor(sdk, okta, signal, stats);
  try {
    // Every key set explicitly: the SDK also reads okta.yaml files and OKTA_CLIENT_* variables,
    // and anything left unset could come from there.
    const common = { orgUrl: okta.orgUrl, requestExecutor, cacheMiddleware: null };
    const client =
      okta.auth.type === 'apiToken'
        ? new sdk.Client({ ...common, authorizationMode: 'SSWS', token: secret, clientId: '', privateKey: '', keyId: '' })
        : new sdk.Client({
            ...common,
            authorizationMode: 'PrivateKey',
            token: '',
            clientId: okta.auth.clientId,
            scopes: okta.auth.scopes ?? [...DEFAULT_SCOPES],
            privateKey: secret,
            keyId: okta.auth.keyId ?? '',
          });
    return { client, stats };
  } catch {
    // The SDK's message may quote configuration; say only that it refused.
    throw new CheckError('CHK_ERR_NOT_CONFIGURED', 'the Okta SDK refused the client configuration');
  }
}

interface PopulationRead {
  users: Map<string, RawUser>;
  selector: PopulationSelector;
  groupMemberIds: Set<string> | null;
}

/**
 * Every account of the org (with `deprovisioned`, the DEPROVISIONED ones too: the plain list
 * leaves them out, so they are searched for) and the population the config selects.
 */
async function readPopulation(client: Client, r: Reader, okta: OktaConfig, population: Population, opts: { deprovisioned: boolean }): Promise<PopulationRead> {
  const limit = okta.pageSize;
  const attr = population.profileAttribute?.name ?? null;
  const listed = await r.all('the user list', () => client.userApi.listUsers({ limit }));
  const deprovisioned = opts.deprovisioned
    ? await r.all('the DEPROVISIONED users', () => client.userApi.listUsers({ search: 'status eq "DEPROVISIONED"', limit }))
    : { items: [] };
  const users = new Map<string, RawUser>();
  for (const u of [...listed.items, ...deprovisioned.items]) users.set(String(u.id), rawUser(u, attr));

  let selector: PopulationSelector = { kind: 'all' };
  let groupMemberIds: Set<string> | null = null;
  const group = population.group;
  if (group !== undefined) {
    let groupId: string;
    let groupName: string | null;
    if (GROUP_ID.test(group)) {
      const g = await r.call('the staff group', () => client.groupApi.getGroup({ groupId: group }));
      groupId = group;
      groupName = g.profile?.name ?? null;
    } else {
      const found = await r.all('the staff group', () => client.groupApi.listGroups({ search: `profile.name eq ${quoteFilterValue(group)}`, limit }));
      const exact = found.items.filter((g) => g.profile?.name === group);
      if (exact.length === 0) throw new CheckError('CHK_ERR_SOURCE_MISSING', 'no Okta group has the configured name', { subject: group });
      if (exact.length > 1) throw new CheckError('CHK_ERR_UNRESOLVED', 'several Okta groups have the configured name: use the group id', { subject: group });
      groupId = String(exact[0]!.id);
      groupName = group;
    }
    const members = await r.all('the staff group members', () => client.groupApi.listGroupUsers({ groupId, limit }));
    groupMemberIds = new Set();
    for (const m of members.items) {
      const id = String(m.id);
      groupMemberIds.add(id);
      // A member created after the user list was read: take the member record itself.
      if (!users.has(id)) users.set(id, rawUser(m, attr));
    }
    selector = { kind: 'group', groupId, groupName };
  } else if (population.profileAttribute !== undefined) {
    selector = { kind: 'profileAttribute', ...population.profileAttribute };
  }
  return { users, selector, groupMemberIds };
}

/** API tokens: listing them needs more than a read-only role; a 403 is reported, not fatal. */
async function readApiTokens(client: Client, r: Reader): Promise<RawObservations['apiTokens']> {
  const tokenList = await r.unlessForbidden('the API token list', () => r.all('the API token list', () => client.apiTokenApi.listApiTokens()));
  if ('forbidden' in tokenList) return { readable: false, reason: tokenList.forbidden };
  return {
    readable: true,
    tokens: tokenList.items.map(
      (t: ApiToken): RawApiToken => ({
        id: String(t.id),
        name: t.name ?? String(t.id),
        userId: t.userId ?? null,
        created: iso(t.created),
        expiresAt: iso(t.expiresAt),
      }),
    ),
  };
}

function sourceOf(okta: OktaConfig, stats: Stats): OktaObservations['source'] {
  return {
    vendor: 'okta',
    orgUrl: okta.orgUrl,
    auth: okta.auth.type,
    sdk: sdkVersion(),
    endpoints: [...stats.endpoints],
    requests: stats.requests,
    rateLimitRetries: stats.retries,
  };
}

/**
 * Only what credential_age needs: the population's accounts (password state and age) and the
 * API tokens. No factors, apps or System Log.
 */
export async function collectOktaCredentials(input: Omit<OktaCollectInput, 'leaverLookbackDays'>): Promise<IdentityObservations> {
  const { okta, secret, signal, now } = input;
  const { client, stats } = await createOktaClient(okta, secret, signal);
  const r = new Reader(okta.orgUrl, secret, signal);
  // Deprovisioned accounts have no usable password: the plain list is enough here.
  const { users, selector, groupMemberIds } = await readPopulation(client, r, okta, input.population, { deprovisioned: false });
  const apiTokens = await readApiTokens(client, r);
  return { observedAt: now, source: sourceOf(okta, stats), selector, users: [...users.values()], groupMemberIds, apiTokens };
}

export async function collectOkta(input: OktaCollectInput): Promise<OktaObservations> {
  const { okta, secret, signal, now } = input;
  const { client, stats } = await createOktaClient(okta, secret, signal);
  const r = new Reader(okta.orgUrl, secret, signal);
  const limit = okta.pageSize;

  // 1–2. Every account, and the population.
  const population = await readPopulation(client, r, okta, input.population, { deprovisioned: true });
  const { users, selector, groupMemberIds } = population;
  const activeStaff = [...users.values()].filter((u) => inPopulation(u, population) && ACCESS_STATUSES.has(u.status)).map((u) => u.id).sort();

  // 3. Factors of active staff accounts (no pagination on this endpoint).
  const factors = new Map<string, RawFactor[]>();
  let vanished = 0;
  await mapLimit(activeStaff, okta.concurrency, async (userId) => {
    try {
      const res = await r.all('user factors', () => client.userFactorApi.listFactors({ userId }), {
        valid: (f: UserFactor) => typeof f.factorType === 'string',
      });
      factors.set(
        userId,
        res.items.map((f: UserFactor) => ({ factorType: String(f.factorType), provider: f.provider ?? null, status: f.status ?? null })),
      );
    } catch (err) {
      if (isCheckError(err) && err.code === 'CHK_ERR_SOURCE_MISSING') {
        vanished++;
        return;
      }
      throw err;
    }
  });
  for (const id of activeStaff) if (!factors.has(id)) users.delete(id);

  // 4. Apps and who is assigned to each active one.
  const appList = await r.all('the app list', () => client.applicationApi.listApplications({ limit }));
  const apps: RawApp[] = appList.items.map((a: Application) => ({
    id: String(a.id),
    label: a.label ?? String(a.id),
    name: str((a as unknown as { name?: unknown }).name),
    signOnMode: a.signOnMode ?? null,
    status: a.status ?? null,
  }));
  const appAssignments = new Map<string, string[]>();
  await mapLimit(
    apps.filter((a) => a.status === 'ACTIVE'),
    okta.concurrency,
    async (app) => {
      try {
        const res = await r.all('app assignments', () => client.applicationApi.listApplicationUsers({ appId: app.id, limit }));
        appAssignments.set(app.id, res.items.map((au: AppUser) => String(au.id)));
      } catch (err) {
        // An app deleted since the app list was read has no assignments left.
        if (isCheckError(err) && err.code === 'CHK_ERR_SOURCE_MISSING') return;
        throw err;
      }
    },
  );

  // 5. Deactivations from the System Log: bounded by `until` (the log pages forever without it),
  //    by an empty page, and by a page count.
  // Okta keeps 90 days of System Log: asking further back gains nothing.
  const since = new Date(now.getTime() - Math.min(input.leaverLookbackDays, SYSTEM_LOG_RETENTION_DAYS) * 86_400_000).toISOString();
  const until = now.toISOString();
  const deactivations = new Map<string, string>();
  let systemLog: RawObservations['systemLog'] = { readable: true, reason: null, since, until, pages: 0, events: 0, truncated: false };
  const logs = await r.unlessForbidden('the System Log', () =>
    r.all(
      'the System Log',
      () =>
        client.systemLogApi.listLogEvents({
          since,
          until,
          filter: `eventType eq ${quoteFilterValue(DEACTIVATE_EVENT)}`,
          limit: okta.systemLog.pageSize,
          sortOrder: 'ASCENDING',
        }),
      { maxPages: okta.systemLog.maxPages, stopOnEmptyPage: true, valid: (ev: LogEvent) => typeof ev.eventType === 'string' && ev.published instanceof Date },
    ),
  );
  if ('forbidden' in logs) {
    // Without the log, lags fall back to the account's statusChanged (see README).
    systemLog = { readable: false, reason: logs.forbidden, since, until, pages: 0, events: 0, truncated: false };
  } else {
    let events = 0;
    for (const ev of logs.items as LogEvent[]) {
      const published = iso(ev.published);
      if (ev.eventType !== DEACTIVATE_EVENT || published === null || published >= until || published < since) continue;
      if (ev.outcome?.result !== undefined && ev.outcome.result !== 'SUCCESS') continue;
      events++;
      for (const t of ev.target ?? []) {
        if (t.type !== 'User' || typeof t.id !== 'string') continue;
        const prev = deactivations.get(t.id);
        if (prev === undefined || published > prev) deactivations.set(t.id, published);
      }
    }
    systemLog = { readable: true, reason: null, since, until, pages: logs.pages, events, truncated: logs.truncated };
  }

  // 6. API tokens.
  const apiTokens = await readApiTokens(client, r);

  return {
    observedAt: now,
    source: sourceOf(okta, stats),
    selector,
    users: [...users.values()],
    groupMemberIds,
    factors,
    vanished,
    apps,
    appAssignments,
    systemLog,
    deactivations,
    apiTokens,
  };
}
