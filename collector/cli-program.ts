// vcm-collector's commands, apart from the process that runs them (cli.ts), so that a test can
// walk them. Only `serve` and `demo` make a store; every other --data-dir must hold one.
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { Argument, Command, InvalidArgumentError, Option } from 'commander';
import { AGENT_VERSION } from '../agent/version.js';
import type { AdminTokenInfo, AgentDetail, AgentSummary } from './admin.js';
import type { PolicyDocument } from './contract.js';
import { DEFAULT_LISTEN, VENDOR_NAME_RE, VENDOR_NAME_RULE, escapeControls } from './defaults.js';
import { COLLECTOR_ERRORS, CollectorError, type CollectorErrorCode } from './errors.js';
import { FsEvidenceStore } from './store.js';
import type { TokenInfo } from './tokens.js';

// The collector's modules are loaded by the commands that use them (see defaults.ts).
const admin = () => import('./admin.js');
const contract = () => import('./contract.js');
const policies = () => import('./policy.js');
const enrollmentTokens = () => import('./tokens.js');

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
const defaultDataDir = process.env.VCM_DATA_DIR ?? './data';

function duration(value: string): number {
  const m = /^(\d+)([smhd])$/.exec(value);
  if (m === null) throw new InvalidArgumentError('expected a duration like 30m, 24h or 7d');
  return Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[m[2] as 's' | 'm' | 'h' | 'd'];
}

function rateLimit(value: string): { perSecond: number; burst: number } {
  const m = /^(\d+(?:\.\d+)?)\/(\d+)$/.exec(value);
  if (m === null || Number(m[1]) <= 0 || Number(m[2]) < 1) throw new InvalidArgumentError('expected RATE/BURST, e.g. 20/500');
  return { perSecond: Number(m[1]), burst: Number(m[2]) };
}

/** A size in bytes: 1048576, 512KiB, 4MiB. */
function byteSize(value: string): number {
  const m = /^(\d+)(KiB|MiB)?$/.exec(value);
  if (m === null) throw new InvalidArgumentError('expected a size like 1048576, 512KiB or 4MiB');
  const bytes = Number(m[1]) * (m[2] === 'MiB' ? 1024 * 1024 : m[2] === 'KiB' ? 1024 : 1);
  if (bytes < 1024 || bytes > 64 * 1024 * 1024) throw new InvalidArgumentError('expected a size from 1KiB to 64MiB');
  return bytes;
}

function nonNegativeInt(value: string): number {
  if (!/^(0|[1-9]\d{0,14})$/.test(value)) throw new InvalidArgumentError('expected a whole number');
  return Number(value);
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a whole number ≥ 1');
  return n;
}

/** A token id as `token list` and `admin-token list` show it, or a unique prefix of 8+ of its hex digits. */
function tokenIdArgument(): Argument {
  return new Argument('<id>', 'the id, or a unique prefix of 8 or more of its hex digits').argParser((value: string) => {
    if (!/^[0-9a-f]{8,64}$/.test(value)) throw new InvalidArgumentError('a token id is 8 to 64 hex characters (a unique prefix of the listed id)');
    return value;
  });
}

function vendor(value: string): string {
  if (!VENDOR_NAME_RE.test(value)) throw new InvalidArgumentError(VENDOR_NAME_RULE);
  return value;
}

