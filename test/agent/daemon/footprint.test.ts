// The agent imports only what it uses. A preload records every module the process resolves (CommonJS
// through Module._resolveFilename, ESM through a module.register resolve hook), and each command
// is checked against what it must never load. Those checks run tsc's output, one file per module
// (AGENT_CLI_MODULES); the bundle that ships (AGENT_CLI, agent/bundle.mjs) keeps the same lazy
// imports as chunks, and is checked by what went into it and by what Node loads for its daemon.
import { readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_CLI_MODULES, REPO, runCli, startCollectorProcess, tempDir, type CollectorProcess } from '../../helpers/processes.js';
import { AgentDaemon, enroll } from './harness.js';

const PRELOAD = `
const Module = require('node:module');
const fs = require('node:fs');
const out = process.env.VCM_MODULE_LOG;
const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, parent, ...rest) {
  const file = resolve.call(this, request, parent, ...rest);
  fs.appendFileSync(out, file + '\\n');
  return file;
};
const hook = 'import { appendFileSync } from "node:fs"; export async function resolve(s, c, next) { const r = await next(s, c); appendFileSync(' + JSON.stringify(out) + ', r.url + "\\\\n"); return r; }';
Module.register('data:text/javascript,' + encodeURIComponent(hook));
process.on('exit', () => fs.appendFileSync(out, process.moduleLoadList.map((m) => 'builtin:' + m + '\\n').join('')));
`;

/** Packages (or our own folders) a command must not load. */
const NEVER = ['@aws-sdk', 'prom-client', '@okta/okta-sdk-nodejs', '/dist/collector/app.js', '/dist/collector/store.js', '/dist/collector/metrics.js', '/dist/collector/ingest.js'];

/**
 * Node's own modules only, with no resolve hook: module.register runs its hooks on a worker thread,
 * which would itself load worker_threads into the process it watches.
 */
const PRELOAD_BUILTINS = `
const fs = require('node:fs');
process.on('exit', () => fs.appendFileSync(process.env.VCM_MODULE_LOG, process.moduleLoadList.map((m) => 'builtin:' + m + '\\n').join('')));
`;

let dir: Awaited<ReturnType<typeof tempDir>>;
let preload: string;
let preloadBuiltins: string;

beforeAll(async () => {
  dir = await tempDir('footprint');
  preload = path.join(dir.dir, 'preload.cjs');
  await writeFile(preload, PRELOAD);
  preloadBuiltins = path.join(dir.dir, 'preload-builtins.cjs');
  await writeFile(preloadBuiltins, PRELOAD_BUILTINS);
});
afterAll(async () => {
  await dir.cleanup();
});

async function modulesOf(name: string, run: (env: Record<string, string>) => Promise<unknown>, withPreload = preload): Promise<string[]> {
  const log = path.join(dir.dir, `${name}.modules`);
  await writeFile(log, '');
  await run({ VCM_MODULE_LOG: log, NODE_OPTIONS: `--require ${withPreload}`, VCM_CONFIG: '' });
  return [...new Set((await readFile(log, 'utf8')).split('\n').filter((l) => l !== ''))];
}

function loaded(modules: string[], what: string): string[] {
  return modules.filter((m) => m.includes(what.startsWith('/') ? what : `/node_modules/${what}/`));
}

