// Recording from a real HostIO on a temp tree, saving, loading and strictly replaying.
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as z from 'zod';
import { CHECK_ERROR_CODES, CheckError } from '../../checks/errors.js';
import { RealHostIO } from '../../checks/host-io.js';
import { manifestSchema, RecordingHostIO, ReplayHostIO, UnrecordedCallError, type Manifest, type RecordedCall } from '../../checks/replay.js';
import { runCheck } from '../../checks/runner.js';
import type { Check, CommandResult, DirEntry, HostIO } from '../../checks/types.js';

let base: string;
let root: string;
const HOSTNAME = `replay-host-${Math.random().toString(36).slice(2)}\n`;
const SH_ARGS = ['-c', 'echo out; echo err >&2; exit 3'];

beforeAll(async () => {
  base = await mkdtemp(path.join(os.tmpdir(), 'vcm-replay-'));
  root = path.join(base, 'root');
  await mkdir(path.join(root, 'etc', 'sub'), { recursive: true });
  await writeFile(path.join(root, 'etc', 'hostname'), HOSTNAME);
  await writeFile(path.join(root, 'etc', 'sub', 'a.conf'), 'a = 1\n');
  await symlink('hostname', path.join(root, 'etc', 'link'));
});

afterAll(async () => {
  await rm(base, { recursive: true, force: true });
});

function realIO(): RealHostIO {
  return new RealHostIO({
    root,
    platform: 'linux',
    allowedCommands: [
      { command: '/bin/echo', args: ['hi'] },
      { command: '/bin/echo', args: ['ho'] },
      { command: '/bin/sh', args: SH_ARGS },
    ],
  });
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  const err = await p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(CheckError);
  return (err as CheckError).code;
}

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => path.relative(dir, path.join(e.parentPath, e.name))).sort();
}

interface Observed {
  hostname: string;
  etc: DirEntry[];
  link: string;
  missingCode: string;
  missingDirCode: string;
  missingLinkCode: string;
  hi: CommandResult;
  ho: CommandResult;
  sh: CommandResult;
  notAllowedCode: string;
}

/** The same calls, against whichever HostIO. */
async function exercise(io: HostIO): Promise<Observed> {
  return {
    hostname: await io.readFile('/etc/hostname'),
    etc: await io.readDir('/etc'),
    link: await io.readLink('/etc/link'),
    missingCode: await codeOf(io.readFile('/etc/missing')),
    missingDirCode: await codeOf(io.readDir('/nope')),
    missingLinkCode: await codeOf(io.readLink('/etc/nolink')),
    hi: await io.run('/bin/echo', ['hi']),
    ho: await io.run('/bin/echo', ['ho']),
    sh: await io.run('/bin/sh', SH_ARGS),
    notAllowedCode: await codeOf(io.run('/bin/false', [])),
  };
}

