// Wires the collector together and listens. Configuration is validated once, then frozen.
import { createHash, createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import path from 'node:path';
import pino, { type Logger } from 'pino';
import * as z from 'zod';
import { settleTokenUses } from './admin.js';
import { buildApp, DEFAULT_BODY_LIMIT_BYTES } from './app.js';
import { AGENT_VERSION } from '../agent/version.js';
import { DEFAULT_CLOCK_SKEW_SECONDS, isLoopbackHost, type PolicyDocument } from './contract.js';
import { CollectorError } from './errors.js';
import { loadOrCreateIdentity } from './identity.js';
import { Ingestor } from './ingest.js';
import { createMetrics, type Metrics } from './metrics.js';
import { effectivePolicy, loadOrInitPolicy, readPolicyVersion, writeNextPolicy } from './policy.js';
import { LogSet } from './log/logs.js';
import { AgentRegistry } from './registry.js';
import { CollectorState } from './state.js';
import { FsEvidenceStore, type EvidenceStore } from './store.js';
import { DEFAULT_LISTEN } from './defaults.js';

/** The S3 SDK is loaded only when S3 is configured: the filesystem default never pays for it. */
async function s3Store(settings: unknown): Promise<EvidenceStore> {
  const { S3EvidenceStore, parseS3StoreConfig } = await import('./s3-store.js');
  return new S3EvidenceStore(parseS3StoreConfig(settings));
}


export const listenSchema = z.string().transform((value, ctx) => {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(value);
  const host = m?.[1] ?? m?.[2];
  const port = Number(m?.[3]);
  if (host === undefined || host === '' || !(port >= 0 && port <= 65535)) {
    ctx.addIssue({ code: 'custom', message: 'expected HOST:PORT, e.g. 127.0.0.1:8470 or [::1]:8470' });
    return z.NEVER;
  }
  return { host, port };
});

export const collectorConfigSchema = z
  .object({
    dataDir: z.string().min(1).default('./data'),
    listen: listenSchema.prefault(DEFAULT_LISTEN),
    /** PEM certificate and key: serve HTTPS. */
    tls: z.object({ certFile: z.string(), keyFile: z.string() }).strict().optional(),
    /** Plain HTTP beyond loopback only when the operator says so (TLS terminated in front). */
    allowPlainHttp: z.boolean().default(false),
    bodyLimitBytes: z.number().int().min(1024).default(DEFAULT_BODY_LIMIT_BYTES),
    clockSkewSeconds: z.number().int().min(0).default(DEFAULT_CLOCK_SKEW_SECONDS),
    /** Per-agent envelopes per second and burst; a backlog drains at this pace. */
    rateLimit: z.object({ perSecond: z.number().positive(), burst: z.number().int().min(1) }).strict().default({ perSecond: 20, burst: 500 }),
    /** 'non-passing' keeps per-host metric series only for hosts that are not passing. */
    perHostSeries: z.enum(['all', 'non-passing']).default('all'),
    /** How often a running collector looks for a policy version written by another process. */
    policyRefreshSeconds: z.number().int().min(1).default(30),
    /** How long a shutdown waits for requests in flight before closing their connections. */
    shutdownGraceSeconds: z.number().int().min(0).default(25),
    keyFile: z.string().optional(),
    /**
     * The collector's log origin: each vendor's transparency log is `<origin>/<vendor>`, the name
     * its checkpoints carry. Default: vcm-collector/<first 16 hex of the collector key's SHA-256>.
     */
    logOrigin: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._/:-]{0,190}$/, 'a log origin is a schema-less URL-like name, such as collector.example.com/vcm')
      .optional(),
    /** A request not received whole within this is answered 408 and closed. */
    requestTimeoutSeconds: z.number().int().min(1).max(600).default(30),
    /** Connections open at once; past it, new ones are closed at once (a socket each is memory). */
    maxConnections: z.number().int().min(16).max(1_000_000).default(8192),
    /** How often each grown vendor log gets a signed checkpoint. */
    checkpointIntervalSeconds: z.number().int().min(1).max(86_400).default(60),
    /** How often the stored tiles of every log are read back and compared with its entries. */
    logSelfCheckSeconds: z.number().int().min(1).max(7 * 86_400).default(3600),
    /**
     * A file holding the bearer token `/metrics` requires (Prometheus: `authorization:
     * credentials_file`). Absent, `/metrics` is open to whoever reaches the port.
     */
    metricsTokenFile: z.string().min(1).optional(),
    /** Evidence in S3 instead of the filesystem store (see collector/s3-store.ts for the settings). */
    s3: z.unknown().optional(),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  })
  .strict();
