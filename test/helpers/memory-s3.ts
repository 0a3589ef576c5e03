// An in-memory, write-once S3 stand-in on 127.0.0.1 that MIRRORS AWS S3 for the two behaviours
// Ceph RGW 16 does not honour (../../../shared/notes/s3-test-servers.md):
//   - flexible checksums: a wrong x-amz-checksum-sha256 is refused with 400 BadDigest;
//   - If-None-Match: * on a versioned bucket: 412 PreconditionFailed when the key has a current version.
// It speaks just enough S3 REST/XML for @aws-sdk/client-s3 with path-style URLs: CreateBucket,
// HeadBucket, GetBucketVersioning, GetObjectLockConfiguration, PutObject, GetObject, DeleteObject,
// ListObjectsV2 and ListObjectVersions. Anything else answers 501, so a test never passes on
// something this stand-in only pretends to do. It checks that requests are SigV4-signed with the
// right access key but does not verify signatures: RGW proves signing. Proof of Object Lock,
// versioning and unversioned conditional writes comes from RGW, not from here.
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface MemoryS3Version {
  versionId: string;
  deleteMarker: boolean;
  body: Buffer;
  etag: string;
  contentType: string;
  lastModified: Date;
  checksumSha256?: string;
  lockMode?: 'COMPLIANCE' | 'GOVERNANCE';
  retainUntil?: Date;
  sse?: { algorithm: string; kmsKeyId?: string };
}

export interface MemoryS3Bucket {
  versioning: 'Enabled' | 'Suspended' | undefined;
  lock?: { enabled: true; defaultRetention?: { mode: 'COMPLIANCE' | 'GOVERNANCE'; days: number } };
  /** Per key, oldest version first. */
  objects: Map<string, MemoryS3Version[]>;
}

export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  headers: Record<string, string | string[] | undefined>;
  bodyBytes: number;
  status: number;
}

export interface MemoryS3 {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  buckets: Map<string, MemoryS3Bucket>;
  requests: RecordedRequest[];
  createBucket(name: string, opts?: { versioned?: boolean; objectLock?: { mode: 'COMPLIANCE' | 'GOVERNANCE'; days: number } }): void;
  /** Stops accepting connections and drops open ones (an outage). */
  stop(): Promise<void>;
}