/** A file named on the command line; a failure names the path and the errno, never the contents. */
async function readInput(file: string, what: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    throw new CollectorError('COL_ERR_USAGE', `cannot read ${what} ${path.resolve(file)}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** A JSON file named on the command line. `quiet` leaves the parser's message out (it can quote the file). */
async function readJsonInput(file: string, what: string, opts: { code?: CollectorErrorCode; quiet?: boolean } = {}): Promise<unknown> {
  const text = await readInput(file, what);
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new CollectorError(opts.code ?? 'COL_ERR_USAGE', `${what} ${path.resolve(file)} is not JSON${opts.quiet === true ? '' : `: ${(err as Error).message}`}`);
  }
}

/** What marks a store: the collector key every `serve` makes on its first start (stores made before this change have it too). */
const STORE_MARKER = path.join('secrets', 'collector-ed25519.pem');

/** The resolved store folder, or COL_ERR_NO_STORE: a mistyped --data-dir must not become a new, empty store. */
async function requireStore(dir: string): Promise<string> {
  const root = path.resolve(dir);
  try {
    await stat(path.join(root, STORE_MARKER));
    return root;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'ENOTDIR') throw new CollectorError('COL_ERR_STORE_UNAVAILABLE', `cannot open the evidence store at ${root}: ${code ?? (err as Error).message}`);
  }
  throw new CollectorError('COL_ERR_NO_STORE', `${root} holds no evidence store (no ${STORE_MARKER}); make one with: vcm-collector serve --data-dir ${root}`);
}

const formatOption = () => new Option('--format <format>', 'output format').choices(['table', 'json']).default('table');

/** A warning on stderr for each exception that has already expired: it is kept, but it waives nothing. */
async function warnExpired(doc: PolicyDocument): Promise<void> {
  for (const e of (await policies()).expiredExceptions(doc, new Date())) {
    process.stderr.write(`vcm-collector: warning: exception ${e.id} (vendor ${e.vendor}, check ${e.check}) expired at ${e.expires}; it waives nothing\n`);
  }
}

export const program = new Command('vcm-collector')
  .description('Verify, judge and store signed results from vcm agents, and expose Prometheus metrics.')
  .version(AGENT_VERSION, '-V, --version', 'print the version')
  .helpOption('-h, --help', 'show help for the command')
  // Usage errors reach cli.ts as CommanderErrors, printed there as one `vcm-collector: CODE: message` line.
  .exitOverride()
  .configureOutput({ outputError: () => undefined });

program
  .command('serve')
  .description('Serve enrollment, ingest, policy, /metrics, /healthz and /readyz.')
  .option('--data-dir <dir>', 'the filesystem evidence store (evidence/, keys/, policy/, tokens/), made on the first start once the address is bound', defaultDataDir)
  .option('--listen <host:port>', 'address to listen on', DEFAULT_LISTEN)
  .option('--s3-config <file>', 'keep evidence in S3: a JSON file of S3 settings (see collector/README.md); --data-dir then holds only the collector key')
  .option('--tls-cert <file>', 'PEM certificate: serve HTTPS (with --tls-key)')
  .option('--tls-key <file>', 'PEM private key for --tls-cert')
  .option('--metrics-token-file <file>', 'require this bearer token on /metrics (a file of one line; Prometheus: authorization.credentials_file)')
  .option('--allow-plain-http', 'allow plain HTTP on a non-loopback address (TLS terminated in front)')
  .addOption(new Option('--rate-limit <rate/burst>', 'per-agent envelopes per second, and burst').argParser(rateLimit).default({ perSecond: 20, burst: 500 }, '20/500'))
  .addOption(new Option('--body-limit <size>', 'largest POST /v1/results body taken (enrollment and key rotation take 64KiB), e.g. 4MiB for sso_coverage facts of large orgs').argParser(byteSize).default(1024 * 1024, '1MiB'))
  .addOption(new Option('--per-host-series <which>', 'per-host metric series for all hosts, or only non-passing ones (large fleets)').choices(['all', 'non-passing']).default('all'))
  .option('--log-origin <origin>', 'the origin each vendor log is named under (<origin>/<vendor>), e.g. collector.example.com/vcm (default: vcm-collector/<key fingerprint>)')
  .addOption(new Option('--checkpoint-interval <duration>', 'how often a grown vendor log gets a signed checkpoint').argParser(duration).default(60, '60s'))
  .addOption(new Option('--log-level <level>', 'the least severe log messages written').choices(LOG_LEVELS).default('info'))
  .action(async (opts: { dataDir: string; listen: string; s3Config?: string; tlsCert?: string; tlsKey?: string; metricsTokenFile?: string; allowPlainHttp?: boolean; rateLimit: { perSecond: number; burst: number }; perHostSeries: 'all' | 'non-passing'; bodyLimit: number; logOrigin?: string; checkpointInterval: number; logLevel: string }) => {
    if ((opts.tlsCert === undefined) !== (opts.tlsKey === undefined)) throw new CollectorError('COL_ERR_CONFIG', '--tls-cert and --tls-key go together');
    const { parseCollectorConfig, startCollector } = await import('./server.js');
    const config = parseCollectorConfig({
      dataDir: opts.dataDir,
      listen: opts.listen,
      ...(opts.tlsCert === undefined || opts.tlsKey === undefined ? {} : { tls: { certFile: opts.tlsCert, keyFile: opts.tlsKey } }),
      allowPlainHttp: opts.allowPlainHttp === true,
      ...(opts.metricsTokenFile === undefined ? {} : { metricsTokenFile: opts.metricsTokenFile }),
      perHostSeries: opts.perHostSeries,
      rateLimit: opts.rateLimit,
      bodyLimitBytes: opts.bodyLimit,
      ...(opts.logOrigin === undefined ? {} : { logOrigin: opts.logOrigin }),
      checkpointIntervalSeconds: opts.checkpointInterval,
      ...(opts.s3Config === undefined ? {} : { s3: await readJsonInput(opts.s3Config, '--s3-config', { quiet: true }) }),
      logLevel: opts.logLevel as 'info',
    });
    const running = await startCollector(config);
    // SIGTERM lets requests in flight finish their durable writes before the process exits.
    const shutdown = () => {
      void running.close().then(() => process.exit(0));
    };
    process.once('SIGTERM', shutdown);
    process.once('SIGINT', shutdown);
  });

/** Where admin commands act: the store itself (--data-dir), or a running collector's admin API. */
interface Target {
  dataDir?: string;
  collector?: string;
  adminTokenFile?: string;
}

function targetOptions(cmd: Command, local = true): Command {
  if (local) {
    cmd
      .option('--data-dir <dir>', `act on this store directly (the same store a running \`serve\` uses; default: ${defaultDataDir})`)
      .option('--collector <url>', 'act through a running collector\'s admin API instead (with an admin token)');
  } else {
    cmd.option('--collector <url>', 'the collector whose admin API to use', 'http://127.0.0.1:8470');
  }
  return cmd
    .option('--admin-token-file <file>', 'file holding the admin bearer token (or VCM_ADMIN_TOKEN)')
    .addOption(formatOption());
}

