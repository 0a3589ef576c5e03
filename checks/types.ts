// The shared contract between checks, the runner, the agent and the collector.
import type * as z from 'zod';
import type { CheckErrorCode } from './errors.js';

/** The six control ids (contract: dashboards, policies and stored evidence use them). */
export const CHECK_IDS = [
  'vpn',
  'disk_encryption',
  'usb_policy',
  'credential_age',
  'sso_coverage',
  'open_ports',
] as const;
export type CheckId = (typeof CHECK_IDS)[number];

export const PLATFORMS = ['linux', 'darwin', 'win32'] as const;
export type Platform = (typeof PLATFORMS)[number];

/** What a check can answer. `unknown` always carries a reason: it is never read as compliant. */
export type Status = 'pass' | 'fail' | 'unknown';

/**
 * Why a status is what it is. Unknown reasons use `CHK_ERR_*` codes, fail reasons use
 * `CHK_FAIL_*` codes. `subject` names the thing the reason is about (a mount point, a port).
 */
export interface Reason {
  code: string;
  message: string;
  subject?: string;
}

export interface Evaluation {
  status: Status;
  reasons: Reason[];
}

/** One check's result on one host: the facts it observed, and the verdict under a config. */
export interface Finding<F = unknown> {
  check: CheckId;
  checkVersion: string;
  platform: Platform;
  status: Status;
  reasons: Reason[];
  /** Typed observations; null when the check could not collect them. */
  facts: F | null;
  collectedAt: string;
  durationMs: number;
}

/** A source a check may read (declared up front, printed by `--list-sources`). */
export type SourceDecl =
  | { kind: 'file'; path: string; why: string }
  | { kind: 'command'; command: string; args: readonly string[]; why: string };

export interface FileStat {
  type: 'file' | 'dir' | 'symlink' | 'other';
  size: number;
  /** Permission bits (e.g. 0o600). */
  mode: number;
  uid: number;
  gid: number;
  mtimeMs: number;
  /** Inode change time and number, where the platform has them: with size and mtime they tell a changed file. */
  ctimeMs?: number;
  ino?: number;
}

export interface HttpResult {
  status: number;
  body: string;
}

export interface CommandResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

/** A directory entry as the host reported it. */
export interface DirEntry {
  name: string;
  type: 'file' | 'dir' | 'symlink' | 'other';
}

/** How much of a file a caller needs. */
export interface ReadFileOptions {
  /**
   * The caller needs the file only up to the first line this matches (tested line by line,
   * without the newline). The real HostIO may stop reading there and return whole lines up to
   * at least that one; replay and recording return the whole file, so a parser must give the
   * same result for any such prefix.
   */
  until?: RegExp;
}

/**
 * The one door to the host. Paths are host-absolute (`/proc/net/tcp`); the implementation maps
 * them under its root prefix. Failures throw `HostIOError` with a `CHK_ERR_*` code.
 */
export interface HostIO {
  readonly platform: Platform;
  readFile(path: string, opts?: ReadFileOptions): Promise<string>;
  readDir(path: string): Promise<DirEntry[]>;
  readLink(path: string): Promise<string>;
  /** Metadata of a file (the link itself is not followed for the last component). */
  stat(path: string): Promise<FileStat>;
  /** Runs an allow-listed command by absolute path, without a shell. */
  run(command: string, args: readonly string[], opts?: { timeoutMs?: number; signal?: AbortSignal }): Promise<CommandResult>;
  /** A GET to a URL from the policy (the VPN egress probe); never to one the server sends ad hoc. */
  httpGet(url: string, opts?: { timeoutMs?: number; signal?: AbortSignal }): Promise<HttpResult>;
}

/** How the agent signs in to Okta: the auth settings without the secret itself. */
export type OktaAuthSettings =
  | { type: 'apiToken' }
  | { type: 'privateKey'; clientId: string; keyId?: string | undefined; scopes?: string[] | undefined };

/**
 * Access to an identity provider, from the agent's local configuration (never from the policy:
 * the customer's policy says what to judge, the provider's host holds the credentials).
 */
export interface IdentityProviderAccess {
  okta?: {
    /** An origin without a trailing slash, like https://acme.okta.com. */
    orgUrl: string;
    auth: OktaAuthSettings;
    /** Roster files a policy may have sso_coverage read (the agent config's okta.rosterFiles). */
    rosterFiles?: readonly string[] | undefined;
    /**
     * Resolves the secret (the API token, or the service app's private key) when called. It throws
     * a CheckError when the reference does not resolve. The value goes to the SDK only: never into
     * facts, reasons or logs.
     */
    secret(): Promise<string>;
  };
}

export interface CollectContext<C = unknown> {
  io: HostIO;
  platform: Platform;
  /** The check's config, parsed by its schema (defaults applied). */
  config: C;
  /** Aborted when the check's time budget runs out. */
  signal: AbortSignal;
  /** Identity-provider access from the agent's local config; absent when it has none. */
  identityProvider?: IdentityProviderAccess | undefined;
  /**
   * What the check may keep between its runs: created once by the daemon, one per check, and
   * absent everywhere else (one-shot runs, replays), where the check reads everything afresh.
   */
  cache?: Map<string, unknown>;
}

/**
 * A check spec: declared once, with its platforms, sources, config and facts schemas.
 * `collect` observes (it may throw HostIOError / CheckError); `evaluate` is pure and is run both
 * by the agent (local view) and by the collector (the verdict that counts).
 */
export interface Check<C = unknown, F = unknown> {
  id: CheckId;
  version: string;
  title: string;
  platforms: readonly Platform[];
  sources: Partial<Record<Platform, readonly SourceDecl[]>>;
  configSchema: z.ZodType<C>;
  factsSchema: z.ZodType<F>;
  collect(ctx: CollectContext<C>): Promise<F>;
  evaluate(facts: F, config: C): Evaluation;
  /**
   * The time budget for one collection under a config, when the runner's default (30 s) is not
   * right (undefined: the default): a check that pages through an identity provider's API needs
   * minutes. The policy's `timeoutSeconds` for the check overrides it.
   */
  timeoutMs?(config: C): number | undefined;
  /**
   * false: this agent is not the one to run the check, and the daemon does not schedule it
   * (sso_coverage on a host without Okta access; the agent that has the access runs it). Absent:
   * always runs. `vcm-agent check` runs a check regardless, and it answers for itself.
   */
  runsHere?(config: C, identityProvider: IdentityProviderAccess | undefined): boolean;
  /**
   * Config settings a policy may never hold, because they say where a secret comes from or where
   * the agent connects: they come only from the agent's local config (checks/local-only.ts).
   */
  localOnly?: readonly LocalOnlySetting[];
}

/** One setting a policy may not name: its path in the check's config, and where it belongs instead. */
export interface LocalOnlySetting {
  path: readonly string[];
  /** Where the setting lives instead, for the error message. */
  instead: string;
}

/** A check with its type parameters erased, for lists of checks. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyCheck = Check<any, any>;

export type { CheckErrorCode };
