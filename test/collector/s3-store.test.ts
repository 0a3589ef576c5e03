// The S3 store's exact requests and its handling of every S3 answer, with aws-sdk-client-mock.
// A mock is used here for what no real server here can show on demand: AWS's 409
// ConditionalRequestConflict, 5xx answers and exact command parameters. Behaviour against a real S3
// is in store-rgw.test.ts, and the AWS-only behaviours in store-memory-s3.test.ts.
import {
  GetBucketVersioningCommand,
  GetObjectCommand,
  GetObjectLockConfigurationCommand,
  HeadBucketCommand,
  ListObjectsV2Command,
  ListObjectVersionsCommand,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  type GetObjectCommandOutput,
} from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { isCollectorError } from '../../collector/errors.js';
import { evidenceBucketPolicy, parseS3StoreConfig, S3EvidenceStore, type S3StoreConfigInput } from '../../collector/s3-store.js';

const NOW = new Date('2026-11-22T10:00:00.000Z');
const client = new S3Client({ region: 'us-east-1', credentials: { accessKeyId: 'AKIDMOCK', secretAccessKey: 'mock-secret' } });
const s3 = mockClient(client);
const sleeps: number[] = [];

beforeEach(() => {
  s3.reset();
  sleeps.length = 0;
});
afterAll(() => s3.restore());

function makeStore(overrides: Partial<S3StoreConfigInput> = {}): S3EvidenceStore {
  return new S3EvidenceStore(
    { bucket: 'evidence-bucket', prefix: 'vcm/', ...overrides },
    { client, now: () => NOW, sleep: (ms) => (sleeps.push(ms), Promise.resolve()) },
  );
}

function s3Error(name: string, status: number, message = ''): S3ServiceException {
  return new S3ServiceException({ name, $fault: status >= 500 ? 'server' : 'client', $metadata: { httpStatusCode: status }, message });
}

function body(bytes: string): GetObjectCommandOutput['Body'] {
  return { transformToByteArray: () => Promise.resolve(new Uint8Array(Buffer.from(bytes))) } as unknown as GetObjectCommandOutput['Body'];
}

async function failure(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await p;
  } catch (err) {
    return isCollectorError(err) ? { code: err.code, message: err.message } : { code: `not a CollectorError: ${String(err)}`, message: '' };
  }
  return { code: 'no error', message: '' };
}

const b64 = (alg: string, b: Buffer) => createHash(alg).update(b).digest('base64');

