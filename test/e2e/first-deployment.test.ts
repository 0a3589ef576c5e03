// README's "first real deployment", run as pasted (#16): openssl makes a CA and a server
// certificate, the collector serves HTTPS with /metrics behind a bearer token, one agent enrolls
// over HTTPS pinning the CA and the collector key's fingerprint, and a real Prometheus scrapes
// the collector. The block is taken from README.md and run by bash in an empty folder, with the
// two CLIs on PATH as `npm link` puts them there. It listens on the README's own ports (8443 and
// 9090); a machine where they are taken fails here, saying so.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir, symlink } from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_CLI, COLLECTOR_CLI, REPO, runCli, tempDir } from '../helpers/processes.js';

const readme = readFileSync(path.join(REPO, 'README.md'), 'utf8');
const block = /<!-- first-deployment -->\n```sh\n([\s\S]*?)```/.exec(readme)?.[1];

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const got = await probe().catch(() => undefined);
    if (got !== undefined) return got;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

const prometheus = ['/usr/bin/prometheus', '/usr/local/bin/prometheus'].find((p) => existsSync(p));

describe("README's first real deployment, pasted into a shell", () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let group: number | undefined;
  let out = '';
  let code: number | null = null;

  beforeAll(async () => {
    dir = await tempDir('first-deployment');
    const bin = path.join(dir.dir, 'bin');
    await mkdir(bin);
    // As npm link does: the targets are made executable (tsc writes dist/collector/cli.js 0644).
    await chmod(AGENT_CLI, 0o755);
    await chmod(COLLECTOR_CLI, 0o755);
    await symlink(AGENT_CLI, path.join(bin, 'vcm-agent'));
    await symlink(COLLECTOR_CLI, path.join(bin, 'vcm-collector'));
    const work = path.join(dir.dir, 'work');
    await mkdir(work);
    for (const port of [8443, 9090]) if (!(await portFree(port))) throw new Error(`port ${port} is taken on this machine; the README's block listens there`);
    const child = spawn('bash', ['-e', '-c', block!], {
      cwd: work,
      detached: true,
      env: { ...process.env, PATH: `${bin}:${path.dirname(prometheus ?? '/usr/bin/prometheus')}:${process.env.PATH ?? ''}`, VCM_CONFIG: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    group = child.pid;
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    // Under a loaded machine the block can take minutes; past 240 s it is stopped and its output shown.
    const stuck = setTimeout(() => {
      out += '\n[stopped after 240 s]';
      child.kill('SIGKILL');
    }, 240_000);
    code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    clearTimeout(stuck);
  }, 300_000);

  afterAll(async () => {
    // The block leaves the collector and Prometheus running in the background, as a user's shell would.
    if (group !== undefined) {
      try {
        process.kill(-group, 'SIGTERM');
      } catch {
        // already gone
      }
    }
    await new Promise((r) => setTimeout(r, 1000));
    await dir.cleanup();
  });

  it('is in the README', () => {
    expect(block, 'README.md has a <!-- first-deployment --> sh block').toBeDefined();
    expect(prometheus, 'prometheus is installed (.ci/run installs it)').toBeDefined();
  });

  it('runs to the end: enrolled over HTTPS with the fingerprint, one cycle delivered, status shown', () => {
    expect(code, out).toBe(0);
    expect(out).toMatch(/enrolled \S+ as agent [0-9a-f]{64} for vendor acme at https:\/\/localhost:8443/);
    expect(out).toMatch(/vpn\s+\S+\s+accepted/);
    // Nothing on the way crashed, even where the block's own exit code would not show it (a pipe).
    expect(out).not.toMatch(/^\s+at .+:\d+:\d+\)?$/m);
    expect(out).not.toMatch(/EPIPE|Unhandled 'error' event/);
  });

  it('/metrics refuses a request without the token, and answers the token from the file', async () => {
    const work = path.join(dir.dir, 'work');
    const curl = (args: string[]) =>
      new Promise<{ code: number | null; out: string }>((resolve) => {
        const c = spawn('curl', ['-s', '--cacert', path.join(work, 'ca.pem'), ...args]);
        let text = '';
        c.stdout.on('data', (d: Buffer) => (text += d.toString()));
        c.once('exit', (x) => resolve({ code: x, out: text }));
      });
    const refused = await curl(['https://localhost:8443/metrics']);
    expect(refused.out).toContain('COL_ERR_UNAUTHORIZED');
    const token = readFileSync(path.join(work, 'metrics.token'), 'utf8').trim();
    const ok = await curl(['-H', `Authorization: Bearer ${token}`, 'https://localhost:8443/metrics']);
    expect(ok.out).toMatch(/^vcm_control_hosts\{/m);
  });

  it('Prometheus scrapes the collector over TLS with the token: the target is up and the controls are there', async () => {
    const query = async (q: string) => {
      const res = await fetch(`http://127.0.0.1:9090/api/v1/query?query=${encodeURIComponent(q)}`);
      return ((await res.json()) as { data: { result: { metric: Record<string, string>; value: [number, string] }[] } }).data.result;
    };
    const up = await until('the vcm target to be scraped', 60_000, async () => {
      const r = await query('up{job="vcm"}');
      return r.length > 0 ? r : undefined;
    });
    expect(up.map((r) => r.value[1])).toEqual(['1']);
    const controls = await query('count by (control) (vcm_control_hosts{vendor="acme"})');
    expect(controls.map((r) => r.metric.control).sort()).toEqual(['credential_age', 'disk_encryption', 'open_ports', 'usb_policy', 'vpn']);
  }, 90_000);

  it('the agent remembers the CA it enrolled with: a second run needs no flag', async () => {
    const run = await runCli(AGENT_CLI, ['run', '--once', '--state-dir', path.join(dir.dir, 'work', 'vcm-agent')], { env: { VCM_CONFIG: '' } });
    expect(run.code, run.stderr).toBe(0);
  }, 60_000);
});
