// The audit bundle for one vendor and one period: planned against the vendor's log, staged file by
// file in a private folder (so memory does not grow with the period), then packed as a
// deterministic tar.gz. What a period holds is written down in collector/README.md ("For auditors") and in
// the bundle's README.txt; the verifier (verify-core.ts) checks it.
import { createHash, sign, type KeyObject } from 'node:crypto';
import { mkdir, mkdtemp, open, readFile, rm, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { PREDICATE_TYPE_FINDING, PREDICATE_TYPE_SPOOL_DROP, pae, policyDocumentSchema, type FindingPredicate, type PolicyDocument, type SpoolDropPredicate } from '../contract.js';
import { CollectorError } from '../errors.js';
import { leafHash } from '../log/merkle.js';
import { parseCheckpoint, verifierKey } from '../log/note.js';
import { readEntries, type StoredCheckpoint, type VendorLog } from '../log/vendor-log.js';
import { AgentRegistry, type RegisteredAgent } from '../registry.js';
import type { EvidenceStore } from '../store.js';
import { ModelBuilder, policyAt, summaryCsv, type PolicyVersionInForce } from './analysis.js';
import type { AuditModel, FileRef } from './model.js';
import { auditorReadme } from './readme-txt.js';
import { packTarGz } from './tar.js';
import { BUNDLE_FORMAT, MANIFEST_PAYLOAD_TYPE, spkiFingerprint, type Manifest, type ManifestFile } from './verify-core.js';
import { VERIFY_SH } from './verify-sh.js';

const DAY_MS = 86_400_000;
const pad = (n: number) => String(n).padStart(12, '0');

export interface ExportContext {
  store: EvidenceStore;
  /** The vendor's log, loaded; its latest checkpoint ends the range unless the query names a size. */
  log: VendorLog;
  /** The vendor log's origin, as its checkpoints name it. */
  origin: string;
  collector: { privateKey: KeyObject; publicKey: KeyObject };
  generator: string;
}

export interface ExportQuery {
  vendor: string;
  from: Date;
  to: Date;
  /** An earlier bundle's end checkpoint (the signed note): the range starts there, or before it. */
  afterCheckpoint?: string;
  /** End the range at the checkpoint of exactly this size instead of the latest. */
  endSize?: number;
  /** Where to stage the bundle's files (default: the system's temporary folder). */
  tmpDir?: string;
}

export interface ExportPlan {
  vendor: string;
  from: Date;
  to: Date;
  start: StoredCheckpoint | null;
  end: StoredCheckpoint;
  after: number | null;
  /** The range's entries that are envelopes of the period. */
  periodEntries: number;
}

export interface ExportProgress {
  phase: 'entries' | 'evidence' | 'pack';
  done: number;
  total: number;
  bytes: number;
}

export interface ExportResult {
  sha256: string;
  bytes: number;
  plan: ExportPlan;
  envelopes: number;
  hosts: number;
  missingEvidence: number;
  model: AuditModel;
}

/** Checks the period's two times: from strictly before to. */
export function checkPeriod(from: Date, to: Date): void {
  if (Number.isNaN(from.getTime()) || Number.isNaN(to.getTime())) throw new CollectorError('COL_ERR_EXPORT_PERIOD', 'the period needs --from and --to as ISO 8601 times (2026-11-01 or 2026-11-01T00:00:00Z)');
  if (from.getTime() >= to.getTime()) throw new CollectorError('COL_ERR_EXPORT_PERIOD', `the period is reversed or empty: ${from.toISOString()} is not before ${to.toISOString()}`);
}

const KEY_DATE_RE = /\/date=(\d{4}-\d{2}-\d{2})\//;

/**
 * The log range: it ends at the latest checkpoint (or the one of `endSize`) and starts at the
 * newest checkpoint at or before the first entry that belongs to the period: an envelope collected
 * in it, or anything entered after it began. With an earlier bundle's end checkpoint, the range
 * starts there unless entries of the period lie before it (an earlier export made after its own
 * period ended); the earlier checkpoint is then inside the range and is checked against it.
 */
export async function planExport(ctx: ExportContext, q: ExportQuery): Promise<ExportPlan> {
  checkPeriod(q.from, q.to);
  const l = ctx.log;
  const end = q.endSize === undefined ? l.latest : l.checkpoints.find((c) => c.size === q.endSize);
  if (end === undefined) throw new CollectorError('COL_ERR_LOG_RANGE', q.endSize === undefined ? `the ${q.vendor} log has no checkpoint yet` : `no checkpoint was issued at size ${q.endSize}`);
  let after: number | null = null;
  if (q.afterCheckpoint !== undefined) {
    const prior = checkpointBody(q.afterCheckpoint);
    const mine = l.checkpoints.find((c) => c.size === prior.size);
    if (prior.origin !== l.origin) throw new CollectorError('COL_ERR_LOG_INCONSISTENT', `the earlier checkpoint is of the log ${prior.origin}, not ${l.origin}`);
    if (mine === undefined || !checkpointBody(mine.note).rootHash.equals(prior.rootHash)) {
      throw new CollectorError('COL_ERR_LOG_INCONSISTENT', `the earlier checkpoint of size ${prior.size} is not one this log issued: its history differs`);
    }
    if (prior.size > end.size) throw new CollectorError('COL_ERR_LOG_RANGE', `the earlier checkpoint (size ${prior.size}) is past the range's end (${end.size})`);
    after = prior.size;
  }
  const fromMs = q.from.getTime();
  const toMs = q.to.getTime();
  const fromDay = q.from.toISOString().slice(0, 10);
  const lastDay = new Date(toMs - 1).toISOString().slice(0, 10);
  let first: number | null = null;
  let periodEntries = 0;
  let index = 0;
  for await (const line of readEntries(ctx.store, q.vendor, 0, end.size)) {
    const e = JSON.parse(line.toString('utf8')) as { type: string; collectedAt?: string | null; key?: string; receivedAt?: string; at?: string; createdAt?: string };
    let ofPeriod = false;
    if (e.type === 'envelope') {
      const day = KEY_DATE_RE.exec(e.key ?? '')?.[1];
      ofPeriod = e.collectedAt != null ? Date.parse(e.collectedAt) >= fromMs && Date.parse(e.collectedAt) < toMs : day !== undefined && day >= fromDay && day <= lastDay;
      if (ofPeriod) periodEntries++;
    }
    const when = e.receivedAt ?? e.at ?? e.createdAt;
    if (first === null && (ofPeriod || (when != null && Date.parse(when) >= fromMs))) first = index;
    index++;
  }
  const limit = Math.min(first ?? end.size, after ?? Number.POSITIVE_INFINITY);
  const start = l.checkpoints.filter((c) => c.size <= limit).at(-1) ?? null;
  return { vendor: q.vendor, from: q.from, to: q.to, start: start?.size === 0 ? null : start, end, after, periodEntries };
}

function checkpointBody(note: string) {
  return parseCheckpoint(note.slice(0, note.lastIndexOf('\n\n') + 1));
}

/** A staged file: written in large pieces, hashed as it goes. */
class StagedFile {
  readonly #hash = createHash('sha256');
  #size = 0;
  #parts: Buffer[] = [];
  #pending = 0;
  private constructor(
    readonly rel: string,
    readonly fh: FileHandle,
  ) {}

  static async create(root: string, rel: string): Promise<StagedFile> {
    await mkdir(path.dirname(path.join(root, rel)), { recursive: true });
    return new StagedFile(rel, await open(path.join(root, rel), 'wx', 0o600));
  }

  async write(b: Buffer): Promise<void> {
    this.#hash.update(b);
    this.#size += b.length;
    this.#parts.push(b);
    this.#pending += b.length;
    if (this.#pending >= 1 << 20) await this.#flush();
  }

  async #flush(): Promise<void> {
    if (this.#pending === 0) return;
    await this.fh.write(Buffer.concat(this.#parts));
    this.#parts = [];
    this.#pending = 0;
  }

  async close(): Promise<ManifestFile> {
    await this.#flush();
    await this.fh.close();
    return { path: this.rel, size: this.#size, sha256: this.#hash.digest('hex') };
  }
}

class Stage {
  readonly files: ManifestFile[] = [];
  constructor(readonly root: string) {}

  async put(rel: string, bytes: Buffer | string): Promise<FileRef> {
    const f = await StagedFile.create(this.root, rel);
    await f.write(Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes, 'utf8'));
    return this.#done(await f.close());
  }

  async open(rel: string): Promise<StagedFile> {
    return StagedFile.create(this.root, rel);
  }

  #done(m: ManifestFile): FileRef {
    this.files.push(m);
    return { path: m.path, sha256: m.sha256 };
  }

  async finish(f: StagedFile): Promise<FileRef> {
    return this.#done(await f.close());
  }
}

/** The verifier's own compiled text: verify/verify.mjs in the bundle is the file `verify` runs. */
async function verifierSource(): Promise<Buffer> {
  const here = fileURLToPath(import.meta.url);
  // Run from source (the tests), the built file is in dist/; run built, it sits beside this one.
  const built = here.endsWith('.ts') ? path.resolve(path.dirname(here), '../../dist/collector/audit/verify-core.js') : path.join(path.dirname(here), 'verify-core.js');
  const text = await readFile(built, 'utf8').catch(() => {
    throw new CollectorError('COL_ERR_CONFIG', `the verifier is not built (${built}): run npm run build`);
  });
  return Buffer.from(text.replace(/\n\/\/# sourceMappingURL=.*\n?$/, '\n'), 'utf8');
}

function policyVersionsInForce(all: PolicyVersionInForce[], fromMs: number, untilMs: number): PolicyVersionInForce[] {
  const inForceAtStart = policyAt(all, fromMs);
  return all.filter((p) => p.doc === inForceAtStart || (p.createdAtMs >= fromMs && p.createdAtMs < untilMs));
}

function days(fromMs: number, untilMs: number): string[] {
  const out: string[] = [];
  for (let d = Math.floor(fromMs / DAY_MS) * DAY_MS; d < untilMs; d += DAY_MS) out.push(new Date(d).toISOString().slice(0, 10));
  return out;
}

/**
 * Builds the bundle of a plan and writes it to `out` (a tar.gz). Deterministic: the same plan
 * over the same store gives the same bytes.
 */
export async function writeBundle(ctx: ExportContext, plan: ExportPlan, out: Writable, opts: { tmpDir?: string; onProgress?: (p: ExportProgress) => void } = {}): Promise<ExportResult> {
  const root = await mkdtemp(path.join(opts.tmpDir ?? tmpdir(), 'vcm-export-'));
  try {
    return await build(ctx, plan, out, new Stage(root), opts.onProgress ?? (() => undefined));
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

async function build(ctx: ExportContext, plan: ExportPlan, out: Writable, stage: Stage, progress: (p: ExportProgress) => void): Promise<ExportResult> {
  const { store } = ctx;
  const vendor = plan.vendor;
  const asOf = plan.end.issuedAt;
  const asOfMs = Date.parse(asOf);
  const fromMs = plan.from.getTime();
  const toMs = plan.to.getTime();
  const ended = asOfMs >= toMs;
  const untilMs = Math.min(toMs, asOfMs);
  const startSize = plan.start?.size ?? 0;

  // The log: checkpoints, the compact range at the start, the entries.
  const collectorPem = ctx.collector.publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const collectorRef = await stage.put('collector/collector.pem', collectorPem);
  const vkey = verifierKey(ctx.origin, ctx.collector.publicKey);
  await stage.put('collector/collector.vkey', `${vkey}\n`);
  const endRef = await stage.put('log/checkpoint-end.txt', plan.end.note);
  const startRef = plan.start === null ? null : await stage.put('log/checkpoint-start.txt', plan.start.note);
  const checkpointFiles: string[] = [];
  for (const c of ctx.log.checkpoints) {
    if (c.size < startSize || c.size > plan.end.size) continue;
    checkpointFiles.push((await stage.put(`log/checkpoints/${pad(c.size)}.txt`, c.note)).path);
  }
  const compact: string[] = [];
  let covered = 0;
  for (let level = 52; level >= 0; level--) {
    const span = 2 ** level;
    if (startSize - covered >= span) {
      compact.push(ctx.log.tree.hashAt(level, covered / span).toString('base64'));
      covered += span;
    }
  }
  await stage.put('log/compact-range.json', `${JSON.stringify({ size: startSize, hashes: compact }, null, 2)}\n`);
  const entriesFile = await stage.open('log/entries.jsonl');
  let n = 0;
  const total = plan.end.size - startSize;
  for await (const line of readEntries(store, vendor, startSize, plan.end.size)) {
    // What is written is what the tree holds: a store that changed under the log is caught here.
    if (!leafHash(line).equals(ctx.log.tree.hashAt(0, startSize + n))) throw new CollectorError('COL_ERR_LOG_INCONSISTENT', `the stored entry ${startSize + n} is not the one the log holds`);
    await entriesFile.write(Buffer.concat([line, Buffer.from('\n')]));
    if (++n % 65536 === 0) progress({ phase: 'entries', done: n, total, bytes: 0 });
  }
  const entriesRef = await stage.finish(entriesFile);

  // The policy versions in force during the period, as stored.
  const allPolicies: (PolicyVersionInForce & { bytes: Buffer })[] = [];
  for await (const key of store.list('policy/')) {
    if (!/^policy\/\d+\.json$/.test(key)) continue;
    const bytes = await store.get(key);
    if (bytes === null) continue;
    const doc: PolicyDocument = policyDocumentSchema.parse(JSON.parse(bytes.toString('utf8')));
    allPolicies.push({ doc, createdAtMs: Date.parse(doc.createdAt), bytes });
  }
  allPolicies.sort((a, b) => a.doc.version - b.doc.version);
  const policies = policyVersionsInForce(allPolicies, fromMs, untilMs);
  const policyRefs = [];
  for (const p of policies) policyRefs.push({ version: p.doc.version, createdAt: p.doc.createdAt, file: await stage.put(`policy/${p.doc.version}.json`, (p as (typeof allPolicies)[number]).bytes) });

  // The vendor's agents: their key files as stored, then their evidence, agent by agent.
  const registry = new AgentRegistry(store);
  await registry.load();
  // Every agent of the vendor has its keys in the bundle (the log's key events name them); those
  // enrolled for some of the period are its hosts.
  const vendorAgents = registry
    .all()
    .filter((a) => a.record.vendor === vendor)
    .sort((a, b) => (a.record.agentId < b.record.agentId ? -1 : 1));
  const keyFiles = new Set<string>();
  for await (const key of store.list('keys/')) keyFiles.add(key);
  for (const a of vendorAgents) {
    for (const key of [...keyFiles].filter((k) => k.startsWith(`keys/${a.record.agentId}.`)).sort()) {
      const bytes = await store.get(key);
      if (bytes !== null) await stage.put(key, bytes);
    }
  }
  const agents = vendorAgents.filter((a) => Date.parse(a.record.enrolledAt) < untilMs && (a.revocation === null || Date.parse(a.revocation.revokedAt) >= fromMs));
  const builder = new ModelBuilder(vendor, fromMs, untilMs, policies);
  let envelopes = 0;
  let bytesIn = 0;
  for (const a of agents) {
    envelopes += await stageAgentEvidence(store, stage, builder, a, vendor, fromMs, untilMs, (b) => {
      bytesIn += b;
      progress({ phase: 'evidence', done: envelopes, total: plan.periodEntries, bytes: bytesIn });
    });
  }

  const missingEvidence = Math.max(0, plan.periodEntries - envelopes);
  const model: AuditModel = {
    vendor,
    period: { from: plan.from.toISOString(), to: plan.to.toISOString(), ended },
    exportedAt: asOf,
    generator: ctx.generator,
    collector: { origin: ctx.origin, fingerprint: spkiFingerprint(ctx.collector.publicKey), key: collectorRef },
    log: {
      startSize,
      endSize: plan.end.size,
      start: plan.start === null || startRef === null ? null : { size: plan.start.size, rootHash: checkpointBody(plan.start.note).rootHash.toString('base64'), file: startRef },
      end: { size: plan.end.size, rootHash: checkpointBody(plan.end.note).rootHash.toString('base64'), issuedAt: asOf, file: endRef },
      entries: entriesRef,
    },
    controls: builder.controls,
    hosts: builder.hosts,
    cells: builder.cells,
    days: builder.days,
    tallies: builder.tallies(),
    failures: builder.failures,
    silences: builder.silences,
    gaps: builder.gaps,
    exceptions: builder.exceptions(),
    policyVersions: policyRefs,
    verification: {
      verified: missingEvidence === 0,
      by: `${ctx.generator}, at export`,
      at: asOf,
      defects:
        missingEvidence === 0
          ? []
          : [{ code: 'AUD_ENVELOPE_MISSING', message: `the log holds ${plan.periodEntries} envelopes of the period; the store gave ${envelopes}: run the verifier to name each` }],
    },
  };

  // The renderings, the verifiers and the auditor's README.
  const { oscalDocuments, OSCAL_PATHS } = await import('./oscal.js');
  const oscal = oscalDocuments(model);
  await stage.put(OSCAL_PATHS.ssp, `${JSON.stringify(oscal.ssp, null, 2)}\n`);
  await stage.put(OSCAL_PATHS.assessmentPlan, `${JSON.stringify(oscal.assessmentPlan, null, 2)}\n`);
  await stage.put(OSCAL_PATHS.assessmentResults, `${JSON.stringify(oscal.assessmentResults, null, 2)}\n`);
  const { renderReport } = await import('./report.js');
  await stage.put('report.html', await renderReport(model));
  await stage.put('summary.csv', summaryCsv(model.days));
  await stage.put('model.json', `${JSON.stringify(model, null, 2)}\n`);
  await stage.put('verify/verify.mjs', await verifierSource());
  await stage.put('verify/verify.sh', VERIFY_SH);
  await stage.put('README.txt', auditorReadme({ vendor, from: model.period.from, to: model.period.to, fingerprint: model.collector.fingerprint, origin: ctx.origin }));

  const files = [...stage.files].sort((x, y) => (x.path < y.path ? -1 : x.path > y.path ? 1 : 0));
  const manifest: Manifest = {
    format: BUNDLE_FORMAT,
    vendor,
    period: model.period,
    exportedAt: asOf,
    generator: ctx.generator,
    collector: { fingerprint: model.collector.fingerprint, publicKey: collectorPem, verifierKey: vkey },
    log: {
      origin: ctx.origin,
      start: { size: startSize, checkpoint: startRef?.path ?? null, compactRange: 'log/compact-range.json' },
      end: { size: plan.end.size, checkpoint: endRef.path },
      after: plan.after,
      entries: entriesRef.path,
      checkpoints: checkpointFiles,
    },
    missingEvidence,
    files,
  };
  const manifestBytes = Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`, 'utf8');
  await stage.put('manifest.json', manifestBytes);
  const sig = sign(null, pae(MANIFEST_PAYLOAD_TYPE, manifestBytes), ctx.collector.privateKey).toString('base64');
  await stage.put('manifest.dsse.json', `${JSON.stringify({ payloadType: MANIFEST_PAYLOAD_TYPE, payload: manifestBytes.toString('base64'), signatures: [{ keyid: model.collector.fingerprint, sig }] })}\n`);

  progress({ phase: 'pack', done: 0, total: stage.files.length, bytes: 0 });
  const packed = await packTarGz(
    stage.root,
    stage.files.map((f) => f.path),
    asOfMs,
    out,
  );
  return { sha256: packed.sha256, bytes: packed.bytes, plan, envelopes, hosts: model.hosts.length, missingEvidence, model };
}

/** One agent's envelopes of the period, by day, in seq order: the store's own order. */
async function stageAgentEvidence(
  store: EvidenceStore,
  stage: Stage,
  builder: ModelBuilder,
  a: RegisteredAgent,
  vendor: string,
  fromMs: number,
  untilMs: number,
  onBytes: (bytes: number) => void,
): Promise<number> {
  const id = a.record.agentId;
  builder.startAgent({ agentId: id, hostname: a.record.host.hostname, os: a.record.host.os, agentVersion: a.record.agentVersion, enrolledAt: a.record.enrolledAt, revokedAt: a.revocation?.revokedAt ?? null });
  let count = 0;
  for (const day of days(fromMs, untilMs)) {
    let file: StagedFile | null = null;
    const taken: (FindingPredicate | SpoolDropPredicate)[] = [];
    const types: string[] = [];
    for await (const key of store.list(`evidence/vendor=${vendor}/date=${day}/agent=${id}/`)) {
      const bytes = await store.get(key);
      if (bytes === null) continue;
      const env = JSON.parse(bytes.toString('utf8')) as { payload: string };
      const stmt = JSON.parse(Buffer.from(env.payload, 'base64').toString('utf8')) as { predicateType: string; predicate: FindingPredicate | SpoolDropPredicate };
      const t = Date.parse(stmt.predicate.collectedAt);
      if (t < fromMs || t >= untilMs) continue;
      file ??= await stage.open(`evidence/${id}/${day}.jsonl`);
      await file.write(Buffer.concat([bytes, Buffer.from('\n')]));
      taken.push(stmt.predicate);
      types.push(stmt.predicateType);
      count++;
      onBytes(bytes.length);
    }
    if (file === null) continue;
    const ref = await stage.finish(file);
    builder.addFile(ref);
    taken.forEach((p, i) => {
      if (types[i] === PREDICATE_TYPE_FINDING) builder.addFinding(p as FindingPredicate, ref);
      else if (types[i] === PREDICATE_TYPE_SPOOL_DROP) builder.addSpoolDrop(p as SpoolDropPredicate);
    });
  }
  builder.endAgent();
  return count;
}