describe('S3 store configuration (zod, strict)', () => {
  it('fills the documented defaults', () => {
    const cfg = parseS3StoreConfig({ bucket: 'evidence-bucket' });
    expect(cfg).toEqual({
      bucket: 'evidence-bucket',
      region: 'us-east-1',
      forcePathStyle: false,
      credentials: { source: 'default' },
      prefix: '',
      listPageSize: 1000,
      connectTimeoutMs: 3000,
      requestTimeoutMs: 15000,
      maxAttempts: 3,
      conflictRetries: 3,
      confirmCreates: true,
    });
    expect(Object.isFrozen(cfg)).toBe(true);
  });

  it.each([
    ['an inlined secret', { bucket: 'evidence-bucket', credentials: { source: 'env', secretAccessKey: 'wJalrXUtnFEMI' } }, 's3.credentials'],
    ['a top-level access key', { bucket: 'evidence-bucket', accessKeyId: 'AKIA' }, 'Unrecognized key'],
    ['an unknown credentials source', { bucket: 'evidence-bucket', credentials: { source: 'inline' } }, 's3.credentials'],
    ['a bucket name with capitals', { bucket: 'Evidence' }, 's3.bucket'],
    ['a prefix without a trailing "/"', { bucket: 'evidence-bucket', prefix: 'vcm' }, 's3.prefix'],
    ['a prefix escaping with ".."', { bucket: 'evidence-bucket', prefix: '../' }, 's3.prefix'],
    ['zero retention days', { bucket: 'evidence-bucket', objectLock: { mode: 'COMPLIANCE', retainDays: 0 } }, 's3.objectLock.retainDays'],
    ['an unknown lock mode', { bucket: 'evidence-bucket', objectLock: { mode: 'LEGAL_HOLD', retainDays: 1 } }, 's3.objectLock.mode'],
    ['a page size over 1000', { bucket: 'evidence-bucket', listPageSize: 1001 }, 's3.listPageSize'],
    ['a non-HTTP endpoint', { bucket: 'evidence-bucket', endpoint: 'ftp://127.0.0.1' }, 's3.endpoint'],
  ])('refuses %s with COL_ERR_CONFIG', async (_what, input, mention) => {
    const f = await failure((async () => parseS3StoreConfig(input))());
    expect(f.code).toBe('COL_ERR_CONFIG');
    expect(f.message).toContain(mention);
    expect(f.message).not.toContain('wJalrXUtnFEMI');
  });

  it('checks at start that referenced credential variables are set, naming them and never their values', async () => {
    delete process.env.VCM_TEST_UNSET_KEY;
    process.env.VCM_TEST_SET_SECRET = 'secret-value-123';
    const f = await failure(
      (async () =>
        new S3EvidenceStore({ bucket: 'evidence-bucket', credentials: { source: 'env', accessKeyIdVar: 'VCM_TEST_UNSET_KEY', secretAccessKeyVar: 'VCM_TEST_SET_SECRET' } }))(),
    );
    expect(f).toEqual({ code: 'COL_ERR_CONFIG', message: 'S3 credentials: environment variable(s) not set: VCM_TEST_UNSET_KEY' });
  });

  it('reads a credentials file, and reports a bad one by path without echoing its content', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'vcm-s3-creds-'));
    try {
      const good = path.join(dir, 'good.json');
      await writeFile(good, JSON.stringify({ accessKeyId: 'AKIDFILE', secretAccessKey: 'file-secret' }));
      const s = new S3EvidenceStore({ bucket: 'evidence-bucket', credentials: { source: 'file', path: good } });
      const creds = await s.client.config.credentials();
      expect([creds.accessKeyId, creds.secretAccessKey]).toEqual(['AKIDFILE', 'file-secret']);
      const bad = path.join(dir, 'bad.json');
      await writeFile(bad, '{"accessKeyId":"AKIDFILE","secretAccessKey":"leaked-secret"');
      const f = await failure((async () => new S3EvidenceStore({ bucket: 'evidence-bucket', credentials: { source: 'file', path: bad } }))());
      expect(f).toEqual({ code: 'COL_ERR_CONFIG', message: `S3 credentials file ${bad}: not JSON` });
      const missing = await failure((async () => new S3EvidenceStore({ bucket: 'evidence-bucket', credentials: { source: 'file', path: path.join(dir, 'none') } }))());
      expect(missing.message).toMatch(/ENOENT$/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('builds its own client from the config: region, endpoint, path style', async () => {
    const s = new S3EvidenceStore({ bucket: 'evidence-bucket', region: 'eu-central-1', endpoint: 'http://127.0.0.1:9', forcePathStyle: true });
    expect(await s.client.config.region()).toBe('eu-central-1');
    expect(s.client.config.forcePathStyle).toBe(true);
    expect(s.description).toBe('s3://evidence-bucket/ at http://127.0.0.1:9');
  });
});

describe('PutObject parameters', () => {
  it('sends a create-only, checksummed Buffer with Object Lock retention and SSE-KMS when configured', async () => {
    s3.on(PutObjectCommand).resolves({});
    const store = makeStore({ objectLock: { mode: 'COMPLIANCE', retainDays: 2555 }, sse: { kmsKeyId: 'arn:aws:kms:eu-central-1:111122223333:key/abc' } });
    const bytes = Buffer.from('{"payload":"e30=","payloadType":"application/vnd.in-toto+json","signatures":[]}');
    expect(await store.putIfAbsent('evidence/vendor=acme/date=2026-11-22/agent=a/000000000001-ff.dsse.json', bytes)).toBe('created');
    const calls = s3.commandCalls(PutObjectCommand);
    expect(calls).toHaveLength(1);
    const input = calls[0]!.args[0].input;
    expect(input).toEqual({
      Bucket: 'evidence-bucket',
      Key: 'vcm/evidence/vendor=acme/date=2026-11-22/agent=a/000000000001-ff.dsse.json',
      Body: bytes,
      ContentLength: bytes.length,
      ContentType: 'application/json',
      IfNoneMatch: '*',
      ChecksumAlgorithm: 'SHA256',
      ChecksumSHA256: b64('sha256', bytes),
      ContentMD5: b64('md5', bytes),
      ObjectLockMode: 'COMPLIANCE',
      ObjectLockRetainUntilDate: new Date('2033-11-20T10:00:00.000Z'),
      ServerSideEncryption: 'aws:kms',
      SSEKMSKeyId: 'arn:aws:kms:eu-central-1:111122223333:key/abc',
    });
    expect(Buffer.isBuffer(input.Body)).toBe(true);
    expect(input.Body).toBe(bytes);
  });

  it('sends no lock or encryption parameters when none are configured, and octet-stream for non-JSON keys', async () => {
    s3.on(PutObjectCommand).resolves({});
    await makeStore().putIfAbsent('tokens/abc.use-1', Buffer.from('x'));
    const input = s3.commandCalls(PutObjectCommand)[0]!.args[0].input;
    expect(Object.keys(input).sort()).toEqual(['Body', 'Bucket', 'ChecksumAlgorithm', 'ChecksumSHA256', 'ContentLength', 'ContentMD5', 'ContentType', 'IfNoneMatch', 'Key']);
    expect(input.ContentType).toBe('application/octet-stream');
  });

  it('refuses a non-Buffer value before sending anything', async () => {
    const f = await failure(makeStore().putIfAbsent('policy/1.json', '{}' as unknown as Buffer));
    expect(f.code).toBe('COL_ERR_INTERNAL');
    expect(s3.calls()).toHaveLength(0);
  });
});

describe('S3 answers to PutObject', () => {
  it('200 is "created", acknowledged only after S3 answered', async () => {
    let answered = false;
    s3.on(PutObjectCommand).callsFake(async () => {
      await new Promise((r) => setTimeout(r, 20));
      answered = true;
      return {};
    });
    expect(await makeStore().putIfAbsent('policy/1.json', Buffer.from('{}'))).toBe('created');
    expect(answered).toBe(true);
    expect(s3.commandCalls(ListObjectVersionsCommand)).toHaveLength(0); // unversioned: nothing to confirm
  });

  it('412 PreconditionFailed is "exists"', async () => {
    s3.on(PutObjectCommand).rejects(s3Error('PreconditionFailed', 412, 'At least one of the pre-conditions you specified did not hold'));
    expect(await makeStore().putIfAbsent('policy/1.json', Buffer.from('{}'))).toBe('exists');
    expect(s3.commandCalls(PutObjectCommand)).toHaveLength(1);
  });

  it('409 ConditionalRequestConflict is retried with growing backoff, and the retry decides', async () => {
    s3.on(PutObjectCommand)
      .rejectsOnce(s3Error('ConditionalRequestConflict', 409))
      .rejectsOnce(s3Error('ConditionalRequestConflict', 409))
      .resolves({});
    expect(await makeStore().putIfAbsent('policy/1.json', Buffer.from('{}'))).toBe('created');
    expect(s3.commandCalls(PutObjectCommand)).toHaveLength(3);
    expect(sleeps).toHaveLength(2);
    expect(sleeps[1]! - sleeps[0]!).toBeGreaterThan(0);
  });

  it('409 retried then 412 is "exists" (the concurrent writer won)', async () => {
    s3.on(PutObjectCommand).rejectsOnce(s3Error('ConditionalRequestConflict', 409)).rejects(s3Error('PreconditionFailed', 412));
    expect(await makeStore().putIfAbsent('policy/1.json', Buffer.from('{}'))).toBe('exists');
  });

  it('409 every time: after the bounded retries, what is stored decides ("exists" when the key holds bytes)', async () => {
    s3.on(PutObjectCommand).rejects(s3Error('ConditionalRequestConflict', 409));
    s3.on(GetBucketVersioningCommand).resolves({});
    s3.on(GetObjectCommand).resolves({ Body: body('{"other":"writer"}') });
    expect(await makeStore({ conflictRetries: 2 }).putIfAbsent('policy/1.json', Buffer.from('{}'))).toBe('exists');
    expect(s3.commandCalls(PutObjectCommand)).toHaveLength(3);
    expect(s3.commandCalls(GetObjectCommand)[0]!.args[0].input).toEqual({ Bucket: 'evidence-bucket', Key: 'vcm/policy/1.json' });
  });

  it('409 every time with nothing stored is COL_ERR_STORE_UNAVAILABLE, never "created"', async () => {
    s3.on(PutObjectCommand).rejects(s3Error('ConditionalRequestConflict', 409));
    s3.on(GetBucketVersioningCommand).resolves({});
    s3.on(GetObjectCommand).rejects(s3Error('NoSuchKey', 404));
    const f = await failure(makeStore({ conflictRetries: 1 }).putIfAbsent('policy/1.json', Buffer.from('{}')));
    expect(f).toEqual({
      code: 'COL_ERR_STORE_UNAVAILABLE',
      message: 'S3 write conflicted (409 ConditionalRequestConflict) 2 times and nothing is stored under the key',
    });
  });

  it('another 409 (not a conditional conflict) is not retried', async () => {
    s3.on(PutObjectCommand).rejects(s3Error('OperationAborted', 409));
    const f = await failure(makeStore().putIfAbsent('policy/1.json', Buffer.from('{}')));
    expect(f).toEqual({ code: 'COL_ERR_STORE_UNAVAILABLE', message: 'S3 write failed: 409 OperationAborted' });
    expect(s3.commandCalls(PutObjectCommand)).toHaveLength(1);
  });

  it.each([
    ['403 AccessDenied', s3Error('AccessDenied', 403, 'Access Denied'), 'S3 write refused: 403 AccessDenied (Access Denied): check the credentials, the IAM and bucket policies and the KMS key permissions'],
    ['403 KMS.DisabledException', s3Error('KMS.DisabledException', 403), 'S3 write refused: 403 KMS.DisabledException: check the credentials, the IAM and bucket policies and the KMS key permissions'],
    ['400 InvalidRequest', s3Error('InvalidRequest', 400, 'Bucket is missing Object Lock Configuration'), "S3 write rejected: 400 InvalidRequest (Bucket is missing Object Lock Configuration): check the bucket's Object Lock, versioning and encryption settings against the store configuration"],
    ['400 BadDigest', s3Error('BadDigest', 400), "S3 write rejected: 400 BadDigest: check the bucket's Object Lock, versioning and encryption settings against the store configuration"],
    ['404 NoSuchBucket', s3Error('NoSuchBucket', 404), 'S3 write failed: 404 NoSuchBucket: does the bucket exist in this region?'],
    ['500 InternalError', s3Error('InternalError', 500), 'S3 write failed: 500 InternalError'],
    ['503 SlowDown', s3Error('SlowDown', 503), 'S3 write failed: 503 SlowDown'],
    ['a reset connection', Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }), 'S3 write failed: S3 is unreachable: ECONNRESET Error (socket hang up)'],
    ['a timeout', Object.assign(new Error('request timed out'), { name: 'TimeoutError' }), 'S3 write failed: S3 is unreachable: TimeoutError (request timed out)'],
  ])('%s is COL_ERR_STORE_UNAVAILABLE with a clear message, never "created"', async (_what, err, message) => {
    s3.on(PutObjectCommand).rejects(err);
    const f = await failure(makeStore().putIfAbsent('policy/1.json', Buffer.from('{}')));
    expect(f).toEqual({ code: 'COL_ERR_STORE_UNAVAILABLE', message });
    expect(s3.commandCalls(PutObjectCommand)).toHaveLength(1);
  });
});

