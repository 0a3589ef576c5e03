// A real Prometheus and promtool from Debian's `prometheus` package (.ci/run installs it): a
// server on a free loopback port with a throwaway data folder, its HTTP API, and promtool runs.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';

export const PROMETHEUS_BIN = process.env.VCM_PROMETHEUS ?? '/usr/bin/prometheus';
export const PROMTOOL_BIN = process.env.VCM_PROMTOOL ?? '/usr/bin/promtool';

/** Why the Prometheus tests cannot run here, or null when they can. */
export function prometheusMissing(): string | null {
  const missing = [PROMETHEUS_BIN, PROMTOOL_BIN].filter((p) => !existsSync(p));
  return missing.length === 0 ? null : `${missing.join(' and ')} not found: install Debian's prometheus package (apt-get install prometheus; .ci/run does)`;
}

/**
 * Fails in CI (which must provide Prometheus) and skips with the reason printed elsewhere, so that
 * no test passes silently without the real parts.
 */
export function requirePrometheus(): boolean {
  const missing = prometheusMissing();
  if (missing === null) return true;
  if (process.env.CI === 'true') throw new Error(missing);
  console.warn(`skipping the Prometheus tests: ${missing}`);
  return false;
}

export interface ToolResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function promtool(args: string[], opts: { cwd?: string; input?: string } = {}): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(PROMTOOL_BIN, args, { cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(opts.input ?? '');
  });
}

/** A port nobody listens on now (the OS's choice), for a process that takes no port 0. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export interface PromSample {
  metric: Record<string, string>;
  value?: [number, string];
  values?: [number, string][];
}

export interface PromAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  state: 'pending' | 'firing' | 'inactive';
  activeAt: string;
  value: string;
}

export interface PrometheusProcess {
  url: string;
  child: ChildProcess;
  logs(): string;
  /** The result of an instant query (vector or scalar), or throws with Prometheus's error. */
  query(expr: string, time?: number): Promise<{ resultType: string; result: PromSample[] | [number, string] }>;
  queryRange(expr: string, start: number, end: number, step: number): Promise<{ resultType: string; result: PromSample[] }>;
  alerts(): Promise<PromAlert[]>;
  api<T>(pathname: string, params?: Record<string, string>): Promise<T>;
  stop(): Promise<void>;
}

/**
 * Starts Prometheus with `config` (written to dir/prometheus.yml; rule files named in it are
 * relative to dir) and waits until it is ready.
 */
export async function startPrometheus(dir: string, config: string): Promise<PrometheusProcess> {
  const port = await freePort();
  const configFile = path.join(dir, 'prometheus.yml');
  await writeFile(configFile, config);
  const child = spawn(
    PROMETHEUS_BIN,
    [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${path.join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
      // Short-lived: no hourly compaction or retention concerns.
      '--storage.tsdb.retention.time=1h',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const url = `http://127.0.0.1:${port}`;
  const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`prometheus exited with ${code}:\n${out}`))));
  exited.catch(() => {});
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) await exited;
    try {
      if ((await fetch(`${url}/-/ready`)).ok) break;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`prometheus did not become ready:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }

  async function api<T>(pathname: string, params: Record<string, string> = {}): Promise<T> {
    // Queries and series take POST (long expressions); the read-only listings only GET.
    const post = ['/api/v1/query', '/api/v1/query_range', '/api/v1/series'].includes(pathname);
    const q = new URLSearchParams(params);
    const res = post ? await fetch(`${url}${pathname}`, { method: 'POST', body: q }) : await fetch(`${url}${pathname}?${q}`);
    const body = (await res.json()) as { status: string; data: T; error?: string };
    if (body.status !== 'success') throw new Error(`${pathname} ${JSON.stringify(params)}: ${body.error ?? res.status}`);
    return body.data;
  }

  return {
    url,
    child,
    logs: () => out,
    api,
    query: (expr, time) => api('/api/v1/query', { query: expr, ...(time === undefined ? {} : { time: String(time) }) }),
    queryRange: (expr, start, end, step) => api('/api/v1/query_range', { query: expr, start: String(start), end: String(end), step: String(step) }),
    alerts: async () => (await api<{ alerts: PromAlert[] }>('/api/v1/alerts')).alerts,
    stop: () =>
      new Promise<void>((done) => {
        if (child.exitCode !== null || child.signalCode !== null) return done();
        const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
        child.once('exit', () => {
          clearTimeout(kill);
          done();
        });
        child.kill('SIGTERM');
      }),
  };
}

/** Polls `probe` until it returns something other than undefined, or throws after `timeoutMs`. */
export async function eventually<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last === undefined ? '' : `: ${String(last)}`}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
