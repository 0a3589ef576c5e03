// credential_age: how old are the host's credentials (local passwords, SSH private keys,
// authorized_keys files, SSH host keys)? Each kind has a maximum age in the policy; see README.md.
import * as z from 'zod';
import { CHECK_ERROR_CODES, CheckError, isCheckError, type CheckErrorCode } from '../errors.js';
import type { Check, CollectContext, DirEntry, Evaluation, HostIO, Platform, Reason, SourceDecl } from '../types.js';
import { darwinPasswords, parseDsclUsers } from './darwin.js';
import {
  ageInDays,
  authorizedKeysNames,
  cmp,
  hostKeyNames,
  isScannableHome,
  linuxPasswords,
  parseAuthorizedKeys,
  parsePasswd,
  parseShadow,
  privateKeyNames,
  sshDirOf,
  type ScopeOptions,
} from './linux.js';
import { LOCAL_USERS_SCRIPT, parseLocalUsers, windowsPasswords } from './win32.js';
import { OKTA_TIMEOUT_MS, hasOktaAccess } from '../sso_coverage/access.js';
import { OKTA_AUTH_LOCAL_ONLY } from '../sso_coverage/schema.js';
import { verdict } from '../verdict.js';
import { identityFactsSchema, identityProviderConfigSchema, readIdentityProvider } from './identity.js';

/** Credential kinds; each has its own maximum age. The idp_ kinds come from the identity provider. */
export const CREDENTIAL_KINDS = ['password', 'ssh_private_key', 'ssh_authorized_keys', 'ssh_host_key', 'idp_password', 'idp_api_token'] as const;
export const kindSchema = z.enum(CREDENTIAL_KINDS);
export type CredentialKind = z.infer<typeof kindSchema>;

const errorCodeSchema = z.enum(Object.keys(CHECK_ERROR_CODES) as [CheckErrorCode, ...CheckErrorCode[]]);
const passwordStateSchema = z.enum(['set', 'empty', 'locked', 'none', 'external', 'unknown']);

export const authorizedKeySchema = z.object({
  type: z.string(),
  fingerprint: z.string(),
  comment: z.string().nullable(),
  options: z.boolean(),
});

export const credentialSchema = z.object({
  kind: kindSchema,
  /** The account it belongs to; null for host keys. */
  account: z.string().nullable(),
  /** The file that is (or holds) the credential; null for passwords and identity-provider credentials. */
  path: z.string().nullable(),
  /** Where the date comes from: shadow field 3, dscl accountPolicyData, the SAM, a file's mtime, or Okta. */
  dateFrom: z.enum(['shadow', 'dscl', 'sam', 'mtime', 'okta']),
  /** ISO 8601 (a day for shadow dates); null when the source records none. */
  lastChanged: z.string().nullable(),
  /** Whole days from lastChanged to observedAt; null when lastChanged is null. */
  ageDays: z.number().int().nullable(),
  /** Usable now: locked or disabled accounts' passwords and empty authorized_keys files are not judged. */
  active: z.boolean(),
  mustChange: z.boolean().optional(),
  note: z.string().optional(),
  /** authorized_keys only: one entry per valid key line. */
  keys: z.array(authorizedKeySchema).optional(),
  invalidLines: z.number().int().nonnegative().optional(),
  /** idp_api_token only: the token's name and expiry. */
  name: z.string().optional(),
  expiresAt: z.string().nullable().optional(),
});
export type Credential = z.infer<typeof credentialSchema>;

export const accountSchema = z.object({
  name: z.string(),
  /** null on Windows. */
  uid: z.number().int().nullable(),
  home: z.string().nullable(),
  shell: z.string().nullable(),
  loginShell: z.boolean().nullable(),
  password: passwordStateSchema,
  /** false: expired (Linux), DisabledUser (macOS), disabled (Windows); null: not known. */
  enabled: z.boolean().nullable(),
  sid: z.string().nullable().optional(),
  passwordRequired: z.boolean().nullable().optional(),
  passwordExpires: z.string().nullable().optional(),
  principalSource: z.string().nullable().optional(),
});
export type Account = z.infer<typeof accountSchema>;