/** One admin-API call; the answer's text (checkpoints are text), or the collector's error as a CollectorError. */
async function apiText(t: Target, method: string, pathname: string, body?: unknown): Promise<string> {
  const token = t.adminTokenFile === undefined ? process.env.VCM_ADMIN_TOKEN : (await readInput(t.adminTokenFile, '--admin-token-file')).trim();
  if (token === undefined || token === '') throw new CollectorError('COL_ERR_UNAUTHORIZED', 'give --admin-token-file or VCM_ADMIN_TOKEN');
  const res = await fetch(new URL(pathname, t.collector), {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  }).catch((err: unknown) => {
    throw new CollectorError('COL_ERR_STORE_UNAVAILABLE', `cannot reach ${t.collector}: ${(err as Error).message}`);
  });
  const text = await res.text();
  if (!res.ok) {
    let error: { code?: string; message?: string } | undefined;
    try {
      error = (JSON.parse(text) as { error?: { code?: string; message?: string } }).error;
    } catch {
      error = undefined;
    }
    const code = error?.code;
    throw new CollectorError(code !== undefined && code in COLLECTOR_ERRORS ? (code as CollectorErrorCode) : 'COL_ERR_INTERNAL', error?.message ?? `HTTP ${res.status}`);
  }
  return text;
}

async function api(t: Target, method: string, pathname: string, body?: unknown): Promise<unknown> {
  const text = await apiText(t, method, pathname, body);
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return {};
  }
}

async function localStore(t: Target): Promise<FsEvidenceStore> {
  const store = new FsEvidenceStore(await requireStore(t.dataDir ?? defaultDataDir));
  // Brings in what a stopped collector left in its journal; beside a running one, changes nothing.
  await store.open();
  return store;
}

function print(format: string, value: unknown, table: () => string[][]): void {
  if (format === 'json') {
    process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
    return;
  }
  // Cells are shown with control characters escaped: a host name stored before enrollment
  // restricted them (or any stored text) cannot move the cursor, set the clipboard (OSC 52) or
  // forge a row.
  const rows = table().map((r) => r.map(escapeControls));
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  for (const r of rows) process.stdout.write(`${r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')}\n`);
}

const token = program.command('token').alias('tokens').description('Enrollment tokens: create, list, revoke.');
targetOptions(
  token
    .command('create')
    .description('Create an enrollment token for a vendor and print only the token (--format json: with its id and expiry).')
    .requiredOption('--vendor <name>', 'the vendor whose agents this token enrolls', vendor)
    .addOption(new Option('--ttl <duration>', 'how long the token stays valid (e.g. 30m, 24h, 7d)').argParser(duration).default(24 * 3600, '24h'))
    .option('--uses <n>', 'how many enrollments the token allows', positiveInt, 1),
).action(async (opts: Target & { vendor: string; ttl: number; uses: number; format: string }) => {
  let created: { token: string; id: string; vendor: string; createdAt: string; expiresAt: string; uses: number };
  if (opts.collector === undefined) {
    const { token: value, record } = await (await enrollmentTokens()).createToken(await localStore(opts), { vendor: opts.vendor, ttlSeconds: opts.ttl, uses: opts.uses });
    created = { token: value, id: (await contract()).sha256Hex(value), ...record };
  } else created = (await api(opts, 'POST', '/v1/admin/tokens', { vendor: opts.vendor, ttlSeconds: opts.ttl, uses: opts.uses })) as typeof created;
  print(opts.format, created, () => [[created.token]]);
});
targetOptions(token.command('list').description('List enrollment tokens (by hash: the tokens themselves are never stored).')).action(
  async (opts: Target & { format: string }) => {
    const tokens =
      opts.collector === undefined ? await (await enrollmentTokens()).listTokens(await localStore(opts)) : ((await api(opts, 'GET', '/v1/admin/tokens')) as { tokens: TokenInfo[] }).tokens;
    print(opts.format, tokens, () => [
      ['ID', 'VENDOR', 'STATE', 'USED', 'EXPIRES'],
      ...tokens.map((t) => [t.id.slice(0, 16), t.vendor, t.state, `${t.used}/${t.uses}`, t.expiresAt]),
    ]);
  },
);
targetOptions(token.command('revoke').description('Revoke an enrollment token by its id (or a unique prefix of 8+ characters).').addArgument(tokenIdArgument())).action(
  async (id: string, opts: Target & { format: string }) => {
    const t = opts.collector === undefined ? await (await enrollmentTokens()).revokeToken(await localStore(opts), id) : ((await api(opts, 'POST', `/v1/admin/tokens/${id}/revoke`)) as TokenInfo);
    print(opts.format, t, () => [[`revoked ${t.id.slice(0, 16)} (${t.vendor})`]]);
  },
);

