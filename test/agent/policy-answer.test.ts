// The policy answer, read by the agent: anything that is not a policy is an error with a stable
// code and a one-line message (what `vcm-agent status` shows), never a schema library's dump, and
// the cached policy stays. The stand-in server here answers as a collector too old or too broken
// to send a policy; the client is not pinned, so only the policy reading is under test.
import { generateKeyPairSync } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { refreshPolicy } from '../../agent/cycle.js';
import { CollectorClient } from '../../agent/http.js';
import { StateDir } from '../../agent/state.js';
import { tempDir } from '../helpers/processes.js';

describe('a policy answer that is not a policy', () => {
  let server: Server;
  let url = '';
  let body = '';
  let dir: Awaited<ReturnType<typeof tempDir>>;
  beforeAll(async () => {
    dir = await tempDir('policy-answer');
    server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(body));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await dir.cleanup();
  });

  it.each([
    ['a policy-shaped document with a wrong field', JSON.stringify({ version: 'one', checks: {} }), /^AGT_ERR_POLICY_INVALID: the collector's policy answer is not a valid policy \(version: .+\); the cached policy stays$/],
    ['not JSON', '<html>hello</html>', /^AGT_ERR_POLICY_INVALID: the collector's policy answer is not a valid policy \(the document: .+\); the cached policy stays$/],
  ])('%s: AGT_ERR_POLICY_INVALID in one line', async (_what, answer, expected) => {
    body = answer;
    const state = new StateDir(`${dir.dir}/${Math.random().toString(36).slice(2)}`);
    await state.ensure();
    const client = new CollectorClient(url);
    try {
      const { privateKey } = generateKeyPairSync('ed25519');
      const fetched = await refreshPolicy(state, client, 'a'.repeat(64), privateKey, pino({ level: 'silent' }));
      expect(fetched.policy).toBeNull();
      expect(fetched.error).toMatch(expected);
      expect(fetched.error).not.toContain('\n');
      expect(fetched.error).not.toMatch(/"code":|"path":/);
    } finally {
      await client.close();
    }
  });
});
