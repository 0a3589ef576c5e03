// Runs checks with a time budget each and turns every failure into `unknown` with a code.
// A check that throws never stops the others (node_exporter's collector wrapper, for checks).
import { CHECK_ERROR_CODES, isCheckError, type CheckErrorCode } from './errors.js';
import type { AnyCheck, Evaluation, Finding, HostIO, IdentityProviderAccess, Reason } from './types.js';

export const DEFAULT_CHECK_TIMEOUT_MS = 30_000;

export interface RunOptions {
  io: HostIO;
  /** Per-check configuration (already validated against each check's schema, or raw). */
  configs?: Partial<Record<string, unknown>>;
  /** One budget for every check; beats the check's own default. */
  timeoutMs?: number;
  /** Per-check budgets (the policy's `timeoutSeconds`); beat `timeoutMs` and the defaults. */
  timeoutsMs?: Partial<Record<string, number>>;
  /** Identity-provider access from the agent's local config, handed to every check. */
  identityProvider?: IdentityProviderAccess;
  now?: () => Date;
  /** Per-check state kept between runs (CollectContext.cache); only the daemon passes it. */
  caches?: Partial<Record<string, Map<string, unknown>>>;
}

/** The policy's per-check budgets in milliseconds, for RunOptions.timeoutsMs. */
export function policyTimeouts(checks: Partial<Record<string, { timeoutSeconds?: number | undefined } | undefined>> | undefined): Partial<Record<string, number>> {
  const out: Partial<Record<string, number>> = {};
  for (const [id, c] of Object.entries(checks ?? {})) if (c?.timeoutSeconds !== undefined) out[id] = c.timeoutSeconds * 1000;
  return out;
}

/** The budget a check gets: the policy's, then the caller's, then the check's own, then 30 s. */
export function budgetFor(check: AnyCheck, config: unknown, opts: Pick<RunOptions, 'timeoutMs' | 'timeoutsMs'>): number {
  return opts.timeoutsMs?.[check.id] ?? opts.timeoutMs ?? check.timeoutMs?.(config) ?? DEFAULT_CHECK_TIMEOUT_MS;
}

function unknown(code: CheckErrorCode, message: string, subject?: string): Evaluation {
  const reason: Reason = { code, message };
  if (subject !== undefined) reason.subject = subject;
  return { status: 'unknown', reasons: [reason] };
}

type ConfigResult = { ok: true; config: unknown } | { ok: false; reason: Reason };
/** Parsed configs by the raw object they came from: the collector judges every result with them. */
const configCache = new WeakMap<object, Map<AnyCheck, ConfigResult>>();

/** Parses a check's config, falling back to its defaults. A bad config is not a pass. */
export function configFor(check: AnyCheck, raw: unknown): ConfigResult {
  if (typeof raw !== 'object' || raw === null) return parseConfig(check, raw);
  let byCheck = configCache.get(raw);
  if (byCheck === undefined) configCache.set(raw, (byCheck = new Map()));
  let result = byCheck.get(check);
  if (result === undefined) byCheck.set(check, (result = parseConfig(check, raw)));
  return result;
}

function parseConfig(check: AnyCheck, raw: unknown): ConfigResult {
  const parsed = check.configSchema.safeParse(raw ?? {});
  if (parsed.success) return { ok: true, config: parsed.data };
  return {
    ok: false,
    reason: { code: 'CHK_ERR_NOT_CONFIGURED', message: `invalid config: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}` },
  };
}

/** A printable message for any thrown value, including null and objects without a prototype. */
export function describeThrown(err: unknown): string {
  if (err instanceof Error) return err.message;
  try {
    return String(err);
  } catch {
    return Object.prototype.toString.call(err);
  }
}

function evaluateParsed(check: AnyCheck, facts: unknown, config: unknown): Evaluation {
  try {
    return check.evaluate(facts, config);
  } catch (err) {
    return unknown('CHK_ERR_INTERNAL', `evaluation failed: ${describeThrown(err)}`);
  }
}

