// sso_coverage: do the provider's staff sign in through the identity provider (Okta) with MFA,
// are apps federated rather than password-vaulted, and are leavers deprovisioned in time?
// The check reads an identity provider's API, not the host: see README.md.
import { CheckError } from '../errors.js';
import type { Check, CollectContext, HostIO, SourceDecl } from '../types.js';
import { evaluate } from './evaluate.js';
import { buildFacts, type RawObservations } from './measure.js';
import { parseRoster } from './roster.js';
import { configSchema, factsSchema, type Config, type Facts, type OktaConfig } from './schema.js';

export { evaluate, SSO_FAIL_CODES } from './evaluate.js';
export { buildFacts, countFacts, idpCredentials } from './measure.js';
export { ssoMetricSamples, SSO_METRICS, type MetricSample } from './metrics.js';
export { configSchema, factsSchema, DEFAULT_SCOPES, type Config, type Facts, type IdpCredential } from './schema.js';

// The same on every platform: the only host files are the secret and the roster, both named by
// the config. The Okta API endpoints are listed in README.md and, per run, in facts.source.
const sources: readonly SourceDecl[] = [
  { kind: 'file', path: '<okta.auth.tokenFile>', why: 'the Okta API token, when the config names a file (not an environment variable)' },
  { kind: 'file', path: '<okta.auth.privateKeyFile>', why: "the Okta service app's private key, when the config names a file" },
  { kind: 'file', path: '<roster.file>', why: 'the staff roster (CSV or JSON), when configured' },
];

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

function secretRef(okta: OktaConfig): { file?: string | undefined; env?: string | undefined; what: string } {
  return okta.auth.type === 'apiToken'
    ? { file: okta.auth.tokenFile, env: okta.auth.tokenEnv, what: 'Okta API token' }
    : { file: okta.auth.privateKeyFile, env: okta.auth.privateKeyEnv, what: 'Okta private key' };
}

export interface CollectOptions {
  /** The clock (tests pin it); every age and lag is measured to this instant. */
  now?: () => Date;
}

/** collect() with an injectable clock; the spec's collect uses the real one. */
export async function collectSso(ctx: CollectContext<Config>, opts: CollectOptions = {}): Promise<Facts> {
  const { config, io, signal } = ctx;
  if (config.okta === undefined) throw new CheckError('CHK_ERR_NOT_CONFIGURED', 'Okta is not configured');
  const okta = config.okta;
  const now = (opts.now ?? (() => new Date()))();
  const ref = secretRef(okta);
  const secret = await readSecret(io, ref, ref.what);

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
};
