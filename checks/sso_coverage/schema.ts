// Config and facts schemas of sso_coverage, and the fixed vocabularies (factor strength, sign-on
// class, account status classes) that the facts, the evaluation and the metrics share.
import * as z from 'zod';
import type { OktaAuthSettings } from '../types.js';
import { orgUrlSchema } from './org-url.js';

/** Read-only management scopes the private-key service app requests by default (see README). */
export const DEFAULT_SCOPES = ['okta.users.read', 'okta.groups.read', 'okta.apps.read', 'okta.logs.read'] as const;

/** Statuses in which an account has credentials and can sign in (or recover and then sign in). */
export const ACCESS_STATUSES: ReadonlySet<string> = new Set(['ACTIVE', 'PASSWORD_EXPIRED', 'LOCKED_OUT', 'RECOVERY']);

export const STRENGTHS = ['phishing_resistant', 'otp_push', 'phone_email'] as const;
export type Strength = (typeof STRENGTHS)[number];
export const strengthSchema = z.enum(['phishing_resistant', 'otp_push', 'phone_email', 'none']);
export type MfaClass = z.infer<typeof strengthSchema>;

/**
 * Factor type → strength. `question` is knowledge, not a second factor, and types not listed
 * here count for nothing (fail closed) until they are classified.
 */
export const FACTOR_STRENGTH: Readonly<Record<string, Strength>> = {
  webauthn: 'phishing_resistant',
  u2f: 'phishing_resistant',
  signed_nonce: 'phishing_resistant', // Okta FastPass (Okta Verify)
  push: 'otp_push',
  'token:software:totp': 'otp_push',
  'token:hotp': 'otp_push',
  'token:hardware': 'otp_push',
  token: 'otp_push',
  web: 'otp_push', // Duo
  sms: 'phone_email',
  call: 'phone_email',
  email: 'phone_email',
};

export const SIGN_ON_CLASSES = ['federated', 'password_vaulted', 'other'] as const;
export type SignOnClass = (typeof SIGN_ON_CLASSES)[number];

export const SIGN_ON_CLASS: Readonly<Record<string, SignOnClass>> = {
  SAML_2_0: 'federated',
  SAML_1_1: 'federated',
  OPENID_CONNECT: 'federated',
  WS_FEDERATION: 'federated',
  BROWSER_PLUGIN: 'password_vaulted',
  AUTO_LOGIN: 'password_vaulted',
  BASIC_AUTH: 'password_vaulted',
  SECURE_PASSWORD_STORE: 'password_vaulted',
  // BOOKMARK carries no credential: a link only. Unknown modes land in `other` too.
};

/**
 * Okta settings in a policy: tuning only. The org and the credentials come from the agent's local
 * config (a policy never says where a secret comes from, checks/local-only.ts); a policy `orgUrl`
 * only pins the org that agent must be reading.
 */
export const oktaConfigSchema = z
  .object({
    orgUrl: orgUrlSchema.optional(),
    /** Per attempt; the SDK's default is no timeout at all. */
    requestTimeoutMs: z.number().int().min(1000).max(300_000).default(30_000),
    /** `limit` on list calls (Okta's maximum for users is 200). */
    pageSize: z.number().int().min(1).max(200).default(200),
    /** Factor and app-assignment reads in flight at once. */
    concurrency: z.number().int().min(1).max(16).default(4),
    rateLimit: z
      .object({
        /** 429 retries per request (waiting for X-Rate-Limit-Reset each time). */
        maxRetries: z.number().int().min(0).max(10).default(4),
        /** A 429 asking for a longer wait than this is not retried: the check answers unknown. */
        maxWaitMs: z.number().int().min(1000).max(600_000).default(65_000),
      })
      .strict()
      .prefault({}),
    systemLog: z
      .object({
        /** Pages of `user.lifecycle.deactivate` events read at most (the log can page forever). */
        maxPages: z.number().int().min(1).max(1000).default(50),
        pageSize: z.number().int().min(1).max(1000).default(1000),
      })
      .strict()
      .prefault({}),
  })
  .strict();
export type OktaSettings = z.output<typeof oktaConfigSchema>;

/** Where an Okta secret reference belongs: the agent's config, never a policy. */
export const OKTA_AUTH_LOCAL_ONLY = "the agent config's okta.tokenFile, tokenEnv, privateKeyFile or privateKeyEnv";
/** Settings with the org and the way to sign in settled (checks/sso_coverage/access.ts). */
export type OktaConfig = Omit<OktaSettings, 'orgUrl'> & { orgUrl: string; auth: OktaAuthSettings };

