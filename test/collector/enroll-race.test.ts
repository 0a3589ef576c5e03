// Concurrent enrollments of one key (#17, low): one wins, the others are told the key is taken,
// and only the winner's token is spent. Before, 5 agents racing with one key each used a token and
// 4 of them failed anyway. The collector runs in-process on 127.0.0.1; the requests are real HTTP.
import { generateKeyPairSync } from 'node:crypto';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PAYLOAD_TYPE_ENROLL, agentIdFor, sha256Hex, signEnvelope } from '../../collector/contract.js';
import { parseCollectorConfig, startCollector, type RunningCollector } from '../../collector/server.js';
import { createToken, listTokens } from '../../collector/tokens.js';
import { tempDir } from '../helpers/processes.js';

let data: Awaited<ReturnType<typeof tempDir>>;
let collector: RunningCollector;

beforeAll(async () => {
  data = await tempDir('enroll-race');
  collector = await startCollector(parseCollectorConfig({ dataDir: data.dir, listen: '127.0.0.1:0' }), { log: pino({ level: 'silent' }) });
});
afterAll(async () => {
  await collector.close();
  await data.cleanup();
});

describe('enrollments racing with one key', () => {
  it('enroll one agent, refuse the rest with COL_ERR_AGENT_EXISTS, and spend only the winning token', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const agentId = agentIdFor(pem);
    const tokens = await Promise.all(Array.from({ length: 5 }, () => createToken(collector.store, { vendor: 'acme', ttlSeconds: 600 })));
    const answers = await Promise.all(
      tokens.map(async ({ token }) => {
        const payload = { publicKey: pem, host: { hostname: 'clone', os: 'linux', arch: 'x64' }, agentVersion: '0.1.0', tokenSha256: sha256Hex(token), requestedAt: new Date().toISOString() };
        const body = signEnvelope(PAYLOAD_TYPE_ENROLL, Buffer.from(JSON.stringify(payload)), privateKey, agentId);
        const res = await fetch(`${collector.url}/v1/enroll`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body });
        return { status: res.status, body: (await res.json()) as { agentId?: string; error?: { code: string } } };
      }),
    );
    expect(answers.filter((a) => a.status === 201).map((a) => a.body.agentId)).toEqual([agentId]);
    expect(answers.filter((a) => a.status !== 201).map((a) => [a.status, a.body.error?.code])).toEqual(Array.from({ length: 4 }, () => [409, 'COL_ERR_AGENT_EXISTS']));
    const listed = await listTokens(collector.store);
    expect(listed.filter((t) => t.state === 'used')).toHaveLength(1);
    expect(listed.filter((t) => t.state === 'usable')).toHaveLength(4);
  });
});
