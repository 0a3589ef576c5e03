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
let hugeSent = 0;
/** A probe door for the local test server: listed, and loopback allowed, as an agent config would. */
const local = (extra: Partial<ConstructorParameters<typeof RealHostIO>[0]> = {}) => new RealHostIO({ allowedProbeUrls: [`${url}/`], allowPrivateProbeTargets: true, ...extra });

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'vcm-probe-'));
  await writeFile(path.join(root, 'key'), 'secret');
  await chmod(path.join(root, 'key'), 0o600);
  await utimes(path.join(root, 'key'), new Date('2020-01-02T00:00:00Z'), new Date('2020-01-02T00:00:00Z'));
  server = createServer((req, res) => {
    if (req.url === '/ip') res.end('203.0.113.7\n');
    else if (req.url === '/slow') setTimeout(() => res.end('late'), 2000);
    else if (req.url === '/redirect') res.writeHead(302, { location: '/ip' }).end();
    else if (req.url === '/huge') {
      // 256 MiB, written as fast as the reader takes it: a reader that stops makes this stop.
      res.writeHead(200, { 'content-type': 'text/plain' });
      const chunk = Buffer.alloc(1024 * 1024, 0x41);
      let sent = 0;
      const more = () => {
        while (sent < 256 && res.write(chunk)) sent++;
        hugeSent = sent;
        if (sent >= 256) res.end();
      };
      res.on('drain', () => {
        sent++;
        more();
      });
      res.on('close', () => (hugeSent = sent));
      more();
    }
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
    const io = local();
    expect(await io.httpGet(`${url}/ip`)).toEqual({ status: 200, body: '203.0.113.7\n' });
    expect((await io.httpGet(`${url}/missing`)).status).toBe(404);
  });

  it('refuses redirects, non-http schemes and nonsense, and times out', async () => {
    const io = local({ allowedProbeUrls: [`${url}/`, 'http://127.0.0.1:9/', 'file:///etc/'] });
    await expect(io.httpGet(`${url}/redirect`)).rejects.toMatchObject({ code: 'CHK_ERR_NETWORK' });
    await expect(io.httpGet('file:///etc/passwd')).rejects.toMatchObject({ code: 'CHK_ERR_NOT_CONFIGURED' });
    await expect(io.httpGet('not a url')).rejects.toMatchObject({ code: 'CHK_ERR_NOT_CONFIGURED' });
    await expect(io.httpGet(`${url}/slow`, { timeoutMs: 100 })).rejects.toMatchObject({ code: 'CHK_ERR_TIMEOUT' });
    await expect(io.httpGet('http://127.0.0.1:9/')).rejects.toMatchObject({ code: 'CHK_ERR_NETWORK' });
  });

  it("goes only where the agent's config allows (#17, medium 4): listed URLs, https unless listed as http, no private targets unless allowed", async () => {
    const before = hugeSent;
    // Nothing listed: no probe at all, whatever the policy names.
    await expect(new RealHostIO().httpGet(`${url}/ip`)).rejects.toMatchObject({ code: 'CHK_ERR_NOT_CONFIGURED', message: expect.stringContaining('probes.allowedUrls') });
    // Listed, but loopback is a private target unless the config allows it.
    await expect(new RealHostIO({ allowedProbeUrls: [`${url}/`] }).httpGet(`${url}/ip`)).rejects.toMatchObject({ code: 'CHK_ERR_NOT_CONFIGURED', message: expect.stringContaining('private') });
    // A link-local metadata address and a private one, by IP, even when listed.
    const cloud = new RealHostIO({ allowedProbeUrls: ['https://169.254.169.254/', 'https://10.0.0.1/', 'https://[fe80::1]/', 'https://[::ffff:127.0.0.1]/'] });
    for (const u of ['https://169.254.169.254/latest/meta-data/', 'https://10.0.0.1/', 'https://[fe80::1]/', 'https://[::ffff:127.0.0.1]/']) {
      await expect(cloud.httpGet(u)).rejects.toMatchObject({ code: 'CHK_ERR_NOT_CONFIGURED' });
    }
    // An https entry does not let the same host be reached over plain http.
    const port = new URL(url).port;
    await expect(new RealHostIO({ allowedProbeUrls: [`https://127.0.0.1:${port}/`], allowPrivateProbeTargets: true }).httpGet(`${url}/ip`)).rejects.toMatchObject({ code: 'CHK_ERR_NOT_CONFIGURED' });
    // A URL outside the listed prefix.
    await expect(local({ allowedProbeUrls: [`${url}/ip`] }).httpGet(`${url}/missing`)).rejects.toMatchObject({ code: 'CHK_ERR_NOT_CONFIGURED' });
    expect(hugeSent).toBe(before);
  });

  it('reads a huge answer only up to its cap, and stops the download', async () => {
    const r = await local().httpGet(`${url}/huge`);
    expect(r.body.length).toBe(64 * 1024);
    await new Promise((resolve) => setTimeout(resolve, 200));
    // Far less than 256 MiB left the server: the reader stopped, it did not buffer it all.
    expect(hugeSent).toBeLessThan(64);
  });

  it('records and replays stat and httpGet, strictly', async () => {
    const recorder = new RecordingHostIO(local({ root }));
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
