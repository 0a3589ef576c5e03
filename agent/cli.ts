#!/usr/bin/env node
// vcm-agent: observe this host's controls, sign the findings, deliver them to the collector.
// Each command imports what it needs when it runs: `check` never loads the HTTP client, `status`
// never loads the checks, and the daemon never loads the fixture recorder or the enrollment code.
import { readFile, stat } from 'node:fs/promises';
import { Command, InvalidArgumentError, Option, type CommanderError } from 'commander';
import type { Logger } from 'pino';
import type { AnyCheck } from '../checks/types.js';
import { LOG_FORMATS, LOG_LEVELS, defaultConfigFile, identityProviderAccess, loadConfig, type ConfigFlags, type LogFormat } from './config.js';
import { AgentError, isAgentError } from './errors.js';
import type { HttpOptions } from './http.js';
import { StateDir, defaultStateDir, keyInUse } from './state.js';
import { colourFor, humanLogStream, paintStatus, painter, stopQuietlyWhenStdoutCloses } from './terminal.js';
import { AGENT_VERSION } from './version.js';

/** `check` when some control does not pass (fail or unknown), as linters do; README "exit code". */
const EXIT_NOT_PASSING = 3;
/** Usage and configuration errors (AGT_ERR_*): a restart cannot fix them (RestartPreventExitStatus=2). */
const EXIT_AGENT_ERROR = 2;

/**
 * One-shot commands log to stderr, so that stdout stays the table or the JSON a script reads; as
 * readable lines unless JSON is asked for. The daemon logs pino's JSON lines to stdout.
 */
async function logger(level: string, dest: 1 | 2, format: LogFormat): Promise<Logger> {
  const { default: pino } = await import('pino');
  const opts = { level, base: { service: 'vcm-agent' }, redact: { paths: ['token', '*.token', 'authorization', '*.authorization'], censor: '[redacted]' } };
  if (format === 'text') {
    const out = dest === 1 ? process.stdout : process.stderr;
    return pino(opts, humanLogStream(out, colourFor(out)));
  }
  return pino(opts, pino.destination({ fd: dest, sync: true }));
}

/** What a request to the collector is for, in the words of `waiting for …`. */
function requestPurpose(pathname: string): string {
  if (pathname.startsWith('/v1/policy')) return 'policy';
  if (pathname.startsWith('/v1/results')) return 'delivery';
  if (pathname.startsWith('/v1/hello')) return "the collector's proof";
  if (pathname.startsWith('/v1/log/')) return 'log checkpoint';
  if (pathname.startsWith('/v1/enroll')) return 'enrollment';
  if (pathname.startsWith('/v1/keys/rotate')) return 'key rotation';
  return 'answer';
}

/** On a terminal, a request that takes more than a second says what it waits for, and how long at most. */
function waitNotice(): Pick<HttpOptions, 'onWait'> {
  if (process.stderr.isTTY !== true) return {};
  const paint = painter(colourFor(process.stderr));
  return {
    onWait: ({ url, maxMs }) => {
      process.stderr.write(`vcm-agent: ${paint('waiting', 'dim')} for ${url.origin}${url.pathname} (${requestPurpose(url.pathname)}), up to ${Math.ceil(maxMs / 1000)} s\n`);
    },
  };
}

/** A --root that is not a folder would read as "every source missing": say so instead. */
async function requireRoot(root: string): Promise<void> {
  const s = await stat(root).catch((err: NodeJS.ErrnoException) => {
    throw new AgentError('AGT_ERR_CONFIG', `root ${root}: ${err.code === 'ENOENT' ? 'no such folder' : err.message}`);
  });
  if (!s.isDirectory()) throw new AgentError('AGT_ERR_CONFIG', `root ${root}: not a folder`);
}

async function selectChecks(ids: readonly string[]): Promise<AnyCheck[]> {
  const { CHECKS, checkById } = await import('../checks/index.js');
  if (ids.length === 0) return [...CHECKS];
  return ids.map((id) => {
    const check = checkById(id);
    if (check === undefined) {
      throw new AgentError('AGT_ERR_UNKNOWN_CHECK', `no check named ${id}; known: ${CHECKS.map((c) => c.id).join(', ')}`);
    }
    return check;
  });
}

