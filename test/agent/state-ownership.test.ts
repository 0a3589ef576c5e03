// The agent refuses a state directory someone else could change (#17, low): group- or
// world-writable, a symlink, or a key file others can read. Whoever can write there could plant
// spool files or swap the key the agent signs with. A real collector and the agent's CLI.
import { chmod, rename, symlink } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_CLI, COLLECTOR_CLI, runCli, startCollectorProcess, tempDir, type CollectorProcess } from '../helpers/processes.js';

describe('the state directory must be the agent user\'s alone', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let collector: CollectorProcess;
  let state: string;
  const env = { VCM_CONFIG: '' };

  beforeAll(async () => {
    dir = await tempDir('state-owner');
    const store = path.join(dir.dir, 'store');
    collector = await startCollectorProcess(store);
    state = path.join(dir.dir, 'agent');
    const token = (await runCli(COLLECTOR_CLI, ['token', 'create', '--vendor', 'acme', '--data-dir', store])).stdout.trim();
    const enrolled = await runCli(AGENT_CLI, ['enroll', '--collector', collector.url, '--token', token, '--state-dir', state], { env });
    expect(enrolled.code, enrolled.stderr).toBe(0);
  }, 60_000);
  afterAll(async () => {
    await collector.stop();
    await dir.cleanup();
  });

  it.runIf(process.platform !== 'win32')('refuses a group- or world-writable directory, a symlinked one, and a readable key, with AGT_ERR_STATE; runs once fixed', async () => {
    await chmod(state, 0o777);
    let run = await runCli(AGENT_CLI, ['run', '--once', '--state-dir', state], { env });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(`AGT_ERR_STATE: ${state} is writable by its group (mode 777) (chown it to this user and chmod 700 ${state})`);
    await chmod(state, 0o702);
    run = await runCli(AGENT_CLI, ['run', '--once', '--state-dir', state], { env });
    expect(run.stderr).toContain(`AGT_ERR_STATE: ${state} is writable by others (mode 702)`);
    await chmod(state, 0o700);

    await chmod(path.join(state, 'agent-ed25519.pem'), 0o644);
    run = await runCli(AGENT_CLI, ['run', '--once', '--state-dir', state], { env });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('readable or writable by others (mode 644); chmod 600 it');
    await chmod(path.join(state, 'agent-ed25519.pem'), 0o600);

    const real = path.join(dir.dir, 'real-state');
    await rename(state, real);
    await symlink(real, state);
    run = await runCli(AGENT_CLI, ['run', '--once', '--state-dir', state], { env });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(`AGT_ERR_STATE: ${state} is a symbolic link`);

    run = await runCli(AGENT_CLI, ['run', '--once', '--state-dir', real], { env });
    expect(run.code, run.stderr).toBe(0);
  }, 60_000);
});
