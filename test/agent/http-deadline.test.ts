// What a hostile or broken collector can do to an agent's requests (#17, low): a server that
// drips one byte at a time meets every per-phase timeout forever, so every request has an overall
// deadline; and the error text it sends never reaches a terminal raw.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CollectorClient, describeError } from '../../agent/http.js';

let server: Server;
let base: string;
const timers = new Set<NodeJS.Timeout>();

beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.url === '/drip') {
      res.writeHead(200, { 'content-type': 'application/json' });
      const t = setInterval(() => res.write(' '), 200);
      timers.add(t);
      res.on('close', () => clearInterval(t));
      return;
    }
    // An error whose text would move the cursor, set the clipboard (OSC 52) and forge a line.
    res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'COL_ERR_X\u001b[2J', message: 'bad\u001b]52;c;cm0gLXJmIH4=\u0007\nvcm-agent: all good\r' } }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  for (const t of timers) clearInterval(t);
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

describe('the agent against a hostile collector', () => {
  it('gives up a request that never completes, at twice the timeout, with a stable code', async () => {
    const client = new CollectorClient(base, { timeoutMs: 1000 });
    try {
      await expect(client.send('GET', '/drip')).rejects.toMatchObject({ code: 'AGT_ERR_COLLECTOR_UNREACHABLE', message: expect.stringContaining('no complete answer within 2 s') });
    } finally {
      await client.destroy();
    }
  });

  it("shows the collector's error text with its control characters escaped", async () => {
    const client = new CollectorClient(base, { timeoutMs: 5000 });
    try {
      const text = describeError(await client.send('GET', '/error'));
      // eslint-disable-next-line no-control-regex
      expect(text).not.toMatch(/[\u0000-\u001f\u007f]/);
      expect(text).toContain('\\u001b]52');
      expect(text).toContain('\\u000avcm-agent: all good');
    } finally {
      await client.close();
    }
  });
});
