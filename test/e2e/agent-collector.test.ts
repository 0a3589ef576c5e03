// The first end-to-end slice, as a user runs it: a real collector process, the real agent CLI,
// HTTP on loopback, evidence on disk, and an independent signature check with openssl.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile, readdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listTree } from '../helpers/collector-probe.js';
import { AGENT_CLI, COLLECTOR_CLI, runCli, sample, startCollectorProcess, tempDir, type CollectorProcess } from '../helpers/processes.js';

interface StoredEnvelope {
  file: string;
  bytes: Buffer;
  envelope: { payloadType: string; payload: string; signatures: { keyid: string; sig: string }[] };
  statement: { predicate: { seq: number; prev: string | null; agentId: string; finding: { check: string; status: string } } };
}

/** The evidence files in the store, as absolute paths (not a file still being written beside its name). */
async function listEvidence(dataDir: string): Promise<string[]> {
  const root = path.join(dataDir, 'evidence');
  return (await listTree(root)).filter((f) => f.endsWith('.dsse.json')).map((f) => path.join(root, f));
}

async function loadEvidence(file: string): Promise<StoredEnvelope> {
  const bytes = await readFile(file);
  const envelope = JSON.parse(bytes.toString('utf8')) as StoredEnvelope['envelope'];
  const statement = JSON.parse(Buffer.from(envelope.payload, 'base64').toString('utf8')) as StoredEnvelope['statement'];
  return { file, bytes, envelope, statement };
}

function paeBytes(payloadType: string, payload: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`DSSEv1 ${Buffer.byteLength(payloadType)} ${payloadType} ${payload.length} `), payload]);
}

