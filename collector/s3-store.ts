// The S3 evidence store: the same keys and contract as the filesystem store (store.ts), on any
// S3 API (AWS, or S3-compatible stores through `endpoint` and `forcePathStyle`).
// Writes are create-only (If-None-Match: *), carry a SHA-256 checksum (and Content-MD5, which
// S3-compatible stores that ignore flexible checksums still verify), optional Object Lock
// retention and SSE-KMS, and are acknowledged only on S3's 200.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  GetBucketVersioningCommand,
  GetObjectCommand,
  GetObjectLockConfigurationCommand,
  HeadBucketCommand,
  ListObjectsV2Command,
  ListObjectVersionsCommand,
  PutObjectCommand,
  S3Client,
  type PutObjectCommandInput,
} from '@aws-sdk/client-s3';
import * as z from 'zod';
import { CollectorError } from './errors.js';
import { assertKey, type EvidenceStore, type PreflightCheck, type PutResult, type StorePreflight } from './store.js';

const envVarName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name');

/** Where the S3 credentials come from. Secrets are referenced, never written in the config. */
export const s3CredentialsSchema = z.discriminatedUnion('source', [
  /** The AWS SDK's default chain: environment, shared config/credentials files (AWS_PROFILE), SSO, web identity, ECS/EC2 roles. */
  z.object({ source: z.literal('default') }).strict(),
  /** Named environment variables hold the keys (the names are in the config, the values are not). */
  z
    .object({
      source: z.literal('env'),
      accessKeyIdVar: envVarName.default('AWS_ACCESS_KEY_ID'),
      secretAccessKeyVar: envVarName.default('AWS_SECRET_ACCESS_KEY'),
      sessionTokenVar: envVarName.optional(),
    })
    .strict(),
  /** A JSON file {"accessKeyId","secretAccessKey","sessionToken"?}, re-read every 10 minutes (rotation). */
  z.object({ source: z.literal('file'), path: z.string().min(1) }).strict(),
]);

export const s3StoreConfigSchema = z
  .object({
    bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'an S3 bucket name (3-63 characters: a-z, 0-9, ".", "-")'),
    region: z.string().min(1).default('us-east-1'),
    /** For S3-compatible stores (Ceph RGW, MinIO…); AWS needs none. */
    endpoint: z.url({ protocol: /^https?$/ }).optional(),
    /** Path-style URLs (endpoint/bucket/key), which most S3-compatible stores need. */
    forcePathStyle: z.boolean().default(false),
    credentials: s3CredentialsSchema.default({ source: 'default' }),
    /** Object Lock retention set on every put; the bucket must have Object Lock and versioning enabled. */
    objectLock: z
      .object({
        mode: z.enum(['COMPLIANCE', 'GOVERNANCE']),
        /** Days from the write until the object may be deleted. */
        retainDays: z.number().int().min(1).max(36_500),
      })
      .strict()
      .optional(),
    /** SSE-KMS on every put. Use the key ARN on AWS, so that a bucket policy can pin it. */
    sse: z.object({ kmsKeyId: z.string().min(1) }).strict().optional(),
    /** Prepended to every key: "" or folder-like, ending in "/" (e.g. "vcm/prod/"). */
    prefix: z
      .string()
      .regex(/^([A-Za-z0-9=._-]+\/)*$/, 'empty, or folder names each ending in "/"')
      .refine((p) => p.split('/').every((part) => part !== '.' && part !== '..'), 'no "." or ".." folders')
      .default(''),
    /** Keys per ListObjectsV2 page (S3 returns at most 1000). */
    listPageSize: z.number().int().min(1).max(1000).default(1000),
    /** Connection establishment timeout, milliseconds. */
    connectTimeoutMs: z.number().int().min(50).default(3_000),
    /** Whole-request timeout (request and response), milliseconds. */
    requestTimeoutMs: z.number().int().min(100).default(15_000),
    /** Attempts per request by the SDK (network errors, 5xx, throttling), with backoff. */
    maxAttempts: z.number().int().min(1).max(10).default(3),
    /** Retries of a put answered 409 ConditionalRequestConflict (a concurrent write to the same key). */
    conflictRetries: z.number().int().min(0).max(10).default(3),
    /**
     * On a versioned bucket, list the key's versions after each 200 and count the write as created
     * only when no earlier version exists; reads return the first version. Needed where a store
     * ignores If-None-Match on versioned buckets (Ceph RGW 16 writes a new version). AWS S3 answers
     * 412 there, so on AWS this may be turned off to save a LIST per write.
     */
    confirmCreates: z.boolean().default(true),
  })
  .strict();

