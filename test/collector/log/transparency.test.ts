// The transparency log end to end: a real collector process and real agents on 127.0.0.1. The
// checkpoints, tiles and proofs it serves are checked with an RFC 6962 implementation written here
// from the RFC (not the collector's code), and the checkpoint signature with openssl.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { filesSettled } from '../../helpers/collector-probe.js';
import { AGENT_CLI, COLLECTOR_CLI, runCli, startCollectorProcess, tempDir, type CollectorProcess } from '../../helpers/processes.js';

// ---- RFC 6962 §2.1, written from the RFC ------------------------------------------------------
const sha = (...parts: Buffer[]) => createHash('sha256').update(Buffer.concat(parts)).digest();
const leaf = (d: Buffer) => sha(Buffer.from([0]), d);
const node = (l: Buffer, r: Buffer) => sha(Buffer.from([1]), l, r);
/** The largest power of two smaller than n (n > 1). */
const split = (n: number) => {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
};
function mth(d: Buffer[]): Buffer {
  if (d.length === 0) return sha();
  if (d.length === 1) return leaf(d[0]!);
  const k = split(d.length);
  return node(mth(d.slice(0, k)), mth(d.slice(k)));
}
/** RFC 6962 §2.1.1: the audit path, to check the served proof against. */
function path6962(m: number, d: Buffer[]): Buffer[] {
  if (d.length <= 1) return [];
  const k = split(d.length);
  return m < k ? [...path6962(m, d.slice(0, k)), mth(d.slice(k))] : [...path6962(m - k, d.slice(k)), mth(d.slice(0, k))];
}
/** RFC 6962 §2.1.2: SUBPROOF(m, D[n], b). */
function subproof(m: number, d: Buffer[], b: boolean): Buffer[] {
  const n = d.length;
  if (m === n) return b ? [] : [mth(d)];
  const k = split(n);
  return m <= k ? [...subproof(m, d.slice(0, k), b), mth(d.slice(k))] : [...subproof(m - k, d.slice(k), false), mth(d.slice(0, k))];
}

/** Splits a C2SP entry bundle: each entry is a big-endian uint16 length and that many bytes. */
function bundleEntries(bytes: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < bytes.length; ) {
    const len = bytes.readUInt16BE(at);
    out.push(bytes.subarray(at + 2, at + 2 + len));
    at += 2 + len;
  }
  return out;
}

let dir: Awaited<ReturnType<typeof tempDir>>;
let store: string;
let collector: CollectorProcess;
let admin: string;

async function api(pathname: string, method = 'GET', token = admin): Promise<{ status: number; body: Buffer }> {
  const res = await fetch(`${collector.url}${pathname}`, { method, headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, body: Buffer.from(await res.arrayBuffer()) };
}

async function cli(args: string[]): Promise<string> {
  const r = await runCli(COLLECTOR_CLI, args);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout;
}

async function enrollAndRun(name: string, vendor: string): Promise<string> {
  const token = (await cli(['token', 'create', '--vendor', vendor, '--data-dir', store])).trim();
  const state = path.join(dir.dir, name);
  const e = await runCli(AGENT_CLI, ['enroll', '--collector', collector.url, '--token', token, '--state-dir', state, '--hostname', name]);
  expect(e.code, e.stderr).toBe(0);
  const r = await runCli(AGENT_CLI, ['run', '--once', '--state-dir', state], { timeoutMs: 60_000 });
  expect(r.code, r.stderr).toBe(0);
  return state;
}

/** The entries of the log at `size`, read from its entry bundles only. */
async function entriesAt(vendor: string, size: number): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for (let n = 0; n * 256 < size; n++) {
    const width = Math.min(256, size - n * 256);
    const p = `/v1/log/${vendor}/tile/entries/${String(n).padStart(3, '0')}${width < 256 ? `.p/${width}` : ''}`;
    const res = await api(p);
    expect(res.status, p).toBe(200);
    out.push(...bundleEntries(res.body));
  }
  return out;
}

function parseNote(note: string): { text: string; origin: string; size: number; root: Buffer; sig: Buffer; keyId: Buffer; name: string } {
  const [text, sigs] = note.split('\n\n') as [string, string];
  const [origin, size, root] = text.split('\n') as [string, string, string];
  const m = /^\u2014 (\S+) (\S+)$/.exec(sigs.split('\n')[0]!)!;
  const raw = Buffer.from(m[2]!, 'base64');
  return { text: `${text}\n`, origin, size: Number(size), root: Buffer.from(root, 'base64'), name: m[1]!, keyId: raw.subarray(0, 4), sig: raw.subarray(4) };
}

