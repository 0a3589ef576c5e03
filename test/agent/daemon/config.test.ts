// The agent's local configuration: strict file, environment overrides, flags, redaction, docs.
import { readFileSync } from 'node:fs';
import { chmod, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ENV_OVERRIDES, agentConfigSchema, describeConfig, envName, loadConfig, identityProviderAccess, oktaSecretStatus, redactUrl, resolveOktaSecret } from '../../../agent/config.js';
import { AGENT_CLI, REPO, runCli, tempDir } from '../../helpers/processes.js';

let dir: Awaited<ReturnType<typeof tempDir>>;
let file: string;
const noEnv = {} as NodeJS.ProcessEnv;

beforeEach(async () => {
  dir = await tempDir('config');
  file = path.join(dir.dir, 'config.json');
});
afterEach(async () => {
  await dir.cleanup();
});

async function write(config: unknown): Promise<void> {
  await writeFile(file, JSON.stringify(config));
}

/** Runs `fn` as a user the file modes apply to: chmod does not stop root, so root runs it as nobody. */
function unprivileged<T>(fn: () => T): T {
  if (process.getuid?.() !== 0) return fn();
  if (typeof process.seteuid !== 'function') throw new Error('running as root without process.seteuid (a worker thread?): an unreadable file cannot be made');
  process.seteuid(65534);
  try {
    return fn();
  } finally {
    process.seteuid(0);
  }
}

/** Every leaf path of the schema, from a config with every optional part filled in. */
function schemaLeaves(): string[] {
  const full = agentConfigSchema.parse({
    collectorUrl: 'https://c.example',
    caFile: '/ca',
    tls: { certFile: '/c', keyFile: '/k' },
    okta: { orgUrl: 'https://acme.okta.com', tokenFile: '/t' },
    schedule: { intervalSeconds: 60 },
    logFormat: 'json',
  });
  const leaves = (v: unknown, prefix: string): string[] =>
    typeof v === 'object' && v !== null ? Object.entries(v).flatMap(([k, x]) => leaves(x, prefix === '' ? k : `${prefix}.${k}`)) : [prefix];
  // The other Okta secret references are alternatives to tokenFile; scopes, rosterFiles and the probes' URLs are list settings (empty by default).
  const oktaAlternatives = ['okta.tokenEnv', 'okta.clientId', 'okta.privateKeyFile', 'okta.privateKeyEnv', 'okta.keyId', 'okta.scopes', 'okta.rosterFiles', 'probes.allowedUrls'];
  return [...leaves(full, ''), ...oktaAlternatives].sort();
}