describe('record, save, load, replay', () => {
  let caseDir: string;
  let live: Observed;
  let recorder: RecordingHostIO;

  beforeAll(async () => {
    caseDir = path.join(base, 'cases', 'round-trip');
    recorder = new RecordingHostIO(realIO());
    live = await exercise(recorder);
    await recorder.save(caseDir);
  });

  it('the live calls answered what the tree and the commands hold', () => {
    expect(live.hostname).toBe(HOSTNAME);
    expect(live.link).toBe('hostname');
    expect(live.etc.map((e) => e.name).sort()).toEqual(['hostname', 'link', 'sub']);
    expect(live.missingCode).toBe('CHK_ERR_SOURCE_MISSING');
    expect(live.missingDirCode).toBe('CHK_ERR_SOURCE_MISSING');
    expect(live.missingLinkCode).toBe('CHK_ERR_SOURCE_MISSING');
    expect(live.hi).toEqual({ stdout: 'hi\n', stderr: '', exitCode: 0 });
    expect(live.sh).toEqual({ stdout: 'out\n', stderr: 'err\n', exitCode: 3 });
    expect(live.notAllowedCode).toBe('CHK_ERR_COMMAND_NOT_ALLOWED');
  });

  it('save() writes a manifest.json that the schema accepts, with every call once, and errors by code', async () => {
    const manifest = manifestSchema.parse(JSON.parse(await readFile(path.join(caseDir, 'manifest.json'), 'utf8')));
    expect(manifest).toEqual(recorder.manifest());
    expect(manifest.platform).toBe('linux');
    expect(manifest.calls.map((c) => c.op).sort()).toEqual(['readDir', 'readDir', 'readFile', 'readFile', 'readLink', 'readLink', 'run', 'run', 'run', 'run']);
    expect(manifest.calls).toContainEqual({ op: 'readFile', path: '/etc/missing', error: 'CHK_ERR_SOURCE_MISSING' });
    expect(manifest.calls).toContainEqual({ op: 'readDir', path: '/nope', error: 'CHK_ERR_SOURCE_MISSING' });
    expect(manifest.calls).toContainEqual({ op: 'run', command: '/bin/false', args: [], error: 'CHK_ERR_COMMAND_NOT_ALLOWED' });
    expect(manifest.calls).toContainEqual({ op: 'readLink', path: '/etc/link', target: 'hostname' });
    expect(manifest.calls).toContainEqual({ op: 'readLink', path: '/etc/nolink', error: 'CHK_ERR_SOURCE_MISSING' });
  });

  it('save() writes raw/ files at their host paths and one file per command output', async () => {
    const raw = path.join(caseDir, 'raw');
    expect(await readFile(path.join(raw, 'etc', 'hostname'), 'utf8')).toBe(HOSTNAME);
    const files = await filesUnder(raw);
    expect(files.filter((f) => !f.startsWith('commands/'))).toEqual(['etc/hostname']);
    const outputs = await Promise.all(files.filter((f) => f.startsWith('commands/')).map((f) => readFile(path.join(raw, f), 'utf8')));
    expect(outputs.sort()).toEqual([live.hi.stdout, live.ho.stdout, live.sh.stdout].sort());
  });

  it('ReplayHostIO.load() answers the same values and the same error codes, then assertComplete() passes', async () => {
    const replay = await ReplayHostIO.load(caseDir);
    expect(replay.platform).toBe(recorder.platform);
    expect(await exercise(replay)).toEqual(live);
    expect(replay.problems()).toEqual({ unrecorded: [], unused: [] });
    expect(() => replay.assertComplete()).not.toThrow();
  });

  it('a fresh replay with the calls not yet made reports every recorded call as unused', async () => {
    const replay = await ReplayHostIO.load(caseDir);
    expect(replay.problems().unused).toHaveLength(recorder.manifest().calls.length);
    expect(() => replay.assertComplete()).toThrow(/unused/);
  });
});

