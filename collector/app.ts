// The collector's HTTP app, built apart from the server that listens (tests call buildApp).
// Plain node:http rather than a framework: ingest must see the exact bytes received, and the
// surface is a handful of routes, so a router of our own costs less than a framework's body parsing.
import { createHash, timingSafeEqual, type KeyObject } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { handleAdmin, type AdminDeps } from './admin.js';
import { signedAgent, type AgentAuthDeps } from './agent-auth.js';
import { NONCE_HEADER, NONCE_RE, PROOF_HEADER, RESULTS_CONTENT_TYPES, sha256Hex, signAnswer, type IngestOutcome, type Policy } from './contract.js';
import { enroll, type EnrollDeps } from './enroll.js';
import { handleAudit, type AuditHttpDeps } from './audit/http.js';
import { handleLog, type LogHttpDeps } from './log/http.js';
import { CollectorError, isCollectorError } from './errors.js';
import { MAX_BATCH_LINES, type Ingestor } from './ingest.js';
import type { Metrics } from './metrics.js';
import { ROTATE_BODY_LIMIT_BYTES, rotateKey, type RotateDeps } from './rotate.js';
import type { EvidenceStore } from './store.js';

export const DEFAULT_BODY_LIMIT_BYTES = 1024 * 1024;

export interface AppDeps {
  store: EvidenceStore;
  ingestor: Ingestor;
  metrics: Metrics;
  enroll: EnrollDeps;
  rotate: RotateDeps;
  admin: AdminDeps;
  /** The effective policy for an agent (its vendor's), or the defaults for an unknown one. */
  policyFor: (agentId: string | null) => Promise<Policy>;
  log: Logger;
  bodyLimitBytes?: number;
  /** False until the state is rebuilt from the store. */
  started: () => boolean;
  /** Why ingest is refused (a failed store preflight), or null. */
  ingestRefused?: () => string | null;
  /** Verifies agent-signed requests; absent, the policy answers the defaults to everyone. */
  agentAuth?: AgentAuthDeps;
  /** The transparency logs' HTTP side; absent, /v1/log/ is not served. */
  logHttp?: LogHttpDeps;
  /** Audit bundles for auditors; absent, /v1/audit/ is not served. */
  audit?: AuditHttpDeps;
  /** With it, `/metrics` answers only `Authorization: Bearer <this>`. */
  metricsToken?: string;
  /** The collector's key: it signs every answer to a request that carries a nonce (agents pin it). */
  answerKey?: KeyObject;
}

export type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** The SHA-256 of each request body read in full: what a signed answer binds the request to. */
const requestDigests = new WeakMap<IncomingMessage, string>();
const EMPTY_SHA256 = sha256Hex(Buffer.alloc(0));

/**
 * Headers proving an answer is this collector's: its signature over the request, the agent's nonce
 * and the answer (contract.ts collectorAnswerMessage). Only for a request that sent a nonce, and
 * only when the whole request body was read: an answer to a body cut short is not signed, and the
 * agent keeps what it sent.
 */
function proofHeaders(res: ServerResponse, key: KeyObject | undefined, status: number, bytes: Buffer): Record<string, string> {
  const req = res.req as IncomingMessage | undefined;
  const nonce = req?.headers[NONCE_HEADER];
  if (key === undefined || req === undefined || typeof nonce !== 'string' || !NONCE_RE.test(nonce)) return {};
  const requestSha256 = requestDigests.get(req) ?? (req.method === 'GET' || req.method === 'HEAD' ? EMPTY_SHA256 : undefined);
  if (requestSha256 === undefined) return {};
  const binding = { method: req.method ?? 'GET', target: req.url ?? '/', nonce, requestSha256, status, bodySha256: sha256Hex(bytes) };
  return { [PROOF_HEADER]: signAnswer(binding, key) };
}

function send(res: ServerResponse, status: number, body: unknown, contentType = 'application/json', key?: KeyObject): void {
  const text = typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body);
  const bytes = Buffer.isBuffer(text) ? text : Buffer.from(text, 'utf8');
  res.writeHead(status, { 'content-type': contentType, 'cache-control': 'no-store', ...proofHeaders(res, key, status, bytes) });
  res.end(bytes);
}

