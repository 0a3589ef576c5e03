// sso_coverage: do the provider's staff sign in through the identity provider (Okta) with MFA,
// are apps federated rather than password-vaulted, and are leavers deprovisioned in time?
// The check reads an identity provider's API, not the host: see README.md.
import { CheckError } from '../errors.js';
import type { Check, CollectContext, LocalOnlySetting, SourceDecl } from '../types.js';
import { OKTA_TIMEOUT_MS, hasOktaAccess, resolveOktaAccess } from './access.js';
import { evaluate } from './evaluate.js';
import { buildFacts, type RawObservations } from './measure.js';
import { parseRoster } from './roster.js';
import { configSchema, factsSchema, OKTA_AUTH_LOCAL_ONLY, type Config, type Facts } from './schema.js';

export { hasOktaAccess, resolveOktaAccess, type OktaAccess } from './access.js';
export { evaluate, SSO_FAIL_CODES } from './evaluate.js';
export { buildFacts, countFacts, idpCredentials } from './measure.js';
export { ssoMetricSamples, SSO_METRICS, type MetricSample } from './metrics.js';
export { configSchema, factsSchema, DEFAULT_SCOPES, type Config, type Facts, type IdpCredential } from './schema.js';

// The same on every platform: the only host files are the secret, named by the agent's config,
// and the roster, which the agent's config allows. The Okta API endpoints are listed in README.md
// and, per run, in facts.source.
const sources: readonly SourceDecl[] = [
  { kind: 'file', path: '<agent config okta.tokenFile or okta.privateKeyFile>', why: "the Okta API token or the service app's private key; only the agent's own config names it" },
  { kind: 'file', path: '<roster.file>', why: "the staff roster (CSV or JSON), when the policy names one that the agent config's okta.rosterFiles lists" },
];

/** Never from a policy: the credentials. */
export const SSO_LOCAL_ONLY: readonly LocalOnlySetting[] = [{ path: ['okta', 'auth'], instead: OKTA_AUTH_LOCAL_ONLY }];

export interface CollectOptions {
  /** The clock (tests pin it); every age and lag is measured to this instant. */
  now?: () => Date;
}

/** collect() with an injectable clock; the spec's collect uses the real one. */
export async function collectSso(ctx: CollectContext<Config>, opts: CollectOptions = {}): Promise<Facts> {
  const { config, io, signal } = ctx;
  const now = (opts.now ?? (() => new Date()))();
  const { okta, secret } = await resolveOktaAccess(ctx, config.okta);

  let roster: RawObservations['roster'] = null;
  if (config.roster !== undefined) {
    // The policy picks the roster; the agent reads it only where its own config allows that file.
    if (ctx.identityProvider?.okta?.rosterFiles?.includes(config.roster.file) !== true) {
      throw new CheckError('CHK_ERR_NOT_CONFIGURED', `the policy names the roster ${config.roster.file}, which the agent config's okta.rosterFiles does not list`, {
        subject: 'roster.file',
      });
    }
    const text = await io.readFile(config.roster.file);
    roster = { file: config.roster.file, joinOn: config.roster.joinOn, rows: parseRoster(text, config.roster.file, config.roster.format) };
  }

  // Loaded only here: hosts without Okta never load the SDK.
  const { collectOkta } = await import('./okta.js');
  const observed = await collectOkta({
    okta,
    secret,
    population: config.population,
    leaverLookbackDays: config.leaverLookbackDays,
    signal,
    now,
  });
  return buildFacts({ ...observed, roster }, config);
}

export const ssoCoverage: Check<Config, Facts> = {
  id: 'sso_coverage',
  version: '1.0.0',
  title: 'Staff sign in through Okta with MFA, apps are federated, leavers are deprovisioned in time',
  platforms: ['linux', 'darwin', 'win32'],
  sources: { linux: sources, darwin: sources, win32: sources },
  configSchema,
  factsSchema,
  collect: (ctx) => collectSso(ctx),
  evaluate,
  // Paging through a large org's users, factors and app assignments takes minutes, not seconds.
  timeoutMs: () => OKTA_TIMEOUT_MS,
  // One agent per provider holds the Okta access; the others do not run this check at all.
  runsHere: (_config, identityProvider) => hasOktaAccess(identityProvider),
  localOnly: SSO_LOCAL_ONLY,
};