describe('create confirmation on versioned buckets', () => {
  it('a 200 with a version id is "created" when that version is the key\'s only one', async () => {
    s3.on(PutObjectCommand).resolves({ VersionId: 'v2' });
    s3.on(ListObjectVersionsCommand).resolves({ Versions: [{ Key: 'vcm/keys/a.json', VersionId: 'v2' }, { Key: 'vcm/keys/a.json.bak', VersionId: 'v1' }] });
    expect(await makeStore().putIfAbsent('keys/a.json', Buffer.from('{}'))).toBe('created');
    expect(s3.commandCalls(ListObjectVersionsCommand)[0]!.args[0].input).toEqual({ Bucket: 'evidence-bucket', Prefix: 'vcm/keys/a.json', MaxKeys: 1000 });
  });

  it('a 200 is "exists" when an earlier version of the key is listed (a store that ignored If-None-Match)', async () => {
    s3.on(PutObjectCommand).resolves({ VersionId: 'v2' });
    s3.on(ListObjectVersionsCommand).resolves({ Versions: [{ Key: 'vcm/keys/a.json', VersionId: 'v2' }, { Key: 'vcm/keys/a.json', VersionId: 'v1' }] });
    expect(await makeStore().putIfAbsent('keys/a.json', Buffer.from('{}'))).toBe('exists');
  });

  it('follows truncated version listings of the key', async () => {
    s3.on(PutObjectCommand).resolves({ VersionId: 'v3' });
    s3.on(ListObjectVersionsCommand)
      .resolvesOnce({ Versions: [{ Key: 'vcm/keys/a.json', VersionId: 'v3' }], IsTruncated: true, NextKeyMarker: 'vcm/keys/a.json', NextVersionIdMarker: 'v3' })
      .resolves({ Versions: [{ Key: 'vcm/keys/a.json', VersionId: 'v1' }] });
    expect(await makeStore().putIfAbsent('keys/a.json', Buffer.from('{}'))).toBe('exists');
    expect(s3.commandCalls(ListObjectVersionsCommand)[1]!.args[0].input).toMatchObject({ KeyMarker: 'vcm/keys/a.json', VersionIdMarker: 'v3' });
  });

  it('a version that is not listed cannot be confirmed: COL_ERR_STORE_UNAVAILABLE', async () => {
    s3.on(PutObjectCommand).resolves({ VersionId: 'v2' });
    s3.on(ListObjectVersionsCommand).resolves({ Versions: [] });
    expect((await failure(makeStore().putIfAbsent('keys/a.json', Buffer.from('{}')))).code).toBe('COL_ERR_STORE_UNAVAILABLE');
  });

  it('with confirmCreates off, a 200 is "created" without listing', async () => {
    s3.on(PutObjectCommand).resolves({ VersionId: 'v2' });
    expect(await makeStore({ confirmCreates: false }).putIfAbsent('keys/a.json', Buffer.from('{}'))).toBe('created');
    expect(s3.commandCalls(ListObjectVersionsCommand)).toHaveLength(0);
  });

  it('reads on a versioned bucket return the first version', async () => {
    s3.on(GetBucketVersioningCommand).resolves({ Status: 'Enabled' });
    s3.on(ListObjectVersionsCommand).resolves({ Versions: [{ Key: 'vcm/keys/a.json', VersionId: 'v2' }, { Key: 'vcm/keys/a.json', VersionId: 'v1' }] });
    s3.on(GetObjectCommand).resolves({ Body: body('first') });
    const store = makeStore();
    expect((await store.get('keys/a.json'))?.toString()).toBe('first');
    expect(s3.commandCalls(GetObjectCommand)[0]!.args[0].input).toEqual({ Bucket: 'evidence-bucket', Key: 'vcm/keys/a.json', VersionId: 'v1' });
    await store.get('keys/a.json');
    expect(s3.commandCalls(GetBucketVersioningCommand)).toHaveLength(1); // asked once
  });
});

