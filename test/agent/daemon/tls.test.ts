// HTTPS with a pinned CA, and mTLS: certificates made with openssl for the occasion. The mTLS case
// uses a stub HTTPS collector (a mock: the real collector does not ask for client certificates).
import { execFileSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deliveryPass } from '../../../agent/delivery.js';
import { CollectorClient } from '../../../agent/http.js';
import type { DeliverySpool } from '../../../agent/ledger.js';
import { AGENT_CLI, COLLECTOR_CLI, runCli, startCollectorProcess, tempDir } from '../../helpers/processes.js';

const log = pino({ level: 'silent' });
let dir: Awaited<ReturnType<typeof tempDir>>;
const f = (name: string) => path.join(dir.dir, name);

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: 'pipe' });
}

/** A CA, and a certificate it signs for `name` (with SANs). */
function issue(ca: string, name: string, san: string): void {
  openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', f(`${name}.key`), '-out', f(`${name}.csr`), '-subj', `/CN=${name}`]);
  execFileSync('sh', ['-c', `printf 'subjectAltName=${san}\\nextendedKeyUsage=serverAuth,clientAuth\\n' > '${f(`${name}.ext`)}'`]);
  openssl(['x509', '-req', '-in', f(`${name}.csr`), '-CA', f(`${ca}.pem`), '-CAkey', f(`${ca}.key`), '-CAcreateserial', '-out', f(`${name}.pem`), '-days', '2', '-extfile', f(`${name}.ext`)]);
}

function makeCa(name: string): void {
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', f(`${name}.key`), '-out', f(`${name}.pem`), '-days', '2', '-subj', `/CN=${name}`]);
}

const oneEnvelope = (): DeliverySpool & { acked: number[] } => {
  const acked: number[] = [];
  let left = true;
  return {
    acked,
    list: async () => (left ? [{ seq: 1, file: 'mem', kind: 'result' as const, size: 2 }] : []),
    read: async () => Buffer.from('{"seq":1}'),
    acknowledge: async (es) => {
      left = false;
      acked.push(...es.map((e) => e.seq));
    },
    quarantine: async () => 'q',
  };
};

beforeAll(async () => {
  dir = await tempDir('tls');
  makeCa('ca');
  makeCa('other-ca');
  issue('ca', 'server', 'IP:127.0.0.1');
  issue('ca', 'client', 'DNS:agent.example');
});

afterAll(async () => {
  await dir.cleanup();
});

describe('TLS to the collector', () => {
  describe('mTLS (stub HTTPS collector that requires a client certificate)', () => {
    let server: Server;
    let url: string;
    beforeAll(async () => {
      server = createServer(
        { key: await readFile(f('server.key')), cert: await readFile(f('server.pem')), ca: await readFile(f('ca.pem')), requestCert: true, rejectUnauthorized: true },
        (req, res) => {
          req.resume();
          req.on('end', () => {
            res.writeHead(200, { 'content-type': 'application/json' });
            res.end(JSON.stringify({ results: [{ seq: 1, outcome: 'accepted' }] }));
          });
        },
      );
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    afterAll(async () => {
      await new Promise((r) => server.close(r));
    });

    it('delivers with the pinned CA and a client certificate', async () => {
      const spool = oneEnvelope();
      const client = new CollectorClient(url, { caFile: f('ca.pem'), certFile: f('client.pem'), keyFile: f('client.key') });
      const pass = await deliveryPass(spool, client, { log });
      await client.close();
      expect(pass.stopped).toBeNull();
      expect(spool.acked).toEqual([1]);
    });

    it('without the client certificate the handshake fails and the envelope stays', async () => {
      const spool = oneEnvelope();
      const client = new CollectorClient(url, { caFile: f('ca.pem') });
      const pass = await deliveryPass(spool, client, { log });
      await client.close();
      expect(pass.stopped?.reason).toBe('unreachable');
      expect(spool.acked).toEqual([]);
    });

    it('the pinned CA is the only one trusted: a server certificate from another CA is refused', async () => {
      const spool = oneEnvelope();
      const client = new CollectorClient(url, { caFile: f('other-ca.pem'), certFile: f('client.pem'), keyFile: f('client.key') });
      const pass = await deliveryPass(spool, client, { log });
      await client.close();
      expect(pass.stopped?.reason).toBe('unreachable');
      expect(pass.stopped?.detail).toMatch(/certificate/i);
    });
  });

  it('enrolls and delivers to a real HTTPS collector with the CA pinned in the config file', async () => {
    const dataDir = f('store');
    const collector = await startCollectorProcess(dataDir, { args: ['--tls-cert', f('server.pem'), '--tls-key', f('server.key')] });
    try {
      expect(collector.url).toMatch(/^https:/);
      const stateDir = f('agent');
      const config = f('config.json');
      await writeFile(config, JSON.stringify({ stateDir, caFile: f('ca.pem') }));
      // Without the CA, the agent does not trust the collector.
      const token = (await runCli(COLLECTOR_CLI, ['token', 'create', '--vendor', 'acme', '--data-dir', dataDir])).stdout.trim();
      const refused = await runCli(AGENT_CLI, ['enroll', '--collector', collector.url, '--token', token, '--state-dir', f('agent-untrusting')], { env: { VCM_CONFIG: '' } });
      expect(refused.code).toBe(2);
      expect(refused.stderr).toContain('AGT_ERR_COLLECTOR_UNREACHABLE');
      const enrolled = await runCli(AGENT_CLI, ['enroll', '--collector', collector.url, '--token', token, '--config', config]);
      expect(enrolled.code, enrolled.stderr).toBe(0);
      const once = await runCli(AGENT_CLI, ['run', '--once', '--config', config]);
      expect(once.code, once.stderr).toBe(0);
      expect(once.stdout).toMatch(/open_ports\s+\w+\s+accepted/);
    } finally {
      await collector.stop();
    }
  }, 60_000);
});
