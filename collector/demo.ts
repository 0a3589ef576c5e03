// `npm start`: a collector on ./data and a real agent on this machine, enrolled to it, one cycle.
// The agent runs as its own process through its CLI, exactly as a user would run it.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { parseCollectorConfig, startCollector } from './server.js';
import { createToken } from './tokens.js';

function runAgent(args: string[], env: NodeJS.ProcessEnv = {}): Promise<number> {
  const cli = fileURLToPath(new URL('../vcm-agent/cli.js', import.meta.url));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, ...args], { stdio: 'inherit', env: { ...process.env, ...env } });
    child.once('error', reject);
    child.once('exit', (code) => resolve(code ?? 1));
  });
}

export async function runDemo(opts: { dataDir: string; listen: string; vendor: string; wait: boolean }): Promise<void> {
  const dataDir = path.resolve(opts.dataDir);
  const logFile = path.join(dataDir, 'logs', 'collector.log');
  await mkdir(path.dirname(logFile), { recursive: true });
  const log = pino({ level: 'info', base: { service: 'vcm-collector' } }, pino.destination({ dest: logFile, sync: true }));
  const config = parseCollectorConfig({ dataDir, listen: opts.listen, logLevel: 'info' });
  const collector = await startCollector(config, { log });
  const stateDir = path.join(dataDir, 'demo-agent');
  const out = (line = '') => process.stdout.write(`${line}\n`);

  out(`collector listening on ${collector.url} (store: ${dataDir}, log: ${logFile})`);
  if (!existsSync(path.join(stateDir, 'identity.json'))) {
    const { token } = await createToken(collector.store, { vendor: opts.vendor, ttlSeconds: 600 });
    // The token goes through the environment, not argv, so that it does not show in `ps`.
    const code = await runAgent(['enroll', '--collector', collector.url, '--state-dir', stateDir], { VCM_ENROLL_TOKEN: token });
    if (code !== 0) throw new Error(`agent enrollment failed (exit ${code})`);
  } else {
    out(`agent already enrolled in ${stateDir}`);
  }
  out();
  // The demo agent talks to this collector, wherever it listens now: an agent enrolled by an
  // earlier demo on another port would otherwise send to whatever answers there (and refuse it,
  // since nothing else holds this store's collector key).
  const code = await runAgent(['run', '--once', '--state-dir', stateDir], { VCM_COLLECTOR_URL: collector.url });
  out();
  out(`metrics:   ${collector.url}/metrics`);
  out(`evidence:  ${path.join(dataDir, 'evidence')}`);
  out(`agent:     ${stateDir}`);
  out(`status:    npx vcm-agent status --state-dir ${path.relative(process.cwd(), stateDir) || '.'}`);
  if (code !== 0) out(`the agent cycle exited with ${code}; see the messages above`);
  if (!opts.wait) {
    await collector.close();
    process.exitCode = code;
    return;
  }
  out();
  out('serving until Ctrl-C');
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await collector.close();
}