describe('recording details', () => {
  it('a call made twice is recorded once and replays twice', async () => {
    const recorder = new RecordingHostIO(realIO());
    await recorder.readFile('/etc/hostname');
    await recorder.readFile('/etc/hostname');
    expect(recorder.manifest().calls).toHaveLength(1);
    const dir = await mkdtemp(path.join(base, 'twice-'));
    await recorder.save(dir);
    const replay = await ReplayHostIO.load(dir);
    expect(await replay.readFile('/etc/hostname')).toBe(HOSTNAME);
    expect(await replay.readFile('/etc/hostname')).toBe(HOSTNAME);
    replay.assertComplete();
  });

  it('replayed directory entries are copies: mutating one answer does not change the next', async () => {
    const replay = new ReplayHostIO({ version: 1, platform: 'linux', calls: [{ op: 'readDir', path: '/d', entries: [{ name: 'a', type: 'file' }] }] });
    const first = await replay.readDir('/d');
    first[0]!.name = 'changed';
    first.push({ name: 'b', type: 'dir' });
    expect(await replay.readDir('/d')).toEqual([{ name: 'a', type: 'file' }]);
  });

  it('a non-CheckError failure of the inner HostIO is passed through and not recorded', async () => {
    const boom = new Error('inner broke');
    const inner: HostIO = {
      platform: 'darwin',
      readFile: () => Promise.reject(boom),
      readDir: () => Promise.reject(boom),
      readLink: () => Promise.reject(boom),
      stat: () => Promise.reject(boom),
      run: () => Promise.reject(boom),
      httpGet: () => Promise.reject(boom),
    };
    const recorder = new RecordingHostIO(inner);
    await expect(recorder.readFile('/x')).rejects.toBe(boom);
    expect(recorder.manifest()).toEqual({ version: 1, platform: 'darwin', calls: [] });
  });

  it('a finding replayed from a recording equals the live finding', async () => {
    const check: Check<{ expected: string }, { hostname: string; entries: number }> = {
      id: 'vpn',
      version: '1.0.0',
      title: 'replay round trip',
      platforms: ['linux'],
      sources: { linux: [{ kind: 'file', path: '/etc/hostname', why: 'test' }] },
      configSchema: z.object({ expected: z.string().default(HOSTNAME.trim()) }).strict(),
      factsSchema: z.object({ hostname: z.string(), entries: z.number().int() }).strict(),
      collect: async ({ io }) => ({ hostname: (await io.readFile('/etc/hostname')).trim(), entries: (await io.readDir('/etc/sub')).length }),
      evaluate: (facts, config) =>
        facts.hostname === config.expected
          ? { status: 'pass', reasons: [] }
          : { status: 'fail', reasons: [{ code: 'CHK_FAIL_HOSTNAME', message: 'unexpected hostname', subject: facts.hostname }] },
    };
    const now = (): Date => new Date(0);
    const recorder = new RecordingHostIO(realIO());
    const liveFinding = await runCheck(check, { io: recorder, now });
    const dir = await mkdtemp(path.join(base, 'finding-'));
    await recorder.save(dir);
    const replay = await ReplayHostIO.load(dir);
    const replayed = await runCheck(check, { io: replay, now });
    replay.assertComplete();
    expect(liveFinding.status).toBe('pass');
    expect({ ...replayed, durationMs: 0 }).toEqual({ ...liveFinding, durationMs: 0 });
  });

  // The manifest keeps only the error code, so replay must rebuild the subject the real HostIO sets.
  it('gives a replayed error the same subject as the live error', async () => {
    const recorder = new RecordingHostIO(realIO());
    const liveErr = await recorder.readFile('/etc/missing').catch((e: unknown) => e);
    const dir = await mkdtemp(path.join(base, 'subject-'));
    await recorder.save(dir);
    const replayErr = await (await ReplayHostIO.load(dir)).readFile('/etc/missing').catch((e: unknown) => e);
    expect(liveErr).toBeInstanceOf(CheckError);
    expect(replayErr).toBeInstanceOf(CheckError);
    expect((replayErr as CheckError).code).toBe((liveErr as CheckError).code);
    expect((replayErr as CheckError).subject).toBe((liveErr as CheckError).subject);
  });

  // Neither the recorded path nor the raw file name may carry '..' out of the case directory.
  it('save() never writes outside the case directory', async () => {
    const parent = await mkdtemp(path.join(base, 'escape-'));
    const caseDir = path.join(parent, 'case');
    await writeFile(path.join(root, 'escape-marker'), 'x\n');
    const recorder = new RecordingHostIO(realIO());
    await recorder.readFile('/../../escape-marker').catch(() => undefined);
    await recorder.save(caseDir);
    expect(await readdir(parent)).toEqual(['case']);
  });
});

