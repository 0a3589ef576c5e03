// The audit bundle for one vendor and one period: planned against the vendor's log, then written
// as a deterministic tar.gz in path order, the evidence streamed straight in as it is read (so
// memory does not grow with the period; only large files wait in a private staging folder). What a period holds is written down in collector/README.md ("For auditors") and in
// the bundle's README.txt; the verifier (verify-core.ts) checks it.
import { createHash, sign, type KeyObject } from 'node:crypto';
import { mkdir, mkdtemp, open, readFile, rm, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { PREDICATE_TYPE_FINDING, PREDICATE_TYPE_SPOOL_DROP, pae, policyDocumentSchema, type FindingPredicate, type PolicyDocument, type SpoolDropPredicate } from '../contract.js';
import { CollectorError } from '../errors.js';
import { CompactRange, leafHash } from '../log/merkle.js';
import { parseCheckpoint, verifierKey } from '../log/note.js';
import { readEntryLines, type StoredCheckpoint } from '../log/vendor-log.js';
import { AgentRegistry, type RegisteredAgent } from '../registry.js';
import { readInOrder, type EvidenceStore } from '../store.js';
import { ModelBuilder, policyAt, summaryCsv, type PolicyVersionInForce } from './analysis.js';
import type { AuditModel, FileRef } from './model.js';
import { auditorReadme } from './readme-txt.js';
import { TarGzWriter, type TarBody } from './tar.js';
import { BUNDLE_FORMAT, MANIFEST_PAYLOAD_TYPE, PRIOR_FILE, spkiFingerprint, type Manifest, type ManifestFile } from './verify-core.js';
import { VERIFY_SH } from './verify-sh.js';

const DAY_MS = 86_400_000;
const pad = (n: number) => String(n).padStart(12, '0');

/**
 * What an export needs of a vendor's log: its checkpoints (a running collector's VendorLog, or
 * readCheckpoints from the store). The entries are read from the store, not held: the export
 * keeps only a compact range of the tree, so its memory does not grow with the log.
 */
export interface LogCheckpoints {
  readonly checkpoints: readonly StoredCheckpoint[];
  readonly latest: StoredCheckpoint | undefined;
}

export interface ExportContext {
  store: EvidenceStore;
  /** The vendor's log; its latest checkpoint ends the range unless the query names a size. */
  log: LogCheckpoints;
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
  /** The tree's compact range at the range's start (its complete subtrees, largest first). */
  startRange: CompactRange;
  /**
   * Each agent's highest seq entered up to the range's end. Its envelopes past it were stored
   * after the end checkpoint: they belong to the next bundle, whose range holds their entries.
   */
  lastSeq: Map<string, number>;
  /** Each agent's newest envelope collected before the period, as the log entered it: its seq and store key. */
  priorKey: Map<string, { seq: number; key: string }>;
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
    if (prior.origin !== ctx.origin) throw new CollectorError('COL_ERR_LOG_INCONSISTENT', `the earlier checkpoint is of the log ${prior.origin}, not ${ctx.origin}`);
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
  const lastSeq = new Map<string, number>();
  const priorKey = new Map<string, { seq: number; key: string }>();
  // The tree, as a compact range, over the entries read; at each checkpoint up to the range's
  // start, its root must be the checkpoint's, and the newest such checkpoint starts the range.
  const checkpointAt = new Map(l.checkpoints.filter((c) => c.size <= end.size).map((c) => [c.size, c]));
  const tree = new CompactRange();
  let start: { checkpoint: StoredCheckpoint | null; range: CompactRange } = { checkpoint: null, range: tree.clone() };
  const atSize = () => {
    const c = checkpointAt.get(tree.size);
    if (c === undefined) return;
    if (!tree.root().equals(checkpointBody(c.note).rootHash)) throw new CollectorError('COL_ERR_LOG_INCONSISTENT', `the stored entries do not give the root of the checkpoint at size ${c.size}: the store and the log disagree`);
    // No entry of the period before it, and not past the earlier bundle's end.
    if (first === null && (after === null || tree.size <= after)) start = { checkpoint: c, range: tree.clone() };
  };
  for await (const { lines } of readEntryLines(ctx.store, q.vendor, 0, end.size)) {
    for (const line of lines) {
      atSize();
      const e = JSON.parse(line.toString('utf8')) as { type: string; collectedAt?: string | null; key?: string; agentId?: string; seq?: number; receivedAt?: string; at?: string; createdAt?: string };
      let ofPeriod = false;
      if (e.type === 'envelope') {
        const day = KEY_DATE_RE.exec(e.key ?? '')?.[1];
        const at = e.collectedAt != null ? Date.parse(e.collectedAt) : null;
        ofPeriod = at !== null ? at >= fromMs && at < toMs : day !== undefined && day >= fromDay && day <= lastDay;
        if (ofPeriod) periodEntries++;
        if (typeof e.agentId === 'string' && typeof e.seq === 'number') {
          if (e.seq > (lastSeq.get(e.agentId) ?? 0)) lastSeq.set(e.agentId, e.seq);
          const before = at !== null ? at < fromMs : day !== undefined && day < fromDay;
          if (before && typeof e.key === 'string' && e.seq > (priorKey.get(e.agentId)?.seq ?? 0)) priorKey.set(e.agentId, { seq: e.seq, key: e.key });
        }
      }
      const when = e.receivedAt ?? e.at ?? e.createdAt;
      if (first === null && (ofPeriod || (when != null && Date.parse(when) >= fromMs))) first = tree.size;
      tree.append(leafHash(line));
    }
  }
  atSize();
  const startCheckpoint = start.checkpoint?.size === 0 ? null : start.checkpoint;
  return { vendor: q.vendor, from: q.from, to: q.to, start: startCheckpoint, end, after, periodEntries, startRange: start.range, lastSeq, priorKey };
}

function checkpointBody(note: string) {
  return parseCheckpoint(note.slice(0, note.lastIndexOf('\n\n') + 1));
}

/** Past this many bytes, a file of the bundle is written to the staging folder instead of memory. */
const SPILL_BYTES = 8 << 20;
/** Bytes of finished files that may wait to be packed while the export reads on. */
const PACK_AHEAD_BYTES = 8 << 20;
const NL = Buffer.from('\n');

/** The size of the chunks a bundle file's bytes are gathered in (many small writes, few large copies). */
const CHUNK_BYTES = 1 << 20;

/** A file of the bundle being made: hashed as it goes, held in memory until it grows large, then staged on disk. */
class BundleFile {
  readonly #hash = createHash('sha256');
  #size = 0;
  /** Full chunks, and the one being filled (`#fill` bytes of it used). */
  #parts: Buffer[] = [];
  #chunk: Buffer | null = null;
  #fill = 0;
  #pending = 0;
  #fh: FileHandle | null = null;
  #disk: string | null = null;
  constructor(
    readonly rel: string,
    readonly root: string,
  ) {}

  write(b: Buffer): Promise<void> | undefined {
    this.#hash.update(b);
    this.#size += b.length;
    this.#pending += b.length;
    if (b.length >= CHUNK_BYTES / 4) {
      this.#seal();
      this.#parts.push(b);
    } else {
      if (this.#chunk !== null && this.#fill + b.length > this.#chunk.length) this.#seal();
      this.#chunk ??= Buffer.allocUnsafe(CHUNK_BYTES);
      this.#chunk.set(b, this.#fill);
      this.#fill += b.length;
    }
    return this.#pending >= (this.#disk === null ? SPILL_BYTES : 1 << 20) ? this.#flush() : undefined;
  }

  /** The chunk being filled joins the full ones, cut to what it holds (copied, when that is little: small files wait in memory). */
  #seal(): void {
    if (this.#chunk === null) return;
    if (this.#fill > 0) this.#parts.push(this.#fill < CHUNK_BYTES / 2 ? Buffer.from(this.#chunk.subarray(0, this.#fill)) : this.#chunk.subarray(0, this.#fill));
    this.#chunk = null;
    this.#fill = 0;
  }

  async #flush(): Promise<void> {
    this.#seal();
    if (this.#pending === 0) return;
    if (this.#fh === null) {
      this.#disk = path.join(this.root, this.rel);
      await mkdir(path.dirname(this.#disk), { recursive: true });
      this.#fh = await open(this.#disk, 'wx', 0o600);
    }
    await this.#fh.writev(this.#parts);
    this.#parts = [];
    this.#pending = 0;
  }

  /** Its manifest line, and where its bytes are. */
  async close(): Promise<{ file: ManifestFile; body: TarBody }> {
    this.#seal();
    if (this.#disk !== null) {
      await this.#flush();
      await this.#fh!.close();
    }
    return { file: { path: this.rel, size: this.#size, sha256: this.#hash.digest('hex') }, body: this.#disk === null ? { bytes: this.#parts } : { file: this.#disk } };
  }
}

/**
 * The bundle's files, written into the tar.gz in path order as soon as nothing before them can
 * still come: the evidence (the bulk) goes straight through; the small files and the log entries
 * wait in memory or on disk until their place comes, and the manifest lists them all.
 */
class Bundle {
  readonly files: ManifestFile[] = [];
  readonly #waiting = new Map<string, { size: number; body: TarBody }>();
  constructor(
    readonly root: string,
    readonly tar: TarGzWriter,
  ) {}

  open(rel: string): BundleFile {
    return new BundleFile(rel, this.root);
  }

  async put(rel: string, bytes: Buffer | string): Promise<FileRef> {
    const f = this.open(rel);
    await f.write(Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes, 'utf8'));
    return this.finish(f);
  }

  /** Done with a file: it waits for its place in the tar. */
  async finish(f: BundleFile): Promise<FileRef> {
    const { file, body } = await f.close();
    const last = this.#scheduledLast;
    if (last !== null && file.path <= last) throw new CollectorError('COL_ERR_INTERNAL', `the bundle's file ${file.path} came after ${last} was packed`);
    this.files.push(file);
    this.#waiting.set(file.path, { size: file.size, body });
    return { path: file.path, sha256: file.sha256 };
  }

  /**
   * Done with a file: it is packed next, after every waiting file that sorts before it. Packing
   * runs on while the next files are read; this waits only when more than PACK_AHEAD_BYTES are
   * still to pack.
   */
  async finishNow(f: BundleFile): Promise<FileRef> {
    const ref = await this.finish(f);
    this.#schedule((p) => p <= ref.path);
    if (this.#packingBytes > PACK_AHEAD_BYTES) await this.#packing;
    return ref;
  }

  /** Packing under way, one file after another in path order; the bytes it still holds; the last path given to it. */
  #packing: Promise<void> = Promise.resolve();
  #packingBytes = 0;
  #scheduledLast: string | null = null;

  #schedule(upTo: (p: string) => boolean): void {
    const ready = [...this.#waiting.keys()].filter(upTo).sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
    for (const p of ready) {
      const w = this.#waiting.get(p)!;
      this.#waiting.delete(p);
      this.#scheduledLast = p;
      this.#packingBytes += w.size;
      this.#packing = this.#packing.then(async () => {
        await this.tar.add(p, w.size, w.body);
        if ('file' in w.body) await rm(w.body.file, { force: true });
        this.#packingBytes -= w.size;
      });
      // A failure is seen where the packing is next awaited (finishNow or end), not as an unhandled rejection.
      this.#packing.catch(() => undefined);
    }
  }

  /** Packs what is still waiting and ends the tar.gz. */
  async end(): Promise<{ sha256: string; bytes: number }> {
    this.#schedule(() => true);
    await this.#packing;
    return this.tar.finish();
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
    const tar = new TarGzWriter(Date.parse(plan.end.issuedAt), out);
    try {
      return await build(ctx, plan, new Bundle(root, tar), opts.onProgress ?? (() => undefined));
    } catch (err) {
      await tar.abort(err as Error);
      throw err;
    }
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

async function build(ctx: ExportContext, plan: ExportPlan, stage: Bundle, progress: (p: ExportProgress) => void): Promise<ExportResult> {
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
  const fingerprint = spkiFingerprint(ctx.collector.publicKey);
  await stage.put('README.txt', auditorReadme({ vendor, from: plan.from.toISOString(), to: plan.to.toISOString(), fingerprint, origin: ctx.origin }));
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
  const compact = plan.startRange.hashes.map((h) => h.toString('base64'));
  await stage.put('log/compact-range.json', `${JSON.stringify({ size: startSize, hashes: compact }, null, 2)}\n`);
  const entriesFile = await stage.open('log/entries.jsonl');
  let n = 0;
  const total = plan.end.size - startSize;
  const tree = plan.startRange.clone();
  for await (const { text, lines } of readEntryLines(store, vendor, startSize, plan.end.size)) {
    for (const line of lines) {
      tree.append(leafHash(line));
      if (++n % 65536 === 0) progress({ phase: 'entries', done: n, total, bytes: 0 });
    }
    await entriesFile.write(text);
  }
  // What is written is what the checkpoint signs: a store that changed under the export is caught here.
  if (!tree.root().equals(checkpointBody(plan.end.note).rootHash)) throw new CollectorError('COL_ERR_LOG_INCONSISTENT', `the stored entries ${startSize} to ${plan.end.size} do not give the end checkpoint's root: the store changed during the export`);
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
    envelopes += await stageAgentEvidence(store, stage, builder, a, { vendor, fromMs, toMs, untilMs, lastSeq: plan.lastSeq.get(a.record.agentId) ?? 0, prior: plan.priorKey.get(a.record.agentId) ?? null }, (b) => {
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
    collector: { origin: ctx.origin, fingerprint, key: collectorRef },
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
  const packed = await stage.end();
  return { sha256: packed.sha256, bytes: packed.bytes, plan, envelopes, hosts: model.hosts.length, missingEvidence, model };
}

/**
 * One agent's envelopes of the period, by day, in seq order: the store's own order. They are those
 * collected in [from, to) and entered in the range: a host whose clock runs ahead (within the
 * collector's allowed skew) may have sent some collected after the end checkpoint was issued;
 * envelopes past `lastSeq` were stored after it.
 */
async function stageAgentEvidence(
  store: EvidenceStore,
  stage: Bundle,
  builder: ModelBuilder,
  a: RegisteredAgent,
  span: { vendor: string; fromMs: number; toMs: number; untilMs: number; lastSeq: number; prior: { seq: number; key: string } | null },
  onBytes: (bytes: number) => void,
): Promise<number> {
  const { vendor, fromMs, toMs, untilMs } = span;
  const id = a.record.agentId;
  builder.startAgent({ agentId: id, hostname: a.record.host.hostname, os: a.record.host.os, agentVersion: a.record.agentVersion, enrolledAt: a.record.enrolledAt, revokedAt: a.revocation?.revokedAt ?? null });
  async function* keys(): AsyncGenerator<{ day: string; key: string }> {
    for (const day of days(fromMs, Math.min(toMs, untilMs + DAY_MS))) for await (const key of store.list(`evidence/vendor=${vendor}/date=${day}/agent=${id}/`)) yield { day, key };
  }
  let count = 0;
  let file: BundleFile | null = null;
  let taken: (FindingPredicate | SpoolDropPredicate)[] = [];
  let types: string[] = [];
  const endDay = async () => {
    if (file === null) return;
    const ref = await stage.finishNow(file);
    builder.addFile(ref);
    taken.forEach((p, i) => {
      if (types[i] === PREDICATE_TYPE_FINDING) builder.addFinding(p as FindingPredicate, ref);
      else if (types[i] === PREDICATE_TYPE_SPOOL_DROP) builder.addSpoolDrop(p as SpoolDropPredicate);
    });
    file = null;
    taken = [];
    types = [];
  };
  // The agent's newest envelope collected before the period: its first one of the period links to it.
  const priorBytes = span.prior === null ? null : await store.get(span.prior.key);
  if (span.prior !== null && priorBytes !== null) builder.prior(span.prior.seq);
  let current: string | null = null;
  for await (const [{ day }, bytes] of readInOrder(store, keys(), ({ key }) => key, 256)) {
    if (day !== current) {
      await endDay();
      current = day;
    }
    if (bytes === null) continue;
    const env = JSON.parse(bytes.toString('utf8')) as { payload: string };
    const stmt = JSON.parse(Buffer.from(env.payload, 'base64').toString('utf8')) as { predicateType: string; predicate: FindingPredicate | SpoolDropPredicate };
    const t = Date.parse(stmt.predicate.collectedAt);
    if (t < fromMs || t >= toMs || stmt.predicate.seq > span.lastSeq) continue;
    file ??= stage.open(`evidence/${id}/${day}.jsonl`);
    await file.write(bytes);
    await file.write(NL);
    taken.push(stmt.predicate);
    types.push(stmt.predicateType);
    count++;
    onBytes(bytes.length);
  }
  await endDay();
  if (priorBytes !== null) await stage.put(`evidence/${id}/${PRIOR_FILE}`, Buffer.concat([priorBytes, NL]));
  builder.endAgent();
  return count;
}

