// Looking at a collector from outside, as an operator or auditor would: raw HTTP requests, the
// ingest counters on /metrics, the files in its data folder, and the evidence chains on disk.
// Signatures and hashes are checked here with node:crypto directly, not with collector code.
import { createHash, createPublicKey, verify, type KeyObject } from 'node:crypto';
import { request } from 'node:http';
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'vitest';

export interface RawAnswer {
  status: number;
  body: Buffer;
  /** The `{ error: { code } }` of an error answer, if the body has one. */
  code: string | undefined;
  json: unknown;
}

function parseAnswer(status: number, body: Buffer): RawAnswer {
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    json = undefined;
  }
  const code = (json as { error?: { code?: unknown } } | undefined)?.error?.code;
  return { status, body, json, code: typeof code === 'string' ? code : undefined };
}

/**
 * POSTs `body` over a fresh connection. `chunked` sends it without Content-Length, in 64 KiB
 * chunks, so that the collector has to count the bytes itself.
 */
export function postRaw(
  url: string,
  pathname: string,
  body: Buffer,
  opts: { headers?: Record<string, string>; chunked?: boolean } = {},
): Promise<RawAnswer> {
  const target = new URL(pathname, url);
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { 'content-type': 'application/json', ...opts.headers };
    if (opts.chunked !== true) headers['content-length'] = body.length;
    let answered = false;
    const req = request(target, { method: 'POST', headers, agent: false }, (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve(parseAnswer(res.statusCode ?? 0, Buffer.concat(chunks))));
      res.on('error', reject);
    });
    // The collector may answer (413) before it has read everything; that is not an error here.
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE' && err.code !== 'ECONNRESET') reject(err);
    });
    // A connection closed with no answer read at all is a failure, not a wait for the test's timeout.
    req.on('close', () => {
      if (!answered) reject(new Error(`${pathname}: the connection closed before an answer was read`));
    });
    if (opts.chunked === true) {
      for (let i = 0; i < body.length; i += 64 * 1024) req.write(body.subarray(i, i + 64 * 1024));
      req.end();
    } else {
      req.end(body);
    }
  });
}

/**
 * POSTs one envelope to /v1/results and expects a 200 whose first outcome is `outcome`
 * ('accepted' unless told); returns the answer.
 */
export async function expectAccepted(url: string, body: Buffer, outcome: 'accepted' | 'duplicate' = 'accepted'): Promise<RawAnswer> {
  const res = await postRaw(url, '/v1/results', body);
  expect(res.status, res.body.toString()).toBe(200);
  expect((res.json as { results: { outcome: string }[] }).results[0]?.outcome).toBe(outcome);
  return res;
}

/** The counter families a rejection may touch; every other series in them must stay put. */
export const INGEST_COUNTERS = ['vcm_ingest_envelopes_total', 'vcm_ingest_rejected_total', 'vcm_enrollments_total', 'vcm_evidence_store_errors_total'] as const;

/** Every sample of the given families on /metrics, by series (`name{labels}`). */
export async function counters(url: string, families: readonly string[] = INGEST_COUNTERS): Promise<Map<string, number>> {
  const text = await (await fetch(new URL('/metrics', url))).text();
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line === '') continue;
    const cut = line.lastIndexOf(' ');
    const series = line.slice(0, cut);
    const name = series.split('{')[0]!;
    if (families.includes(name)) out.set(series, Number(line.slice(cut + 1)));
  }
  return out;
}

/** The series that changed between two snapshots, with their increments (absent counts as 0). */
export function counterDeltas(before: Map<string, number>, after: Map<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const series of new Set([...before.keys(), ...after.keys()])) {
    const d = (after.get(series) ?? 0) - (before.get(series) ?? 0);
    if (d !== 0) out[series] = d;
  }
  return out;
}

