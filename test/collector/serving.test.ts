// Serving: TLS with a pinned CA for the agent, graceful shutdown that finishes in-flight writes,
// readiness that follows the store, and store failures that answer 503 and acknowledge nothing.
import { execFileSync } from 'node:child_process';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CollectorError } from '../../collector/errors.js';
import { parseCollectorConfig, startCollector } from '../../collector/server.js';
import { FsEvidenceStore, type EvidenceStore, type PutResult } from '../../collector/store.js';
import { chain, enrollTestAgent } from '../helpers/agents.js';
import { AGENT_CLI, COLLECTOR_CLI, runCli, startCollectorProcess, tempDir } from '../helpers/processes.js';

const log = pino({ level: 'silent' });

/** A filesystem store whose writes can be slowed down or made to fail, and whose ping can fail. */
class FaultyStore extends FsEvidenceStore {
  delayMs = 0;
  failWrites = false;
  failPing = false;
  override async putIfAbsent(key: string, bytes: Buffer): Promise<PutResult> {
    if (this.failWrites && key.startsWith('evidence/')) throw new CollectorError('COL_ERR_STORE_UNAVAILABLE', 'evidence store write failed (ENOSPC)');
    if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
    return super.putIfAbsent(key, bytes);
  }
  override async ping(): Promise<void> {
    if (this.failPing) throw new CollectorError('COL_ERR_STORE_UNAVAILABLE', 'store unreachable');
    return super.ping();
  }
}

async function count(store: EvidenceStore): Promise<number> {
  let n = 0;
  for await (const _ of store.list('evidence/')) n++;
  return n;
}

describe('TLS', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  beforeAll(async () => {
    dir = await tempDir('tls');
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
      '-keyout', path.join(dir.dir, 'key.pem'), '-out', path.join(dir.dir, 'cert.pem'),
      '-subj', '/CN=vcm-test-collector', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
    ], { stdio: 'pipe' });
  });
  afterAll(async () => dir.cleanup());

  it('serves HTTPS, and the agent enrolls and delivers only with the collector CA pinned', async () => {
    const store = path.join(dir.dir, 'store');
    const collector = await startCollectorProcess(store, { args: ['--tls-cert', path.join(dir.dir, 'cert.pem'), '--tls-key', path.join(dir.dir, 'key.pem')] });
    try {
      expect(collector.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      const token = (await runCli(COLLECTOR_CLI, ['token', 'create', '--vendor', 'acme', '--data-dir', store])).stdout.trim();
      const unpinned = await runCli(AGENT_CLI, ['enroll', '--collector', collector.url, '--token', token, '--state-dir', path.join(dir.dir, 'a0')]);
      expect(unpinned.code).toBe(2);
      expect(unpinned.stderr).toContain('AGT_ERR_COLLECTOR_UNREACHABLE');
      const state = path.join(dir.dir, 'a1');
      const enrolled = await runCli(AGENT_CLI, ['enroll', '--collector', collector.url, '--token', token, '--state-dir', state, '--ca-file', path.join(dir.dir, 'cert.pem')]);
      expect(enrolled.code, enrolled.stderr).toBe(0);
      const run = await runCli(AGENT_CLI, ['run', '--once', '--state-dir', state, '--ca-file', path.join(dir.dir, 'cert.pem')]);
      expect(run.code, run.stderr).toBe(0);
      expect(run.stdout).toContain('accepted');
    } finally {
      await collector.stop();
    }
  });

  it('allows a non-loopback listener with TLS, and refuses it without', () => {
    const tls = { certFile: 'c', keyFile: 'k' };
    expect(parseCollectorConfig({ listen: '0.0.0.0:8470', tls }).tls).toEqual(tls);
    expect(() => parseCollectorConfig({ listen: '0.0.0.0:8470' })).toThrow(/refusing plain HTTP/);
  });
});

describe('graceful shutdown and store health', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  beforeAll(async () => {
    dir = await tempDir('serving');
  });
  afterAll(async () => dir.cleanup());

  it('finishes a write in flight before closing, then refuses new connections', async () => {
    const store = new FaultyStore(path.join(dir.dir, 'graceful'));
    const collector = await startCollector(parseCollectorConfig({ dataDir: store.root, listen: '127.0.0.1:0' }), { log, store });
    const agent = await enrollTestAgent(collector.url, store);
    store.delayMs = 400;
    const inFlight = fetch(`${collector.url}/v1/results`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: chain(agent, 1)[0]! });
    await new Promise((r) => setTimeout(r, 100));
    const closed = collector.close();
    const res = await inFlight;
    expect(res.status).toBe(200);
    await closed;
    expect(await count(store)).toBe(1);
    await expect(fetch(`${collector.url}/healthz`)).rejects.toThrow();
  });

  it('answers 503 and acknowledges nothing while the store cannot write, and /readyz follows the store', async () => {
    const store = new FaultyStore(path.join(dir.dir, 'faulty'));
    const collector = await startCollector(parseCollectorConfig({ dataDir: store.root, listen: '127.0.0.1:0' }), { log, store });
    try {
      const agent = await enrollTestAgent(collector.url, store);
      const envs = chain(agent, 2);
      store.failWrites = true;
      const res = await fetch(`${collector.url}/v1/results`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: envs[0]! });
      expect(res.status).toBe(503);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('COL_ERR_STORE_UNAVAILABLE');
      expect(await count(store)).toBe(0);
      store.failPing = true;
      expect((await fetch(`${collector.url}/readyz`)).status).toBe(503);
      expect((await fetch(`${collector.url}/healthz`)).status).toBe(200);
      store.failWrites = false;
      store.failPing = false;
      expect((await fetch(`${collector.url}/readyz`)).status).toBe(200);
      // The agent resends; now it is stored, once.
      for (const e of envs) {
        const ok = await fetch(`${collector.url}/v1/results`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: e });
        expect(ok.status).toBe(200);
      }
      expect(await count(store)).toBe(2);
      const m = await (await fetch(`${collector.url}/metrics`)).text();
      expect(m).toMatch(/^vcm_evidence_store_errors_total 1$/m);
    } finally {
      await collector.close();
    }
  });
});

