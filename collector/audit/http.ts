// The audit bundle over HTTP, for admin tokens and the vendor's auditor tokens:
//   GET /v1/audit/<vendor>/range                      what the vendor's log holds: size, checkpoints
//   GET /v1/audit/<vendor>/export?from=&to=[&size=N][&after=<base64 of a checkpoint note>]
// An export gets a fresh checkpoint (unless `size` names an earlier one), streams the tar.gz as it
// is packed, and is then entered in the vendor's log with the bundle's SHA-256. To any other
// token, a vendor does not exist, whether or not it does.
import type { KeyObject } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { authenticate, canRead } from '../admin.js';
import { vendorSchema } from '../contract.js';
import { CollectorError } from '../errors.js';
import type { LogSet } from '../log/logs.js';
import type { EvidenceStore } from '../store.js';
import { planExport, writeBundle } from './export.js';

export interface AuditHttpDeps {
  logs: LogSet;
  store: EvidenceStore;
  collector: { privateKey: KeyObject; publicKey: KeyObject };
  generator: string;
  now: () => Date;
  onError: (err: unknown) => void;
}

const ROUTE_RE = /^\/v1\/audit\/([^/]+)\/(range|export)$/;

function time(url: URL, name: string): Date {
  const raw = url.searchParams.get(name);
  if (raw === null) throw new CollectorError('COL_ERR_EXPORT_PERIOD', `give ${name} (an ISO 8601 time)`);
  return new Date(raw);
}

/** Answers an audit request, or returns false when the path is not one. */
export async function handleAudit(deps: AuditHttpDeps, method: string, url: URL, authorization: string | undefined, res: ServerResponse): Promise<boolean> {
  const m = ROUTE_RE.exec(url.pathname);
  if (m === null) return false;
  const [, vendor = '', what = ''] = m;
  const who = await authenticate(deps.store, authorization, deps.now());
  if (!vendorSchema.safeParse(vendor).success || !canRead(who, vendor)) throw new CollectorError('COL_ERR_FORBIDDEN', 'this token does not read that vendor');
  if (method !== 'GET') throw new CollectorError('COL_ERR_METHOD');
  const l = deps.logs.get(vendor);
  if (l === undefined) throw new CollectorError('COL_ERR_NOT_FOUND', `no vendor ${vendor} is known here`);
  if (what === 'range') {
    const first = l.checkpoints[0];
    const latest = l.latest;
    const body = {
      vendor,
      origin: l.origin,
      size: l.size,
      checkpoints: l.checkpoints.length,
      first: first === undefined ? null : { size: first.size, issuedAt: first.issuedAt },
      latest: latest === undefined ? null : { size: latest.size, issuedAt: latest.issuedAt },
    };
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(JSON.stringify(body));
    return true;
  }
  const from = time(url, 'from');
  const to = time(url, 'to');
  const sizeRaw = url.searchParams.get('size');
  if (sizeRaw !== null && !/^(0|[1-9]\d{0,14})$/.test(sizeRaw)) throw new CollectorError('COL_ERR_LOG_RANGE', 'size must be a whole number');
  const afterRaw = url.searchParams.get('after');
  const afterCheckpoint = afterRaw === null ? undefined : Buffer.from(afterRaw, 'base64').toString('utf8');
  if (sizeRaw === null) await l.issueCheckpoint(deps.now());
  const ctx = { store: deps.store, log: l, origin: l.origin, collector: deps.collector, generator: deps.generator };
  const plan = await planExport(ctx, { vendor, from, to, ...(sizeRaw === null ? {} : { endSize: Number(sizeRaw) }), ...(afterCheckpoint === undefined ? {} : { afterCheckpoint }) });
  res.writeHead(200, {
    'content-type': 'application/gzip',
    'content-disposition': `attachment; filename="vcm-audit-${vendor}-${from.toISOString().slice(0, 10)}-${to.toISOString().slice(0, 10)}.tar.gz"`,
    'cache-control': 'no-store',
    'x-vcm-log-range': `${plan.start?.size ?? 0}-${plan.end.size}`,
  });
  let result;
  try {
    result = await writeBundle(ctx, plan, res);
  } catch (err) {
    // The answer has begun: cutting it short is how the client learns the bundle is not whole.
    deps.onError(err);
    res.destroy();
    return true;
  }
  await deps.logs
    .append(vendor, [{ type: 'export', from: from.toISOString(), to: to.toISOString(), startSize: plan.start?.size ?? 0, endSize: plan.end.size, sha256: result.sha256, by: who.name, at: deps.now().toISOString() }])
    .catch(deps.onError);
  return true;
}
