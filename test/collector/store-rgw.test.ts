// The S3 store against a real S3: Ceph's RADOS Gateway on loopback (test/helpers/rgw.ts). One
// cluster for the whole file; buckets are shared and each store gets its own key prefix.
// RGW 16 proves Object Lock, versioning, create-only writes on unversioned buckets, pagination,
// SSE-KMS and bucket policies. The two AWS behaviours it lacks are in store-memory-s3.test.ts.
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetBucketPolicyCommand,
  HeadObjectCommand,
  ListObjectVersionsCommand,
  PutBucketPolicyCommand,
  PutBucketVersioningCommand,
  PutObjectCommand,
  PutObjectLockConfigurationCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isCollectorError } from '../../collector/errors.js';
import { evidenceBucketPolicy, S3EvidenceStore, type S3StoreConfigInput } from '../../collector/s3-store.js';
import { rgwAvailability, startRgw, type Rgw } from '../helpers/rgw.js';
import { evidenceStoreContract } from './store-contract.js';

const rgwCheck = rgwAvailability('S3 store on Ceph RGW (test/collector/store-rgw.test.ts)');

const PLAIN = 'vcm-plain'; // unversioned
const LOCK = 'vcm-lock'; // Object Lock, COMPLIANCE default retention 1 day, versioning Enabled
const GOVERNANCE = 'vcm-lock-governance'; // Object Lock, GOVERNANCE default retention
const VERSIONED = 'vcm-versioned'; // versioning only
const POLICY = 'vcm-policy'; // Object Lock plus the RGW bucket policy
const UNKNOWN_KEY = 'vcm-ifnonematch-policy'; // only the AWS If-None-Match statement
const AWS_POLICY = 'vcm-aws-policy'; // the full AWS policy (its TLS statement shuts out plain HTTP)

let rgw: Rgw;
let admin: S3Client;
let credsDir: string;
let n = 0;

type Failure = { code: string; message: string };
async function failure(p: Promise<unknown>): Promise<Failure> {
  try {
    await p;
  } catch (err) {
    return isCollectorError(err) ? { code: err.code, message: err.message } : { code: `not a CollectorError: ${String(err)}`, message: '' };
  }
  return { code: 'no error', message: '' };
}

async function rawError(p: Promise<unknown>): Promise<[string | undefined, number | undefined]> {
  try {
    await p;
  } catch (err) {
    const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
    return [e.name, e.$metadata?.httpStatusCode];
  }
  return ['no error', 200];
}

function store(bucket: string, overrides: Partial<S3StoreConfigInput> = {}): S3EvidenceStore {
  return new S3EvidenceStore({
    bucket,
    endpoint: rgw.endpoint,
    forcePathStyle: true,
    credentials: { source: 'file', path: path.join(credsDir, 'rgw.json') },
    prefix: `t${++n}/`,
    ...overrides,
  });
}

const lockConfig = (): Partial<S3StoreConfigInput> => ({
  objectLock: { mode: 'COMPLIANCE', retainDays: 1 },
  sse: { kmsKeyId: rgw.kmsKeyIds[0]! },
});