async function sourcesDocument(checks: readonly AnyCheck[]): Promise<object[]> {
  const { PLATFORMS } = await import('../checks/types.js');
  return checks.map((check) => ({
    check: check.id,
    title: check.title,
    platforms: Object.fromEntries(PLATFORMS.map((p) => [p, check.sources[p] ?? null])),
  }));
}

async function listSources(checks: readonly AnyCheck[]): Promise<string> {
  const { PLATFORMS } = await import('../checks/types.js');
  const lines: string[] = [];
  for (const check of checks) {
    lines.push(`${check.id} (${check.title})`);
    for (const platform of PLATFORMS) {
      const sources = check.sources[platform];
      if (sources === undefined) {
        lines.push(`  ${platform}: not supported (answers unknown)`);
        continue;
      }
      lines.push(`  ${platform}:`);
      for (const s of sources) {
        const what = s.kind === 'file' ? `read    ${s.path}` : `run     ${[s.command, ...s.args].join(' ')}`;
        lines.push(`    ${what}  # ${s.why}`);
      }
    }
  }
  return lines.join('\n');
}

function positiveSeconds(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a whole number of seconds ≥ 1');
  return n;
}

const CHECK_IDS_HELP = 'vpn, disk_encryption, usb_policy, credential_age, sso_coverage, open_ports';
const configOption = () => new Option('--config <file>', `the agent's config file (JSON; default ${defaultConfigFile()}, or VCM_CONFIG)`);
const stateDirOption = () => new Option('--state-dir <dir>', `where the key, enrollment, chain and spool live (default ${defaultStateDir()}, or VCM_STATE_DIR)`);
const logLevelOption = (dflt = 'the config\'s, else info; warn where that is info') =>
  new Option('--log-level <level>', `log level (default: ${dflt}; or VCM_LOG_LEVEL)`).choices(LOG_LEVELS);
const logFormatOption = (dflt: string) =>
  new Option('--log-format <format>', `log lines as text (one readable line each) or json (pino's lines) (default: ${dflt}; or VCM_LOG_FORMAT)`).choices(LOG_FORMATS);

type OutputFormat = 'table' | 'json';
/** --format on every command that prints data. `text` was status's and rotate-key's name for table. */
function formatOption(dflt: 'table' | { describe: string } = 'table'): Option {
  const option = new Option('--format <format>', `print a table for people, or json for scripts (one JSON document on stdout)${typeof dflt === 'string' ? '' : ` (default: ${dflt.describe})`}`)
    .choices(['table', 'json'])
    .argParser((value: string): OutputFormat => {
      if (value === 'table' || value === 'json') return value;
      if (value === 'text') return 'table';
      throw new InvalidArgumentError('Allowed choices are table, json.');
    });
  return typeof dflt === 'string' ? option.default(dflt) : option;
}

interface ConfigReport {
  configFile: string;
  effective: Record<string, unknown>;
  sources: Record<string, string>;
  files: Record<string, string>;
  secrets: Record<string, string>;
}

/** `run --check-config --format table`: each setting, its value and where it came from. */
function configTable(report: ConfigReport, problems: readonly string[]): string {
  const leaves = (v: unknown, prefix: string): [string, unknown][] =>
    typeof v === 'object' && v !== null && !Array.isArray(v) ? Object.entries(v).flatMap(([k, x]) => leaves(x, prefix === '' ? k : `${prefix}.${k}`)) : [[prefix, v]];
  const rows = leaves(report.effective, '').map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v), report.sources[k] ?? 'default']);
  const width = (i: number) => Math.max(...rows.map((r) => r[i]!.length), 'SETTING'.length);
  const paint = painter(colourFor(process.stdout));
  const lines = [
    `config file  ${report.configFile}`,
    ...Object.entries({ ...report.files, ...report.secrets }).map(([k, v]) => `${k.padEnd(12)} ${v}`),
    `valid        ${problems.length === 0 ? paint('yes', 'green') : `${paint('no', 'red')}: ${problems.join('; ')}`}`,
    '',
    `${'SETTING'.padEnd(width(0))}  ${'VALUE'.padEnd(width(1))}  FROM`,
    ...rows.map(([k, v, from]) => `${k!.padEnd(width(0))}  ${v!.padEnd(width(1))}  ${from}`),
  ];
  return `${lines.join('\n')}\n`;
}

