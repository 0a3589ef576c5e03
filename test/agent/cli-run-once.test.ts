// `vcm-agent enroll` and `run --once` as a person at a terminal meets them: against a real collector
// process, and against a loopback server that refuses, or never answers, to show what the agent says
// while it waits, when it is interrupted, and how it logs.
import { createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex, signAnswer } from '../../collector/contract.js';
import { AGENT_CLI, COLLECTOR_CLI, runCli, runOnTerminal, startCollectorProcess, tempDir, type CliResult, type CollectorProcess } from '../helpers/processes.js';

let data: Awaited<ReturnType<typeof tempDir>>;
let collector: CollectorProcess;
let stateDir: string;

const agent = (args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> =>
  runCli(AGENT_CLI, [...args, '--state-dir', stateDir], { env: { VCM_CONFIG: '', ...env }, timeoutMs: 60_000 });

/**
 * A loopback stand-in for the collector, holding its key (it signs its answers over the agent's
 * nonce, as the collector does): the collector in trouble, not an impostor. `refuse`: every
 * request gets a 503 error body. `hold`: no request is ever answered. `hold-results`: the policy
 * is refused at once, the proof is given, deliveries are held.
 */
async function fakeCollector(mode: 'refuse' | 'hold' | 'hold-results'): Promise<{ url: string; delivering: Promise<void>; close: () => Promise<void> }> {
  let delivering!: () => void;
  const seen = new Promise<void>((resolve) => (delivering = resolve));
  const server = http.createServer((req, res) => {
    req.resume();
    const results = req.url?.startsWith('/v1/results') === true;
    if (results) delivering();
    if (mode === 'hold' || (mode === 'hold-results' && results)) return;
    const hello = mode === 'hold-results' && req.url === '/v1/hello';
    const status = hello ? 200 : 503;
    const body = Buffer.from(JSON.stringify(hello ? { service: 'vcm-collector' } : { error: { code: 'COL_ERR_STORE_UNAVAILABLE', message: 'down for the test' } }));
    const nonce = String(req.headers['vcm-nonce']);
    const key = createPrivateKey(readFileSync(path.join(data.dir, 'store', 'secrets', 'collector-ed25519.pem')));
    const proof = signAnswer({ method: req.method ?? 'GET', target: req.url ?? '/', nonce, requestSha256: sha256Hex(Buffer.alloc(0)), status, bodySha256: sha256Hex(body) }, key);
    res.writeHead(status, { 'content-type': 'application/json', 'vcm-collector-proof': proof }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    delivering: seen,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function spoolDepth(): Promise<number> {
  const res = await agent(['status', '--format', 'json']);
  expect(res.code, res.stderr).toBe(0);
  return (JSON.parse(res.stdout) as { spoolDepth: number }).spoolDepth;
}

beforeAll(async () => {
  data = await tempDir('cli-run-once');
  stateDir = path.join(data.dir, 'agent');
  collector = await startCollectorProcess(path.join(data.dir, 'store'));
}, 60_000);

afterAll(async () => {
  await collector?.stop();
  await data?.cleanup();
});

describe('vcm-agent enroll and run --once', () => {
  it('enroll --format json and run --once --format json each print one JSON document', async () => {
    const token = await runCli(COLLECTOR_CLI, ['token', 'create', '--vendor', 'acme', '--data-dir', path.join(data.dir, 'store')]);
    expect(token.code, token.stderr).toBe(0);
    const enrolled = await agent(['enroll', '--collector', collector.url, '--token', token.stdout.trim(), '--format', 'json']);
    expect(enrolled.code, enrolled.stderr).toBe(0);
    expect(JSON.parse(enrolled.stdout)).toMatchObject({ agentId: expect.stringMatching(/^[0-9a-f]{64}$/), vendor: 'acme', collectorUrl: collector.url });
    const once = await agent(['run', '--once', '--format', 'json']);
    expect(once.code, once.stderr).toBe(0);
    const doc = JSON.parse(once.stdout) as { findings: { check: string; status: string; seq: number; sent: string }[]; deliveries: unknown[] };
    expect(doc.findings.length).toBeGreaterThan(0);
    for (const f of doc.findings) expect(['accepted', 'duplicate'], f.check).toContain(f.sent);
    expect(once.stderr).toBe('');
  }, 60_000);

  it('logs readable lines to stderr, not pino JSON, unless JSON logs are asked for', async () => {
    const fake = await fakeCollector('refuse');
    try {
      const text = await agent(['run', '--once', '--format', 'json'], { VCM_COLLECTOR_URL: fake.url });
      expect(text.code).toBe(2);
      const lines = text.stderr.trimEnd().split('\n');
      expect(lines.filter((l) => l.startsWith('{'))).toEqual([]);
      expect(lines).toContainEqual(expect.stringMatching(/^vcm-agent: warn: policy fetch refused; using the cached policy \(.*code COL_ERR_STORE_UNAVAILABLE/));
      expect(lines.at(-1)).toMatch(/^vcm-agent: AGT_ERR_DELIVERY: /);
      expect(text.stderr).not.toContain('\u001b[');
      // stdout stays one JSON document, whatever went wrong.
      expect((JSON.parse(text.stdout) as { findings: { sent: string }[] }).findings.every((f) => f.sent === 'kept')).toBe(true);

      for (const asked of [{ VCM_LOG_FORMAT: 'json' }, { VCM_LOG_FORMAT: 'text', extra: '--log-format=json' }]) {
        const { extra, ...env } = asked as { extra?: string } & NodeJS.ProcessEnv;
        const json = await agent(['run', '--once', ...(extra === undefined ? [] : [extra])], { VCM_COLLECTOR_URL: fake.url, ...env });
        expect(json.code).toBe(2);
        const logs = json.stderr.split('\n').filter((l) => l.startsWith('{'));
        expect(logs.map((l) => (JSON.parse(l) as { msg: string }).msg)).toContain('policy fetch refused; using the cached policy');
      }
    } finally {
      await fake.close();
    }
  }, 60_000);

  it('on a terminal, says what it waits for and for how long at most; nothing of it when not a terminal', async () => {
    const fake = await fakeCollector('hold');
    try {
      const env = { VCM_CONFIG: '', VCM_COLLECTOR_URL: fake.url, VCM_DELIVERY_TIMEOUT_SECONDS: '1' };
      const tty = await runOnTerminal(AGENT_CLI, ['run', '--once', '--state-dir', stateDir], { env, timeoutMs: 60_000 });
      expect(tty.code).toBe(2);
      expect(tty.stdout).toContain(`waiting\u001b[0m for ${fake.url}/v1/policy (policy), up to 2 s`);
      // Before any result leaves, the collector must prove itself: that is what it waits for next.
      expect(tty.stdout).toContain(`for ${fake.url}/v1/hello (the collector's proof), up to 2 s`);
      const piped = await agent(['run', '--once'], env);
      expect(piped.code).toBe(2);
      expect(piped.stderr).not.toContain('waiting');
    } finally {
      await fake.close();
    }
  }, 60_000);

  it('Ctrl-C while it delivers: says how many results wait in the spool, exits 130; the next run sends them', async () => {
    const fake = await fakeCollector('hold-results');
    try {
      const child = spawn(process.execPath, [AGENT_CLI, 'run', '--once', '--state-dir', stateDir], {
        env: { ...process.env, VCM_CONFIG: '', VCM_COLLECTOR_URL: fake.url },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
      await Promise.race([fake.delivering, exited.then(() => Promise.reject(new Error(`run --once exited before delivering:\n${stderr}`)))]);
      child.kill('SIGINT');
      expect(await exited).toBe(130);
      const said = /^vcm-agent: interrupted \(SIGINT\); (\d+) results? waits? in the spool \(.*\) for delivery; the next vcm-agent run --once, or the daemon, sends (it|them)$/m.exec(stderr);
      expect(said, stderr).not.toBeNull();
      const waiting = await spoolDepth();
      expect(Number(said![1])).toBe(waiting);
      expect(waiting).toBeGreaterThan(0);
    } finally {
      await fake.close();
    }
    const next = await agent(['run', '--once']);
    expect(next.code, next.stderr).toBe(0);
    expect(await spoolDepth()).toBe(0);
  }, 60_000);
});