const agents = program.command('agents').alias('agent').description('Enrolled agents: list, show, revoke (through the admin API of a running collector).');
const remote = (cmd: Command) => targetOptions(cmd, false);
remote(agents.command('list').description('List agents.').option('--vendor <name>', 'only this vendor', vendor)).action(
  async (opts: Target & { vendor?: string; format: string }) => {
    const q = opts.vendor === undefined ? '' : `?vendor=${encodeURIComponent(opts.vendor)}`;
    const list = ((await api(opts, 'GET', `/v1/admin/agents${q}`)) as { agents: AgentSummary[] }).agents;
    print(opts.format, list, () => [
      ['AGENT', 'VENDOR', 'HOST', 'OS', 'SEQ', 'LAST SEEN', 'REVOKED'],
      ...list.map((a) => [a.agentId.slice(0, 16), a.vendor, a.host, a.os, String(a.headSeq), a.lastSeenAt ?? '-', a.revoked?.revokedAt ?? '-']),
    ]);
  },
);
remote(agents.command('show').description('Show one agent: key history, chain head, latest verdicts.').argument('<agent-id>')).action(
  async (id: string, opts: Target & { format: string }) => {
    const a = (await api(opts, 'GET', `/v1/admin/agents/${id}`)) as AgentDetail;
    print(opts.format, a, () => [
      ['agent', a.agentId],
      ['vendor', a.vendor],
      ['host', `${a.host} (${a.os}, agent ${a.agentVersion})`],
      ['enrolled', a.enrolledAt],
      ['revoked', a.revoked === null ? '-' : `${a.revoked.revokedAt} after seq ${a.revoked.afterSeq}: ${a.revoked.reason}`],
      ['chain head', String(a.headSeq)],
      ...a.keys.map((k) => [
        `key ${k.generation}`,
        `${k.keyId} ${k.event} ${k.since}, ${k.generation === 0 ? 'signs from seq 1' : `signs after seq ${k.afterSeq}`}${k.generation === a.keyGeneration ? ' (in use)' : ''}`,
      ]),
      ...a.latest.map((r) => [r.check, `${r.verdict} (agent: ${r.agentStatus}) at ${r.collectedAt}, policy v${r.policyVersion}`]),
    ]);
  },
);
remote(
  agents
    .command('revoke')
    .description('Revoke an agent: results it signed after the current chain head are refused.')
    .argument('<agent-id>')
    .requiredOption('--reason <text>', 'why (kept with the revocation)'),
).action(async (id: string, opts: Target & { reason: string; format: string }) => {
  const a = (await api(opts, 'POST', `/v1/admin/agents/${id}/revoke`, { reason: opts.reason })) as AgentDetail;
  print(opts.format, a, () => [[`revoked ${a.agentId} (${a.host}) after seq ${a.revoked?.afterSeq ?? 0}`]]);
});

