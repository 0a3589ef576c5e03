// A throwaway single-node Ceph cluster with the RADOS Gateway on 127.0.0.1, for tests that need a
// real S3 (Object Lock, versioning, conditional writes, pagination). Facts and the settings that
// matter: ../../../shared/notes/s3-test-servers.md. One monitor, one memstore OSD, one radosgw,
// every path under one temporary folder; teardown is SIGKILL by PID and removing the folder.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { appendFileSync, existsSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** The Debian packages that provide the binaries below (what CI installs). */
export const RGW_APT_PACKAGES = ['ceph-mon', 'ceph-osd', 'radosgw', 'ceph-common'] as const;
const BINARIES = ['ceph-mon', 'ceph-osd', 'radosgw', 'radosgw-admin', 'ceph', 'ceph-authtool', 'monmaptool'] as const;

export interface Rgw {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** The SSE-KMS key ids the gateway's "testing" KMS backend knows. */
  kmsKeyIds: readonly string[];
  /** The cluster's folder (config, logs): kept only when KEEP_RGW is set. */
  dir: string;
  /** Kills radosgw only: the endpoint stops answering, the cluster stays (an S3 outage). */
  stopGateway(): Promise<void>;
  /** Kills everything (SIGKILL) and removes the folder. Safe to call twice. */
  stop(): Promise<void>;
}

/** The binaries missing from PATH; empty when a cluster can be started here. */
export function rgwMissingBinaries(): string[] {
  const dirs = (process.env.PATH ?? '').split(path.delimiter).filter((d) => d !== '');
  return BINARIES.filter((bin) => !dirs.some((d) => existsSync(path.join(d, bin))));
}

/**
 * Whether the RGW suites can run. When binaries are missing it says so on stderr (never a silent
 * skip); under CI (CI=true) missing binaries are an error, because CI must provide them.
 */
export function rgwAvailability(suite: string): { available: boolean; reason: string } {
  const missing = rgwMissingBinaries();
  if (missing.length === 0) return { available: true, reason: '' };
  const what = `Ceph binaries missing from PATH: ${missing.join(', ')} (install: apt-get install -y --no-install-recommends ${RGW_APT_PACKAGES.join(' ')})`;
  if (process.env.CI !== undefined && process.env.CI !== '' && process.env.CI !== 'false') {
    throw new Error(`${suite}: ${what}; CI must install them`);
  }
  const reason = `${suite}: SKIPPED, ${what}`;
  console.warn(reason);
  return { available: false, reason };
}

function run(file: string, args: string[], timeoutMs = 30_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${file} ${args.join(' ')} failed: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ host: '127.0.0.1', port, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

/** A block of `count` consecutive free loopback ports, chosen at random (fixed once chosen). */
export async function freePortBlock(count: number): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 30_000);
    let ok = true;
    for (let p = base; p < base + count && ok; p++) ok = await portFree(p);
    if (ok) return base;
  }
  throw new Error(`no block of ${count} free loopback ports found`);
}

