// `vcm-agent rotate-key` as a user runs it: the real agent CLI against a real collector process.
// The crash cases put a real TCP relay between them that loses the answer (or the request), kill
// the agent with SIGKILL at that moment, and check that the next run ends in one consistent state.
import { spawn } from 'node:child_process';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { readFile, readdir, stat, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdminToken } from '../../collector/admin.js';
import { agentIdFor } from '../../collector/contract.js';
import { FsEvidenceStore } from '../../collector/store.js';
import { auditChain, listTree } from '../helpers/collector-probe.js';
import { AgentDaemon } from './daemon/harness.js';
import { AGENT_CLI, COLLECTOR_CLI, runCli, startCollectorProcess, tempDir, type CliResult, type CollectorProcess } from '../helpers/processes.js';

let data: Awaited<ReturnType<typeof tempDir>>;
let collector: CollectorProcess;
let storeDir: string;
let stateDir: string;
/** The agent's key, its next key while a rotation is under way, and the pending request. */
let keyFile: string;
let nextKeyFile: string;
let rotationFile: string;
let agentId: string;

const agent = (args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> =>
  runCli(AGENT_CLI, [...args, '--state-dir', stateDir], { env: { VCM_LOG_LEVEL: 'warn', ...env }, timeoutMs: 60_000 });

async function keyFingerprint(file: string): Promise<string> {
  const pub = createPublicKey(createPrivateKey(await readFile(file, 'utf8')));
  return agentIdFor(pub.export({ type: 'spki', format: 'pem' }).toString());
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

async function status(): Promise<{ key: { generation: number; keyId: string } | null; rotationPending: { generation: number } | null; lastSeq: number; spoolDepth: number }> {
  const res = await agent(['status', '--format', 'json']);
  expect(res.code, res.stderr).toBe(0);
  return JSON.parse(res.stdout) as Awaited<ReturnType<typeof status>>;
}

/** Rotations the collector stored for the agent: keys/<id>.key-<n>.json. */
/**
 * DSSE verification as securesystemslib does it (Debian's python3-securesystemslib, whose 0.26 has
 * the key classes but not yet the Envelope): each signature's keyid picks the key, strictly, and
 * SSlibKey verifies Ed25519 over the spec's PAE. The PAE is written here from the DSSE spec.
 */
async function sslibVerify(keys: Record<string, string>, envelopes: unknown[]): Promise<boolean[]> {
  const script = `
import base64, json, sys
from cryptography.hazmat.primitives.serialization import load_pem_public_key, Encoding, PublicFormat
from securesystemslib.signer import SSlibKey, Signature
from securesystemslib.exceptions import UnverifiedSignatureError, VerificationError
req = json.load(sys.stdin)
keys = {k: SSlibKey(k, "ed25519", "ed25519", {"public": load_pem_public_key(p.encode()).public_bytes(Encoding.Raw, PublicFormat.Raw).hex()}) for k, p in req["keys"].items()}
def pae(t, p):
    t = t.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(p), p)
out = []
for env in req["envelopes"]:
    ok = False
    for s in env["signatures"]:
        if s["keyid"] in keys:
            try:
                keys[s["keyid"]].verify_signature(Signature(s["keyid"], base64.b64decode(s["sig"]).hex()), pae(env["payloadType"], base64.b64decode(env["payload"])))
                ok = True
            except (UnverifiedSignatureError, VerificationError):
                pass
    out.append(ok)
print(json.dumps(out))
`;
  const child = spawn('/usr/bin/python3', ['-c', script], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  child.stdin.end(JSON.stringify({ keys, envelopes }));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  expect(code, err).toBe(0);
  return JSON.parse(out) as boolean[];
}

async function storedRotations(): Promise<string[]> {
  return (await readdir(path.join(storeDir, 'keys'))).filter((n) => n.startsWith(`${agentId}.key-`)).sort();
}

async function runOnceDelivers(): Promise<void> {
  const res = await agent(['run', '--once']);
  expect(res.code, `${res.stdout}\n${res.stderr}`).toBe(0);
  const audit = await auditChain(storeDir, agentId);
  expect(audit.problems).toEqual([]);
  expect(audit.links.map((l) => l.seq)).toEqual(Array.from({ length: audit.links.length }, (_, i) => i + 1));
  expect((await status()).spoolDepth).toBe(0);
}

/**
 * A TCP relay to the collector. `drop-answer`: the request reaches the collector, its answer never
 * reaches the agent. `hold`: the request never reaches the collector. `seen` resolves at that moment.
 */
async function relay(mode: 'drop-answer' | 'hold'): Promise<{ url: string; seen: Promise<void>; close: () => Promise<void> }> {
  const target = new URL(collector.url);
  let signal!: () => void;
  const seen = new Promise<void>((resolve) => (signal = resolve));
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    sockets.add(client);
    client.on('error', () => undefined);
    if (mode === 'hold') {
      let head = '';
      client.on('data', (d: Buffer) => {
        head += d.toString('latin1');
        if (head.includes('\r\n\r\n')) signal();
      });
      return;
    }
    const upstream = net.connect(Number(target.port), target.hostname);
    sockets.add(upstream);
    upstream.on('error', () => undefined);
    client.pipe(upstream);
    upstream.on('data', () => signal());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * Starts `rotate-key` through a relay in `mode`, and SIGKILLs it once the relay saw what it waits
 * for; the relay is closed either way.
 */
async function rotateKilled(mode: Parameters<typeof relay>[0]): Promise<void> {
  const via = await relay(mode);
  try {
    const child = spawn(process.execPath, [AGENT_CLI, 'rotate-key', '--state-dir', stateDir], { env: { ...process.env, VCM_COLLECTOR_URL: via.url }, stdio: 'ignore' });
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, sig) => resolve(sig)));
    await Promise.race([via.seen, exited.then(() => Promise.reject(new Error('rotate-key exited before the relay saw the request')))]);
    child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');
  } finally {
    await via.close();
  }
}

beforeAll(async () => {
  data = await tempDir('rotate-key');
  storeDir = path.join(data.dir, 'store');
  stateDir = path.join(data.dir, 'agent');
  keyFile = path.join(stateDir, 'agent-ed25519.pem');
  nextKeyFile = path.join(stateDir, 'agent-ed25519.next.pem');
  rotationFile = path.join(stateDir, 'rotation.json');
  collector = await startCollectorProcess(storeDir);
  const token = await runCli(COLLECTOR_CLI, ['token', 'create', '--vendor', 'acme', '--data-dir', storeDir]);
  expect(token.code, token.stderr).toBe(0);
  const enrolled = await agent(['enroll', '--collector', collector.url, '--token', token.stdout.trim()]);
  expect(enrolled.code, enrolled.stderr).toBe(0);
  agentId = /as agent ([0-9a-f]{64})/.exec(enrolled.stdout)![1]!;
  await runOnceDelivers();
}, 120_000);

afterAll(async () => {
  await collector?.stop();
  await data?.cleanup();
});

describe('vcm-agent rotate-key against a collector process', () => {
  it('rotates with results still spooled: they are delivered late under the old key, later ones under the new key', async () => {
    // The collector is away for one cycle: its results stay in the spool, signed by the enrolled key.
    const away = await agent(['run', '--once'], { VCM_COLLECTOR_URL: 'http://127.0.0.1:9' });
    expect(away.code).not.toBe(0);
    const before = await status();
    expect(before.spoolDepth).toBeGreaterThan(0);
    expect(before.key).toEqual(expect.objectContaining({ generation: 0, keyId: agentId }));

    const res = await agent(['rotate-key']);
    expect(res.code, res.stderr).toBe(0);
    const m = /key rotated: generation 1, fingerprint ([0-9a-f]{64}); results after seq (\d+) are signed with it/.exec(res.stdout);
    expect(m, res.stdout).not.toBeNull();
    expect(Number(m![2])).toBe(before.lastSeq);
    expect(await keyFingerprint(keyFile)).toBe(m![1]);
    expect(m![1]).not.toBe(agentId);
    expect((await stat(keyFile)).mode & 0o777).toBe(0o600);
    expect(await exists(nextKeyFile)).toBe(false);
    expect(await exists(rotationFile)).toBe(false);
    const after = await status();
    expect(after).toMatchObject({ key: { generation: 1, keyId: m![1] }, rotationPending: null, spoolDepth: before.spoolDepth, lastSeq: before.lastSeq });
    const text = await agent(['status']);
    expect(text.stdout).toMatch(new RegExp(`key +generation 1, fingerprint ${m![1]} \\(rotated \\S+, signs after seq ${before.lastSeq}\\)`));

    await runOnceDelivers();
    expect(await storedRotations()).toEqual([`${agentId}.key-1.json`]);
    // Each envelope names the key that signed it (#17, DSSE interoperability): the enrolled key's
    // fingerprint up to the rotation point, the new key's after it; the collector took both.
    const audit = await auditChain(storeDir, agentId);
    for (const link of audit.links) {
      const env = JSON.parse(await readFile(path.join(storeDir, 'evidence', link.file), 'utf8')) as { signatures: { keyid: string }[] };
      expect(env.signatures[0]?.keyid, `seq ${link.seq}`).toBe(link.seq <= before.lastSeq ? agentId : m![1]);
    }
    expect(audit.links.some((l) => l.seq > before.lastSeq)).toBe(true);
    // And securesystemslib, which matches a signature's keyid strictly, verifies every one of them
    // with both keys registered under their own fingerprints.
    const keys = {
      [agentId]: (JSON.parse(await readFile(path.join(storeDir, 'keys', `${agentId}.json`), 'utf8')) as { publicKey: string }).publicKey,
      [m![1]!]: createPublicKey(createPrivateKey(await readFile(keyFile, 'utf8'))).export({ type: 'spki', format: 'pem' }).toString(),
    };
    const envelopes = await Promise.all(audit.links.map(async (l) => JSON.parse(await readFile(path.join(storeDir, 'evidence', l.file), 'utf8')) as unknown));
    expect(await sslibVerify(keys, envelopes)).toEqual(audit.links.map(() => true));
    // It can fail: with the keys swapped, nothing verifies.
    expect(await sslibVerify({ [agentId]: keys[m![1]!]!, [m![1]!]: keys[agentId]! }, envelopes)).toEqual(audit.links.map(() => false));
  });

  it('after a kill once the collector applied the rotation but before the agent heard it, the next run finishes the switch', async () => {
    await rotateKilled('drop-answer');
    // The collector has generation 2; the agent still holds generation 1 and the pending request.
    expect(await storedRotations()).toEqual([`${agentId}.key-1.json`, `${agentId}.key-2.json`]);
    const pending = await status();
    expect(pending).toMatchObject({ key: { generation: 1 }, rotationPending: { generation: 2 } });
    expect((await agent(['status'])).stdout).toContain('rotation to generation 2 pending');

    await runOnceDelivers();
    const after = await status();
    expect(after).toMatchObject({ key: { generation: 2 }, rotationPending: null });
    expect(after.key!.keyId).toBe(await keyFingerprint(keyFile));
    expect(await storedRotations()).toHaveLength(2);
  });

  it('after a kill before the request reached the collector, rotate-key sends the same request instead of starting another', async () => {
    await rotateKilled('hold');
    expect(await storedRotations()).toHaveLength(2);
    const pending = (JSON.parse(await readFile(rotationFile, 'utf8')) as { keyId: string; generation: number });
    expect(pending.generation).toBe(3);

    const res = await agent(['rotate-key']);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toContain(`key rotated: generation 3, fingerprint ${pending.keyId}`);
    expect(await storedRotations()).toHaveLength(3);
    expect(await keyFingerprint(keyFile)).toBe(pending.keyId);
    await runOnceDelivers();
  });

  it('the daemon, started with a rotation pending while the collector is away, signs nothing until it settles it', async () => {
    await rotateKilled('drop-answer');
    expect(await status()).toMatchObject({ key: { generation: 3 }, rotationPending: { generation: 4 } });
    const { port } = new URL(collector.url);
    await collector.stop();
    // The earlier runs in this file are recent: forget them, so that every check is due at start
    // instead of at its next slot (up to a minute and a half away with jitter).
    const statusFile = path.join(stateDir, 'status.json');
    const recorded = JSON.parse(await readFile(statusFile, 'utf8')) as { checks: Record<string, unknown> };
    await writeFile(statusFile, JSON.stringify({ ...recorded, checks: {} }));
    const daemon = new AgentDaemon(['--state-dir', stateDir, '--interval', '60'], { VCM_LOG_LEVEL: 'info' });
    try {
      await daemon.waitFor((l) => l.msg === 'key rotation pending; waiting for the collector before signing anything', 20_000, 'the pending rotation warning');
      expect(daemon.lines.some((l) => l.msg === 'agent started' || l.msg === 'check done')).toBe(false);
      collector = await startCollectorProcess(storeDir, { listen: `127.0.0.1:${port}` });
      await daemon.waitFor((l) => l.msg === 'key rotated' && l.generation === 4 && l.duplicate === true, 20_000, 'the rotation settled');
      const started = await daemon.waitFor((l) => l.msg === 'agent started', 20_000, 'the start');
      await daemon.waitFor((l) => l.msg === 'check done', 30_000, 'a check signed with the new key');
      await daemon.waitDrained(daemon.lines.indexOf(started), 30_000);
    } finally {
      expect((await daemon.stop()).code).toBe(0);
    }
    expect(await status()).toMatchObject({ key: { generation: 4 }, rotationPending: null, spoolDepth: 0 });
    expect(await storedRotations()).toHaveLength(4);
    expect((await auditChain(storeDir, agentId)).problems).toEqual([]);
  }, 90_000);

  it('is refused while another process holds the state directory', async () => {
    await writeFile(path.join(stateDir, 'agent.lock'), `${collector.child.pid}\n`);
    try {
      const res = await agent(['rotate-key']);
      expect(res.code).toBe(2);
      expect(res.stderr).toMatch(/AGT_ERR_STATE_LOCKED/);
      expect(await exists(rotationFile)).toBe(false);
    } finally {
      await writeFile(path.join(stateDir, 'agent.lock'), '0\n');
    }
  });

  it('keeps the current key when the collector refuses (a revoked agent)', async () => {
    const store = new FsEvidenceStore(storeDir);
    const adminToken = await createAdminToken(store, { name: 'rotate-key test', role: 'admin' });
    const revoke = await runCli(COLLECTOR_CLI, ['agents', 'revoke', agentId, '--reason', 'test', '--collector', collector.url], { env: { VCM_ADMIN_TOKEN: adminToken } });
    expect(revoke.code, revoke.stderr).toBe(0);
    const keyBefore = await keyFingerprint(keyFile);
    const files = await listTree(storeDir, collector.url);

    const res = await agent(['rotate-key']);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/AGT_ERR_ROTATE_REJECTED: COL_ERR_REVOKED/);
    expect(await keyFingerprint(keyFile)).toBe(keyBefore);
    expect(await exists(nextKeyFile)).toBe(false);
    expect(await exists(rotationFile)).toBe(false);
    expect(await status()).toMatchObject({ key: { generation: 4 }, rotationPending: null });
    expect(await listTree(storeDir, collector.url)).toEqual(files);
  });
});