const policy = program.command('policy').description('The policy: show the current version, set a new one, validate a file.');
targetOptions(
  policy
    .command('show')
    .description('Print the current policy document (JSON in either format: it is a JSON document).')
    .option('--policy-version <n>', 'an older version of the policy', positiveInt),
).action(async (opts: Target & { policyVersion?: number }) => {
  let doc: unknown;
  if (opts.collector !== undefined) doc = await api(opts, 'GET', opts.policyVersion === undefined ? '/v1/admin/policy' : `/v1/admin/policy/versions/${opts.policyVersion}`);
  else {
    const store = await localStore(opts);
    const { loadOrInitPolicy, readPolicyVersion } = await policies();
    doc = opts.policyVersion === undefined ? await loadOrInitPolicy(store) : await readPolicyVersion(store, opts.policyVersion);
    if (doc === null) throw new CollectorError('COL_ERR_NOT_FOUND', `no policy version ${opts.policyVersion}`);
  }
  process.stdout.write(`${JSON.stringify(doc, null, 2)}\n`);
});
const readPolicyFile = (file: string) => readJsonInput(file, 'policy file', { code: 'COL_ERR_POLICY_INVALID' });
targetOptions(policy.command('set').description('Write FILE as the next policy version (old versions are kept).').argument('<file>', 'the policy file (JSON)')).action(
  async (file: string, opts: Target & { format: string }) => {
    const raw = await readPolicyFile(file);
    const doc = (opts.collector === undefined ? await (await policies()).writeNextPolicy(await localStore(opts), raw) : await api(opts, 'PUT', '/v1/admin/policy', raw)) as PolicyDocument;
    await warnExpired(doc);
    print(opts.format, doc, () => [[`policy version ${doc.version} written`]]);
  },
);
policy
  .command('validate')
  .description('Check a policy file offline, including every check setting; every problem is named.')
  .argument('<file>', 'the policy file (JSON)')
  .addOption(formatOption())
  .action(async (file: string, opts: { format: string }) => {
    const raw = await readPolicyFile(file);
    const { expiredExceptions, validatePolicyDocument } = await policies();
    const doc = validatePolicyDocument({ version: 1, createdAt: new Date().toISOString(), ...(raw as object) });
    await warnExpired(doc);
    const expired = expiredExceptions(doc, new Date()).map((e) => e.id);
    print(opts.format, { file, valid: true, expiredExceptions: expired }, () => [[`${file}: valid`]]);
  });

const adminToken = program.command('admin-token').alias('admin-tokens').description('Admin and auditor bearer tokens for the admin API: create, list, revoke.');
adminToken
  .command('create')
  .description('Bootstrap: create an admin or auditor bearer token on the store and print only the token (--format json: with its id and expiry).')
  .addOption(new Option('--role <role>', 'admin manages; auditor reads').choices(['admin', 'auditor']).makeOptionMandatory())
  .requiredOption('--name <name>', 'who or what holds it (kept in audit records)')
  .option('--vendor <name...>', 'auditor: the vendors it may read (default: all)')
  .addOption(new Option('--ttl <duration|none>', 'expiry, e.g. 30d or 12h; none for a token that never expires').argParser((v): number | 'none' => (v === 'none' ? v : duration(v))).default(90 * 86_400, '90d'))
  .option('--data-dir <dir>', 'the store (made by `serve`)', defaultDataDir)
  .addOption(formatOption())
  .action(async (opts: { role: 'admin' | 'auditor'; name: string; vendor?: string[]; ttl: number | 'none'; dataDir: string; format: string }) => {
    for (const v of opts.vendor ?? []) vendor(v);
    const store = new FsEvidenceStore(await requireStore(opts.dataDir));
    await store.ping();
    const { createAdminToken, listAdminTokens } = await admin();
    const value = await createAdminToken(store, {
      name: opts.name,
      role: opts.role,
      ...(opts.vendor === undefined ? {} : { vendors: opts.vendor }),
      ttlSeconds: opts.ttl === 'none' ? null : opts.ttl,
    });
    const id = (await contract()).sha256Hex(value);
    const info = (await listAdminTokens(store)).find((t) => t.id === id);
    print(opts.format, { token: value, ...info }, () => [[value]]);
  });
targetOptions(adminToken.command('list').description('List admin and auditor tokens (by hash: the tokens themselves are never stored).')).action(async (opts: Target & { format: string }) => {
  const tokens = opts.collector === undefined ? await (await admin()).listAdminTokens(await localStore(opts)) : ((await api(opts, 'GET', '/v1/admin/admin-tokens')) as { tokens: AdminTokenInfo[] }).tokens;
  print(opts.format, tokens, () => [
    ['ID', 'NAME', 'ROLE', 'VENDORS', 'STATE', 'EXPIRES', 'LAST USED'],
    ...tokens.map((t) => [t.id.slice(0, 16), t.name, t.role, t.vendors?.join(',') ?? '*', t.state, t.expiresAt ?? 'never', t.lastUsedAt ?? 'never']),
  ]);
});
targetOptions(adminToken.command('revoke').description('Revoke an admin or auditor token by its id (or a unique prefix of 8+ characters); it stops working at once.').addArgument(tokenIdArgument())).action(
  async (id: string, opts: Target & { format: string }) => {
    const t = opts.collector === undefined ? await (await admin()).revokeAdminToken(await localStore(opts), id) : ((await api(opts, 'POST', `/v1/admin/admin-tokens/${id}/revoke`)) as AdminTokenInfo);
    print(opts.format, t, () => [[`revoked ${t.id.slice(0, 16)} (${t.name}, ${t.role})`]]);
  },
);

