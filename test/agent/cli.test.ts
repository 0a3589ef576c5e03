// The agent CLI as a user runs it (built dist/, real process).
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ReplayHostIO } from '../../checks/replay.js';
import { runCheck } from '../../checks/runner.js';
import { checkById } from '../../checks/index.js';
import { CHECK_IDS } from '../../checks/types.js';
import { AGENT_VERSION } from '../../agent/version.js';
import { AGENT_CLI, COLLECTOR_CLI, REPO, runCli, tempDir } from '../helpers/processes.js';

describe('vcm-agent CLI', () => {
  it('has --help on every command, and so does vcm-collector', async () => {
    for (const [cli, cmds] of [
      [AGENT_CLI, [[], ['check'], ['enroll'], ['run'], ['status']]],
      [COLLECTOR_CLI, [[], ['serve'], ['token'], ['token', 'create'], ['demo']]],
    ] as const) {
      for (const cmd of cmds) {
        const res = await runCli(cli, [...cmd, '--help']);
        expect(res.code, `${cmd.join(' ')} --help`).toBe(0);
        expect(res.stdout).toMatch(/^Usage: vcm-(agent|collector)/);
      }
    }
  });

  it('reports the package version', async () => {
    const pkg = JSON.parse(await readFile(path.join(REPO, 'package.json'), 'utf8')) as { version: string };
    expect(AGENT_VERSION).toBe(pkg.version);
    expect((await runCli(AGENT_CLI, ['--version'])).stdout.trim()).toBe(pkg.version);
  });

  it('check --format json prints an array of findings with check and status, and sends nothing', async () => {
    const res = await runCli(AGENT_CLI, ['check', '--format', 'json']);
    expect(res.code, res.stderr).toBe(0);
    const findings = JSON.parse(res.stdout) as { check: string; status: string; reasons: { code: string }[] }[];
    expect(findings.map((f) => f.check).sort()).toEqual([...CHECK_IDS].sort());
    for (const f of findings) {
      expect(['pass', 'fail', 'unknown']).toContain(f.status);
      if (f.status === 'unknown') expect(f.reasons[0]?.code).toMatch(/^CHK_ERR_/);
    }
  });

  it('check prints a table by default, and runs only the checks named', async () => {
    const res = await runCli(AGENT_CLI, ['check', 'open_ports']);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout.split('\n')[0]).toMatch(/^CHECK\s+STATUS\s+DETAIL/);
    expect(res.stdout).toContain('open_ports');
    expect(res.stdout).not.toContain('disk_encryption');
  });

  it('refuses an unknown check id with a stable code', async () => {
    const res = await runCli(AGENT_CLI, ['check', 'bogus']);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('AGT_ERR_UNKNOWN_CHECK');
  });

  it('--root reads the host under a prefix: an empty root is unknown, never pass', async () => {
    const root = await tempDir('root');
    try {
      const res = await runCli(AGENT_CLI, ['check', '--root', root.dir, '--format', 'json']);
      const findings = JSON.parse(res.stdout) as { check: string; status: string; reasons: { code: string }[] }[];
      expect(findings).toHaveLength(CHECK_IDS.length);
      for (const f of findings) {
        expect(f.status, f.check).toBe('unknown');
        expect(f.reasons[0]?.code, f.check).toMatch(/^CHK_ERR_/);
        if (f.check === 'disk_encryption' || f.check === 'open_ports') expect(f.reasons[0]?.code).toBe('CHK_ERR_SOURCE_MISSING');
      }
    } finally {
      await root.cleanup();
    }
  });

  it('--root reads a fixture tree: a host with one wildcard listener fails open_ports', async () => {
    const root = await tempDir('root');
    try {
      await mkdir(path.join(root.dir, 'proc/net'), { recursive: true });
      const header = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n';
      await writeFile(path.join(root.dir, 'proc/net/tcp'), `${header}   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0\n`);
      await writeFile(path.join(root.dir, 'proc/net/udp'), header);
      const res = await runCli(AGENT_CLI, ['check', 'open_ports', '--root', root.dir, '--format', 'json']);
      const [f] = JSON.parse(res.stdout) as { status: string; facts: { listeners: { port: number; scope: string }[] } }[];
      expect(f?.status).toBe('fail');
      expect(f?.facts.listeners).toEqual([expect.objectContaining({ port: 8080, scope: 'wildcard' })]);
    } finally {
      await root.cleanup();
    }
  });

  it('--record writes a fixture that replays to the same finding', async () => {
    const out = await tempDir('record');
    try {
      const res = await runCli(AGENT_CLI, ['check', 'disk_encryption', '--format', 'json', '--record', out.dir]);
      expect(res.code, res.stderr).toBe(0);
      const [live] = JSON.parse(res.stdout) as { status: string; facts: unknown }[];
      const io = await ReplayHostIO.load(out.dir);
      const replayed = await runCheck(checkById('disk_encryption')!, { io });
      io.assertComplete();
      expect(replayed.status).toBe(live?.status);
      expect(replayed.facts).toEqual(live?.facts);
    } finally {
      await out.cleanup();
    }
  });

  it('--list-sources names every file each check may read, per platform', async () => {
    const res = await runCli(AGENT_CLI, ['check', '--list-sources']);
    expect(res.code).toBe(0);
    for (const p of ['/proc/net/tcp', '/proc/net/udp6', '/proc/1/mountinfo', '/proc/swaps']) expect(res.stdout).toContain(p);
    for (const id of CHECK_IDS) expect(res.stdout).toContain(`${id} (`);
    expect(res.stdout).toMatch(/^ {2}darwin:/m);
    expect(res.stdout).toMatch(/^ {2}win32:/m);
  });

  it('refuses plain HTTP to a collector that is not on loopback, before any connection', async () => {
    const state = await tempDir('state');
    try {
      const res = await runCli(AGENT_CLI, ['enroll', '--collector', 'http://collector.invalid:8470', '--token', 'x', '--state-dir', state.dir]);
      expect(res.code).toBe(2);
      expect(res.stderr).toContain('AGT_ERR_INSECURE_URL');
    } finally {
      await state.cleanup();
    }
  });

  it('run --once without an enrollment says so', async () => {
    const state = await tempDir('state');
    try {
      const res = await runCli(AGENT_CLI, ['run', '--once', '--state-dir', state.dir]);
      expect(res.code).toBe(2);
      expect(res.stderr).toContain('AGT_ERR_NOT_ENROLLED');
    } finally {
      await state.cleanup();
    }
  });
});