export const sourceSchema = z.object({
  /** A file or directory path, or the command that was run. */
  path: z.string(),
  /** The credential kinds this source feeds: when it is unreadable, those kinds cannot be judged. */
  kinds: z.array(kindSchema),
  /** absent: does not exist, which means no credential there (no ~/.ssh, no /etc/ssh). */
  state: z.enum(['read', 'absent', 'unreadable']),
  code: errorCodeSchema.optional(),
  /** Why it could not be read, when the code alone does not say (an identity provider's answer). */
  reason: z.string().optional(),
});
export type Source = z.infer<typeof sourceSchema>;

export const factsSchema = z.object({
  /** The agent's clock when the credentials were read; every ageDays is relative to it. */
  observedAt: z.string(),
  /** Which accounts were collected (minUid is null on Windows, where uids do not exist). */
  scope: z.object({ minUid: z.number().int().nullable(), includeRoot: z.boolean() }),
  accounts: z.array(accountSchema),
  credentials: z.array(credentialSchema),
  sources: z.array(sourceSchema),
  /** The identity provider read, when the config asks for one and it answered; absent otherwise. */
  identityProvider: identityFactsSchema.nullable().optional(),
});
export type Facts = z.infer<typeof factsSchema>;

export const DEFAULT_MAX_AGE_DAYS: Readonly<Record<CredentialKind, number>> = {
  password: 365,
  ssh_private_key: 365,
  ssh_authorized_keys: 365,
  ssh_host_key: 1095,
  idp_password: 365,
  idp_api_token: 365,
};

/** Days; null switches the kind off. */
const maxAge = (kind: CredentialKind) => z.number().int().positive().nullable().default(DEFAULT_MAX_AGE_DAYS[kind]);

export const DEFAULT_MIN_UID: Readonly<Partial<Record<Platform, number>>> = { linux: 1000, darwin: 500 };

export const configSchema = z
  .object({
    maxAgeDays: z
      .object({
        password: maxAge('password'),
        ssh_private_key: maxAge('ssh_private_key'),
        ssh_authorized_keys: maxAge('ssh_authorized_keys'),
        ssh_host_key: maxAge('ssh_host_key'),
        idp_password: maxAge('idp_password'),
        idp_api_token: maxAge('idp_api_token'),
      })
      .strict()
      .default(() => ({ ...DEFAULT_MAX_AGE_DAYS })),
    /** Lowest uid collected besides root; null = the platform's default (Linux 1000, macOS 500). */
    minUid: z.number().int().nonnegative().nullable().default(null),
    includeRoot: z.boolean().default(true),
    failOnPasswordless: z.boolean().default(true),
    /** Also judge the identity provider's credentials (Okta passwords and API tokens). */
    identityProvider: identityProviderConfigSchema.optional(),
  })
  .strict();
export type Config = z.infer<typeof configSchema>;

/** Fail codes of this check; README.md documents each one, and a test keeps the two equal. */
export const CREDENTIAL_AGE_FAIL_CODES = {
  CHK_FAIL_CREDENTIAL_TOO_OLD: 'a credential is older than the maximum age for its kind',
  CHK_FAIL_PASSWORDLESS_ACCOUNT: 'an account can log in without a password',
} as const;

export const DSCL = '/usr/bin/dscl';
export const DSCL_ARGS = [
  '-plist',
  '.',
  '-readall',
  '/Users',
  'RecordName',
  'UniqueID',
  'NFSHomeDirectory',
  'UserShell',
  'AuthenticationAuthority',
  'dsAttrTypeNative:accountPolicyData',
] as const;
export const POWERSHELL = 'C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe';
export const POWERSHELL_ARGS = ['-NoProfile', '-NonInteractive', '-Command', LOCAL_USERS_SCRIPT] as const;

const sshFileSources: readonly SourceDecl[] = [
  { kind: 'file', path: '<home>/.ssh', why: 'names of the files in the .ssh directory of each account in scope' },
  { kind: 'file', path: '<home>/.ssh/id_*', why: 'private keys (and any <name> beside a <name>.pub): modification time only, contents never read' },
  { kind: 'file', path: '<home>/.ssh/authorized_keys', why: 'key type, fingerprint and comment of each entry, and the file modification time' },
  { kind: 'file', path: '<home>/.ssh/authorized_keys2', why: 'the same, for the older second file sshd still reads' },
  { kind: 'file', path: '/etc/ssh', why: 'names of the SSH host keys' },
  { kind: 'file', path: '/etc/ssh/ssh_host_*_key', why: 'SSH host private keys: modification time only, contents never read' },
];