async function postResult(url: string, body: Buffer): Promise<{ status: number; json: { error?: { code: string }; results?: { outcome: string }[] } }> {
  const res = await fetch(`${url}/v1/results`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  return { status: res.status, json: (await res.json()) as { error?: { code: string } } };
}

async function metrics(url: string): Promise<string> {
  return (await fetch(`${url}/metrics`)).text();
}

describe('agent → collector over HTTP (real processes)', () => {
  let data: Awaited<ReturnType<typeof tempDir>>;
  let collector: CollectorProcess;
  let token: string;
  let stateDir: string;
  let evidence: StoredEnvelope[];
  /** One finding per check the collector's policy enables. */
  let perCycle: string[];

  beforeAll(async () => {
    data = await tempDir('e2e');
    collector = await startCollectorProcess(path.join(data.dir, 'store'));
    stateDir = path.join(data.dir, 'agent');
  });

  afterAll(async () => {
    await collector?.stop();
    await data?.cleanup();
  });

  it('answers /healthz and /readyz', async () => {
    expect((await fetch(`${collector.url}/healthz`)).status).toBe(200);
    const ready = await fetch(`${collector.url}/readyz`);
    expect(ready.status).toBe(200);
  });

  it('token create prints only a token, against the store of the running collector', async () => {
    const res = await runCli(COLLECTOR_CLI, ['token', 'create', '--vendor', 'acme', '--data-dir', path.join(data.dir, 'store')]);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/^vcm_et_[A-Za-z0-9_-]{43}\n$/);
    token = res.stdout.trim();
    // Only the hash is stored.
    const tokens = await readdir(path.join(data.dir, 'store', 'tokens'));
    expect(tokens.join(' ')).not.toContain(token.slice(7));
  });

  it('enrolls the agent with a fresh Ed25519 key readable only by its owner', async () => {
    const res = await runCli(AGENT_CLI, ['enroll', '--collector', collector.url, '--token', token, '--state-dir', stateDir]);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/enrolled .* as agent [0-9a-f]{64} for vendor acme/);
    const mode = (await stat(path.join(stateDir, 'agent-ed25519.pem'))).mode & 0o777;
    expect(mode).toBe(0o600);
    expect(res.stdout + res.stderr).not.toContain(token);
  });

  it('refuses the same token a second time', async () => {
    const res = await runCli(AGENT_CLI, ['enroll', '--collector', collector.url, '--token', token, '--state-dir', path.join(data.dir, 'agent2')]);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain('AGT_ERR_ENROLL_REJECTED');
    expect(res.stderr).toContain('COL_ERR_TOKEN_INVALID');
    const m = await metrics(collector.url);
    expect(sample(m, 'vcm_enrollments_total{outcome="token_invalid"}')).toBe(1);
  });

  it('runs one cycle: each finding signed, chained, pushed and stored write-once', async () => {
    const policy = (await (await fetch(`${collector.url}/v1/policy`)).json()) as { checks: Record<string, { enabled: boolean }> };
    perCycle = Object.entries(policy.checks).filter(([, c]) => c.enabled).map(([id]) => id);
    expect(perCycle).toEqual(expect.arrayContaining(['disk_encryption', 'open_ports']));
    const res = await runCli(AGENT_CLI, ['run', '--once', '--state-dir', stateDir]);
    expect(res.code, res.stderr).toBe(0);
    for (const id of perCycle) expect(res.stdout).toMatch(new RegExp(`${id}\\s+(PASS|FAIL|UNKNOWN)\\s+accepted`));

    const files = await listEvidence(path.join(data.dir, 'store'));
    expect(files).toHaveLength(perCycle.length);
    evidence = await Promise.all(files.map(loadEvidence));
    const identity = JSON.parse(await readFile(path.join(stateDir, 'identity.json'), 'utf8')) as { agentId: string };
    for (const [i, e] of evidence.entries()) {
      const rel = path.relative(path.join(data.dir, 'store'), e.file).split(path.sep).join('/');
      const hash = createHash('sha256').update(e.bytes).digest('hex');
      expect(rel).toMatch(new RegExp(`^evidence/vendor=acme/date=\\d{4}-\\d{2}-\\d{2}/agent=${identity.agentId}/${String(i + 1).padStart(12, '0')}-${hash}\\.dsse\\.json$`));
      expect(e.statement.predicate.seq).toBe(i + 1);
      expect(e.envelope.signatures[0]?.keyid).toBe(identity.agentId);
    }
    expect(evidence[0]!.statement.predicate.prev).toBeNull();
    for (let i = 1; i < evidence.length; i++) {
      expect(evidence[i]!.statement.predicate.prev).toBe(createHash('sha256').update(evidence[i - 1]!.bytes).digest('hex'));
    }
    expect(evidence.map((e) => e.statement.predicate.finding.check).sort()).toEqual([...perCycle].sort());
    // Delivered envelopes leave the spool.
    expect(await readdir(path.join(stateDir, 'spool'))).toEqual([]);
  });

  it('stored envelopes verify with openssl over the DSSE pre-authentication encoding', async () => {
    const work = await tempDir('openssl');
    try {
      const agentId = evidence[0]!.statement.predicate.agentId;
      const key = JSON.parse(await readFile(path.join(data.dir, 'store', 'keys', `${agentId}.json`), 'utf8')) as { publicKey: string };
      const pub = path.join(work.dir, 'pub.pem');
      await writeFile(pub, key.publicKey);
      for (const e of evidence) {
        const msg = path.join(work.dir, 'pae.bin');
        const sig = path.join(work.dir, 'sig.bin');
        await writeFile(msg, paeBytes(e.envelope.payloadType, Buffer.from(e.envelope.payload, 'base64')));
        await writeFile(sig, Buffer.from(e.envelope.signatures[0]!.sig, 'base64'));
        const verify = () =>
          execFileSync('openssl', ['pkeyutl', '-verify', '-pubin', '-inkey', pub, '-rawin', '-in', msg, '-sigfile', sig], { encoding: 'utf8', stdio: 'pipe' });
        expect(verify()).toContain('Signature Verified Successfully');
        // The same check must fail on one changed byte, or it proves nothing.
        const tampered = paeBytes(e.envelope.payloadType, Buffer.from(e.envelope.payload, 'base64'));
        tampered[tampered.length - 2] = tampered[tampered.length - 2]! ^ 0x01;
        await writeFile(msg, tampered);
        expect(verify).toThrow();
      }
    } finally {
      await work.cleanup();
    }
  });

  it('shows the results in /metrics', async () => {
    const m = await metrics(collector.url);
    expect(sample(m, 'vcm_ingest_envelopes_total{outcome="accepted"}')).toBe(perCycle.length);
    const identity = JSON.parse(await readFile(path.join(stateDir, 'identity.json'), 'utf8')) as { agentId: string; host: { hostname: string } };
    const host = `${identity.host.hostname}",agent_id="${identity.agentId}`;
    for (const e of evidence) {
      const { check, status } = e.statement.predicate.finding;
      expect(sample(m, `vcm_control_state{vendor="acme",host="${host}",control="${check}",state="${status}"}`)).toBe(1);
      expect(sample(m, `vcm_control_hosts{vendor="acme",control="${check}",state="${status}"}`)).toBe(1);
    }
  });

  it('the same envelope again is a duplicate, stored once', async () => {
    const res = await postResult(collector.url, evidence[0]!.bytes);
    expect(res.status).toBe(200);
    expect(res.json.results?.[0]?.outcome).toBe('duplicate');
    expect(await listEvidence(path.join(data.dir, 'store'))).toHaveLength(perCycle.length);
  });

  it('rejects a flipped byte anywhere in the envelope, stores nothing, and counts it', async () => {
    const original = evidence.reduce((a, b) => (a.bytes.length <= b.bytes.length ? a : b)).bytes;
    const text = original.toString('latin1');
    const payloadStart = text.indexOf('"payload":"') + '"payload":"'.length;
    const payloadEnd = text.indexOf('"', payloadStart);
    const sigStart = text.indexOf('"sig":"') + '"sig":"'.length;
    const sigEnd = text.indexOf('"', sigStart);
    // Every byte outside the payload, every byte of the signature, and a spread through the payload.
    const step = Math.max(1, Math.floor((payloadEnd - payloadStart) / 300));
    const positions = [...Array(original.length).keys()].filter((i) => i < payloadStart || i >= payloadEnd || (i - payloadStart) % step === 0);
    const before = await metrics(collector.url);
    const badSigBefore = sample(before, 'vcm_ingest_rejected_total{reason="bad_signature"}') ?? 0;
    const rejectedBefore = sample(before, 'vcm_ingest_envelopes_total{outcome="rejected"}') ?? 0;
    let signedRegionRejections = 0;
    for (const i of positions) {
      const mutated = Buffer.from(original);
      mutated[i] = mutated[i]! ^ 0x01;
      const res = await postResult(collector.url, mutated);
      expect(res.status, `byte ${i} ('${text[i]}')`).toBeGreaterThanOrEqual(400);
      expect(res.status, `byte ${i}`).toBeLessThan(500);
      const inSigned = (i >= payloadStart && i < payloadEnd) || (i >= sigStart && i < sigEnd);
      if (inSigned) {
        expect(res.json.error?.code, `byte ${i}`).toBe('COL_ERR_BAD_SIGNATURE');
        signedRegionRejections++;
      }
    }
    expect(await listEvidence(path.join(data.dir, 'store'))).toHaveLength(perCycle.length);
    const after = await metrics(collector.url);
    expect((sample(after, 'vcm_ingest_rejected_total{reason="bad_signature"}') ?? 0) - badSigBefore).toBeGreaterThanOrEqual(signedRegionRejections);
    expect((sample(after, 'vcm_ingest_envelopes_total{outcome="rejected"}') ?? 0) - rejectedBefore).toBe(positions.length);
    // The collector keeps serving.
    expect((await fetch(`${collector.url}/healthz`)).status).toBe(200);
  });

  it('a second cycle continues the chain, also after a collector restart', async () => {
    const listen = new URL(collector.url).host;
    await collector.stop();
    collector = await startCollectorProcess(path.join(data.dir, 'store'), { listen });
    const res = await runCli(AGENT_CLI, ['run', '--once', '--state-dir', stateDir]);
    expect(res.code, res.stderr).toBe(0);
    const files = await listEvidence(path.join(data.dir, 'store'));
    expect(files).toHaveLength(2 * perCycle.length);
    const next = await loadEvidence(files[perCycle.length]!);
    expect(next.statement.predicate.seq).toBe(perCycle.length + 1);
    expect(next.statement.predicate.prev).toBe(createHash('sha256').update(evidence.at(-1)!.bytes).digest('hex'));
    const m = await metrics(collector.url);
    expect(sample(m, 'vcm_evidence_chain_gaps_total{vendor="acme"}') ?? 0).toBe(0);
  });

  it('status shows the enrollment and an empty spool', async () => {
    const res = await runCli(AGENT_CLI, ['status', '--state-dir', stateDir, '--format', 'json']);
    expect(res.code, res.stderr).toBe(0);
    const status = JSON.parse(res.stdout) as { enrolled: boolean; lastSeq: number; spoolDepth: number; vendor: string };
    expect(status).toMatchObject({ enrolled: true, lastSeq: 2 * perCycle.length, spoolDepth: 0, vendor: 'acme' });
  });
});
