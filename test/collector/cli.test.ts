// The collector CLI as a new user meets it in the first hour: a mistyped --data-dir, --format json,
// usage errors and unreadable files as one coded line, policy validation naming every problem.
import { existsSync } from 'node:fs';
import { readdir, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COLLECTOR_CLI, runCli, startCollectorProcess, tempDir } from '../helpers/processes.js';

let dir: Awaited<ReturnType<typeof tempDir>>;
let store: string;

beforeAll(async () => {
  dir = await tempDir('cli');
  store = path.join(dir.dir, 'store');
  // Only serve makes a store.
  await (await startCollectorProcess(store)).stop();
});
afterAll(async () => dir.cleanup());

const cli = (args: string[], env: NodeJS.ProcessEnv = {}) => runCli(COLLECTOR_CLI, args, { env });
const oneLine = (stderr: string, code: string) => expect(stderr).toMatch(new RegExp(`^vcm-collector: ${code}: [^\\n]+\\n$`));

describe('a --data-dir that holds no store', () => {
  it('is refused by every command but serve, with COL_ERR_NO_STORE naming the resolved path, and nothing is made', async () => {
    const missing = path.join(dir.dir, 'typo');
    const policyFile = path.join(dir.dir, 'empty-policy.json');
    await writeFile(policyFile, '{}');
    for (const args of [
      ['token', 'create', '--vendor', 'acme', '--data-dir', missing],
      ['token', 'list', '--data-dir', missing],
      ['policy', 'set', policyFile, '--data-dir', missing],
      ['policy', 'show', '--data-dir', missing],
      ['admin-token', 'create', '--role', 'admin', '--name', 'ops', '--data-dir', missing],
      ['admin-token', 'list', '--data-dir', missing],
      ['key', 'fingerprint', '--data-dir', missing],
      ['log', 'checkpoint', '--vendor', 'acme', '--data-dir', missing],
    ]) {
      const res = await cli(args);
      expect(res.code, `${args.join(' ')}: ${res.stderr}`).toBe(2);
      expect(res.stderr).toBe(`vcm-collector: COL_ERR_NO_STORE: ${missing} holds no evidence store (no secrets/collector-ed25519.pem); make one with: vcm-collector serve --data-dir ${missing}\n`);
      expect(res.stdout).toBe('');
      expect(existsSync(missing), args.join(' ')).toBe(false);
    }
  });

  it('token create without --data-dir does not write ./data', async () => {
    const env = { ...process.env };
    delete env.VCM_DATA_DIR;
    const res = await runCli(COLLECTOR_CLI, ['token', 'create', '--vendor', 'acme'], { cwd: dir.dir, env });
    expect(res.code, res.stderr).toBe(2);
    expect(res.stderr).toContain(`COL_ERR_NO_STORE: ${path.join(dir.dir, 'data')} holds no evidence store`);
    expect(existsSync(path.join(dir.dir, 'data'))).toBe(false);
  });

  it('serve on a taken port fails before it makes a store', async () => {
    const taken: Server = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    try {
      const port = (taken.address() as { port: number }).port;
      const target = path.join(dir.dir, 'never-made');
      const res = await cli(['serve', '--data-dir', target, '--listen', `127.0.0.1:${port}`]);
      expect(res.code).toBe(2);
      expect(res.stderr).toContain('COL_ERR_CONFIG: cannot listen');
      expect(existsSync(target)).toBe(false);
    } finally {
      await new Promise<void>((resolve) => taken.close(() => resolve()));
    }
  });

  it('a store serve made is used as before', async () => {
    const res = await cli(['token', 'create', '--vendor', 'acme', '--data-dir', store]);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/^vcm_et_[A-Za-z0-9_-]{43}\n$/);
  });
});

describe('policy show --policy-version', () => {
  it('shows that version of the policy, not the program version', async () => {
    const res = await cli(['policy', 'show', '--policy-version', '1', '--data-dir', store]);
    expect(res.code, res.stderr).toBe(0);
    expect((JSON.parse(res.stdout) as { version: number }).version).toBe(1);
    const none = await cli(['policy', 'show', '--policy-version', '99', '--data-dir', store]);
    expect(none.code).toBe(2);
    oneLine(none.stderr, 'COL_ERR_NOT_FOUND');
  });
});

