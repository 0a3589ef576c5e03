// The collector serving with evidence in S3 (the in-memory stand-in that mirrors AWS), and
// refusing ingest when the bucket fails its preflight.
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCollectorConfig, startCollector } from '../../collector/server.js';
import { createToken } from '../../collector/tokens.js';
import { chain, enrollBody, newKey } from '../helpers/agents.js';
import { startMemoryS3, type MemoryS3 } from '../helpers/memory-s3.js';
import { sample, tempDir } from '../helpers/processes.js';

let s3: MemoryS3;
let dir: Awaited<ReturnType<typeof tempDir>>;

beforeAll(async () => {
  s3 = await startMemoryS3();
  s3.createBucket('locked', { objectLock: { mode: 'COMPLIANCE', days: 1 } });
  s3.createBucket('plain');
  process.env.VCM_TEST_SERVE_S3_KEY = s3.accessKeyId;
  process.env.VCM_TEST_SERVE_S3_SECRET = s3.secretAccessKey;
  dir = await tempDir('serve-s3');
});
afterAll(async () => {
  await s3?.stop();
  await dir?.cleanup();
});

const settings = (bucket: string) => ({
  bucket,
  endpoint: s3.endpoint,
  forcePathStyle: true,
  credentials: { source: 'env', accessKeyIdVar: 'VCM_TEST_SERVE_S3_KEY', secretAccessKeyVar: 'VCM_TEST_SERVE_S3_SECRET' },
  objectLock: { mode: 'COMPLIANCE', retainDays: 1 },
  confirmCreates: false,
});

describe('serve with the S3 evidence store (AWS stand-in)', () => {
  it('enrolls, ingests and acknowledges only what S3 stored, under the storage layout', async () => {
    const collector = await startCollector(parseCollectorConfig({ dataDir: path.join(dir.dir, 'a'), listen: '127.0.0.1:0', s3: settings('locked') }), { log: pino({ level: 'silent' }) });
    try {
      expect(collector.store.description).toContain('s3://locked/');
      const { token } = await createToken(collector.store, { vendor: 'acme' });
      const k = newKey();
      const enrolled = await fetch(`${collector.url}/v1/enroll`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: enrollBody(k, token) });
      expect(enrolled.status).toBe(201);
      const [e1] = chain({ ...k, hostname: 'host-1' }, 1);
      const res = await fetch(`${collector.url}/v1/results`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: e1! });
      expect(res.status).toBe(200);
      const keys = [...(s3.buckets.get('locked')?.objects.keys() ?? [])];
      expect(keys.filter((key) => key.startsWith('evidence/vendor=acme/'))).toHaveLength(1);
      expect(keys).toContain(`keys/${k.agentId}.json`);
      const m = await (await fetch(`${collector.url}/metrics`)).text();
      expect(sample(m, 'vcm_evidence_store_preflight_ok')).toBe(1);
      expect((await fetch(`${collector.url}/readyz`)).status).toBe(200);
    } finally {
      await collector.close();
    }
  });

  it('refuses ingest, and is not ready, when the bucket has no Object Lock but the settings require it', async () => {
    const collector = await startCollector(parseCollectorConfig({ dataDir: path.join(dir.dir, 'b'), listen: '127.0.0.1:0', s3: settings('plain') }), { log: pino({ level: 'silent' }) });
    try {
      const m = await (await fetch(`${collector.url}/metrics`)).text();
      expect(sample(m, 'vcm_evidence_store_preflight_ok')).toBe(0);
      expect((await fetch(`${collector.url}/readyz`)).status).toBe(503);
      const res = await fetch(`${collector.url}/v1/results`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
      expect(res.status).toBe(503);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('COL_ERR_STORE_UNAVAILABLE');
    } finally {
      await collector.close();
    }
  });
});
