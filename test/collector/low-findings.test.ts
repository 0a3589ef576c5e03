// The review's smaller findings (#17, low): exception host globs match in linear time, admin JSON
// bodies are strict, a private key is not a public key, and a host name is what a host name can be.
import fc from 'fast-check';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createAdminToken } from '../../collector/admin.js';
import { HOSTNAME_RE, PAYLOAD_TYPE_ENROLL, sha256Hex, signEnvelope, type EnrollPayload } from '../../collector/contract.js';
import { globMatches } from '../../collector/policy.js';
import { parseCollectorConfig, startCollector, type RunningCollector } from '../../collector/server.js';
import { createToken } from '../../collector/tokens.js';
import { newKey } from '../helpers/agents.js';
import { tempDir } from '../helpers/processes.js';

/** The glob as the RFC-free definition: `*` any run, everything else itself, case-insensitive. */
const naive = (glob: string, host: string): boolean => {
  const g = glob.toLowerCase();
  const h = host.toLowerCase();
  const at = (i: number, j: number): boolean => (i === g.length ? j === h.length : g[i] === '*' ? at(i + 1, j) || (j < h.length && at(i, j + 1)) : j < h.length && g[i] === h[j] && at(i + 1, j + 1));
  return at(0, 0);
};

describe('exception host globs', () => {
  it('match as the definition says', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[ab*.]{0,8}$/), fc.stringMatching(/^[abAB.]{0,10}$/), (glob, host) => globMatches(glob, host) === naive(glob, host)),
      { numRuns: 2000 },
    );
    expect(globMatches('build-*', 'BUILD-07')).toBe(true);
    expect(globMatches('*', '')).toBe(true);
    expect(globMatches('a*b*c', 'abx')).toBe(false);
  });

  it('a pattern of many stars against a 253-character name is answered (a backtracking regex takes seconds to minutes)', () => {
    const host = `${'a'.repeat(252)}b`;
    expect(globMatches('*a*a*a*a*a*a*a*c', host)).toBe(false);
    expect(globMatches('*a*a*a*a*a*a*a*b', host)).toBe(true);
  });
});

describe('enrollment and admin input', () => {
  let data: Awaited<ReturnType<typeof tempDir>>;
  let collector: RunningCollector;
  beforeEach(async () => {
    data = await tempDir('low');
    collector = await startCollector(parseCollectorConfig({ dataDir: data.dir, listen: '127.0.0.1:0' }), { log: pino({ level: 'silent' }) });
  });
  afterEach(async () => {
    await collector.close();
    await data.cleanup();
  });

  async function enroll(publicKey: string, hostname: string, k = newKey()): Promise<{ status: number; code?: string }> {
    const { token } = await createToken(collector.store, { vendor: 'acme' });
    const payload: EnrollPayload = { publicKey, host: { hostname, os: 'linux', arch: 'x64' }, agentVersion: '0.1.0', tokenSha256: sha256Hex(token), requestedAt: new Date().toISOString() };
    const res = await fetch(`${collector.url}/v1/enroll`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: signEnvelope(PAYLOAD_TYPE_ENROLL, Buffer.from(JSON.stringify(payload)), k.key, k.agentId) });
    return { status: res.status, code: ((await res.json()) as { error?: { code: string } }).error?.code };
  }

  it('refuses a private key PEM as the public key, and a host name with control characters or a newline', async () => {
    const k = newKey();
    const privatePem = k.key.export({ type: 'pkcs8', format: 'pem' }).toString();
    expect(await enroll(privatePem, 'host-1', k)).toEqual({ status: 422, code: 'COL_ERR_SCHEMA' });
    for (const hostname of ['evil\u001b]52;c;aGk=\u0007', 'two\nlines', 'has space', 'tab\there', 'x\r']) {
      expect(await enroll(k.publicKeyPem, hostname, k), JSON.stringify(hostname)).toEqual({ status: 422, code: 'COL_ERR_SCHEMA' });
    }
    expect(await enroll(k.publicKeyPem, 'build-07.corp.example', k)).toEqual({ status: 201, code: undefined });
    for (const ok of ['a', 'host_1', 'WIN-7QK2', 'x.y.z.', '1.2.3']) expect(HOSTNAME_RE.test(ok), ok).toBe(true);
  });

  it('admin JSON bodies are strict: a duplicate key is refused', async () => {
    const admin = await createAdminToken(collector.store, { name: 'ops', role: 'admin' });
    const res = await fetch(`${collector.url}/v1/admin/tokens`, {
      method: 'POST',
      headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
      body: '{"vendor":"acme","vendor":"globex"}',
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: string; message: string } }).error).toMatchObject({ code: 'COL_ERR_MALFORMED', message: expect.stringContaining('duplicate') });
  });
});
