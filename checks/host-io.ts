// The real HostIO: files under a root prefix, and commands from a declared allow-list only.
// This is the only module that may import node:child_process (eslint enforces it).
import { execFile } from 'node:child_process';
import { closeSync, lstatSync, openSync, readFileSync, readSync, readdirSync, readlinkSync, type Dirent, type Stats } from 'node:fs';
import { lstat, readFile, readdir, readlink } from 'node:fs/promises';
import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import path from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { CheckError, codeForFsError, isCheckError } from './errors.js';
import type { CommandResult, DirEntry, FileStat, HostIO, HttpResult, Platform, ReadFileOptions } from './types.js';

/** Files larger than this are refused: no control source is anywhere near it. */
const MAX_FILE_BYTES = 16 * 1024 * 1024;
const DEFAULT_COMMAND_TIMEOUT_MS = 10_000;
const MAX_SYMLINK_HOPS = 40;
const MAX_HTTP_BODY_BYTES = 64 * 1024;
const DEFAULT_HTTP_TIMEOUT_MS = 5_000;

export interface AllowedCommand {
  command: string;
  args: readonly string[];
}

export interface RealHostIOOptions {
  /** Host root prefix (`--root`); `/` on the host itself, `/host` in a container. */
  root?: string;
  platform?: Platform;
  /** Exact argument vectors that may run. Anything else is refused. */
  allowedCommands?: readonly AllowedCommand[];
  commandTimeoutMs?: number;
  /**
   * URLs a probe may fetch, from the agent's local config (`probes.allowedUrls`): a probe URL
   * must start with one of them. None: no probe runs. A policy never adds to this.
   */
  allowedProbeUrls?: readonly string[];
  /** Let allowed probes reach private, loopback and link-local addresses (`probes.allowPrivateTargets`). */
  allowPrivateProbeTargets?: boolean;
}

/** Where a probe may not go unless the agent's config says so: private, loopback, link-local, and the like. */
const PRIVATE_TARGETS = (() => {
  const b = new BlockList();
  for (const [net, bits] of [['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12], ['192.0.0.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['224.0.0.0', 4], ['240.0.0.0', 4]] as const) {
    b.addSubnet(net, bits, 'ipv4');
  }
  for (const [net, bits] of [['::', 128], ['::1', 128], ['fc00::', 7], ['fe80::', 10], ['ff00::', 8]] as const) b.addSubnet(net, bits, 'ipv6');
  return b;
})();

function isPrivateTarget(address: string, family: number): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
  if (mapped !== undefined) return PRIVATE_TARGETS.check(mapped, 'ipv4');
  return PRIVATE_TARGETS.check(address, family === 6 ? 'ipv6' : 'ipv4');
}

/**
 * A fixed, minimal environment for commands: nothing of the agent's own leaks in, and output is
 * in the C locale. PowerShell cannot start without SystemRoot, so Windows keeps those variables.
 */
function commandEnv(platform: Platform): NodeJS.ProcessEnv {
  if (platform !== 'win32') return { LC_ALL: 'C', LANG: 'C', PATH: '/usr/sbin:/usr/bin:/sbin:/bin' };
  const systemRoot = process.env.SystemRoot ?? process.env.windir ?? 'C:\\Windows';
  return {
    LC_ALL: 'C',
    LANG: 'C',
    SystemRoot: systemRoot,
    windir: systemRoot,
    PATH: `${systemRoot}\\System32;${systemRoot}\\System32\\WindowsPowerShell\\v1.0`,
    PSModulePath: `${systemRoot}\\System32\\WindowsPowerShell\\v1.0\\Modules`,
  };
}

export function currentPlatform(): Platform {
  const p = process.platform;
  if (p === 'linux' || p === 'darwin' || p === 'win32') return p;
  // Other Unixes get the Linux readers; checks answer unknown where sources are missing.
  return 'linux';
}

function commandKey(command: string, args: readonly string[]): string {
  return JSON.stringify([command, ...args]);
}

type ResolveStep = { op: 'lstat'; path: string } | { op: 'readlink'; path: string };

/**
 * The walk behind `resolve`, written once for the asynchronous and the synchronous callers: it
 * yields each lstat (answered with "is a symlink", or null when lstat failed) and readlink it needs.
 */
