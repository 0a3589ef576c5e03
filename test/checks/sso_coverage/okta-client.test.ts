// The SDK client as the check builds it: GET cache off, the rate-limit executor's budget, error
// mapping, and the SDK loaded only when Okta is configured.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Client } from '@okta/okta-sdk-nodejs';
import { describe, expect, it } from 'vitest';
import { CheckError } from '../../../checks/errors.js';
import { createOktaClient, endpointTemplate, quoteFilterValue, toCheckError } from '../../../checks/sso_coverage/okta.js';
import { oktaConfigSchema, type OktaConfig } from '../../../checks/sso_coverage/schema.js';
import { startOktaServer, type OktaServer } from '../../helpers/okta-server.js';
import { TOKEN } from './harness.js';
import { baseScenario, GROUP_ID, materialize } from './scenario.js';

async function withServer<T>(opts: Partial<Parameters<typeof startOktaServer>[0]>, fn: (server: OktaServer) => Promise<T>): Promise<T> {
  const s = baseScenario({ staff: 3 });
  const org = materialize(s).org;
  const server = await startOktaServer({ org, apiTokens: [TOKEN], ...opts });
  // The SDK's default cache stores a resource under its self link: point it at this server.
  for (const g of org.groups) g._links = { self: { href: `${server.url}/api/v1/groups/${String(g.id)}` } };
  try {
    return await fn(server);
  } finally {
    await server.close();
  }
}

/** Settings as resolveOktaAccess settles them: an org and an API token's auth. */
const config = (url: string, extra: Record<string, unknown> = {}): OktaConfig => ({
  ...oktaConfigSchema.parse({ orgUrl: url, ...extra }),
  orgUrl: url,
  auth: { type: 'apiToken' },
});

describe('the Okta SDK client', () => {
  it("has the SDK's GET cache off: the same resource read twice is two requests", async () => {
    await withServer({}, async (server) => {
      const { client } = await createOktaClient(config(server.url), TOKEN, new AbortController().signal);
      await client.groupApi.getGroup({ groupId: GROUP_ID });
      await client.groupApi.getGroup({ groupId: GROUP_ID });
      expect(server.requests.filter((r) => r.endpoint === 'GET /api/v1/groups/{id}')).toHaveLength(2);
    });
  });

  it('(control) a client with the default cache answers the second read from memory', async () => {
    await withServer({}, async (server) => {
      const client = new Client({ orgUrl: server.url, token: TOKEN });
      await client.groupApi.getGroup({ groupId: GROUP_ID });
      await client.groupApi.getGroup({ groupId: GROUP_ID });
      expect(server.requests.filter((r) => r.endpoint === 'GET /api/v1/groups/{id}')).toHaveLength(1);
    });
  });

  it('maxRetries 0 means no retry (the SDK README says 0 is unlimited; its code does not retry)', async () => {
    await withServer({ storms: [{ endpoint: 'GET /api/v1/groups/{id}', count: 1 }] }, async (server) => {
      const { client, stats } = await createOktaClient(config(server.url, { rateLimit: { maxRetries: 0 } }), TOKEN, new AbortController().signal);
      await expect(client.groupApi.getGroup({ groupId: GROUP_ID })).rejects.toMatchObject({ status: 429, errorCode: 'E0000047' });
      expect(server.requests).toHaveLength(1);
      expect(stats.retries).toBe(0);
    });
  });

  it('retries a 429 after the announced reset, and counts the retry', async () => {
    await withServer({ storms: [{ endpoint: 'GET /api/v1/groups/{id}', count: 1 }] }, async (server) => {
      const { client, stats } = await createOktaClient(config(server.url, { rateLimit: { maxRetries: 1 } }), TOKEN, new AbortController().signal);
      const g = await client.groupApi.getGroup({ groupId: GROUP_ID });
      expect(g.id).toBe(GROUP_ID);
      expect(server.requests.map((r) => r.status)).toEqual([429, 200]);
      expect(server.requests[1]!.at).toBeGreaterThanOrEqual(server.requests[0]!.resetAtMs!);
      expect(server.requests[1]!.retryCount).toBe('1');
      expect(stats).toMatchObject({ requests: 2, retries: 1 });
    });
  });

  it('an abort during a rate-limit wait ends the wait at once', async () => {
    await withServer({ storms: [{ endpoint: 'GET /api/v1/groups/{id}', count: 1 }], resetAfterSeconds: 30 }, async (server) => {
      const ctrl = new AbortController();
      const { client } = await createOktaClient(config(server.url), TOKEN, ctrl.signal);
      const pending = client.groupApi.getGroup({ groupId: GROUP_ID });
      setTimeout(() => ctrl.abort(), 100);
      await expect(pending).rejects.toMatchObject({ name: 'AbortError' });
      expect(server.requests).toHaveLength(1);
    });
  });
});

