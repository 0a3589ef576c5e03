// Real processes for the daemon tests: the agent daemon with its JSON log lines, enrollment
// through the CLIs, and a reader that walks an agent's stored evidence and verifies the chain.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { AGENT_CLI, COLLECTOR_CLI, runCli } from '../../helpers/processes.js';

export interface LogLine {
  level: number;
  msg: string;
  [k: string]: unknown;
}

/** Settings that make a daemon fast and deterministic enough for a test. */
export const FAST_ENV: Record<string, string> = {
  VCM_CONFIG: '',
  VCM_SCHEDULE_JITTER_SECONDS: '0',
  VCM_DELIVERY_BACKOFF_INITIAL_SECONDS: '0.2',
  VCM_DELIVERY_BACKOFF_MAX_SECONDS: '1',
  VCM_DELIVERY_SHUTDOWN_FLUSH_SECONDS: '2',
  VCM_WATCHDOG_ENABLED: 'false',
};

export class AgentDaemon {
  readonly child: ChildProcess;
  readonly lines: LogLine[] = [];
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  #waiters: { pred: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];

  /** `cli`: the shipped bundle unless a test needs tsc's one-file-per-module output. */
  constructor(args: string[], env: Record<string, string> = {}, cli = AGENT_CLI) {
    this.child = spawn(process.execPath, [cli, 'run', ...args], {
      env: { ...process.env, ...FAST_ENV, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let buf = '';
    this.child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const text = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        let line: LogLine;
        try {
          line = JSON.parse(text) as LogLine;
        } catch {
          continue;
        }
        this.lines.push(line);
        this.#waiters = this.#waiters.filter((w) => {
          if (!w.pred(line)) return true;
          w.resolve(line);
          return false;
        });
      }
    });
    this.child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => resolve({ code, signal })));
  }

  /** Resolves with the first log line (past or future) that matches. */
  waitFor(pred: (l: LogLine) => boolean, timeoutMs = 20_000, what = 'a log line'): Promise<LogLine> {
    const seen = this.lines.find(pred);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}; stderr:\n${this.stderr}\nlog:\n${this.lines.slice(-15).map((l) => JSON.stringify(l)).join('\n')}`)), timeoutMs);
      this.#waiters.push({
        pred,
        resolve: (l) => {
          clearTimeout(timer);
          resolve(l);
        },
      });
      void this.exited.then(() => {
        clearTimeout(timer);
        reject(new Error(`the daemon exited while waiting for ${what}; stderr:\n${this.stderr}\nlog:\n${this.lines.slice(-15).map((l) => JSON.stringify(l)).join('\n')}`));
      });
    });
  }

  /** Waits for a delivery pass that left the spool empty, after `after` log lines. */
  waitDrained(after = 0, timeoutMs = 20_000): Promise<LogLine> {
    return this.waitFor((l) => this.lines.indexOf(l) >= after && l.msg === 'delivery pass' && l.kept === 0 && l.stopped === null, timeoutMs, 'an empty spool');
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    return this.exited;
  }
}

export async function enroll(collectorUrl: string, dataDir: string, stateDir: string, hostname = 'host-1'): Promise<string> {
  const token = await runCli(COLLECTOR_CLI, ['token', 'create', '--vendor', 'acme', '--data-dir', dataDir]);
  if (token.code !== 0) throw new Error(`token create failed: ${token.stderr}`);
  const res = await runCli(AGENT_CLI, ['enroll', '--collector', collectorUrl, '--token', token.stdout.trim(), '--state-dir', stateDir, '--hostname', hostname], { env: { VCM_CONFIG: '' } });
  if (res.code !== 0) throw new Error(`enroll failed: ${res.stderr}`);
  return /as agent ([0-9a-f]{64})/.exec(res.stdout)![1]!;
}

export interface Stored {
  seq: number;
  bytes: Buffer;
  hash: string;
  predicateType: string;
  predicate: {
    seq: number;
    prev: string | null;
    events?: { type: string; detail?: Record<string, unknown> }[];
    finding?: { check: string };
    dropped?: { count: number; firstSeq: number; lastSeq: number; checks: string[]; reason: string };
  };
}

/** Every envelope the collector stored for one agent, in sequence order. */
export async function storedEvidence(dataDir: string, agentId: string): Promise<Stored[]> {
  const out: Stored[] = [];
  const root = path.join(dataDir, 'evidence');
  const walk = async (dir: string): Promise<void> => {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else if (p.includes(`agent=${agentId}`) && e.name.endsWith('.dsse.json')) {
        const bytes = await readFile(p);
        const envelope = JSON.parse(bytes.toString()) as { payload: string };
        const statement = JSON.parse(Buffer.from(envelope.payload, 'base64').toString()) as { predicateType: string; predicate: Stored['predicate'] };
        out.push({ seq: statement.predicate.seq, bytes, hash: createHash('sha256').update(bytes).digest('hex'), predicateType: statement.predicateType, predicate: statement.predicate });
      }
    }
  };
  await walk(root);
  return out.sort((a, b) => a.seq - b.seq);
}

/**
 * Walks the stored chain: seq 1..head, each seq stored once; a missing seq must lie in exactly
 * one stored drop record's span (or in `allowedGaps`); each stored prev is the hash of the stored
 * envelope before it. Returns what it found, for further checks.
 */
export function verifyChain(stored: Stored[], opts: { allowedGaps?: number[] } = {}): { head: number; missing: number[]; droppedCount: number } {
  const bySeq = new Map<number, Stored>();
  for (const s of stored) {
    if (bySeq.has(s.seq)) throw new Error(`seq ${s.seq} is stored twice`);
    bySeq.set(s.seq, s);
  }
  const head = Math.max(0, ...bySeq.keys());
  const drops = stored.filter((s) => s.predicate.dropped !== undefined);
  const missing: number[] = [];
  for (let seq = 1; seq <= head; seq++) {
    const s = bySeq.get(seq);
    if (s === undefined) {
      const covering = drops.filter((d) => seq >= d.predicate.dropped!.firstSeq && seq <= d.predicate.dropped!.lastSeq && seq < d.seq);
      if (covering.length !== 1 && !(opts.allowedGaps ?? []).includes(seq)) {
        throw new Error(`seq ${seq} is missing and covered by ${covering.length} drop records`);
      }
      missing.push(seq);
      continue;
    }
    const before = bySeq.get(seq - 1);
    if (seq === 1 && s.predicate.prev !== null) throw new Error('seq 1 has a predecessor');
    if (before !== undefined && s.predicate.prev !== before.hash) throw new Error(`seq ${seq}: prev is not the hash of seq ${seq - 1}`);
  }
  return { head, missing, droppedCount: drops.reduce((n, d) => n + d.predicate.dropped!.count, 0) };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