describe('admin CLI', () => {
  it('bootstraps an admin token, and manages tokens, agents and policy locally and over the API', async () => {
    const dir = await tempDir('admin-cli');
    const store = path.join(dir.dir, 'store');
    const collector = await startCollectorProcess(store);
    try {
      const adminToken = (await runCli(COLLECTOR_CLI, ['admin-token', 'create', '--role', 'admin', '--name', 'ops', '--data-dir', store])).stdout.trim();
      expect(adminToken).toMatch(/^vcm_at_/);
      const env = { VCM_ADMIN_TOKEN: adminToken };
      const remote = ['--collector', collector.url];
      const created = await runCli(COLLECTOR_CLI, ['token', 'create', '--vendor', 'acme', ...remote], { env });
      expect(created.code, created.stderr).toBe(0);
      const listed = await runCli(COLLECTOR_CLI, ['token', 'list', '--data-dir', store, '--format', 'json']);
      const tokens = JSON.parse(listed.stdout) as { id: string; state: string }[];
      expect(tokens).toHaveLength(1);
      expect(tokens[0]?.state).toBe('usable');
      const agentState = path.join(dir.dir, 'agent');
      expect((await runCli(AGENT_CLI, ['enroll', '--collector', collector.url, '--token', created.stdout.trim(), '--state-dir', agentState])).code).toBe(0);
      const agents = await runCli(COLLECTOR_CLI, ['agents', 'list', ...remote, '--format', 'json'], { env });
      const [agent] = JSON.parse(agents.stdout) as { agentId: string; vendor: string }[];
      expect(agent?.vendor).toBe('acme');
      const revoked = await runCli(COLLECTOR_CLI, ['agents', 'revoke', agent!.agentId, '--reason', 'test', ...remote], { env });
      expect(revoked.code, revoked.stderr).toBe(0);
      const refused = await runCli(AGENT_CLI, ['run', '--once', '--state-dir', agentState]);
      expect(refused.code).toBe(2);
      expect(await readdir(path.join(agentState, 'quarantine'))).not.toHaveLength(0);

      const noToken = await runCli(COLLECTOR_CLI, ['agents', 'list', ...remote]);
      expect(noToken.code).toBe(2);
      expect(noToken.stderr).toContain('COL_ERR_UNAUTHORIZED');

      const policyFile = path.join(dir.dir, 'policy.json');
      const shown = await runCli(COLLECTOR_CLI, ['policy', 'show', '--data-dir', store]);
      const doc = JSON.parse(shown.stdout) as Record<string, unknown>;
      await import('node:fs/promises').then((fs) => fs.writeFile(policyFile, JSON.stringify({ ...doc, freshnessSeconds: 900 })));
      expect((await runCli(COLLECTOR_CLI, ['policy', 'validate', policyFile])).code).toBe(0);
      const set = await runCli(COLLECTOR_CLI, ['policy', 'set', policyFile, ...remote], { env });
      expect(set.stdout).toContain('policy version 2 written');
      await import('node:fs/promises').then((fs) => fs.writeFile(policyFile, JSON.stringify({ ...doc, freshnessSeconds: 5 })));
      const invalid = await runCli(COLLECTOR_CLI, ['policy', 'validate', policyFile]);
      expect(invalid.code).toBe(2);
      expect(invalid.stderr).toContain('COL_ERR_POLICY_INVALID');
    } finally {
      await collector.stop();
      await dir.cleanup();
    }
  });

  it('names the store and the path that failed when it cannot open the store, for serve and for local commands', async () => {
    const dir = await tempDir('cli-store');
    try {
      // Tests run as root, which no permission stops: a path under a regular file fails instead (ENOTDIR).
      const file = path.join(dir.dir, 'a-file');
      await writeFile(file, '');
      const underFile = path.join(file, 'data');
      // A store whose journal folder is taken by a file: the failure is in taking the journal.
      const badJournal = path.join(dir.dir, 'store');
      await mkdir(path.join(badJournal, 'secrets'), { recursive: true });
      await writeFile(path.join(badJournal, 'secrets', 'collector-ed25519.pem'), '');
      await writeFile(path.join(badJournal, '.journal'), '');
      // A local command does not make a store: under a file there is none.
      const local = await runCli(COLLECTOR_CLI, ['token', 'list', '--data-dir', underFile]);
      expect(local.code, local.stderr).toBe(2);
      expect(local.stderr).toBe(`vcm-collector: COL_ERR_NO_STORE: ${underFile} holds no evidence store (no secrets/collector-ed25519.pem); make one with: vcm-collector serve --data-dir ${underFile}\n`);
      for (const [args, named] of [
        [['serve', '--data-dir', underFile, '--listen', '127.0.0.1:0'], underFile],
        [['token', 'list', '--data-dir', badJournal], path.join(badJournal, '.journal')],
        [['serve', '--data-dir', badJournal, '--listen', '127.0.0.1:0'], path.join(badJournal, '.journal')],
      ] as const) {
        const res = await runCli(COLLECTOR_CLI, [...args]);
        expect(res.code, res.stderr).toBe(2);
        expect(res.stderr).toMatch(/^vcm-collector: COL_ERR_STORE_UNAVAILABLE: cannot open the evidence store at /);
        expect(res.stderr).toContain(named);
        expect(res.stderr).not.toContain('cannot listen');
      }
    } finally {
      await dir.cleanup();
    }
  });
});
