// Both CLIs as the README pipes them (`vcm-collector key fingerprint … | head -n 1`): when the
// reader of stdout has gone, the command stops quietly with its own exit code, as Unix tools do,
// instead of crashing on EPIPE with a stack trace. The pipe is closed before the CLI writes.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { AGENT_CLI, COLLECTOR_CLI, startCollectorProcess, tempDir } from '../helpers/processes.js';

/** Runs `cli args` with stdout closed at once: its exit code and what it wrote to stderr. */
function withClosedStdout(cli: string, args: string[]): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.destroy();
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stderr })));
}

describe('a CLI whose stdout reader has gone', () => {
  it('vcm-collector key fingerprint stops quietly with exit 0', async () => {
    const data = await tempDir('closed-stdout');
    try {
      const store = path.join(data.dir, 'store');
      await (await startCollectorProcess(store)).stop();
      const res = await withClosedStdout(COLLECTOR_CLI, ['key', 'fingerprint', '--data-dir', store]);
      expect(res.stderr).toBe('');
      expect(res.code).toBe(0);
    } finally {
      await data.cleanup();
    }
  });

  it('vcm-agent check --list-sources stops quietly with exit 0', async () => {
    const res = await withClosedStdout(AGENT_CLI, ['check', '--list-sources']);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
  });
});