describe('strict replay', () => {
  const manifest = (calls: RecordedCall[]): Manifest => ({ version: 1, platform: 'linux', calls });

  it('an unrecorded call throws UnrecordedCallError and makes assertComplete() throw mentioning unrecorded', async () => {
    const replay = new ReplayHostIO(manifest([{ op: 'readFile', path: '/a', content: 'A' }]));
    expect(await replay.readFile('/a')).toBe('A');
    const err = await replay.readFile('/b').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnrecordedCallError);
    expect(err).not.toBeInstanceOf(CheckError);
    expect((err as UnrecordedCallError).code).toBe('REPLAY_UNRECORDED_CALL');
    expect(Object.keys(CHECK_ERROR_CODES)).not.toContain((err as UnrecordedCallError).code);
    expect(replay.problems()).toEqual({ unrecorded: ['readFile /b'], unused: [] });
    expect(() => replay.assertComplete()).toThrow(/unrecorded: readFile \/b/);
  });

  it.each([
    ['readDir on a path recorded as readFile', (io: ReplayHostIO) => io.readDir('/a')],
    ['readLink on a path recorded as readFile', (io: ReplayHostIO) => io.readLink('/a')],
    ['run with other args', (io: ReplayHostIO) => io.run('/bin/echo', ['ho'])],
    ['run with extra args', (io: ReplayHostIO) => io.run('/bin/echo', ['hi', 'x'])],
    ['run of another command', (io: ReplayHostIO) => io.run('/usr/bin/echo', ['hi'])],
  ])('%s is unrecorded', async (_label, call) => {
    const replay = new ReplayHostIO(
      manifest([
        { op: 'readFile', path: '/a', content: 'A' },
        { op: 'run', command: '/bin/echo', args: ['hi'], stdout: 'hi\n' },
      ]),
    );
    await expect(call(replay)).rejects.toBeInstanceOf(UnrecordedCallError);
    expect(replay.problems().unrecorded).toHaveLength(1);
    expect(() => replay.assertComplete()).toThrow(/unrecorded/);
  });

  it('a recorded call that is never made makes assertComplete() throw mentioning unused', async () => {
    const replay = new ReplayHostIO(
      manifest([
        { op: 'readFile', path: '/a', content: 'A' },
        { op: 'run', command: '/bin/echo', args: ['hi'], stdout: 'hi\n' },
      ]),
    );
    expect(await replay.readFile('/a')).toBe('A');
    expect(replay.problems()).toEqual({ unrecorded: [], unused: [JSON.stringify(['run', '/bin/echo', 'hi'])] });
    expect(() => replay.assertComplete()).toThrow(/unused: \["run","\/bin\/echo","hi"\]/);
    expect(() => replay.assertComplete()).not.toThrow(/unrecorded:/);
  });

  it('a recorded error that is replayed counts as used', async () => {
    const replay = new ReplayHostIO(manifest([{ op: 'readLink', path: '/l', error: 'CHK_ERR_PERMISSION' }]));
    expect(await codeOf(replay.readLink('/l'))).toBe('CHK_ERR_PERMISSION');
    expect(() => replay.assertComplete()).not.toThrow();
  });

  it.each<[string, RecordedCall]>([
    ['readFile', { op: 'readFile', path: '/a', content: 'other' }],
    ['readDir', { op: 'readDir', path: '/d', entries: [] }],
    ['readLink', { op: 'readLink', path: '/l', target: 'y' }],
    ['run', { op: 'run', command: '/bin/echo', args: ['hi'], stdout: 'again\n' }],
  ])('a manifest that records the same %s call twice is refused', async (_op, dup) => {
    const calls: RecordedCall[] = [
      { op: 'readFile', path: '/a', content: 'A' },
      { op: 'readDir', path: '/d', entries: [{ name: 'x', type: 'file' }] },
      { op: 'readLink', path: '/l', target: 'x' },
      { op: 'run', command: '/bin/echo', args: ['hi'], stdout: 'hi\n' },
    ];
    expect(() => new ReplayHostIO(manifest(calls))).not.toThrow();
    expect(() => new ReplayHostIO(manifest([...calls, dup]))).toThrow(/twice/);
    const dir = await mkdtemp(path.join(base, 'dup-'));
    await writeFile(path.join(dir, 'manifest.json'), JSON.stringify(manifest([...calls, dup])));
    await expect(ReplayHostIO.load(dir)).rejects.toThrow(/twice/);
  });

  it('the same path under different operations, and the same command with different args, are different calls', () => {
    expect(
      () =>
        new ReplayHostIO(
          manifest([
            { op: 'readFile', path: '/p', content: '' },
            { op: 'readDir', path: '/p', entries: [] },
            { op: 'readLink', path: '/p', target: 't' },
            { op: 'run', command: '/bin/echo', args: ['a b'], stdout: '' },
            { op: 'run', command: '/bin/echo', args: ['a', 'b'], stdout: '' },
          ]),
        ),
    ).not.toThrow();
  });

  it('replays inline content, raw files, stderr and exit codes, with defaults for omitted ones', async () => {
    const dir = await mkdtemp(path.join(base, 'inline-'));
    await mkdir(path.join(dir, 'raw', 'proc'), { recursive: true });
    await writeFile(path.join(dir, 'raw', 'proc', 'x'), 'from raw\n');
    await writeFile(path.join(dir, 'raw', 'out.txt'), 'raw stdout\n');
    await writeFile(
      path.join(dir, 'manifest.json'),
      JSON.stringify(
        manifest([
          { op: 'readFile', path: '/inline', content: 'inline\n' },
          { op: 'readFile', path: '/proc/x', file: 'proc/x' },
          { op: 'run', command: '/bin/a', args: [], stdoutFile: 'out.txt', stderr: 'warn\n', exitCode: 2 },
          { op: 'run', command: '/bin/b', args: ['-q'], stdout: 'b\n' },
        ]),
      ),
    );
    const replay = await ReplayHostIO.load(dir);
    expect(await replay.readFile('/inline')).toBe('inline\n');
    expect(await replay.readFile('/proc/x')).toBe('from raw\n');
    expect(await replay.run('/bin/a', [])).toEqual({ stdout: 'raw stdout\n', stderr: 'warn\n', exitCode: 2 });
    expect(await replay.run('/bin/b', ['-q'])).toEqual({ stdout: 'b\n', stderr: '', exitCode: 0 });
    replay.assertComplete();
  });

  it('a record with neither content nor a raw file, or a link without a target, fails loudly (not as a check error)', async () => {
    const replay = new ReplayHostIO(
      manifest([
        { op: 'readFile', path: '/a' },
        { op: 'readFile', path: '/b', file: 'b' }, // no rawDir given
        { op: 'readLink', path: '/l' },
        { op: 'run', command: '/bin/x', args: [] },
      ]),
    );
    for (const p of [replay.readFile('/a'), replay.readFile('/b'), replay.readLink('/l'), replay.run('/bin/x', [])]) {
      const err = await p.catch((e: unknown) => e);
      expect(err).toBeInstanceOf(Error);
      expect(err).not.toBeInstanceOf(CheckError);
    }
  });
});

