// The launchd plist's supervisor (agent/launchd/dev.vcm.agent.plist). launchd's KeepAlive restarts
// on every non-zero exit and cannot exempt one, so the plist runs the agent under a few lines of
// sh that turn exit 2 (configuration or enrollment: a restart cannot fix it) into 0, and pass
// SIGTERM on. launchd is not here; the test runs the plist's own ProgramArguments under this
// machine's /bin/sh (dash, stricter than the bash macOS runs as sh), with the real agent for the
// configuration error and small node programs standing in for the agent's other exits.
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { AGENT_CLI, REPO, runCommand } from '../helpers/processes.js';

/** The plist's ProgramArguments, with XML entities undone. */
async function programArguments(): Promise<string[]> {
  const xml = await readFile(path.join(REPO, 'agent/launchd/dev.vcm.agent.plist'), 'utf8');
  const array = /<key>ProgramArguments<\/key>\s*<array>([\s\S]*?)<\/array>/.exec(xml)?.[1];
  if (array === undefined) throw new Error('no ProgramArguments in the plist');
  return [...array.matchAll(/<string>([\s\S]*?)<\/string>/g)].map((m) => m[1]!.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&'));
}

/** The supervisor part (everything before node), running `program` instead of the agent. */
async function supervised(program: string[]): Promise<[string, string[]]> {
  const args = await programArguments();
  const node = args.indexOf('/usr/local/bin/node');
  expect(node).toBeGreaterThan(0);
  return [args[0]!, [...args.slice(1, node), ...program]];
}

describe('the launchd plist', () => {
  it('runs the shipped agent bundle with run --config', async () => {
    const args = await programArguments();
    expect(args.slice(args.indexOf('/usr/local/bin/node') + 1).filter((a) => !a.startsWith('--'))).toEqual(['/usr/local/lib/vcm/dist/vcm-agent/cli.js', 'run', '/Library/Application Support/vcm-agent/config.json']);
  });

  it('turns the real agent\'s configuration error (exit 2) into 0, which KeepAlive leaves down, with the error still on stderr', async () => {
    const [sh, args] = await supervised([process.execPath, AGENT_CLI, 'run', '--config', '/nonexistent/vcm-agent.json']);
    const res = await runCommand(sh, args, {});
    expect(res.stderr).toMatch(/^vcm-agent: AGT_ERR_CONFIG: /m);
    expect(res.code).toBe(0);
  });

  it('keeps every other exit: 75 (the watchdog) and 1 (a crash) are restarted, 0 stays 0', async () => {
    for (const code of [75, 1, 0]) {
      const [sh, args] = await supervised([process.execPath, '-e', `process.exit(${code})`]);
      expect((await runCommand(sh, args, {})).code, `exit ${code}`).toBe(code);
    }
  });

  it('passes SIGTERM (launchctl bootout) to the agent and exits with what the agent exits with', async () => {
    // A stand-in that finishes its "check in flight" for 300 ms after SIGTERM, then exits 0.
    const program = "process.on('SIGTERM', () => { console.log('got SIGTERM'); setTimeout(() => process.exit(0), 300); }); console.log('ready'); setInterval(() => {}, 1000);";
    const [sh, args] = await supervised([process.execPath, '-e', program]);
    const child = spawn(sh, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    await new Promise<void>((resolve) => child.stdout.on('data', () => out.includes('ready') && resolve()));
    child.kill('SIGTERM');
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    expect(out).toContain('got SIGTERM');
    expect(code).toBe(0);
  });
});