/** Only with identityProvider set: the Okta API itself is listed in README.md. */
const identitySources: readonly SourceDecl[] = [
  { kind: 'file', path: '<agent config okta.tokenFile or okta.privateKeyFile>', why: "the Okta API token or the service app's private key; only the agent's own config names it" },
];

const linuxSources: readonly SourceDecl[] = [
  { kind: 'file', path: '/etc/passwd', why: 'accounts, uids, home directories and login shells' },
  { kind: 'file', path: '/etc/shadow', why: 'password state (usable, empty, locked), last change and expiry days; hashes are never kept' },
  ...sshFileSources,
  ...identitySources,
];

const darwinSources: readonly SourceDecl[] = [
  {
    kind: 'command',
    command: DSCL,
    args: DSCL_ARGS,
    why: 'local users: name, uid, home, shell, authentication authority tags and accountPolicyData (passwordLastSetTime)',
  },
  ...sshFileSources,
  ...identitySources,
];

const win32Sources: readonly SourceDecl[] = [
  {
    kind: 'command',
    command: POWERSHELL,
    args: POWERSHELL_ARGS,
    why: 'local users: name, SID, enabled, password required, password last set and expiry, principal source',
  },
  ...identitySources,
];

type Attempt<T> = { ok: true; value: T } | { ok: false; code: CheckErrorCode };

/** Turns a HostIO failure into its code; anything that is not a CheckError is a bug and goes on up. */
async function attempt<T>(fn: () => Promise<T>): Promise<Attempt<T>> {
  try {
    return { ok: true, value: await fn() };
  } catch (err) {
    if (isCheckError(err)) return { ok: false, code: err.code };
    throw err;
  }
}

function throwIfAborted(signal: AbortSignal): void {
  if (signal.aborted) throw new CheckError('CHK_ERR_TIMEOUT', 'the credential scan ran out of time');
}

const SSH_USER_KINDS: CredentialKind[] = ['ssh_private_key', 'ssh_authorized_keys'];

interface Sink {
  credentials: Credential[];
  sources: Source[];
}

function unreadable(sink: Sink, path: string, kinds: CredentialKind[], code: CheckErrorCode): void {
  sink.sources.push({ path, kinds, state: 'unreadable', code });
}

/** A credential dated by its file's mtime; null when the file vanished or is not a regular file. */
async function fileCredential(
  io: HostIO,
  sink: Sink,
  kind: CredentialKind,
  account: string | null,
  path: string,
  nowMs: number,
): Promise<Credential | null> {
  const st = await attempt(() => io.stat(path));
  if (!st.ok) {
    // Gone between the listing and the stat: it is no longer a credential on this host.
    if (st.code !== 'CHK_ERR_SOURCE_MISSING') unreadable(sink, path, [kind], st.code);
    return null;
  }
  const base = { kind, account, path, dateFrom: 'mtime' as const, active: true };
  if (st.value.type === 'symlink') {
    return { ...base, lastChanged: null, ageDays: null, note: 'a symbolic link: its target is not followed, so its age is not known' };
  }
  if (st.value.type !== 'file') return null;
  return { ...base, lastChanged: new Date(st.value.mtimeMs).toISOString(), ageDays: ageInDays(st.value.mtimeMs, nowMs) };
}

async function scanSshDir(io: HostIO, sink: Sink, account: string, home: string, nowMs: number): Promise<void> {
  const dir = sshDirOf(home);
  const listing = await attempt(() => io.readDir(dir));
  if (!listing.ok) {
    if (listing.code === 'CHK_ERR_SOURCE_MISSING') sink.sources.push({ path: dir, kinds: SSH_USER_KINDS, state: 'absent' });
    else unreadable(sink, dir, SSH_USER_KINDS, listing.code);
    return;
  }
  sink.sources.push({ path: dir, kinds: SSH_USER_KINDS, state: 'read' });
  const entries: DirEntry[] = listing.value;
  for (const name of privateKeyNames(entries)) {
    const c = await fileCredential(io, sink, 'ssh_private_key', account, `${dir}/${name}`, nowMs);
    if (c !== null) sink.credentials.push(c);
  }
  for (const name of authorizedKeysNames(entries)) {
    const path = `${dir}/${name}`;
    const c = await fileCredential(io, sink, 'ssh_authorized_keys', account, path, nowMs);
    if (c === null) continue;
    const text = await attempt(() => io.readFile(path));
    if (!text.ok) {
      if (text.code !== 'CHK_ERR_SOURCE_MISSING') unreadable(sink, path, ['ssh_authorized_keys'], text.code);
      continue;
    }
    const { keys, invalidLines } = parseAuthorizedKeys(text.value);
    // A file with no key in it authorizes nobody, however old it is.
    const active = keys.length > 0;
    sink.credentials.push({ ...c, active, keys, invalidLines, ...(active ? {} : { note: 'no key entries' }) });
  }
}