beforeAll(async () => {
  dir = await tempDir('tlog');
  store = path.join(dir.dir, 'store');
  collector = await startCollectorProcess(store, { args: ['--log-origin', 'collector.test/vcm', '--checkpoint-interval', '1h'] });
  admin = (await cli(['admin-token', 'create', '--role', 'admin', '--name', 'tlog test', '--data-dir', store])).trim();
}, 60_000);

afterAll(async () => {
  await collector.stop();
  await dir.cleanup();
});

describe('the transparency log', () => {
  let first: ReturnType<typeof parseNote>;
  let firstNote: string;

  it('enters every accepted envelope; its checkpoint, tiles and proofs verify with RFC 6962 written from the RFC, and openssl verifies the signature', async () => {
    await enrollAndRun('host-a', 'acme');
    await enrollAndRun('host-b', 'acme');
    const issued = await api('/v1/log/acme/checkpoint', 'POST');
    expect(issued.status, issued.body.toString()).toBe(200);
    firstNote = issued.body.toString('utf8');
    first = parseNote(firstNote);
    expect(first.origin).toBe('collector.test/vcm/acme');
    expect(first.name).toBe(first.origin);

    // Every evidence file of acme is an envelope entry, once, with its hash; nothing else is.
    const entries = await entriesAt('acme', first.size);
    expect(entries).toHaveLength(first.size);
    expect(mth(entries).equals(first.root)).toBe(true);
    const parsed = entries.map((e) => JSON.parse(e.toString('utf8')) as { type: string; sha256?: string; key?: string });
    const evidence: string[] = [];
    const walk = async (d: string, rel: string): Promise<void> => {
      for (const ent of await readdir(d, { withFileTypes: true })) {
        if (ent.isDirectory()) await walk(path.join(d, ent.name), `${rel}${ent.name}/`);
        else evidence.push(`${rel}${ent.name}`);
      }
    };
    // Evidence files are made just after they are durable in the journal: wait for them.
    await filesSettled(collector.url);
    await walk(path.join(store, 'evidence/vendor=acme'), 'evidence/vendor=acme/');
    const logged = parsed.filter((e) => e.type === 'envelope');
    expect(logged.map((e) => e.key).sort()).toEqual(evidence.sort());
    for (const e of logged) expect(e.key).toContain(e.sha256);
    expect(parsed.filter((e) => e.type === 'key_event')).toHaveLength(2);
    expect(parsed.filter((e) => e.type === 'policy')).toHaveLength(1);

    // Inclusion: every entry's served proof is the RFC's audit path and leads to the signed root.
    for (const index of [0, 1, Math.floor(first.size / 2), first.size - 1]) {
      const res = await api(`/v1/log/acme/proof/inclusion?index=${index}&size=${first.size}`);
      const proof = (JSON.parse(res.body.toString()) as { hashes: string[] }).hashes.map((h) => Buffer.from(h, 'base64'));
      expect(proof).toEqual(path6962(index, entries));
    }

    // openssl checks the Ed25519 signature over the note text, with the key ID stripped.
    const pub = execFileSync('openssl', ['pkey', '-in', path.join(store, 'secrets', 'collector-ed25519.pem'), '-pubout']);
    await writeFile(path.join(dir.dir, 'pub.pem'), pub);
    await writeFile(path.join(dir.dir, 'text'), first.text);
    await writeFile(path.join(dir.dir, 'sig'), first.sig);
    const out = execFileSync('openssl', ['pkeyutl', '-verify', '-pubin', '-inkey', path.join(dir.dir, 'pub.pem'), '-rawin', '-in', path.join(dir.dir, 'text'), '-sigfile', path.join(dir.dir, 'sig')]);
    expect(out.toString()).toContain('Signature Verified Successfully');
    // C2SP signed-note key ID: SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)[:4].
    const rawPub = execFileSync('openssl', ['pkey', '-pubin', '-in', path.join(dir.dir, 'pub.pem'), '-outform', 'DER']).subarray(-32);
    expect(first.keyId.equals(sha(Buffer.from(`${first.name}\n`), Buffer.from([1]), rawPub).subarray(0, 4))).toBe(true);
  }, 120_000);

  it('grows only: a later checkpoint is consistent with the first, by the RFC and by `log verify-consistency`', async () => {
    await enrollAndRun('host-c', 'acme');
    const second = (await api('/v1/log/acme/checkpoint', 'POST')).body.toString('utf8');
    const b = parseNote(second);
    expect(b.size).toBeGreaterThan(first.size);
    const entries = await entriesAt('acme', b.size);
    expect(mth(entries).equals(b.root)).toBe(true);
    expect(mth(entries.slice(0, first.size)).equals(first.root)).toBe(true);
    const res = await api(`/v1/log/acme/proof/consistency?from=${first.size}&to=${b.size}`);
    const proof = (JSON.parse(res.body.toString()) as { hashes: string[] }).hashes.map((h) => Buffer.from(h, 'base64'));
    expect(proof).toEqual(subproof(first.size, entries, true));

    await writeFile(path.join(dir.dir, 'old.txt'), firstNote);
    await writeFile(path.join(dir.dir, 'new.txt'), second);
    await writeFile(path.join(dir.dir, 'proof.json'), res.body);
    const ok = await runCli(COLLECTOR_CLI, ['log', 'verify-consistency', path.join(dir.dir, 'old.txt'), path.join(dir.dir, 'new.txt'), '--collector-key', path.join(dir.dir, 'pub.pem'), '--proof', path.join(dir.dir, 'proof.json')]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain(`grew from ${first.size} to ${b.size}`);
    // A forged "old" head (another root at the same size) is caught.
    const forged = firstNote.replace(first.root.toString('base64'), sha(Buffer.from('forged')).toString('base64'));
    await writeFile(path.join(dir.dir, 'forged.txt'), forged);
    const bad = await runCli(COLLECTOR_CLI, ['log', 'verify-consistency', path.join(dir.dir, 'forged.txt'), path.join(dir.dir, 'new.txt'), '--collector-key', path.join(dir.dir, 'pub.pem'), '--proof', path.join(dir.dir, 'proof.json')]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('COL_ERR_BAD_SIGNATURE');
    // The CLI reads the same checkpoints from the store, by size.
    expect(await cli(['log', 'checkpoint', '--vendor', 'acme', '--size', String(first.size), '--data-dir', store])).toBe(firstNote);
  }, 120_000);

  it('an auditor of one vendor gets nothing of another, not even whether it exists; bad requests get stable codes', async () => {
    await enrollAndRun('host-z', 'beta');
    const auditor = (await cli(['admin-token', 'create', '--role', 'auditor', '--name', 'acme auditor', '--vendor', 'acme', '--data-dir', store])).trim();
    const own = await api('/v1/log/acme/checkpoint', 'GET', auditor);
    expect(own.status).toBe(200);
    const other = await api('/v1/log/beta/checkpoint', 'GET', auditor);
    const none = await api('/v1/log/nosuchvendor/checkpoint', 'GET', auditor);
    expect([other.status, none.status]).toEqual([403, 403]);
    expect(other.body.toString()).toBe(none.body.toString().replace('nosuchvendor', 'beta'));
    expect((await api('/v1/log/acme/checkpoint', 'POST', auditor)).status).toBe(403);
    expect((await api('/v1/log/acme/checkpoint', 'GET', 'vcm_at_nope')).status).toBe(401);
    const code = async (p: string) => (JSON.parse((await api(p)).body.toString()) as { error: { code: string } }).error.code;
    expect(await code(`/v1/log/acme/proof/inclusion?index=${first.size + 100000}`)).toBe('COL_ERR_LOG_RANGE');
    expect(await code('/v1/log/acme/proof/consistency?from=0')).toBe('COL_ERR_LOG_RANGE');
    expect(await code('/v1/log/acme/proof/inclusion?index=1&size=3')).toBe('COL_ERR_LOG_RANGE');
    expect(await code('/v1/log/acme/tile/0/1234')).toBe('COL_ERR_NOT_FOUND');
    expect(await code('/v1/log/acme/tile/9/000')).toBe('COL_ERR_NOT_FOUND');
  }, 120_000);

  it('a restart keeps the log: the same checkpoints, and it goes on from the same size', async () => {
    const before = (await api('/v1/log/acme/checkpoint')).body.toString();
    await collector.stop();
    collector = await startCollectorProcess(store, { args: ['--log-origin', 'collector.test/vcm', '--checkpoint-interval', '1h'] });
    expect((await api('/v1/log/acme/checkpoint')).body.toString()).toBe(before);
    const wal = await readdir(path.join(store, 'log/vendor=acme/wal'));
    expect(wal.length).toBeGreaterThan(0);
    const firstRound = await readFile(path.join(store, 'log/vendor=acme/wal', wal.sort()[0]!), 'utf8');
    expect(firstRound.endsWith('\n')).toBe(true);
  }, 120_000);
});