export type S3StoreConfigInput = z.input<typeof s3StoreConfigSchema>;
export type S3StoreConfig = Readonly<z.output<typeof s3StoreConfigSchema>>;

export function parseS3StoreConfig(input: unknown): S3StoreConfig {
  const parsed = s3StoreConfigSchema.safeParse(input);
  if (!parsed.success) {
    throw new CollectorError('COL_ERR_CONFIG', parsed.error.issues.map((i) => `s3.${i.path.join('.') || 'config'}: ${i.message}`).join('; '));
  }
  return Object.freeze(parsed.data);
}

export interface S3StoreDeps {
  /** An S3 client to use instead of one built from the config (tests, custom middleware). */
  client?: S3Client;
  now?: () => Date;
  sleep?: (ms: number) => Promise<void>;
}

interface S3ErrorLike {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
}

function httpStatus(err: unknown): number | undefined {
  return (err as S3ErrorLike | undefined)?.$metadata?.httpStatusCode;
}

function errorName(err: unknown): string {
  const e = err as S3ErrorLike | undefined;
  return e?.name ?? e?.code ?? 'Error';
}

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE', 'ECONNABORTED']);

/** A one-line reason for an S3 failure, with advice; never credentials. */
export function describeS3Error(op: string, err: unknown): string {
  const status = httpStatus(err);
  const name = errorName(err);
  const raw = (err as S3ErrorLike | undefined)?.message ?? '';
  const detail = raw !== '' && raw !== 'UnknownError' && raw !== name ? ` (${raw})` : '';
  if (status === undefined) {
    const code = (err as S3ErrorLike | undefined)?.code;
    if (/checksum mismatch/i.test(raw)) return `S3 ${op} failed: the response failed SHA-256 checksum validation${detail}`;
    if ((code !== undefined && NETWORK_CODES.has(code)) || name === 'TimeoutError' || name === 'AbortError') {
      return `S3 ${op} failed: S3 is unreachable: ${code !== undefined && code !== name ? `${code} ` : ''}${name}${detail}`;
    }
    return `S3 ${op} failed: ${code !== undefined && code !== name ? `${code} ` : ''}${name}${detail}`;
  }
  if (status === 403) {
    return `S3 ${op} refused: 403 ${name}${detail}: check the credentials, the IAM and bucket policies and the KMS key permissions`;
  }
  if (status === 400) {
    return `S3 ${op} rejected: 400 ${name}${detail}: check the bucket's Object Lock, versioning and encryption settings against the store configuration`;
  }
  if (status === 404) return `S3 ${op} failed: 404 ${name}${detail}: does the bucket exist in this region?`;
  return `S3 ${op} failed: ${status} ${name}${detail}`;
}

function unavailable(op: string, err: unknown): CollectorError {
  if (err instanceof CollectorError) return err;
  return new CollectorError('COL_ERR_STORE_UNAVAILABLE', describeS3Error(op, err), { cause: err });
}

function isNotFound(err: unknown): boolean {
  const name = errorName(err);
  return httpStatus(err) === 404 || name === 'NoSuchKey' || name === 'NotFound' || name === 'NoSuchVersion';
}

const fileCredentialsSchema = z.object({ accessKeyId: z.string().min(1), secretAccessKey: z.string().min(1), sessionToken: z.string().min(1).optional() });

type Credentials = { accessKeyId: string; secretAccessKey: string; sessionToken?: string; expiration?: Date };

