// Fixture recording and strict replay of HostIO calls.
//
// A fixture case directory holds:
//   manifest.json  the calls a check made and what the host answered (this module's format)
//   raw/...        file contents and command outputs as captured, at their host paths
//   case.json      provenance, `synthetic`, the config, and the expected facts and verdict
// Replay is strict: a call that was not recorded fails, and so does a recorded call left unused.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as z from 'zod';
import { CheckError, CHECK_ERROR_CODES, isCheckError, type CheckErrorCode } from './errors.js';
import type { CommandResult, DirEntry, FileStat, HostIO, HttpResult, Platform } from './types.js';

/** A path inside raw/: relative, without "..". */
const rawFile = z.string().regex(/^(?!\/)(?!.*(^|\/)\.\.(\/|$)).+$/, 'raw file paths are relative and stay inside raw/');
const errorCode = z.enum(Object.keys(CHECK_ERROR_CODES) as [CheckErrorCode, ...CheckErrorCode[]]);
const dirEntry = z.object({ name: z.string(), type: z.enum(['file', 'dir', 'symlink', 'other']) }).strict();

const callSchema = z.discriminatedUnion('op', [
  z
    .object({
      op: z.literal('readFile'),
      path: z.string(),
      content: z.string().optional(),
      file: rawFile.optional(),
      error: errorCode.optional(),
    })
    .strict(),
  z.object({ op: z.literal('readDir'), path: z.string(), entries: z.array(dirEntry).optional(), error: errorCode.optional() }).strict(),
  z.object({ op: z.literal('readLink'), path: z.string(), target: z.string().optional(), error: errorCode.optional() }).strict(),
  z
    .object({
      op: z.literal('stat'),
      path: z.string(),
      stat: z
        .object({
          type: z.enum(['file', 'dir', 'symlink', 'other']),
          size: z.number().int().nonnegative(),
          mode: z.number().int().nonnegative(),
          uid: z.number().int().nonnegative(),
          gid: z.number().int().nonnegative(),
          mtimeMs: z.number(),
          ctimeMs: z.number().optional(),
          ino: z.number().int().nonnegative().optional(),
        })
        .strict()
        .optional(),
      error: errorCode.optional(),
    })
    .strict(),
  z
    .object({
      op: z.literal('httpGet'),
      url: z.string(),
      status: z.number().int().optional(),
      body: z.string().optional(),
      error: errorCode.optional(),
    })
    .strict(),
  z
    .object({
      op: z.literal('run'),
      command: z.string(),
      args: z.array(z.string()),
      stdout: z.string().optional(),
      stdoutFile: rawFile.optional(),
      stderr: z.string().optional(),
      exitCode: z.number().int().optional(),
      error: errorCode.optional(),
    })
    .strict(),
]);
export type RecordedCall = z.infer<typeof callSchema>;

export const manifestSchema = z
  .object({
    version: z.literal(1),
    platform: z.enum(['linux', 'darwin', 'win32']),
    calls: z.array(callSchema),
  })
  .strict();
export type Manifest = z.infer<typeof manifestSchema>;

function keyOf(call: { op: string; path?: string; url?: string; command?: string; args?: readonly string[] }): string {
  if (call.op === 'run') return JSON.stringify(['run', call.command, ...(call.args ?? [])]);
  return `${call.op} ${call.op === 'httpGet' ? call.url : call.path}`;
}

/** Thrown for a call the fixture does not hold. Its code is not a check code on purpose. */
export class UnrecordedCallError extends Error {
  readonly code = 'REPLAY_UNRECORDED_CALL';
  constructor(readonly key: string) {
    super(`replay: unrecorded call ${key}`);
  }
}

/** Serves recorded answers. `assertComplete()` fails on unrecorded or unused calls. */
export class ReplayHostIO implements HostIO {
  readonly platform: Platform;
  readonly #answers = new Map<string, RecordedCall>();
  readonly #used = new Set<string>();
  readonly #unrecorded: string[] = [];
  readonly #rawDir: string | undefined;

