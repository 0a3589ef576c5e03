// The agent's local configuration: a JSON file, then VCM_* environment overrides, then command-line
// flags; validated once by a strict schema and frozen. It holds only what is local to the host.
// Which checks run, how often, and their settings come from the collector's policy instead.
// Secrets never live here: Okta credentials are a reference (a file path or the name of an
// environment variable), resolved when used and never printed.
import { accessSync, constants as fsConstants, readFileSync } from 'node:fs';
import * as z from 'zod';
import { CheckError } from '../checks/errors.js';
import { orgUrlSchema } from '../checks/sso_coverage/org-url.js';
import type { IdentityProviderAccess } from '../checks/types.js';
import { AgentError } from './errors.js';
import { defaultStateDir } from './state.js';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
/** json: pino's lines (the daemon's default); text: one readable line each (the other commands' default). */
export const LOG_FORMATS = ['json', 'text'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export function defaultConfigFile(platform: NodeJS.Platform = process.platform): string {
  if (platform === 'win32') return 'C:\\ProgramData\\vcm-agent\\config.json';
  if (platform === 'darwin') return '/Library/Application Support/vcm-agent/config.json';
  return '/etc/vcm-agent/config.json';
}

const seconds = (min: number, max: number) => z.number().min(min).max(max);
const int = (min: number, max: number) => z.number().int().min(min).max(max);
const path = z.string().min(1).max(4096);

const envVar = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name');

/**
 * Okta access for sso_coverage and the identity side of credential_age: an API token, or an OAuth
 * service app's private key (private-key JWT with read-only scopes). Both by reference only.
 */
const oktaSchema = z
  .object({
    /** e.g. https://acme.okta.com (a trailing slash is dropped; plain http only on loopback) */
    orgUrl: orgUrlSchema,
    /** A file holding the API token (mode 0600, readable by the agent). */
    tokenFile: path.optional(),
    /** The name of an environment variable holding the API token. */
    tokenEnv: envVar.optional(),
    /** The service app's client id (with privateKeyFile or privateKeyEnv). */
    clientId: z.string().min(1).max(200).optional(),
    /** A file holding the service app's private key (PEM or JWK JSON). */
    privateKeyFile: path.optional(),
    /** The name of an environment variable holding the private key. */
    privateKeyEnv: envVar.optional(),
    /** The key's kid, when the app has several keys. */
    keyId: z.string().min(1).max(200).optional(),
    /** Scopes to request (read-only); default okta.users.read, okta.groups.read, okta.apps.read, okta.logs.read. */
    scopes: z.array(z.string().regex(/^okta\.[A-Za-z]+\.read$/, 'read-only scopes only (okta.<resource>.read)')).min(1).optional(),
    /** Staff roster files (under --root) that a policy's sso_coverage roster.file may name; none by default. */
    rosterFiles: z.array(path).max(64).optional(),
  })
  .strict()
  .superRefine((o, ctx) => {
    const refs = [o.tokenFile, o.tokenEnv, o.privateKeyFile, o.privateKeyEnv].filter((x) => x !== undefined);
    if (refs.length !== 1) {
      ctx.addIssue({ code: 'custom', message: 'give exactly one of tokenFile, tokenEnv, privateKeyFile or privateKeyEnv (a reference to the secret, never the secret)' });
      return;
    }
    const privateKey = o.privateKeyFile !== undefined || o.privateKeyEnv !== undefined;
    if (privateKey && o.clientId === undefined) ctx.addIssue({ code: 'custom', message: 'a private key needs the service app\'s clientId' });
    if (!privateKey && (o.clientId !== undefined || o.keyId !== undefined || o.scopes !== undefined)) {
      ctx.addIssue({ code: 'custom', message: 'clientId, keyId and scopes go with a private key, not with an API token' });
    }
  });
export type OktaAccessConfig = z.output<typeof oktaSchema>;

export const agentConfigSchema = z
  .object({
    /** Where results go. Default: the URL the agent enrolled with. */
    collectorUrl: z.url({ protocol: /^https?$/ }).optional(),
    /** PEM CA bundle to pin for an https collector. */
    caFile: path.optional(),
    /** mTLS client certificate and key (PEM), when the collector asks for one. */
    tls: z.object({ certFile: path, keyFile: path }).strict().optional(),
    stateDir: path.default(() => defaultStateDir()),
    /** Host root prefix: read /proc, /sys and /etc under it (a container mounts the host at /host). */
    root: path.default('/'),
    logLevel: z.enum(LOG_LEVELS).default('info'),
    /** Unset: json for the daemon, text for the one-shot commands. */
    logFormat: z.enum(LOG_FORMATS).optional(),
    okta: oktaSchema.optional(),
    spool: z
      .object({
        maxCount: int(4, 10_000_000).default(10_000),
        maxBytes: int(64 * 1024, 64 * 1024 ** 3).default(64 * 1024 * 1024),
        quarantineMaxCount: int(1, 1_000_000).default(1000),
      })
      .strict()
      .prefault({}),
    delivery: z
      .object({
        batchMaxCount: int(1, 1000).default(100),
        /** The collector refuses bodies over 1 MiB by default. */
        batchMaxBytes: int(4096, 16 * 1024 * 1024).default(512 * 1024),
        timeoutSeconds: seconds(1, 600).default(30),
        /** Idle connections close after this; below the collector's 65 s. */
        keepAliveSeconds: seconds(1, 60).default(30),
        backoffInitialSeconds: seconds(0.1, 600).default(1),
        backoffMaxSeconds: seconds(1, 86_400).default(300),
        /** On SIGTERM, one last delivery pass gets this long. */
        shutdownFlushSeconds: seconds(0, 60).default(5),
      })
      .strict()
      .prefault({}),
    schedule: z
      .object({
        /** Random delay before each run, on top of the stable per-agent offset. */
        jitterSeconds: seconds(0, 3600).default(30),
        /** How often the policy is fetched from the collector. */
        policyRefreshSeconds: int(10, 86_400).default(300),
        /** Run every enabled check at this interval instead of the policy's (testing, troubleshooting). */
        intervalSeconds: int(1, 7 * 86_400).optional(),
      })
      .strict()
      .prefault({}),
    /**
     * Where probes may connect (the vpn check's egress probe): a policy names a probe URL, and the
     * agent fetches it only when it starts with one of these. None by default: no probe runs.
     */
    probes: z
      .object({
        allowedUrls: z.array(z.url({ protocol: /^https?$/ })).max(64).default([]),
        /** Let the allowed probes reach private, loopback and link-local addresses. */
        allowPrivateTargets: z.boolean().default(false),
      })
      .strict()
      .prefault({}),
    watchdog: z
      .object({
        enabled: z.boolean().default(true),
        /** Resident memory budget; exceeded on two samples in a row → restart. */
        rssMaxMb: int(16, 65_536).default(200),
        /** CPU budget, as a percentage of one core averaged over the window → restart. */
        cpuMaxPercent: int(1, 100).default(25),
        cpuWindowSeconds: int(5, 3600).default(120),
        sampleSeconds: int(1, 600).default(5),
      })
      .strict()
      .prefault({}),
  })
  .strict();

export type AgentConfigInput = z.input<typeof agentConfigSchema>;
export type AgentConfig = z.output<typeof agentConfigSchema>;

/** `list`: comma-separated values. */
type EnvType = 'string' | 'number' | 'boolean' | 'list';

/** Every setting can come from the environment: VCM_ + its path in upper snake case. */
export const ENV_OVERRIDES: readonly { env: string; path: string; type: EnvType }[] = (
  [
    ['collectorUrl', 'string'],
    ['caFile', 'string'],
    ['tls.certFile', 'string'],
    ['tls.keyFile', 'string'],
    ['stateDir', 'string'],
    ['root', 'string'],
    ['logLevel', 'string'],
    ['logFormat', 'string'],
    ['okta.orgUrl', 'string'],
    ['okta.tokenFile', 'string'],
    ['okta.tokenEnv', 'string'],
    ['okta.clientId', 'string'],
    ['okta.privateKeyFile', 'string'],
    ['okta.privateKeyEnv', 'string'],
    ['okta.keyId', 'string'],
    ['okta.scopes', 'list'],
    ['okta.rosterFiles', 'list'],
    ['spool.maxCount', 'number'],
    ['spool.maxBytes', 'number'],
    ['spool.quarantineMaxCount', 'number'],
    ['delivery.batchMaxCount', 'number'],
    ['delivery.batchMaxBytes', 'number'],
    ['delivery.timeoutSeconds', 'number'],
    ['delivery.keepAliveSeconds', 'number'],
    ['delivery.backoffInitialSeconds', 'number'],
    ['delivery.backoffMaxSeconds', 'number'],
    ['delivery.shutdownFlushSeconds', 'number'],
    ['schedule.jitterSeconds', 'number'],
    ['schedule.policyRefreshSeconds', 'number'],
    ['schedule.intervalSeconds', 'number'],
    ['probes.allowedUrls', 'list'],
    ['probes.allowPrivateTargets', 'boolean'],
    ['watchdog.enabled', 'boolean'],
    ['watchdog.rssMaxMb', 'number'],
    ['watchdog.cpuMaxPercent', 'number'],
    ['watchdog.cpuWindowSeconds', 'number'],
    ['watchdog.sampleSeconds', 'number'],
  ] as const
).map(([p, type]) => ({ env: envName(p), path: p, type }));

export function envName(configPath: string): string {
  return `VCM_${configPath.replace(/\./g, '_').replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()}`;
}

/** Command-line flags that override the file and the environment. */
export interface ConfigFlags {
  config?: string;
  stateDir?: string;
  root?: string;
  caFile?: string;
  logLevel?: string;
  logFormat?: string;
  collectorUrl?: string;
  interval?: number;
}

export type Source = 'default' | `file ${string}` | `env ${string}` | 'flag';

export interface LoadedConfig {
  config: Readonly<AgentConfig>;
  /** The file read, or null when the default file does not exist (or was let go as unreadable). */
  file: string | null;
  /** Where each setting that is not a default came from. */
  sources: Record<string, Source>;
}

function setPath(target: Record<string, unknown>, dotted: string, value: unknown): void {
  const parts = dotted.split('.');
  let node = target;
  for (const p of parts.slice(0, -1)) {
    const next = node[p];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) node[p] = {};
    node = node[p] as Record<string, unknown>;
  }
  node[parts.at(-1)!] = value;
}