describe('reads, listing and ping', () => {
  it('get: 404 NoSuchKey is null; 403 is COL_ERR_STORE_UNAVAILABLE', async () => {
    s3.on(GetBucketVersioningCommand).resolves({});
    s3.on(GetObjectCommand).rejectsOnce(s3Error('NoSuchKey', 404)).rejects(s3Error('AccessDenied', 403));
    const store = makeStore();
    expect(await store.get('policy/1.json')).toBeNull();
    expect(await failure(store.get('policy/1.json'))).toEqual({
      code: 'COL_ERR_STORE_UNAVAILABLE',
      message: 'S3 read refused: 403 AccessDenied: check the credentials, the IAM and bucket policies and the KMS key permissions',
    });
  });

  it('list pages with the configured size and continuation tokens, strips the prefix and skips folder markers', async () => {
    s3.on(ListObjectsV2Command)
      .resolvesOnce({ Contents: [{ Key: 'vcm/policy/' }, { Key: 'vcm/policy/1.json' }], IsTruncated: true, NextContinuationToken: 'page-2' })
      .resolvesOnce({ Contents: [{ Key: 'vcm/policy/2.json' }], IsTruncated: false });
    const keys: string[] = [];
    for await (const k of makeStore({ listPageSize: 2 }).list('policy/')) keys.push(k);
    expect(keys).toEqual(['policy/1.json', 'policy/2.json']);
    expect(s3.commandCalls(ListObjectsV2Command).map((c) => c.args[0].input)).toEqual([
      { Bucket: 'evidence-bucket', Prefix: 'vcm/policy/', MaxKeys: 2 },
      { Bucket: 'evidence-bucket', Prefix: 'vcm/policy/', MaxKeys: 2, ContinuationToken: 'page-2' },
    ]);
  });

  it('list fails rather than stopping early on a truncated page without a token', async () => {
    s3.on(ListObjectsV2Command).resolves({ Contents: [{ Key: 'vcm/policy/1.json' }], IsTruncated: true });
    const f = await failure((async () => { for await (const _ of makeStore().list('policy/')) void _; })());
    expect(f.code).toBe('COL_ERR_STORE_UNAVAILABLE');
  });

  it('ping is a HeadBucket; its failure is COL_ERR_STORE_UNAVAILABLE', async () => {
    s3.on(HeadBucketCommand).resolvesOnce({}).rejects(s3Error('NotFound', 404));
    const store = makeStore();
    await expect(store.ping()).resolves.toBeUndefined();
    expect(s3.commandCalls(HeadBucketCommand)[0]!.args[0].input).toEqual({ Bucket: 'evidence-bucket' });
    expect((await failure(store.ping())).code).toBe('COL_ERR_STORE_UNAVAILABLE');
  });
});

