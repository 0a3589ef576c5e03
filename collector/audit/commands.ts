// What `vcm-collector export` and `key fingerprint` do, apart from their options (`verify` is verify-command.ts).
import { createHash, createPrivateKey, createPublicKey } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdtemp, readFile, rename, rm, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { AGENT_VERSION } from '../../agent/version.js';
import { CollectorError, type CollectorErrorCode } from '../errors.js';
import { readCheckpoints, storedLogSize } from '../log/vendor-log.js';
import type { EvidenceStore } from '../store.js';
import { checkPeriod, planExport, writeBundle, type ExportProgress } from './export.js';
import { unpackTarGz } from './tar.js';
import { spkiFingerprint } from './verify-core.js';

/** The collector's key file under a data dir, as `serve` makes it. */
export function keyFileOf(dataDir: string): string {
  return path.join(dataDir, 'secrets', 'collector-ed25519.pem');
}

async function readCollectorKey(file: string) {
  const pem = await readFile(file, 'utf8').catch(() => {
    throw new CollectorError('COL_ERR_CONFIG', `no collector key at ${file}: give the --data-dir the collector serves from (or --key-file)`);
  });
  const privateKey = createPrivateKey(pem);
  return { privateKey, publicKey: createPublicKey(privateKey) };
}

export async function keyFingerprint(keyFile: string): Promise<{ fingerprint: string; publicKey: string }> {
  const { publicKey } = await readCollectorKey(keyFile);
  return { fingerprint: spkiFingerprint(publicKey), publicKey: publicKey.export({ type: 'spki', format: 'pem' }).toString() };
}

export interface ExportArgs {
  vendor: string;
  from: string;
  to: string;
  out: string;
  afterCheckpoint?: string;
  logSize?: number;
  tmpDir?: string;
}

export interface ExportSummary {
  file: string;
  sha256: string;
  bytes: number;
  vendor: string;
  from: string;
  to: string;
  log: { start: number; end: number };
  envelopes: number | null;
  hosts: number | null;
  missingEvidence: number | null;
  /** Entries the log holds past the bundle's end checkpoint (local exports: not yet checkpointed). */
  notCheckpointed: number;
  logged: boolean;
}

/** A period bound: a date (midnight UTC) or a full ISO 8601 time. */
export function periodTime(value: string): Date {
  return new Date(/^\d{4}-\d{2}-\d{2}$/.test(value) ? `${value}T00:00:00.000Z` : value);
}

/** Progress on a terminal: entries, bytes, rate, time left. */
function progressLine(startedMs: number): (p: ExportProgress) => void {
  if (process.stderr.isTTY !== true) return () => undefined;
  let lastMs = 0;
  return (p) => {
    const now = Date.now();
    if (now - lastMs < 250) return;
    lastMs = now;
    const s = (now - startedMs) / 1000;
    const rate = p.done / Math.max(s, 0.001);
    const left = p.total > p.done && rate > 0 ? `${Math.ceil((p.total - p.done) / rate)} s left` : '';
    process.stderr.write(`\r${p.phase}: ${p.done}/${p.total} ${p.phase === 'evidence' ? 'envelopes' : 'entries'}, ${(p.bytes / 1048576).toFixed(1)} MiB, ${Math.round(rate)}/s ${left}   `);
  };
}

