#!/usr/bin/env node
// vcm-agent: observe this host's controls, sign the findings, deliver them to the collector.
import { readFile } from 'node:fs/promises';
import { Command, InvalidArgumentError, Option } from 'commander';
import pino, { type Logger } from 'pino';
import { CHECKS, allowListFor, checkById } from '../checks/index.js';
import { RealHostIO, currentPlatform } from '../checks/host-io.js';
import { RecordingHostIO } from '../checks/replay.js';
import { runChecks } from '../checks/runner.js';
import { PLATFORMS, type AnyCheck } from '../checks/types.js';
import { assertDelivered, runOnce, type Delivery } from './cycle.js';
import { enrollAgent } from './enroll.js';
import { AgentError, isAgentError } from './errors.js';
import { findingsTable } from './format.js';
import { Spool } from './spool.js';
import { StateDir, defaultStateDir } from './state.js';
import { AGENT_VERSION } from './version.js';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** One-shot commands log to stderr, so that stdout stays the table or the JSON a script reads. */
function logger(level: string, dest: 1 | 2): Logger {
  return pino({ level, base: { service: 'vcm-agent' }, redact: ['token', '*.token'] }, pino.destination({ fd: dest, sync: true }));
}

function selectChecks(ids: readonly string[]): AnyCheck[] {
  if (ids.length === 0) return [...CHECKS];
  return ids.map((id) => {
    const check = checkById(id);
    if (check === undefined) {
      throw new AgentError('AGT_ERR_UNKNOWN_CHECK', `no check named ${id}; known: ${CHECKS.map((c) => c.id).join(', ')}`);
    }
    return check;
  });
}

