// Who reads a vendor's policy (#17, medium 6): /metrics lists agent ids, so an id is no secret.
// `GET /v1/policy` answers a vendor's policy (its allow-lists, its Okta org) only to a request
// that agent signed; unsigned, it answers the defaults, and a bad signature is refused.
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createAdminToken } from '../../collector/admin.js';
import { agentAuthorization } from '../../collector/contract.js';
import { parseCollectorConfig, startCollector, type RunningCollector } from '../../collector/server.js';
import { enrollTestAgent, newKey, type TestAgent } from '../helpers/agents.js';
import { tempDir } from '../helpers/processes.js';

let data: Awaited<ReturnType<typeof tempDir>>;
let collector: RunningCollector;
let agent: TestAgent;

beforeEach(async () => {
  data = await tempDir('policy-read');
  collector = await startCollector(parseCollectorConfig({ dataDir: data.dir, listen: '127.0.0.1:0' }), { log: pino({ level: 'silent' }) });
  agent = await enrollTestAgent(collector.url, collector.store, 'acme');
  const admin = await createAdminToken(collector.store, { name: 'ops', role: 'admin' });
  const doc = {
    freshnessSeconds: 7200,
    checks: { open_ports: { enabled: true, intervalSeconds: 900, config: {} } },
    vendors: { acme: { checks: { open_ports: { config: { allow: [{ protocol: 'tcp', port: 8443, process: 'acme-secret-service' }] } } } } },
  };
  const res = await fetch(`${collector.url}/v1/admin/policy`, { method: 'PUT', headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' }, body: JSON.stringify(doc) });
  expect(res.status).toBe(201);
});

afterEach(async () => {
  await collector.close();
  await data.cleanup();
});

const target = () => `/v1/policy?agent=${agent.agentId}`;
const get = (authorization?: string) => fetch(`${collector.url}${target()}`, authorization === undefined ? {} : { headers: { authorization } });

describe('GET /v1/policy', () => {
  it('answers the vendor policy to the agent that signed the request, and the defaults to anyone else', async () => {
    const signed = await get(agentAuthorization(agent.agentId, agent.key, 'GET', target()));
    expect(JSON.stringify(await signed.json())).toContain('acme-secret-service');
    const unsigned = await get();
    expect(unsigned.status).toBe(200);
    expect(JSON.stringify(await unsigned.json())).not.toContain('acme-secret-service');
  });

  it('refuses a signature by another key, for another target, or from too long ago', async () => {
    const stranger = newKey();
    for (const authorization of [
      agentAuthorization(agent.agentId, stranger.key, 'GET', target()),
      agentAuthorization(agent.agentId, agent.key, 'GET', '/v1/policy'),
      agentAuthorization(agent.agentId, agent.key, 'GET', target(), Math.floor(Date.now() / 1000) - 3600),
    ]) {
      const res = await get(authorization);
      expect(res.status).toBe(401);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('COL_ERR_UNAUTHORIZED');
    }
  });
});
