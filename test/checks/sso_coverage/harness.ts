// Runs sso_coverage's collect against the local Okta server with a strict replay HostIO for the
// two host files (the token and the roster), and derives the expected counts from a scenario.
// The Okta access is the agent's local config (as agent/config.ts gives it), never the policy: the
// secret is read through the same replay HostIO so that its file is one of the recorded calls.
import { ReplayHostIO, type RecordedCall } from '../../../checks/replay.js';
import { collectSso } from '../../../checks/sso_coverage/index.js';
import { evaluate } from '../../../checks/sso_coverage/evaluate.js';
import { configSchema, type Config, type Facts } from '../../../checks/sso_coverage/schema.js';
import type { Evaluation, IdentityProviderAccess, OktaAuthSettings } from '../../../checks/types.js';
import { startOktaServer, type OktaServer, type OktaServerOptions } from '../../helpers/okta-server.js';
import { endInstant, materialize, type PersonSpec, type Scenario } from './scenario.js';

export const TOKEN = '00Xy7Qp3Lm9Vt2Rk8Wz4Nb6Hd1Fs5Gc0Ja-_Pe';
export const TOKEN_FILE = '/etc/vcm/okta-token';
export const ROSTER_FILE = '/etc/vcm/staff-roster.json';
export const ROSTER_CSV = '/etc/vcm/staff-roster.csv';

