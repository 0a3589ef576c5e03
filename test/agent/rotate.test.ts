// settleRotation against a stub collector on 127.0.0.1 (a mock: the real collector always answers
// a rotation with its JSON, so the answers a proxy or a broken build could give need one).
import { generateKeyPairSync } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CollectorClient } from '../../agent/http.js';
import { fingerprint, settleRotation } from '../../agent/rotate.js';
import { StateDir, type PendingRotation } from '../../agent/state.js';
import { tempDir } from '../helpers/processes.js';

const log = pino({ level: 'silent' });

let dir: Awaited<ReturnType<typeof tempDir>>;
let state: StateDir;
let server: Server;
let client: CollectorClient;
let answer: { status: number; body: string };
let pending: PendingRotation;

beforeEach(async () => {
  dir = await tempDir('rotate');
  state = new StateDir(dir.dir);
  const current = generateKeyPairSync('ed25519').privateKey;
  const next = generateKeyPairSync('ed25519').privateKey;
  await state.writeKey(current.export({ type: 'pkcs8', format: 'pem' }).toString());
  pending = { generation: 1, keyId: fingerprint(next), afterSeq: 3, request: '{"payloadType":"x","payload":"","signatures":[]}', createdAt: '2026-11-22T10:00:00.000Z' };
  await writeFile(state.rotationFile, `${JSON.stringify(pending)}\n`);
  server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(answer.status, { 'content-type': 'text/html' });
      res.end(answer.body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  client = new CollectorClient(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
});

afterEach(async () => {
  await client.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await dir.cleanup();
});

describe('settling a pending key rotation', () => {
  it.each([
    ['a body that is not JSON (a proxy\'s page)', '<html>Service temporarily unavailable</html>'],
    ['JSON of the wrong shape', '{"ok":true}'],
  ])('a 200 with %s keeps the rotation pending (AGT_ERR_ROTATION_PENDING) and the current key', async (_what, body) => {
    answer = { status: 200, body };
    const keyBefore = await readFile(state.keyFile, 'utf8');
    await expect(settleRotation(state, client, log)).rejects.toMatchObject({
      name: 'AgentError',
      code: 'AGT_ERR_ROTATION_PENDING',
      message: 'the collector answered the key rotation with an unexpected body',
    });
    expect(await state.pendingRotation()).toEqual(pending);
    expect(await readFile(state.keyFile, 'utf8')).toBe(keyBefore);
  });

  it('a 503 keeps it pending, and says what the collector answered', async () => {
    answer = { status: 503, body: 'busy' };
    await expect(settleRotation(state, client, log)).rejects.toMatchObject({
      code: 'AGT_ERR_ROTATION_PENDING',
      message: 'key rotation to generation 1 not settled: HTTP_503: HTTP 503',
    });
    expect(await state.pendingRotation()).toEqual(pending);
  });
});
