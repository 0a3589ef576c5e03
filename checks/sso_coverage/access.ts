// Settles which Okta org a check reads and how it signs in. Only the agent's local config gives
// access: the provider's host holds the credentials, and the customer's policy never says where a
// secret comes from or where the agent connects (checks/local-only.ts). The policy's `okta`
// settings tune the reads, and a policy `orgUrl` pins the org the agent must be reading.
import { CheckError } from '../errors.js';
import type { CollectContext } from '../types.js';
import { oktaConfigSchema, type OktaConfig, type OktaSettings } from './schema.js';

/** The default budget of a check that pages through Okta (the policy's timeoutSeconds overrides it). */
export const OKTA_TIMEOUT_MS = 10 * 60_000;

export interface OktaAccess {
  okta: OktaConfig;
  /** The API token or the private key: for the SDK only, never for facts or logs. */
  secret: string;
}

/** Whether there is Okta access to use: only the agent's config gives it. */
export function hasOktaAccess(identityProvider: CollectContext['identityProvider']): boolean {
  return identityProvider?.okta !== undefined;
}

const DEFAULT_SETTINGS: OktaSettings = oktaConfigSchema.parse({});

/** The org, the auth and the secret for one collection; a policy `orgUrl` must be the agent's org. */
export async function resolveOktaAccess(ctx: Pick<CollectContext, 'identityProvider'>, settings: OktaSettings | undefined): Promise<OktaAccess> {
  const local = ctx.identityProvider?.okta;
  const s = settings ?? DEFAULT_SETTINGS;
  if (local === undefined) {
    throw new CheckError('CHK_ERR_NOT_CONFIGURED', 'Okta is not configured: give the agent Okta access in its config (okta.orgUrl and a token or key reference)');
  }
  if (s.orgUrl !== undefined && s.orgUrl !== local.orgUrl) {
    throw new CheckError('CHK_ERR_NOT_CONFIGURED', `the policy names the Okta org ${s.orgUrl}, but this agent's config gives access to ${local.orgUrl}`, {
      subject: 'okta.orgUrl',
    });
  }
  return { okta: { ...s, orgUrl: local.orgUrl, auth: local.auth }, secret: await local.secret() };
}