describe('preflight', () => {
  it('names suspended versioning and an unreadable lock configuration as problems', async () => {
    s3.on(HeadBucketCommand).resolves({});
    s3.on(GetBucketVersioningCommand).resolves({ Status: 'Suspended' });
    s3.on(GetObjectLockConfigurationCommand).rejects(s3Error('AccessDenied', 403));
    const r = await makeStore({ objectLock: { mode: 'COMPLIANCE', retainDays: 1 } }).preflight();
    expect(r.ok).toBe(false);
    expect(r.problems).toEqual([
      { check: 'versioning', message: 'versioning is Suspended; Object Lock needs Enabled' },
      { check: 'object_lock', message: expect.stringMatching(/^S3 Object Lock check refused: 403 AccessDenied/) },
      { check: 'default_retention', message: 'not checked: the Object Lock configuration could not be read' },
    ]);
  });

  it('accepts a COMPLIANCE default (in years) when the store writes GOVERNANCE, the stronger mode', async () => {
    s3.on(HeadBucketCommand).resolves({});
    s3.on(GetBucketVersioningCommand).resolves({ Status: 'Enabled' });
    s3.on(GetObjectLockConfigurationCommand).resolves({
      ObjectLockConfiguration: { ObjectLockEnabled: 'Enabled', Rule: { DefaultRetention: { Mode: 'COMPLIANCE', Years: 7 } } },
    });
    const r = await makeStore({ objectLock: { mode: 'GOVERNANCE', retainDays: 30 } }).preflight();
    expect(r.ok).toBe(true);
    expect(r.checks.at(-1)).toEqual({ name: 'default_retention', ok: true, required: true, detail: 'default retention COMPLIANCE, 7 years' });
  });
});

