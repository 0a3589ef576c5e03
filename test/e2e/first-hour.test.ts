// A new user's first hour (#16), on a clean clone: install as README says (npm ci, npm link into a
// private prefix), the demo (`npm start`), its printed hint run exactly as printed, the CLIs on
// PATH, and a second demo on another port while something else holds 8470: the demo agent must
// talk to the demo's own collector, and nothing reaches the squatter. README's TLS deployment has
// its own test (first-deployment.test.ts). Uses the README's ports, 8470 and 8471.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage } from 'node:http';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO, tempDir } from '../helpers/processes.js';

const readme = readFileSync(path.join(REPO, 'README.md'), 'utf8');

interface Run {
  code: number | null;
  out: string;
}

function sh(command: string, cwd: string, env: NodeJS.ProcessEnv, timeoutMs = 300_000): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn('bash', ['-e', '-c', command], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

/** `npm start …` until the demo says it serves; then Ctrl-C, as a user would. */
async function demo(cwd: string, env: NodeJS.ProcessEnv, args: string[] = []): Promise<{ out: string; code: number | null }> {
  const child = spawn('npm', ['start', ...(args.length > 0 ? ['--', ...args] : [])], { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const serving = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the demo did not start serving:\n${out}`)), 180_000);
    const onData = (d: Buffer) => {
      out += d.toString();
      if (out.includes('serving until Ctrl-C')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', () => {
      clearTimeout(timer);
      reject(new Error(`the demo exited before serving:\n${out}`));
    });
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  try {
    await serving;
    // Run the hints while it serves, then stop it as Ctrl-C would (the whole process group).
    return { out, code: null };
  } finally {
    process.kill(-child.pid!, 'SIGINT');
    await exited;
  }
}

describe("a new user's first hour, on a clean clone", () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let clone = '';
  let env: NodeJS.ProcessEnv = {};
  let install: Run = { code: null, out: '' };

  beforeAll(async () => {
    dir = await tempDir('first-hour');
    clone = path.join(dir.dir, 'vcm');
    execFileSync('git', ['clone', '-q', REPO, clone]);
    const prefix = path.join(dir.dir, 'npm-global');
    // npm link installs into npm's global prefix: a private one here, as README's
    // `npm config set prefix` advice gives a user without root.
    env = { ...process.env, npm_config_prefix: prefix, PATH: `${path.join(prefix, 'bin')}:${process.env.PATH ?? ''}`, VCM_CONFIG: '' };
    const step = /```sh\n(npm ci && npm run build && npm link)[^\n]*\n```/.exec(readme)?.[1];
    expect(step, "README's install step").toBeDefined();
    install = await sh(step!, clone, env);
  }, 600_000);

  afterAll(async () => {
    await dir.cleanup();
  });

  it('installs as README says, and puts both CLIs on PATH', async () => {
    expect(install.code, install.out).toBe(0);
    for (const cli of ['vcm-agent', 'vcm-collector']) {
      const r = await sh(`command -v ${cli} && ${cli} --version`, dir.dir, env);
      expect(r.code, r.out).toBe(0);
      expect(r.out).toContain(path.join(dir.dir, 'npm-global', 'bin', cli));
    }
  });

  it('npm start runs the demo: a table of this host\'s results, each accepted, and hints that work as printed', async () => {
    const { out } = await demo(clone, env);
    expect(out).toMatch(/CHECK\s+STATUS\s+SENT\s+DETAIL/);
    expect(out).toMatch(/^vpn\s+\S+\s+accepted/m);
    expect(out).toContain('collector listening on http://127.0.0.1:8470');
    const hint = /^status:\s+(npx vcm-agent status .*)$/m.exec(out)?.[1];
    expect(hint, out).toBeDefined();
    // After the demo stopped, the hint still reads the agent's state.
    const status = await sh(hint!, clone, env);
    expect(status.code, status.out).toBe(0);
    expect(status.out).toMatch(/enrolled to\s+http:\/\/127\.0\.0\.1:8470/);
    // And with the CLIs on PATH, without npx.
    const onPath = await sh(hint!.replace(/^npx /, ''), clone, env);
    expect(onPath.code, onPath.out).toBe(0);
  }, 300_000);

  it('with 8470 taken by another server, `npm start -- --listen 127.0.0.1:8471` works, and nothing reaches the other server', async () => {
    const seen: string[] = [];
    const squatter = createServer((req: IncomingMessage, res) => {
      seen.push(`${req.method} ${req.url}`);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"results":[]}');
    });
    await new Promise<void>((resolve) => squatter.listen(8470, '127.0.0.1', resolve));
    try {
      expect(readme).toContain('npm start -- --listen 127.0.0.1:8471');
      const { out } = await demo(clone, env, ['--listen', '127.0.0.1:8471']);
      expect(out).toContain('collector listening on http://127.0.0.1:8471');
      expect(out).toContain('agent already enrolled');
      expect(out).toMatch(/^vpn\s+\S+\s+accepted/m);
      expect(out).not.toContain('the agent cycle exited with');
      expect(seen).toEqual([]);
    } finally {
      await new Promise<void>((resolve) => squatter.close(() => resolve()));
    }
  }, 300_000);

  it('the agent enrolled by the demo refuses the squatter if pointed at it, and sends it nothing', async () => {
    const seen: string[] = [];
    const squatter = createServer((req: IncomingMessage, res) => {
      seen.push(`${req.method} ${req.url?.split('?')[0]}`);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"results":[]}');
    });
    await new Promise<void>((resolve) => squatter.listen(8470, '127.0.0.1', resolve));
    try {
      const run = await sh('vcm-agent run --once --state-dir data/demo-agent', clone, env);
      expect(run.code, run.out).toBe(2);
      expect(run.out).toMatch(/AGT_ERR_COLLECTOR_UNVERIFIED: \d+ result\(s\) wait in the spool/);
      expect(seen.filter((s) => s.startsWith('POST'))).toEqual([]);
    } finally {
      await new Promise<void>((resolve) => squatter.close(() => resolve()));
    }
    expect(existsSync(path.join(clone, 'data', 'demo-agent', 'spool'))).toBe(true);
  }, 120_000);
});