function leafPaths(value: unknown, prefix = ''): string[] {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return prefix === '' ? [] : [prefix];
  return Object.entries(value).flatMap(([k, v]) => leafPaths(v, prefix === '' ? k : `${prefix}.${k}`));
}

function coerce(name: string, raw: string, type: EnvType): unknown {
  if (type === 'string') return raw;
  if (type === 'list') return raw.split(',').map((x) => x.trim()).filter((x) => x !== '');
  if (type === 'boolean') {
    if (/^(true|1|yes|on)$/i.test(raw)) return true;
    if (/^(false|0|no|off)$/i.test(raw)) return false;
    throw new AgentError('AGT_ERR_CONFIG', `${name}: expected true or false, got ${JSON.stringify(raw)}`);
  }
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(n)) throw new AgentError('AGT_ERR_CONFIG', `${name}: expected a number, got ${JSON.stringify(raw)}`);
  return n;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

export interface LoadOptions {
  /** The file read when neither --config nor VCM_CONFIG names one; default defaultConfigFile(). */
  defaultFile?: string;
  /**
   * For commands that can do without the file: when the default file exists but this user may not
   * read it (it is installed readable by the service's group only), this is called and the file
   * counts as absent. Without it, that is an error. A file named explicitly must always be read.
   */
  onUnreadableDefault?: (file: string, err: NodeJS.ErrnoException) => void;
}