  constructor(manifest: Manifest, rawDir?: string) {
    this.platform = manifest.platform;
    this.#rawDir = rawDir;
    for (const call of manifest.calls) {
      const key = keyOf(call);
      if (this.#answers.has(key)) throw new Error(`replay: manifest records ${key} twice`);
      this.#answers.set(key, call);
    }
  }

  static async load(caseDir: string): Promise<ReplayHostIO> {
    const text = await readFile(path.join(caseDir, 'manifest.json'), 'utf8');
    return new ReplayHostIO(manifestSchema.parse(JSON.parse(text)), path.join(caseDir, 'raw'));
  }

  #take(key: string, subject: string): RecordedCall {
    const call = this.#answers.get(key);
    if (call === undefined) {
      this.#unrecorded.push(key);
      throw new UnrecordedCallError(key);
    }
    this.#used.add(key);
    if (call.error !== undefined) throw new CheckError(call.error, 'recorded failure', { subject });
    return call;
  }

  async #content(inline: string | undefined, file: string | undefined, key: string): Promise<string> {
    if (inline !== undefined) return inline;
    if (file !== undefined && this.#rawDir !== undefined) return readFile(path.join(this.#rawDir, file), 'utf8');
    throw new Error(`replay: ${key} has neither content nor a raw file`);
  }

  async readFile(p: string): Promise<string> {
    const key = keyOf({ op: 'readFile', path: p });
    const call = this.#take(key, p) as Extract<RecordedCall, { op: 'readFile' }>;
    return this.#content(call.content, call.file, key);
  }

  async readDir(p: string): Promise<DirEntry[]> {
    const key = keyOf({ op: 'readDir', path: p });
    const call = this.#take(key, p) as Extract<RecordedCall, { op: 'readDir' }>;
    return (call.entries ?? []).map((e) => ({ ...e }));
  }

  async readLink(p: string): Promise<string> {
    const key = keyOf({ op: 'readLink', path: p });
    const call = this.#take(key, p) as Extract<RecordedCall, { op: 'readLink' }>;
    if (call.target === undefined) throw new Error(`replay: ${key} has no target`);
    return call.target;
  }

  async stat(p: string): Promise<FileStat> {
    const key = keyOf({ op: 'stat', path: p });
    const call = this.#take(key, p) as Extract<RecordedCall, { op: 'stat' }>;
    if (call.stat === undefined) throw new Error(`replay: ${key} has no stat`);
    return { ...call.stat };
  }

  async httpGet(url: string): Promise<HttpResult> {
    const key = keyOf({ op: 'httpGet', url });
    const call = this.#take(key, url) as Extract<RecordedCall, { op: 'httpGet' }>;
    return { status: call.status ?? 200, body: call.body ?? '' };
  }

  async run(command: string, args: readonly string[]): Promise<CommandResult> {
    const key = keyOf({ op: 'run', command, args });
    const call = this.#take(key, command) as Extract<RecordedCall, { op: 'run' }>;
    return {
      stdout: await this.#content(call.stdout, call.stdoutFile, key),
      stderr: call.stderr ?? '',
      exitCode: call.exitCode ?? 0,
    };
  }