function* resolveSteps(root: string, hostPath: string, followFinal: boolean): Generator<ResolveStep, string, boolean | null | string> {
  if (!hostPath.startsWith('/')) {
    throw new CheckError('CHK_ERR_INTERNAL', 'host paths must be absolute', { subject: hostPath });
  }
  if (hostPath.split('/').includes('..')) {
    throw new CheckError('CHK_ERR_INTERNAL', 'host paths must not contain ".."', { subject: hostPath });
  }
  if (root === '/') return path.posix.normalize(hostPath);
  let resolved: string[] = [];
  let pending = hostPath.split('/');
  for (let hops = 0; pending.length > 0; ) {
    const part = pending.shift()!;
    if (part === '' || part === '.') continue;
    if (part === '..') {
      resolved.pop();
      continue;
    }
    if (pending.length === 0 && !followFinal) {
      resolved.push(part);
      break;
    }
    const candidate = path.join(root, ...resolved, part);
    const isLink = yield { op: 'lstat', path: candidate };
    if (isLink === null) {
      // Missing or unreadable: the operation itself reports it with the right code.
      resolved.push(part, ...pending);
      break;
    }
    if (isLink !== true) {
      resolved.push(part);
      continue;
    }
    if (++hops > MAX_SYMLINK_HOPS) throw new CheckError('CHK_ERR_SOURCE_MISSING', 'too many symbolic links', { subject: hostPath });
    const target = String(yield { op: 'readlink', path: candidate });
    if (target.startsWith('/')) resolved = [];
    pending = [...target.split('/'), ...pending];
  }
  return path.join(root, ...resolved);
}

async function isSymlink(p: string): Promise<boolean | null> {
  try {
    return (await lstat(p)).isSymbolicLink();
  } catch {
    return null;
  }
}

function isSymlinkSync(p: string): boolean | null {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return null;
  }
}

/**
 * Kernel pseudo-files that the kernel answers from memory: no disk, no network, and no lock that
 * another process can hold indefinitely. These are read with synchronous syscalls. Each
 * asynchronous open, stat, read, close or readlink is a round trip through libuv's thread pool,
 * which costs about ten times the CPU of the syscall itself, and a cycle's scans of /proc make
 * hundreds of them. Everything else (files on disks, which may be network mounts) stays
 * asynchronous, so that a hung read still ends in CHK_ERR_TIMEOUT. Left out on purpose:
 * per-process files that take the process's memory-map lock (cmdline, environ, maps,
 * map_files), which a process stuck in uninterruptible sleep can hold, and sysfs attributes that
 * ask a driver (speed, duplex, ...).
 */
