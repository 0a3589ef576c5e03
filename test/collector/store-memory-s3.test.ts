// The S3 store against the in-memory write-once stand-in, which mirrors AWS S3 for the two
// behaviours Ceph RGW 16 does not honour: flexible checksums (400 BadDigest) and If-None-Match on
// a versioned bucket (412). Everything else S3 does is proven against RGW (store-rgw.test.ts).
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { createServer, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isCollectorError } from '../../collector/errors.js';
import { S3EvidenceStore, type S3StoreConfigInput } from '../../collector/s3-store.js';
import { startMemoryS3, type MemoryS3 } from '../helpers/memory-s3.js';
import { evidenceStoreContract } from './store-contract.js';

let s3: MemoryS3;
let n = 0;
const LOCK_BUCKET = 'evidence-lock';

beforeAll(async () => {
  s3 = await startMemoryS3();
  s3.createBucket(LOCK_BUCKET, { objectLock: { mode: 'COMPLIANCE', days: 1 } });
});
afterAll(async () => {
  await s3?.stop();
});

function storeFor(overrides: Partial<S3StoreConfigInput> = {}): S3EvidenceStore {
  return new S3EvidenceStore(
    {
      bucket: LOCK_BUCKET,
      endpoint: s3.endpoint,
      forcePathStyle: true,
      credentials: { source: 'env', accessKeyIdVar: 'VCM_TEST_MEMS3_KEY', secretAccessKeyVar: 'VCM_TEST_MEMS3_SECRET' },
      objectLock: { mode: 'COMPLIANCE', retainDays: 1 },
      prefix: `t${++n}/`,
      ...overrides,
    },
    { sleep: () => Promise.resolve() },
  );
}

function rawClient(): S3Client {
  return new S3Client({ endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey } });
}

beforeAll(() => {
  process.env.VCM_TEST_MEMS3_KEY = s3.accessKeyId;
  process.env.VCM_TEST_MEMS3_SECRET = s3.secretAccessKey;
});

async function failure(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await p;
  } catch (err) {
    return isCollectorError(err) ? { code: err.code, message: err.message } : { code: `not a CollectorError: ${String(err)}`, message: '' };
  }
  return { code: 'no error', message: '' };
}

// confirmCreates is off: create-only rests on the stand-in's 412 alone, as it would on AWS.
evidenceStoreContract('S3 on the in-memory AWS stand-in (versioned Object Lock bucket, If-None-Match only)', async () => ({
  store: storeFor({ confirmCreates: false, listPageSize: 7 }),
  listPageSize: 7,
}));

describe('S3 store on the in-memory stand-in for AWS-only behaviour', () => {
  it('AWS stand-in: If-None-Match on a versioned bucket answers 412, so a second write is "exists" and one version is stored', async () => {
    const store = storeFor({ confirmCreates: false });
    const key = 'keys/agent.json';
    expect(await store.putIfAbsent(key, Buffer.from('{"first":true}'))).toBe('created');
    const before = s3.requests.length;
    expect(await store.putIfAbsent(key, Buffer.from('{"second":true}'))).toBe('exists');
    const puts = s3.requests.slice(before).filter((r) => r.method === 'PUT');
    expect(puts.map((r) => [r.status, r.headers['if-none-match']])).toEqual([[412, '*']]);
    const versions = s3.buckets.get(LOCK_BUCKET)!.objects.get(`${store.config.prefix}${key}`)!;
    expect(versions.map((v) => v.body.toString())).toEqual(['{"first":true}']);
    expect(versions[0]!.lockMode).toBe('COMPLIANCE');
    expect(versions[0]!.retainUntil!.getTime()).toBeGreaterThan(Date.now() + 23 * 3600_000);
  });

  it('AWS stand-in: a PutObject whose x-amz-checksum-sha256 does not match the body is refused with 400 BadDigest', async () => {
    const body = Buffer.from('{"a":1}');
    const wrong = createHash('sha256').update('{"a":2}').digest('base64');
    const err = await rawClient()
      .send(new PutObjectCommand({ Bucket: LOCK_BUCKET, Key: 'raw/bad-checksum', Body: body, ChecksumAlgorithm: 'SHA256', ChecksumSHA256: wrong }))
      .then(() => null, (e: Error & { $metadata?: { httpStatusCode?: number } }) => e);
    expect([err?.name, err?.$metadata?.httpStatusCode]).toEqual(['BadDigest', 400]);
    expect(s3.buckets.get(LOCK_BUCKET)!.objects.has('raw/bad-checksum')).toBe(false);
  });

  it('AWS stand-in: bytes corrupted after the store computed the SHA-256 are refused (400 BadDigest) and never reported created', async () => {
    const store = storeFor();
    // Corrupt the body in flight and drop Content-MD5, so the SHA-256 checksum alone must catch it.
    store.client.middlewareStack.add(
      (next) => async (args) => {
        const req = args.request as { body?: unknown; headers?: Record<string, string> };
        if (Buffer.isBuffer(req.body) && req.headers !== undefined) {
          const body = Buffer.from(req.body);
          body[0] = body[0]! ^ 0x20;
          req.body = body;
          delete req.headers['content-md5'];
        }
        return next(args);
      },
      { step: 'build', name: 'corruptBodyInFlight' },
    );
    const f = await failure(store.putIfAbsent('evidence/vendor=acme/x.dsse.json', Buffer.from('{"payload":"abc"}')));
    expect(f.code).toBe('COL_ERR_STORE_UNAVAILABLE');
    expect(f.message).toContain('400 BadDigest');
    const last = s3.requests.filter((r) => r.method === 'PUT').at(-1)!;
    expect([last.status, last.headers['content-md5'], typeof last.headers['x-amz-checksum-sha256']]).toEqual([400, undefined, 'string']);
    expect(await store.get('evidence/vendor=acme/x.dsse.json')).toBeNull();
  });

  it('AWS stand-in: the SDK checks the SHA-256 S3 returns on reads, so bytes changed at rest are not returned as evidence', async () => {
    const store = storeFor();
    const key = 'evidence/vendor=acme/rot.dsse.json';
    await store.putIfAbsent(key, Buffer.from('{"payload":"original"}'));
    const raw = await rawClient().send(new GetObjectCommand({ Bucket: LOCK_BUCKET, Key: `${store.config.prefix}${key}`, ChecksumMode: 'ENABLED' }));
    expect(raw.ChecksumSHA256).toBe(createHash('sha256').update('{"payload":"original"}').digest('base64'));
    await raw.Body?.transformToByteArray();
    s3.buckets.get(LOCK_BUCKET)!.objects.get(`${store.config.prefix}${key}`)![0]!.body = Buffer.from('{"payload":"0riginal"}');
    const f = await failure(store.get(key));
    expect(f.code).toBe('COL_ERR_STORE_UNAVAILABLE');
    expect(f.message).toMatch(/^S3 read failed: the response failed SHA-256 checksum validation/);
  });

  it('sends plain Buffer bodies with the checksum in headers, never aws-chunked uploads', async () => {
    const store = storeFor();
    const before = s3.requests.length;
    await store.putIfAbsent('policy/9.json', Buffer.from('{"v":9}'));
    const put = s3.requests.slice(before).find((r) => r.method === 'PUT')!;
    expect(put.headers['content-encoding']).toBeUndefined();
    expect(put.headers['x-amz-trailer']).toBeUndefined();
    expect(put.headers['x-amz-checksum-sha256']).toBe(createHash('sha256').update('{"v":9}').digest('base64'));
    expect(put.headers['x-amz-sdk-checksum-algorithm']).toBe('SHA256');
    expect(put.bodyBytes).toBe(7);
  });

  it('refuses requests signed with another access key (the stand-in checks who signs)', async () => {
    const store = new S3EvidenceStore({
      bucket: LOCK_BUCKET,
      endpoint: s3.endpoint,
      forcePathStyle: true,
      credentials: { source: 'env', accessKeyIdVar: 'VCM_TEST_MEMS3_SECRET', secretAccessKeyVar: 'VCM_TEST_MEMS3_SECRET' },
      maxAttempts: 1,
    });
    const f = await failure(store.putIfAbsent('policy/1.json', Buffer.from('{}')));
    expect(f.code).toBe('COL_ERR_STORE_UNAVAILABLE');
    expect(f.message).toContain('403 InvalidAccessKeyId');
  });
});

