// macOS: pure parsers for lsof's field output (-F) and `id -u`. index.ts runs the commands.
// lsof -F writes one field per line, the first character naming the field (lsof(8), OUTPUT FOR
// OTHER PROGRAMS): `p` starts a process set (`c` command, `u` uid follow), `f` starts a file set
// of that process (`t` IPv4/IPv6, `P` TCP/UDP, `n` address, `T` TCP info such as `TST=LISTEN`).
import { CheckError } from '../errors.js';
import type { Listener } from './index.js';
import { parseAddress } from './address.js';
import type { Protocol } from './linux.js';

export const ID_U = { command: '/usr/bin/id', args: ['-u'] } as const;
// -n and -P keep addresses and ports numeric; +c is not needed: field output is not cut to the
// nine characters of the COMMAND column.
export const LSOF_TCP = { command: '/usr/sbin/lsof', args: ['-nP', '-iTCP', '-sTCP:LISTEN', '-FpcuftPnT'] } as const;
export const LSOF_UDP = { command: '/usr/sbin/lsof', args: ['-nP', '-iUDP', '-FpcuftPn'] } as const;

/** One open file (socket) from lsof -F, with the fields of its process. */
export interface LsofFile {
  pid: number;
  command: string | null;
  uid: number | null;
  fd: string | null;
  /** `IPv4` or `IPv6`. */
  type: string | null;
  /** `TCP` or `UDP`. */
  protocol: string | null;
  /** `*:22`, `127.0.0.1:631`, `[::1]:631`, `10.0.0.2:55000->10.0.0.1:53`. */
  name: string | null;
  /** From `TST=…`: `LISTEN`, `ESTABLISHED`; null for UDP. */
  tcpState: string | null;
}

function parseError(line: number, what: string, source: string): CheckError {
  return new CheckError('CHK_ERR_PARSE', `unexpected ${what} in lsof output on line ${line}`, { subject: source });
}

/** Parses lsof -F output (newline terminated fields). Unknown field letters are skipped. */
export function parseLsofFields(text: string, source = '/usr/sbin/lsof'): LsofFile[] {
  const out: LsofFile[] = [];
  let proc: { pid: number; command: string | null; uid: number | null } | null = null;
  let file: LsofFile | null = null;
  const flush = (): void => {
    if (file !== null) out.push(file);
    file = null;
  };
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] ?? '').replace(/\r$/, '');
    if (line === '') continue;
    const id = line[0];
    const value = line.slice(1);
    if (id === 'p') {
      flush();
      if (!/^\d+$/.test(value)) throw parseError(i + 1, 'process id', source);
      proc = { pid: Number(value), command: null, uid: null };
      continue;
    }
    if (proc === null) throw parseError(i + 1, 'field before any process', source);
    if (id === 'f') {
      flush();
      file = { ...proc, fd: value, type: null, protocol: null, name: null, tcpState: null };
      continue;
    }
    if (file === null) {
      // Process fields come before the first file of the process.
      if (id === 'c') proc.command = value;
      else if (id === 'u') {
        if (!/^\d+$/.test(value)) throw parseError(i + 1, 'uid', source);
        proc.uid = Number(value);
      }
      continue;
    }
    const f: LsofFile = file;
    if (id === 't') f.type = value;
    else if (id === 'P') f.protocol = value;
    else if (id === 'n') f.name = value;
    else if (id === 'T' && value.startsWith('ST=')) f.tcpState = value.slice(3);
  }
  flush();
  return out;
}

/** `[::1]:631` → host `::1`, port `631`; `*:*` → port `*`; a `->` marks a connected socket. */
export function splitLsofName(name: string): { host: string; port: string; connected: boolean } | null {
  const arrow = name.indexOf('->');
  const local = arrow < 0 ? name : name.slice(0, arrow);
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d+|\*)$/.exec(local);
  if (m === null) return null;
  return { host: m[1] ?? m[2] ?? '', port: m[3] ?? '', connected: arrow >= 0 };
}

/**
 * The sockets that accept traffic: TCP in LISTEN (lsof was asked for those only; the state is
 * checked again), UDP bound to a port and not connected (a connected UDP socket is a client).
 */
export function listenersFromLsof(files: readonly LsofFile[], protocol: Protocol, source = '/usr/sbin/lsof'): Listener[] {
  const out: Listener[] = [];
  for (const f of files) {
    if (f.protocol?.toUpperCase() !== protocol.toUpperCase() || f.name === null) continue;
    if (protocol === 'tcp' && f.tcpState !== null && f.tcpState !== 'LISTEN') continue;
    const parts = splitLsofName(f.name);
    if (parts === null) throw new CheckError('CHK_ERR_PARSE', `unexpected lsof address ${JSON.stringify(f.name)}`, { subject: source });
    if (parts.connected || parts.port === '*') continue;
    const port = Number(parts.port);
    if (port < 1 || port > 65535) continue;
    const family = f.type === 'IPv4' ? 'ipv4' : f.type === 'IPv6' ? 'ipv6' : undefined;
    const addr = parseAddress(parts.host, family);
    if (addr === null) throw new CheckError('CHK_ERR_PARSE', `unexpected lsof address ${JSON.stringify(f.name)}`, { subject: source });
    out.push({
      protocol,
      family: addr.family,
      address: addr.address,
      port,
      scope: addr.scope,
      uid: f.uid,
      inode: null,
      process: { pid: f.pid, name: f.command },
      processState: 'resolved',
    });
  }
  return out;
}

/** The output of `id -u`: one decimal uid. */
export function parseUid(text: string): number | null {
  const t = text.trim();
  return /^\d+$/.test(t) ? Number(t) : null;
}