describe.skipIf(!rgwCheck.available)('S3 store on Ceph RGW', () => {
  beforeAll(async () => {
    const t0 = Date.now();
    rgw = await startRgw();
    console.info(`radosgw ready at ${rgw.endpoint} in ${Date.now() - t0} ms`);
    credsDir = await mkdtemp(path.join(tmpdir(), 'vcm-rgw-creds-'));
    await writeFile(path.join(credsDir, 'rgw.json'), JSON.stringify({ accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey }), { mode: 0o600 });
    admin = new S3Client({ endpoint: rgw.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey } });
    await admin.send(new CreateBucketCommand({ Bucket: PLAIN }));
    await admin.send(new CreateBucketCommand({ Bucket: VERSIONED }));
    await admin.send(new PutBucketVersioningCommand({ Bucket: VERSIONED, VersioningConfiguration: { Status: 'Enabled' } }));
    await admin.send(new CreateBucketCommand({ Bucket: UNKNOWN_KEY }));
    await admin.send(new CreateBucketCommand({ Bucket: AWS_POLICY }));
    for (const [bucket, mode] of [[LOCK, 'COMPLIANCE'], [POLICY, 'COMPLIANCE'], [GOVERNANCE, 'GOVERNANCE']] as const) {
      await admin.send(new CreateBucketCommand({ Bucket: bucket, ObjectLockEnabledForBucket: true }));
      await admin.send(
        new PutObjectLockConfigurationCommand({
          Bucket: bucket,
          ObjectLockConfiguration: { ObjectLockEnabled: 'Enabled', Rule: { DefaultRetention: { Mode: mode, Days: 1 } } },
        }),
      );
    }
  });

  afterAll(async () => {
    await rgw?.stop();
    if (credsDir !== undefined) await rm(credsDir, { recursive: true, force: true });
  });

  evidenceStoreContract('S3 on Ceph RGW, unversioned bucket (create-only by If-None-Match → 412)', async () => ({
    store: store(PLAIN, { listPageSize: 7 }),
    listPageSize: 7,
  }));

  evidenceStoreContract('S3 on Ceph RGW, Object Lock COMPLIANCE bucket with SSE-KMS (create-only confirmed by version listing)', async () => ({
    store: store(LOCK, { ...lockConfig(), listPageSize: 7 }),
    listPageSize: 7,
  }));

  describe('create-only writes', () => {
    it('on an unversioned bucket, RGW answers 412 to If-None-Match and the store says "exists", with the original bytes unchanged', async () => {
      const s = store(PLAIN, { confirmCreates: false });
      const key = 'evidence/vendor=acme/date=2026-11-22/agent=a/000000000001-00.dsse.json';
      expect(await s.putIfAbsent(key, Buffer.from('original'))).toBe('created');
      const objectKey = `${s.config.prefix}${key}`;
      expect(await rawError(admin.send(new PutObjectCommand({ Bucket: PLAIN, Key: objectKey, Body: Buffer.from('other'), IfNoneMatch: '*' })))).toEqual([
        'PreconditionFailed',
        412,
      ]);
      expect(await s.putIfAbsent(key, Buffer.from('tampered'))).toBe('exists');
      expect((await s.get(key))?.toString()).toBe('original');
      const versions = await admin.send(new ListObjectVersionsCommand({ Bucket: PLAIN, Prefix: objectKey }));
      expect(versions.Versions?.map((v) => v.VersionId)).toEqual(['null']);
    });

    it('RGW 16 ignores If-None-Match on a versioned bucket (a second 200, a second version): the behaviour confirmCreates exists for', async () => {
      const key = `raw/${++n}/k`;
      const put = (body: string) => admin.send(new PutObjectCommand({ Bucket: VERSIONED, Key: key, Body: Buffer.from(body), IfNoneMatch: '*' }));
      expect((await put('one')).$metadata.httpStatusCode).toBe(200);
      expect((await put('two')).$metadata.httpStatusCode).toBe(200); // AWS answers 412 here
      const versions = await admin.send(new ListObjectVersionsCommand({ Bucket: VERSIONED, Prefix: key }));
      expect(versions.Versions).toHaveLength(2);
    });

    it('on a versioned bucket, the store confirms by listing versions: the second write is "exists" and reads return the first version', async () => {
      const s = store(VERSIONED);
      expect(await s.putIfAbsent('keys/agent.json', Buffer.from('first'))).toBe('created');
      expect(await s.putIfAbsent('keys/agent.json', Buffer.from('second'))).toBe('exists');
      expect((await s.get('keys/agent.json'))?.toString()).toBe('first');
      const unconfirmed = store(VERSIONED, { confirmCreates: false, prefix: s.config.prefix });
      // Without the confirmation, RGW 16's second 200 would be reported as a new piece of evidence.
      expect(await unconfirmed.putIfAbsent('keys/agent.json', Buffer.from('third'))).toBe('created');
    });

    it('a key hidden by a delete marker still counts as written, and reads return its first version', async () => {
      const s = store(VERSIONED);
      expect(await s.putIfAbsent('policy/1.json', Buffer.from('v1'))).toBe('created');
      await admin.send(new DeleteObjectCommand({ Bucket: VERSIONED, Key: `${s.config.prefix}policy/1.json` }));
      expect((await s.get('policy/1.json'))?.toString()).toBe('v1');
      expect(await s.putIfAbsent('policy/1.json', Buffer.from('v1-rewritten'))).toBe('exists');
    });
  });

  describe('Object Lock and versioning', () => {
    it('each put carries the configured mode and retain-until date, and SSE-KMS with the configured key', async () => {
      const s = store(LOCK, { ...lockConfig(), objectLock: { mode: 'COMPLIANCE', retainDays: 2 } });
      const before = Date.now();
      await s.putIfAbsent('policy/1.json', Buffer.from('{"version":1}'));
      const head = await admin.send(new HeadObjectCommand({ Bucket: LOCK, Key: `${s.config.prefix}policy/1.json` }));
      expect(head.ObjectLockMode).toBe('COMPLIANCE');
      const until = head.ObjectLockRetainUntilDate!.getTime();
      expect(until).toBeGreaterThanOrEqual(before + 2 * 86_400_000 - 1000);
      expect(until).toBeLessThanOrEqual(Date.now() + 2 * 86_400_000 + 1000);
      expect([head.ServerSideEncryption, head.SSEKMSKeyId]).toEqual(['aws:kms', rgw.kmsKeyIds[0]]);
      expect(head.ContentType).toBe('application/json');
      expect(head.VersionId).toMatch(/\S/);
    });

    it('deleting a locked version is refused with 403 AccessDenied (also with the governance bypass, and by multi-delete), and the bytes stay', async () => {
      const s = store(LOCK, lockConfig());
      await s.putIfAbsent('keys/locked.json', Buffer.from('evidence'));
      const Key = `${s.config.prefix}keys/locked.json`;
      const versionId = (await admin.send(new ListObjectVersionsCommand({ Bucket: LOCK, Prefix: Key }))).Versions![0]!.VersionId!;
      expect(await rawError(admin.send(new DeleteObjectCommand({ Bucket: LOCK, Key, VersionId: versionId })))).toEqual(['AccessDenied', 403]);
      expect(await rawError(admin.send(new DeleteObjectCommand({ Bucket: LOCK, Key, VersionId: versionId, BypassGovernanceRetention: true })))).toEqual([
        'AccessDenied',
        403,
      ]);
      const multi = await admin.send(new DeleteObjectsCommand({ Bucket: LOCK, Delete: { Objects: [{ Key, VersionId: versionId }] } }));
      expect(multi.Errors?.map((e) => e.Code)).toEqual(['AccessDenied']);
      expect((await s.get('keys/locked.json'))?.toString()).toBe('evidence');
    });

    it('versioning cannot be suspended on the Object Lock bucket (409)', async () => {
      expect(await rawError(admin.send(new PutBucketVersioningCommand({ Bucket: LOCK, VersioningConfiguration: { Status: 'Suspended' } })))).toEqual([
        'InvalidBucketState',
        409,
      ]);
    });

    it('a store configured for Object Lock on a bucket without it gets 400 InvalidRequest: COL_ERR_STORE_UNAVAILABLE, never created', async () => {
      const s = store(PLAIN, { objectLock: { mode: 'COMPLIANCE', retainDays: 1 } });
      const f = await failure(s.putIfAbsent('policy/1.json', Buffer.from('{}')));
      expect(f.code).toBe('COL_ERR_STORE_UNAVAILABLE');
      expect(f.message).toMatch(/^S3 write rejected: 400 InvalidRequest.*Object Lock/);
      expect(await s.get('policy/1.json')).toBeNull();
    });

    it('an unknown KMS key gets 403: COL_ERR_STORE_UNAVAILABLE, never created', async () => {
      const s = store(LOCK, { ...lockConfig(), sse: { kmsKeyId: 'no-such-key' } });
      const f = await failure(s.putIfAbsent('policy/1.json', Buffer.from('{}')));
      expect(f.code).toBe('COL_ERR_STORE_UNAVAILABLE');
      expect(f.message).toMatch(/^S3 write refused: 403 /);
      expect(await s.get('policy/1.json')).toBeNull();
    });

    it('wrong credentials get 403: COL_ERR_STORE_UNAVAILABLE, and ping fails', async () => {
      await writeFile(path.join(credsDir, 'wrong.json'), JSON.stringify({ accessKeyId: rgw.accessKeyId, secretAccessKey: 'not-the-secret' }));
      const s = store(PLAIN, { credentials: { source: 'file', path: path.join(credsDir, 'wrong.json') } });
      const f = await failure(s.putIfAbsent('policy/1.json', Buffer.from('{}')));
      expect([f.code, f.message]).toEqual(['COL_ERR_STORE_UNAVAILABLE', expect.stringMatching(/^S3 write refused: 403 SignatureDoesNotMatch/)]);
      expect((await failure(s.ping())).code).toBe('COL_ERR_STORE_UNAVAILABLE');
    });
  });

  describe('listing', () => {
    it('pages through more than 1000 keys with ListObjectsV2 pages of 1000 (two requests), in order', async () => {
      const s = store(PLAIN);
      const keys = Array.from({ length: 1003 }, (_, i) => `evidence/vendor=bulk/date=2026-11-22/agent=a/${String(i + 1).padStart(12, '0')}-x.dsse.json`);
      for (let i = 0; i < keys.length; i += 50) await Promise.all(keys.slice(i, i + 50).map((k) => s.putIfAbsent(k, Buffer.from('x'))));
      const pages: { maxKeys: number | undefined; keyCount: number | undefined; token: boolean }[] = [];
      s.client.middlewareStack.add(
        (next, context) => async (args) => {
          const out = await next(args);
          if (context.commandName === 'ListObjectsV2Command') {
            const input = args.input as { MaxKeys?: number; ContinuationToken?: string };
            pages.push({ maxKeys: input.MaxKeys, keyCount: (out.output as { KeyCount?: number }).KeyCount, token: input.ContinuationToken !== undefined });
          }
          return out;
        },
        { step: 'initialize', name: 'countListPages' },
      );
      const listed: string[] = [];
      for await (const k of s.list('evidence/')) listed.push(k);
      expect(listed).toEqual(keys);
      // S3 returns "up to" MaxKeys per page; RGW 16 cuts its first page short of 1000 (952 here).
      expect(pages.length).toBeGreaterThanOrEqual(2);
      expect(pages.every((p) => p.maxKeys === 1000 && p.keyCount !== undefined && p.keyCount <= 1000)).toBe(true);
      expect(pages.map((p) => p.token)).toEqual([false, ...pages.slice(1).map(() => true)]);
      expect(pages.reduce((sum, p) => sum + (p.keyCount ?? 0), 0)).toBe(1003);
    });
  });

  describe('preflight', () => {
    it('passes on a bucket with versioning, Object Lock and a COMPLIANCE default retention', async () => {
      const result = await store(LOCK, lockConfig()).preflight();
      expect(result.problems).toEqual([]);
      expect(result.ok).toBe(true);
      expect(result.checks.map((c) => [c.name, c.ok, c.required])).toEqual([
        ['bucket_reachable', true, true],
        ['versioning', true, true],
        ['object_lock', true, true],
        ['default_retention', true, true],
      ]);
      expect(result.checks.find((c) => c.name === 'default_retention')?.detail).toBe('default retention COMPLIANCE, 1 days');
    });

    it('fails on a plain bucket when Object Lock is required, naming each problem', async () => {
      const result = await store(PLAIN, lockConfig()).preflight();
      expect(result.ok).toBe(false);
      expect(result.problems).toEqual([
        { check: 'versioning', message: 'versioning is not enabled; Object Lock needs Enabled' },
        { check: 'object_lock', message: 'Object Lock is not enabled on the bucket' },
        { check: 'default_retention', message: 'the bucket has no default retention' },
      ]);
    });

    it('fails when the default retention is GOVERNANCE and the store requires COMPLIANCE', async () => {
      const result = await store(GOVERNANCE, lockConfig()).preflight();
      expect(result.problems).toEqual([{ check: 'default_retention', message: 'default retention is GOVERNANCE, 1 days; the store requires COMPLIANCE' }]);
    });

    it('passes on a plain bucket when Object Lock is not required, and fails on a missing bucket', async () => {
      const plain = await store(PLAIN).preflight();
      expect([plain.ok, plain.checks.map((c) => c.required)]).toEqual([true, [true, false, false, false]]);
      const missing = await store('vcm-no-such-bucket', lockConfig()).preflight();
      expect(missing.ok).toBe(false);
      expect(missing.problems.map((p) => p.check)).toEqual(['bucket_reachable', 'versioning', 'object_lock', 'default_retention']);
      expect(missing.problems[0]!.message).toMatch(/404/);
    });
  });

  describe('bucket policy', () => {
    it('RGW accepts the documented AWS bucket policy JSON (PutBucketPolicy) and returns it unchanged', async () => {
      const policy = evidenceBucketPolicy({ bucket: AWS_POLICY, prefix: 'vcm/', kms: { keyArn: 'arn:aws:kms:us-east-1:111122223333:key/example' } });
      await admin.send(new PutBucketPolicyCommand({ Bucket: AWS_POLICY, Policy: JSON.stringify(policy) }));
      const stored = await admin.send(new GetBucketPolicyCommand({ Bucket: AWS_POLICY }));
      expect(JSON.parse(stored.Policy!)).toEqual(policy);
    });

    it('RGW 16 does not know s3:if-none-match: the AWS statement denies every put there, conditional or not (so the RGW policy leaves it out)', async () => {
      const policy = evidenceBucketPolicy({ bucket: UNKNOWN_KEY, requireTls: false });
      policy.Statement = policy.Statement.filter((st) => st.Sid === 'DenyPutWithoutIfNoneMatch');
      await admin.send(new PutBucketPolicyCommand({ Bucket: UNKNOWN_KEY, Policy: JSON.stringify(policy) }));
      const f = await failure(store(UNKNOWN_KEY).putIfAbsent('policy/1.json', Buffer.from('{}')));
      expect([f.code, f.message]).toEqual(['COL_ERR_STORE_UNAVAILABLE', expect.stringMatching(/^S3 write refused: 403 AccessDenied/)]);
    });

    it('with the RGW policy, the store writes; deletes, version deletes, lock and versioning changes are refused (403); RGW 16 does not enforce the SSE-KMS statement', async () => {
      const policy = evidenceBucketPolicy({ bucket: POLICY, kms: {}, conditionalWrites: false, requireTls: false });
      await admin.send(new PutBucketPolicyCommand({ Bucket: POLICY, Policy: JSON.stringify(policy) }));
      const s = store(POLICY, lockConfig());
      expect(await s.putIfAbsent('keys/a.json', Buffer.from('{"a":1}'))).toBe('created');
      const Key = `${s.config.prefix}keys/a.json`;
      const versionId = (await admin.send(new ListObjectVersionsCommand({ Bucket: POLICY, Prefix: Key }))).Versions![0]!.VersionId!;
      const body = Buffer.from('{"b":2}');
      const md5 = createHash('md5').update(body).digest('base64');
      expect({
        deleteMarker: await rawError(admin.send(new DeleteObjectCommand({ Bucket: POLICY, Key }))),
        deleteVersion: await rawError(admin.send(new DeleteObjectCommand({ Bucket: POLICY, Key, VersionId: versionId }))),
        putWithoutSse: await rawError(admin.send(new PutObjectCommand({ Bucket: POLICY, Key: `${s.config.prefix}keys/b.json`, Body: body, ContentMD5: md5 }))),
        suspendVersioning: await rawError(admin.send(new PutBucketVersioningCommand({ Bucket: POLICY, VersioningConfiguration: { Status: 'Suspended' } }))),
        weakenLock: await rawError(
          admin.send(
            new PutObjectLockConfigurationCommand({
              Bucket: POLICY,
              ObjectLockConfiguration: { ObjectLockEnabled: 'Enabled', Rule: { DefaultRetention: { Mode: 'GOVERNANCE', Days: 1 } } },
            }),
          ),
        ),
      }).toEqual({
        deleteMarker: ['AccessDenied', 403],
        deleteVersion: ['AccessDenied', 403],
        putWithoutSse: ['no error', 200], // AWS: 403. On RGW 16 the store's sse setting is what encrypts.
        suspendVersioning: ['AccessDenied', 403],
        weakenLock: ['AccessDenied', 403],
      });
      expect((await s.get('keys/a.json'))?.toString()).toBe('{"a":1}');
    });
  });

  // Last: it kills the gateway of the shared cluster.
  describe('outage', () => {
    it('when radosgw dies mid-test, put, get, list and ping throw COL_ERR_STORE_UNAVAILABLE and no write is claimed', async () => {
      const s = store(PLAIN, { maxAttempts: 2, connectTimeoutMs: 500, requestTimeoutMs: 3000 });
      expect(await s.putIfAbsent('policy/1.json', Buffer.from('{}'))).toBe('created');
      await expect(s.ping()).resolves.toBeUndefined();
      await rgw.stopGateway();
      const put = await failure(s.putIfAbsent('policy/2.json', Buffer.from('{}')));
      expect([put.code, put.message]).toEqual(['COL_ERR_STORE_UNAVAILABLE', expect.stringMatching(/^S3 write failed: S3 is unreachable: ECONNREFUSED/)]);
      expect((await failure(s.get('policy/1.json'))).code).toBe('COL_ERR_STORE_UNAVAILABLE');
      expect((await failure((async () => { for await (const _ of s.list('')) void _; })())).code).toBe('COL_ERR_STORE_UNAVAILABLE');
      expect((await failure(s.ping())).code).toBe('COL_ERR_STORE_UNAVAILABLE');
      expect((await s.preflight()).problems.map((p) => p.check)).toContain('bucket_reachable');
    });
  });
});