async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (Number.isFinite(declared) && declared > limit) throw new CollectorError('COL_ERR_TOO_LARGE');
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of req) {
      size += (chunk as Buffer).length;
      if (size > limit) throw new CollectorError('COL_ERR_TOO_LARGE');
      chunks.push(chunk as Buffer);
    }
  } catch (err) {
    if (isCollectorError(err)) throw err;
    // The client hung up before sending all it announced: a truncated body, not a server fault.
    throw new CollectorError('COL_ERR_MALFORMED', 'the request body ended early');
  }
  const body = Buffer.concat(chunks);
  // Only an answer to a nonce is signed, and only then is the body's digest needed.
  if (req.headers[NONCE_HEADER] !== undefined) requestDigests.set(req, sha256Hex(body));
  return body;
}

/** `/metrics` behind a bearer token: compared in constant time, and never logged. */
function requireMetricsToken(expected: string, authorization: string | undefined): void {
  const given = /^Bearer (\S+)$/.exec(authorization ?? '')?.[1];
  if (given === undefined) throw new CollectorError('COL_ERR_UNAUTHORIZED', '/metrics needs a bearer token (Authorization: Bearer …; Prometheus: authorization.credentials_file)');
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  if (!timingSafeEqual(a, b)) throw new CollectorError('COL_ERR_UNAUTHORIZED', 'the bearer token given for /metrics was not accepted');
}