/** A signed note as is (table), or its origin, size and root hash beside it (json; the signature is not checked here). */
function printNote(format: string, note: string): void {
  if (format !== 'json') {
    process.stdout.write(note);
    return;
  }
  const [origin, size, rootHash] = note.split('\n');
  print(format, { origin, size: Number(size), rootHash, note }, () => []);
}

const logCmd = program.command('log').description("A vendor's transparency log: its signed checkpoints and the proofs between them.");
async function localLog(t: Target, v: string) {
  const [{ readVendorLog }, { generateKeyPairSync }] = await Promise.all([import('./log/commands.js'), import('node:crypto')]);
  // Read only: the key that would sign new checkpoints is never used here.
  return readVendorLog(await localStore(t), v, generateKeyPairSync('ed25519').privateKey);
}
targetOptions(
  logCmd
    .command('checkpoint')
    .description("Print a vendor log's signed checkpoint: the latest, or the one in force at a size or a time; --issue asks the collector for a new one.")
    .requiredOption('--vendor <name>', 'the vendor', vendor)
    .option('--size <n>', 'the newest checkpoint at or below this size', positiveInt)
    .option('--at <time>', 'the newest checkpoint issued at or before this ISO 8601 time')
    .option('--issue', 'issue one now (needs --collector and an admin token)'),
).action(async (opts: Target & { vendor: string; size?: number; at?: string; issue?: boolean; format: string }) => {
  const query = new URLSearchParams({ ...(opts.size === undefined ? {} : { size: String(opts.size) }), ...(opts.at === undefined ? {} : { at: opts.at }) });
  if (opts.collector !== undefined) {
    const note = await apiText(opts, opts.issue === true ? 'POST' : 'GET', `/v1/log/${opts.vendor}/checkpoint${query.size > 0 ? `?${query}` : ''}`);
    printNote(opts.format, note);
    return;
  }
  if (opts.issue === true) throw new CollectorError('COL_ERR_CONFIG', '--issue needs --collector: only the running collector writes the log');
  const at = opts.at === undefined ? undefined : new Date(opts.at);
  if (at !== undefined && Number.isNaN(at.getTime())) throw new CollectorError('COL_ERR_LOG_RANGE', '--at must be an ISO 8601 time');
  const { localCheckpoint } = await import('./log/commands.js');
  printNote(opts.format, localCheckpoint(await localLog(opts, opts.vendor), { ...(opts.size === undefined ? {} : { size: opts.size }), ...(at === undefined ? {} : { at }) }).note);
});
targetOptions(
  logCmd
    .command('proof')
    .description('Print an inclusion proof (--index, or --agent and --seq) or a consistency proof (--from, --to) against a signed size, as JSON.')
    .requiredOption('--vendor <name>', 'the vendor', vendor)
    .option('--index <n>', 'the entry', nonNegativeInt)
    .option('--agent <id>', 'the agent whose envelope to prove (with --seq)')
    .option('--seq <n>', "the envelope's sequence number", positiveInt)
    .option('--size <n>', 'the signed size to prove inclusion in (default: the latest checkpoint)', positiveInt)
    .option('--from <n>', 'consistency: the older size', positiveInt)
    .option('--to <n>', 'consistency: the newer, signed size (default: the latest checkpoint)', positiveInt),
).action(async (opts: Target & { vendor: string; index?: number; agent?: string; seq?: number; size?: number; from?: number; to?: number }) => {
  const q = new URLSearchParams();
  for (const k of ['index', 'agent', 'seq', 'size', 'from', 'to'] as const) if (opts[k] !== undefined) q.set(k, String(opts[k]));
  const kind = opts.from !== undefined ? 'consistency' : 'inclusion';
  if (opts.collector !== undefined) {
    process.stdout.write(`${JSON.stringify(JSON.parse(await apiText(opts, 'GET', `/v1/log/${opts.vendor}/proof/${kind}?${q}`)), null, 2)}\n`);
    return;
  }
  const { signedProof } = await import('./log/commands.js');
  const l = await localLog(opts, opts.vendor);
  if (opts.agent !== undefined) throw new CollectorError('COL_ERR_CONFIG', '--agent needs --collector (a store is searched by --index)');
  process.stdout.write(`${JSON.stringify(signedProof(l, opts), null, 2)}\n`);
});
logCmd
  .command('verify-consistency')
  .description('Check that NEW extends OLD: both signed by the collector key, and a consistency proof between them. Offline with --proof.')
  .argument('<old>', 'the older checkpoint (a signed note, as `log checkpoint` prints it)')
  .argument('<new>', 'the newer checkpoint')
  .requiredOption('--collector-key <file>', "the collector's public key (PEM), obtained out of band")
  .option('--proof <file>', 'the consistency proof (JSON, as `log proof --from --to` prints it)')
  .option('--vendor <name>', 'with --collector or --data-dir: the vendor whose proof to fetch', vendor)
  .option('--collector <url>', 'fetch the proof from this collector (with an admin or auditor token)')
  .option('--data-dir <dir>', 'compute the proof from this store')
  .option('--admin-token-file <file>', 'file holding the bearer token (or VCM_ADMIN_TOKEN)')
  .addOption(formatOption())
  .action(async (oldFile: string, newFile: string, opts: Target & { collectorKey: string; proof?: string; vendor?: string; format: string }) => {
    const { checkConsistency, openCheckpoint, signedProof } = await import('./log/commands.js');
    const [oldNote, newNote, keyPem] = await Promise.all([readInput(oldFile, 'checkpoint'), readInput(newFile, 'checkpoint'), readInput(opts.collectorKey, '--collector-key')]);
    let hashes: string[];
    if (opts.proof !== undefined) hashes = ((await readJsonInput(opts.proof, '--proof')) as { hashes: string[] }).hashes;
    else {
      if (opts.vendor === undefined) throw new CollectorError('COL_ERR_CONFIG', 'give --proof, or --vendor with --collector or --data-dir');
      const { createPublicKey } = await import('node:crypto');
      const key = createPublicKey(keyPem);
      const [a, b] = [openCheckpoint(oldNote, key), openCheckpoint(newNote, key)];
      if (a.size === 0) hashes = [];
      else if (opts.collector !== undefined) hashes = (JSON.parse(await apiText(opts, 'GET', `/v1/log/${opts.vendor}/proof/consistency?from=${a.size}&to=${b.size}`)) as { hashes: string[] }).hashes;
      else hashes = signedProof(await localLog(opts, opts.vendor), { from: a.size, to: b.size }).hashes;
    }
    const v = checkConsistency(oldNote, newNote, hashes, keyPem);
    print(opts.format, { consistent: true, ...v }, () => [[`consistent: ${v.origin} grew from ${v.from} to ${v.to} entries without changing any`]]);
  });