describe('the evidence bucket policy', () => {
  it('denies puts without If-None-Match, deletes, retention bypass, lock and versioning changes, other encryption and plain HTTP', () => {
    const p = evidenceBucketPolicy({ bucket: 'evidence-bucket', prefix: 'vcm/', kms: { keyArn: 'arn:aws:kms:eu-central-1:111122223333:key/abc' } });
    expect(p.Version).toBe('2012-10-17');
    expect(p.Statement.map((s) => [s.Sid, s.Effect, s.Action, s.Resource])).toEqual([
      ['DenyPutWithoutIfNoneMatch', 'Deny', 's3:PutObject', 'arn:aws:s3:::evidence-bucket/vcm/*'],
      ['DenyDeletesAndRetentionBypass', 'Deny', ['s3:DeleteObject', 's3:DeleteObjectVersion', 's3:BypassGovernanceRetention'], 'arn:aws:s3:::evidence-bucket/vcm/*'],
      ['DenyLockAndVersioningChanges', 'Deny', ['s3:PutBucketObjectLockConfiguration', 's3:PutBucketVersioning'], 'arn:aws:s3:::evidence-bucket'],
      ['DenyPutWithoutSseKms', 'Deny', 's3:PutObject', 'arn:aws:s3:::evidence-bucket/vcm/*'],
      ['DenyPutWithOtherKmsKey', 'Deny', 's3:PutObject', 'arn:aws:s3:::evidence-bucket/vcm/*'],
      ['DenyInsecureTransport', 'Deny', 's3:*', ['arn:aws:s3:::evidence-bucket', 'arn:aws:s3:::evidence-bucket/*']],
    ]);
    expect(p.Statement[0]!.Condition).toEqual({ Null: { 's3:if-none-match': 'true' } });
    expect(p.Statement[4]!.Condition).toEqual({
      StringNotEqualsIfExists: { 's3:x-amz-server-side-encryption-aws-kms-key-id': 'arn:aws:kms:eu-central-1:111122223333:key/abc' },
    });
  });

  it('leaves out what a store does not support when asked', () => {
    const p = evidenceBucketPolicy({ bucket: 'evidence-bucket', conditionalWrites: false, requireTls: false });
    expect(p.Statement.map((s) => s.Sid)).toEqual(['DenyDeletesAndRetentionBypass', 'DenyLockAndVersioningChanges']);
  });
});
