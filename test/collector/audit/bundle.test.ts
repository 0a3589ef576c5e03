// The audit bundle end to end: a real collector process, real agents (the vcm-agent CLI) and test
// agents that send gaps, spool drops and failures; a bundle exported through the API with an
// auditor token and from the store, verified three ways (vcm-collector verify, verify.mjs inside
// the unpacked bundle, verify.sh under sh with openssl and jq), then tampered with.
import { execFileSync } from 'node:child_process';
import { createPrivateKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, symlinkSync } from 'node:fs';
import { cp, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyBundleDir, type Manifest, type Verdict } from '../../../collector/audit/verify-core.js';
import { sha256Hex } from '../../../collector/contract.js';
import { FsEvidenceStore } from '../../../collector/store.js';
import { chain, dropEnvelope, enrollTestAgent, finding, resultEnvelope, type TestAgent } from '../../helpers/agents.js';
import { AGENT_CLI, COLLECTOR_CLI, REPO, runCli, startCollectorProcess, tempDir, type CollectorProcess } from '../../helpers/processes.js';

let dir: Awaited<ReturnType<typeof tempDir>>;
let store: string;
let collector: CollectorProcess;
let admin: string;
let auditor: string;
let betaAuditor: string;
let fingerprint: string;
let collectorKey: KeyObject;
let bundle: string;
let unpacked: string;
// The collector runs on the real clock, and agents enroll now: the period is the weeks around today.
const DAY_MS = 86_400_000;
const FROM = new Date(Date.now() - 30 * DAY_MS).toISOString().slice(0, 10);
const TO = new Date(Date.now() + 30 * DAY_MS).toISOString().slice(0, 10);
/** The day the failing host's three results are collected on. */
let failingDay: string;

async function cli(args: string[], expectCode = 0): Promise<{ stdout: string; stderr: string; code: number | null }> {
  const r = await runCli(COLLECTOR_CLI, args, { timeoutMs: 120_000 });
  expect(r.code, `${args.join(' ')}\n${r.stdout}\n${r.stderr}`).toBe(expectCode);
  return r;
}

async function post(envelopes: Buffer[]): Promise<void> {
  const res = await fetch(`${collector.url}/v1/results`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: Buffer.concat(envelopes.flatMap((e) => [e, Buffer.from('\n')])) });
  const body = (await res.json()) as { results: { outcome: string }[] };
  expect(res.status).toBe(200);
  expect(body.results.every((r) => r.outcome === 'accepted'), JSON.stringify(body)).toBe(true);
}

async function enrollReal(name: string, vendor: string): Promise<void> {
  const token = (await cli(['token', 'create', '--vendor', vendor, '--data-dir', store])).stdout.trim();
  const state = path.join(dir.dir, name);
  const e = await runCli(AGENT_CLI, ['enroll', '--collector', collector.url, '--token', token, '--state-dir', state, '--hostname', name]);
  expect(e.code, e.stderr).toBe(0);
  const r = await runCli(AGENT_CLI, ['run', '--once', '--state-dir', state], { timeoutMs: 60_000 });
  expect(r.code, r.stderr).toBe(0);
}

function unpack(file: string, into: string): void {
  execFileSync('tar', ['-xzf', file, '-C', into]);
}

let failing: TestAgent;
let gappy: TestAgent;

beforeAll(async () => {
  dir = await tempDir('audit');
  store = path.join(dir.dir, 'store');
  collector = await startCollectorProcess(store, { args: ['--checkpoint-interval', '1s'] });
  admin = (await cli(['admin-token', 'create', '--role', 'admin', '--name', 'audit admin', '--data-dir', store])).stdout.trim();
  auditor = (await cli(['admin-token', 'create', '--role', 'auditor', '--name', 'acme auditor', '--vendor', 'acme', '--data-dir', store])).stdout.trim();
  betaAuditor = (await cli(['admin-token', 'create', '--role', 'auditor', '--name', 'beta auditor', '--vendor', 'beta', '--data-dir', store])).stdout.trim();
  await enrollReal('ws-1.acme.example', 'acme');
  await enrollReal('ws-1.beta.example', 'beta');
  const fs = new FsEvidenceStore(store);
  // A host failing disk encryption, and one whose chain has an explained and an unexplained gap.
  failing = await enrollTestAgent(collector.url, fs, 'acme', 'build-7.acme.example');
  const failingAt = Date.now();
  failingDay = new Date(failingAt).toISOString().slice(0, 10);
  await post(chain(failing, 3, (seq) => finding({ check: 'disk_encryption', status: 'fail', facts: null, collectedAt: new Date(failingAt + seq).toISOString() })));
  gappy = await enrollTestAgent(collector.url, fs, 'acme', 'build-8.acme.example');
  const first = chain(gappy, 2);
  const drop = dropEnvelope(gappy, 6, sha256Hex(first[1]!), 3, 5);
  const after = resultEnvelope(gappy, 9, sha256Hex(drop), finding());
  await post([...first, drop]);
  await post([after]);
  fingerprint = (await cli(['key', 'fingerprint', '--data-dir', store])).stdout.split('\n')[0]!;
  collectorKey = createPrivateKey(await readFile(path.join(store, 'secrets', 'collector-ed25519.pem'), 'utf8'));
  bundle = path.join(dir.dir, 'acme.tar.gz');
  const r = await cli(['export', '--vendor', 'acme', '--from', FROM, '--to', TO, '--out', bundle, '--collector', collector.url, '--token-file', await tokenFile('auditor', auditor)]);
  expect(r.stdout).toMatch(/^[0-9a-f]{64} {2}/);
  unpacked = path.join(dir.dir, 'unpacked');
  await mkdir(unpacked);
  unpack(bundle, unpacked);
}, 240_000);

