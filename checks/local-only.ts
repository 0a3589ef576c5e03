// The agent's trust rule: the customer's policy chooses what is observed and how it is judged,
// never where a secret comes from or where the agent connects. Each check declares the config
// settings that say so (`localOnly`); a policy holding one is refused by `policy set` at the
// collector and again by every agent that receives it.
import type { AnyCheck, LocalOnlySetting } from './types.js';

/** A local-only setting found in a policy: where, and where it belongs instead. */
export interface LocalOnlyViolation {
  check: string;
  path: string;
  instead: string;
}

function present(config: unknown, path: readonly string[]): boolean {
  let at: unknown = config;
  for (const key of path) {
    if (typeof at !== 'object' || at === null || !Object.hasOwn(at, key)) return false;
    at = (at as Record<string, unknown>)[key];
  }
  return true;
}

/** The local-only settings a raw (unparsed) check config names. */
export function localOnlyViolations(check: AnyCheck, config: unknown): LocalOnlyViolation[] {
  return (check.localOnly ?? ([] as readonly LocalOnlySetting[]))
    .filter((s) => present(config, s.path))
    .map((s) => ({ check: check.id, path: s.path.join('.'), instead: s.instead }));
}

/** One sentence for an error message: which settings, and where they belong. */
export function describeViolations(where: string, found: readonly LocalOnlyViolation[]): string {
  const list = found.map((v) => `${where}${v.check}.config.${v.path} (${v.instead})`).join('; ');
  return `a policy may not say where a secret comes from or where the agent connects: ${list}`;
}
