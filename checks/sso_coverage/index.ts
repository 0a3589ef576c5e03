// sso_coverage: do the provider's staff sign in through the identity provider (Okta) with MFA,
// are apps federated rather than password-vaulted, and are leavers deprovisioned in time?
// The check reads an identity provider's API, not the host: see README.md.
import type { Check, CollectContext, SourceDecl } from '../types.js';
import { OKTA_TIMEOUT_MS, hasOktaAccess, resolveOktaAccess } from './access.js';
import { evaluate } from './evaluate.js';
import { buildFacts, type RawObservations } from './measure.js';
import { parseRoster } from './roster.js';
import { configSchema, factsSchema, type Config, type Facts } from './schema.js';

export { hasOktaAccess, readSecret, resolveOktaAccess, type OktaAccess } from './access.js';
export { evaluate, SSO_FAIL_CODES } from './evaluate.js';
export { buildFacts, countFacts, idpCredentials } from './measure.js';
export { ssoMetricSamples, SSO_METRICS, type MetricSample } from './metrics.js';
export { configSchema, factsSchema, DEFAULT_SCOPES, type Config, type Facts, type IdpCredential } from './schema.js';

// The same on every platform: the only host files are the secret and the roster, both named by
// the config. The Okta API endpoints are listed in README.md and, per run, in facts.source.
const sources: readonly SourceDecl[] = [
  { kind: 'file', path: '<okta.auth.tokenFile>', why: 'the Okta API token, when a policy names a file (the agent config\'s own okta reference is read by the agent)' },
  { kind: 'file', path: '<okta.auth.privateKeyFile>', why: "the Okta service app's private key, when a policy names a file" },
  { kind: 'file', path: '<roster.file>', why: 'the staff roster (CSV or JSON), when configured' },
];

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
  runsHere: (config, identityProvider) => hasOktaAccess(identityProvider, config.okta),
};