  /** Calls the check made that the fixture does not hold, and recorded calls it never made. */
  problems(): { unrecorded: string[]; unused: string[] } {
    const unused = [...this.#answers.keys()].filter((k) => !this.#used.has(k));
    return { unrecorded: [...this.#unrecorded], unused };
  }

  assertComplete(): void {
    const { unrecorded, unused } = this.problems();
    if (unrecorded.length > 0 || unused.length > 0) {
      throw new Error(
        `replay mismatch:\n${unrecorded.map((k) => `  unrecorded: ${k}`).join('\n')}\n${unused.map((k) => `  unused: ${k}`).join('\n')}`,
      );
    }
  }
}

/** Wraps a real HostIO and records every call, for `vcm-agent check --record DIR`. */
export class RecordingHostIO implements HostIO {
  readonly platform: Platform;
  readonly #inner: HostIO;
  readonly #calls = new Map<string, RecordedCall>();
  readonly #raw = new Map<string, string>();

  constructor(inner: HostIO) {
    this.#inner = inner;
    this.platform = inner.platform;
  }

  async #record<T>(key: string, make: () => Promise<T>, ok: (v: T) => RecordedCall, fail: (code: CheckErrorCode) => RecordedCall): Promise<T> {
    try {
      const value = await make();
      if (!this.#calls.has(key)) this.#calls.set(key, ok(value));
      return value;
    } catch (err) {
      if (isCheckError(err) && !this.#calls.has(key)) this.#calls.set(key, fail(err.code));
      throw err;
    }
  }

  readFile(p: string): Promise<string> {
    return this.#record(
      keyOf({ op: 'readFile', path: p }),
      () => this.#inner.readFile(p),
      (content) => {
        const file = rawPathFor(p);
        this.#raw.set(file, content);
        return { op: 'readFile', path: p, file };
      },
      (error) => ({ op: 'readFile', path: p, error }),
    );
  }

  readDir(p: string): Promise<DirEntry[]> {
    return this.#record(
      keyOf({ op: 'readDir', path: p }),
      () => this.#inner.readDir(p),
      (entries) => ({ op: 'readDir', path: p, entries }),
      (error) => ({ op: 'readDir', path: p, error }),
    );
  }

  readLink(p: string): Promise<string> {
    return this.#record(
      keyOf({ op: 'readLink', path: p }),
      () => this.#inner.readLink(p),
      (target) => ({ op: 'readLink', path: p, target }),
      (error) => ({ op: 'readLink', path: p, error }),
    );
  }

  stat(p: string): Promise<FileStat> {
    return this.#record(
      keyOf({ op: 'stat', path: p }),
      () => this.#inner.stat(p),
      (stat) => ({ op: 'stat', path: p, stat }),
      (error) => ({ op: 'stat', path: p, error }),
    );
  }

  httpGet(url: string, opts?: { timeoutMs?: number; signal?: AbortSignal }): Promise<HttpResult> {
    return this.#record(
      keyOf({ op: 'httpGet', url }),
      () => this.#inner.httpGet(url, opts),
      (r) => ({ op: 'httpGet', url, status: r.status, body: r.body }),
      (error) => ({ op: 'httpGet', url, error }),
    );
  }

  run(command: string, args: readonly string[], opts?: { timeoutMs?: number; signal?: AbortSignal }): Promise<CommandResult> {
    return this.#record(
      keyOf({ op: 'run', command, args }),
      () => this.#inner.run(command, args, opts),
      (r) => {
        const stdoutFile = path.posix.join('commands', `${path.posix.basename(command)}-${this.#calls.size}.out`);
        this.#raw.set(stdoutFile, r.stdout);
        return { op: 'run', command, args: [...args], stdoutFile, stderr: r.stderr, exitCode: r.exitCode };
      },
      (error) => ({ op: 'run', command, args: [...args], error }),
    );
  }

  manifest(): Manifest {
    return { version: 1, platform: this.platform, calls: [...this.#calls.values()] };
  }

  /** Writes manifest.json and raw/ into `caseDir`. */
  async save(caseDir: string): Promise<void> {
    for (const [file, content] of this.#raw) {
      const target = path.join(caseDir, 'raw', file);
      await mkdir(path.dirname(target), { recursive: true });
      await writeFile(target, content);
    }
    await mkdir(caseDir, { recursive: true });
    await writeFile(path.join(caseDir, 'manifest.json'), `${JSON.stringify(this.manifest(), null, 2)}\n`);
  }
}

/** `/proc/net/tcp` → `proc/net/tcp`; Windows drive paths keep their letters. */
function rawPathFor(hostPath: string): string {
  return hostPath
    .replace(/^[A-Za-z]:/, (d) => d[0] ?? '')
    .replace(/\\/g, '/')
    .split('/')
    .filter((part) => part !== '' && part !== '.' && part !== '..')
    .join('/');
}