function mediaType(req: IncomingMessage): string {
  return (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
}

export function buildApp(deps: AppDeps): Handler {
  const limit = deps.bodyLimitBytes ?? DEFAULT_BODY_LIMIT_BYTES;
  const log = deps.log.child({ component: 'http' });
  const reply = (res: ServerResponse, status: number, body: unknown, contentType?: string): void => send(res, status, body, contentType, deps.answerKey);
  const replyError = (res: ServerResponse, err: CollectorError): void => reply(res, err.status, err.toBody());

  /** Results and key rotations wait for the rebuilt state, and for a store that passed its preflight. */
  function assertWritable(): void {
    if (!deps.started()) throw new CollectorError('COL_ERR_STORE_UNAVAILABLE', 'the collector is starting');
    const refused = deps.ingestRefused?.() ?? null;
    if (refused !== null) throw new CollectorError('COL_ERR_STORE_UNAVAILABLE', refused);
  }

  async function results(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let body: Buffer;
    let type: string;
    try {
      type = mediaType(req);
      if (type !== RESULTS_CONTENT_TYPES.single && type !== RESULTS_CONTENT_TYPES.batch) {
        throw new CollectorError('COL_ERR_UNSUPPORTED_MEDIA_TYPE', `send ${RESULTS_CONTENT_TYPES.single} or ${RESULTS_CONTENT_TYPES.batch}`);
      }
      body = await readBody(req, limit);
    } catch (err) {
      if (isCollectorError(err)) {
        deps.metrics.envelopes.inc({ outcome: 'rejected' });
        deps.metrics.rejected.inc({ reason: err.reason });
      }
      throw err;
    }
    const source = req.socket.remoteAddress ?? 'unknown';
    if (type === RESULTS_CONTENT_TYPES.single) {
      reply(res, 200, { results: [await deps.ingestor.ingest(body, source)] });
      return;
    }
    // A batch: one envelope per line, in order. A rejected line does not stop the others, up to a
    // few (ingest.ts); a store failure or the rate limit fails the whole request, and the agent
    // sends it again.
    const lines = splitLines(body, MAX_BATCH_LINES + 1);
    if (lines.length > MAX_BATCH_LINES) {
      deps.metrics.envelopes.inc({ outcome: 'rejected' });
      deps.metrics.rejected.inc({ reason: 'too_large' });
      throw new CollectorError('COL_ERR_TOO_LARGE', `a batch holds at most ${MAX_BATCH_LINES} envelopes`);
    }
    const results = await deps.ingestor.ingestMany(lines, source);
    const outcomes: IngestOutcome[] = [];
    for (const r of results) {
      if (!isCollectorError(r)) outcomes.push(r);
      else if (r.status >= 500 || r.code === 'COL_ERR_RATE_LIMITED') throw r;
      else outcomes.push({ seq: null, outcome: 'rejected', error: { code: r.code, message: r.message } });
    }
    reply(res, 200, { results: outcomes });
  }

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://collector');
    const key = `${req.method} ${url.pathname}`;
    switch (key) {
      case 'GET /healthz':
        return reply(res, 200, { status: 'ok' });
      case 'GET /readyz': {
        if (!deps.started()) return reply(res, 503, { status: 'starting' });
        const refused = deps.ingestRefused?.() ?? null;
        if (refused !== null) return reply(res, 503, { status: refused });
        try {
          await deps.store.ping();
          return reply(res, 200, { status: 'ready', store: deps.store.description });
        } catch {
          return reply(res, 503, { status: 'store unavailable' });
        }
      }
      case 'GET /metrics': {
        if (deps.metricsToken !== undefined) requireMetricsToken(deps.metricsToken, req.headers.authorization);
        // Streamed: at 100,000 hosts the exposition is over 100 MB, never held as one string.
        res.writeHead(200, { 'content-type': deps.metrics.registry.contentType, 'cache-control': 'no-store' });
        for await (const chunk of deps.metrics.chunks()) {
          if (res.destroyed) return;
          if (!res.write(chunk)) {
            // Wait for the client to read, or to go away.
            await new Promise<void>((resolve) => {
              const done = () => {
                res.off('drain', done);
                res.off('close', done);
                resolve();
              };
              res.once('drain', done);
              res.once('close', done);
            });
          }
        }
        res.end();
        return;
      }
      case 'GET /v1/hello':
        // An agent asks this before it sends results: the signed answer to its nonce proves that
        // the collector it enrolled with is the one listening.
        return reply(res, 200, { service: 'vcm-collector', collectorPublicKey: deps.enroll.collectorPublicKeyPem });
      case 'GET /v1/policy': {
        // Only a request the agent signed gets its vendor's policy; anyone else, the defaults.
        const authorization = req.headers.authorization;
        const agent = authorization === undefined || deps.agentAuth === undefined ? undefined : await signedAgent(deps.agentAuth, 'GET', `${url.pathname}${url.search}`, authorization);
        return reply(res, 200, await deps.policyFor(agent?.record.agentId ?? null));
      }
      case 'POST /v1/enroll': {
        const body = await readBody(req, 64 * 1024);
        try {
          const answer = await enroll(deps.enroll, body, req.headers.authorization);
          deps.metrics.enrollments.inc({ outcome: 'enrolled' });
          log.info({ agentId: answer.agentId, vendor: answer.vendor }, 'agent enrolled');
          return reply(res, 201, answer);
        } catch (err) {
          deps.metrics.enrollments.inc({ outcome: isCollectorError(err) ? err.reason : 'internal' });
          throw err;
        }
      }
      case 'POST /v1/keys/rotate': {
        assertWritable();
        try {
          if (mediaType(req) !== 'application/json') throw new CollectorError('COL_ERR_UNSUPPORTED_MEDIA_TYPE', 'send application/json');
          const answer = await rotateKey(deps.rotate, await readBody(req, ROTATE_BODY_LIMIT_BYTES));
          deps.metrics.keyRotations.inc({ outcome: answer.duplicate ? 'duplicate' : 'rotated' });
          if (!answer.duplicate) log.info({ agentId: answer.agentId, generation: answer.generation, keyId: answer.keyId, afterSeq: answer.afterSeq }, 'agent key rotated');
          return reply(res, 200, answer);
        } catch (err) {
          deps.metrics.keyRotations.inc({ outcome: isCollectorError(err) ? err.reason : 'internal' });
          throw err;
        }
      }
      case 'POST /v1/results': {
        assertWritable();
        const t0 = performance.now();
        try {
          await results(req, res);
          deps.metrics.ingestDuration.observe({ outcome: 'answered' }, (performance.now() - t0) / 1000);
        } catch (err) {
          deps.metrics.ingestDuration.observe({ outcome: 'refused' }, (performance.now() - t0) / 1000);
          throw err;
        }
        return;
      }
      default: {
        if (deps.audit !== undefined && (await handleAudit(deps.audit, req.method ?? 'GET', url, req.headers.authorization, res))) return;
        const logged = deps.logHttp === undefined ? null : await handleLog(deps.logHttp, req.method ?? 'GET', url, req.headers.authorization);
        if (logged !== null) return reply(res, logged.status, logged.body, logged.contentType);
        const answer = await handleAdmin(deps.admin, req.method ?? 'GET', url, req.headers.authorization, () => readBody(req, 1024 * 1024));
        if (answer !== null) return reply(res, answer.status, answer.body);
        const known = ['/healthz', '/readyz', '/metrics', '/v1/hello', '/v1/policy', '/v1/enroll', '/v1/results', '/v1/keys/rotate'];
        throw new CollectorError(known.includes(url.pathname) ? 'COL_ERR_METHOD' : 'COL_ERR_NOT_FOUND');
      }
    }
  }

  return (req, res) => {
    const started = performance.now();
    route(req, res)
      .catch((err: unknown) => {
        if (isCollectorError(err)) {
          if (err.status >= 500) log.error({ err, code: err.code }, 'request failed');
          else log.info({ code: err.code, path: req.url }, 'request rejected');
          if (err.code === 'COL_ERR_RATE_LIMITED' && !res.headersSent) res.setHeader('retry-after', '1');
          // Nothing more of a body over the limit is read: answer, then close the connection.
          if (err.code === 'COL_ERR_TOO_LARGE' && !res.headersSent) res.setHeader('connection', 'close');
          if (!res.headersSent) replyError(res, err);
        } else {
          log.error({ err }, 'unexpected error');
          if (!res.headersSent) replyError(res, new CollectorError('COL_ERR_INTERNAL'));
        }
        if (isCollectorError(err) && err.code === 'COL_ERR_TOO_LARGE') {
          // A lingering close. Node's server destroys a `connection: close` socket as soon as the
          // answer is flushed (destroySoon); with body bytes still unread that resets the
          // connection, and the client's system drops the 413 before the client reads it. So this
          // socket ends its side instead, reads and drops what the client still sends until the
          // client closes, for at most LINGER_MS or LINGER_BYTES, and then is destroyed, however
          // much body is still on its way. An answer sent earlier with keep-alive closes the same
          // way once it is finished.
          const socket = req.socket as (typeof req.socket & { destroySoon?: () => void }) | null;
          if (socket !== null) {
            lingerOnClose(socket);
            res.once('finish', () => socket.destroySoon?.());
          }
          req.resume();
          return;
        }
        // Drain what the client still sends so that it reads our answer instead of a reset.
        req.resume();
      })
      .finally(() => {
        log.debug({ method: req.method, path: req.url, status: res.statusCode, ms: performance.now() - started }, 'request');
      });
  };
}

