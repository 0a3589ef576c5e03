// The identity-provider side of credential_age: Okta passwords of the provider's staff and the
// org's API tokens, dated by Okta (passwordChanged, a token's created). Read through the same Okta
// client as sso_coverage, with the same access (the agent's config, or the policy's settings).
import * as z from 'zod';
import { isCheckError } from '../errors.js';
import { hasOktaAccess, resolveOktaAccess } from '../sso_coverage/access.js';
import { identityCredentials } from '../sso_coverage/measure.js';
import { oktaConfigSchema, populationSchema, populationSelectorSchema } from '../sso_coverage/schema.js';
import type { CollectContext } from '../types.js';
import type { Source } from './index.js';

export const identityProviderConfigSchema = z
  .object({
    /** Okta settings; orgUrl and auth may come from the agent's config instead (see sso_coverage). */
    okta: oktaConfigSchema.optional(),
    /** Whose passwords are judged: the staff group or profile attribute, as in sso_coverage. */
    population: populationSchema,
    /** Also judge this host's own credentials. false on an agent that only reads the identity provider. */
    hostCredentials: z.boolean().default(true),
  })
  .strict();
export type IdentityProviderConfig = z.output<typeof identityProviderConfigSchema>;

export const identityFactsSchema = z
  .object({
    vendor: z.literal('okta'),
    orgUrl: z.string(),
    auth: z.enum(['apiToken', 'privateKey']),
    sdk: z.string(),
    population: populationSelectorSchema,
    requests: z.number().int().nonnegative(),
    rateLimitRetries: z.number().int().nonnegative(),
  })
  .strict();
export type IdentityFacts = z.infer<typeof identityFactsSchema>;

/** What the identity side adds to the facts: `facts` is null when Okta could not be read at all. */
interface IdentityRead {
  facts: IdentityFacts | null;
  credentials: {
    kind: 'idp_password' | 'idp_api_token';
    account: string;
    lastChanged: string | null;
    ageDays: number | null;
    name?: string | undefined;
    expiresAt?: string | null | undefined;
  }[];
  sources: Source[];
}

/** Names the org's API endpoints in facts.sources, the way files are named for host credentials. */
const oktaSourcePath = (orgUrl: string, what: 'users' | 'api-tokens') => `${orgUrl}/api/v1/${what}`;

/** Both Okta sources in the same state, and nothing read from them. */
function notRead(orgUrl: string, how: Omit<Source, 'path' | 'kinds'>): IdentityRead {
  return {
    facts: null,
    credentials: [],
    sources: [
      { path: oktaSourcePath(orgUrl, 'users'), kinds: ['idp_password'], ...how },
      { path: oktaSourcePath(orgUrl, 'api-tokens'), kinds: ['idp_api_token'], ...how },
    ],
  };
}

/**
 * Reads the staff's Okta passwords and the API tokens. Okta refusing or failing (a revoked token,
 * the network, a request timing out) is kept as unreadable sources with its code and reason, so
 * the host side is still judged and the identity kinds are unknown, never passed. The check's own
 * budget running out ends the whole check in the runner instead.
 */
export async function readIdentityProvider(ctx: CollectContext, cfg: IdentityProviderConfig, now: Date): Promise<IdentityRead> {
  let orgUrl = cfg.okta?.orgUrl ?? ctx.identityProvider?.okta?.orgUrl ?? 'okta';
  if (!hasOktaAccess(ctx.identityProvider)) {
    // The policy asks every agent of the vendor; only the one with Okta access can answer, and it
    // does. Here the identity credentials are not present, which is not a failure to read them.
    return notRead(orgUrl, { state: 'absent', reason: 'this agent has no Okta access; the agent configured with it reports these' });
  }
  try {
    const { okta, secret } = await resolveOktaAccess(ctx, cfg.okta);
    orgUrl = okta.orgUrl;
    // Loaded only here: agents that do not read Okta never load the SDK.
    const { collectOktaCredentials } = await import('../sso_coverage/okta.js');
    const raw = await collectOktaCredentials({ okta, secret, population: cfg.population, signal: ctx.signal, now });
    const { passwords, tokens } = identityCredentials(raw);
    const sources: IdentityRead['sources'] = [{ path: oktaSourcePath(orgUrl, 'users'), kinds: ['idp_password'], state: 'read' }];
    sources.push(
      raw.apiTokens.readable
        ? { path: oktaSourcePath(orgUrl, 'api-tokens'), kinds: ['idp_api_token'], state: 'read' }
        : { path: oktaSourcePath(orgUrl, 'api-tokens'), kinds: ['idp_api_token'], state: 'unreadable', code: 'CHK_ERR_PERMISSION', reason: raw.apiTokens.reason },
    );
    return {
      facts: {
        vendor: 'okta',
        orgUrl,
        auth: raw.source.auth,
        sdk: raw.source.sdk,
        population: raw.selector,
        requests: raw.source.requests,
        rateLimitRetries: raw.source.rateLimitRetries,
      },
      credentials: [
        ...passwords.map((c) => ({ kind: c.kind, account: c.account, lastChanged: c.lastChanged, ageDays: c.ageDays })),
        ...tokens.map((c) => ({ kind: c.kind, account: c.account, lastChanged: c.lastChanged, ageDays: c.ageDays, name: c.name, expiresAt: c.expiresAt ?? null })),
      ],
      sources,
    };
  } catch (err) {
    // Not a CheckError is a bug: let the runner report it.
    if (!isCheckError(err)) throw err;
    return notRead(orgUrl, { state: 'unreadable', code: err.code, reason: err.message });
  }
}