describe('--format json', () => {
  it('prints exactly one JSON document for every command that prints data', async () => {
    const policyFile = path.join(dir.dir, 'format-policy.json');
    await writeFile(policyFile, JSON.stringify({ freshnessSeconds: 3600, checks: {} }));
    const created = await cli(['token', 'create', '--vendor', 'acme', '--ttl', '30m', '--format', 'json', '--data-dir', store]);
    expect(created.code, created.stderr).toBe(0);
    const token = JSON.parse(created.stdout) as { token: string; id: string; vendor: string; expiresAt: string };
    expect(token).toMatchObject({ vendor: 'acme', token: expect.stringMatching(/^vcm_et_/), id: expect.stringMatching(/^[0-9a-f]{64}$/) });
    const admin = await cli(['admin-token', 'create', '--role', 'admin', '--name', 'json', '--format', 'json', '--data-dir', store]);
    expect(admin.code, admin.stderr).toBe(0);
    expect(JSON.parse(admin.stdout)).toMatchObject({ token: expect.stringMatching(/^vcm_at_/), name: 'json', role: 'admin', lastUsedAt: null });
    for (const args of [
      ['token', 'list', '--data-dir', store],
      ['token', 'revoke', token.id.slice(0, 8), '--data-dir', store],
      ['admin-token', 'list', '--data-dir', store],
      ['policy', 'show', '--data-dir', store],
      ['policy', 'validate', policyFile],
      ['policy', 'set', policyFile, '--data-dir', store],
      ['key', 'fingerprint', '--data-dir', store],
    ]) {
      const res = await cli([...args, '--format', 'json']);
      expect(res.code, `${args.join(' ')}: ${res.stderr}`).toBe(0);
      expect(() => JSON.parse(res.stdout), `${args.join(' ')}: ${res.stdout}`).not.toThrow();
    }
  });
});

describe('usage errors and unreadable input', () => {
  it('an unknown command or option is COL_ERR_USAGE, exit 2, one line and no help', async () => {
    for (const args of [['frobnicate'], ['token', 'list', '--frmat', 'json'], ['token', 'frob'], ['token', 'create'], ['token', 'create', '--vendor', 'acme', '--ttl', '5 minutes']]) {
      const res = await cli(args);
      expect(res.code, args.join(' ')).toBe(2);
      oneLine(res.stderr, 'COL_ERR_USAGE');
      expect(res.stdout).toBe('');
    }
  });

  it('a token id shorter than the 8-character prefix is a usage error, not "not found"', async () => {
    for (const args of [['token', 'revoke', 'abc', '--data-dir', store], ['admin-token', 'revoke', '1234567', '--data-dir', store]]) {
      const res = await cli(args);
      expect(res.code).toBe(2);
      oneLine(res.stderr, 'COL_ERR_USAGE');
    }
  });

  it('policy validate on a missing file, on invalid JSON, and a missing --admin-token-file: a coded line naming the path, no stack', async () => {
    const missing = path.join(dir.dir, 'no-such-policy.json');
    const bad = path.join(dir.dir, 'bad.json');
    await writeFile(bad, '{"checks": ');
    const cases: [string[], string, string][] = [
      [['policy', 'validate', missing], 'COL_ERR_USAGE', missing],
      [['policy', 'validate', bad], 'COL_ERR_POLICY_INVALID', bad],
      [['token', 'list', '--collector', 'http://127.0.0.1:9', '--admin-token-file', path.join(dir.dir, 'no-token')], 'COL_ERR_USAGE', path.join(dir.dir, 'no-token')],
    ];
    for (const [args, code, named] of cases) {
      const res = await cli(args);
      expect(res.code, res.stderr).toBe(2);
      oneLine(res.stderr, code);
      expect(res.stderr).toContain(named);
      expect(res.stderr).not.toMatch(/\n\s+at /);
    }
  });

  it('policy validate names every problem with its path', async () => {
    const file = path.join(dir.dir, 'many-problems.json');
    await writeFile(
      file,
      JSON.stringify({
        freshnessSeconds: 'soon',
        checks: { vpn: { enabled: true, intervalSeconds: 1, config: {} }, open_ports: { enabled: true, intervalSeconds: 900, config: { allow: [{ protocol: 'tcpx', port: 22 }] } } },
        exceptions: [{ id: 'EX-1', vendor: 'acme', check: 'usb_policy', justification: 'short', approver: 'a@b.example', expires: '2030-01-01T00:00:00.000Z' }],
      }),
    );
    const res = await cli(['policy', 'validate', file]);
    expect(res.code).toBe(2);
    oneLine(res.stderr, 'COL_ERR_POLICY_INVALID');
    for (const where of ['freshnessSeconds', 'checks.vpn.intervalSeconds', 'exceptions.0.justification', 'checks.open_ports.config.allow.0.protocol']) expect(res.stderr).toContain(`${where}:`);
  });

  it('warns about an exception that has already expired, on validate and on set, and still accepts the policy', async () => {
    const file = path.join(dir.dir, 'expired.json');
    await writeFile(file, JSON.stringify({ checks: {}, exceptions: [{ id: 'EX-OLD', vendor: 'acme', check: 'usb_policy', justification: 'firmware flashing until the lab lands', approver: 'ciso@customer.example', expires: '2020-01-01T00:00:00.000Z' }] }));
    for (const args of [['policy', 'validate', file], ['policy', 'set', file, '--data-dir', store]]) {
      const res = await cli(args);
      expect(res.code, res.stderr).toBe(0);
      expect(res.stderr).toBe('vcm-collector: warning: exception EX-OLD (vendor acme, check usb_policy) expired at 2020-01-01T00:00:00.000Z; it waives nothing\n');
    }
    expect((await readdir(path.join(store, 'policy'))).length).toBeGreaterThan(1);
  });
});