const IN_MEMORY = {
  readFile: [
    /^\/proc\/(\d+|self)\/comm$/,
    /^\/proc\/net\/[^/]+$/,
    /^\/proc\/sys\/kernel\/[a-z_]+$/,
    /^\/proc\/(cmdline|modules)$/,
    /^\/sys\/class\/net\/[^/]+\/(type|flags|operstate|uevent|tun_flags)$/,
    /^\/sys\/bus\/usb\/devices\/[^/]+\/(bInterfaceClass|bInterfaceProtocol|idVendor|idProduct|product|manufacturer|authorized)$/,
  ],
  readDir: [/^\/proc(\/(\d+|self)\/fd)?$/, /^\/sys\//],
  readLink: [/^\/proc\/(\d+|self)\/fd\/\d+$/, /^\/sys\//],
  stat: [/^\/sys\//],
} as const;

function inMemory(op: keyof typeof IN_MEMORY, hostPath: string): boolean {
  return IN_MEMORY[op].some((re) => re.test(hostPath));
}

function fileStat(s: Stats): FileStat {
  return {
    type: s.isSymbolicLink() ? 'symlink' : s.isDirectory() ? 'dir' : s.isFile() ? 'file' : 'other',
    size: s.size,
    mode: s.mode & 0o7777,
    uid: s.uid,
    gid: s.gid,
    mtimeMs: s.mtimeMs,
    ctimeMs: s.ctimeMs,
    ino: s.ino,
  };
}

const READ_CHUNK_BYTES = 64 * 1024;

/**
 * Reads whole lines until one matches `until` (or the end), then stops. For /proc tables that the
 * kernel generates as they are read: what is never read is never generated.
 */
function readLinesUntilSync(real: string, until: RegExp, hostPath: string): string {
  const fd = openSync(real, 'r');
  try {
    const chunk = Buffer.allocUnsafe(READ_CHUNK_BYTES);
    const decoder = new StringDecoder('utf8');
    let text = '';
    let checked = 0; // lines before this offset have been tested
    for (;;) {
      const n = readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) return text + decoder.end();
      text += decoder.write(chunk.subarray(0, n));
      if (text.length > MAX_FILE_BYTES) throw new CheckError('CHK_ERR_PARSE', 'file is larger than any source should be', { subject: hostPath });
      for (let nl = text.indexOf('\n', checked); nl >= 0; nl = text.indexOf('\n', checked)) {
        const line = text.slice(checked, nl);
        checked = nl + 1;
        if (until.test(line)) return text.slice(0, checked);
      }
    }
  } finally {
    closeSync(fd);
  }
}

function dirEntry(e: Dirent): DirEntry {
  return { name: e.name, type: e.isSymbolicLink() ? 'symlink' : e.isDirectory() ? 'dir' : e.isFile() ? 'file' : 'other' };
}

export class RealHostIO implements HostIO {
  readonly platform: Platform;
  readonly root: string;
  readonly #allowed: Set<string>;
  readonly #timeoutMs: number;

  constructor(opts: RealHostIOOptions = {}) {
    this.root = path.resolve(opts.root ?? '/');
    this.platform = opts.platform ?? currentPlatform();
    this.#allowed = new Set((opts.allowedCommands ?? []).map((c) => commandKey(c.command, c.args)));
    this.#timeoutMs = opts.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
    this.#probeUrls = (opts.allowedProbeUrls ?? []).map((u) => new URL(u).href);
    this.#probePrivate = opts.allowPrivateProbeTargets === true;
  }

  readonly #probeUrls: readonly string[];
  readonly #probePrivate: boolean;

  /**
   * Maps a host-absolute path under the root. Relative paths and `..` segments are refused.
   * Under a root prefix, symlinks are resolved as the host would see them: an absolute target
   * restarts at the root, and `..` never climbs above it (as in a chroot).
   */
  async resolve(hostPath: string, followFinal = true): Promise<string> {
    const steps = resolveSteps(this.root, hostPath, followFinal);
    for (let step = steps.next(); ; ) {
      if (step.done === true) return step.value;
      step = steps.next(step.value.op === 'lstat' ? await isSymlink(step.value.path) : await readlink(step.value.path));
    }
  }

  /** `resolve` with synchronous syscalls, for kernel pseudo-files only (see IN_MEMORY). */
  resolveSync(hostPath: string, followFinal = true): string {
    const steps = resolveSteps(this.root, hostPath, followFinal);
    for (let step = steps.next(); ; ) {
      if (step.done === true) return step.value;
      step = steps.next(step.value.op === 'lstat' ? isSymlinkSync(step.value.path) : readlinkSync(step.value.path));
    }
  }

  async readFile(hostPath: string, opts: ReadFileOptions = {}): Promise<string> {
    const sync = inMemory('readFile', hostPath);
    const real = sync ? this.resolveSync(hostPath) : await this.resolve(hostPath);
    let buf: Buffer;
    try {
      if (sync && opts.until !== undefined) return readLinesUntilSync(real, opts.until, hostPath);
      buf = sync ? readFileSync(real) : await readFile(real);
    } catch (err) {
      if (isCheckError(err)) throw err;
      throw new CheckError(codeForFsError(err), 'cannot read file', { subject: hostPath, cause: err });
    }
    if (buf.length > MAX_FILE_BYTES) {
      throw new CheckError('CHK_ERR_PARSE', 'file is larger than any source should be', { subject: hostPath });
    }
    return buf.toString('utf8');
  }

  async readDir(hostPath: string): Promise<DirEntry[]> {
    const sync = inMemory('readDir', hostPath);
    const real = sync ? this.resolveSync(hostPath) : await this.resolve(hostPath);
    try {
      return (sync ? readdirSync(real, { withFileTypes: true }) : await readdir(real, { withFileTypes: true })).map(dirEntry);
    } catch (err) {
      throw new CheckError(codeForFsError(err), 'cannot list directory', { subject: hostPath, cause: err });
    }
  }

  async readLink(hostPath: string): Promise<string> {
    const sync = inMemory('readLink', hostPath);
    const real = sync ? this.resolveSync(hostPath, false) : await this.resolve(hostPath, false);
    try {
      return sync ? readlinkSync(real) : await readlink(real);
    } catch (err) {
      throw new CheckError(codeForFsError(err), 'cannot read link', { subject: hostPath, cause: err });
    }
  }

  async stat(hostPath: string): Promise<FileStat> {
    const sync = inMemory('stat', hostPath);
    const real = sync ? this.resolveSync(hostPath, false) : await this.resolve(hostPath, false);
    try {
      return fileStat(sync ? lstatSync(real) : await lstat(real));
    } catch (err) {
      throw new CheckError(codeForFsError(err), 'cannot stat', { subject: hostPath, cause: err });
    }
  }

  async httpGet(url: string, opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<HttpResult> {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new CheckError('CHK_ERR_NOT_CONFIGURED', 'the probe URL is not a URL', { subject: url });
    }
    if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') {
      throw new CheckError('CHK_ERR_NOT_CONFIGURED', 'probe URLs are http or https', { subject: url });
    }
    // Where the agent connects is the provider's to say: only URLs its own config lists, https
    // unless the listed URL itself is http, and never a private address unless the config allows.
    const allowed = this.#probeUrls.find((p) => parsed.href.startsWith(p));
    if (allowed === undefined) {
      throw new CheckError('CHK_ERR_NOT_CONFIGURED', "the agent config's probes.allowedUrls does not list this probe URL", { subject: url });
    }
    if (parsed.protocol === 'http:' && !allowed.startsWith('http:')) throw new CheckError('CHK_ERR_NOT_CONFIGURED', 'probes use https', { subject: url });
    const timeout = AbortSignal.timeout(opts.timeoutMs ?? DEFAULT_HTTP_TIMEOUT_MS);
    const signal = opts.signal === undefined ? timeout : AbortSignal.any([timeout, opts.signal]);
    try {
      if (!this.#probePrivate) {
        const host = parsed.hostname.replace(/^\[|\]$/g, '');
        const addresses = isIP(host) !== 0 ? [{ address: host, family: isIP(host) }] : await lookup(host, { all: true });
        if (addresses.some((a) => isPrivateTarget(a.address, a.family))) {
          throw new CheckError('CHK_ERR_NOT_CONFIGURED', "the probe's host is a private, loopback or link-local address, which the agent config does not allow (probes.allowPrivateTargets)", { subject: url });
        }
      }
      const res = await fetch(parsed, { signal, redirect: 'error' });
      // Read up to the cap and stop: a huge answer must not become the agent's memory.
      const chunks: Buffer[] = [];
      let size = 0;
      const reader = res.body?.getReader();
      while (reader !== undefined && size < MAX_HTTP_BODY_BYTES) {
        const { done, value } = await reader.read();
        if (done) break;
        chunks.push(Buffer.from(value));
        size += value.byteLength;
      }
      await reader?.cancel().catch(() => undefined);
      return { status: res.status, body: Buffer.concat(chunks).subarray(0, MAX_HTTP_BODY_BYTES).toString('utf8') };
    } catch (err) {
      if (isCheckError(err)) throw err;
      const name = (err as Error).name;
      if (name === 'TimeoutError' || name === 'AbortError') {
        throw new CheckError('CHK_ERR_TIMEOUT', 'the probe timed out', { subject: url, cause: err });
      }
      throw new CheckError('CHK_ERR_NETWORK', 'the probe failed', { subject: url, cause: err });
    }
  }

  run(command: string, args: readonly string[], opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<CommandResult> {
    if (!path.isAbsolute(command) || !this.#allowed.has(commandKey(command, args))) {
      return Promise.reject(
        new CheckError('CHK_ERR_COMMAND_NOT_ALLOWED', 'command is not on the allow-list', { subject: command }),
      );
    }
    const timeout = opts.timeoutMs ?? this.#timeoutMs;
    return new Promise((resolve, reject) => {
      execFile(
        command,
        [...args],
        {
          shell: false,
          timeout,
          killSignal: 'SIGKILL',
          ...(opts.signal === undefined ? {} : { signal: opts.signal }),
          maxBuffer: MAX_FILE_BYTES,
          windowsHide: true,
          encoding: 'utf8',
          env: commandEnv(this.platform),
        },
        (err, stdout, stderr) => {
          if (err === null) {
            resolve({ stdout, stderr, exitCode: 0 });
            return;
          }
          const e = err as NodeJS.ErrnoException & { killed?: boolean; code?: number | string };
          if (e.killed === true || e.name === 'AbortError') {
            reject(new CheckError('CHK_ERR_TIMEOUT', 'command timed out', { subject: command, cause: err }));
          } else if (typeof e.code === 'number') {
            // A non-zero exit is data for the parser (fdesetup exits 1 when FileVault is off).
            resolve({ stdout, stderr, exitCode: e.code });
          } else {
            reject(new CheckError(codeForFsError(err) === 'CHK_ERR_SOURCE_MISSING' ? 'CHK_ERR_SOURCE_MISSING' : 'CHK_ERR_COMMAND_FAILED', 'command could not run', { subject: command, cause: err }));
          }
        },
      );
    });
  }
}