program
  .command('export')
  .description("Write a vendor's audit bundle for a period: its evidence, log range, keys, policies, report and OSCAL, signed (see collector/README.md: For auditors).")
  .requiredOption('--vendor <name>', 'the vendor', vendor)
  .requiredOption('--from <time>', 'the period\'s start: a date (midnight UTC) or an ISO 8601 time')
  .requiredOption('--to <time>', 'the period\'s end (not included)')
  .requiredOption('--out <file>', 'the bundle file to write (.tar.gz)')
  .option('--after-checkpoint <file>', "an earlier bundle's log/checkpoint-end.txt: this bundle continues from it, with no gap")
  .option('--log-size <n>', 'end the range at the checkpoint of this size, not the latest (a repeatable export)', nonNegativeInt)
  .option('--data-dir <dir>', 'export from this store directly (the collector key is read from it)')
  .option('--s3-config <file>', 'export from the S3 store these settings name (--data-dir then holds only the collector key)')
  .option('--collector <url>', "export through a running collector's API instead (with an admin or auditor token)")
  .option('--token-file <file>', 'with --collector: file holding the admin or auditor bearer token (or VCM_ADMIN_TOKEN)')
  .option('--tmp-dir <dir>', 'where to stage the bundle\'s files (default: the system temporary folder)')
  .option('--pdf <file>', 'also print the report to this PDF (needs Chromium; says so when it is not installed)')
  .addOption(formatOption())
  .action(async (opts: { vendor: string; from: string; to: string; out: string; afterCheckpoint?: string; logSize?: number; dataDir?: string; s3Config?: string; collector?: string; tokenFile?: string; tmpDir?: string; pdf?: string; format: string }) => {
    const audit = await import('./audit/commands.js');
    const args = { vendor: opts.vendor, from: opts.from, to: opts.to, out: opts.out, ...(opts.afterCheckpoint === undefined ? {} : { afterCheckpoint: opts.afterCheckpoint }), ...(opts.logSize === undefined ? {} : { logSize: opts.logSize }), ...(opts.tmpDir === undefined ? {} : { tmpDir: opts.tmpDir }) };
    let summary;
    if (opts.collector !== undefined) {
      const token = opts.tokenFile === undefined ? process.env.VCM_ADMIN_TOKEN : (await readInput(opts.tokenFile, '--token-file')).trim();
      if (token === undefined || token === '') throw new CollectorError('COL_ERR_UNAUTHORIZED', 'give --token-file or VCM_ADMIN_TOKEN');
      summary = await audit.exportRemote(opts.collector, token, args);
    } else {
      const dataDir = await requireStore(opts.dataDir ?? defaultDataDir);
      let store;
      if (opts.s3Config !== undefined) {
        const { S3EvidenceStore, parseS3StoreConfig } = await import('./s3-store.js');
        store = new S3EvidenceStore(parseS3StoreConfig(await readJsonInput(opts.s3Config, '--s3-config', { quiet: true })));
      } else store = await localStore({ dataDir });
      summary = await audit.exportLocal(store, audit.keyFileOf(dataDir), args);
    }
    const pdf = opts.pdf === undefined ? null : await audit.bundlePdf(summary.file, opts.pdf);
    print(opts.format, { ...summary, ...(pdf === null ? {} : { pdf }) }, () => [[`${summary.sha256}  ${summary.file}`], [audit.summaryLine(summary)], ...(pdf === null ? [] : [[pdf]]), ...(summary.notCheckpointed > 0 ? [[`note: ${summary.notCheckpointed} log entries after the latest checkpoint are not in this bundle: export through --collector for a fresh checkpoint`]] : [])]);
  });