async function scanHostKeys(io: HostIO, sink: Sink, nowMs: number): Promise<void> {
  const listing = await attempt(() => io.readDir('/etc/ssh'));
  if (!listing.ok) {
    if (listing.code === 'CHK_ERR_SOURCE_MISSING') sink.sources.push({ path: '/etc/ssh', kinds: ['ssh_host_key'], state: 'absent' });
    else unreadable(sink, '/etc/ssh', ['ssh_host_key'], listing.code);
    return;
  }
  sink.sources.push({ path: '/etc/ssh', kinds: ['ssh_host_key'], state: 'read' });
  for (const name of hostKeyNames(listing.value)) {
    const c = await fileCredential(io, sink, 'ssh_host_key', null, `/etc/ssh/${name}`, nowMs);
    if (c !== null) sink.credentials.push(c);
  }
}

/** Scans each distinct home once, for the first account (by uid, then name) that has it. */
async function scanHomes(io: HostIO, sink: Sink, accounts: readonly Account[], nowMs: number, signal: AbortSignal): Promise<void> {
  const seen = new Set<string>();
  for (const a of accounts) {
    if (a.home === null || !isScannableHome(a.home) || seen.has(a.home)) continue;
    seen.add(a.home);
    throwIfAborted(signal);
    await scanSshDir(io, sink, a.name, a.home, nowMs);
  }
  throwIfAborted(signal);
  await scanHostKeys(io, sink, nowMs);
}

function compareAccounts(a: Account, b: Account): number {
  return (a.uid ?? 0) - (b.uid ?? 0) || cmp(a.name, b.name);
}

function compareCredentials(a: Credential, b: Credential): number {
  return (
    CREDENTIAL_KINDS.indexOf(a.kind) - CREDENTIAL_KINDS.indexOf(b.kind) || cmp(a.account ?? '', b.account ?? '') || cmp(a.path ?? '', b.path ?? '')
  );
}

function finish(nowMs: number, scope: Facts['scope'], accounts: Account[], sink: Sink): Facts {
  return {
    observedAt: new Date(nowMs).toISOString(),
    scope,
    accounts: accounts.sort(compareAccounts),
    credentials: sink.credentials.sort(compareCredentials),
    sources: sink.sources.sort((a, b) => cmp(a.path, b.path)),
  };
}

function scopeFor(config: Config, platform: Platform): ScopeOptions {
  return { minUid: config.minUid ?? DEFAULT_MIN_UID[platform] ?? 1000, includeRoot: config.includeRoot };
}

/** Windows has no uid: every local account is in scope. */
function factsScope(config: Config, platform: Platform): Facts['scope'] {
  return platform === 'win32' ? { minUid: null, includeRoot: config.includeRoot } : scopeFor(config, platform);
}

async function collectLinux(ctx: CollectContext<Config>, nowMs: number): Promise<Facts> {
  const { io } = ctx;
  const scope = scopeFor(ctx.config, 'linux');
  const sink: Sink = { credentials: [], sources: [] };
  // Without the account list nothing can be judged: let the error make the check unknown.
  const passwd = parsePasswd(await io.readFile('/etc/passwd'));
  sink.sources.push({ path: '/etc/passwd', kinds: ['password', ...SSH_USER_KINDS], state: 'read' });
  const shadowText = await attempt(() => io.readFile('/etc/shadow'));
  if (shadowText.ok) sink.sources.push({ path: '/etc/shadow', kinds: ['password'], state: 'read' });
  else unreadable(sink, '/etc/shadow', ['password'], shadowText.code);
  const shadow = shadowText.ok ? parseShadow(shadowText.value) : null;

  const { accounts, passwords } = linuxPasswords(passwd, shadow, scope, nowMs);
  const facts: Account[] = accounts.map((a) => ({ ...a }));
  for (const p of passwords) sink.credentials.push({ kind: 'password', path: null, dateFrom: 'shadow', ...p });
  await scanHomes(io, sink, [...facts].sort(compareAccounts), nowMs, ctx.signal);
  return finish(nowMs, scope, facts, sink);
}