async function waitFor(what: string, probe: () => Promise<boolean>, timeoutMs: number, alive: () => string | null): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const dead = alive();
    if (dead !== null) throw new Error(`${what}: ${dead}`);
    if (await probe().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`${what}: timed out after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// 256-bit keys for radosgw's "testing" KMS backend (SSE-KMS without a key server; never production).
const KMS_KEYS = { 'vcm-test-key-1': randomBytes(32).toString('base64'), 'vcm-test-key-2': randomBytes(32).toString('base64') };

// $1 parent pid, $2 cluster folder, $3 keep the folder. Daemon pids are appended to $2/daemons.pid.
const WATCHDOG = `while kill -0 "$1" 2>/dev/null && [ -d "$2" ]; do sleep 1; done
[ -f "$2/daemons.pid" ] && kill -9 $(cat "$2/daemons.pid") 2>/dev/null
[ "$3" = 1 ] || rm -rf "$2"`;

/** Starts a cluster and returns once the S3 endpoint answers and the user exists. */
export async function startRgw(): Promise<Rgw> {
  const missing = rgwMissingBinaries();
  if (missing.length > 0) throw new Error(`Ceph binaries missing: ${missing.join(', ')}`);
  const dir = await mkdtemp(path.join(tmpdir(), 'vcm-rgw-'));
  const children: ChildProcess[] = [];
  let stopped = false;
  // A worker that exits without its afterAll (a crash, a failed hook) must not leave daemons behind.
  const killOnExit = (): void => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    if (process.env.KEEP_RGW === undefined) rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', killOnExit);
  // A worker killed outright runs no handler: a watchdog shell kills the daemons once this process is gone.
  const watchdog = spawn('sh', ['-c', WATCHDOG, 'vcm-rgw-watchdog', String(process.pid), dir, process.env.KEEP_RGW === undefined ? '0' : '1'], {
    detached: true,
    stdio: 'ignore',
  });
  watchdog.unref();
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    process.removeListener('exit', killOnExit);
    watchdog.kill('SIGKILL');
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await Promise.all(children.map((c) => (c.exitCode === null && c.signalCode === null ? new Promise((r) => c.once('exit', r)) : undefined)));
    if (process.env.KEEP_RGW === undefined) await rm(dir, { recursive: true, force: true });
  };
  try {
    return await boot(dir, children, stop);
  } catch (err) {
    const log = await readFile(path.join(dir, 'log', 'client.rgw.a.log'), 'utf8').catch(() => '');
    await stop();
    throw new Error(`${(err as Error).message}\n${log.slice(-2000)}`, { cause: err });
  }
}

async function boot(dir: string, children: ChildProcess[], stop: () => Promise<void>): Promise<Rgw> {
  // Ports: mon, rgw, then the OSD's range (public, cluster, two heartbeats, spare).
  const base = await freePortBlock(12);
  const monPort = base;
  const rgwPort = base + 1;
  const osdMin = base + 2;
  const osdMax = base + 11;
  const fsid = randomUUID();
  for (const sub of ['run', 'log', 'crash', 'mon', 'osd']) await mkdir(path.join(dir, sub), { recursive: true });
  const conf = path.join(dir, 'ceph.conf');
  const keyring = path.join(dir, 'keyring');
  await writeFile(
    conf,
    `[global]
fsid = ${fsid}
mon host = 127.0.0.1:${monPort}
public addr = 127.0.0.1
auth cluster required = none
auth service required = none
auth client required = none
ms bind msgr2 = false
ms bind ipv6 = false
ms bind port min = ${osdMin}
ms bind port max = ${osdMax}
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
paxos propose interval = 0.01
paxos min wait = 0.01
osd crush update on start = false
osd class update on start = false
osd objectstore = memstore
memstore device bytes = 1073741824
keyring = ${keyring}
run dir = ${dir}/run
admin socket = ${dir}/run/$name.asok
pid file = ${dir}/run/$name.pid
log file = ${dir}/log/$name.log
crash dir = ${dir}/crash
mon data = ${dir}/mon/$name
osd data = ${dir}/osd/$name
log to stderr = false
err to stderr = false

[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:${rgwPort}
rgw crypt s3 kms backend = testing
rgw crypt s3 kms encryption keys = ${Object.entries(KMS_KEYS).map(([k, v]) => `${k}=${v}`).join(' ')}
rgw crypt require ssl = false
rgw enable usage log = false
`,
  );

  const spawnDaemon = (bin: string, args: string[]): ChildProcess => {
    const child = spawn(bin, ['-c', conf, '-f', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
    (child as ChildProcess & { lastStderr: () => string }).lastStderr = () => err;
    children.push(child);
    if (child.pid !== undefined) appendFileSync(path.join(dir, 'daemons.pid'), `${child.pid}\n`);
    return child;
  };
  const deadWhy = (child: ChildProcess, name: string) => (): string | null =>
    child.exitCode !== null || child.signalCode !== null
      ? `${name} exited (${child.exitCode ?? child.signalCode}): ${(child as ChildProcess & { lastStderr: () => string }).lastStderr()}`
      : null;

  // Monitor. --mkfs still wants a keyring with a mon. key even with auth none.
  await run('ceph-authtool', ['--create-keyring', keyring, '--gen-key', '-n', 'mon.', '--cap', 'mon', 'allow *']);
  const monmap = path.join(dir, 'monmap');
  await run('monmaptool', ['--create', '--fsid', fsid, '--addv', 'a', `[v1:127.0.0.1:${monPort}]`, monmap]);
  await run('ceph-mon', ['-c', conf, '--mkfs', '-i', 'a', '--monmap', monmap, '--keyring', keyring]);
  const mon = spawnDaemon('ceph-mon', ['-i', 'a']);

  // OSD placed by hand before it starts (see the notes: avoids the "wrong fsid" start-up race).
  const ceph = (...args: string[]) => run('ceph', ['-c', conf, '--connect-timeout', '20', ...args]);
  const osdUuid = randomUUID();
  const osdId = (await ceph('osd', 'new', osdUuid)).trim();
  if (!/^\d+$/.test(osdId)) throw new Error(`unexpected "ceph osd new" output: ${osdId}`);
  await ceph('osd', 'crush', 'add', `osd.${osdId}`, '1.0', 'host=localhost', 'root=default');
  await mkdir(path.join(dir, 'osd', `osd.${osdId}`));
  await run('ceph-osd', ['-c', conf, '-i', osdId, '--mkfs', '--osd-uuid', osdUuid]);
  const osd = spawnDaemon('ceph-osd', ['-i', osdId]);

  // radosgw creates its pools once the OSD is up, then listens.
  const rgw = spawnDaemon('radosgw', ['-n', 'client.rgw.a']);
  const endpoint = `http://127.0.0.1:${rgwPort}`;
  const alive = () => deadWhy(mon, 'ceph-mon')() ?? deadWhy(osd, 'ceph-osd')() ?? deadWhy(rgw, 'radosgw')();
  await waitFor('radosgw did not start', async () => (await fetch(endpoint, { signal: AbortSignal.timeout(1000) })).status === 200, 60_000, alive);

  const accessKeyId = `VCMTEST${randomBytes(6).toString('hex').toUpperCase()}`;
  const secretAccessKey = randomBytes(24).toString('base64url');
  await run('radosgw-admin', ['-c', conf, 'user', 'create', '--uid', 'vcm-test', '--display-name', 'vcm test', '--access-key', accessKeyId, '--secret', secretAccessKey]);

  return {
    endpoint,
    accessKeyId,
    secretAccessKey,
    kmsKeyIds: Object.keys(KMS_KEYS),
    dir,
    stopGateway: async () => {
      if (rgw.exitCode !== null || rgw.signalCode !== null) return;
      const exited = new Promise((r) => rgw.once('exit', r));
      rgw.kill('SIGKILL');
      await exited;
    },
    stop,
  };
}