program
  .command('verify')
  .description('Verify an audit bundle (the .tar.gz, or an unpacked folder) offline. Exit 0 verified, 1 a defect, 2 unusable input.')
  .argument('<bundle>', 'the bundle file or folder')
  .option('--collector-key <file>', "the collector's public key (PEM), obtained out of band")
  .option('--collector-fingerprint <hex>', "or its fingerprint (vcm-collector key fingerprint), obtained out of band")
  .option('--after-checkpoint <file>', "an earlier bundle's log/checkpoint-end.txt: this bundle must continue it")
  .option('--report <file>', "write the bundle's report again, showing this verification's verdict and defects (HTML)")
  .addOption(formatOption())
  .action(async (bundle: string, opts: { collectorKey?: string; collectorFingerprint?: string; afterCheckpoint?: string; report?: string; format: string }) => {
    const audit = await import('./audit/verify-command.js');
    if (opts.collectorFingerprint !== undefined && !/^[0-9a-fA-F]{64}$/.test(opts.collectorFingerprint)) throw new CollectorError('COL_ERR_CONFIG', '--collector-fingerprint is 64 hex digits');
    let reported = false;
    const v = await audit.verifyBundle(bundle, {
      ...(opts.collectorKey === undefined ? {} : { collectorKeyPem: await readInput(opts.collectorKey, '--collector-key') }),
      ...(opts.collectorFingerprint === undefined ? {} : { collectorFingerprint: opts.collectorFingerprint }),
      ...(opts.afterCheckpoint === undefined ? {} : { afterCheckpoint: await readInput(opts.afterCheckpoint, '--after-checkpoint') }),
    }, opts.report === undefined ? undefined : async (dir, verdict) => {
      reported = true;
      process.stderr.write(`${await audit.writeVerifiedReport(dir, verdict, opts.report!)}\n`);
    });
    if (opts.report !== undefined && !reported) process.stderr.write(`no report: ${v.unusable ?? 'the bundle could not be read'}\n`);
    process.stdout.write(opts.format === 'json' ? `${JSON.stringify(v, null, 2)}\n` : audit.formatVerdict(v));
    process.exitCode = v.exitCode;
  });

const keyCmd = program.command('key').description("The collector's own key: it signs checkpoints and audit bundles.");
keyCmd
  .command('fingerprint')
  .description("Print the collector key's fingerprint (SHA-256 of its public key), to give auditors out of band, and its public key.")
  .option('--data-dir <dir>', 'the store the collector serves from', defaultDataDir)
  .option('--key-file <file>', 'the key file (default: <data-dir>/secrets/collector-ed25519.pem)')
  .addOption(formatOption())
  .action(async (opts: { dataDir: string; keyFile?: string; format: string }) => {
    const audit = await import('./audit/commands.js');
    const k = await audit.keyFingerprint(opts.keyFile ?? audit.keyFileOf(await requireStore(opts.dataDir)));
    print(opts.format, k, () => [[k.fingerprint], ...k.publicKey.trimEnd().split('\n').map((l) => [l])]);
  });

program
  .command('demo')
  .description('Local demo: a collector on ./data, and an agent on this machine enrolled to it that runs one cycle.')
  .option('--data-dir <dir>', 'the evidence store', './data')
  .option('--listen <host:port>', 'address to listen on (loopback)', DEFAULT_LISTEN)
  .option('--vendor <name>', 'the demo vendor', vendor, 'demo-vendor')
  .option('--no-wait', 'exit after the cycle instead of serving until Ctrl-C')
  .action(async (opts: { dataDir: string; listen: string; vendor: string; wait: boolean }) => {
    const { runDemo } = await import('./demo.js');
    await runDemo(opts);
  });
