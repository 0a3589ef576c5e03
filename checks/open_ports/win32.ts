// Windows: one PowerShell script lists the listening TCP sockets (Get-NetTCPConnection -State
// Listen) and the UDP endpoints (Get-NetUDPEndpoint), with each owner's process name from
// Get-Process, as JSON. The parsers here are pure; index.ts runs the command.
import * as z from 'zod';
import { CheckError } from '../errors.js';
import type { Listener } from './index.js';
import { parseAddress } from './address.js';
import type { Protocol } from './linux.js';

export const POWERSHELL = 'C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe';

// Windows PowerShell 5.1. Single quotes only (the command line is quoted by Node). Errors are
// returned as data so that the agent can tell "none found" from "denied"; @() keeps one row an
// array. Get-Process -Id with a pid that has exited meanwhile leaves that name null.
export const LISTENERS_SCRIPT = [
  "$ErrorActionPreference = 'Stop'",
  'function Err($x) { [ordered]@{ Id = [string]$x.FullyQualifiedErrorId; Category = [string]$x.CategoryInfo.Category; Type = [string]$x.Exception.GetType().FullName; Message = [string]$x.Exception.Message } }',
  '$tcp = @(); $tcpErr = $null',
  'try { $tcp = @(Get-NetTCPConnection -State Listen) } catch { $tcpErr = Err $_ }',
  '$udp = @(); $udpErr = $null',
  'try { $udp = @(Get-NetUDPEndpoint) } catch { $udpErr = Err $_ }',
  '$ids = @(@($tcp) + @($udp) | ForEach-Object { [int]$_.OwningProcess } | Sort-Object -Unique)',
  '$names = @{}',
  'if ($ids.Count -gt 0) { foreach ($p in @(Get-Process -Id $ids -ErrorAction SilentlyContinue)) { $names[[int]$p.Id] = [string]$p.ProcessName } }',
  'function Row($c) { [ordered]@{ LocalAddress = [string]$c.LocalAddress; LocalPort = [int]$c.LocalPort; OwningProcess = [int]$c.OwningProcess; ProcessName = $names[[int]$c.OwningProcess] } }',
  '[pscustomobject]@{ Tcp = @(foreach ($c in $tcp) { Row $c }); TcpError = $tcpErr; Udp = @(foreach ($c in $udp) { Row $c }); UdpError = $udpErr } | ConvertTo-Json -Depth 5 -Compress',
].join('; ');

export const LISTENERS_COMMAND = {
  command: POWERSHELL,
  args: ['-NoProfile', '-NonInteractive', '-Command', LISTENERS_SCRIPT],
} as const;

/** ConvertTo-Json in PowerShell 5.1 writes one element as an object, not a one-element array. */
function listOf<T extends z.ZodType>(item: T) {
  return z.preprocess((v) => (v === null || v === undefined ? [] : Array.isArray(v) ? v : [v]), z.array(item));
}

const text = z.preprocess((v) => (typeof v === 'number' ? String(v) : v ?? ''), z.string());

const errorSchema = z.object({ Id: text, Category: text, Type: text, Message: text });
export type PsError = z.infer<typeof errorSchema>;

const rowSchema = z.object({
  LocalAddress: z.string(),
  LocalPort: z.number().int().min(0).max(65535),
  OwningProcess: z.number().int().nonnegative().nullable().default(null),
  ProcessName: z.string().nullable().default(null),
});
export type EndpointRow = z.infer<typeof rowSchema>;

const reportSchema = z.object({
  Tcp: listOf(rowSchema),
  TcpError: errorSchema.nullable().default(null),
  Udp: listOf(rowSchema),
  UdpError: errorSchema.nullable().default(null),
});
export type ListenersReport = z.infer<typeof reportSchema>;

/** Parses the script's output. Throws CHK_ERR_PARSE when it is not the expected JSON. */
export function parseListenersReport(stdout: string): ListenersReport {
  const body = stdout.replace(/^\uFEFF/, '').trim();
  if (body === '') throw new CheckError('CHK_ERR_PARSE', 'the listener script printed nothing', { subject: POWERSHELL });
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    throw new CheckError('CHK_ERR_PARSE', 'the listener script did not print JSON', { subject: POWERSHELL });
  }
  const parsed = reportSchema.safeParse(json);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    throw new CheckError('CHK_ERR_PARSE', `unexpected listener script output at ${first?.path.join('.') ?? '?'}: ${first?.message ?? ''}`, { subject: POWERSHELL });
  }
  return parsed.data;
}

/** "No MSFT_NetTCPConnection objects found" is what -State Listen says when nothing listens. */
export function isNothingFound(err: PsError): boolean {
  return err.Id.startsWith('CmdletizationQuery_NotFound');
}

export function codeForPsError(err: PsError): 'CHK_ERR_PERMISSION' | 'CHK_ERR_SOURCE_MISSING' | 'CHK_ERR_COMMAND_FAILED' {
  if (err.Category === 'PermissionDenied' || /UnauthorizedAccess/.test(err.Type) || /access (is )?denied|0x80070005|0x80041003/i.test(err.Message)) {
    return 'CHK_ERR_PERMISSION';
  }
  if (/CommandNotFoundException/.test(err.Type)) return 'CHK_ERR_SOURCE_MISSING';
  return 'CHK_ERR_COMMAND_FAILED';
}

/**
 * Rows → listeners. Windows has no uid or inode for a socket. Pid 0 is not a process; a pid whose
 * name Get-Process could not give (it exited, or is hidden) keeps its pid with a null name.
 */
export function listenersFromRows(rows: readonly EndpointRow[], protocol: Protocol): Listener[] {
  const out: Listener[] = [];
  for (const r of rows) {
    if (r.LocalPort === 0) continue;
    const addr = parseAddress(r.LocalAddress);
    if (addr === null) throw new CheckError('CHK_ERR_PARSE', `unexpected local address ${JSON.stringify(r.LocalAddress)}`, { subject: POWERSHELL });
    const pid = r.OwningProcess;
    const known = pid !== null && pid > 0;
    out.push({
      protocol,
      family: addr.family,
      address: addr.address,
      port: r.LocalPort,
      scope: addr.scope,
      uid: null,
      inode: null,
      process: known ? { pid, name: r.ProcessName === '' ? null : r.ProcessName } : null,
      processState: known ? 'resolved' : 'not_found',
    });
  }
  return out;
}