describe('S3 store when the endpoint goes away (stand-in stopped)', () => {
  it('throws COL_ERR_STORE_UNAVAILABLE from put, get, list and ping, and never claims a write', async () => {
    const outage = await startMemoryS3();
    outage.createBucket('evidence-plain');
    process.env.VCM_TEST_OUTAGE_KEY = outage.accessKeyId;
    process.env.VCM_TEST_OUTAGE_SECRET = outage.secretAccessKey;
    const store = new S3EvidenceStore(
      {
        bucket: 'evidence-plain',
        endpoint: outage.endpoint,
        forcePathStyle: true,
        credentials: { source: 'env', accessKeyIdVar: 'VCM_TEST_OUTAGE_KEY', secretAccessKeyVar: 'VCM_TEST_OUTAGE_SECRET' },
        maxAttempts: 2,
        connectTimeoutMs: 500,
        requestTimeoutMs: 2000,
      },
      {},
    );
    expect(await store.putIfAbsent('policy/1.json', Buffer.from('{}'))).toBe('created');
    await outage.stop();
    const put = await failure(store.putIfAbsent('policy/2.json', Buffer.from('{}')));
    expect(put.code).toBe('COL_ERR_STORE_UNAVAILABLE');
    expect(put.message).toMatch(/unreachable.*ECONNREFUSED/);
    expect((await failure(store.get('policy/1.json'))).code).toBe('COL_ERR_STORE_UNAVAILABLE');
    expect((await failure((async () => { for await (const _ of store.list('policy/')) void _; })())).code).toBe('COL_ERR_STORE_UNAVAILABLE');
    expect((await failure(store.ping())).code).toBe('COL_ERR_STORE_UNAVAILABLE');
  });

  it('an endpoint that accepts but never answers times out into COL_ERR_STORE_UNAVAILABLE (requestTimeoutMs)', async () => {
    const sockets: Socket[] = [];
    const silent = createServer((sock) => void sockets.push(sock));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as { port: number }).port;
    try {
      const store = new S3EvidenceStore({
        bucket: 'evidence-plain',
        endpoint: `http://127.0.0.1:${port}`,
        forcePathStyle: true,
        credentials: { source: 'env', accessKeyIdVar: 'VCM_TEST_MEMS3_KEY', secretAccessKeyVar: 'VCM_TEST_MEMS3_SECRET' },
        maxAttempts: 1,
        requestTimeoutMs: 300,
      });
      const started = Date.now();
      const put = await failure(store.putIfAbsent('policy/1.json', Buffer.from('{}')));
      expect([put.code, put.message]).toEqual(['COL_ERR_STORE_UNAVAILABLE', expect.stringMatching(/^S3 write failed: S3 is unreachable: .*Timeout/)]);
      expect(Date.now() - started).toBeLessThan(5000);
      expect((await failure(store.ping())).code).toBe('COL_ERR_STORE_UNAVAILABLE');
    } finally {
      for (const sock of sockets) sock.destroy();
      await new Promise((r) => silent.close(r));
    }
  });
});
