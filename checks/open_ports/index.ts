// open_ports: every listening TCP and UDP socket (IPv4 and IPv6), its bound address and owning
// process, judged against the policy's allow-list.
import * as z from 'zod';
import { CheckError, isCheckError } from '../errors.js';
import type { Check, CollectContext, CommandResult, DirEntry, Evaluation, HostIO, Reason, SourceDecl } from '../types.js';
import { ID_U, listenersFromLsof, LSOF_TCP, LSOF_UDP, parseLsofFields, parseUid } from './darwin.js';
import { AFTER_TCP_LISTENERS, listenersFromProcNet, pidsFromProcListing, socketInode, type Family, type ParsedListener, type Protocol } from './linux.js';
import { codeForPsError, isNothingFound, LISTENERS_COMMAND, listenersFromRows, parseListenersReport, POWERSHELL, type PsError } from './win32.js';
import { verdict } from '../verdict.js';

const protocolSchema = z.enum(['tcp', 'udp']);
const portNumber = z.number().int().min(1).max(65535);

const allowEntrySchema = z
  .object({
    protocol: protocolSchema,
    /** One port, or an inclusive range. */
    port: z.union([
      portNumber,
      z
        .object({ from: portNumber, to: portNumber })
        .strict()
        .refine((r) => r.from <= r.to, { message: 'from must not exceed to' }),
    ]),
    /**
     * Matched exactly against the owning process's name: /proc/<pid>/comm on Linux (at most 15
     * bytes), lsof's command name on macOS, the process name without `.exe` on Windows.
     */
    process: z.string().min(1).optional(),
  })
  .strict();

export const configSchema = z
  .object({
    allow: z.array(allowEntrySchema).default([]),
    /** Listeners bound only to loopback cannot be reached from the network. */
    allowLoopback: z.boolean().default(true),
  })
  .strict();
export type Config = z.output<typeof configSchema>;
export type AllowEntry = z.output<typeof allowEntrySchema>;

const listenerSchema = z.object({
  protocol: protocolSchema,
  family: z.enum(['ipv4', 'ipv6']),
  address: z.string(),
  port: z.number().int().min(0).max(65535),
  scope: z.enum(['wildcard', 'loopback', 'specific']),
  /** Owner's uid (Linux, macOS); null where the platform has none for a socket (Windows). */
  uid: z.number().int().nonnegative().nullable(),
  /** Socket inode (Linux); null elsewhere. */
  inode: z.number().int().nonnegative().nullable(),
  /** `name` is null when the process exited before its comm could be read. */
  process: z.object({ pid: z.number().int().positive(), name: z.string().nullable() }).nullable(),
  /**
   * resolved: owner found. unreadable: not found, and some process's fds could not be read, so
   * we cannot tell. not_found: every process was readable and none holds it (kernel sockets,
   * sockets held by processes in another pid namespace).
   */
  processState: z.enum(['resolved', 'unreadable', 'not_found']),
});

export const factsSchema = z.object({
  listeners: z.array(listenerSchema),
  /** Optional tables that do not exist here (tcp6/udp6 when IPv6 is disabled). */
  missingSources: z.array(z.string()),
  /** The Linux /proc scan for owners; macOS and Windows get owners from lsof and Get-Process. */
  processScan: z
    .object({
    /** Processes whose fd directory was examined. */
    pids: z.number().int().nonnegative(),
    /** Processes whose fds we were not allowed to read. */
    denied: z.number().int().nonnegative(),
    /** Processes that exited while we scanned. */
    vanished: z.number().int().nonnegative(),
  })
    .optional(),
});
export type Facts = z.output<typeof factsSchema>;
export type Listener = Facts['listeners'][number];

// TCP tables are read only as far as their listeners go; UDP tables have no such order.
const TABLES: readonly { path: string; protocol: Protocol; family: Family; optional: boolean; until?: RegExp }[] = [
  { path: '/proc/net/tcp', protocol: 'tcp', family: 'ipv4', optional: false, until: AFTER_TCP_LISTENERS },
  { path: '/proc/net/tcp6', protocol: 'tcp', family: 'ipv6', optional: true, until: AFTER_TCP_LISTENERS },
  { path: '/proc/net/udp', protocol: 'udp', family: 'ipv4', optional: false },
  { path: '/proc/net/udp6', protocol: 'udp', family: 'ipv6', optional: true },
];