/** Waits until the collector has made the file of every evidence it acknowledged. */
export async function filesSettled(url: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const pending = (await counters(url, ['vcm_evidence_files_pending'])).get('vcm_evidence_files_pending') ?? 0;
    if (pending === 0) return;
    if (Date.now() > deadline) throw new Error(`${pending} acknowledged evidence files still not made after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Every file under `root`, as sorted paths relative to it (missing root: none). The store's
 * journal folder is left out: its segments come and go by themselves. With the collector's URL,
 * first waits until every acknowledged evidence has its file, so that two listings around a
 * request differ only by what that request stored.
 */
export async function listTree(root: string, collectorUrl?: string): Promise<string[]> {
  if (collectorUrl !== undefined) await filesSettled(collectorUrl);
  const out: string[] = [];
  async function walk(dir: string): Promise<void> {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    for (const e of entries) {
      const p = path.join(dir, e.name);
      if (dir === root && e.name === '.journal') continue;
      if (e.isDirectory()) await walk(p);
      else out.push(path.relative(root, p));
    }
  }
  await walk(root);
  return out.sort();
}

const EVIDENCE_NAME = /^(\d{12})-([0-9a-f]{64})\.dsse\.json$/;

export interface StoredLink {
  seq: number;
  /** The SHA-256 of the file's bytes. */
  hash: string;
  file: string;
  prev: string | null;
}

function pae(payloadType: string, payload: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`DSSEv1 ${Buffer.byteLength(payloadType)} ${payloadType} ${payload.length} `), payload]);
}

export interface HistoryKey {
  generation: number;
  afterSeq: number;
  key: KeyObject;
}

/**
 * An agent's keys as stored: keys/<agent>.json (generation 0), then keys/<agent>.key-<n>.json. Each
 * rotation must carry its request, signed first by the key before it and then by the new key,
 * naming the same key and rotation point as the event; anything else is a problem.
 */
export async function keyHistory(dataDir: string, agentId: string): Promise<{ keys: HistoryKey[]; problems: string[] }> {
  const problems: string[] = [];
  const record = JSON.parse(await readFile(path.join(dataDir, 'keys', `${agentId}.json`), 'utf8')) as { publicKey: string };
  const keys: HistoryKey[] = [{ generation: 0, afterSeq: 0, key: createPublicKey(record.publicKey) }];
  for (let g = 1; ; g++) {
    let raw: string;
    try {
      raw = await readFile(path.join(dataDir, 'keys', `${agentId}.key-${g}.json`), 'utf8');
    } catch {
      break;
    }
    const event = JSON.parse(raw) as { generation: number; publicKey: string; afterSeq: number; request: { payloadType: string; payload: string; signatures: { sig: string }[] } };
    const payload = Buffer.from(event.request.payload, 'base64');
    const claimed = JSON.parse(payload.toString('utf8')) as { agentId: string; generation: number; publicKey: string; afterSeq: number };
    const newKey = createPublicKey(event.publicKey);
    const message = pae(event.request.payloadType, payload);
    const [byOld, byNew] = event.request.signatures;
    if (byOld === undefined || !verify(null, message, keys.at(-1)!.key, Buffer.from(byOld.sig, 'base64'))) problems.push(`key-${g}: the request is not signed by generation ${g - 1}`);
    if (byNew === undefined || !verify(null, message, newKey, Buffer.from(byNew.sig, 'base64'))) problems.push(`key-${g}: the request is not signed by the new key`);
    if (claimed.agentId !== agentId || claimed.generation !== g || claimed.afterSeq !== event.afterSeq || event.generation !== g || !createPublicKey(claimed.publicKey).equals(newKey)) {
      problems.push(`key-${g}: the event does not say what its signed request says`);
    }
    keys.push({ generation: g, afterSeq: event.afterSeq, key: newKey });
  }
  return { keys, problems };
}

function keyForSeq(keys: HistoryKey[], seq: number): HistoryKey {
  return keys.filter((k) => k.afterSeq < seq).at(-1) ?? keys[0]!;
}

/**
 * Reads one agent's stored evidence and lists every problem an auditor would find: a file whose
 * name is not its content hash, a signature that does not verify under the agent's key for its
 * sequence number (keys/<agent>.json, then each rotation in keys/<agent>.key-<n>.json), a
 * statement for another agent or another seq than its name, a sequence number stored twice, a
 * missing one in 1..N, or a `prev` that is not the hash of the previous file's bytes. Leftover
 * temporary files are listed apart: after a crash they are expected, otherwise they are not.
 */
export async function auditChain(dataDir: string, agentId: string): Promise<{ links: StoredLink[]; problems: string[]; temporaries: string[] }> {
  const problems: string[] = [];
  /** `.tmp-*` files: a write that never completed (the store never lists them as evidence). */
  const temporaries: string[] = [];
  const history = await keyHistory(dataDir, agentId);
  problems.push(...history.problems);
  const evidenceDir = path.join(dataDir, 'evidence');
  const links: StoredLink[] = [];
  for (const rel of await listTree(evidenceDir)) {
    if (!rel.split(path.sep).includes(`agent=${agentId}`)) continue;
    const name = path.basename(rel);
    if (name.startsWith('.tmp-')) {
      temporaries.push(rel);
      continue;
    }
    const m = EVIDENCE_NAME.exec(name);
    if (m === null) {
      problems.push(`not an evidence file name: ${rel}`);
      continue;
    }
    const bytes = await readFile(path.join(evidenceDir, rel));
    const hash = createHash('sha256').update(bytes).digest('hex');
    if (hash !== m[2]) problems.push(`${rel}: content hash ${hash} is not the name's`);
    let env: { payloadType: string; payload: string; signatures: { keyid: string; sig: string }[] };
    let predicate: { agentId: string; seq: number; prev: string | null };
    try {
      env = JSON.parse(bytes.toString('utf8')) as typeof env;
      const payload = Buffer.from(env.payload, 'base64');
      const key = keyForSeq(history.keys, Number(m[1]));
      if (!env.signatures.some((s) => verify(null, pae(env.payloadType, payload), key.key, Buffer.from(s.sig, 'base64')))) {
        problems.push(`${rel}: no signature verifies under the registered key for its seq (generation ${key.generation})`);
      }
      predicate = (JSON.parse(payload.toString('utf8')) as { predicate: typeof predicate }).predicate;
    } catch (err) {
      problems.push(`${rel}: unreadable (${(err as Error).message})`);
      continue;
    }
    if (predicate.agentId !== agentId) problems.push(`${rel}: the statement names agent ${predicate.agentId}`);
    if (predicate.seq !== Number(m[1])) problems.push(`${rel}: the statement says seq ${predicate.seq}`);
    links.push({ seq: Number(m[1]), hash, file: rel, prev: predicate.prev });
  }
  links.sort((a, b) => a.seq - b.seq);
  for (const [i, link] of links.entries()) {
    if (link.seq !== i + 1) problems.push(`seq ${i + 1}: expected here, found seq ${link.seq} (${link.file})`);
    const expected = i === 0 ? null : links[i - 1]!.hash;
    if (link.prev !== expected) problems.push(`seq ${link.seq}: prev ${link.prev} is not the previous file's hash ${expected}`);
  }
  return { links, problems, temporaries };
}