/** One-shot commands: at or above warn unless the config asks for more, and readable unless JSON is asked for. */
function oneShotLog(config: { logLevel: string; logFormat?: LogFormat | undefined }, opts: { logLevel?: string }): Promise<Logger> {
  return logger(opts.logLevel ?? (config.logLevel === 'info' ? 'warn' : config.logLevel), 2, config.logFormat ?? 'text');
}

function flags(opts: ConfigFlags & Record<string, unknown>): ConfigFlags {
  const out: ConfigFlags = {};
  for (const k of ['config', 'stateDir', 'root', 'caFile', 'logLevel', 'logFormat', 'interval'] as const) {
    if (opts[k] !== undefined) (out as Record<string, unknown>)[k] = opts[k];
  }
  return out;
}

function json(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** `vcm-agent` with no command: its help went to stderr; a usage error all the same. */
class HelpShown extends Error {}

/**
 * Usage errors (an unknown option or command, a bad value) are AGT_ERR_CONFIG, exit 2, in one line
 * and without the help: under a service manager a typo must not look like a crash and restart.
 */
function usageErrors(cmd: Command, name: string): void {
  cmd.exitOverride((err: CommanderError) => {
    if (err.exitCode === 0) return; // --help, --version: commander exits 0
    if (err.code === 'commander.help') throw new HelpShown();
    const message = err.message.replace(/^error: /, '').replace(/\s*\n\s*/g, ' ');
    throw new AgentError('AGT_ERR_CONFIG', `${message} (see ${name} --help)`);
  });
}

const program = new Command('vcm-agent')
  .description('Observe this host\'s security controls, sign the findings, and deliver them to a vcm collector.')
  .version(AGENT_VERSION)
  // Commander's own error line is replaced by ours (usageErrors); subcommands inherit this.
  .configureOutput({ outputError: () => undefined });

program
  .command('check')
  .description('Run checks locally and print the findings. Nothing is sent.')
  .argument('[ids...]', `checks to run (default: all): ${CHECK_IDS_HELP}`)
  .option('--root <dir>', 'host root prefix: read /proc, /sys and /etc under it (a container mounts the host at /host); must be a folder', '/')
  .addOption(formatOption())
  .option('--state-dir <dir>', 'use the policy cached by an enrolled agent for check settings (default: none, each check\'s defaults)')
  .addOption(configOption())
  .option('--list-sources', 'print every file and command each check may read or run, per platform, and exit')
  .option('--record <dir>', 'also record every call into DIR as a replayable fixture (manifest.json and raw/)')
  .addOption(new Option('--log-level <level>', 'accepted for scripts that pass it; check writes no log lines').choices(LOG_LEVELS).default('warn'))
  .addHelpText('after', `\nExit code: 0 every check passed, ${EXIT_NOT_PASSING} some check failed or is unknown, 2 a usage or configuration error (AGT_ERR_*).`)
  .action(async (ids: string[], opts: { root: string; format: OutputFormat; stateDir?: string; config?: string; listSources?: boolean; record?: string }) => {
    const checks = await selectChecks(ids);
    if (opts.listSources === true) {
      if (opts.format === 'json') json(await sourcesDocument(checks));
      else process.stdout.write(`${await listSources(checks)}\n`);
      return;
    }
    await requireRoot(opts.root);
    const [{ allowListFor }, { RealHostIO, currentPlatform }, { runChecks, policyTimeouts }, { findingsTable }] = await Promise.all([
      import('../checks/index.js'),
      import('../checks/host-io.js'),
      import('../checks/runner.js'),
      import('./format.js'),
    ]);
    const policy = opts.stateDir === undefined ? null : await (await import('./trust.js')).trustedCachedPolicy(new StateDir(opts.stateDir));
    const configs = Object.fromEntries(checks.map((c) => [c.id, policy?.checks[c.id]?.config ?? {}]));
    // The agent config supplies only the Okta access and the probes' allow-list here. Without the default file (absent, or
    // readable by the service's group only) the checks run without it; a file named by --config
    // or VCM_CONFIG must be readable.
    const { config } = loadConfig(opts.config === undefined ? {} : { config: opts.config }, process.env, {
      onUnreadableDefault: (file, err) => {
        process.stderr.write(`vcm-agent: cannot read ${file} (${err.code ?? 'unreadable'}); running the checks without the agent config, so without its Okta access\n`);
      },
    });
    const identityProvider = identityProviderAccess(config);
    const { probeAccess } = await import('./cycle.js');
    const real = new RealHostIO({ root: opts.root, allowedCommands: allowListFor(checks, currentPlatform()), ...probeAccess(config) });
    const recording = opts.record === undefined ? null : new (await import('../checks/replay.js')).RecordingHostIO(real);
    const findings = await runChecks(checks, {
      io: recording ?? real,
      configs,
      timeoutsMs: policyTimeouts(policy?.checks),
      ...(identityProvider === undefined ? {} : { identityProvider }),
    });
    if (recording !== null && opts.record !== undefined) await recording.save(opts.record);
    if (opts.format === 'json') json(findings);
    else process.stdout.write(`${findingsTable(findings, undefined, painter(colourFor(process.stdout)))}\n`);
    if (findings.some((f) => f.status !== 'pass')) process.exitCode = EXIT_NOT_PASSING;
  });

async function tokenFrom(opts: { token?: string; tokenFile?: string }): Promise<string> {
  const token = opts.token ?? (opts.tokenFile === undefined ? process.env.VCM_ENROLL_TOKEN : (await readFile(opts.tokenFile, 'utf8')).trim());
  if (token === undefined || token === '') throw new AgentError('AGT_ERR_CONFIG', 'give --token, --token-file, or VCM_ENROLL_TOKEN');
  return token;
}

program
  .command('enroll')
  .description('Generate this host\'s Ed25519 key and register it with the collector, using a one-time token.')
  .requiredOption('--collector <url>', 'collector URL (https://…; plain http only to loopback)')
  .option('--token <token>', 'one-time enrollment token (or --token-file, or VCM_ENROLL_TOKEN)')
  .option('--token-file <file>', 'read the token from a file')
  .addOption(stateDirOption())
  .addOption(configOption())
  .option('--hostname <name>', 'the host name to register (default: this machine\'s)')
  .option('--ca-file <file>', 'PEM CA bundle to pin for an https collector, remembered for later runs (default: the system roots, or VCM_CA_FILE)')
  .option('--collector-fingerprint <hex>', "the collector key's fingerprint (vcm-collector key fingerprint), obtained out of band: enrollment fails on any other key")
  .addOption(formatOption())
  .addOption(logLevelOption('accepted for scripts that pass it; enroll writes no log lines'))
  .action(async (opts: { collector: string; token?: string; tokenFile?: string; stateDir?: string; config?: string; hostname?: string; caFile?: string; collectorFingerprint?: string; format: OutputFormat }) => {
    const { config } = loadConfig(flags(opts));
    const [{ enrollAgent }, { httpOptions }] = await Promise.all([import('./enroll.js'), import('./cycle.js')]);
    const identity = await enrollAgent(new StateDir(config.stateDir), {
      collectorUrl: opts.collector,
      token: await tokenFrom(opts),
      ...(opts.hostname === undefined ? {} : { hostname: opts.hostname }),
      ...(opts.collectorFingerprint === undefined ? {} : { collectorFingerprint: opts.collectorFingerprint }),
      http: { ...httpOptions(config), ...waitNotice() },
    });
    if (opts.format === 'json') {
      json({ agentId: identity.agentId, vendor: identity.vendor, hostname: identity.host.hostname, collectorUrl: identity.collectorUrl, enrolledAt: identity.enrolledAt });
    } else {
      process.stdout.write(`enrolled ${identity.host.hostname} as agent ${identity.agentId} for vendor ${identity.vendor} at ${identity.collectorUrl}\n`);
    }
  });

program
  .command('run')
  .description('Run the checks the policy enables on their schedule, sign and spool each finding, and deliver the spool (the daemon). With --once: one cycle, then exit.')
  .option('--once', 'run one cycle and exit (exit 2 when a result was not acknowledged: it stays in the spool for the next run)')
  .option('--check-config', 'print the effective configuration (secrets redacted) and exit; exit 2 if it is invalid')
  .addOption(configOption())
  .addOption(stateDirOption())
  .option('--root <dir>', 'host root prefix: read /proc, /sys and /etc under it (default: /, or VCM_ROOT)')
  .option('--ca-file <file>', 'PEM CA bundle to pin for an https collector (default: the system roots, or VCM_CA_FILE)')
  .option('--interval <seconds>', 'run every enabled check every N seconds instead of the policy\'s interval (testing, troubleshooting; default: the policy\'s)', positiveSeconds)
  .addOption(formatOption({ describe: 'table; json with --check-config' }))
  .addOption(logLevelOption('the config\'s, else info; with --once, warn where that is info'))
  .addOption(logFormatOption('json for the daemon, text with --once'))
  .action(async (opts: { once?: boolean; checkConfig?: boolean; config?: string; stateDir?: string; root?: string; caFile?: string; interval?: number; logLevel?: string; format?: OutputFormat }) => {
    const loaded = loadConfig(flags(opts));
    const { config } = loaded;
    if (opts.checkConfig === true) {
      const { describeConfig } = await import('./config.js');
      const { report, problems } = describeConfig(loaded);
      if ((opts.format ?? 'json') === 'json') json({ ...report, valid: problems.length === 0, problems });
      else process.stdout.write(configTable(report as ConfigReport, problems));
      if (problems.length > 0) throw new AgentError('AGT_ERR_CONFIG', problems.join('; '));
      return;
    }
    const state = new StateDir(config.stateDir);
    if (opts.once === true) {
      const [{ assertDelivered, httpOptions, runOnce }, { findingsTable }, { acquireStateLock }, { Spool }] = await Promise.all([
        import('./cycle.js'),
        import('./format.js'),
        import('./lock.js'),
        import('./spool.js'),
      ]);
      await state.requireIdentity();
      await requireRoot(config.root);
      const lock = acquireStateLock(state);
      // Ctrl-C or a stop: what is spooled is safe (every crash point is covered); say what waits, and go.
      const interrupted = (signal: NodeJS.Signals): void => {
        void new Spool(state.spoolDir, state.quarantineDir)
          .list()
          .then((entries) => {
            const n = entries.filter((e) => e.kind === 'result').length;
            return n === 0
              ? 'nothing waits in the spool'
              : `${n} result${n === 1 ? '' : 's'} wait${n === 1 ? 's' : ''} in the spool (${state.spoolDir}) for delivery; the next vcm-agent run --once, or the daemon, sends ${n === 1 ? 'it' : 'them'}`;
          })
          .catch((err: unknown) => `the spool could not be read: ${(err as Error).message}`)
          .then((kept) => {
            process.stderr.write(`vcm-agent: interrupted (${signal}); ${kept}\n`);
            lock.release();
            process.exit(signal === 'SIGINT' ? 130 : 143);
          });
      };
      process.once('SIGINT', interrupted);
      process.once('SIGTERM', interrupted);
      try {
        const result = await runOnce(state, { root: config.root, http: { ...httpOptions(config), ...waitNotice() }, log: await oneShotLog(config, opts), config });
        const bySeq = new Map(result.deliveries.map((d) => [d.seq, d.outcome]));
        const sent = (seq: number): string => bySeq.get(seq) ?? 'kept';
        if ((opts.format ?? 'table') === 'json') {
          json({ policyVersion: result.policyVersion, findings: result.findings.map((f) => ({ ...f.finding, seq: f.seq, sent: sent(f.seq) })), deliveries: result.deliveries });
        } else {
          const seqOf = new Map(result.findings.map((f) => [f.finding, f.seq]));
          process.stdout.write(`${findingsTable(result.findings.map((f) => f.finding), (f) => sent(seqOf.get(f) ?? 0), painter(colourFor(process.stdout)))}\n`);
        }
        assertDelivered(result);
      } finally {
        process.removeListener('SIGINT', interrupted);
        process.removeListener('SIGTERM', interrupted);
        lock.release();
      }
      return;
    }
    const { runDaemon } = await import('./daemon.js');
    const code = await runDaemon(loaded, await logger(config.logLevel, 1, config.logFormat ?? 'json'));
    process.exit(code);
  });

function since(iso: string | null | undefined): string {
  return iso === null || iso === undefined ? '-' : iso;
}

function kib(bytes: number): string {
  return bytes < 1024 ? `${bytes} B` : `${(bytes / 1024).toFixed(1)} KiB`;
}

program
  .command('status')
  .description('Show the enrollment, the daemon, the last run of each check, the spool, the last delivery and the last error.')
  .addOption(stateDirOption())
  .addOption(configOption())
  .addOption(formatOption())
  .action(async (opts: { stateDir?: string; config?: string; format: OutputFormat }) => {
    const { config } = loadConfig(flags(opts));
    const [{ Spool }, { readStatus }, { lockHolder }] = await Promise.all([import('./spool.js'), import('./status.js'), import('./lock.js')]);
    const state = new StateDir(config.stateDir);
    const identity = await state.identity();
    const chain = await state.chain();
    const spool = new Spool(state.spoolDir, state.quarantineDir);
    const entries = await spool.list({ sizes: true });
    const quarantined = await spool.quarantined();
    const policy = await state.policy().catch(() => null);
    const rotation = await state.pendingRotation().catch(() => null);
    const s = await readStatus(state);
    const holder = lockHolder(state);
    const daemon =
      holder !== null
        ? { state: 'running' as const, pid: holder, since: s.daemon?.startedAt ?? null }
        : s.daemon === null
          ? { state: 'never started' as const, pid: null, since: null }
          : { state: 'stopped' as const, pid: null, since: s.daemon.stoppedAt, reason: s.daemon.stopReason ?? 'crashed or killed' };
    const status = {
      enrolled: identity !== null,
      collector: config.collectorUrl ?? identity?.collectorUrl ?? null,
      agentId: identity?.agentId ?? null,
      vendor: identity?.vendor ?? null,
      enrolledAt: identity?.enrolledAt ?? null,
      key: identity === null ? null : { ...keyInUse(identity), afterSeq: identity.key?.afterSeq ?? null, rotatedAt: identity.key?.rotatedAt ?? null },
      rotationPending: rotation === null ? null : { generation: rotation.generation, keyId: rotation.keyId },
      // The spool's newest envelope is the head while it waits (chain.json follows lazily).
      lastSeq: Math.max(chain.seq, entries.at(-1)?.seq ?? 0),
      spoolDepth: entries.length,
      spoolBytes: entries.reduce((n, e) => n + (e.size ?? 0), 0),
      oldestSpooledSeq: entries[0]?.seq ?? null,
      quarantined: quarantined.length,
      policyVersion: policy?.version ?? null,
      daemon,
      policy: s.policy,
      checks: s.checks,
      delivery: s.delivery,
      drops: s.drops,
      watchdog: s.watchdog,
      log: s.log,
      lastError: s.lastError,
    };
    if (opts.format === 'json') {
      json(status);
      return;
    }
    const paint = painter(colourFor(process.stdout));
    const d = s.delivery;
    const rows: [string, string][] = [
      ['enrolled to', identity === null ? 'not enrolled (run vcm-agent enroll)' : `${status.collector} (vendor ${identity.vendor}, since ${identity.enrolledAt})`],
      ['agent id', identity?.agentId ?? '-'],
      [
        'key',
        status.key === null
          ? '-'
          : `generation ${status.key.generation}, fingerprint ${status.key.keyId}${status.key.rotatedAt === null ? ' (enrolled key)' : ` (rotated ${status.key.rotatedAt}, signs after seq ${status.key.afterSeq})`}${
              rotation === null ? '' : `; rotation to generation ${rotation.generation} pending (vcm-agent rotate-key, or the daemon at start, finishes it)`
            }`,
      ],
      ['state dir', state.dir],
      [
        'daemon',
        daemon.state === 'running'
          ? `running (pid ${daemon.pid}, since ${since(daemon.since)})`
          : daemon.state === 'stopped'
            ? `stopped (${daemon.reason}${daemon.since === null ? '' : `, at ${daemon.since}`})`
            : 'never started',
      ],
      ['policy', policy === null ? '-' : `version ${policy.version}${s.policy.fetchedAt === null ? '' : `, fetched ${s.policy.fetchedAt}`}${s.policy.lastFetchError === null ? '' : ` (last fetch failed: ${s.policy.lastFetchError})`}`],
      ['chain head', `seq ${status.lastSeq}`],
      ['spool', `${entries.length} waiting (${kib(status.spoolBytes)})${entries[0] === undefined ? '' : `, oldest seq ${entries[0].seq}`}; ${quarantined.length} quarantined`],
      [
        'last delivery',
        d.lastAttemptAt === null
          ? '-'
          : `${d.lastAttemptAt} ${d.lastOutcome ?? ''}${d.lastDetail === null ? '' : `: ${d.lastDetail}`}${d.nextRetryAt === null ? '' : `; next retry ${d.nextRetryAt}`} (accepted ${d.accepted}, duplicates ${d.duplicates}, quarantined ${d.quarantined} in total)`,
      ],
      ['log receipt', s.log.lastReceipt === null ? '-' : `seq ${s.log.lastReceipt.seq} is entry ${s.log.lastReceipt.logIndex} of the vendor log (${s.log.lastReceipt.at})`],
      [
        'log checkpoint',
        `${s.log.checkpoint === null ? '-' : `${s.log.checkpoint.origin} at ${s.log.checkpoint.size} entries, signed and consistent, checked ${s.log.checkpoint.checkedAt}`}${s.log.lastError === null ? '' : ` (last check: ${s.log.lastError})`}`,
      ],
      ['drops', s.drops.records === 0 ? 'none' : `${s.drops.results} results in ${s.drops.records} signed drop records, last ${since(s.drops.lastAt)}`],
      ['last error', s.lastError === null ? '-' : `${s.lastError.at} ${paint(s.lastError.code, 'red')}: ${s.lastError.message}`],
    ];
    if (s.watchdog.lastRestartAt !== null) rows.push(['watchdog', `restarted ${s.watchdog.lastRestartAt} (${s.watchdog.reason ?? ''})`]);
    const out = rows.map(([k, v]) => `${k.padEnd(14)} ${v}`);
    const checks = Object.entries(s.checks);
    if (checks.length > 0) {
      out.push('', `${'CHECK'.padEnd(16)} ${'STATUS'.padEnd(8)} ${'LAST RUN'.padEnd(24)}  ${'SEQ'.padEnd(6)} NEXT RUN`);
      for (const [id, c] of checks) {
        const word = c.lastStatus.toUpperCase();
        out.push(`${id.padEnd(16)} ${paintStatus(paint, word)}${' '.repeat(Math.max(0, 8 - word.length))} ${c.lastRunAt.padEnd(24)}  ${String(c.lastSeq ?? '-').padEnd(6)} ${since(c.nextRunAt)}`);
      }
    }
    process.stdout.write(`${out.join('\n')}\n`);
  });

program
  .command('rotate-key')
  .description('Replace this host\'s key: a new Ed25519 key, introduced to the collector by a request signed with the current one. Stop the daemon first (one process per state directory).')
  .addOption(configOption())
  .addOption(stateDirOption())
  .option('--ca-file <file>', 'PEM CA bundle to pin for an https collector (default: the system roots, or VCM_CA_FILE)')
  .addOption(formatOption())
  .addOption(logLevelOption())
  .addOption(logFormatOption('text'))
  .action(async (opts: { config?: string; stateDir?: string; caFile?: string; format: OutputFormat; logLevel?: string; logFormat?: string }) => {
    const { config } = loadConfig(flags(opts));
    const [{ rotateKey }, { httpOptions }, { enrolledClient }, { acquireStateLock }] = await Promise.all([
      import('./rotate.js'),
      import('./cycle.js'),
      import('./http.js'),
      import('./lock.js'),
    ]);
    const state = new StateDir(config.stateDir);
    const { identity } = await state.requireIdentity();
    const lock = acquireStateLock(state);
    const client = enrolledClient(identity, { ...httpOptions(config), ...waitNotice() }, config.collectorUrl);
    try {
      const result = await rotateKey(state, client, await oneShotLog(config, opts));
      if (opts.format === 'json') json(result);
      else if (result.outcome === 'rotated') {
        process.stdout.write(`key rotated: generation ${result.generation}, fingerprint ${result.keyId}; results after seq ${result.afterSeq} are signed with it${result.duplicate ? ' (finished a rotation begun earlier)' : ''}\n`);
      }
      if (result.outcome === 'abandoned') {
        throw new AgentError('AGT_ERR_ROTATE_REJECTED', `${result.code}: ${result.message}; the agent keeps its current key`);
      }
    } finally {
      await client.close();
      lock.release();
    }
  });

program
  .command('uninstall')
  .description('Remove the agent\'s state (key, enrollment, chain, spool, status) and its config file; keep only what you ask to keep. Stop and remove the service first.')
  .addOption(stateDirOption())
  .addOption(configOption())
  .option('--keep-spool', 'keep spool/, quarantine/, chain.json and events.json (undelivered evidence)')
  .option('--keep-key', 'keep agent-ed25519.pem and identity.json (the host key and its enrollment)')
  .option('--keep-config', 'keep the config file')
  .option('--dry-run', 'print what would be removed and kept, and change nothing')
  .addOption(formatOption())
  .action(async (opts: { stateDir?: string; config?: string; keepSpool?: boolean; keepKey?: boolean; keepConfig?: boolean; dryRun?: boolean; format: OutputFormat }) => {
    const loaded = loadConfig(flags(opts));
    const { uninstall, serviceRemovalHint } = await import('./uninstall.js');
    const plan = await uninstall(new StateDir(loaded.config.stateDir), {
      keepSpool: opts.keepSpool === true,
      keepKey: opts.keepKey === true,
      keepConfig: opts.keepConfig === true,
      configFile: loaded.file,
      dryRun: opts.dryRun === true,
    });
    const hint = serviceRemovalHint();
    if (opts.format === 'json') {
      json({ dryRun: opts.dryRun === true, [opts.dryRun === true ? 'wouldRemove' : 'removed']: plan.remove, kept: plan.keep, foreign: plan.foreign, serviceRemoval: hint });
      return;
    }
    const verb = opts.dryRun === true ? 'would remove' : 'removed';
    const lines = [
      ...plan.remove.map((p) => `${verb}  ${p}`),
      ...plan.keep.map((p) => `kept     ${p}`),
      ...plan.foreign.map((p) => `left     ${p} (not created by vcm-agent)`),
    ];
    if (lines.length === 0) lines.push('nothing to remove');
    if (hint.length > 0) lines.push('', 'the service definition is removed with:', ...hint.map((h) => `  ${h}`));
    lines.push('', 'revoke this agent at the collector too, so that its key is refused from now on.');
    process.stdout.write(`${lines.join('\n')}\n`);
  });

usageErrors(program, 'vcm-agent');
for (const cmd of program.commands) usageErrors(cmd, `vcm-agent ${cmd.name()}`);

stopQuietlyWhenStdoutCloses();
program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof HelpShown) {
    process.exitCode = EXIT_AGENT_ERROR;
    return;
  }
  if (isAgentError(err)) {
    process.stderr.write(`vcm-agent: ${painter(colourFor(process.stderr))(err.code, 'red')}: ${err.message}\n`);
    process.exitCode = EXIT_AGENT_ERROR;
    return;
  }
  process.stderr.write(`vcm-agent: ${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});