const linuxSources: readonly SourceDecl[] = [
  { kind: 'file', path: '/proc/net/tcp', why: 'listening IPv4 TCP sockets' },
  { kind: 'file', path: '/proc/net/tcp6', why: 'listening IPv6 TCP sockets (absent when IPv6 is disabled)' },
  { kind: 'file', path: '/proc/net/udp', why: 'bound IPv4 UDP sockets' },
  { kind: 'file', path: '/proc/net/udp6', why: 'bound IPv6 UDP sockets (absent when IPv6 is disabled)' },
  { kind: 'file', path: '/proc', why: 'process ids, to find which process owns each listener' },
  { kind: 'file', path: '/proc/<pid>/fd', why: 'open file descriptors of each process, to find the listening sockets' },
  { kind: 'file', path: '/proc/<pid>/fd/*', why: 'link targets only (socket:[inode]); files are never opened' },
  { kind: 'file', path: '/proc/<pid>/comm', why: 'the name of a process that owns a listener' },
];

const darwinSources: readonly SourceDecl[] = [
  { kind: 'command', command: ID_U.command, args: ID_U.args, why: "the agent's uid: lsof shows other users' sockets to root only" },
  { kind: 'command', command: LSOF_TCP.command, args: LSOF_TCP.args, why: 'listening TCP sockets (IPv4 and IPv6) with pid, command and uid' },
  { kind: 'command', command: LSOF_UDP.command, args: LSOF_UDP.args, why: 'bound UDP sockets (IPv4 and IPv6) with pid, command and uid' },
];

const win32Sources: readonly SourceDecl[] = [
  {
    kind: 'command',
    command: LISTENERS_COMMAND.command,
    args: LISTENERS_COMMAND.args,
    why: 'listening TCP sockets (Get-NetTCPConnection -State Listen) and UDP endpoints (Get-NetUDPEndpoint), IPv4 and IPv6, with owning pid and process name (Get-Process)',
  },
];

/** readLinks in flight per process: enough to hide syscall latency, few enough to stop early. */
export const FD_BATCH = 64;

type ErrorClass = 'denied' | 'gone';

function classify(err: unknown): ErrorClass | null {
  if (!isCheckError(err)) return null;
  if (err.code === 'CHK_ERR_PERMISSION') return 'denied';
  if (err.code === 'CHK_ERR_SOURCE_MISSING') return 'gone';
  return null;
}

function throwIfAborted(signal: AbortSignal): void {
  if (signal.aborted) throw new CheckError('CHK_ERR_TIMEOUT', 'the process scan ran out of time');
}

interface Scan {
  owners: Map<number, number>;
  pids: number;
  denied: number;
  vanished: number;
}

/**
 * Finds the pid holding each socket inode by reading /proc/<pid>/fd links. Processes we may not
 * read or that exit meanwhile are counted and skipped. Stops once every inode has an owner.
 */
async function findOwners(io: HostIO, inodes: ReadonlySet<number>, signal: AbortSignal): Promise<Scan> {
  const scan: Scan = { owners: new Map(), pids: 0, denied: 0, vanished: 0 };
  const remaining = new Set(inodes);
  if (remaining.size === 0) return scan;
  for (const pid of pidsFromProcListing(await io.readDir('/proc'))) {
    if (remaining.size === 0) break;
    throwIfAborted(signal);
    scan.pids++;
    const dir = `/proc/${pid}/fd`;
    let entries: DirEntry[];
    try {
      entries = await io.readDir(dir);
    } catch (err) {
      const c = classify(err);
      if (c === null) throw err;
      scan[c === 'denied' ? 'denied' : 'vanished']++;
      continue;
    }
    // fd entries are symlinks; anything else is not an open descriptor.
    const links = entries.filter((e) => e.type === 'symlink').map((e) => `${dir}/${e.name}`);
    for (let i = 0; i < links.length && remaining.size > 0; i += FD_BATCH) {
      const results = await Promise.allSettled(links.slice(i, i + FD_BATCH).map((p) => io.readLink(p)));
      let denied = false;
      for (const r of results) {
        if (r.status === 'rejected') {
          const c = classify(r.reason);
          if (c === null) throw r.reason;
          // A closed fd is skipped; a denied one means the whole process is unreadable.
          if (c === 'denied') denied = true;
          continue;
        }
        const inode = socketInode(r.value);
        if (inode !== null && remaining.delete(inode)) scan.owners.set(inode, pid);
      }
      if (denied) {
        scan.denied++;
        break;
      }
    }
  }
  return scan;
}