describe('the agent loads only what it uses', () => {
  it('the preload sees both CommonJS and ESM loads (or this test proves nothing)', async () => {
    const modules = await modulesOf('version', (env) => runCli(AGENT_CLI_MODULES, ['--version'], { env }));
    expect(loaded(modules, 'commander').length).toBeGreaterThan(0);
    expect(modules.some((m) => m.endsWith('/dist/agent/cli.js'))).toBe(true);
  });

  it('vcm-agent check: no HTTP client, no logger, no S3 SDK, no prom-client', async () => {
    const modules = await modulesOf('check', (env) => runCli(AGENT_CLI_MODULES, ['check', '--format', 'json'], { env }));
    for (const p of [...NEVER, 'undici', 'pino', 'node-cron']) expect(loaded(modules, p), p).toEqual([]);
    expect(modules.some((m) => m.endsWith('/dist/checks/index.js'))).toBe(true);
  });

  it('vcm-agent status: no checks, no HTTP client', async () => {
    const modules = await modulesOf('status', (env) => runCli(AGENT_CLI_MODULES, ['status', '--state-dir', path.join(dir.dir, 'none')], { env }));
    // The config validates an Okta org URL, without sso_coverage's schemas (checks/sso_coverage/org-url.ts).
    for (const p of [...NEVER, 'undici', 'node-cron', '/dist/checks/index.js', '/dist/checks/sso_coverage/schema.js']) expect(loaded(modules, p), p).toEqual([]);
    expect(modules.some((m) => m.endsWith('/dist/agent/config.js'))).toBe(true);
  });

  describe('the daemon, through a full cycle with delivery', () => {
    let collector: CollectorProcess;
    beforeAll(async () => {
      collector = await startCollectorProcess(path.join(dir.dir, 'store'));
    });
    afterAll(async () => {
      await collector.stop();
    });

    it('loads undici (lazily, to deliver) but never the S3 SDK, prom-client, Okta SDK or collector internals', async () => {
      const stateDir = path.join(dir.dir, 'agent');
      await enroll(collector.url, path.join(dir.dir, 'store'), stateDir);
      const modules = await modulesOf('daemon', async (env) => {
        const daemon = new AgentDaemon(['--state-dir', stateDir], env, AGENT_CLI_MODULES);
        await daemon.waitDrained();
        expect((await daemon.stop()).code).toBe(0);
      });
      for (const p of NEVER) expect(loaded(modules, p), p).toEqual([]);
      expect(loaded(modules, 'undici').length).toBeGreaterThan(0);
      expect(loaded(modules, 'node-cron').length).toBeGreaterThan(0);
      // Only undici's Agent and request API: not its index (fetch, WebSocket, cache), whose cookie
      // module would make Node load its own bundled undici as well.
      expect(modules.filter((m) => m.endsWith('/node_modules/undici/index.js') || m.includes('/node_modules/undici/lib/web/'))).toEqual([]);
      expect(modules).toContain('builtin:NativeModule http');
      expect(modules.filter((m) => m.startsWith('builtin:') && m.includes('internal/deps/undici'))).toEqual([]);
      // Nothing the daemon does not need: enrollment, the fixture recorder, the table printer.
      for (const p of ['/dist/agent/enroll.js', '/dist/checks/replay.js', '/dist/agent/format.js']) expect(loaded(modules, p), p).toEqual([]);
    }, 60_000);
  });
});

describe('the shipped bundle (dist/vcm-agent, agent/bundle.mjs)', () => {
  interface Meta {
    outputs: Record<string, { inputs: Record<string, { bytesInOutput: number }>; imports: { path: string; kind: string; external?: boolean }[] }>;
  }
  const meta = JSON.parse(readFileSync(path.join(REPO, 'dist/vcm-agent/meta.json'), 'utf8')) as Meta;
  /** Every source file with code in the bundle, as a path from the repository. */
  const inputs = [...new Set(Object.values(meta.outputs).flatMap((o) => Object.entries(o.inputs).filter(([, i]) => i.bytesInOutput > 0).map(([p]) => `/${p}`)))];

  it('holds no S3 SDK, prom-client, Okta SDK or collector internals, and no zod locale but English', () => {
    expect(inputs.some((i) => i.includes('/node_modules/zod/'))).toBe(true); // or this test proves nothing
    for (const p of NEVER) expect(inputs.filter((i) => i.includes(p.startsWith('/') ? p.slice('/dist'.length) : `/node_modules/${p}/`)), p).toEqual([]);
    expect(inputs.filter((i) => i.includes('/zod/v4/locales/') && !i.endsWith('/en.js'))).toEqual([]);
  });

  it('imports the Okta SDK only lazily, from outside the bundle', () => {
    const okta = Object.values(meta.outputs).flatMap((o) => o.imports.filter((i) => i.path.startsWith('@okta/')));
    expect(okta.length).toBeGreaterThan(0);
    for (const i of okta) expect(i).toMatchObject({ kind: 'dynamic-import', external: true });
  });

  it('its daemon loads neither HTTP/2 nor worker threads, and no second undici', async () => {
    const collector = await startCollectorProcess(path.join(dir.dir, 'bundle-store'));
    try {
      const stateDir = path.join(dir.dir, 'bundle-agent');
      await enroll(collector.url, path.join(dir.dir, 'bundle-store'), stateDir);
      const modules = await modulesOf('bundle-daemon', async (env) => {
        const daemon = new AgentDaemon(['--state-dir', stateDir], env);
        await daemon.waitDrained();
        expect(daemon.lines.filter((l) => l.msg === 'check done').length).toBeGreaterThan(0);
        expect((await daemon.stop()).code).toBe(0);
      }, preloadBuiltins);
      expect(modules).toContain('builtin:NativeModule http'); // or this test proves nothing
      for (const never of ['http2', 'worker_threads', 'internal/worker', 'tls']) expect(modules, never).not.toContain(`builtin:NativeModule ${never}`);
      expect(modules.filter((m) => m.startsWith('builtin:') && m.includes('internal/deps/undici'))).toEqual([]);
    } finally {
      await collector.stop();
    }
  }, 60_000);
});
