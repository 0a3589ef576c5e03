// The agent's HTTP client (undici 7). Plain HTTP only to loopback; HTTPS may pin a CA file and
// present a client certificate (mTLS). undici is imported on the first request, not at start:
// `vcm-agent check` and `status` never load it, and the daemon loads it when it first delivers.
//
// Only undici's Agent and its request API are loaded, not the package's index. The index also
// loads undici's fetch, WebSocket, cache and cookie modules, and the cookie module reads the global
// `Headers`, which makes Node load its own bundled copy of undici and compile a second llhttp. That
// is ~5 MiB of resident memory the daemon never uses (test/bench/agent-idle-rss.bench.mjs).
import { createPublicKey, randomBytes, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Dispatcher } from 'undici';
import type AgentClass from 'undici/lib/dispatcher/agent.js';
import type apiRequest from 'undici/lib/api/api-request.js';
import { NONCE_HEADER, PROOF_HEADER, errorBodySchema, escapeControls, type AnswerBinding, isLoopbackHost, keyFingerprint, sha256Hex, verifyAnswer } from '../collector/contract.js';
import { AgentError, isAgentError } from './errors.js';

export interface HttpOptions {
  /** PEM CA bundle: the only roots trusted for the collector (pinning). */
  caFile?: string;
  /** mTLS: a client certificate and its key (PEM). */
  certFile?: string;
  keyFile?: string;
  /**
   * How long an idle connection is kept. The collector keeps idle connections 65 s; ours must
   * close first, so that a request never races the server's close. Server keep-alive hints are
   * capped at this value too.
   */
  keepAliveTimeoutMs?: number;
  timeoutMs?: number;
  /**
   * The collector key pinned at enrollment (PEM). With it, every request carries a fresh nonce and
   * every answer must carry the collector's signature over the request, the nonce and the answer:
   * anything else is refused (AGT_ERR_COLLECTOR_UNVERIFIED) before the agent acts on it.
   */
  collectorKey?: string;
  /**
   * Called once when a request has had no complete answer for `waitNoticeMs` (default 1 s): what
   * it waits for and the most it will wait. The CLI tells a person at a terminal; nothing else.
   */
  onWait?: (wait: HttpWait) => void;
  waitNoticeMs?: number;
}

export interface HttpWait {
  method: 'GET' | 'POST';
  url: URL;
  /** The overall deadline of the exchange. */
  maxMs: number;
}

export const DEFAULT_KEEP_ALIVE_MS = 30_000;
/** No collector answer the agent reads is anywhere near this. */
const MAX_RESPONSE_BYTES = 4 * 1024 * 1024;

export function checkCollectorUrl(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new AgentError('AGT_ERR_CONFIG', `not a URL: ${raw}`);
  }
  if (url.protocol === 'http:' && !isLoopbackHost(url.hostname)) {
    throw new AgentError('AGT_ERR_INSECURE_URL', `refusing plain HTTP to ${url.hostname}: use https://, or a loopback address`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new AgentError('AGT_ERR_CONFIG', `unsupported scheme ${url.protocol}`);
  return url;
}

export interface HttpResponse {
  status: number;
  body: Buffer;
  headers: Record<string, string | string[] | undefined>;
  /** What the collector's signature over this answer must cover, and the signature it gave. */
  proof?: { binding: AnswerBinding; signature: string | undefined };
}

function readPem(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new AgentError('AGT_ERR_CONFIG', `cannot read the ${what} ${file}: ${(err as Error).message}`);
  }
}

interface Undici {
  Agent: typeof AgentClass;
  /** undici's `Dispatcher.prototype.request`, called on our Agent. */
  request: typeof apiRequest;
}
let undiciModule: Promise<Undici> | undefined;
function loadUndici(): Promise<Undici> {
  undiciModule ??= Promise.all([import('undici/lib/dispatcher/agent.js'), import('undici/lib/api/api-request.js')]).then(
    ([agent, api]) => ({ Agent: agent.default, request: api.default }),
  );
  return undiciModule;
}

export class CollectorClient {
  readonly base: URL;
  readonly #opts: HttpOptions;
  readonly #tls: { ca?: Buffer; cert?: Buffer; key?: Buffer };
  readonly #pinned: { key: KeyObject; fingerprint: string } | undefined;
  #dispatcher: Dispatcher | undefined;
  #closed = false;