/** Judges facts under a config; used by the agent (local view) and the collector (verdict). */
export function evaluateFacts(check: AnyCheck, facts: unknown, rawConfig: unknown): Evaluation {
  const cfg = configFor(check, rawConfig);
  if (!cfg.ok) return { status: 'unknown', reasons: [cfg.reason] };
  const parsed = check.factsSchema.safeParse(facts);
  if (!parsed.success) return unknown('CHK_ERR_PARSE', 'facts do not match the check schema');
  return evaluateParsed(check, parsed.data, cfg.config);
}

class Timeout extends Error {}

async function withBudget<T>(ms: number, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const ctrl = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let timedOut = false;
  // Not unref'd: a hung check must still end in a finding, not in the process quietly exiting.
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      timedOut = true;
      reject(new Timeout());
      ctrl.abort();
    }, ms);
  });
  try {
    return await Promise.race([work(ctrl.signal), expired]);
  } catch (err) {
    // Whatever the check threw once its time was up (an abort, say), the cause is the timeout.
    throw timedOut ? new Timeout() : err;
  } finally {
    clearTimeout(timer);
  }
}

export async function runCheck(check: AnyCheck, opts: RunOptions): Promise<Finding> {
  const now = opts.now ?? (() => new Date());
  const started = performance.now();
  const collectedAt = now().toISOString();
  const base = { check: check.id, checkVersion: check.version, platform: opts.io.platform, collectedAt };
  const done = (facts: unknown, ev: Evaluation): Finding => ({
    ...base,
    status: ev.status,
    reasons: ev.reasons,
    facts: facts ?? null,
    durationMs: Math.round((performance.now() - started) * 1000) / 1000,
  });

  if (!check.platforms.includes(opts.io.platform)) {
    return done(null, unknown('CHK_ERR_UNSUPPORTED_PLATFORM', `${check.id} does not run on ${opts.io.platform}`));
  }
  // A bad config is unknown before anything is read: it never turns into a pass.
  const cfg = configFor(check, opts.configs?.[check.id]);
  if (!cfg.ok) return done(null, { status: 'unknown', reasons: [cfg.reason] });
  let facts: unknown;
  try {
    const cache = opts.caches?.[check.id];
    facts = await withBudget(budgetFor(check, cfg.config, opts), (signal) =>
      check.collect({ io: opts.io, platform: opts.io.platform, config: cfg.config, signal, identityProvider: opts.identityProvider, ...(cache === undefined ? {} : { cache }) }),
    );
  } catch (err) {
    if (err instanceof Timeout) return done(null, unknown('CHK_ERR_TIMEOUT', 'the check ran out of time'));
    if (isCheckError(err)) return done(null, unknown(err.code, err.message, err.subject));
    // Replay harness errors must reach the test, not hide as `unknown`.
    if ((err as { code?: unknown } | null | undefined)?.code === 'REPLAY_UNRECORDED_CALL') throw err;
    return done(null, unknown('CHK_ERR_INTERNAL', `the check threw: ${describeThrown(err)}`));
  }
  const parsed = check.factsSchema.safeParse(facts);
  if (!parsed.success) {
    return done(null, unknown('CHK_ERR_INTERNAL', 'the check produced facts outside its schema'));
  }
  return done(parsed.data, evaluateParsed(check, parsed.data, cfg.config));
}

/** Runs checks one after another, so that one slow or broken check cannot starve the rest. */
export async function runChecks(checks: readonly AnyCheck[], opts: RunOptions): Promise<Finding[]> {
  const findings: Finding[] = [];
  for (const check of checks) findings.push(await runCheck(check, opts));
  return findings;
}

export function describeCode(code: string): string | undefined {
  return (CHECK_ERROR_CODES as Record<string, string>)[code];
}
