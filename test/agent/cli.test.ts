// The agent CLI as a user runs it (built dist/, real process).
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ReplayHostIO } from '../../checks/replay.js';
import { runCheck } from '../../checks/runner.js';
import { checkById } from '../../checks/index.js';
import { CHECK_IDS } from '../../checks/types.js';
import { AGENT_VERSION } from '../../agent/version.js';
import { AGENT_CLI, COLLECTOR_CLI, REPO, runCli, runOnTerminal, tempDir, type CliResult } from '../helpers/processes.js';

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
    const findings = JSON.parse(res.stdout) as { check: string; status: string; reasons: { code: string }[] }[];
    expect(res.code, res.stderr).toBe(findings.every((f) => f.status === 'pass') ? 0 : 3);
    expect(findings.map((f) => f.check).sort()).toEqual([...CHECK_IDS].sort());
    for (const f of findings) {
      expect(['pass', 'fail', 'unknown']).toContain(f.status);
      if (f.status === 'unknown') expect(f.reasons[0]?.code).toMatch(/^CHK_ERR_/);
    }
  });

  it('check prints a table by default, and runs only the checks named', async () => {
    const res = await runCli(AGENT_CLI, ['check', 'open_ports']);
    expect(res.code, res.stderr).toBe(/^open_ports\s+PASS\s/m.test(res.stdout) ? 0 : 3);
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
      const [live] = JSON.parse(res.stdout) as { status: string; facts: unknown }[];
      expect(res.code, res.stderr).toBe(live?.status === 'pass' ? 0 : 3);
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

/** The commands `vcm-agent --help` lists (its Commands section), without commander's `help`. */
async function agentCommands(): Promise<string[]> {
  const res = await runCli(AGENT_CLI, ['--help']);
  const section = res.stdout.split(/^Commands:$/m)[1] ?? '';
  return [...section.matchAll(/^ {2}([a-z][a-z-]*)\b/gm)].map((m) => m[1]!).filter((c) => c !== 'help');
}

/** Options of one help page: [term, description], a description being what follows the term. */
function helpOptions(help: string): [string, string][] {
  const section = help.split(/^Options:$/m)[1]?.split(/^\S/m)[0] ?? '';
  const out: [string, string][] = [];
  for (const line of section.split('\n')) {
    const m = /^ {2}(-\S+(?: [^ ]+)*?)(?: {2,}(.*))?$/.exec(line);
    if (m !== null) out.push([m[1]!, (m[2] ?? '').trim()]);
    else if (/^ {3,}\S/.test(line) && out.length > 0) out[out.length - 1]![1] += ` ${line.trim()}`;
  }
  return out;
}

const onTerminal = (args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> => runOnTerminal(AGENT_CLI, args, { env });

/** A root with /proc/net listing the given TCP listeners (hex local address:port). */
async function rootWithListeners(dir: string, listeners: string[]): Promise<void> {
  await mkdir(path.join(dir, 'proc/net'), { recursive: true });
  const header = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n';
  const rows = listeners.map((a, i) => `   ${i}: ${a} 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 ${4242 + i} 1 0000000000000000 100 0 0 10 0\n`);
  await writeFile(path.join(dir, 'proc/net/tcp'), `${header}${rows.join('')}`);
  await writeFile(path.join(dir, 'proc/net/udp'), header);
}

const ESC = '\u001b[';

describe('vcm-agent usage errors', () => {
  it('an unknown option, command or value is AGT_ERR_CONFIG, exit 2, in one line without the help', async () => {
    for (const args of [['check', '--bogus'], ['bogus'], ['run', '--interval', '0'], ['status', '--format', 'xml'], ['enroll'], ['run', '--once', 'extra']]) {
      const res = await runCli(AGENT_CLI, args);
      expect(res.code, args.join(' ')).toBe(2);
      expect(res.stderr, args.join(' ')).toMatch(/^vcm-agent: AGT_ERR_CONFIG: \S.*\(see vcm-agent( [a-z-]+)? --help\)\n$/);
      expect(res.stdout, args.join(' ')).toBe('');
    }
    expect((await runCli(AGENT_CLI, ['check', '--bogus'])).stderr).toContain("unknown option '--bogus' (see vcm-agent check --help)");
  });

  it('no command at all shows the help on stderr and exits 2; --help and --version exit 0', async () => {
    const bare = await runCli(AGENT_CLI, []);
    expect(bare.code).toBe(2);
    expect(bare.stderr).toMatch(/^Usage: vcm-agent/);
    expect((await runCli(AGENT_CLI, ['check', '--help'])).code).toBe(0);
    expect((await runCli(AGENT_CLI, ['--version'])).code).toBe(0);
  });

  it('the systemd unit keeps exit 2 down, so a typo in it does not restart forever', async () => {
    const unit = await readFile(path.join(REPO, 'agent/systemd/vcm-agent.service'), 'utf8');
    expect(unit).toMatch(/^Restart=on-failure$/m);
    expect(unit).toMatch(/^RestartPreventExitStatus=2$/m);
  });
});

describe('vcm-agent check exit code', () => {
  it('0 when every check named passes, 3 when one fails', async () => {
    const clean = await tempDir('root');
    const open = await tempDir('root');
    try {
      await rootWithListeners(clean.dir, []);
      await rootWithListeners(open.dir, ['00000000:1F90']);
      const pass = await runCli(AGENT_CLI, ['check', 'open_ports', '--root', clean.dir]);
      expect(pass.stdout).toMatch(/^open_ports\s+PASS\s/m);
      expect(pass.code, pass.stderr).toBe(0);
      const fail = await runCli(AGENT_CLI, ['check', 'open_ports', '--root', open.dir, '--format', 'json']);
      expect((JSON.parse(fail.stdout) as { status: string }[])[0]?.status).toBe('fail');
      expect(fail.code, fail.stderr).toBe(3);
    } finally {
      await clean.cleanup();
      await open.cleanup();
    }
  });

  it('3 when a check is unknown: unknown is never compliant', async () => {
    const root = await tempDir('root');
    try {
      const res = await runCli(AGENT_CLI, ['check', 'disk_encryption', '--root', root.dir, '--format', 'json']);
      expect((JSON.parse(res.stdout) as { status: string }[])[0]?.status).toBe('unknown');
      expect(res.code).toBe(3);
    } finally {
      await root.cleanup();
    }
  });

  it('a --root that does not exist, or is not a folder, is AGT_ERR_CONFIG naming it, not six unknowns', async () => {
    const dir = await tempDir('root');
    try {
      const missing = path.join(dir.dir, 'no-such-host');
      const res = await runCli(AGENT_CLI, ['check', '--root', missing, '--format', 'json']);
      expect(res.code).toBe(2);
      expect(res.stderr).toBe(`vcm-agent: AGT_ERR_CONFIG: root ${missing}: no such folder\n`);
      expect(res.stdout).toBe('');
      await writeFile(path.join(dir.dir, 'file'), '');
      const file = await runCli(AGENT_CLI, ['check', '--root', path.join(dir.dir, 'file')]);
      expect(file.code).toBe(2);
      expect(file.stderr).toContain('not a folder');
    } finally {
      await dir.cleanup();
    }
  });

  it('the README documents exit code 3', async () => {
    const readme = await readFile(path.join(REPO, 'agent', 'README.md'), 'utf8');
    expect(readme).toMatch(/^\| 3 \| .*vcm-agent check.*\|/m);
  });
});

describe('vcm-agent --format', () => {
  it('every command that prints data takes --format table|json', async () => {
    const commands = await agentCommands();
    expect(commands).toEqual(expect.arrayContaining(['check', 'enroll', 'run', 'status', 'rotate-key', 'uninstall']));
    for (const cmd of commands) {
      const options = helpOptions((await runCli(AGENT_CLI, [cmd, '--help'])).stdout);
      const format = options.find(([term]) => term === '--format <format>');
      expect(format, cmd).toBeDefined();
      expect(format![1], cmd).toContain('(choices: "table", "json"');
    }
  });

  it('check --list-sources --format json is one JSON document naming every source per platform', async () => {
    const res = await runCli(AGENT_CLI, ['check', '--list-sources', '--format', 'json']);
    expect(res.code, res.stderr).toBe(0);
    const doc = JSON.parse(res.stdout) as { check: string; platforms: Record<string, { kind: string; path?: string }[] | null> }[];
    expect(doc.map((d) => d.check).sort()).toEqual([...CHECK_IDS].sort());
    const linuxPaths = doc.flatMap((d) => d.platforms.linux ?? []).map((s) => s.path);
    for (const p of ['/proc/net/tcp', '/proc/net/udp6', '/proc/1/mountinfo', '/proc/swaps']) expect(linuxPaths).toContain(p);
  });

  it('status and uninstall --dry-run print one JSON document with --format json; status still takes text', async () => {
    const state = await tempDir('state');
    try {
      const status = await runCli(AGENT_CLI, ['status', '--state-dir', state.dir, '--format', 'json']);
      expect(status.code, status.stderr).toBe(0);
      expect(JSON.parse(status.stdout)).toMatchObject({ enrolled: false, spoolDepth: 0 });
      const text = await runCli(AGENT_CLI, ['status', '--state-dir', state.dir, '--format', 'text']);
      expect(text.code, text.stderr).toBe(0);
      expect(text.stdout).toMatch(/^enrolled to {4}not enrolled/);
      const config = path.join(state.dir, 'config.json');
      await writeFile(config, '{}');
      const plan = await runCli(AGENT_CLI, ['uninstall', '--state-dir', path.join(state.dir, 'state'), '--config', config, '--dry-run', '--format', 'json']);
      expect(plan.code, plan.stderr).toBe(0);
      expect(JSON.parse(plan.stdout)).toMatchObject({ dryRun: true, wouldRemove: expect.arrayContaining([config]), kept: [] });
    } finally {
      await state.cleanup();
    }
  });

  it('run --check-config --format table prints the settings and where they came from', async () => {
    const res = await runCli(AGENT_CLI, ['run', '--check-config', '--format', 'table'], { env: { VCM_CONFIG: '', VCM_SPOOL_MAX_COUNT: '500' } });
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/^spool\.maxCount\s+500\s+env VCM_SPOOL_MAX_COUNT$/m);
    expect(() => JSON.parse(res.stdout)).toThrow();
  });
});

describe('vcm-agent on a terminal', () => {
  it('colours status words and error codes on a TTY, and not with NO_COLOR or without a TTY', async () => {
    const root = await tempDir('root');
    try {
      await rootWithListeners(root.dir, ['00000000:1F90']);
      const tty = await onTerminal(['check', 'open_ports', '--root', root.dir]);
      expect(tty.code).toBe(3);
      expect(tty.stdout).toContain(`${ESC}31mFAIL${ESC}0m`);
      expect(tty.stdout).toMatch(/^CHECK\s+STATUS\s+DETAIL\r?$/m);
      const plain = await onTerminal(['check', 'open_ports', '--root', root.dir], { NO_COLOR: '1' });
      expect(plain.stdout).toMatch(/^open_ports\s+FAIL\s/m);
      expect(plain.stdout).not.toContain(ESC);
      const piped = await runCli(AGENT_CLI, ['check', 'open_ports', '--root', root.dir]);
      expect(piped.stdout).toMatch(/^open_ports\s+FAIL\s/m);
      expect(piped.stdout).not.toContain(ESC);
      const error = await onTerminal(['check', '--bogus']);
      expect(error.code).toBe(2);
      expect(error.stdout).toContain(`vcm-agent: ${ESC}31mAGT_ERR_CONFIG${ESC}0m: unknown option`);
      expect((await onTerminal(['check', '--bogus'], { NO_COLOR: 'yes' })).stdout).not.toContain(ESC);
      expect((await runCli(AGENT_CLI, ['check', '--bogus'])).stderr).not.toContain(ESC);
    } finally {
      await root.cleanup();
    }
  });
});

describe('vcm-agent --help', () => {
  it('describes every option of every command, with its default where it has one', async () => {
    const pages = [[], ...(await agentCommands()).map((c) => [c])];
    expect(pages.length).toBeGreaterThan(5);
    const bare: string[] = [];
    for (const page of pages) {
      const res = await runCli(AGENT_CLI, [...page, '--help']);
      expect(res.code, page.join(' ')).toBe(0);
      const options = helpOptions(res.stdout);
      expect(options.length, page.join(' ')).toBeGreaterThan(0);
      for (const [term, description] of options) {
        // A description is words of its own, not only commander's "(choices: …, default: …)".
        if (description === '' || description.startsWith('(')) bare.push(`${['vcm-agent', ...page].join(' ')} ${term}`);
      }
    }
    expect(bare).toEqual([]);
    const check = helpOptions((await runCli(AGENT_CLI, ['check', '--help'])).stdout);
    expect(check.find(([t]) => t === '--root <dir>')?.[1]).toContain('(default: "/")');
    const run = helpOptions((await runCli(AGENT_CLI, ['run', '--help'])).stdout);
    expect(run.find(([t]) => t === '--interval <seconds>')?.[1]).toMatch(/seconds.*default: the policy's/);
  });
});