async function processNames(io: HostIO, pids: Iterable<number>): Promise<Map<number, string | null>> {
  const names = new Map<number, string | null>();
  for (const pid of [...new Set(pids)].sort((a, b) => a - b)) {
    try {
      names.set(pid, (await io.readFile(`/proc/${pid}/comm`)).trim());
    } catch (err) {
      if (classify(err) === null) throw err;
      names.set(pid, null);
    }
  }
  return names;
}

// Code-unit order, not localeCompare: the order must not depend on the host's locale.
function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function compareListeners(a: Listener, b: Listener): number {
  return (
    cmp(a.protocol, b.protocol) ||
    cmp(a.family, b.family) ||
    cmp(a.address, b.address) ||
    a.port - b.port ||
    (a.process?.pid ?? Number.MAX_SAFE_INTEGER) - (b.process?.pid ?? Number.MAX_SAFE_INTEGER) ||
    (a.inode ?? 0) - (b.inode ?? 0)
  );
}

/**
 * SO_REUSEPORT groups show one row per socket (Linux), and a socket shared by several fds of one
 * process shows once per fd (lsof): keep one per address, port and process.
 */
export function dedupe(sorted: readonly Listener[]): Listener[] {
  const seen = new Set<string>();
  return sorted.filter((l) => {
    const key = JSON.stringify([l.protocol, l.family, l.address, l.port, l.process?.pid ?? null]);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

async function collectLinux(ctx: CollectContext): Promise<Facts> {
  const { io, signal } = ctx;
  const parsed: ParsedListener[] = [];
  const missingSources: string[] = [];
  for (const t of TABLES) {
    let text: string;
    try {
      text = await io.readFile(t.path, t.until === undefined ? {} : { until: t.until });
    } catch (err) {
      if (t.optional && isCheckError(err) && err.code === 'CHK_ERR_SOURCE_MISSING') {
        missingSources.push(t.path);
        continue;
      }
      throw err;
    }
    parsed.push(...listenersFromProcNet(text, t.protocol, t.family, t.path));
  }

  // Inode 0 is never a live descriptor's socket, so it cannot be matched.
  const scan = await findOwners(io, new Set(parsed.map((l) => l.inode).filter((i) => i !== 0)), signal);
  const names = await processNames(io, scan.owners.values());
  const unresolved = scan.denied > 0 ? 'unreadable' : 'not_found';
  const listeners = parsed.map((l): Listener => {
    const pid = scan.owners.get(l.inode);
    return pid === undefined
      ? { ...l, process: null, processState: unresolved }
      : { ...l, process: { pid, name: names.get(pid) ?? null }, processState: 'resolved' };
  });
  return {
    listeners: dedupe(listeners.sort(compareListeners)),
    missingSources,
    processScan: { pids: scan.pids, denied: scan.denied, vanished: scan.vanished },
  };
}

/** lsof exits 1 with no output when nothing matches; any other failure is not "no listeners". */
function lsofOutput(res: CommandResult): string {
  if (res.exitCode === 0) return res.stdout;
  if (res.exitCode === 1 && res.stdout.trim() === '' && res.stderr.trim() === '') return '';
  const said = res.stderr.trim().split('\n')[0] ?? '';
  throw new CheckError('CHK_ERR_COMMAND_FAILED', `lsof exited with ${res.exitCode}${said === '' ? '' : `: ${said.slice(0, 200)}`}`, { subject: LSOF_TCP.command });
}

async function collectDarwin(io: HostIO): Promise<Facts> {
  const id = await io.run(ID_U.command, ID_U.args);
  const uid = id.exitCode === 0 ? parseUid(id.stdout) : null;
  if (uid === null) throw new CheckError('CHK_ERR_COMMAND_FAILED', 'cannot tell which user the agent runs as (id -u)', { subject: ID_U.command });
  // Without root, lsof lists only the agent user's own sockets: that would read as "no listeners".
  if (uid !== 0) {
    throw new CheckError('CHK_ERR_PERMISSION', `lsof shows other users' sockets only to root, and the agent runs as uid ${uid}`, { subject: LSOF_TCP.command });
  }
  const tcp = listenersFromLsof(parseLsofFields(lsofOutput(await io.run(LSOF_TCP.command, LSOF_TCP.args))), 'tcp');
  const udp = listenersFromLsof(parseLsofFields(lsofOutput(await io.run(LSOF_UDP.command, LSOF_UDP.args))), 'udp');
  return { listeners: dedupe([...tcp, ...udp].sort(compareListeners)), missingSources: [] };
}

function throwPsError(what: string, err: PsError): never {
  throw new CheckError(codeForPsError(err), `${what} failed: ${err.Message.slice(0, 200)}`, { subject: what });
}

async function collectWin32(io: HostIO): Promise<Facts> {
  const res = await io.run(LISTENERS_COMMAND.command, LISTENERS_COMMAND.args);
  if (res.exitCode !== 0 && res.stdout.trim() === '') {
    const said = res.stderr.trim().split(/\r?\n/)[0] ?? '';
    throw new CheckError('CHK_ERR_COMMAND_FAILED', `powershell exited with ${res.exitCode}${said === '' ? '' : `: ${said.slice(0, 200)}`}`, { subject: POWERSHELL });
  }
  const report = parseListenersReport(res.stdout);
  if (report.TcpError !== null && !isNothingFound(report.TcpError)) throwPsError('Get-NetTCPConnection', report.TcpError);
  if (report.UdpError !== null && !isNothingFound(report.UdpError)) throwPsError('Get-NetUDPEndpoint', report.UdpError);
  const listeners = [...listenersFromRows(report.Tcp, 'tcp'), ...listenersFromRows(report.Udp, 'udp')];
  return { listeners: dedupe(listeners.sort(compareListeners)), missingSources: [] };
}

function portMatches(entry: AllowEntry, port: number): boolean {
  return typeof entry.port === 'number' ? entry.port === port : entry.port.from <= port && port <= entry.port.to;
}

/** `tcp/0.0.0.0:22 (sshd)`, `udp/[::1]:53 (pid 812)`, `tcp/[::]:80 (process unknown)`. */
export function describeListener(l: Listener): string {
  const host = l.family === 'ipv6' ? `[${l.address}]` : l.address;
  const who = l.process === null ? 'process unknown' : (l.process.name ?? `pid ${l.process.pid}`);
  return `${l.protocol}/${host}:${l.port} (${who})`;
}

/** Fail codes of this check; README.md documents each one, and a test keeps the two equal. */
export const OPEN_PORTS_FAIL_CODES = {
  CHK_FAIL_LISTENER_NOT_ALLOWED: 'a listener is reachable and no allow-list entry covers it',
} as const;

type Verdict = 'allowed' | 'denied' | 'undetermined';

export function judgeListener(l: Listener, config: Config): Verdict {
  if (l.scope === 'loopback' && config.allowLoopback) return 'allowed';
  const matching = config.allow.filter((e) => e.protocol === l.protocol && portMatches(e, l.port));
  if (matching.length === 0) return 'denied';
  if (matching.some((e) => e.process === undefined)) return 'allowed';
  const name = l.processState === 'resolved' ? l.process?.name : null;
  if (name === null || name === undefined) return 'undetermined';
  return matching.some((e) => e.process === name) ? 'allowed' : 'denied';
}

export function evaluate(facts: Facts, config: Config): Evaluation {
  const denied: Reason[] = [];
  const undetermined: Reason[] = [];
  const seen = new Set<string>();
  for (const l of facts.listeners) {
    const verdict = judgeListener(l, config);
    const subject = describeListener(l);
    // Several pids of one program (pre-forked workers) read the same to a person: say it once.
    if (verdict === 'allowed' || seen.has(subject)) continue;
    seen.add(subject);
    if (verdict === 'denied') {
      denied.push({ code: 'CHK_FAIL_LISTENER_NOT_ALLOWED', message: OPEN_PORTS_FAIL_CODES.CHK_FAIL_LISTENER_NOT_ALLOWED, subject });
    } else {
      undetermined.push({
        code: 'CHK_ERR_UNRESOLVED',
        message: 'the allow-list entries for this port name a process, and the owning process is unknown',
        subject,
      });
    }
  }
  return verdict(denied, undetermined);
}

export const openPorts: Check<Config, Facts> = {
  id: 'open_ports',
  version: '1.1.0',
  title: 'Only allow-listed network listeners',
  platforms: ['linux', 'darwin', 'win32'],
  sources: { linux: linuxSources, darwin: darwinSources, win32: win32Sources },
  configSchema,
  factsSchema,
  collect(ctx) {
    switch (ctx.platform) {
      case 'linux':
        return collectLinux(ctx);
      case 'darwin':
        return collectDarwin(ctx.io);
      case 'win32':
        return collectWin32(ctx.io);
      default:
        return Promise.reject(new CheckError('CHK_ERR_UNSUPPORTED_PLATFORM', `open_ports does not run on ${String(ctx.platform)}`));
    }
  },
  evaluate,
};
