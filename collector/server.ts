// Wires the collector together and listens. Configuration is validated once, then frozen.
import { createServer, type Server } from 'node:http';
import { isIP } from 'node:net';
import path from 'node:path';
import pino, { type Logger } from 'pino';
import { z } from 'zod';
import { buildApp, DEFAULT_BODY_LIMIT_BYTES } from './app.js';
import { DEFAULT_CLOCK_SKEW_SECONDS, type Policy } from './contract.js';
import { CollectorError } from './errors.js';
import { loadOrCreateIdentity } from './identity.js';
import { Ingestor } from './ingest.js';
import { createMetrics, type Metrics } from './metrics.js';
import { loadOrInitPolicy } from './policy.js';
import { AgentRegistry } from './registry.js';
import { CollectorState } from './state.js';
import { FsEvidenceStore, type EvidenceStore } from './store.js';

export const DEFAULT_LISTEN = '127.0.0.1:8470';

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
    /** Plain HTTP beyond loopback only when the operator says so (TLS terminated in front). */
    allowPlainHttp: z.boolean().default(false),
    bodyLimitBytes: z.number().int().min(1024).default(DEFAULT_BODY_LIMIT_BYTES),
    clockSkewSeconds: z.number().int().min(0).default(DEFAULT_CLOCK_SKEW_SECONDS),
    keyFile: z.string().optional(),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  })
  .strict();
export type CollectorConfigInput = z.input<typeof collectorConfigSchema>;
export type CollectorConfig = Readonly<z.output<typeof collectorConfigSchema>>;

export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1';
}

export function parseCollectorConfig(input: CollectorConfigInput): CollectorConfig {
  const parsed = collectorConfigSchema.safeParse(input);
  if (!parsed.success) {
    throw new CollectorError('COL_ERR_CONFIG', parsed.error.issues.map((i) => `${i.path.join('.') || 'config'}: ${i.message}`).join('; '));
  }
  if (!isLoopback(parsed.data.listen.host) && !parsed.data.allowPlainHttp) {
    throw new CollectorError(
      'COL_ERR_CONFIG',
      `refusing plain HTTP on ${parsed.data.listen.host}: listen on loopback, or pass --allow-plain-http when TLS is terminated in front`,
    );
  }
  return Object.freeze(parsed.data);
}

export function createLogger(level: string): Logger {
  return pino({
    level,
    base: { service: 'vcm-collector' },
    redact: { paths: ['req.headers.authorization', 'token', '*.token'], censor: '[redacted]' },
  });
}

export interface RunningCollector {
  url: string;
  server: Server;
  store: EvidenceStore;
  metrics: Metrics;
  state: CollectorState;
  registry: AgentRegistry;
  close(): Promise<void>;
}

export async function startCollector(config: CollectorConfig, opts: { log?: Logger; now?: () => Date } = {}): Promise<RunningCollector> {
  const log = opts.log ?? createLogger(config.logLevel);
  const now = opts.now ?? (() => new Date());
  const store = new FsEvidenceStore(config.dataDir);
  await store.ping();
  const identity = await loadOrCreateIdentity(config.keyFile ?? path.join(config.dataDir, 'secrets', 'collector-ed25519.pem'));
  let policy: Policy = await loadOrInitPolicy(store, now());
  const registry = new AgentRegistry(store);
  const state = new CollectorState();
  const metrics = createMetrics({ state, registry, policy: () => policy, now });
  const ingestor = new Ingestor({ store, registry, state, metrics, policy: () => policy, now, log: log.child({ component: 'ingest' }), clockSkewSeconds: config.clockSkewSeconds });
  let started = false;
  const handler = buildApp({
    store,
    ingestor,
    metrics,
    policy: () => policy,
    log,
    bodyLimitBytes: config.bodyLimitBytes,
    started: () => started,
    enroll: { store, registry, policy: () => policy, collectorPublicKeyPem: identity.publicKeyPem, now },
  });
  const server = createServer({ keepAliveTimeout: 65_000, requestTimeout: 30_000 }, handler);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.listen.port, config.listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  // Listen first so that /healthz answers while the state is rebuilt; ingest waits for it.
  await registry.load();
  await state.rebuild(store, policy);
  policy = await loadOrInitPolicy(store, now());
  started = true;
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : config.listen.port;
  const host = config.listen.host.includes(':') ? `[${config.listen.host}]` : config.listen.host;
  const url = `http://${host}:${port}`;
  log.info({ url, store: store.description, agents: registry.all().length, policyVersion: policy.version }, 'collector ready');
  return {
    url,
    server,
    store,
    metrics,
    state,
    registry,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}
