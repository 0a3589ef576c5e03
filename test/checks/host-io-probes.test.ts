// stat() and httpGet(): the doors added for credential ages and the VPN egress probe, real and replayed.
import { mkdtemp, rm, utimes, writeFile, chmod } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RealHostIO } from '../../checks/host-io.js';
import { RecordingHostIO, ReplayHostIO } from '../../checks/replay.js';

let root: string;
let server: Server;
let url: string;

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'vcm-probe-'));
  await writeFile(path.join(root, 'key'), 'secret');
  await chmod(path.join(root, 'key'), 0o600);
  await utimes(path.join(root, 'key'), new Date('2020-01-02T00:00:00Z'), new Date('2020-01-02T00:00:00Z'));
  server = createServer((req, res) => {
    if (req.url === '/ip') res.end('203.0.113.7\n');
    else if (req.url === '/slow') setTimeout(() => res.end('late'), 2000);
    else if (req.url === '/redirect') res.writeHead(302, { location: '/ip' }).end();
    else res.writeHead(404).end('no');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  await rm(root, { recursive: true, force: true });
});

describe('stat', () => {
  it('reports type, mode and mtime under the root, and a missing file as missing', async () => {
    const io = new RealHostIO({ root });
    const s = await io.stat('/key');
    expect(s).toMatchObject({ type: 'file', size: 6, mode: 0o600, mtimeMs: Date.parse('2020-01-02T00:00:00Z') });
    await expect(io.stat('/nope')).rejects.toMatchObject({ code: 'CHK_ERR_SOURCE_MISSING' });
  });
});

describe('httpGet', () => {
  it('fetches a probe URL and returns status and body', async () => {
    const io = new RealHostIO();
    expect(await io.httpGet(`${url}/ip`)).toEqual({ status: 200, body: '203.0.113.7\n' });
    expect((await io.httpGet(`${url}/missing`)).status).toBe(404);
  });

  it('refuses redirects, non-http schemes and nonsense, and times out', async () => {
    const io = new RealHostIO();
    await expect(io.httpGet(`${url}/redirect`)).rejects.toMatchObject({ code: 'CHK_ERR_NETWORK' });
    await expect(io.httpGet('file:///etc/passwd')).rejects.toMatchObject({ code: 'CHK_ERR_NOT_CONFIGURED' });
    await expect(io.httpGet('not a url')).rejects.toMatchObject({ code: 'CHK_ERR_NOT_CONFIGURED' });
    await expect(io.httpGet(`${url}/slow`, { timeoutMs: 100 })).rejects.toMatchObject({ code: 'CHK_ERR_TIMEOUT' });
    await expect(io.httpGet('http://127.0.0.1:9/')).rejects.toMatchObject({ code: 'CHK_ERR_NETWORK' });
  });

  it('records and replays stat and httpGet, strictly', async () => {
    const recorder = new RecordingHostIO(new RealHostIO({ root }));
    const live = { stat: await recorder.stat('/key'), http: await recorder.httpGet(`${url}/ip`) };
    await recorder.stat('/nope').catch(() => undefined);
    const dir = await mkdtemp(path.join(tmpdir(), 'vcm-probe-case-'));
    try {
      await recorder.save(dir);
      const replay = await ReplayHostIO.load(dir);
      expect(await replay.stat('/key')).toEqual(live.stat);
      expect(await replay.httpGet(`${url}/ip`)).toEqual(live.http);
      await expect(replay.stat('/nope')).rejects.toMatchObject({ code: 'CHK_ERR_SOURCE_MISSING', subject: '/nope' });
      replay.assertComplete();
      await expect(replay.httpGet(`${url}/other`)).rejects.toMatchObject({ code: 'REPLAY_UNRECORDED_CALL' });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