const profileAttributeName = z.string().regex(/^[A-Za-z][A-Za-z0-9_]*$/, 'a profile attribute name');

/** Who the provider's staff are. Neither set: every account of the org. */
export const populationSchema = z
  .object({
    /** A group id (00g…) or an exact group name. */
    group: z.string().min(1).optional(),
    profileAttribute: z.object({ name: profileAttributeName, value: z.string() }).strict().optional(),
  })
  .strict()
  .refine((p) => p.group === undefined || p.profileAttribute === undefined, { message: 'set group or profileAttribute, not both' })
  .prefault({});
export type Population = z.output<typeof populationSchema>;

export const configSchema = z
  .object({
    /** Absent, and no Okta access in the agent's local config: unknown, CHK_ERR_NOT_CONFIGURED. */
    okta: oktaConfigSchema.optional(),
    population: populationSchema,
    roster: z
      .object({
        /** Host path of a CSV or JSON roster (id, email, login, employeeNumber, start, end); the agent reads it only when its config's okta.rosterFiles lists it. */
        file: z.string().min(1),
        format: z.enum(['auto', 'csv', 'json']).default('auto'),
        joinOn: z.enum(['email', 'login', 'employeeNumber']).default('email'),
      })
      .strict()
      .optional(),
    /** An active account with no sign-in for this long (or never, since creation) is stale. */
    staleAfterDays: z.number().int().min(1).max(3650).default(90),
    failOnStale: z.boolean().default(true),
    /** A leaver's accounts must be deactivated within this many hours after the roster end. */
    leaverDeadlineHours: z.number().positive().max(24 * 365).default(24),
    /** Leavers whose end is older than this are reported only while an account is still active. */
    leaverLookbackDays: z.number().int().min(1).max(3650).default(90),
    failOnLateDeprovisioning: z.boolean().default(false),
    requirePhishingResistant: z.boolean().default(false),
    allowVaultedApps: z.boolean().default(false),
    failOnAccountsNotOnRoster: z.boolean().default(false),
  })
  .strict();
export type Config = z.output<typeof configSchema>;

const iso = z.string().datetime({ offset: true });
const count = z.number().int().nonnegative();
export const ratioSchema = z.object({ numerator: count, denominator: count }).strict();
export type Ratio = z.infer<typeof ratioSchema>;

export const accountSchema = z
  .object({
    id: z.string(),
    login: z.string(),
    email: z.string().nullable(),
    status: z.string(),
    created: iso.nullable(),
    lastLogin: iso.nullable(),
    passwordChanged: iso.nullable(),
    /** credentials.provider.type: OKTA (Okta-mastered), FEDERATION, ACTIVE_DIRECTORY, LDAP… */
    credentialProvider: z.string().nullable(),
    /** Active factors' types, sorted; null when factors were not read (account not active). */
    factors: z.array(z.string()).nullable(),
    /** The strongest class among the active factors. */
    mfa: strengthSchema,
    /** Where the roster puts this account's person; null without a roster. */
    roster: z.enum(['current', 'leaver', 'future', 'absent']).nullable(),
  })
  .strict();
export type Account = z.infer<typeof accountSchema>;

export const appSchema = z
  .object({
    id: z.string(),
    label: z.string(),
    name: z.string().nullable(),
    signOnMode: z.string().nullable(),
    signOnClass: z.enum(SIGN_ON_CLASSES),
    /** Assignments to active population accounts. */
    assignments: count,
    /** Logins of those accounts, listed for password-vaulted apps only. */
    assignees: z.array(z.string()),
  })
  .strict();
export type App = z.infer<typeof appSchema>;

export const leaverStateSchema = z.enum(['active', 'suspended', 'pending', 'deprovisioned', 'no_account']);
export type LeaverState = z.infer<typeof leaverStateSchema>;

export const leaverSchema = z
  .object({
    rosterId: z.string(),
    key: z.string(),
    /** The instant employment ended (a date-only end means the end of that day, UTC). */
    end: iso,
    accounts: z.array(z.object({ id: z.string(), login: z.string(), status: z.string() }).strict()),
    state: leaverStateSchema,
    deprovisionedAt: iso.nullable(),
    deprovisionedSource: z.enum(['system_log', 'status_changed']).nullable(),
  })
  .strict();
export type Leaver = z.infer<typeof leaverSchema>;