function firstLine(s: string): string {
  return s.trim().split('\n')[0]?.trim().slice(0, 200) ?? '';
}

async function runChecked(io: HostIO, command: string, args: readonly string[], signal: AbortSignal): Promise<string> {
  const r = await io.run(command, args, { signal });
  if (r.exitCode !== 0) {
    const why = firstLine(r.stderr);
    throw new CheckError('CHK_ERR_COMMAND_FAILED', `exited with status ${r.exitCode}${why === '' ? '' : `: ${why}`}`, { subject: command });
  }
  return r.stdout;
}

async function collectDarwin(ctx: CollectContext<Config>, nowMs: number): Promise<Facts> {
  const { io } = ctx;
  const scope = scopeFor(ctx.config, 'darwin');
  const users = parseDsclUsers(await runChecked(io, DSCL, DSCL_ARGS, ctx.signal), DSCL);
  // Every Mac has root and daemon records: an empty list means dscl did not answer for real.
  if (users.length === 0) throw new CheckError('CHK_ERR_UNRESOLVED', 'dscl listed no users', { subject: DSCL });
  const sink: Sink = { credentials: [], sources: [{ path: DSCL, kinds: ['password', ...SSH_USER_KINDS], state: 'read' }] };
  const { accounts, passwords } = darwinPasswords(users, scope, nowMs);
  const facts: Account[] = accounts.map((a) => ({ ...a }));
  for (const p of passwords) sink.credentials.push({ kind: 'password', path: null, dateFrom: 'dscl', ...p });
  await scanHomes(io, sink, [...facts].sort(compareAccounts), nowMs, ctx.signal);
  return finish(nowMs, scope, facts, sink);
}

async function collectWin32(ctx: CollectContext<Config>, nowMs: number): Promise<Facts> {
  const users = parseLocalUsers(await runChecked(ctx.io, POWERSHELL, POWERSHELL_ARGS, ctx.signal), 'Get-LocalUser');
  // Windows always has built-in accounts (Administrator, Guest), enabled or not.
  if (users.length === 0) throw new CheckError('CHK_ERR_UNRESOLVED', 'Get-LocalUser listed no accounts', { subject: POWERSHELL });
  const { accounts, passwords } = windowsPasswords(users, nowMs);
  const sink: Sink = { credentials: [], sources: [{ path: 'Get-LocalUser', kinds: ['password'], state: 'read' }] };
  for (const p of passwords) sink.credentials.push({ kind: 'password', path: null, dateFrom: 'sam', ...p });
  const facts: Account[] = accounts.map((a) => ({ ...a, uid: null, home: null, shell: null, loginShell: null }));
  return finish(nowMs, factsScope(ctx.config, 'win32'), facts, sink);
}

/**
 * Collects with an explicit clock. The spec's collect passes Date.now(); tests pass a fixed time,
 * and the pure parsers never read a clock themselves.
 */
export async function collectAt(ctx: CollectContext<Config>, nowMs: number): Promise<Facts> {
  const idp = ctx.config.identityProvider;
  const host = idp?.hostCredentials === false ? identityOnly(ctx, nowMs) : await collectHost(ctx, nowMs);
  if (idp === undefined) return host;
  const read = await readIdentityProvider(ctx, idp, new Date(nowMs));
  const sink: Sink = { credentials: host.credentials, sources: host.sources };
  for (const c of read.credentials) sink.credentials.push({ ...c, path: null, dateFrom: 'okta', active: true });
  for (const s of read.sources) sink.sources.push(s);
  return { ...finish(nowMs, host.scope, host.accounts, sink), identityProvider: read.facts };
}

function collectHost(ctx: CollectContext<Config>, nowMs: number): Promise<Facts> {
  switch (ctx.platform) {
    case 'linux':
      return collectLinux(ctx, nowMs);
    case 'darwin':
      return collectDarwin(ctx, nowMs);
    case 'win32':
      return collectWin32(ctx, nowMs);
  }
}

/** An agent that only reads the identity provider: no host account or file is read. */
function identityOnly(ctx: CollectContext<Config>, nowMs: number): Facts {
  return finish(nowMs, factsScope(ctx.config, ctx.platform), [], { credentials: [], sources: [] });
}