afterAll(async () => {
  await collector?.stop();
  await dir?.cleanup();
});

async function tokenFile(name: string, token: string): Promise<string> {
  const f = path.join(dir.dir, `${name}.token`);
  await writeFile(f, token);
  return f;
}

describe('a bundle from the real collector and agents', () => {
  it('verifies with vcm-collector verify, pinned to the collector fingerprint', async () => {
    const r = await cli(['verify', bundle, '--collector-fingerprint', fingerprint, '--format', 'json']);
    const v = JSON.parse(r.stdout) as Verdict;
    expect(v.verified, JSON.stringify(v.defects)).toBe(true);
    expect(v.keyPinned).toBe(true);
    expect(v.vendor).toBe('acme');
    expect(v.period?.ended).toBe(false);
    expect(v.counts.agents).toBe(3);
    expect(new Set(v.hosts.map((h) => h.hostname))).toEqual(new Set(['ws-1.acme.example', 'build-7.acme.example', 'build-8.acme.example']));
    expect(v.hosts.find((h) => h.hostname === 'build-7.acme.example')).toMatchObject({ control: 'disk_encryption', results: 3, fail: 3 });
    // Beta's host is not in acme's bundle.
    expect(v.hosts.some((h) => h.hostname.includes('beta'))).toBe(false);
    const gaps = v.gaps.filter((g) => g.agentId === gappy.agentId);
    expect(gaps).toEqual([
      { agentId: gappy.agentId, fromSeq: 3, toSeq: 5, explainedBy: { seq: 6, count: 3, reason: 'spool_full_count' } },
      { agentId: gappy.agentId, fromSeq: 7, toSeq: 8, explainedBy: null },
    ]);
    const table = await cli(['verify', bundle, '--collector-fingerprint', fingerprint]);
    expect(table.stdout).toMatch(/^VERIFIED: acme/);
    expect(table.stdout).toMatch(/build-7\.acme\.example\s+disk_encryption\s+3\s+0\s+3/);
    expect(table.stdout).toContain('seq 7–8: unexplained');
  });

  it('gives the same verdict with verify/verify.mjs inside the unpacked bundle', async () => {
    const viaCli = JSON.parse((await cli(['verify', unpacked, '--collector-fingerprint', fingerprint, '--format', 'json'])).stdout) as Verdict;
    const out = execFileSync(process.execPath, ['verify/verify.mjs', '--collector-fingerprint', fingerprint, '--format', 'json'], { cwd: unpacked }).toString();
    expect(JSON.parse(out)).toEqual(viaCli);
  });

  it('verifies with verify.sh under sh, with openssl, sha256sum and jq', () => {
    const out = execFileSync('sh', ['verify/verify.sh', fingerprint], { cwd: unpacked }).toString();
    expect(out).toContain(`collector key fingerprint: ${fingerprint}`);
    expect(out).toMatch(/checked with openssl: the manifest, \d+ file hashes, the checkpoints, \d+ envelope signatures/);
    expect(out).toContain('running verify/verify.mjs');
    expect(out.trimEnd().split('\n').at(-1)).toBe('VERIFIED');
    // Without node, it says what it did not check.
    // A PATH with the tools verify.sh needs, and no node.
    const bin = path.join(dir.dir, 'bin-without-node');
    mkdirSync(bin, { recursive: true });
    for (const tool of ['sh', 'openssl', 'sha256sum', 'jq', 'cat', 'cut', 'tr', 'wc', 'head', 'tail', 'awk', 'grep', 'sed', 'find', 'sort', 'comm', 'cmp', 'mktemp', 'rm', 'mkdir', 'cp', 'basename', 'dirname']) {
      const real = execFileSync('sh', ['-c', `command -v ${tool}`]).toString().trim();
      if (!existsSync(path.join(bin, tool))) symlinkSync(real, path.join(bin, tool));
    }
    const noNode = execFileSync(path.join(bin, 'sh'), ['verify/verify.sh', fingerprint], { cwd: unpacked, env: { PATH: bin } }).toString();
    expect(noNode.trimEnd().split('\n').at(-1)).toBe('VERIFIED');
    expect(noNode).toContain('node is not installed');
  });

  it('verify --report writes the report again with the auditor\'s own verdict: verified, or the defects of a tampered copy', async () => {
    const out = path.join(dir.dir, 'verified-report.html');
    const r = await cli(['verify', bundle, '--collector-fingerprint', fingerprint, '--report', out]);
    expect(r.stderr).toContain(`report written to ${out}`);
    const html = await readFile(out, 'utf8');
    expect(html).toMatch(/Verification: <strong>verified<\/strong>/);
    expect(html).toContain('Checked by vcm-collector verify');
    expect(html).toContain('collector key pinned out of band');
    expect(html).not.toContain(', at export');
    // One envelope removed and the manifest sealed again by a collector that lies: the report says so.
    const b = await copy('report-tampered');
    const file = await evidenceFileOf(b, failing.agentId);
    await setLines(b, file, (await lines(b, file)).slice(1));
    await reseal(b);
    const tamperedOut = path.join(dir.dir, 'tampered-report.html');
    const t = await cli(['verify', b, '--collector-fingerprint', fingerprint, '--report', tamperedOut], 1);
    expect(t.stderr).toContain('report written to');
    const tampered = await readFile(tamperedOut, 'utf8');
    expect(tampered).toMatch(/Verification: <strong>not verified<\/strong> — \d+ defects?/);
    expect(tampered).toContain('AUD_ENVELOPE_MISSING');
    // Input that cannot be verified at all gets no report, and says why.
    const junk = path.join(dir.dir, 'junk.tar.gz');
    await writeFile(junk, 'not a bundle');
    const u = await cli(['verify', junk, '--report', path.join(dir.dir, 'junk.html')], 2);
    expect(u.stderr).toMatch(/^no report: /m);
    expect(existsSync(path.join(dir.dir, 'junk.html'))).toBe(false);
  });

  it('holds the manifest, keys, policies, OSCAL, the CSV and the report, and says the period had not ended', async () => {
    const manifest = JSON.parse(await readFile(path.join(unpacked, 'manifest.json'), 'utf8')) as Manifest;
    const paths = manifest.files.map((f) => f.path);
    expect(paths).toEqual([...paths].sort());
    for (const p of ['collector/collector.pem', 'collector/collector.vkey', 'log/checkpoint-end.txt', 'log/compact-range.json', 'log/entries.jsonl', 'policy/1.json', 'report.html', 'summary.csv', 'oscal/assessment-results.json', 'verify/verify.mjs', 'verify/verify.sh', 'README.txt']) {
      expect(paths).toContain(p);
    }
    expect(paths).toContain(`keys/${failing.agentId}.json`);
    expect(manifest.period.ended).toBe(false);
    const csv = await readFile(path.join(unpacked, 'summary.csv'), 'utf8');
    expect(csv.split('\r\n')[0]).toBe('host,agent_id,control,day,results,passes,fails,unknowns,waived,first_failure,last_failure,last_seen');
    expect(csv).toContain(`build-7.acme.example,${failing.agentId},disk_encryption,${failingDay},3,0,0,3,0,`);
    const readme = await readFile(path.join(unpacked, 'README.txt'), 'utf8');
    expect(readme).toContain(fingerprint);
  });

  it('is entered in the log: the next bundle holds an export entry with the first one\'s SHA-256', async () => {
    const sha = sha256Hex(await readFile(bundle));
    const second = path.join(dir.dir, 'acme-2.tar.gz');
    await cli(['export', '--vendor', 'acme', '--from', FROM, '--to', TO, '--out', second, '--collector', collector.url, '--token-file', await tokenFile('admin', admin)]);
    const into = path.join(dir.dir, 'second');
    await mkdir(into);
    unpack(second, into);
    const entries = (await readFile(path.join(into, 'log/entries.jsonl'), 'utf8')).trimEnd().split('\n').map((l) => JSON.parse(l) as { type: string; sha256?: string; by?: string });
    expect(entries.filter((e) => e.type === 'export')).toContainEqual(expect.objectContaining({ sha256: sha, by: 'acme auditor' }));
    // The earlier bundle's end checkpoint links to this one.
    const linked = await cli(['verify', second, '--collector-fingerprint', fingerprint, '--after-checkpoint', path.join(unpacked, 'log/checkpoint-end.txt')]);
    expect(linked.stdout).toMatch(/^VERIFIED/);
  });

  it('is deterministic: two exports of one range are byte-identical, from the store and through the API', async () => {
    const size = (JSON.parse(await readFile(path.join(unpacked, 'manifest.json'), 'utf8')) as Manifest).log.end.size;
    const a = path.join(dir.dir, 'det-a.tar.gz');
    const b = path.join(dir.dir, 'det-b.tar.gz');
    const c = path.join(dir.dir, 'det-c.tar.gz');
    await cli(['export', '--vendor', 'acme', '--from', FROM, '--to', TO, '--out', a, '--data-dir', store, '--log-size', String(size)]);
    await cli(['export', '--vendor', 'acme', '--from', FROM, '--to', TO, '--out', b, '--data-dir', store, '--log-size', String(size)]);
    await cli(['export', '--vendor', 'acme', '--from', FROM, '--to', TO, '--out', c, '--collector', collector.url, '--token-file', await tokenFile('admin', admin), '--log-size', String(size)]);
    const [x, y, z] = await Promise.all([readFile(a), readFile(b), readFile(c)]);
    expect(x.equals(y)).toBe(true);
    expect(x.equals(z)).toBe(true);
    expect(x.equals(await readFile(bundle))).toBe(true);
  });

  it('refuses an auditor of another vendor, an unknown vendor and a reversed period, with stable codes', async () => {
    const q = `from=${FROM}T00:00:00Z&to=${TO}T00:00:00Z`;
    const other = await fetch(`${collector.url}/v1/audit/acme/export?${q}`, { headers: { authorization: `Bearer ${betaAuditor}` } });
    const none = await fetch(`${collector.url}/v1/audit/nosuch/export?${q}`, { headers: { authorization: `Bearer ${betaAuditor}` } });
    expect(other.status).toBe(403);
    expect(none.status).toBe(403);
    expect(((await other.json()) as { error: { code: string } }).error.code).toBe('COL_ERR_FORBIDDEN');
    expect(((await none.json()) as { error: { code: string } }).error.code).toBe('COL_ERR_FORBIDDEN');
    const range = await fetch(`${collector.url}/v1/audit/acme/range`, { headers: { authorization: `Bearer ${betaAuditor}` } });
    expect(range.status).toBe(403);
    const own = (await (await fetch(`${collector.url}/v1/audit/acme/range`, { headers: { authorization: `Bearer ${auditor}` } })).json()) as { size: number };
    expect(own.size).toBeGreaterThan(0);
    const unknown = await fetch(`${collector.url}/v1/audit/nosuch/export?${q}`, { headers: { authorization: `Bearer ${admin}` } });
    expect(unknown.status).toBe(404);
    const out = path.join(dir.dir, 'never.tar.gz');
    const reversed = await cli(['export', '--vendor', 'acme', '--from', TO, '--to', FROM, '--out', out, '--data-dir', store], 2);
    expect(reversed.stderr).toContain('COL_ERR_EXPORT_PERIOD');
    const localUnknown = await cli(['export', '--vendor', 'nosuch', '--from', FROM, '--to', TO, '--out', out, '--data-dir', store], 2);
    expect(localUnknown.stderr).toContain('COL_ERR_NOT_FOUND');
    const remoteReversed = await cli(['export', '--vendor', 'acme', '--from', TO, '--to', FROM, '--out', out, '--collector', collector.url, '--token-file', await tokenFile('auditor', auditor)], 2);
    expect(remoteReversed.stderr).toContain('COL_ERR_EXPORT_PERIOD');
    await expect(readdir(dir.dir)).resolves.not.toContain('never.tar.gz');
  });

  it('refuses to export from a store whose log entries do not give the checkpoints\' roots, and writes nothing', async () => {
    // A copy of the store with one byte of the first stored entry changed in every entry bundle
    // (inside the entry, not its length prefix).
    const copy = path.join(dir.dir, 'altered-store');
    await cp(store, copy, { recursive: true, filter: (src) => !src.includes(`${path.sep}.journal`) });
    const bundles = path.join(copy, 'log', 'vendor=acme', 'tile', 'entries');
    const files = (await readdir(bundles, { recursive: true, withFileTypes: true })).filter((e) => e.isFile());
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) {
      const file = path.join(f.parentPath, f.name);
      const bytes = await readFile(file);
      const at = bytes.indexOf('"type"');
      bytes[at + 2] = 0x7a; // "type" → "tzpe"
      await writeFile(file, bytes);
    }
    const out = path.join(dir.dir, 'from-altered.tar.gz');
    const r = await runCli(COLLECTOR_CLI, ['export', '--vendor', 'acme', '--from', FROM, '--to', TO, '--out', out, '--data-dir', copy]);
    expect(r.code, r.stderr).not.toBe(0);
    expect(r.stderr).toContain('COL_ERR_LOG_INCONSISTENT');
    expect(r.stderr).not.toMatch(/\n\s+at /); // an error, not a stack trace
    expect(existsSync(out)).toBe(false);
    expect((await readdir(dir.dir)).filter((f) => f.includes('from-altered'))).toEqual([]);
  });

  it('is a valid bundle for a period in which nothing was sent; --pdf prints its report, or says why not', async () => {
    const empty = path.join(dir.dir, 'empty.tar.gz');
    const pdf = path.join(dir.dir, 'empty.pdf');
    const e = await cli(['export', '--vendor', 'acme', '--from', '2026-10-01', '--to', '2026-10-02', '--out', empty, '--data-dir', store, '--pdf', pdf]);
    expect(e.stdout).toContain(`report printed to ${pdf}`);
    expect((await readFile(pdf)).subarray(0, 5).toString()).toBe('%PDF-');
    const noChromium = await runCli(COLLECTOR_CLI, ['export', '--vendor', 'acme', '--from', '2026-10-01', '--to', '2026-10-02', '--out', path.join(dir.dir, 'empty-2.tar.gz'), '--data-dir', store, '--pdf', pdf], { env: { ...process.env, VCM_CHROMIUM: '/nonexistent/chromium' } });
    expect(noChromium.code).toBe(0);
    expect(noChromium.stdout).toMatch(/no PDF: /);
    const v = JSON.parse((await cli(['verify', empty, '--collector-fingerprint', fingerprint, '--format', 'json'])).stdout) as Verdict;
    expect(v.verified, JSON.stringify(v.defects)).toBe(true);
    expect(v.counts.envelopes).toBe(0);
    expect(v.period?.ended).toBe(true);
  });

  it("links each host's chain to its newest envelope before the period, and names a link that does not hold", async () => {
    // A host with two results before the period and two in it: the period starts between them.
    const fs = new FsEvidenceStore(store);
    const host = await enrollTestAgent(collector.url, fs, 'gamma', 'build-1.gamma.example');
    const t0 = Date.now();
    const envs = chain(host, 4, (seq) => finding({ collectedAt: new Date(t0 + seq * 1000).toISOString() }));
    await post(envs);
    const from = new Date(t0 + 2500).toISOString();
    const out = path.join(dir.dir, 'gamma.tar.gz');
    await cli(['export', '--vendor', 'gamma', '--from', from, '--to', TO, '--out', out, '--collector', collector.url, '--token-file', await tokenFile('admin', admin)]);
    const b = path.join(dir.dir, 'gamma');
    await mkdir(b);
    unpack(out, b);
    const priorRel = `evidence/${host.agentId}/prior.jsonl`;
    // The envelope before the period is seq 2, byte for byte.
    expect(await readFile(path.join(b, priorRel))).toEqual(Buffer.concat([envs[1]!, Buffer.from('\n')]));
    const v = await verifyPinned(b);
    expect(v.defects).toEqual([]);
    expect(v.counts.envelopes).toBe(2);
    expect(v.gaps).toEqual([]);
    // verify.sh checks its signature with the rest.
    expect(execFileSync('sh', ['verify/verify.sh', fingerprint], { cwd: b }).toString()).toContain('3 envelope signatures');

    const copyOf = async (name: string) => {
      const to = path.join(dir.dir, 'tamper', name);
      await cp(b, to, { recursive: true });
      return to;
    };
    // Without it, the seqs before the period's first are a gap, unexplained.
    const gone = await copyOf('prior-removed');
    await rm(path.join(gone, priorRel));
    const m = JSON.parse(await readFile(path.join(gone, 'manifest.json'), 'utf8')) as Manifest;
    await writeFile(path.join(gone, 'manifest.json'), JSON.stringify({ ...m, files: m.files.filter((f) => f.path !== priorRel) }));
    await reseal(gone);
    const noPrior = await verifyPinned(gone);
    expect(noPrior.defects).toEqual([]);
    expect(noPrior.gaps).toEqual([{ agentId: host.agentId, fromSeq: 1, toSeq: 2, explainedBy: null }]);
    // An older one (seq 1) in its place: seq 2 is named as a gap.
    const older = await copyOf('prior-older');
    await writeFile(path.join(older, priorRel), Buffer.concat([envs[0]!, Buffer.from('\n')]));
    await reseal(older);
    expect((await verifyPinned(older)).gaps).toEqual([{ agentId: host.agentId, fromSeq: 2, toSeq: 2, explainedBy: null }]);
    // Another seq 2, signed by the host, that the period's first does not commit to.
    const other = await copyOf('prior-other');
    await writeFile(path.join(other, priorRel), Buffer.concat([resultEnvelope(host, 2, sha256Hex(envs[0]!), finding({ status: 'fail', collectedAt: new Date(t0 + 2000).toISOString() })), Buffer.from('\n')]));
    await reseal(other);
    expect((await verifyPinned(other)).defects).toMatchObject([{ code: 'AUD_CHAIN_BROKEN', agentId: host.agentId, seq: 3 }]);
    // One collected in the period, and one not signed by the host.
    const late = await copyOf('prior-late');
    await writeFile(path.join(late, priorRel), Buffer.concat([resultEnvelope(host, 2, sha256Hex(envs[0]!), finding({ collectedAt: new Date(t0 + 2600).toISOString() })), Buffer.from('\n')]));
    await reseal(late);
    expect(codes(await verifyPinned(late))).toContain('AUD_OUT_OF_PERIOD');
    const forged = await copyOf('prior-forged');
    const bytes = await readFile(path.join(forged, priorRel));
    const at = bytes.indexOf('"sig":"') + 12;
    bytes[at] = bytes[at]! ^ 0x01;
    await writeFile(path.join(forged, priorRel), bytes);
    await reseal(forged);
    expect((await verifyPinned(forged)).defects.find((d) => d.code === 'AUD_ENVELOPE_SIGNATURE')).toMatchObject({ file: priorRel, agentId: host.agentId, seq: 2 });
  });
});