/** Builds the credential provider; checks at start that the referenced variables or file exist. */
function credentialProvider(cfg: S3StoreConfig['credentials']): (() => Promise<Credentials>) | undefined {
  if (cfg.source === 'default') return undefined;
  if (cfg.source === 'env') {
    const read = (): Credentials => {
      const accessKeyId = process.env[cfg.accessKeyIdVar];
      const secretAccessKey = process.env[cfg.secretAccessKeyVar];
      const sessionToken = cfg.sessionTokenVar === undefined ? undefined : process.env[cfg.sessionTokenVar];
      const unset = [
        [cfg.accessKeyIdVar, accessKeyId],
        [cfg.secretAccessKeyVar, secretAccessKey],
        ...(cfg.sessionTokenVar === undefined ? [] : [[cfg.sessionTokenVar, sessionToken]]),
      ]
        .filter(([, v]) => v === undefined || v === '')
        .map(([n]) => n);
      if (unset.length > 0) throw new CollectorError('COL_ERR_CONFIG', `S3 credentials: environment variable(s) not set: ${unset.join(', ')}`);
      return { accessKeyId: accessKeyId!, secretAccessKey: secretAccessKey!, ...(sessionToken === undefined ? {} : { sessionToken }) };
    };
    read();
    return () => Promise.resolve(read());
  }
  const read = (): Credentials => {
    let parsed;
    try {
      parsed = fileCredentialsSchema.strict().parse(JSON.parse(readFileSync(cfg.path, 'utf8')));
    } catch (err) {
      // The file's content is a secret: name the file and the problem, never its bytes.
      const why = (err as NodeJS.ErrnoException).code ?? (err instanceof SyntaxError ? 'not JSON' : 'expected {"accessKeyId","secretAccessKey","sessionToken"?}');
      throw new CollectorError('COL_ERR_CONFIG', `S3 credentials file ${cfg.path}: ${why}`);
    }
    // The SDK refreshes an identity 5 minutes before it expires: re-read the file about every 10 minutes.
    return { ...parsed, expiration: new Date(Date.now() + 15 * 60_000) };
  };
  read();
  return () => Promise.resolve(read());
}

function contentType(key: string): string {
  return key.endsWith('.json') ? 'application/json' : 'application/octet-stream';
}

const DAY_MS = 86_400_000;

export class S3EvidenceStore implements EvidenceStore {
  readonly config: S3StoreConfig;
  readonly client: S3Client;
  readonly description: string;
  readonly #now: () => Date;
  readonly #sleep: (ms: number) => Promise<void>;
  #versioned: Promise<boolean> | undefined;

  constructor(config: S3StoreConfigInput | S3StoreConfig, deps: S3StoreDeps = {}) {
    this.config = parseS3StoreConfig(config);
    this.#now = deps.now ?? (() => new Date());
    this.#sleep = deps.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    const c = this.config;
    this.description = `s3://${c.bucket}/${c.prefix}${c.endpoint === undefined ? '' : ` at ${c.endpoint}`}`;
    const credentials = credentialProvider(c.credentials);
    this.client =
      deps.client ??
      new S3Client({
        region: c.region,
        ...(c.endpoint === undefined ? {} : { endpoint: c.endpoint }),
        forcePathStyle: c.forcePathStyle,
        ...(credentials === undefined ? {} : { credentials }),
        maxAttempts: c.maxAttempts,
        requestHandler: { connectionTimeout: c.connectTimeoutMs, requestTimeout: c.requestTimeoutMs, throwOnRequestTimeout: true },
      });
  }