describe('manifestSchema', () => {
  const valid = {
    version: 1,
    platform: 'linux',
    calls: [
      { op: 'readFile', path: '/a', content: 'A' },
      { op: 'readDir', path: '/d', entries: [{ name: 'x', type: 'symlink' }] },
      { op: 'readLink', path: '/l', error: 'CHK_ERR_PERMISSION' },
      { op: 'run', command: '/bin/echo', args: ['hi'], stdoutFile: 'commands/echo-3.out', stderr: '', exitCode: 0 },
    ],
  };
  const clone = (): typeof valid => structuredClone(valid);

  it('accepts a valid manifest', () => {
    expect(manifestSchema.safeParse(valid).success).toBe(true);
  });

  it('rejects an unknown top-level field (strict)', () => {
    expect(manifestSchema.safeParse({ ...clone(), recordedBy: 'me' }).success).toBe(false);
  });

  it.each([0, 1, 2, 3])('rejects an unknown field in call %i (strict)', (i) => {
    const m = clone();
    Object.assign(m.calls[i]!, { extra: true });
    expect(manifestSchema.safeParse(m).success).toBe(false);
  });

  it('rejects an unknown field in a directory entry (strict)', () => {
    const m = clone();
    Object.assign((m.calls[1] as { entries: object[] }).entries[0]!, { size: 1 });
    expect(manifestSchema.safeParse(m).success).toBe(false);
  });

  it.each(['CHK_ERR_NOPE', 'REPLAY_UNRECORDED_CALL', 'chk_err_permission', 'CHK_FAIL_LISTENER_NOT_ALLOWED'])(
    'rejects the unknown error code %s',
    (code) => {
      const m = clone();
      Object.assign(m.calls[2]!, { error: code });
      expect(manifestSchema.safeParse(m).success).toBe(false);
    },
  );

  it('accepts every known error code', () => {
    for (const code of Object.keys(CHECK_ERROR_CODES)) {
      const m = clone();
      Object.assign(m.calls[2]!, { error: code });
      expect(manifestSchema.safeParse(m).success, code).toBe(true);
    }
  });

  it.each([
    ['another version', { version: 2 }],
    ['an unknown platform', { platform: 'freebsd' }],
    ['an unknown op', { calls: [{ op: 'chmod', path: '/a' }] }],
    ['a bad entry type', { calls: [{ op: 'readDir', path: '/d', entries: [{ name: 'x', type: 'fifo' }] }] }],
    ['a non-integer exit code', { calls: [{ op: 'run', command: '/bin/x', args: [], exitCode: 1.5 }] }],
    ['missing calls', { calls: undefined }],
  ])('rejects %s', (_label, patch) => {
    expect(manifestSchema.safeParse({ ...clone(), ...patch }).success).toBe(false);
  });

  it('ReplayHostIO.load() refuses a manifest the schema rejects', async () => {
    const dir = await mkdtemp(path.join(base, 'bad-'));
    await writeFile(path.join(dir, 'manifest.json'), JSON.stringify({ ...clone(), extra: 1 }));
    await expect(ReplayHostIO.load(dir)).rejects.toThrow();
    expect(existsSync(path.join(dir, 'manifest.json'))).toBe(true);
  });
});
