// Builds the agent as shipped: dist/vcm-agent/, bundled and minified from tsc's dist/agent/cli.js.
// `npm run build` runs it after tsc.
//
// Why a bundle: the agent runs for months on someone else's machines, and its idle RSS is a
// target (issue 5, agent/README.md "Footprint"). Loaded as separate files, zod alone is about 120 ES
// modules (80 of them locales the agent never uses) and every source file stays in memory with its
// comments. Bundled, only what is imported is kept, minified. Splitting keeps the CLI's lazy
// commands lazy: `vcm-agent status` still loads no check code, and a host without sso_coverage
// never loads the Okta SDK, which stays outside the bundle (it is loaded only where Okta is read).
//
// Two Node modules that only idle in the agent's memory are answered from here, each the way its
// package already expects:
// - node:http2, for undici's client-h2.js: it reads only `http2.constants` when loaded, and falls
//   back to `{ constants: {} }` itself when Node has no http2. The agent never speaks HTTP/2
//   (undici's allowH2 stays off), so the fallback is what it gets.
// - worker_threads, for pino's tools.js, which reads `isMainThread`: the daemon logs from its main
//   thread. thread-stream (pino's transports in worker threads) is replaced by a module that
//   throws: the agent logs to stdout and starts no transport.
// test/agent/daemon/footprint.test.ts checks what the bundle holds and what the daemon loads.
import { build } from 'esbuild';
import { chmod, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const outdir = path.join(root, 'dist/vcm-agent');

const STUBS = {
  http2: 'module.exports = { constants: {} };',
  'worker-threads': 'module.exports = { isMainThread: true };',
  'thread-stream': "module.exports = function ThreadStream() { throw new Error('pino transports are not part of the agent: it logs to stdout'); };",
};

/** [importer (a path inside node_modules), request] → stub name. */
function stubFor(importer, request) {
  const from = importer.split(path.sep).join('/');
  if (request === 'node:http2' && from.endsWith('/undici/lib/dispatcher/client-h2.js')) return 'http2';
  if (request === 'worker_threads' && from.endsWith('/pino/lib/tools.js')) return 'worker-threads';
  if (request === 'thread-stream' && from.endsWith('/pino/lib/transport.js')) return 'thread-stream';
  return null;
}

const stubs = {
  name: 'vcm-agent-stubs',
  setup(b) {
    b.onResolve({ filter: /^(node:http2|worker_threads|thread-stream)$/ }, (args) => {
      const stub = stubFor(args.importer, args.path);
      return stub === null ? undefined : { path: stub, namespace: 'vcm-stub' };
    });
    b.onLoad({ filter: /.*/, namespace: 'vcm-stub' }, (args) => ({ contents: STUBS[args.path], loader: 'js' }));
  },
};

await rm(outdir, { recursive: true, force: true });
const result = await build({
  entryPoints: { cli: path.join(root, 'dist/agent/cli.js') },
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20.19',
  minify: true,
  // Class and function names stay readable in logged errors.
  keepNames: true,
  sourcemap: 'linked',
  sourcesContent: false,
  metafile: true,
  legalComments: 'none',
  external: ['@okta/okta-sdk-nodejs', '@okta/okta-sdk-nodejs/*'],
  // The bundled CommonJS packages (undici, pino, commander) call require() for Node's modules.
  banner: { js: "import { createRequire as __vcmRequire } from 'node:module'; const require = __vcmRequire(import.meta.url);" },
  plugins: [stubs],
  logLevel: 'warning',
});
// What went into each file, for the footprint test (and anyone asking what the agent ships).
await writeFile(path.join(outdir, 'meta.json'), JSON.stringify(result.metafile));
await chmod(path.join(outdir, 'cli.js'), 0o755);
