// Small HTTP defects (#17, low): the right status for headers too large (431) and a request not
// received in time (408), nothing more read of a body past the limit, and a connection limit.
// Raw sockets against the collector in-process on 127.0.0.1.
import { connect, type Socket } from 'node:net';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCollectorConfig, startCollector, type RunningCollector } from '../../collector/server.js';
import { tempDir } from '../helpers/processes.js';

let data: Awaited<ReturnType<typeof tempDir>>;
let collector: RunningCollector;
let port: number;

beforeAll(async () => {
  data = await tempDir('http-defects');
  collector = await startCollector(parseCollectorConfig({ dataDir: data.dir, listen: '127.0.0.1:0', requestTimeoutSeconds: 1, maxConnections: 16 }), { log: pino({ level: 'silent' }) });
  port = Number(new URL(collector.url).port);
});

afterAll(async () => {
  await collector.close();
  await data.cleanup();
});

/** Sends raw bytes; resolves with what came back once the server closed the connection. */
function exchange(bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => s.write(bytes));
    let got = '';
    s.setEncoding('utf8').on('data', (d: string) => (got += d));
    s.on('close', () => resolve(got)).on('error', reject);
  });
}

describe('HTTP edges', () => {
  it('headers over the limit: 431 COL_ERR_HEADERS_TOO_LARGE', async () => {
    const answer = await exchange(`GET /healthz HTTP/1.1\r\nhost: x\r\nx-pad: ${'a'.repeat(20_000)}\r\n\r\n`);
    expect(answer).toMatch(/^HTTP\/1\.1 431 /);
    expect(answer).toContain('COL_ERR_HEADERS_TOO_LARGE');
  });

  it('a request not received in time: 408 COL_ERR_REQUEST_TIMEOUT', async () => {
    const answer = await exchange('POST /v1/results HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"a":');
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(answer).toContain('COL_ERR_REQUEST_TIMEOUT');
  });

  it('a body declared over the limit: 413, and the connection is closed instead of read to the end', async () => {
    // The body never comes: a server that kept reading would wait for it until the timeout (408).
    const answer = await exchange('POST /v1/results HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 5000000\r\n\r\n');
    expect(answer).toMatch(/^HTTP\/1\.1 413 /);
    expect(answer).toContain('COL_ERR_TOO_LARGE');
    expect(answer).not.toContain('408');
  });

  it('past the connection limit, new connections are closed at once', async () => {
    const held: Socket[] = [];
    try {
      for (let i = 0; i < 16; i++) {
        held.push(await new Promise<Socket>((resolve) => {
          const s = connect(port, '127.0.0.1', () => resolve(s));
        }));
      }
      const extra = await exchange('GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n');
      expect(extra).toBe('');
    } finally {
      for (const s of held) s.destroy();
    }
    await new Promise((r) => setTimeout(r, 100));
    expect(await exchange('GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n')).toMatch(/^HTTP\/1\.1 200 /);
  });
});
