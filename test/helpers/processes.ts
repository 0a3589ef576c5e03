// Real processes for integration tests: the collector server and the two CLIs, from dist/.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** The agent as shipped: the bundle `npm run build` makes (agent/bundle.mjs). */
export const AGENT_CLI = path.join(REPO, 'dist/vcm-agent/cli.js');
/** tsc's output, one file per module: where the footprint test sees which modules a command loads. */
export const AGENT_CLI_MODULES = path.join(REPO, 'dist/agent/cli.js');
export const COLLECTOR_CLI = path.join(REPO, 'dist/collector/cli.js');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runCli(cli: string, args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; cwd?: string } = {}): Promise<CliResult> {
  return runCommand(process.execPath, [cli, ...args], opts);
}

/**
 * Runs a CLI on a pseudo-terminal (util-linux `script`), so that its stdout and stderr are a TTY;
 * both arrive, merged as a terminal shows them, in `stdout`. NO_COLOR is cleared unless given.
 */
export function runOnTerminal(cli: string, args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<CliResult> {
  const quoted = [process.execPath, cli, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  return runCommand('script', ['-qec', quoted, '/dev/null'], { ...opts, env: { NO_COLOR: '', ...opts.env } });
}

export function runCommand(command: string, args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; cwd?: string }): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'], ...(opts.cwd === undefined ? {} : { cwd: opts.cwd }) });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

export interface CollectorProcess {
  url: string;
  child: ChildProcess;
  logs: () => string;
  stop(): Promise<void>;
}

/** Starts `vcm-collector serve` on a free loopback port and waits for its ready line. */
export function startCollectorProcess(dataDir: string, opts: { listen?: string; args?: string[] } = {}): Promise<CollectorProcess> {
  const listen = opts.listen ?? '127.0.0.1:0';
  const child = spawn(process.execPath, [COLLECTOR_CLI, 'serve', '--data-dir', dataDir, '--listen', listen, ...(opts.args ?? [])], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`collector did not become ready:\n${out}`));
    }, 20_000);
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      for (const line of out.split('\n')) {
        if (!line.includes('collector ready')) continue;
        const { url } = JSON.parse(line) as { url: string };
        clearTimeout(timer);
        resolve({
          url,
          child,
          logs: () => out,
          stop: () =>
            new Promise<void>((done) => {
              // Already gone (exited, or killed by a signal): 'exit' will not come again.
              if (child.exitCode !== null || child.signalCode !== null) return done();
              child.once('exit', () => done());
              child.kill('SIGTERM');
            }),
        });
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`collector exited with ${code}:\n${out}`));
    });
  });
}

export async function tempDir(prefix: string): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), `vcm-${prefix}-`));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** Reads one sample from Prometheus text output; undefined when the series is absent. */
export function sample(metrics: string, series: string): number | undefined {
  for (const line of metrics.split('\n')) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  }
  return undefined;
}