/** Reads the file (if any), applies the environment and the flags, validates, freezes. */
export function loadConfig(flags: ConfigFlags = {}, env: NodeJS.ProcessEnv = process.env, opts: LoadOptions = {}): LoadedConfig {
  const explicit = flags.config ?? (env.VCM_CONFIG === '' ? undefined : env.VCM_CONFIG);
  const file = explicit ?? opts.defaultFile ?? defaultConfigFile();
  let raw: Record<string, unknown> = {};
  let read: string | null = null;
  let text: string | undefined;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (explicit === undefined && (e.code === 'EACCES' || e.code === 'EPERM') && opts.onUnreadableDefault !== undefined) {
      opts.onUnreadableDefault(file, e);
    } else if (explicit !== undefined || e.code !== 'ENOENT') {
      throw new AgentError('AGT_ERR_CONFIG', `cannot read the config file ${file}: ${e.message}`);
    }
  }
  if (text !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new AgentError('AGT_ERR_CONFIG', `${file} is not valid JSON: ${(err as Error).message}`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new AgentError('AGT_ERR_CONFIG', `${file} must hold a JSON object`);
    }
    raw = parsed as Record<string, unknown>;
    read = file;
  }
  const sources: Record<string, Source> = {};
  for (const p of leafPaths(raw)) sources[p] = `file ${file}`;
  for (const o of ENV_OVERRIDES) {
    const value = env[o.env];
    if (value === undefined || value === '') continue;
    setPath(raw, o.path, coerce(o.env, value, o.type));
    sources[o.path] = `env ${o.env}`;
  }
  const flagMap: [keyof ConfigFlags, string][] = [
    ['stateDir', 'stateDir'],
    ['root', 'root'],
    ['caFile', 'caFile'],
    ['logLevel', 'logLevel'],
    ['logFormat', 'logFormat'],
    ['collectorUrl', 'collectorUrl'],
    ['interval', 'schedule.intervalSeconds'],
  ];
  for (const [flag, p] of flagMap) {
    if (flags[flag] === undefined) continue;
    setPath(raw, p, flags[flag]);
    sources[p] = 'flag';
  }
  const result = agentConfigSchema.safeParse(raw);
  if (!result.success) {
    const issues = result.error.issues.slice(0, 5).map((i) => {
      const p = i.path.join('.');
      const from = sources[p] ?? (read === null ? undefined : `file ${read}`);
      return `${p === '' ? 'config' : p}: ${i.message}${from === undefined ? '' : ` (${from})`}`;
    });
    throw new AgentError('AGT_ERR_CONFIG', issues.join('; '));
  }
  return { config: deepFreeze(result.data), file: read, sources };
}