/** How long, and how many bytes, the rest of a body over the limit is read and dropped after the 413. */
const LINGER_MS = 2000;
const LINGER_BYTES = 16 << 20;

/** When Node's server closes `socket` after its answer: end it, drop what still comes, destroy it once the client closes or the limits pass. */
function lingerOnClose(socket: Socket & { destroySoon?: () => void }): void {
  let closing = false;
  socket.destroySoon = () => {
    if (closing) return;
    closing = true;
    socket.end();
    let dropped = 0;
    const timer = setTimeout(() => socket.destroy(), LINGER_MS).unref();
    socket.on('data', (chunk: Buffer) => {
      dropped += chunk.length;
      if (dropped > LINGER_BYTES) socket.destroy();
    });
    socket.once('end', () => socket.destroy());
    socket.once('close', () => clearTimeout(timer));
    socket.resume();
  };
}

/** The non-empty lines of a body, at most `max` of them (the caller refuses a batch that has more). */
function splitLines(body: Buffer, max: number): Buffer[] {
  const lines: Buffer[] = [];
  let start = 0;
  while (start < body.length && lines.length < max) {
    let end = body.indexOf(0x0a, start);
    if (end === -1) end = body.length;
    if (end > start) lines.push(body.subarray(start, end));
    start = end + 1;
  }
  return lines;
}