  #objectKey(key: string): string {
    assertKey(key);
    return `${this.config.prefix}${key}`;
  }

  /** The exact PutObject parameters for one create-only write (exported for tests and docs). */
  putParameters(key: string, bytes: Buffer): PutObjectCommandInput {
    const c = this.config;
    return {
      Bucket: c.bucket,
      Key: this.#objectKey(key),
      // A Buffer, never a stream: with a stream the SDK uses aws-chunked uploads, which RGW 16 refuses (411).
      Body: bytes,
      ContentLength: bytes.length,
      ContentType: contentType(key),
      IfNoneMatch: '*',
      ChecksumAlgorithm: 'SHA256',
      ChecksumSHA256: createHash('sha256').update(bytes).digest('base64'),
      ContentMD5: createHash('md5').update(bytes).digest('base64'),
      ...(c.objectLock === undefined
        ? {}
        : { ObjectLockMode: c.objectLock.mode, ObjectLockRetainUntilDate: new Date(this.#now().getTime() + c.objectLock.retainDays * DAY_MS) }),
      ...(c.sse === undefined ? {} : { ServerSideEncryption: 'aws:kms', SSEKMSKeyId: c.sse.kmsKeyId }),
    };
  }

  async putIfAbsent(key: string, bytes: Buffer): Promise<PutResult> {
    if (!Buffer.isBuffer(bytes)) throw new CollectorError('COL_ERR_INTERNAL', 'store values are Buffers');
    const input = this.putParameters(key, bytes);
    for (let attempt = 0; ; attempt++) {
      let versionId: string | undefined;
      try {
        versionId = (await this.client.send(new PutObjectCommand(input))).VersionId;
      } catch (err) {
        const status = httpStatus(err);
        if (status === 412 || errorName(err) === 'PreconditionFailed') return 'exists';
        if (status === 409 && errorName(err) === 'ConditionalRequestConflict') {
          if (attempt < this.config.conflictRetries) {
            await this.#sleep(50 * 2 ** attempt + Math.floor(Math.random() * 50));
            continue;
          }
          // A concurrent writer kept winning the race: what is stored now decides.
          if ((await this.get(key)) !== null) return 'exists';
          throw new CollectorError(
            'COL_ERR_STORE_UNAVAILABLE',
            `S3 write conflicted (409 ConditionalRequestConflict) ${attempt + 1} times and nothing is stored under the key`,
            { cause: err },
          );
        }
        throw unavailable('write', err);
      }
      return this.#confirmCreated(input.Key!, versionId);
    }
  }

  /** On a versioned bucket, whether the version just written is the key's first. */
  async #confirmCreated(objectKey: string, versionId: string | undefined): Promise<PutResult> {
    if (!this.config.confirmCreates || versionId === undefined || versionId === 'null') return 'created';
    const versions = await this.#dataVersions(objectKey, 'write confirmation');
    const at = versions.indexOf(versionId);
    if (at === -1) {
      throw new CollectorError('COL_ERR_STORE_UNAVAILABLE', 'S3 accepted the write but does not list its version: create-only cannot be confirmed');
    }
    return at === versions.length - 1 ? 'created' : 'exists';
  }

  /** Version ids of the key's data versions (delete markers left out), newest first. */
  async #dataVersions(objectKey: string, op: string): Promise<string[]> {
    const ids: string[] = [];
    let keyMarker: string | undefined;
    let versionIdMarker: string | undefined;
    for (;;) {
      let out;
      try {
        out = await this.client.send(
          new ListObjectVersionsCommand({
            Bucket: this.config.bucket,
            Prefix: objectKey,
            MaxKeys: 1000,
            ...(keyMarker === undefined ? {} : { KeyMarker: keyMarker }),
            ...(versionIdMarker === undefined ? {} : { VersionIdMarker: versionIdMarker }),
          }),
        );
      } catch (err) {
        throw unavailable(op, err);
      }
      let pastKey = false;
      for (const v of out.Versions ?? []) {
        if (v.Key === objectKey && v.VersionId !== undefined) ids.push(v.VersionId);
        else if (v.Key !== undefined && v.Key > objectKey) pastKey = true;
      }
      if (out.IsTruncated !== true || pastKey || out.NextKeyMarker === undefined || out.NextKeyMarker > objectKey) return ids;
      keyMarker = out.NextKeyMarker;
      versionIdMarker = out.NextVersionIdMarker;
    }
  }

  #isVersioned(): Promise<boolean> {
    this.#versioned ??= (async () => {
      try {
        const out = await this.client.send(new GetBucketVersioningCommand({ Bucket: this.config.bucket }));
        return out.Status === 'Enabled' || out.Status === 'Suspended';
      } catch (err) {
        this.#versioned = undefined; // ask again next time
        throw unavailable('read', err);
      }
    })();
    return this.#versioned;
  }

  async get(key: string): Promise<Buffer | null> {
    const objectKey = this.#objectKey(key);
    let versionId: string | undefined;
    if (this.config.confirmCreates && (await this.#isVersioned())) {
      // The first version is the original: later ones come from stores that ignore If-None-Match.
      versionId = (await this.#dataVersions(objectKey, 'read')).at(-1);
      if (versionId === undefined) return null;
    }
    try {
      const out = await this.client.send(
        new GetObjectCommand({ Bucket: this.config.bucket, Key: objectKey, ...(versionId === undefined ? {} : { VersionId: versionId }) }),
      );
      if (out.Body === undefined) return Buffer.alloc(0);
      const bytes = await out.Body.transformToByteArray();
      return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    } catch (err) {
      if (isNotFound(err)) return null;
      throw unavailable('read', err);
    }
  }

  async *list(prefix: string): AsyncIterable<string> {
    if (prefix !== '' && !prefix.endsWith('/')) throw new CollectorError('COL_ERR_INTERNAL', 'list prefixes end with "/"');
    if (prefix !== '') assertKey(prefix.slice(0, -1));
    const base = this.config.prefix;
    let token: string | undefined;
    do {
      let out;
      try {
        out = await this.client.send(
          new ListObjectsV2Command({
            Bucket: this.config.bucket,
            Prefix: `${base}${prefix}`,
            MaxKeys: this.config.listPageSize,
            ...(token === undefined ? {} : { ContinuationToken: token }),
          }),
        );
      } catch (err) {
        throw unavailable('list', err);
      }
      for (const o of out.Contents ?? []) {
        // Folder placeholders ("…/") made by consoles are not keys.
        if (o.Key !== undefined && o.Key.startsWith(base) && !o.Key.endsWith('/')) yield o.Key.slice(base.length);
      }
      token = out.IsTruncated === true ? out.NextContinuationToken : undefined;
      if (out.IsTruncated === true && token === undefined) {
        throw new CollectorError('COL_ERR_STORE_UNAVAILABLE', 'S3 list failed: a truncated page came without a continuation token');
      }
    } while (token !== undefined);
  }

  async ping(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.config.bucket }));
    } catch (err) {
      throw unavailable('bucket check', err);
    }
  }

  /**
   * Checks the bucket against the configuration: reachable; with objectLock, versioning Enabled,
   * Object Lock enabled and a default retention in the configured mode. Never throws: every
   * check is reported, and each failed required one is a problem.
   */
  async preflight(): Promise<StorePreflight> {
    const lock = this.config.objectLock;
    const required = lock !== undefined;
    const checks: PreflightCheck[] = [];
    const add = (name: string, ok: boolean, detail: string, isRequired = required): void => {
      checks.push({ name, ok: ok || !isRequired, required: isRequired, detail });
    };
    const Bucket = this.config.bucket;

    let reachable = true;
    try {
      await this.client.send(new HeadBucketCommand({ Bucket }));
      add('bucket_reachable', true, `bucket ${Bucket} answers`, true);
    } catch (err) {
      reachable = false;
      add('bucket_reachable', false, describeS3Error('bucket check', err), true);
    }

    if (!reachable) {
      for (const name of ['versioning', 'object_lock', 'default_retention']) add(name, false, 'not checked: the bucket is not reachable');
    } else {
      try {
        const status = (await this.client.send(new GetBucketVersioningCommand({ Bucket }))).Status;
        add(
          'versioning',
          status === 'Enabled',
          status === 'Enabled' ? 'versioning is Enabled' : `versioning is ${status ?? 'not enabled'}${required ? '; Object Lock needs Enabled' : ''}`,
        );
      } catch (err) {
        add('versioning', false, describeS3Error('versioning check', err));
      }
      try {
        const cfg = (await this.client.send(new GetObjectLockConfigurationCommand({ Bucket }))).ObjectLockConfiguration;
        const enabled = cfg?.ObjectLockEnabled === 'Enabled';
        add('object_lock', enabled, enabled ? 'Object Lock is enabled' : 'Object Lock is not enabled on the bucket');
        const rule = cfg?.Rule?.DefaultRetention;
        const period = rule?.Days !== undefined ? `${rule.Days} days` : rule?.Years !== undefined ? `${rule.Years} years` : undefined;
        if (rule?.Mode === undefined || period === undefined) {
          add('default_retention', false, 'the bucket has no default retention');
        } else {
          const wanted = lock?.mode;
          // COMPLIANCE is at least as strong as GOVERNANCE.
          const ok = wanted === undefined || rule.Mode === wanted || rule.Mode === 'COMPLIANCE';
          add('default_retention', ok, ok ? `default retention ${rule.Mode}, ${period}` : `default retention is ${rule.Mode}, ${period}; the store requires ${wanted}`);
        }
      } catch (err) {
        const none = errorName(err) === 'ObjectLockConfigurationNotFoundError';
        add('object_lock', false, none ? 'Object Lock is not enabled on the bucket' : describeS3Error('Object Lock check', err));
        add('default_retention', false, none ? 'the bucket has no default retention' : 'not checked: the Object Lock configuration could not be read');
      }
    }
    const problems = checks.filter((c) => !c.ok).map((c) => ({ check: c.name, message: c.detail }));
    return { ok: problems.length === 0, checks, problems };
  }
}