describe('helpers', () => {
  it('names endpoints by template, never by id', () => {
    expect(endpointTemplate('get', 'https://acme.okta.com/api/v1/users?limit=200')).toBe('GET /api/v1/users');
    expect(endpointTemplate('GET', 'https://acme.okta.com/api/v1/users/00u1/factors')).toBe('GET /api/v1/users/{id}/factors');
    expect(endpointTemplate('GET', 'https://acme.okta.com/api/v1/apps/0oa1/users?after=x')).toBe('GET /api/v1/apps/{id}/users');
    expect(endpointTemplate('GET', 'https://acme.okta.com/api/v1/groups/00g1')).toBe('GET /api/v1/groups/{id}');
    expect(endpointTemplate('POST', 'https://acme.okta.com/oauth2/v1/token')).toBe('POST /oauth2/v1/token');
  });

  it('quotes filter values', () => {
    expect(quoteFilterValue('Provider Staff')).toBe('"Provider Staff"');
    expect(quoteFilterValue('a "b" \\ c')).toBe('"a \\"b\\" \\\\ c"');
  });

  const signal = new AbortController().signal;
  it.each([
    [{ status: 401, errorCode: 'E0000011' }, 'CHK_ERR_PERMISSION'],
    [{ status: 403, errorCode: 'E0000006' }, 'CHK_ERR_PERMISSION'],
    [{ status: 429, errorCode: 'E0000047' }, 'CHK_ERR_TIMEOUT'],
    [{ status: 404, errorCode: 'E0000007' }, 'CHK_ERR_SOURCE_MISSING'],
    [{ status: 503 }, 'CHK_ERR_NETWORK'],
    [{ status: 400, errorCode: 'E0000031' }, 'CHK_ERR_INTERNAL'],
    [{ status: 400, url: 'https://acme.okta.com/oauth2/v1/token' }, 'CHK_ERR_PERMISSION'],
    [Object.assign(new Error('x'), { name: 'FetchError', type: 'system', code: 'ECONNREFUSED' }), 'CHK_ERR_NETWORK'],
    [Object.assign(new Error('x'), { name: 'FetchError', type: 'request-timeout' }), 'CHK_ERR_TIMEOUT'],
    [Object.assign(new Error('x'), { name: 'FetchError', type: 'invalid-json' }), 'CHK_ERR_PARSE'],
    [Object.assign(new Error('x'), { name: 'AbortError' }), 'CHK_ERR_TIMEOUT'],
    [new SyntaxError('Unexpected token'), 'CHK_ERR_PARSE'],
    [new TypeError('boom'), 'CHK_ERR_INTERNAL'],
  ])('maps %o to %s', (err, code) => {
    expect(toCheckError(err, 'the user list', 'secret-value', signal).code).toBe(code);
  });

  it('keeps a CheckError as it is, and redacts the secret from other messages', () => {
    const e = new CheckError('CHK_ERR_PARSE', 'x');
    expect(toCheckError(e, 'w', 's3cr3t-token', signal)).toBe(e);
    expect(toCheckError(new Error('bad s3cr3t-token here'), 'w', 's3cr3t-token', signal).message).not.toContain('s3cr3t-token');
  });
});

describe('the SDK is loaded lazily', () => {
  // Agents without Okta must not load the SDK: no module of the check imports it at the top,
  // and the module that does import it is itself imported dynamically.
  const dir = fileURLToPath(new URL('../../../checks/sso_coverage/', import.meta.url));
  const files = readdirSync(dir).filter((f) => f.endsWith('.ts'));

  it.each(files)('%s has no value import of the SDK or of okta.ts', (f) => {
    const text = readFileSync(dir + f, 'utf8');
    const valueImports = [...text.matchAll(/^import\s+(?!type\b)[^;]*from\s+'([^']+)'/gm)].map((m) => m[1]);
    expect(valueImports).not.toContain('@okta/okta-sdk-nodejs');
    expect(valueImports).not.toContain('./okta.js');
  });

  it('at run time (built output): listing the checks and an unconfigured run load no SDK; a configured run does', () => {
    const root = fileURLToPath(new URL('../../../', import.meta.url));
    // test/helpers/global-setup.ts builds dist/ before the suite.
    expect(existsSync(`${root}dist/checks/index.js`), 'dist/checks/index.js is missing: run npm run build').toBe(true);
    const script = `
      import { createRequire } from 'node:module';
      const require = createRequire(import.meta.url);
      const loaded = () => Object.keys(require.cache).some((k) => k.includes('okta-sdk-nodejs'));
      const { CHECKS } = await import('./dist/checks/index.js');
      const { runCheck } = await import('./dist/checks/runner.js');
      const { ReplayHostIO } = await import('./dist/checks/replay.js');
      const sso = CHECKS.find((c) => c.id === 'sso_coverage');
      const io = () => new ReplayHostIO({ version: 1, platform: 'linux', calls: [] });
      const out = [loaded()];
      out.push((await runCheck(sso, { io: io() })).reasons[0].code, loaded());
      process.env.VCM_LAZY_TOKEN = 'x';
      const identityProvider = { okta: { orgUrl: 'http://127.0.0.1:9', auth: { type: 'apiToken' }, secret: () => Promise.resolve(process.env.VCM_LAZY_TOKEN) } };
      out.push((await runCheck(sso, { io: io(), identityProvider, configs: { sso_coverage: { okta: { requestTimeoutMs: 1000 } } } })).status, loaded());
      console.log(JSON.stringify(out));`;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: root, encoding: 'utf8' });
    expect(JSON.parse(out.trim().split('\n').at(-1)!)).toEqual([false, 'CHK_ERR_NOT_CONFIGURED', false, 'unknown', true]);
  });

  it('index.ts imports okta.ts inside collect, and okta.ts imports the SDK inside a function', () => {
    expect(readFileSync(dir + 'index.ts', 'utf8')).toMatch(/await import\('\.\/okta\.js'\)/);
    expect(readFileSync(dir + 'okta.ts', 'utf8')).toMatch(/await import\('@okta\/okta-sdk-nodejs'\)/);
  });
});
