// Pure parsers for credential_age on Linux (and the SSH parts macOS shares): /etc/passwd,
// /etc/shadow, ~/.ssh listings and authorized_keys. No I/O and no clock: callers pass `now`.
import { createHash } from 'node:crypto';
import { CheckError } from '../errors.js';
import type { DirEntry } from '../types.js';

export const DAY_MS = 86_400_000;

/**
 * set: a usable password. empty: no password at all (login without one). locked: `!`-prefixed.
 * none: a string no password can match (`*`, `x`, …). external: managed by a directory or an
 * online account, not by this host. unknown: the password store could not be read.
 */
export type PasswordState = 'set' | 'empty' | 'locked' | 'none' | 'external' | 'unknown';

export interface PasswdEntry {
  name: string;
  uid: number;
  home: string;
  shell: string;
  /** Field 2 is `x`: the password lives in /etc/shadow. Otherwise field 2 is the password itself. */
  shadowed: boolean;
  /** State of field 2 when it is not `x` (very old systems without shadow passwords). */
  legacyState: PasswordState;
}

export interface ShadowEntry {
  name: string;
  state: PasswordState;
  /** Field 3: days since 1970-01-01; 0 = must change at next login; null = aging disabled (empty). */
  lastChangeDay: number | null;
  /** Field 8: account expiry day, null when empty. */
  expireDay: number | null;
}

function parseError(what: string, subject: string, lineNo: number): CheckError {
  return new CheckError('CHK_ERR_PARSE', `${what} on line ${lineNo}`, { subject: `${subject}:${lineNo}` });
}

function lines(text: string): { line: string; no: number }[] {
  return text
    .split('\n')
    .map((line, i) => ({ line: line.replace(/\r$/, ''), no: i + 1 }))
    .filter(({ line }) => line.trim() !== '' && !line.startsWith('#'));
}

/**
 * Classifies a shadow(5) password field without keeping it. A field that is not a valid crypt(3)
 * result (`*`, `x`, `NP`…) matches no password; `!` in front locks a password.
 */
export function classifyPasswordField(field: string): PasswordState {
  if (field === '') return 'empty';
  if (field.startsWith('!')) return 'locked';
  if (field.startsWith('*')) return 'none';
  // Modular crypt ($id$…), traditional DES (13 chars), BSDi extended DES (_ + 19 chars).
  if (/^\$[A-Za-z0-9]+\$/.test(field) || /^[./0-9A-Za-z]{13}$/.test(field) || /^_[./0-9A-Za-z]{19}$/.test(field)) return 'set';
  return 'none';
}

export function parsePasswd(text: string, subject = '/etc/passwd'): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const { line, no } of lines(text)) {
    // NIS compat entries (+user, -@group) name no local account.
    if (line.startsWith('+') || line.startsWith('-')) continue;
    const f = line.split(':');
    if (f.length !== 7) throw parseError('expected 7 fields', subject, no);
    const [name, pw, uid, , , home, shell] = f as [string, string, string, string, string, string, string];
    if (name === '' || !/^\d+$/.test(uid)) throw parseError('bad name or uid', subject, no);
    out.push({ name, uid: Number(uid), home, shell, shadowed: pw === 'x', legacyState: pw === 'x' ? 'none' : classifyPasswordField(pw) });
  }
  return out;
}

function optionalDay(field: string | undefined, what: string, subject: string, no: number): number | null {
  if (field === undefined || field === '') return null;
  if (!/^-?\d+$/.test(field)) throw parseError(`bad ${what}`, subject, no);
  const n = Number(field);
  return n < 0 ? null : n;
}

/** Parses /etc/shadow. The password hash is classified and dropped, never returned. */
export function parseShadow(text: string, subject = '/etc/shadow'): Map<string, ShadowEntry> {
  const out = new Map<string, ShadowEntry>();
  for (const { line, no } of lines(text)) {
    if (line.startsWith('+') || line.startsWith('-')) continue;
    const f = line.split(':');
    if (f.length < 2 || f.length > 9 || f[0] === '') throw parseError('expected 2 to 9 fields', subject, no);
    const name = f[0]!;
    out.set(name, {
      name,
      state: classifyPasswordField(f[1]!),
      lastChangeDay: optionalDay(f[2], 'last-change day', subject, no),
      expireDay: optionalDay(f[7], 'expiry day', subject, no),
    });
  }
  return out;
}