  constructor(collectorUrl: string, opts: HttpOptions = {}) {
    this.base = checkCollectorUrl(collectorUrl);
    this.#opts = opts;
    if ((opts.certFile === undefined) !== (opts.keyFile === undefined)) {
      throw new AgentError('AGT_ERR_CONFIG', 'mTLS needs both a certificate file and a key file');
    }
    // Read the files now, so that a bad path fails at start rather than at the first delivery.
    this.#tls = {
      ...(opts.caFile === undefined ? {} : { ca: readPem(opts.caFile, 'CA file') }),
      ...(opts.certFile === undefined ? {} : { cert: readPem(opts.certFile, 'client certificate') }),
      ...(opts.keyFile === undefined ? {} : { key: readPem(opts.keyFile, 'client key') }),
    };
    if (opts.collectorKey !== undefined) {
      let key: KeyObject;
      try {
        key = createPublicKey(opts.collectorKey);
      } catch {
        throw new AgentError('AGT_ERR_STATE', "the collector key pinned at enrollment is not a public key; enroll again");
      }
      this.#pinned = { key, fingerprint: keyFingerprint(key) };
    }
  }

  /** True when answers must prove they come from the pinned collector key. */
  get pinned(): boolean {
    return this.#pinned !== undefined;
  }

  /**
   * Asks the collector to prove itself (GET /v1/hello, signed over a fresh nonce). The agent does
   * this before it sends results: nothing it observed goes to a server that has not proved it holds
   * the key pinned at enrollment.
   */
  async hello(signal?: AbortSignal): Promise<void> {
    const res = await this.send('GET', '/v1/hello', undefined, {}, signal);
    if (res.status !== 200) throw new AgentError('AGT_ERR_COLLECTOR_UNREACHABLE', `${this.base.origin} answered ${describeError(res)} to /v1/hello`);
  }

  async #agent(): Promise<Dispatcher> {
    if (this.#dispatcher !== undefined) return this.#dispatcher;
    const { Agent } = await loadUndici();
    const keepAlive = this.#opts.keepAliveTimeoutMs ?? DEFAULT_KEEP_ALIVE_MS;
    this.#dispatcher = new Agent({
      keepAliveTimeout: keepAlive,
      keepAliveMaxTimeout: keepAlive,
      connections: 1,
      maxResponseSize: MAX_RESPONSE_BYTES,
      connect: { ...this.#tls, timeout: this.#opts.timeoutMs ?? 30_000 },
    });
    return this.#dispatcher;
  }

  async send(
    method: 'GET' | 'POST',
    pathname: string,
    body?: Buffer,
    headers: Record<string, string> = {},
    signal?: AbortSignal,
  ): Promise<HttpResponse> {
    const url = new URL(pathname, this.base);
    if (this.#closed) throw new AgentError('AGT_ERR_COLLECTOR_UNREACHABLE', `the client for ${url.origin} is closed`);
    const timeoutMs = this.#opts.timeoutMs ?? 30_000;
    // Outside the try: undici failing to load is a broken install, not an unreachable collector.
    const { request } = await loadUndici();
    // The timeouts above are per phase: a server that drips a byte now and then would meet each
    // of them forever. The whole exchange gets twice the timeout, then it is given up.
    const overallMs = 2 * timeoutMs;
    const deadline = AbortSignal.timeout(overallMs);
    const stop = signal === undefined ? deadline : AbortSignal.any([deadline, signal]);
    const target = `${url.pathname}${url.search}`;
    // Every request carries a fresh nonce; a pinned client refuses an answer not signed over it.
    const nonce = randomBytes(32).toString('base64url');
    let answer: HttpResponse;
    const { onWait } = this.#opts;
    const notice = onWait === undefined ? undefined : setTimeout(() => onWait({ method, url, maxMs: overallMs }), this.#opts.waitNoticeMs ?? 1000);
    notice?.unref();
    try {
      const res = await request.call(await this.#agent(), {
        origin: url.origin,
        path: target,
        method,
        body,
        headers: { ...headers, [NONCE_HEADER]: nonce },
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
        signal: stop,
      });
      const chunks: Buffer[] = [];
      for await (const chunk of res.body) chunks.push(chunk as Buffer);
      answer = { status: res.statusCode, body: Buffer.concat(chunks), headers: res.headers };
    } catch (err) {
      const why = deadline.aborted ? `no complete answer within ${overallMs / 1000} s` : (err as Error).message;
      throw new AgentError('AGT_ERR_COLLECTOR_UNREACHABLE', `cannot reach ${url.origin}: ${why}`, { cause: err });
    } finally {
      clearTimeout(notice);
    }
    const signature = answer.headers[PROOF_HEADER];
    const binding = { method, target, nonce, requestSha256: sha256Hex(body ?? Buffer.alloc(0)), status: answer.status, bodySha256: sha256Hex(answer.body) };
    answer.proof = { binding, signature: typeof signature === 'string' ? signature : undefined };
    if (this.#pinned !== undefined) {
      const proof = answer.proof.signature;
      if (proof === undefined || !verifyAnswer(binding, proof, this.#pinned.key)) {
        const what = typeof proof === 'string' ? 'an answer whose signature does not verify' : `an unsigned answer (HTTP ${answer.status})`;
        throw new AgentError(
          'AGT_ERR_COLLECTOR_UNVERIFIED',
          `${url.origin} gave ${what}: it is not the collector this agent enrolled with (key ${this.#pinned.fingerprint.slice(0, 16)}…), or one too old to sign its answers; the answer is ignored`,
          { cause: { status: answer.status } },
        );
      }
    }
    return answer;
  }

  /** Closes idle connections; later sends fail. */
  async close(): Promise<void> {
    this.#closed = true;
    const d = this.#dispatcher;
    this.#dispatcher = undefined;
    if (d !== undefined) await d.close();
  }

  /** Aborts whatever is in flight (shutdown with a deadline). */
  async destroy(): Promise<void> {
    this.#closed = true;
    const d = this.#dispatcher;
    this.#dispatcher = undefined;
    if (d !== undefined) await d.destroy();
  }
}

/**
 * The client for an enrolled agent: to its collector (or the URL its config names instead), with
 * the collector key it pinned at enrollment, so that every answer must prove it is that collector's,
 * and the CA file it enrolled with unless the config names another.
 */
export function enrolledClient(identity: { collectorUrl: string; collectorPublicKey: string; caFile?: string }, opts: HttpOptions = {}, url?: string): CollectorClient {
  const caFile = opts.caFile ?? identity.caFile;
  return new CollectorClient(url ?? identity.collectorUrl, { ...opts, ...(caFile === undefined ? {} : { caFile }), collectorKey: identity.collectorPublicKey });
}

/** The HTTP status of an answer refused as unverified (AGT_ERR_COLLECTOR_UNVERIFIED), or null. */
export function unverifiedStatus(err: unknown): number | null {
  if (!isAgentError(err) || err.code !== 'AGT_ERR_COLLECTOR_UNVERIFIED') return null;
  const status = (err.cause as { status?: unknown } | undefined)?.status;
  return typeof status === 'number' ? status : null;
}

/** The collector's `{ error: { code, message } }`, or a summary when the body is something else. */
export function describeError(res: HttpResponse): string {
  const e = errorOf(res);
  return `${e.code}: ${e.message}`;
}

export function errorOf(res: HttpResponse): { code: string; message: string } {
  const parsed = errorBodySchema.safeParse(jsonBody(res));
  return parsed.success ? { code: printable(parsed.data.error.code, 64), message: printable(parsed.data.error.message, 500) } : { code: `HTTP_${res.status}`, message: `HTTP ${res.status}` };
}

/**
 * Text from the server made safe for a terminal and a log line: control characters (ESC, OSC 52,
 * CR, newlines) are shown escaped, and the length is capped. A hostile server writes nothing raw.
 */
export function printable(text: string, max: number): string {
  const safe = escapeControls(text);
  return safe.length > max ? `${safe.slice(0, max)}…` : safe;
}

/** The body parsed as JSON, or undefined when it is not JSON: for a schema to refuse. */
export function jsonBody(res: Pick<HttpResponse, 'body'>): unknown {
  try {
    return JSON.parse(res.body.toString('utf8'));
  } catch {
    return undefined;
  }
}

/** Retry-After (RFC 9110 §10.2.3): delay-seconds or an HTTP-date, as milliseconds from `now`. */
export function retryAfterMs(res: Pick<HttpResponse, 'headers'>, now: Date = new Date()): number | null {
  const raw = res.headers['retry-after'];
  const value = (Array.isArray(raw) ? raw[0] : raw)?.trim();
  if (value === undefined || value === '') return null;
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  const at = Date.parse(value);
  if (Number.isNaN(at)) return null;
  return Math.max(0, at - now.getTime());
}