// ---- Tampering ---------------------------------------------------------------------------------

/** A copy of the unpacked bundle to mutate. */
async function copy(name: string): Promise<string> {
  const to = path.join(dir.dir, 'tamper', name);
  await rm(to, { recursive: true, force: true });
  await cp(unpacked, to, { recursive: true });
  return to;
}

/** Rewrites the manifest's hashes and signs it again with the collector's own key: a collector that lies. */
async function reseal(b: string, key: KeyObject = collectorKey): Promise<void> {
  const manifest = JSON.parse(await readFile(path.join(b, 'manifest.json'), 'utf8')) as Manifest;
  const files = [];
  for (const f of manifest.files) {
    const bytes = await readFile(path.join(b, f.path)).catch(() => null);
    if (bytes !== null) files.push({ path: f.path, size: bytes.length, sha256: sha256Hex(bytes) });
  }
  const text = Buffer.from(`${JSON.stringify({ ...manifest, files }, null, 2)}\n`);
  await writeFile(path.join(b, 'manifest.json'), text);
  const type = 'application/vnd.vcm.audit-manifest.v1+json';
  const pae = Buffer.concat([Buffer.from(`DSSEv1 ${type.length} ${type} ${text.length} `), text]);
  await writeFile(path.join(b, 'manifest.dsse.json'), JSON.stringify({ payloadType: type, payload: text.toString('base64'), signatures: [{ keyid: 'x', sig: sign(null, pae, key).toString('base64') }] }));
}