const NO_LOGIN_SHELLS = new Set(['/usr/sbin/nologin', '/sbin/nologin', '/bin/false', '/usr/bin/false', '/bin/nologin', '/usr/bin/nologin']);

/** False for nologin/false shells. An empty shell field means /bin/sh (passwd(5)). */
export function isLoginShell(shell: string): boolean {
  return !NO_LOGIN_SHELLS.has(shell);
}

export function isoDay(day: number): string {
  return new Date(day * DAY_MS).toISOString().slice(0, 10);
}

/** Whole days from `fromMs` to `nowMs`, rounded down (negative when `fromMs` is in the future). */
export function ageInDays(fromMs: number, nowMs: number): number {
  return Math.floor((nowMs - fromMs) / DAY_MS);
}

export interface ScopeOptions {
  minUid: number;
  includeRoot: boolean;
}

/** Root only when asked for; other accounts from `minUid` up. */
export function inScope(uid: number, scope: ScopeOptions): boolean {
  return uid === 0 ? scope.includeRoot : uid >= scope.minUid;
}

export interface LinuxAccount {
  name: string;
  uid: number;
  home: string;
  shell: string;
  loginShell: boolean;
  password: PasswordState;
  /** False when the account has expired (shadow field 8); null when /etc/shadow was not read. */
  enabled: boolean | null;
}

export interface PasswordFact {
  account: string;
  lastChanged: string | null;
  ageDays: number | null;
  active: boolean;
  mustChange: boolean;
  note?: string;
}

/**
 * Joins passwd and shadow for the accounts in scope. `shadow` is null when it could not be read.
 * Expiry day 0 is ambiguous in shadow(5), so it is not read as expired: the password stays judged.
 */
export function linuxPasswords(
  passwd: readonly PasswdEntry[],
  shadow: ReadonlyMap<string, ShadowEntry> | null,
  scope: ScopeOptions,
  nowMs: number,
): { accounts: LinuxAccount[]; passwords: PasswordFact[] } {
  const today = Math.floor(nowMs / DAY_MS);
  const accounts: LinuxAccount[] = [];
  const passwords: PasswordFact[] = [];
  for (const p of passwd) {
    if (!inScope(p.uid, scope)) continue;
    const s = p.shadowed ? shadow?.get(p.name) : undefined;
    let state: PasswordState;
    let enabled: boolean | null;
    if (!p.shadowed) {
      state = p.legacyState;
      enabled = true;
    } else if (shadow === null) {
      state = 'unknown';
      enabled = null;
    } else if (s === undefined) {
      // `x` without a shadow entry: pam_unix finds no hash, so no password can log in.
      state = 'none';
      enabled = true;
    } else {
      state = s.state;
      enabled = !(s.expireDay !== null && s.expireDay > 0 && s.expireDay <= today);
    }
    accounts.push({ name: p.name, uid: p.uid, home: p.home, shell: p.shell, loginShell: isLoginShell(p.shell), password: state, enabled });
    // Locked, absent or unknown passwords are not credentials; the account list shows their state.
    if (state !== 'set') continue;
    const fact: PasswordFact = { account: p.name, lastChanged: null, ageDays: null, active: enabled !== false, mustChange: false };
    const day = s?.lastChangeDay ?? null;
    if (s === undefined) fact.note = 'the password is in /etc/passwd, which records no change date';
    else if (day === null) fact.note = 'password aging is disabled (empty last-change field)';
    else if (day === 0) {
      fact.mustChange = true;
      fact.note = 'the password must be changed at next login, so its age is not recorded';
    } else {
      fact.lastChanged = isoDay(day);
      fact.ageDays = today - day;
    }
    passwords.push(fact);
  }
  return { accounts, passwords };
}

// Files in ~/.ssh that are never private keys, whatever their name.
const NOT_PRIVATE_KEYS = new Set(['authorized_keys', 'authorized_keys2', 'known_hosts', 'known_hosts.old', 'config', 'environment', 'rc']);

