// Settles which Okta org a check reads and how it signs in. Two places may say: the agent's local
// config (the provider's host holds the credentials: the usual case) and the policy's `okta`
// settings (tuning, an org the customer pins, or credentials for a standalone `vcm-agent check`).
import { CheckError } from '../errors.js';
import type { CollectContext, HostIO } from '../types.js';
import { oktaConfigSchema, type OktaConfig, type OktaSettings } from './schema.js';

/** Reads a secret from the named file (through the HostIO) or the named environment variable. */
export async function readSecret(io: HostIO, ref: { file?: string | undefined; env?: string | undefined }, what: string): Promise<string> {
  if (ref.file !== undefined) {
    const value = (await io.readFile(ref.file)).trim();
    if (value === '') throw new CheckError('CHK_ERR_NOT_CONFIGURED', `the ${what} file is empty`, { subject: ref.file });
    return value;
  }
  if (ref.env !== undefined) {
    // Only the variable the config names is read.
    const value = process.env[ref.env]?.trim() ?? '';
    if (value === '') throw new CheckError('CHK_ERR_NOT_CONFIGURED', `the environment variable for the ${what} is not set`, { subject: ref.env });
    return value;
  }
  throw new CheckError('CHK_ERR_NOT_CONFIGURED', `no ${what} is configured`);
}

/** The default budget of a check that pages through Okta (the policy's timeoutSeconds overrides it). */
export const OKTA_TIMEOUT_MS = 10 * 60_000;

export interface OktaAccess {
  okta: OktaConfig;
  /** The API token or the private key: for the SDK only, never for facts or logs. */
  secret: string;
  /** Where the credentials came from. */
  from: 'agent-config' | 'policy';
}

/** Whether there is any Okta access to use: the agent's config, or credentials named in a policy. */
export function hasOktaAccess(identityProvider: CollectContext['identityProvider'], settings: OktaSettings | undefined): boolean {
  return identityProvider?.okta !== undefined || (settings?.orgUrl !== undefined && settings.auth !== undefined);
}

const DEFAULT_SETTINGS: OktaSettings = oktaConfigSchema.parse({});

/**
 * The org, the auth and the secret for one collection. The agent's local access wins over
 * credentials named in a policy; an org the policy names must be the org the agent reads.
 */
export async function resolveOktaAccess(ctx: Pick<CollectContext, 'io' | 'identityProvider'>, settings: OktaSettings | undefined): Promise<OktaAccess> {
  const local = ctx.identityProvider?.okta;
  const s = settings ?? DEFAULT_SETTINGS;
  if (local !== undefined) {
    if (s.orgUrl !== undefined && s.orgUrl !== local.orgUrl) {
      throw new CheckError('CHK_ERR_NOT_CONFIGURED', `the policy names the Okta org ${s.orgUrl}, but this agent's config gives access to ${local.orgUrl}`, {
        subject: 'okta.orgUrl',
      });
    }
    return { okta: { ...s, orgUrl: local.orgUrl, auth: local.auth }, secret: await local.secret(), from: 'agent-config' };
  }
  if (s.orgUrl === undefined || s.auth === undefined) {
    throw new CheckError(
      'CHK_ERR_NOT_CONFIGURED',
      settings === undefined
        ? 'Okta is not configured: give the agent Okta access in its config (okta.orgUrl and a token or key reference)'
        : 'no Okta access: the agent\'s config has none, and the policy gives no orgUrl and auth',
    );
  }
  const auth = s.auth;
  const ref =
    auth.type === 'apiToken'
      ? { file: auth.tokenFile, env: auth.tokenEnv, what: 'Okta API token' }
      : { file: auth.privateKeyFile, env: auth.privateKeyEnv, what: 'Okta private key' };
  const secret = await readSecret(ctx.io, ref, ref.what);
  const settled = auth.type === 'apiToken' ? { type: 'apiToken' as const } : { type: 'privateKey' as const, clientId: auth.clientId, keyId: auth.keyId, scopes: auth.scopes };
  return { okta: { ...s, orgUrl: s.orgUrl, auth: settled }, secret, from: 'policy' };
}