function listSources(checks: readonly AnyCheck[]): string {
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

const program = new Command('vcm-agent')
  .description('Observe this host\'s security controls, sign the findings, and deliver them to a vcm collector.')
  .version(AGENT_VERSION)
  .showHelpAfterError();

program
  .command('check')
  .description('Run checks locally and print the findings. Nothing is sent.')
  .argument('[ids...]', `checks to run (default: all): ${CHECKS.map((c) => c.id).join(', ')}`)
  .option('--root <dir>', 'host root prefix: read /proc, /sys and /etc under it (a container mounts the host at /host)', '/')
  .addOption(new Option('--format <format>', 'output format').choices(['table', 'json']).default('table'))
  .option('--state-dir <dir>', 'use the policy cached by an enrolled agent for check settings')
  .option('--list-sources', 'print every file and command each check may read or run, per platform, and exit')
  .option('--record <dir>', 'also record every call into DIR as a replayable fixture (manifest.json and raw/)')
  .addOption(new Option('--log-level <level>').choices(LOG_LEVELS).default('warn'))
  .action(async (ids: string[], opts: { root: string; format: string; stateDir?: string; listSources?: boolean; record?: string }) => {
    const checks = selectChecks(ids);
    if (opts.listSources === true) {
      process.stdout.write(`${listSources(checks)}\n`);
      return;
    }
    const policy = opts.stateDir === undefined ? null : await new StateDir(opts.stateDir).policy();
    const real = new RealHostIO({ root: opts.root, allowedCommands: allowListFor(checks, currentPlatform()) });
    const io = opts.record === undefined ? real : new RecordingHostIO(real);
    const configs = Object.fromEntries(checks.map((c) => [c.id, policy?.checks[c.id]?.config ?? {}]));
    const findings = await runChecks(checks, { io, configs });
    if (io instanceof RecordingHostIO && opts.record !== undefined) await io.save(opts.record);
    process.stdout.write(opts.format === 'json' ? `${JSON.stringify(findings, null, 2)}\n` : `${findingsTable(findings)}\n`);
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
  .option('--state-dir <dir>', 'where the key, enrollment, chain and spool live', defaultStateDir())
  .option('--hostname <name>', 'the host name to register (default: this machine\'s)')
  .option('--ca-file <file>', 'PEM CA bundle to pin for an https collector')
  .addOption(new Option('--log-level <level>').choices(LOG_LEVELS).default('warn'))
  .action(async (opts: { collector: string; token?: string; tokenFile?: string; stateDir: string; hostname?: string; caFile?: string }) => {
    const identity = await enrollAgent(new StateDir(opts.stateDir), {
      collectorUrl: opts.collector,
      token: await tokenFrom(opts),
      ...(opts.hostname === undefined ? {} : { hostname: opts.hostname }),
      http: opts.caFile === undefined ? {} : { caFile: opts.caFile },
    });
    process.stdout.write(`enrolled ${identity.host.hostname} as agent ${identity.agentId} for vendor ${identity.vendor} at ${identity.collectorUrl}\n`);
  });

function positiveSeconds(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a whole number of seconds ≥ 1');
  return n;
}

function sentColumn(deliveries: readonly Delivery[]) {
  const bySeq = new Map(deliveries.map((d) => [d.seq, d.outcome]));
  return (seq: number) => bySeq.get(seq) ?? 'kept';
}

program
  .command('run')
  .description('Run the enabled checks, sign and spool each finding, and deliver the spool to the collector.')
  .option('--once', 'run one cycle and exit (non-zero when a result was not acknowledged)')
  .option('--state-dir <dir>', 'the enrolled state directory', defaultStateDir())
  .option('--root <dir>', 'host root prefix', '/')
  .option('--ca-file <file>', 'PEM CA bundle to pin for an https collector')
  .option('--interval <seconds>', 'without --once: seconds between cycles (default: the shortest interval in the policy)', positiveSeconds)
  .addOption(new Option('--log-level <level>').choices(LOG_LEVELS).default('info'))
  .action(async (opts: { once?: boolean; stateDir: string; root: string; caFile?: string; interval?: number; logLevel: string }) => {
    const state = new StateDir(opts.stateDir);
    const http = opts.caFile === undefined ? {} : { caFile: opts.caFile };
    if (opts.once === true) {
      const result = await runOnce(state, { root: opts.root, http, log: logger(opts.logLevel === 'info' ? 'warn' : opts.logLevel, 2) });
      const sent = sentColumn(result.deliveries);
      const bySeq = new Map(result.findings.map((f) => [f.finding, f.seq]));
      process.stdout.write(`${findingsTable(result.findings.map((f) => f.finding), (f) => sent(bySeq.get(f) ?? 0))}\n`);
      assertDelivered(result);
      return;
    }
    const log = logger(opts.logLevel, 1);
    let stopping = false;
    let wake: (() => void) | undefined;
    const stop = () => {
      stopping = true;
      wake?.();
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
    log.info({ stateDir: state.dir }, 'agent started');
    while (!stopping) {
      try {
        const result = await runOnce(state, { root: opts.root, http, log });
        log.info({ findings: result.findings.length, delivered: result.deliveries.filter((d) => d.outcome === 'accepted').length }, 'cycle done');
      } catch (err) {
        if (isAgentError(err) && err.code === 'AGT_ERR_NOT_ENROLLED') throw err;
        log.error({ err }, 'cycle failed');
      }
      const policy = await state.policy();
      const intervals = Object.values(policy?.checks ?? {}).filter((c) => c.enabled).map((c) => c.intervalSeconds);
      const seconds = opts.interval ?? (intervals.length > 0 ? Math.min(...intervals) : 900);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, seconds * 1000);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    log.info('agent stopped');
  });

program
  .command('status')
  .description('Show the enrollment, the chain head and the spool depth.')
  .option('--state-dir <dir>', 'the state directory', defaultStateDir())
  .addOption(new Option('--format <format>', 'output format').choices(['text', 'json']).default('text'))
  .action(async (opts: { stateDir: string; format: string }) => {
    const state = new StateDir(opts.stateDir);
    const identity = await state.identity();
    const chain = await state.chain();
    const spool = await new Spool(state.spoolDir, state.quarantineDir).list();
    const quarantined = await new Spool(state.quarantineDir, state.quarantineDir).list();
    const policy = await state.policy();
    const status = {
      enrolled: identity !== null,
      collector: identity?.collectorUrl ?? null,
      agentId: identity?.agentId ?? null,
      vendor: identity?.vendor ?? null,
      lastSeq: chain.seq,
      spoolDepth: spool.length,
      quarantined: quarantined.length,
      policyVersion: policy?.version ?? null,
    };
    if (opts.format === 'json') {
      process.stdout.write(`${JSON.stringify(status, null, 2)}\n`);
      return;
    }
    for (const [k, v] of Object.entries(status)) process.stdout.write(`${k.padEnd(14)} ${v === null ? '-' : String(v)}\n`);
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  if (isAgentError(err)) {
    process.stderr.write(`vcm-agent: ${err.code}: ${err.message}\n`);
    process.exitCode = 2;
    return;
  }
  process.stderr.write(`vcm-agent: ${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});