async function lines(b: string, rel: string): Promise<string[]> {
  return (await readFile(path.join(b, rel), 'utf8')).trimEnd().split('\n');
}

async function setLines(b: string, rel: string, l: string[]): Promise<void> {
  await writeFile(path.join(b, rel), l.length === 0 ? '' : `${l.join('\n')}\n`);
}

const codes = (v: Verdict) => v.defects.map((d) => d.code);
/**
 * The verdict on one thread, checked against the built verifier's with two signature workers
 * (their facts come back packed, and most envelopes take a shorter path there): they must agree.
 */
async function verifyPinned(b: string): Promise<Verdict> {
  const v = await verifyBundleDir(b, { collectorFingerprint: fingerprint, workers: 0 });
  const built = (await import(path.join(REPO, 'dist/collector/audit/verify-core.js'))) as { verifyBundleDir: typeof verifyBundleDir };
  const w = await built.verifyBundleDir(b, { collectorFingerprint: fingerprint, workers: 2 });
  expect(w, `${b}: with workers`).toEqual(v);
  return v;
}

async function evidenceFileOf(b: string, agentId: string): Promise<string> {
  return `evidence/${agentId}/${(await readdir(path.join(b, 'evidence', agentId)))[0]!}`;
}

describe('the tamper matrix: each change is detected and named', () => {
  it('the untouched copy verifies (so each case below fails for its change alone)', async () => {
    const v = await verifyPinned(await copy('untouched'));
    expect(v.defects).toEqual([]);
    expect(v.exitCode).toBe(0);
  });

  it('an entry deleted, altered or reordered', async () => {
    for (const [name, change] of [
      ['delete', (l: string[]) => l.filter((_, i) => i !== 1)],
      ['alter', (l: string[]) => {
        const i = l.findIndex((x) => x.includes('"type":"envelope"'));
        return l.map((x, j) => (j === i ? x.replace(/"seq":(\d+)/, (_m, s: string) => `"seq":${Number(s) + 1}`) : x));
      }],
      ['reorder', (l: string[]) => [l[1]!, l[0]!, ...l.slice(2)]],
    ] as const) {
      const b = await copy(`entry-${name}`);
      await setLines(b, 'log/entries.jsonl', change(await lines(b, 'log/entries.jsonl')));
      const unsealed = await verifyPinned(b);
      expect(codes(unsealed), name).toContain('AUD_FILE_HASH');
      await reseal(b);
      const v = await verifyPinned(b);
      expect(v.exitCode, name).toBe(1);
      expect(codes(v), name).toContain('AUD_ROOT_MISMATCH');
      expect(codes(v), name).not.toContain('AUD_FILE_HASH');
    }
  });

  it('an envelope deleted, or one byte of it flipped', async () => {
    const b = await copy('envelope-delete');
    const file = await evidenceFileOf(b, failing.agentId);
    await setLines(b, file, (await lines(b, file)).slice(1));
    await reseal(b);
    const v = await verifyPinned(b);
    const missing = v.defects.find((d) => d.code === 'AUD_ENVELOPE_MISSING');
    expect(missing).toMatchObject({ agentId: failing.agentId, seq: 1 });
    expect(missing?.logIndex).toBeTypeOf('number');

    // A flipped byte leaves the envelope readable, with a signature that fails and a hash no entry
    // has (one in its signature), or makes it unreadable, when the entry's envelope is missing
    // (its first byte). Each is named, once the manifest is made to match.
    const flips = [
      { name: 'signature', at: (b: Buffer) => b.indexOf('"sig":"') + 10, want: ['AUD_ENVELOPE_SIGNATURE', 'AUD_ENTRY_MISSING'] },
      { name: 'first byte', at: () => 0, want: ['AUD_ENVELOPE_MALFORMED', 'AUD_ENVELOPE_MISSING'] },
    ];
    for (const flip of flips) {
      const f = await copy(`envelope-flip-${flip.name.replace(' ', '-')}`);
      const bytes = await readFile(path.join(f, file));
      const at = flip.at(bytes);
      expect(at, flip.name).toBeGreaterThanOrEqual(0);
      bytes[at] = bytes[at]! ^ 0x01;
      await writeFile(path.join(f, file), bytes);
      expect(codes(await verifyPinned(f)), flip.name).toContain('AUD_FILE_HASH');
      await reseal(f);
      const sealed = await verifyPinned(f);
      expect(codes(sealed), flip.name).toEqual(expect.arrayContaining(flip.want));
      expect(sealed.defects.find((d) => d.code === flip.want[0]), flip.name).toMatchObject({ file, agentId: failing.agentId });
    }
  });

  it('a host key swapped', async () => {
    const b = await copy('key-swap');
    const rel = `keys/${failing.agentId}.json`;
    const rec = JSON.parse(await readFile(path.join(b, rel), 'utf8')) as { publicKey: string };
    rec.publicKey = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }).toString();
    await writeFile(path.join(b, rel), JSON.stringify(rec));
    await reseal(b);
    const v = await verifyPinned(b);
    expect(v.defects.find((d) => d.code === 'AUD_KEY')).toMatchObject({ file: rel, agentId: failing.agentId });
    expect(codes(v)).toContain('AUD_ENVELOPE_SIGNATURE');
  });

  it('the manifest re-signed with another key', async () => {
    const b = await copy('resign');
    await reseal(b, generateKeyPairSync('ed25519').privateKey);
    expect(codes(await verifyPinned(b))).toContain('AUD_MANIFEST_SIGNATURE');
    // Unpinned, the verdict still names the key it trusted.
    const loose = await verifyBundleDir(b, { workers: 0 });
    expect(loose.keyPinned).toBe(false);
    expect(codes(loose)).toContain('AUD_MANIFEST_SIGNATURE');
  });

  it('the range truncated', async () => {
    const b = await copy('truncate');
    await setLines(b, 'log/entries.jsonl', (await lines(b, 'log/entries.jsonl')).slice(0, -2));
    await reseal(b);
    const v = await verifyPinned(b);
    expect(codes(v)).toContain('AUD_ROOT_MISMATCH');
    expect(v.defects.some((d) => d.message.includes('truncated'))).toBe(true);
  });

  it('a forked log: a second signed head of the same size', async () => {
    const b = await copy('fork');
    const end = await readFile(path.join(b, 'log/checkpoint-end.txt'), 'utf8');
    const [origin, size] = end.split('\n');
    const text = `${origin}\n${size}\n${Buffer.alloc(32, 7).toString('base64')}\n`;
    const { ed25519KeyId } = await import('../../../collector/log/note.js');
    const { createPublicKey } = await import('node:crypto');
    const id = ed25519KeyId(origin!, createPublicKey(collectorKey));
    const forged = `${text}\n\u2014 ${origin} ${Buffer.concat([id, sign(null, Buffer.from(text), collectorKey)]).toString('base64')}\n`;
    await writeFile(path.join(dir.dir, 'forked.txt'), forged);
    // Handed to the verifier as the earlier bundle's end: the two histories are named.
    const v = await verifyBundleDir(b, { collectorFingerprint: fingerprint, afterCheckpoint: forged, workers: 0 });
    expect(codes(v)).toContain('AUD_LOG_FORK');
    // Or slipped into the bundle itself.
    await writeFile(path.join(b, `log/checkpoints/${size!.padStart(12, '0')}-fork.txt`), forged);
    const manifest = JSON.parse(await readFile(path.join(b, 'manifest.json'), 'utf8')) as Manifest;
    manifest.log.checkpoints.push(`log/checkpoints/${size!.padStart(12, '0')}-fork.txt`);
    manifest.files.push({ path: `log/checkpoints/${size!.padStart(12, '0')}-fork.txt`, size: 0, sha256: '' });
    await writeFile(path.join(b, 'manifest.json'), JSON.stringify(manifest));
    await reseal(b);
    expect(codes(await verifyPinned(b))).toContain('AUD_LOG_FORK');
  });

  it("an agent's whole evidence removed from the store before the export", async () => {
    const copyStore = path.join(dir.dir, 'store-copy');
    await cp(store, copyStore, { recursive: true });
    const day = path.join(copyStore, 'evidence', 'vendor=acme', `date=${failingDay}`, `agent=${failing.agentId}`);
    await rm(day, { recursive: true });
    const out = path.join(dir.dir, 'stripped.tar.gz');
    const e = await cli(['export', '--vendor', 'acme', '--from', FROM, '--to', TO, '--out', out, '--data-dir', copyStore, '--format', 'json']);
    expect((JSON.parse(e.stdout) as { missingEvidence: number }).missingEvidence).toBe(3);
    const r = await cli(['verify', out, '--collector-fingerprint', fingerprint, '--format', 'json'], 1);
    const v = JSON.parse(r.stdout) as Verdict;
    const missing = v.defects.filter((d) => d.code === 'AUD_ENVELOPE_MISSING');
    expect(missing.map((d) => d.seq).sort()).toEqual([1, 2, 3]);
    expect(missing.every((d) => d.agentId === failing.agentId)).toBe(true);
  });

  it('random mutations of a bundle are never verified (property)', async () => {
    const base = await copy('property-base');
    const manifest = JSON.parse(await readFile(path.join(base, 'manifest.json'), 'utf8')) as Manifest;
    const all = ['manifest.json', 'manifest.dsse.json', ...manifest.files.map((f) => f.path)];
    let n = 0;
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...all), fc.nat(), fc.constantFrom('flip', 'delete', 'append', 'duplicate-line'), async (file, at, how) => {
        const b = path.join(dir.dir, 'tamper', `property-${n++}`);
        await cp(base, b, { recursive: true });
        const p = path.join(b, file);
        const bytes = await readFile(p);
        if (how === 'delete') await rm(p);
        else if (how === 'append') await writeFile(p, Buffer.concat([bytes, Buffer.from('x')]));
        else if (how === 'duplicate-line') {
          const l = bytes.toString('utf8').split('\n');
          const i = at % l.length;
          await writeFile(p, [...l.slice(0, i + 1), l[i]!, ...l.slice(i + 1)].join('\n'));
        } else if (bytes.length > 0) {
          bytes[at % bytes.length] = bytes[at % bytes.length]! ^ (1 << at % 8);
          await writeFile(p, bytes);
        }
        const v = await verifyPinned(b);
        await rm(b, { recursive: true, force: true });
        // An empty line duplicated changes nothing in a file that has none: then the bytes differ anyway.
        return v.exitCode !== 0;
      }),
      { numRuns: 40, seed: 1207 },
    );
  });
});