/**
 * Private key files in a ~/.ssh listing, found by name only (contents are never read):
 * `id_*` that is not a `.pub`, and any `<name>` next to a `<name>.pub` (ssh-keygen -f <name>).
 */
export function privateKeyNames(entries: readonly DirEntry[]): string[] {
  const names = entries.filter((e) => e.type === 'file' || e.type === 'symlink').map((e) => e.name);
  const present = new Set(names);
  return names
    .filter((n) => !n.endsWith('.pub') && !NOT_PRIVATE_KEYS.has(n) && (n.startsWith('id_') || present.has(`${n}.pub`)))
    .sort(cmp);
}

export const AUTHORIZED_KEYS_FILES = ['authorized_keys', 'authorized_keys2'] as const;

export function authorizedKeysNames(entries: readonly DirEntry[]): string[] {
  const present = new Set(entries.filter((e) => e.type === 'file' || e.type === 'symlink').map((e) => e.name));
  return AUTHORIZED_KEYS_FILES.filter((n) => present.has(n));
}

/** Host private keys in an /etc/ssh listing: ssh_host_<type>_key, not the .pub halves. */
export function hostKeyNames(entries: readonly DirEntry[]): string[] {
  return entries
    .filter((e) => (e.type === 'file' || e.type === 'symlink') && /^ssh_host_[A-Za-z0-9_]+_key$/.test(e.name))
    .map((e) => e.name)
    .sort(cmp);
}

export interface AuthorizedKey {
  type: string;
  /** As `ssh-keygen -l` prints it: SHA256 of the key blob, unpadded base64. */
  fingerprint: string;
  /** Free text after the key; often a person's address, so it is evidence only. */
  comment: string | null;
  /** The line carries options (command=, from=, cert-authority…). */
  options: boolean;
}

/** Splits on blanks outside double quotes (options such as command="a b" hold blanks). */
function tokens(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (ch === '\\' && quoted && i + 1 < line.length) {
      cur += ch + line[++i]!;
    } else if (ch === '"') {
      quoted = !quoted;
      cur += ch;
    } else if (!quoted && (ch === ' ' || ch === '\t')) {
      if (cur !== '') out.push(cur);
      cur = '';
    } else {
      cur += ch;
    }
  }
  if (cur !== '') out.push(cur);
  return out;
}

const KEY_TYPE = /^(?:ssh-|ecdsa-|sk-)[A-Za-z0-9@.-]+$/;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** The key type named inside the blob (a length-prefixed string), or null if it is not a key. */
function blobType(blob: Buffer): string | null {
  if (blob.length < 4) return null;
  const len = blob.readUInt32BE(0);
  if (len === 0 || len > 64 || 4 + len > blob.length) return null;
  return blob.subarray(4, 4 + len).toString('latin1');
}

/** Parses sshd(8) AUTHORIZED_KEYS FILE FORMAT: `[options] type base64 [comment]` per line. */
export function parseAuthorizedKeys(text: string): { keys: AuthorizedKey[]; invalidLines: number } {
  const keys: AuthorizedKey[] = [];
  let invalidLines = 0;
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\r$/, '').trim();
    if (line === '' || line.startsWith('#')) continue;
    const t = tokens(line);
    const at = t.findIndex((tok, i) => KEY_TYPE.test(tok) && BASE64.test(t[i + 1] ?? ''));
    const blob = at < 0 ? null : Buffer.from(t[at + 1]!, 'base64');
    if (blob === null || blobType(blob) !== t[at]) {
      invalidLines++;
      continue;
    }
    const comment = t.slice(at + 2).join(' ');
    keys.push({
      type: t[at]!,
      fingerprint: `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`,
      comment: comment === '' ? null : comment,
      options: at > 0,
    });
  }
  return { keys, invalidLines };
}

/** `${home}/.ssh`, without a doubled slash for home `/`. */
export function sshDirOf(home: string): string {
  return `${home.replace(/\/+$/, '')}/.ssh`;
}

/** Home directories the HostIO can address: absolute, without `..` segments. */
export function isScannableHome(home: string): boolean {
  return home.startsWith('/') && !home.split('/').includes('..');
}

// Code-unit order, not localeCompare: the order must not depend on the host's locale.
export function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