/**
 * The bucket policy for an evidence bucket: no overwrites (every put must carry If-None-Match),
 * no deletes of objects or versions, no bypass of governance retention, no change of the Object
 * Lock or versioning configuration, SSE-KMS with one key, TLS only. Options drop the statements
 * a store does not support (Ceph RGW 16 does not know s3:if-none-match and has no TLS here).
 */
export function evidenceBucketPolicy(opts: {
  bucket: string;
  /** Limit the object statements to this key prefix (as in the store config). */
  prefix?: string;
  /** Require SSE-KMS; with a key ARN, require that key. */
  kms?: { keyArn?: string };
  conditionalWrites?: boolean;
  requireTls?: boolean;
}): { Version: '2012-10-17'; Statement: Record<string, unknown>[] } {
  const bucketArn = `arn:aws:s3:::${opts.bucket}`;
  const objects = `${bucketArn}/${opts.prefix ?? ''}*`;
  const st: Record<string, unknown>[] = [];
  if (opts.conditionalWrites ?? true) {
    st.push({
      Sid: 'DenyPutWithoutIfNoneMatch',
      Effect: 'Deny',
      Principal: '*',
      Action: 's3:PutObject',
      Resource: objects,
      Condition: { Null: { 's3:if-none-match': 'true' } },
    });
  }
  st.push({
    Sid: 'DenyDeletesAndRetentionBypass',
    Effect: 'Deny',
    Principal: '*',
    Action: ['s3:DeleteObject', 's3:DeleteObjectVersion', 's3:BypassGovernanceRetention'],
    Resource: objects,
  });
  st.push({
    Sid: 'DenyLockAndVersioningChanges',
    Effect: 'Deny',
    Principal: '*',
    Action: ['s3:PutBucketObjectLockConfiguration', 's3:PutBucketVersioning'],
    Resource: bucketArn,
  });
  if (opts.kms !== undefined) {
    st.push({
      Sid: 'DenyPutWithoutSseKms',
      Effect: 'Deny',
      Principal: '*',
      Action: 's3:PutObject',
      Resource: objects,
      Condition: { StringNotEquals: { 's3:x-amz-server-side-encryption': 'aws:kms' } },
    });
    if (opts.kms.keyArn !== undefined) {
      st.push({
        Sid: 'DenyPutWithOtherKmsKey',
        Effect: 'Deny',
        Principal: '*',
        Action: 's3:PutObject',
        Resource: objects,
        Condition: { StringNotEqualsIfExists: { 's3:x-amz-server-side-encryption-aws-kms-key-id': opts.kms.keyArn } },
      });
    }
  }
  if (opts.requireTls ?? true) {
    st.push({
      Sid: 'DenyInsecureTransport',
      Effect: 'Deny',
      Principal: '*',
      Action: 's3:*',
      Resource: [bucketArn, `${bucketArn}/*`],
      Condition: { Bool: { 'aws:SecureTransport': 'false' } },
    });
  }
  return { Version: '2012-10-17', Statement: st };
}