/** `password:alice`, `ssh_private_key:alice:/home/alice/.ssh/id_rsa`, `ssh_host_key:/etc/ssh/ssh_host_rsa_key`. */
export function credentialSubject(c: Credential): string {
  // Several API tokens may belong to one account: the token's name tells them apart.
  if (c.kind === 'idp_api_token') return `${c.kind}:${c.account ?? ''}:${c.name ?? ''}`;
  if (c.path === null) return `${c.kind}:${c.account ?? ''}`;
  return c.account === null ? `${c.kind}:${c.path}` : `${c.kind}:${c.account}:${c.path}`;
}

/** A kind is judged when it has a maximum; passwords also when empty passwords fail. */
function kindJudged(kind: CredentialKind, config: Config): boolean {
  return config.maxAgeDays[kind] !== null || (kind === 'password' && config.failOnPasswordless);
}

function keysAtLeast(n: number): string {
  return n === 1 ? 'its one key is' : `all ${n} of its keys are`;
}

/** Ages below this are dates in the future beyond a day of clock skew. */
const FUTURE_TOLERANCE_DAYS = -1;

/** Pure: judges facts under a config, with no clock (ages were fixed at collection). */
export function evaluate(facts: Facts, config: Config): Evaluation {
  const fails: Reason[] = [];
  const unknowns: Reason[] = [];
  for (const c of facts.credentials) {
    const max = config.maxAgeDays[c.kind];
    if (!c.active || max === null) continue;
    const subject = credentialSubject(c);
    if (c.ageDays === null) {
      unknowns.push({ code: 'CHK_ERR_UNRESOLVED', message: `cannot tell how old it is: ${c.note ?? 'no date recorded'}`, subject });
    } else if (c.ageDays < FUTURE_TOLERANCE_DAYS) {
      unknowns.push({ code: 'CHK_ERR_UNRESOLVED', message: `its date ${c.lastChanged ?? ''} is in the future: a clock or a file time is wrong`, subject });
    } else if (c.ageDays > max) {
      const what =
        c.kind === 'ssh_authorized_keys'
          ? `the file was last modified ${c.lastChanged ?? ''}, ${c.ageDays} days ago, so ${keysAtLeast(c.keys?.length ?? 0)} at least that old`
          : `last changed ${c.lastChanged ?? ''}, ${c.ageDays} days ago`;
      fails.push({ code: 'CHK_FAIL_CREDENTIAL_TOO_OLD', message: `${what}; the maximum for ${c.kind} is ${max} days`, subject });
    }
  }
  if (config.failOnPasswordless) {
    for (const a of facts.accounts) {
      if (a.password === 'empty' && a.enabled !== false) {
        fails.push({
          code: 'CHK_FAIL_PASSWORDLESS_ACCOUNT',
          message: 'the password field is empty: the account can log in without a password',
          subject: `password:${a.name}`,
        });
      }
    }
  }
  for (const s of facts.sources) {
    const judged = s.kinds.filter((k) => kindJudged(k, config));
    if (s.state !== 'unreadable' || judged.length === 0) continue;
    const why = s.reason === undefined ? 'cannot read it' : `cannot read it (${s.reason})`;
    unknowns.push({ code: s.code ?? 'CHK_ERR_UNRESOLVED', message: `${why}, so ${judged.join(', ')} cannot be judged`, subject: s.path });
  }
  return verdict(fails, unknowns);
}

export const credentialAge: Check<Config, Facts> = {
  id: 'credential_age',
  version: '1.0.0',
  title: 'No credential is older than the maximum age for its kind',
  platforms: ['linux', 'darwin', 'win32'],
  sources: { linux: linuxSources, darwin: darwinSources, win32: win32Sources },
  configSchema,
  factsSchema,
  collect(ctx) {
    return collectAt(ctx, Date.now());
  },
  evaluate,
  // Paging through an identity provider's users takes longer than reading local files.
  timeoutMs: (config) => (config.identityProvider === undefined ? undefined : OKTA_TIMEOUT_MS),
  // With hostCredentials off, only the agent that reads the identity provider has anything to
  // judge; elsewhere the check would read nothing and pass.
  runsHere: (config, identityProvider) => config.identityProvider?.hostCredentials !== false || hasOktaAccess(identityProvider),
  localOnly: [{ path: ['identityProvider', 'okta', 'auth'], instead: OKTA_AUTH_LOCAL_ONLY }],
};