/** The roster as a spreadsheet export would write it: CRLF, quoted where needed. */
export function rosterCsv(rows: readonly Record<string, string>[]): string {
  const q = (v: string) => (/[",\r\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v);
  const cols = ['id', 'email', 'employeeNumber', 'start', 'end'];
  return [cols.join(','), ...rows.map((r) => cols.map((c) => q(r[c] ?? '')).join(','))].join('\r\n') + '\r\n';
}

export interface RunResult {
  facts: Facts | null;
  error: unknown;
  verdict: Evaluation | null;
  server: OktaServer;
  config: Config;
  io: ReplayHostIO;
}

export interface RunOptions {
  config?: Record<string, unknown>;
  /** The policy's okta settings (tuning, an org pin). */
  okta?: Record<string, unknown>;
  /** The agent config's Okta auth and the file its secret is in; default an API token in TOKEN_FILE. */
  localAuth?: { auth: OktaAuthSettings; file: string };
  /** The agent config's okta.rosterFiles; default both roster files. */
  rosterFiles?: string[];
  server?: Partial<OktaServerOptions>;
  /** Host files beyond the token and the roster (a private key). */
  files?: RecordedCall[];
  secretFile?: { path: string; content: string } | null;
  signal?: AbortSignal;
  /** Stop the server before collecting (transport errors). */
  closeFirst?: boolean;
}

export async function runScenario(s: Scenario, opts: RunOptions = {}): Promise<RunResult> {
  const m = materialize(s);
  const server = await startOktaServer({ org: m.org, apiTokens: [TOKEN], ...opts.server });
  try {
    const raw = {
      okta: { pageSize: 50, concurrency: 4, ...opts.okta },
      population: { group: s.groupName },
      roster: { file: ROSTER_FILE },
      ...opts.config,
    };
    const config = configSchema.parse(raw);
    const local = opts.localAuth ?? { auth: { type: 'apiToken' as const }, file: TOKEN_FILE };
    const secret = opts.secretFile === undefined ? { path: local.file, content: `${TOKEN}\n` } : opts.secretFile;
    const calls: RecordedCall[] = [
      ...(secret === null ? [] : [{ op: 'readFile' as const, path: secret.path, content: secret.content }]),
      ...(config.roster === undefined
        ? []
        : [{ op: 'readFile' as const, path: config.roster.file, content: config.roster.file.endsWith('.csv') ? rosterCsv(m.roster) : JSON.stringify(m.roster) }]),
      ...(opts.files ?? []),
    ];
    const io = new ReplayHostIO({ version: 1, platform: 'linux', calls });
    if (opts.closeFirst) await server.close();
    let facts: Facts | null = null;
    let error: unknown = null;
    try {
      // The trailing slash is normalized away (README: orgUrl), as the agent config's schema does.
      const identityProvider: IdentityProviderAccess = {
        okta: {
          orgUrl: server.url.replace(/\/$/, ''),
          auth: local.auth,
          rosterFiles: opts.rosterFiles ?? [ROSTER_FILE, ROSTER_CSV],
          secret: async () => (await io.readFile(local.file)).trim(),
        },
      };
      facts = await collectSso({ io, platform: 'linux', config, identityProvider, signal: opts.signal ?? new AbortController().signal }, { now: () => s.now });
    } catch (err) {
      error = err;
    }
    return { facts, error, verdict: facts === null ? null : evaluate(facts, config), server, config, io };
  } finally {
    await server.close();
  }
}

const ACCESS = new Set(['ACTIVE', 'PASSWORD_EXPIRED', 'LOCKED_OUT', 'RECOVERY']);
export const isActive = (p: { status: string }) => ACCESS.has(p.status);

/** Sign-on classes as the README defines them, restated here for the expectations. */
export const CLASS_OF: Record<string, 'federated' | 'password_vaulted' | 'other'> = {
  SAML_2_0: 'federated',
  SAML_1_1: 'federated',
  OPENID_CONNECT: 'federated',
  WS_FEDERATION: 'federated',
  BROWSER_PLUGIN: 'password_vaulted',
  AUTO_LOGIN: 'password_vaulted',
  BASIC_AUTH: 'password_vaulted',
  SECURE_PASSWORD_STORE: 'password_vaulted',
  BOOKMARK: 'other',
};

function countBy<T>(xs: readonly T[], key: (x: T) => string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const x of xs) out[key(x)] = (out[key(x)] ?? 0) + 1;
  return out;
}

const DAY = 86_400_000;
const HOUR = 3_600_000;

export interface Policy {
  staleAfterDays: number;
  leaverDeadlineHours: number;
  leaverLookbackDays: number;
}
export const DEFAULT_POLICY: Policy = { staleAfterDays: 90, leaverDeadlineHours: 24, leaverLookbackDays: 90 };

/** What a scenario was built to contain, straight from its specs. */
export function expectedFor(s: Scenario, population: (p: PersonSpec) => boolean = (p) => p.inGroup, policy: Policy = DEFAULT_POLICY) {
  const now = s.now.getTime();
  const staff = s.people.filter(population);
  const active = staff.filter(isActive);
  const strongest = { phishing_resistant: 0, otp_push: 0, phone_email: 0, none: 0, ...countBy(active, (p) => p.strongest) };
  const activeNs = new Set(active.map((p) => p.n));
  const liveApps = s.apps.filter((a) => a.status === 'ACTIVE');
  const assignments = { federated: 0, password_vaulted: 0, other: 0 };
  const apps = { federated: 0, password_vaulted: 0, other: 0 };
  for (const a of liveApps) {
    const cls = CLASS_OF[a.signOnMode] ?? 'other';
    apps[cls]++;
    assignments[cls] += a.assigned.filter((n) => activeNs.has(n)).length;
  }
  const totalAssignments = assignments.federated + assignments.password_vaulted + assignments.other;

  const started = (daysAgo: number) => now - daysAgo * DAY >= 0 && daysAgo >= 0;
  const rosterPeople = [
    ...s.people.filter((p) => p.roster !== null).map((p) => ({ start: p.roster!.startDaysAgo, end: p.roster!.endDaysAgo, accounts: [p] })),
    ...s.rosterOnly.map((r) => ({ start: r.startDaysAgo, end: r.endDaysAgo, accounts: [] as PersonSpec[] })),
  ];
  const ended = (end: number | null) => end !== null && endInstant(s.now, end) <= now;
  const current = rosterPeople.filter((r) => started(r.start) && !ended(r.end));
  const currentWithout = current.filter((r) => !r.accounts.some(isActive));
  const leavers = rosterPeople
    .filter((r) => ended(r.end))
    .filter((r) => r.accounts.some(isActive) || endInstant(s.now, r.end!) >= now - policy.leaverLookbackDays * DAY);
  const stateOf = (r: (typeof leavers)[number]) =>
    r.accounts.length === 0 ? 'no_account' : r.accounts.some(isActive) ? 'active' : r.accounts.some((a) => a.status === 'SUSPENDED') ? 'suspended' : r.accounts.every((a) => a.status === 'DEPROVISIONED') ? 'deprovisioned' : 'pending';
  const byState = { active: 0, suspended: 0, pending: 0, deprovisioned: 0, no_account: 0, ...countBy(leavers, stateOf) };
  const activePast = leavers.filter((r) => stateOf(r) === 'active' && now > endInstant(s.now, r.end!) + policy.leaverDeadlineHours * HOUR);
  const late = leavers.filter((r) => stateOf(r) === 'deprovisioned' && r.accounts[0]!.deactivation!.hoursAfterEnd > policy.leaverDeadlineHours);
  const activeLags = leavers.filter((r) => stateOf(r) === 'active').map((r) => Math.round((now - endInstant(s.now, r.end!)) / 1000));
  const deprovLags = leavers
    .filter((r) => stateOf(r) === 'deprovisioned')
    .map((r) => Math.round((Math.max(...r.accounts.map((a) => a.deactivation!.hoursAfterEnd)) * HOUR) / 1000));

  const stale = active.filter((p) => (p.lastLoginDaysAgo ?? p.createdDaysAgo) > policy.staleAfterDays);
  const passwords = active.filter((p) => p.provider === 'OKTA' && p.passwordChangedDaysAgo !== null);
  const maxOrNull = (xs: number[]) => (xs.length === 0 ? null : Math.max(...xs));
  return {
    staff,
    active,
    stale,
    activePastDeadline: activePast.flatMap((r) => r.accounts),
    deprovisionedLate: late.flatMap((r) => r.accounts),
    counts: {
      accounts: countBy(staff, (p) => p.status),
      activeAccounts: active.length,
      mfa: {
        any: { numerator: active.length - strongest.none, denominator: active.length },
        phishingResistant: { numerator: strongest.phishing_resistant, denominator: active.length },
        strongest,
      },
      apps,
      appAssignments: {
        federated: { numerator: assignments.federated, denominator: totalAssignments },
        passwordVaulted: { numerator: assignments.password_vaulted, denominator: totalAssignments },
        other: assignments.other,
      },
      roster: {
        withAccount: { numerator: current.length - currentWithout.length, denominator: current.length },
        withoutAccount: currentWithout.length,
        accountsNotOnRoster: { numerator: active.filter((p) => p.roster === null).length, denominator: active.length },
      },
      leavers: {
        byState,
        stillActive: { numerator: byState.active, denominator: leavers.length },
        pastDeadline: { numerator: activePast.length + late.length, denominator: leavers.length },
        activePastDeadline: activePast.length,
        deprovisionedLate: late.length,
        maxLagSeconds: { active: maxOrNull(activeLags), deprovisioned: maxOrNull(deprovLags) },
      },
      stale: { numerator: stale.length, denominator: active.length },
      passwords: { oktaMastered: passwords.length, maxAgeDays: maxOrNull(passwords.map((p) => p.passwordChangedDaysAgo!)) },
      apiTokens: { readable: true, tokens: s.apiTokens.length, maxAgeDays: maxOrNull(s.apiTokens.map((t) => t.createdDaysAgo)) },
    },
  };
}
