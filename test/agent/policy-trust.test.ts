// The agent's trust rule (#17, high 1): the customer's policy chooses what is observed, never where
// a secret comes from or where the agent connects. A policy naming Okta credentials is refused by
// `policy set`, and an agent served one anyway (a collector whose store was written behind its
// back) refuses it and sends nothing anywhere.
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultPolicyDocument } from '../../collector/policy.js';
import { AGENT_CLI, COLLECTOR_CLI, runCli, startCollectorProcess, tempDir } from '../helpers/processes.js';

const SECRET = 'provider-secret-0123456789abcdef';

/** A policy whose Okta settings point the agent at `url` with credentials from the provider's host. */
function hostilePolicy(url: string, secretFile: string): Record<string, unknown> {
  const base = defaultPolicyDocument(new Date('2026-12-01T00:00:00Z'));
  const okta = { orgUrl: url, auth: { type: 'apiToken', tokenFile: secretFile } };
  return {
    ...base,
    checks: {
      ...base.checks,
      sso_coverage: { enabled: true, intervalSeconds: 3600, config: { okta } },
      credential_age: { enabled: true, intervalSeconds: 3600, config: { identityProvider: { okta: { orgUrl: url, auth: { type: 'apiToken', tokenEnv: 'VCM_TRUST_TEST_SECRET' } } } } },
    },
  };
}

describe('a policy never says where a secret comes from', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  const seen: { method: string; url: string; authorization: string | undefined }[] = [];
  const attacker = createServer((req: IncomingMessage, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', authorization: req.headers.authorization });
    res.writeHead(200, { 'content-type': 'application/json' }).end('[]');
  });
  let attackerUrl = '';
  let secretFile = '';

  beforeAll(async () => {
    dir = await tempDir('policy-trust');
    secretFile = path.join(dir.dir, 'shadow');
    await writeFile(secretFile, `${SECRET}\n`, { mode: 0o600 });
    await new Promise<void>((resolve) => attacker.listen(0, '127.0.0.1', resolve));
    attackerUrl = `http://127.0.0.1:${(attacker.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => attacker.close(() => resolve()));
    await dir.cleanup();
  });

  it('`policy set` and `policy validate` refuse it with COL_ERR_POLICY_LOCAL_ONLY, naming the setting, and store nothing', async () => {
    const store = path.join(dir.dir, 'store-set');
    // Only serve makes a store (with policy version 1).
    await (await startCollectorProcess(store)).stop();
    const file = path.join(dir.dir, 'hostile.json');
    const { version: _v, createdAt: _c, ...body } = hostilePolicy(attackerUrl, secretFile);
    await writeFile(file, JSON.stringify(body));
    for (const args of [['policy', 'set', file, '--data-dir', store], ['policy', 'validate', file]]) {
      const res = await runCli(COLLECTOR_CLI, args);
      expect(res.code, res.stdout).not.toBe(0);
      expect(res.stderr).toContain('COL_ERR_POLICY_LOCAL_ONLY');
      expect(res.stderr).toContain('checks.sso_coverage.config.okta.auth');
      expect(res.stderr).toContain('checks.credential_age.config.identityProvider.okta.auth');
    }
    expect(await readdir(path.join(store, 'policy'))).toEqual(['1.json']);
  });

  it('an agent served such a policy refuses it (AGT_ERR_POLICY_LOCAL_ONLY), keeps none, and nothing reaches the named URL', async () => {
    const store = path.join(dir.dir, 'store-run');
    // Written behind the collector's back, as whoever controls its store could.
    await mkdir(path.join(store, 'policy'), { recursive: true });
    await writeFile(path.join(store, 'policy', '1.json'), JSON.stringify(hostilePolicy(attackerUrl, secretFile)));
    const collector = await startCollectorProcess(store);
    const state = path.join(dir.dir, 'agent');
    // An agent config without Okta access: exactly the host the policy tried to use.
    await writeFile(path.join(dir.dir, 'config.json'), '{}');
    const env = { VCM_TRUST_TEST_SECRET: SECRET, VCM_CONFIG: path.join(dir.dir, 'config.json') };
    try {
      const token = (await runCli(COLLECTOR_CLI, ['token', 'create', '--vendor', 'acme', '--data-dir', store])).stdout.trim();
      const enrolled = await runCli(AGENT_CLI, ['enroll', '--collector', collector.url, '--token', token, '--state-dir', state], { env });
      expect(enrolled.code, enrolled.stderr).toBe(0);
      // The enrollment answer's policy was not cached.
      await expect(readFile(path.join(state, 'policy.json'), 'utf8')).rejects.toMatchObject({ code: 'ENOENT' });

      const run = await runCli(AGENT_CLI, ['run', '--once', '--state-dir', state], { env });
      expect(`${run.stdout}\n${run.stderr}`).not.toContain(SECRET);
      const status = await runCli(AGENT_CLI, ['status', '--state-dir', state, '--format', 'json'], { env });
      expect(status.code, status.stderr).toBe(0);
      const s = JSON.parse(status.stdout) as { policy: { version: number | null; lastFetchError: string | null } };
      expect(s.policy.version).toBeNull();
      expect(s.policy.lastFetchError).toMatch(/^AGT_ERR_POLICY_LOCAL_ONLY: .*checks\.sso_coverage\.config\.okta\.auth/);
      await expect(readFile(path.join(state, 'policy.json'), 'utf8')).rejects.toMatchObject({ code: 'ENOENT' });
      expect(seen).toEqual([]);
    } finally {
      await collector.stop();
    }
  });
});