/** A URL without its password, for logs and --check-config. */
export function redactUrl(raw: string): string {
  try {
    const url = new URL(raw);
    if (url.password !== '') url.password = 'redacted';
    return url.toString();
  } catch {
    return raw;
  }
}

export interface SecretStatus {
  reference: string;
  state: 'present' | 'missing' | 'unreadable' | 'empty';
}

/** The secret an Okta access config refers to: which one, and where it is. */
function oktaSecretRef(okta: OktaAccessConfig): { what: string; env?: string; file?: string } {
  const what = okta.clientId === undefined ? 'Okta API token' : 'Okta private key';
  const env = okta.tokenEnv ?? okta.privateKeyEnv;
  return env !== undefined ? { what, env } : { what, file: (okta.tokenFile ?? okta.privateKeyFile)! };
}

/** Reads the secret a reference names, once: its state, and its value when present. */
function readSecret(ref: { env?: string; file?: string }, env: NodeJS.ProcessEnv): SecretStatus & { value: string | null } {
  if (ref.env !== undefined) {
    const v = env[ref.env]?.trim();
    return { reference: `env ${ref.env}`, state: v === undefined ? 'missing' : v === '' ? 'empty' : 'present', value: v === undefined || v === '' ? null : v };
  }
  let text: string;
  try {
    text = readFileSync(ref.file!, 'utf8').trim();
  } catch (err) {
    return { reference: `file ${ref.file}`, state: (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing' : 'unreadable', value: null };
  }
  return { reference: `file ${ref.file}`, state: text === '' ? 'empty' : 'present', value: text === '' ? null : text };
}

/** Says whether the Okta secret reference resolves, without ever returning the secret. */
export function oktaSecretStatus(okta: OktaAccessConfig, env: NodeJS.ProcessEnv = process.env): SecretStatus & { what: string } {
  const ref = oktaSecretRef(okta);
  const { reference, state } = readSecret(ref, env);
  return { what: ref.what, reference, state };
}

/** Resolves the Okta secret reference; only the code that calls Okta may hold the result. */
export function resolveOktaSecret(okta: OktaAccessConfig, env: NodeJS.ProcessEnv = process.env): string {
  const ref = oktaSecretRef(okta);
  const { reference, state, value } = readSecret(ref, env);
  if (value === null) throw new AgentError('AGT_ERR_CONFIG', `the ${ref.what} (${reference}) is ${state}`);
  return value;
}

/**
 * What the checks get: the org, the auth settings, and a function that reads the secret when a
 * check calls Okta. A reference that does not resolve makes that check unknown, not the agent stop.
 */
export function identityProviderAccess(config: Pick<AgentConfig, 'okta'>, env: NodeJS.ProcessEnv = process.env): IdentityProviderAccess | undefined {
  const okta = config.okta;
  if (okta === undefined) return undefined;
  return {
    okta: {
      orgUrl: okta.orgUrl,
      auth: okta.clientId === undefined ? { type: 'apiToken' } : { type: 'privateKey', clientId: okta.clientId, keyId: okta.keyId, scopes: okta.scopes },
      rosterFiles: okta.rosterFiles,
      secret: () => {
        try {
          return Promise.resolve(resolveOktaSecret(okta, env));
        } catch (err) {
          return Promise.reject(new CheckError('CHK_ERR_NOT_CONFIGURED', `${(err as Error).message} (the agent config's okta setting)`, { subject: 'okta' }));
        }
      },
    },
  };
}

function fileState(file: string): string {
  try {
    accessSync(file, fsConstants.R_OK);
    return 'readable';
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing' : 'unreadable';
  }
}

/** What `run --check-config` prints: the effective config, redacted, and what it refers to. */
export function describeConfig(loaded: LoadedConfig, env: NodeJS.ProcessEnv = process.env): { report: object; problems: string[] } {
  const c = loaded.config;
  const effective = JSON.parse(JSON.stringify(c)) as Record<string, unknown>;
  if (c.collectorUrl !== undefined) effective.collectorUrl = redactUrl(c.collectorUrl);
  const problems: string[] = [];
  const files: Record<string, string> = {};
  for (const [name, file] of [
    ['caFile', c.caFile],
    ['tls.certFile', c.tls?.certFile],
    ['tls.keyFile', c.tls?.keyFile],
  ] as const) {
    if (file === undefined) continue;
    files[name] = `${file}: ${fileState(file)}`;
    if (fileState(file) !== 'readable') problems.push(`${name} ${file} is ${fileState(file)}`);
  }
  const secrets: Record<string, string> = {};
  if (c.okta !== undefined) {
    const s = oktaSecretStatus(c.okta, env);
    secrets[c.okta.clientId === undefined ? 'okta.token' : 'okta.privateKey'] = `${s.reference}: ${s.state}`;
    if (s.state !== 'present') problems.push(`the ${s.what} (${s.reference}) is ${s.state}`);
  }
  return {
    report: {
      configFile: loaded.file ?? `${defaultConfigFile()} (not found: built-in defaults)`,
      effective,
      sources: loaded.sources,
      files,
      secrets,
    },
    problems,
  };
}