export type CollectorConfigInput = z.input<typeof collectorConfigSchema>;
export type CollectorConfig = Readonly<z.output<typeof collectorConfigSchema>>;


export function parseCollectorConfig(input: CollectorConfigInput): CollectorConfig {
  const parsed = collectorConfigSchema.safeParse(input);
  if (!parsed.success) {
    throw new CollectorError('COL_ERR_CONFIG', parsed.error.issues.map((i) => `${i.path.join('.') || 'config'}: ${i.message}`).join('; '));
  }
  if (parsed.data.tls === undefined && !isLoopbackHost(parsed.data.listen.host) && !parsed.data.allowPlainHttp) {
    throw new CollectorError(
      'COL_ERR_CONFIG',
      `refusing plain HTTP on ${parsed.data.listen.host}: give --tls-cert and --tls-key, listen on loopback, or pass --allow-plain-http when TLS is terminated in front`,
    );
  }
  return Object.freeze(parsed.data);
}

/** The `/metrics` bearer token from its file: one line, at least 16 characters, no spaces. */
function readMetricsToken(file: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new CollectorError('COL_ERR_CONFIG', `cannot read the metrics token file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const token = text.trim();
  if (!/^[\x21-\x7e]{16,4096}$/.test(token)) throw new CollectorError('COL_ERR_CONFIG', `the metrics token in ${file} must be one line of 16 or more printable characters without spaces (openssl rand -hex 32)`);
  return token;
}

/** The default log origin: stable for a collector key, and different for another collector's. */
export function defaultLogOrigin(publicKeyPem: string): string {
  return `vcm-collector/${createHash('sha256').update(publicKeyPem).digest('hex').slice(0, 16)}`;
}

export function createLogger(level: string): Logger {
  return pino({
    level,
    base: { service: 'vcm-collector' },
    redact: { paths: ['req.headers.authorization', 'token', '*.token', 'authorization'], censor: '[redacted]' },
  });
}

export interface RunningCollector {
  url: string;
  server: Server;
  store: EvidenceStore;
  metrics: Metrics;
  state: CollectorState;
  registry: AgentRegistry;
  logs: LogSet;
  policy: () => PolicyDocument;
  /** Stops taking requests, lets those in flight finish (their writes included), then closes. */
  close(): Promise<void>;
}

function answerStarting(res: ServerResponse): void {
  const body = JSON.stringify(new CollectorError('COL_ERR_STORE_UNAVAILABLE', 'the collector is starting').toBody());
  res.writeHead(503, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'retry-after': '1' });
  res.end(body);
}

/** The filesystem store with its journal, after replaying what a stopped collector left in it. */
async function openFsStore(dataDir: string, log: Logger): Promise<FsEvidenceStore> {
  const store = new FsEvidenceStore(dataDir, { journal: true });
  store.onMaterialise = (e) => {
    if (e.state === 'failing') log.warn({ err: e.err, key: e.key }, 'evidence file not made yet (it is durable in the journal); retrying until the disk takes it');
    else log.info({ key: e.key, attempts: e.attempts }, 'evidence file made after retries');
  };
  const { journal, replay } = await store.open();
  if (journal === 'held') log.warn('another live process owns the store journal; evidence is flushed per file');
  if (replay !== null && replay.segments > 0) {
    log.info({ segments: replay.segments, records: replay.records, created: replay.created, repaired: replay.repaired }, 'store journal replayed');
  }
  for (const p of replay?.problems ?? []) {
    // Both versions are kept: the stored file, and the journal segment renamed beside it.
    log.error({ segment: p.segment, key: p.key, problem: p.problem }, 'store journal holds evidence that disagrees with the store; kept for an operator');
  }
  return store;
}

export async function startCollector(
  config: CollectorConfig,
  opts: { log?: Logger; now?: () => Date; store?: EvidenceStore } = {},
): Promise<RunningCollector> {
  const log = opts.log ?? createLogger(config.logLevel);
  const now = opts.now ?? (() => new Date());
  const metricsToken = config.metricsTokenFile === undefined ? undefined : readMetricsToken(config.metricsTokenFile);
  // Bind before the store is made or opened: a collector that cannot listen (a taken port)
  // leaves no new store behind it. Requests in that moment are answered 503.
  let app: ((req: IncomingMessage, res: ServerResponse) => void) | undefined = undefined;
  // Requests in flight, so that a shutdown can wait for their writes to be acknowledged.
  let inFlight = 0;
  let drained: (() => void) | undefined;
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    inFlight++;
    res.once('close', () => {
      inFlight--;
      if (inFlight === 0) drained?.();
    });
    if (app === undefined) answerStarting(res);
    else app(req, res);
  };
  const serverOpts = { keepAliveTimeout: 65_000, requestTimeout: config.requestTimeoutSeconds * 1000, connectionsCheckingInterval: 1000, maxHeaderSize: 16 * 1024 };
  const server: Server =
    config.tls === undefined
      ? createHttpServer(serverOpts, handler)
      : createHttpsServer({ ...serverOpts, cert: readFileSync(config.tls.certFile), key: readFileSync(config.tls.keyFile) }, handler);
  server.maxConnections = config.maxConnections;
  // Requests Node's parser refuses (a body cut short, a malformed head) get our error shape too.
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (!socket.writable || (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent === true) {
      socket.destroy();
      return;
    }
    // Node names the cause: headers over the limit (431), a request not received in time (408).
    const error =
      err.code === 'HPE_HEADER_OVERFLOW'
        ? new CollectorError('COL_ERR_HEADERS_TOO_LARGE')
        : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? new CollectorError('COL_ERR_REQUEST_TIMEOUT')
          : new CollectorError('COL_ERR_MALFORMED', 'the request could not be read');
    const body = JSON.stringify(error.toBody());
    const reason = { 431: 'Request Header Fields Too Large', 408: 'Request Timeout' }[error.status] ?? 'Bad Request';
    socket.end(`HTTP/1.1 ${error.status} ${reason}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
    log.info({ code: err.code }, 'request could not be read');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.listen.port, config.listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const unlessStarted = <T>(p: Promise<T>): Promise<T> =>
    p.catch(async (err: unknown) => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      throw err;
    });
  const store: EvidenceStore = opts.store ?? (await unlessStarted(config.s3 === undefined ? openFsStore(config.dataDir, log) : s3Store(config.s3)));
  await unlessStarted(store.ping());
  // A store that fails its preflight (S3 without versioning or Object Lock when lock is required)
  // serves reads, but ingest is refused until it is fixed: evidence must not land unprotected.
  const preflight = (await store.preflight?.()) ?? null;
  if (preflight !== null && !preflight.ok) log.error({ problems: preflight.problems }, 'evidence store preflight failed; ingest is refused');
  const writable = preflight === null || preflight.ok;
  let policy: PolicyDocument = await unlessStarted(loadOrInitPolicy(store, now(), { write: writable }));
  const identity = await unlessStarted(loadOrCreateIdentity(config.keyFile ?? path.join(config.dataDir, 'secrets', 'collector-ed25519.pem')));

  const registry = new AgentRegistry(store);
  const state = new CollectorState();
  const metrics = createMetrics({ state, registry, policy: () => policy, now, pendingFiles: () => store.pendingFiles?.() ?? 0 }, { perHostSeries: config.perHostSeries });
  metrics.preflightOk.set(preflight === null || preflight.ok ? 1 : 0);
  const logs = new LogSet({
    store,
    key: identity.privateKey,
    origin: config.logOrigin ?? defaultLogOrigin(identity.publicKeyPem),
    log: log.child({ component: 'log' }),
    registry: metrics.registry,
  });
  registry.onKeyEvent = (vendor, entry) => logs.append(vendor, [entry]);
  const ingestor = new Ingestor({
    store,
    registry,
    state,
    metrics,
    policy: () => policy,
    now,
    log: log.child({ component: 'ingest' }),
    clockSkewSeconds: config.clockSkewSeconds,
    rateLimit: config.rateLimit,
    logs,
  });
  const refreshPolicy = async () => {
    const latest = await loadOrInitPolicy(store, now(), { write: writable });
    if (latest.version !== policy.version) {
      policy = latest;
      log.info({ policyVersion: policy.version }, 'policy changed');
    }
  };
  let started = false;
  app = buildApp({
    store,
    ingestor,
    metrics,
    log,
    bodyLimitBytes: config.bodyLimitBytes,
    started: () => started,
    logHttp: { logs, store, registry, now, clockSkewSeconds: config.clockSkewSeconds },
    audit: {
      logs,
      store,
      collector: { privateKey: identity.privateKey, publicKey: createPublicKey(identity.privateKey) },
      generator: `vcm-collector ${AGENT_VERSION}`,
      now,
      onError: (err) => log.error({ err }, 'audit export failed'),
    },
    agentAuth: { registry, now, clockSkewSeconds: config.clockSkewSeconds },
    answerKey: identity.privateKey,
    ...(metricsToken === undefined ? {} : { metricsToken }),
    ingestRefused: () => (preflight === null || preflight.ok ? null : `evidence store preflight failed: ${preflight.problems.map((p) => p.message).join('; ')}`),
    policyFor: async (agentId) => {
      const agent = agentId === null ? undefined : await registry.get(agentId);
      return effectivePolicy(policy, agent?.record.vendor ?? null);
    },
    rotate: { registry, state, now, clockSkewSeconds: config.clockSkewSeconds, exclusive: (agentId, work) => ingestor.exclusive(agentId, work) },
    enroll: { store, registry, policyFor: (vendor) => effectivePolicy(policy, vendor), collectorPublicKeyPem: identity.publicKeyPem, now },
    admin: {
      store,
      registry,
      state,
      now,
      policy: () => policy,
      readPolicy: (version) => readPolicyVersion(store, version),
      setPolicy: async (raw) => {
        const doc = await writeNextPolicy(store, raw, now());
        await refreshPolicy();
        return doc;
      },
    },
  });

  // Listen first so that /healthz answers while the state is rebuilt; ingest waits for it.
  await registry.load();
  // Detached while the state is rebuilt: the metrics would render an agent again for each result
  // recorded; the first scrape renders each agent once instead.
  const onChange = state.onChange;
  state.onChange = null;
  try {
    await state.rebuild(store, policy, (id) => registry.loaded(id)?.record.vendor);
  } finally {
    state.onChange = onChange;
  }
  const reconciled = await logs.start({ agents: registry.all(), state, now: now() });
  if (reconciled.migrated > 0) log.info({ entries: reconciled.migrated }, 'stored evidence entered in the transparency logs');
  started = true;
  const checkpointTimer = setInterval(() => {
    void logs.checkpointAll(now());
  }, config.checkpointIntervalSeconds * 1000);
  checkpointTimer.unref();
  const selfCheckTimer = setInterval(() => {
    void logs.selfCheck();
  }, config.logSelfCheckSeconds * 1000);
  selfCheckTimer.unref();
  const timer = setInterval(() => {
    refreshPolicy().catch((err: unknown) => log.warn({ err }, 'policy refresh failed'));
  }, config.policyRefreshSeconds * 1000);
  timer.unref();

  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : config.listen.port;
  const host = config.listen.host.includes(':') ? `[${config.listen.host}]` : config.listen.host;
  const url = `${config.tls === undefined ? 'http' : 'https'}://${host}:${port}`;
  log.info({ url, store: store.description, agents: registry.all().length, policyVersion: policy.version }, 'collector ready');

  let closing: Promise<void> | undefined;
  return {
    url,
    server,
    store,
    metrics,
    state,
    registry,
    logs,
    policy: () => policy,
    close: () =>
      (closing ??= (async () => {
        clearInterval(timer);
        clearInterval(checkpointTimer);
        clearInterval(selfCheckTimer);
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        if (inFlight > 0) {
          await Promise.race([
            new Promise<void>((resolve) => (drained = resolve)),
            new Promise<void>((resolve) => setTimeout(resolve, config.shutdownGraceSeconds * 1000).unref()),
          ]);
        }
        server.closeAllConnections();
        await closed;
        // What the logs took since their last checkpoint gets one before the store closes.
        await logs.checkpointAll(now());
        await settleTokenUses(store);
        await store.close?.();
        log.info('collector stopped');
      })()),
  };
}