const XMLNS = 'http://s3.amazonaws.com/doc/2006-03-01/';

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function xml(root: string, inner: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<${root} xmlns="${XMLNS}">${inner}</${root}>`;
}

function el(name: string, value: string | number | boolean | undefined): string {
  return value === undefined ? '' : `<${name}>${esc(String(value))}</${name}>`;
}

class S3Err extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b)); // S3 lists in UTF-8 binary order
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function current(versions: MemoryS3Version[] | undefined): MemoryS3Version | undefined {
  const v = versions?.at(-1);
  return v === undefined || v.deleteMarker ? undefined : v;
}

export async function startMemoryS3(): Promise<MemoryS3> {
  const accessKeyId = `MEMS3${randomBytes(6).toString('hex').toUpperCase()}`;
  const secretAccessKey = randomBytes(24).toString('base64url');
  const buckets = new Map<string, MemoryS3Bucket>();
  const requests: RecordedRequest[] = [];
  let versionSeq = 0;
  const newVersionId = () => `v${String(++versionSeq).padStart(8, '0')}-${randomBytes(4).toString('hex')}`;

  const createBucket: MemoryS3['createBucket'] = (name, opts = {}) => {
    if (buckets.has(name)) throw new S3Err(409, 'BucketAlreadyOwnedByYou', 'bucket exists');
    const lock = opts.objectLock === undefined ? undefined : { enabled: true as const, defaultRetention: { ...opts.objectLock } };
    buckets.set(name, { versioning: opts.versioned === true || lock !== undefined ? 'Enabled' : undefined, ...(lock ? { lock } : {}), objects: new Map() });
  };

  function bucketOf(name: string): MemoryS3Bucket {
    const b = buckets.get(name);
    if (b === undefined) throw new S3Err(404, 'NoSuchBucket', 'The specified bucket does not exist');
    return b;
  }

  function objectHeaders(v: MemoryS3Version, checksumMode: boolean): Record<string, string> {
    const h: Record<string, string> = {
      'content-type': v.contentType,
      'content-length': String(v.body.length),
      etag: v.etag,
      'last-modified': v.lastModified.toUTCString(),
    };
    if (!v.versionId.startsWith('null')) h['x-amz-version-id'] = v.versionId;
    if (v.lockMode !== undefined && v.retainUntil !== undefined) {
      h['x-amz-object-lock-mode'] = v.lockMode;
      h['x-amz-object-lock-retain-until-date'] = v.retainUntil.toISOString();
    }
    if (v.sse !== undefined) {
      h['x-amz-server-side-encryption'] = v.sse.algorithm;
      if (v.sse.kmsKeyId !== undefined) h['x-amz-server-side-encryption-aws-kms-key-id'] = v.sse.kmsKeyId;
    }
    if (checksumMode && v.checksumSha256 !== undefined) {
      h['x-amz-checksum-sha256'] = v.checksumSha256;
      h['x-amz-checksum-type'] = 'FULL_OBJECT';
    }
    return h;
  }

  function putObject(req: IncomingMessage, b: MemoryS3Bucket, key: string, body: Buffer): { status: number; headers: Record<string, string> } {
    const encoding = header(req, 'content-encoding') ?? '';
    if (encoding.includes('aws-chunked') || (header(req, 'x-amz-content-sha256') ?? '').startsWith('STREAMING-')) {
      throw new S3Err(501, 'NotImplemented', 'this stand-in does not decode aws-chunked uploads (the store sends Buffer bodies)');
    }
    const md5 = createHash('md5').update(body).digest('base64');
    const contentMd5 = header(req, 'content-md5');
    if (contentMd5 !== undefined && contentMd5 !== md5) throw new S3Err(400, 'BadDigest', 'The Content-MD5 you specified did not match what we received.');
    const sha256 = createHash('sha256').update(body).digest('base64');
    const givenSha = header(req, 'x-amz-checksum-sha256');
    const algorithm = header(req, 'x-amz-sdk-checksum-algorithm');
    if (algorithm !== undefined && algorithm.toUpperCase() === 'SHA256' && givenSha === undefined && header(req, 'x-amz-trailer') === undefined) {
      throw new S3Err(400, 'InvalidRequest', 'x-amz-sdk-checksum-algorithm specified, but no corresponding x-amz-checksum-* or x-amz-trailer headers were found.');
    }
    // AWS behaviour RGW 16 lacks: a flexible checksum that does not match the body is refused.
    if (givenSha !== undefined && givenSha !== sha256) throw new S3Err(400, 'BadDigest', 'The SHA256 you specified did not match the calculated checksum.');

    const ifNoneMatch = header(req, 'if-none-match');
    if (ifNoneMatch !== undefined && ifNoneMatch !== '*') throw new S3Err(501, 'NotImplemented', 'If-None-Match supports only *');
    const versions = b.objects.get(key);
    // AWS behaviour RGW 16 lacks: the precondition holds on versioned buckets too.
    if (ifNoneMatch === '*' && current(versions) !== undefined) throw new S3Err(412, 'PreconditionFailed', 'At least one of the pre-conditions you specified did not hold');

    const mode = header(req, 'x-amz-object-lock-mode');
    const until = header(req, 'x-amz-object-lock-retain-until-date');
    let lockMode: MemoryS3Version['lockMode'];
    let retainUntil: Date | undefined;
    if (mode !== undefined || until !== undefined) {
      if (b.lock === undefined) throw new S3Err(400, 'InvalidRequest', 'Bucket is missing ObjectLockConfiguration');
      if (mode === undefined || until === undefined) throw new S3Err(400, 'InvalidArgument', 'x-amz-object-lock-mode and x-amz-object-lock-retain-until-date must both be supplied');
      if (mode !== 'COMPLIANCE' && mode !== 'GOVERNANCE') throw new S3Err(400, 'InvalidArgument', 'Unknown wormMode directive.');
      retainUntil = new Date(until);
      if (Number.isNaN(retainUntil.getTime()) || retainUntil.getTime() <= Date.now()) {
        throw new S3Err(400, 'InvalidArgument', 'The retain until date must be in the future!');
      }
      lockMode = mode;
    } else if (b.lock?.defaultRetention !== undefined) {
      lockMode = b.lock.defaultRetention.mode;
      retainUntil = new Date(Date.now() + b.lock.defaultRetention.days * 86_400_000);
    }
    if (lockMode !== undefined && contentMd5 === undefined && givenSha === undefined) {
      throw new S3Err(400, 'InvalidRequest', 'Content-MD5 OR x-amz-checksum- HTTP header is required for Put Object requests with Object Lock parameters');
    }

    const sseAlg = header(req, 'x-amz-server-side-encryption');
    let sse: MemoryS3Version['sse'];
    if (sseAlg !== undefined) {
      if (sseAlg !== 'aws:kms' && sseAlg !== 'AES256') throw new S3Err(400, 'InvalidArgument', 'Server Side Encryption with unknown algorithm');
      const kmsKeyId = header(req, 'x-amz-server-side-encryption-aws-kms-key-id');
      sse = { algorithm: sseAlg, ...(kmsKeyId === undefined ? {} : { kmsKeyId }) };
    }

    const versioned = b.versioning === 'Enabled';
    const v: MemoryS3Version = {
      versionId: versioned ? newVersionId() : 'null',
      deleteMarker: false,
      body,
      etag: `"${createHash('md5').update(body).digest('hex')}"`,
      contentType: header(req, 'content-type') ?? 'binary/octet-stream',
      lastModified: new Date(),
      ...(givenSha === undefined ? {} : { checksumSha256: givenSha }),
      ...(lockMode === undefined ? {} : { lockMode, retainUntil }),
      ...(sse === undefined ? {} : { sse }),
    };
    if (versioned) b.objects.set(key, [...(versions ?? []), v]);
    else b.objects.set(key, [...(versions ?? []).filter((x) => x.versionId !== 'null'), v]);
    const h: Record<string, string> = { etag: v.etag };
    if (versioned) h['x-amz-version-id'] = v.versionId;
    if (givenSha !== undefined) h['x-amz-checksum-sha256'] = givenSha;
    if (sse !== undefined) {
      h['x-amz-server-side-encryption'] = sse.algorithm;
      if (sse.kmsKeyId !== undefined) h['x-amz-server-side-encryption-aws-kms-key-id'] = sse.kmsKeyId;
    }
    return { status: 200, headers: h };
  }

  function deleteObject(b: MemoryS3Bucket, key: string, versionId: string | undefined): Record<string, string> {
    const versions = b.objects.get(key) ?? [];
    if (versionId !== undefined) {
      const v = versions.find((x) => x.versionId === versionId);
      if (v === undefined) return {};
      if (v.retainUntil !== undefined && v.retainUntil.getTime() > Date.now()) throw new S3Err(403, 'AccessDenied', 'Access Denied because object protected by object lock.');
      b.objects.set(key, versions.filter((x) => x !== v));
      return { 'x-amz-version-id': versionId };
    }
    if (b.versioning !== 'Enabled') {
      const v = versions.find((x) => x.versionId === 'null');
      if (v?.retainUntil !== undefined && v.retainUntil.getTime() > Date.now()) throw new S3Err(403, 'AccessDenied', 'Access Denied because object protected by object lock.');
      b.objects.delete(key);
      return {};
    }
    const marker: MemoryS3Version = { versionId: newVersionId(), deleteMarker: true, body: Buffer.alloc(0), etag: '', contentType: '', lastModified: new Date() };
    b.objects.set(key, [...versions, marker]);
    return { 'x-amz-version-id': marker.versionId, 'x-amz-delete-marker': 'true' };
  }

  function listV2(name: string, b: MemoryS3Bucket, q: URLSearchParams): string {
    if (q.has('delimiter')) throw new S3Err(501, 'NotImplemented', 'this stand-in does not list with a delimiter');
    const prefix = q.get('prefix') ?? '';
    const maxKeys = Math.min(Number(q.get('max-keys') ?? '1000'), 1000);
    const token = q.get('continuation-token');
    const after = token !== null ? Buffer.from(token, 'base64url').toString('utf8') : (q.get('start-after') ?? '');
    const keys = [...b.objects.entries()]
      .filter(([k, vs]) => k.startsWith(prefix) && current(vs) !== undefined && (after === '' || compareKeys(k, after) > 0))
      .map(([k]) => k)
      .sort(compareKeys);
    const page = keys.slice(0, maxKeys);
    const truncated = keys.length > page.length;
    const contents = page
      .map((k) => {
        const v = current(b.objects.get(k))!;
        return `<Contents>${el('Key', k)}${el('LastModified', v.lastModified.toISOString())}${el('ETag', v.etag)}${el('Size', v.body.length)}${el('StorageClass', 'STANDARD')}</Contents>`;
      })
      .join('');
    return xml(
      'ListBucketResult',
      `${el('Name', name)}${el('Prefix', prefix)}${el('KeyCount', page.length)}${el('MaxKeys', maxKeys)}${el('IsTruncated', truncated)}` +
        `${token !== null ? el('ContinuationToken', token) : ''}` +
        `${truncated ? el('NextContinuationToken', Buffer.from(page.at(-1)!).toString('base64url')) : ''}${contents}`,
    );
  }

  function listVersions(name: string, b: MemoryS3Bucket, q: URLSearchParams): string {
    const prefix = q.get('prefix') ?? '';
    const maxKeys = Math.min(Number(q.get('max-keys') ?? '1000'), 1000);
    const keyMarker = q.get('key-marker') ?? '';
    const versionIdMarker = q.get('version-id-marker') ?? '';
    const entries: { key: string; v: MemoryS3Version; latest: boolean }[] = [];
    for (const k of [...b.objects.keys()].filter((k) => k.startsWith(prefix)).sort(compareKeys)) {
      const vs = b.objects.get(k)!;
      vs.slice()
        .reverse()
        .forEach((v, i) => entries.push({ key: k, v, latest: i === 0 }));
    }
    let start = 0;
    if (keyMarker !== '') {
      const afterKey = entries.findIndex((e) => compareKeys(e.key, keyMarker) > 0);
      const atMarker = versionIdMarker === '' ? -1 : entries.findIndex((e) => e.key === keyMarker && e.v.versionId === versionIdMarker);
      start = atMarker !== -1 ? atMarker + 1 : afterKey === -1 ? entries.length : afterKey;
    }
    const page = entries.slice(start, start + maxKeys);
    const truncated = start + page.length < entries.length;
    const body = page
      .map(({ key, v, latest }) =>
        v.deleteMarker
          ? `<DeleteMarker>${el('Key', key)}${el('VersionId', v.versionId)}${el('IsLatest', latest)}${el('LastModified', v.lastModified.toISOString())}</DeleteMarker>`
          : `<Version>${el('Key', key)}${el('VersionId', v.versionId)}${el('IsLatest', latest)}${el('LastModified', v.lastModified.toISOString())}${el('ETag', v.etag)}${el('Size', v.body.length)}${el('StorageClass', 'STANDARD')}</Version>`,
      )
      .join('');
    const last = page.at(-1);
    return xml(
      'ListVersionsResult',
      `${el('Name', name)}${el('Prefix', prefix)}${el('KeyMarker', keyMarker)}${el('VersionIdMarker', versionIdMarker)}${el('MaxKeys', maxKeys)}${el('IsTruncated', truncated)}` +
        `${truncated && last ? el('NextKeyMarker', last.key) + el('NextVersionIdMarker', last.v.versionId) : ''}${body}`,
    );
  }

  async function handle(req: IncomingMessage, body: Buffer): Promise<{ status: number; headers: Record<string, string>; body?: string | Buffer }> {
    const auth = header(req, 'authorization') ?? '';
    if (!auth.startsWith(`AWS4-HMAC-SHA256 Credential=${accessKeyId}/`)) {
      throw new S3Err(403, 'InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.');
    }
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const q = url.searchParams;
    const [, bucketName = '', ...rest] = url.pathname.split('/');
    const key = decodeURIComponent(rest.join('/'));
    const method = req.method ?? 'GET';
    const XML = { 'content-type': 'application/xml' };
    if (bucketName === '') throw new S3Err(501, 'NotImplemented', 'ListBuckets is not implemented by this stand-in');

    if (key === '') {
      if (method === 'PUT' && [...q.keys()].every((k) => k === 'x-id')) {
        createBucket(bucketName, { versioned: header(req, 'x-amz-bucket-object-lock-enabled') === 'true' });
        if (header(req, 'x-amz-bucket-object-lock-enabled') === 'true') buckets.get(bucketName)!.lock = { enabled: true };
        return { status: 200, headers: { location: `/${bucketName}` } };
      }
      const b = bucketOf(bucketName);
      if (method === 'HEAD') return { status: 200, headers: {} };
      if (method === 'GET' && q.has('versioning')) {
        return { status: 200, headers: XML, body: xml('VersioningConfiguration', el('Status', b.versioning)) };
      }
      if (method === 'GET' && q.has('object-lock')) {
        if (b.lock === undefined) throw new S3Err(404, 'ObjectLockConfigurationNotFoundError', 'Object Lock configuration does not exist for this bucket');
        const r = b.lock.defaultRetention;
        return {
          status: 200,
          headers: XML,
          body: xml('ObjectLockConfiguration', `${el('ObjectLockEnabled', 'Enabled')}${r ? `<Rule><DefaultRetention>${el('Mode', r.mode)}${el('Days', r.days)}</DefaultRetention></Rule>` : ''}`),
        };
      }
      if (method === 'GET' && q.get('list-type') === '2') return { status: 200, headers: XML, body: listV2(bucketName, b, q) };
      if (method === 'GET' && q.has('versions')) return { status: 200, headers: XML, body: listVersions(bucketName, b, q) };
      throw new S3Err(501, 'NotImplemented', `bucket operation ${method} ?${q.toString()} is not implemented by this stand-in`);
    }

    const b = bucketOf(bucketName);
    const versionId = q.get('versionId') ?? undefined;
    if (method === 'PUT' && [...q.keys()].every((k) => k === 'x-id')) return putObject(req, b, key, body);
    if (method === 'GET' || method === 'HEAD') {
      const versions = b.objects.get(key);
      const v = versionId !== undefined ? versions?.find((x) => x.versionId === versionId) : versions?.at(-1);
      if (v === undefined) throw versionId !== undefined ? new S3Err(404, 'NoSuchVersion', 'The specified version does not exist.') : new S3Err(404, 'NoSuchKey', 'The specified key does not exist.');
      if (v.deleteMarker) throw new S3Err(404, 'NoSuchKey', 'The specified key does not exist.', { 'x-amz-delete-marker': 'true' });
      return { status: 200, headers: objectHeaders(v, header(req, 'x-amz-checksum-mode') === 'ENABLED'), ...(method === 'GET' ? { body: v.body } : {}) };
    }
    if (method === 'DELETE') return { status: 204, headers: deleteObject(b, key, versionId) };
    throw new S3Err(501, 'NotImplemented', `object operation ${method} ?${q.toString()} is not implemented by this stand-in`);
  }

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      const record = (status: number) =>
        requests.push({ method: req.method ?? '', path: url.pathname, query: Object.fromEntries(url.searchParams), headers: { ...req.headers }, bodyBytes: body.length, status });
      handle(req, body).then(
        (r) => {
          record(r.status);
          res.writeHead(r.status, r.headers);
          res.end(req.method === 'HEAD' ? undefined : r.body);
        },
        (err: unknown) => {
          const e = err instanceof S3Err ? err : new S3Err(500, 'InternalError', String(err));
          record(e.status);
          res.writeHead(e.status, { 'content-type': 'application/xml', 'x-amz-request-id': randomBytes(8).toString('hex'), ...e.headers });
          // Like S3, HEAD errors carry no body.
          res.end(req.method === 'HEAD' ? undefined : `<?xml version="1.0" encoding="UTF-8"?>\n<Error>${el('Code', e.code)}${el('Message', e.message)}</Error>`);
        },
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    endpoint: `http://127.0.0.1:${port}`,
    accessKeyId,
    secretAccessKey,
    buckets,
    requests,
    createBucket,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