describe('agent config', () => {
  it('defaults are complete when there is no file at the default path', () => {
    const { config, file: read } = loadConfig({}, { VCM_CONFIG: '' });
    expect(read === null || typeof read === 'string').toBe(true);
    expect(config.spool).toEqual({ maxCount: 10_000, maxBytes: 64 * 1024 * 1024, quarantineMaxCount: 1000 });
    expect(config.delivery.keepAliveSeconds).toBeLessThan(65);
    expect(Object.isFrozen(config) && Object.isFrozen(config.spool)).toBe(true);
  });

  it('is strict: an unknown key, a wrong type or a secret in place of a reference is refused with its path', async () => {
    await write({ spool: { maxCount: 10, maxCuont: 3 } });
    expect(() => loadConfig({ config: file }, noEnv)).toThrow(/AGT_ERR_CONFIG|maxCuont/);
    await write({ delivery: { keepAliveSeconds: 65 } });
    expect(() => loadConfig({ config: file }, noEnv)).toThrow(/delivery\.keepAliveSeconds/);
    await write({ okta: { orgUrl: 'https://acme.okta.com', token: '00abc' } });
    expect(() => loadConfig({ config: file }, noEnv)).toThrow(/okta/);
    await write({ okta: { orgUrl: 'https://acme.okta.com', tokenFile: '/a', tokenEnv: 'B' } });
    expect(() => loadConfig({ config: file }, noEnv)).toThrow(/exactly one of tokenFile, tokenEnv, privateKeyFile or privateKeyEnv/);
    await write({ okta: { orgUrl: 'https://acme.okta.com', privateKeyFile: '/k' } });
    expect(() => loadConfig({ config: file }, noEnv)).toThrow(/needs the service app's clientId/);
    await write({ okta: { orgUrl: 'https://acme.okta.com', tokenFile: '/t', scopes: ['okta.users.read'] } });
    expect(() => loadConfig({ config: file }, noEnv)).toThrow(/go with a private key/);
    await write({ okta: { orgUrl: 'https://acme.okta.com', clientId: '0oa1', privateKeyFile: '/k', scopes: ['okta.users.manage'] } });
    expect(() => loadConfig({ config: file }, noEnv)).toThrow(/read-only scopes only/);
    await write({ okta: { orgUrl: 'http://acme.okta.com', tokenFile: '/t' } });
    expect(() => loadConfig({ config: file }, noEnv)).toThrow(/https/);
    await write({ collectorUrl: 'ftp://x' });
    expect(() => loadConfig({ config: file }, noEnv)).toThrow(/collectorUrl/);
  });

  it('an explicit file that is missing or not JSON is an error; the error names the file', async () => {
    expect(() => loadConfig({ config: path.join(dir.dir, 'nope.json') }, noEnv)).toThrow(/cannot read the config file .*nope\.json/);
    await writeFile(file, '{ "logLevel": ');
    expect(() => loadConfig({ config: file }, noEnv)).toThrow(/not valid JSON/);
  });

  it('an unreadable default file counts as none where the command allows it (check), and says so; a file named must be read', async () => {
    await write({ okta: { orgUrl: 'https://acme.okta.com', tokenEnv: 'OKTA_TOKEN' } });
    // Like a config installed 0640 root:vcm-agent, read by someone outside that group.
    await chmod(dir.dir, 0o755);
    await chmod(file, 0o000);
    const told: [string, string | undefined][] = [];
    const onUnreadableDefault = (f: string, err: NodeJS.ErrnoException) => told.push([f, err.code]);
    const loaded = unprivileged(() => loadConfig({}, noEnv, { defaultFile: file, onUnreadableDefault }));
    expect(told).toEqual([[file, 'EACCES']]);
    expect(loaded.file).toBeNull();
    expect(loaded.config.okta).toBeUndefined();
    expect(identityProviderAccess(loaded.config)).toBeUndefined();
    // Every other command: an error, as before.
    expect(() => unprivileged(() => loadConfig({}, noEnv, { defaultFile: file }))).toThrow(/cannot read the config file .*config\.json/);
    // Named by --config or VCM_CONFIG: an error even where the default may be let go.
    expect(() => unprivileged(() => loadConfig({ config: file }, noEnv, { onUnreadableDefault }))).toThrow(/cannot read the config file .*config\.json/);
    expect(() => unprivileged(() => loadConfig({}, { VCM_CONFIG: file }, { onUnreadableDefault }))).toThrow(/cannot read the config file .*config\.json/);
    expect(told).toHaveLength(1);
    // A missing default file is no config, as ever, and nothing to say.
    expect(loadConfig({}, noEnv, { defaultFile: path.join(dir.dir, 'none.json'), onUnreadableDefault }).file).toBeNull();
    expect(told).toHaveLength(1);
    // Readable again: its Okta access is used.
    await chmod(file, 0o644);
    const readable = unprivileged(() => loadConfig({}, noEnv, { defaultFile: file, onUnreadableDefault }));
    expect([readable.file, readable.config.okta?.orgUrl]).toEqual([file, 'https://acme.okta.com']);
  });

  it('precedence: flags over environment over file over defaults, and each value says where it came from', async () => {
    await write({ stateDir: '/from/file', root: '/from/file', spool: { maxCount: 50 }, watchdog: { rssMaxMb: 100 } });
    const env = { VCM_STATE_DIR: '/from/env', VCM_SPOOL_MAX_COUNT: '70', VCM_WATCHDOG_ENABLED: 'false' } as NodeJS.ProcessEnv;
    const { config, sources } = loadConfig({ config: file, stateDir: '/from/flag', interval: 5 }, env);
    expect(config.stateDir).toBe('/from/flag');
    expect(config.root).toBe('/from/file');
    expect(config.spool.maxCount).toBe(70);
    expect(config.watchdog).toMatchObject({ enabled: false, rssMaxMb: 100 });
    expect(config.schedule.intervalSeconds).toBe(5);
    expect(sources).toMatchObject({
      stateDir: 'flag',
      root: `file ${file}`,
      'spool.maxCount': 'env VCM_SPOOL_MAX_COUNT',
      'watchdog.enabled': 'env VCM_WATCHDOG_ENABLED',
      'schedule.intervalSeconds': 'flag',
    });
  });

  it('an environment value of the wrong type is refused with the variable\'s name', () => {
    expect(() => loadConfig({}, { VCM_CONFIG: '', VCM_SPOOL_MAX_COUNT: 'many' })).toThrow(/VCM_SPOOL_MAX_COUNT: expected a number/);
    expect(() => loadConfig({}, { VCM_CONFIG: '', VCM_WATCHDOG_ENABLED: 'perhaps' })).toThrow(/VCM_WATCHDOG_ENABLED/);
    expect(() => loadConfig({}, { VCM_CONFIG: '', VCM_SPOOL_MAX_COUNT: '1' })).toThrow(/spool\.maxCount.*env VCM_SPOOL_MAX_COUNT/);
  });

  it('every setting has an environment override, named VCM_ + its path in upper snake case', () => {
    expect(ENV_OVERRIDES.map((o) => o.path).sort()).toEqual(schemaLeaves());
    for (const o of ENV_OVERRIDES) expect(o.env).toBe(envName(o.path));
    expect(envName('delivery.backoffMaxSeconds')).toBe('VCM_DELIVERY_BACKOFF_MAX_SECONDS');
  });

  it('agent/README.md documents exactly these environment variables', () => {
    const readme = readFileSync(path.join(REPO, 'agent/README.md'), 'utf8');
    const documented = readme
      .split('\n')
      .filter((l) => /^\| `VCM_[A-Z_]+` \| `[a-zA-Z.]+` \|/.test(l))
      .map((l) => l.split('|').slice(1, 3).map((c) => c.trim().replace(/`/g, '')));
    expect(documented).toEqual(ENV_OVERRIDES.map((o) => [o.env, o.path]));
  });

  it('never prints a secret: URL passwords are redacted and the Okta token is only said to be present', async () => {
    expect(redactUrl('https://user:hunter2@c.example:8470/x')).toBe('https://user:redacted@c.example:8470/x');
    const env = { VCM_CONFIG: '', OKTA_TOKEN: '00supersecret' } as NodeJS.ProcessEnv;
    const loaded = loadConfig({ config: undefined }, { ...env, VCM_OKTA_ORG_URL: 'https://acme.okta.com', VCM_OKTA_TOKEN_ENV: 'OKTA_TOKEN', VCM_COLLECTOR_URL: 'https://u:hunter2@c.example' });
    const { report, problems } = describeConfig(loaded, env);
    const text = JSON.stringify(report);
    expect(text).not.toContain('00supersecret');
    expect(text).not.toContain('hunter2');
    expect(text).toContain('env OKTA_TOKEN: present');
    expect(problems).toEqual([]);
    expect(oktaSecretStatus({ orgUrl: 'https://a.okta.com', tokenEnv: 'NOPE' }, env).state).toBe('missing');
    expect(resolveOktaSecret({ orgUrl: 'https://a.okta.com', tokenEnv: 'OKTA_TOKEN' }, env)).toBe('00supersecret');
    await writeFile(path.join(dir.dir, 'token'), '  00fromfile\n');
    expect(resolveOktaSecret({ orgUrl: 'https://a.okta.com', tokenFile: path.join(dir.dir, 'token') }, env)).toBe('00fromfile');
    // A private key by reference: reported as the private key, never printed.
    const keyEnv = { ...env, OKTA_KEY: '-----BEGIN PRIVATE KEY-----\nMC4CAQ\n-----END PRIVATE KEY-----' };
    const withKey = loadConfig({}, { ...keyEnv, VCM_OKTA_ORG_URL: 'https://acme.okta.com', VCM_OKTA_CLIENT_ID: '0oa1', VCM_OKTA_PRIVATE_KEY_ENV: 'OKTA_KEY', VCM_OKTA_SCOPES: 'okta.users.read, okta.apiTokens.read' });
    expect(withKey.config.okta?.scopes).toEqual(['okta.users.read', 'okta.apiTokens.read']);
    const keyReport = JSON.stringify(describeConfig(withKey, keyEnv).report);
    expect(keyReport).toContain('env OKTA_KEY: present');
    expect(keyReport).not.toContain('MC4CAQ');
    // What the checks get: the org and the auth, and the secret only when a check asks.
    const access = identityProviderAccess(withKey.config, keyEnv)!.okta!;
    expect(access).toMatchObject({ orgUrl: 'https://acme.okta.com', auth: { type: 'privateKey', clientId: '0oa1', scopes: ['okta.users.read', 'okta.apiTokens.read'] } });
    expect(await access.secret()).toContain('MC4CAQ');
    // A reference that does not resolve is a CheckError for the check, not a crash of the agent.
    const missing = identityProviderAccess({ okta: { orgUrl: 'https://a.okta.com', tokenEnv: 'NOPE' } }, env)!.okta!;
    await expect(missing.secret()).rejects.toMatchObject({ code: 'CHK_ERR_NOT_CONFIGURED', message: expect.stringContaining('env NOPE') });
    expect(identityProviderAccess({}, env)).toBeUndefined();
  });

  it('run --check-config prints the effective config, and fails on a missing CA file (real process)', async () => {
    await write({ stateDir: path.join(dir.dir, 'state'), caFile: path.join(dir.dir, 'missing-ca.pem'), collectorUrl: 'https://agent:pw@c.example:8470' });
    const bad = await runCli(AGENT_CLI, ['run', '--check-config', '--config', file], { env: { VCM_SPOOL_MAX_COUNT: '500' } });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('AGT_ERR_CONFIG');
    const report = JSON.parse(bad.stdout) as { effective: { spool: { maxCount: number }; collectorUrl: string }; sources: Record<string, string>; valid: boolean };
    expect(report.valid).toBe(false);
    expect(report.effective.spool.maxCount).toBe(500);
    expect(report.effective.collectorUrl).not.toContain('pw@');
    expect(report.sources['spool.maxCount']).toBe('env VCM_SPOOL_MAX_COUNT');
    await write({ stateDir: path.join(dir.dir, 'state') });
    const good = await runCli(AGENT_CLI, ['run', '--check-config', '--config', file]);
    expect(good.code, good.stderr).toBe(0);
    expect((JSON.parse(good.stdout) as { valid: boolean }).valid).toBe(true);
  });
});
