#!/usr/bin/env node
// vcm-collector: verify, judge and store signed results from vcm agents, and expose metrics.
import { Command, InvalidArgumentError, Option } from 'commander';
import { AGENT_VERSION } from '../agent/version.js';
import { vendorSchema } from './contract.js';
import { runDemo } from './demo.js';
import { CollectorError, isCollectorError } from './errors.js';
import { DEFAULT_LISTEN, parseCollectorConfig, startCollector } from './server.js';
import { FsEvidenceStore } from './store.js';
import { createToken } from './tokens.js';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
const defaultDataDir = process.env.VCM_DATA_DIR ?? './data';

function duration(value: string): number {
  const m = /^(\d+)([smhd])$/.exec(value);
  if (m === null) throw new InvalidArgumentError('expected a duration like 30m, 24h or 7d');
  return Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[m[2] as 's' | 'm' | 'h' | 'd'];
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a whole number ≥ 1');
  return n;
}

function vendor(value: string): string {
  const parsed = vendorSchema.safeParse(value);
  if (!parsed.success) throw new InvalidArgumentError(parsed.error.issues[0]?.message ?? 'invalid vendor');
  return parsed.data;
}

const program = new Command('vcm-collector')
  .description('Verify, judge and store signed results from vcm agents, and expose Prometheus metrics.')
  .version(AGENT_VERSION)
  .showHelpAfterError();

program
  .command('serve')
  .description('Serve enrollment, ingest, policy, /metrics, /healthz and /readyz.')
  .option('--data-dir <dir>', 'the filesystem evidence store (evidence/, keys/, policy/, tokens/)', defaultDataDir)
  .option('--listen <host:port>', 'address to listen on', DEFAULT_LISTEN)
  .option('--allow-plain-http', 'allow plain HTTP on a non-loopback address (TLS terminated in front)')
  .addOption(new Option('--log-level <level>').choices(LOG_LEVELS).default('info'))
  .action(async (opts: { dataDir: string; listen: string; allowPlainHttp?: boolean; logLevel: string }) => {
    const config = parseCollectorConfig({
      dataDir: opts.dataDir,
      listen: opts.listen,
      allowPlainHttp: opts.allowPlainHttp === true,
      logLevel: opts.logLevel as 'info',
    });
    const running = await startCollector(config);
    const shutdown = () => {
      void running.close().then(() => process.exit(0));
    };
    process.once('SIGTERM', shutdown);
    process.once('SIGINT', shutdown);
  });

const token = program.command('token').description('Enrollment tokens.');
token
  .command('create')
  .description('Create a one-time enrollment token for a vendor and print only the token.')
  .requiredOption('--vendor <name>', 'the vendor whose agents this token enrolls', vendor)
  .option('--data-dir <dir>', 'the same store a running `serve` uses', defaultDataDir)
  .option('--ttl <duration>', 'how long the token stays valid (e.g. 30m, 24h, 7d)', duration, 24 * 3600)
  .option('--uses <n>', 'how many enrollments the token allows', positiveInt, 1)
  .action(async (opts: { vendor: string; dataDir: string; ttl: number; uses: number }) => {
    const store = new FsEvidenceStore(opts.dataDir);
    await store.ping();
    const { token: value } = await createToken(store, { vendor: opts.vendor, ttlSeconds: opts.ttl, uses: opts.uses });
    process.stdout.write(`${value}\n`);
  });

program
  .command('demo')
  .description('Local demo: a collector on ./data, and an agent on this machine enrolled to it that runs one cycle.')
  .option('--data-dir <dir>', 'the evidence store', './data')
  .option('--listen <host:port>', 'address to listen on (loopback)', DEFAULT_LISTEN)
  .option('--vendor <name>', 'the demo vendor', vendor, 'demo-vendor')
  .option('--no-wait', 'exit after the cycle instead of serving until Ctrl-C')
  .action(async (opts: { dataDir: string; listen: string; vendor: string; wait: boolean }) => {
    await runDemo(opts);
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  if (isCollectorError(err)) {
    process.stderr.write(`vcm-collector: ${err.code}: ${err.message}\n`);
    process.exitCode = 2;
    return;
  }
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'EADDRINUSE' || code === 'EACCES') {
    const e = new CollectorError('COL_ERR_CONFIG', `cannot listen: ${(err as Error).message}`);
    process.stderr.write(`vcm-collector: ${e.code}: ${e.message}\n`);
    process.exitCode = 2;
    return;
  }
  process.stderr.write(`vcm-collector: ${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});