export const idpCredentialSchema = z
  .object({
    kind: z.enum(['idp_password', 'idp_api_token']),
    /** The Okta login (password), or the token owner's login, else user id (API token). */
    account: z.string(),
    /** passwordChanged, or the token's `created`. */
    lastChanged: iso.nullable(),
    ageDays: z.number().int().nullable(),
    /** The token's name and id (API tokens only). */
    name: z.string().optional(),
    id: z.string().optional(),
    expiresAt: iso.nullable().optional(),
  })
  .strict();
export type IdpCredential = z.infer<typeof idpCredentialSchema>;

const byStatus = z.record(z.string(), count);

export const countsSchema = z
  .object({
    /** Population accounts by Okta status. */
    accounts: byStatus,
    activeAccounts: count,
    mfa: z
      .object({
        any: ratioSchema,
        phishingResistant: ratioSchema,
        /** Active accounts by their strongest factor class (sums to activeAccounts). */
        strongest: z.object({ phishing_resistant: count, otp_push: count, phone_email: count, none: count }).strict(),
      })
      .strict(),
    apps: z.object({ federated: count, password_vaulted: count, other: count }).strict(),
    appAssignments: z
      .object({ federated: ratioSchema, passwordVaulted: ratioSchema, other: count })
      .strict(),
    roster: z
      .object({
        /** Current roster people with an active account, over current roster people. */
        withAccount: ratioSchema,
        withoutAccount: count,
        /** Active population accounts matching nobody on the roster, over active accounts. */
        accountsNotOnRoster: ratioSchema,
      })
      .strict()
      .nullable(),
    leavers: z
      .object({
        byState: z.object({ active: count, suspended: count, pending: count, deprovisioned: count, no_account: count }).strict(),
        stillActive: ratioSchema,
        /** Still active past the deadline, or deactivated after it, over leavers reported. */
        pastDeadline: ratioSchema,
        activePastDeadline: count,
        deprovisionedLate: count,
        maxLagSeconds: z.object({ active: z.number().nullable(), deprovisioned: z.number().nullable() }).strict(),
      })
      .strict()
      .nullable(),
    stale: ratioSchema,
    passwords: z.object({ oktaMastered: count, maxAgeDays: z.number().int().nullable() }).strict(),
    apiTokens: z.object({ readable: z.boolean(), tokens: count, maxAgeDays: z.number().int().nullable() }).strict(),
  })
  .strict();
export type Counts = z.infer<typeof countsSchema>;

/** Which accounts were the population, as read (a group by id and name, or an attribute). */
export const populationSelectorSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('all') }).strict(),
  z.object({ kind: z.literal('group'), groupId: z.string(), groupName: z.string().nullable() }).strict(),
  z.object({ kind: z.literal('profileAttribute'), name: z.string(), value: z.string() }).strict(),
]);

export const factsSchema = z
  .object({
    /** The collection's start: every age and lag is measured to it, so evaluation stays pure. */
    observedAt: iso,
    source: z
      .object({
        vendor: z.literal('okta'),
        orgUrl: z.string(),
        auth: z.enum(['apiToken', 'privateKey']),
        sdk: z.string(),
        /** Which API endpoints were read (method and path template), sorted. */
        endpoints: z.array(z.string()),
        requests: count,
        rateLimitRetries: count,
      })
      .strict(),
    population: z
      .object({
        selector: populationSelectorSchema,
        /** Accounts the factor reads skipped because they disappeared meanwhile. */
        vanished: count,
      })
      .strict(),
    /** The thresholds `counts` were computed with (evaluate applies its own config). */
    countedWith: z.object({ staleAfterDays: z.number(), leaverDeadlineHours: z.number(), leaverLookbackDays: z.number() }).strict(),
    accounts: z.array(accountSchema),
    apps: z.array(appSchema),
    roster: z
      .object({
        file: z.string(),
        joinOn: z.enum(['email', 'login', 'employeeNumber']),
        people: count,
        current: count,
        future: count,
        leavers: count,
        /** Current people without an active account (their roster ids, comma-joined per person). */
        currentWithoutAccount: z.array(z.string()),
      })
      .strict()
      .nullable(),
    leavers: z.array(leaverSchema),
    systemLog: z
      .object({
        readable: z.boolean(),
        reason: z.string().nullable(),
        since: iso,
        until: iso,
        pages: count,
        events: count,
        truncated: z.boolean(),
      })
      .strict(),
    credentials: z
      .object({
        passwords: z.array(idpCredentialSchema),
        apiTokens: z.object({ readable: z.boolean(), reason: z.string().nullable(), tokens: z.array(idpCredentialSchema) }).strict(),
      })
      .strict(),
    counts: countsSchema,
  })
  .strict();
export type Facts = z.infer<typeof factsSchema>;