/** Writes through a temporary name beside the target, renamed into place once whole. */
async function atomicOut<T>(out: string, write: (tmp: string) => Promise<T>): Promise<T> {
  const tmp = path.join(path.dirname(out), `.${path.basename(out)}.${process.pid}.part`);
  try {
    const r = await write(tmp);
    await rename(tmp, out);
    return r;
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
}

export async function exportLocal(store: EvidenceStore, keyFile: string, a: ExportArgs): Promise<ExportSummary> {
  const from = periodTime(a.from);
  const to = periodTime(a.to);
  checkPeriod(from, to);
  const collector = await readCollectorKey(keyFile);
  const checkpoints = await readCheckpoints(store, a.vendor);
  const logSize = await storedLogSize(store, a.vendor);
  if (checkpoints.length === 0 && logSize === 0) throw new CollectorError('COL_ERR_NOT_FOUND', `no vendor ${a.vendor} in this store (it has no log)`);
  const log = { checkpoints, latest: checkpoints.at(-1) };
  const latest = log.latest;
  if (latest === undefined) throw new CollectorError('COL_ERR_LOG_RANGE', `the ${a.vendor} log has no checkpoint yet: start the collector, which issues one`);
  const origin = latest.note.slice(0, latest.note.indexOf('\n'));
  const ctx = { store, log, origin, collector, generator: `vcm-collector ${AGENT_VERSION}` };
  const afterCheckpoint = a.afterCheckpoint === undefined ? undefined : await readFile(a.afterCheckpoint, 'utf8');
  const plan = await planExport(ctx, { vendor: a.vendor, from, to, ...(a.logSize === undefined ? {} : { endSize: a.logSize }), ...(afterCheckpoint === undefined ? {} : { afterCheckpoint }) });
  const started = Date.now();
  const result = await atomicOut(a.out, (tmp) => writeBundle(ctx, plan, createWriteStream(tmp, { flags: 'wx', mode: 0o644 }), { ...(a.tmpDir === undefined ? {} : { tmpDir: a.tmpDir }), onProgress: progressLine(started) }));
  if (process.stderr.isTTY === true) process.stderr.write('\n');
  return {
    file: a.out,
    sha256: result.sha256,
    bytes: result.bytes,
    vendor: a.vendor,
    from: from.toISOString(),
    to: to.toISOString(),
    log: { start: plan.start?.size ?? 0, end: plan.end.size },
    envelopes: result.envelopes,
    hosts: result.hosts,
    missingEvidence: result.missingEvidence,
    notCheckpointed: logSize - plan.end.size,
    logged: false,
  };
}

export async function exportRemote(collector: string, token: string, a: ExportArgs): Promise<ExportSummary> {
  const from = periodTime(a.from);
  const to = periodTime(a.to);
  checkPeriod(from, to);
  const q = new URLSearchParams({ from: from.toISOString(), to: to.toISOString() });
  if (a.logSize !== undefined) q.set('size', String(a.logSize));
  if (a.afterCheckpoint !== undefined) q.set('after', Buffer.from(await readFile(a.afterCheckpoint, 'utf8'), 'utf8').toString('base64'));
  const url = new URL(`/v1/audit/${a.vendor}/export?${q}`, collector);
  const res = await fetch(url, { headers: { authorization: `Bearer ${token}` } }).catch((err: unknown) => {
    throw new CollectorError('COL_ERR_STORE_UNAVAILABLE', `cannot reach ${collector}: ${(err as Error).message}`);
  });
  if (!res.ok || res.body === null) {
    const body = (await res.json().catch(() => null)) as { error?: { code?: string; message?: string } } | null;
    throw new CollectorError((body?.error?.code as CollectorErrorCode | undefined) ?? 'COL_ERR_INTERNAL', body?.error?.message ?? `the collector answered ${res.status}`);
  }
  const hash = createHash('sha256');
  let bytes = 0;
  const tty = process.stderr.isTTY === true;
  const started = Date.now();
  await atomicOut(a.out, (tmp) =>
    pipeline(
      Readable.fromWeb(res.body as WebReadableStream<Uint8Array>),
      new Transform({
        transform(chunk: Buffer, _e, done) {
          hash.update(chunk);
          bytes += chunk.length;
          if (tty) process.stderr.write(`\rreceived ${(bytes / 1048576).toFixed(1)} MiB, ${(bytes / 1048576 / Math.max((Date.now() - started) / 1000, 0.001)).toFixed(1)} MiB/s   `);
          done(null, chunk);
        },
      }),
      createWriteStream(tmp, { flags: 'wx', mode: 0o644 }),
    ).catch((err: unknown) => {
      throw new CollectorError('COL_ERR_STORE_UNAVAILABLE', `the bundle was cut short: ${(err as Error).message}`);
    }),
  );
  if (tty) process.stderr.write('\n');
  const range = (res.headers.get('x-vcm-log-range') ?? '').split('-').map(Number);
  return {
    file: a.out,
    sha256: hash.digest('hex'),
    bytes,
    vendor: a.vendor,
    from: from.toISOString(),
    to: to.toISOString(),
    log: { start: range[0] ?? 0, end: range[1] ?? 0 },
    envelopes: null,
    hosts: null,
    missingEvidence: null,
    notCheckpointed: 0,
    logged: true,
  };
}

export function summaryLine(s: ExportSummary): string {
  const counts = s.envelopes === null ? '' : `${s.envelopes} envelopes from ${s.hosts} hosts, `;
  const missing = s.missingEvidence ? `, ${s.missingEvidence} envelopes of the log MISSING from the store` : '';
  return `${s.vendor} ${s.from} to ${s.to}: ${counts}log entries ${s.log.start} to ${s.log.end}, ${s.bytes} bytes${missing}${s.logged ? '; the export is entered in the log' : ''}`;
}

/** Prints a bundle's report.html to PDF with headless Chromium; says why not when it cannot. */
export async function bundlePdf(bundle: string, pdf: string): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'vcm-pdf-'));
  try {
    await unpackTarGz(bundle, dir);
    const { printPdf } = await import('./report.js');
    const r = await printPdf(path.join(dir, 'report.html'), pdf);
    return r.ok ? `report printed to ${pdf}` : `no PDF: ${r.reason}`;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
