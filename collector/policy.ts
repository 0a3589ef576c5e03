// The customer's policy: policy/<version>.json, each version written once, the highest one current.
// Agents get the effective policy of their vendor; exceptions stay at the collector.
import { checkById } from '../checks/index.js';
import { describeViolations, localOnlyViolations } from '../checks/local-only.js';
import type { CheckId } from '../checks/types.js';
import {
  policyDocumentSchema,
  policySchema,
  type Policy,
  type PolicyDocument,
  type PolicyException,
} from './contract.js';
import { CollectorError } from './errors.js';
import type { EvidenceStore } from './store.js';

export function defaultPolicyDocument(now: Date = new Date()): PolicyDocument {
  return policyDocumentSchema.parse({
    version: 1,
    createdAt: now.toISOString(),
    freshnessSeconds: 7200,
    // The five host controls run everywhere; sso_coverage needs Okta access, so a vendor's
    // policy turns it on for the one agent that has it.
    checks: {
      vpn: { enabled: true, intervalSeconds: 900, config: {} },
      disk_encryption: { enabled: true, intervalSeconds: 3600, config: {} },
      usb_policy: { enabled: true, intervalSeconds: 3600, config: {} },
      credential_age: { enabled: true, intervalSeconds: 86400, config: {} },
      sso_coverage: { enabled: false, intervalSeconds: 3600, config: {} },
      open_ports: { enabled: true, intervalSeconds: 900, config: {} },
    },
  });
}

const effectiveCache = new WeakMap<PolicyDocument, Map<string | null, Policy>>();

/** What one vendor's agents get: defaults with the vendor's overrides, no exceptions. */
export function effectivePolicy(doc: PolicyDocument, vendor: string | null): Policy {
  // Documents are frozen once loaded, so the result for a vendor never changes: compute it once.
  let byVendor = effectiveCache.get(doc);
  if (byVendor === undefined) effectiveCache.set(doc, (byVendor = new Map()));
  let policy = byVendor.get(vendor);
  if (policy === undefined) byVendor.set(vendor, (policy = Object.freeze(computeEffective(doc, vendor))));
  return policy;
}

function computeEffective(doc: PolicyDocument, vendor: string | null): Policy {
  const override = vendor === null ? undefined : doc.vendors[vendor];
  const checks: Policy['checks'] = {};
  const ids = new Set([...Object.keys(doc.checks), ...Object.keys(override?.checks ?? {})]) as Set<CheckId>;
  for (const id of ids) {
    const base = doc.checks[id] ?? { enabled: false, intervalSeconds: 900, config: {} };
    const o = override?.checks[id];
    const timeoutSeconds = o?.timeoutSeconds ?? base.timeoutSeconds;
    checks[id] = {
      enabled: o?.enabled ?? base.enabled,
      intervalSeconds: o?.intervalSeconds ?? base.intervalSeconds,
      ...(timeoutSeconds === undefined ? {} : { timeoutSeconds }),
      config: o?.config ?? base.config,
    };
  }
  return policySchema.parse({
    version: doc.version,
    createdAt: doc.createdAt,
    freshnessSeconds: override?.freshnessSeconds ?? doc.freshnessSeconds,
    checks,
  });
}

/**
 * A host glob (`*` for any run of characters, case-insensitive) matched in O(host × glob) time by
 * the classic two-pointer walk that backtracks only to the last `*`: a regex of several `.*`
 * backtracks exponentially, and a policy's pattern met a 253-character host name per judgment.
 */
export function globMatches(glob: string, host: string): boolean {
  const g = glob.toLowerCase();
  const h = host.toLowerCase();
  let gi = 0;
  let hi = 0;
  let star = -1;
  let resume = 0;
  while (hi < h.length) {
    if (gi < g.length && g[gi] === '*') {
      star = gi++;
      resume = hi;
    } else if (gi < g.length && g[gi] === h[hi]) {
      gi++;
      hi++;
    } else if (star !== -1) {
      gi = star + 1;
      hi = ++resume;
    } else return false;
  }
  while (gi < g.length && g[gi] === '*') gi++;
  return gi === g.length;
}

/** The unexpired exception covering this vendor, host and check, if any. */
export function activeException(doc: PolicyDocument, vendor: string, host: string, check: CheckId, now: Date): PolicyException | undefined {
  return doc.exceptions.find(
    (e) => e.vendor === vendor && e.check === check && Date.parse(e.expires) > now.getTime() && globMatches(e.hosts, host),
  );
}

/** A zod issue's path as a JSON path: checks.vpn.intervalSeconds, exceptions.0.expires. */
function issuePath(prefix: string, path: readonly PropertyKey[]): string {
  return [prefix, ...path.map(String)].filter((p) => p !== '').join('.') || '(document)';
}

const asRecord = (v: unknown): Record<string, unknown> => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {});

/** The check configs a document holds, read from what was written, so that they are checked even when other fields are wrong. */
function checkConfigs(raw: unknown): [string, CheckId, unknown][] {
  const doc = asRecord(raw);
  const configs: [string, CheckId, unknown][] = [];
  for (const [id, c] of Object.entries(asRecord(doc.checks))) configs.push(['checks', id as CheckId, asRecord(c).config]);
  for (const [vendor, v] of Object.entries(asRecord(doc.vendors))) {
    for (const [id, c] of Object.entries(asRecord(asRecord(v).checks))) {
      const config = asRecord(c).config;
      if (config !== undefined) configs.push([`vendors.${vendor}.checks`, id as CheckId, config]);
    }
  }
  return configs;
}

/**
 * Validates a policy document as an operator wrote it: the schema, no setting that only an agent's
 * own config may hold (checks/local-only.ts), and every check config against that check's own
 * schema, so that a typo in an allow-list is refused here, not judged as unknown. The error names
 * every problem found, each with its path, not only the first.
 */
export function validatePolicyDocument(raw: unknown): PolicyDocument {
  const parsed = policyDocumentSchema.safeParse(raw);
  const problems = parsed.success ? [] : parsed.error.issues.map((i) => `${issuePath('', i.path)}: ${i.message}`);
  const configs = checkConfigs(raw);
  const local = configs.flatMap(([where, id, config]) => {
    const check = checkById(id);
    return check === undefined ? [] : localOnlyViolations(check, config).map((v) => ({ ...v, check: `${where}.${v.check}` }));
  });
  for (const [where, id, config] of configs) {
    const result = checkById(id)?.configSchema.safeParse(config ?? {});
    if (result !== undefined && !result.success) problems.push(...result.error.issues.map((i) => `${issuePath(`${where}.${id}.config`, i.path)}: ${i.message}`));
  }
  const ids = new Set<string>();
  for (const e of parsed.success ? parsed.data.exceptions : []) {
    if (ids.has(e.id)) problems.push(`exceptions: duplicate id ${e.id}`);
    ids.add(e.id);
  }
  if (local.length > 0) {
    const more = problems.length === 0 ? '' : `; and ${problems.length} other problem${problems.length === 1 ? '' : 's'}: ${problems.join('; ')}`;
    throw new CollectorError('COL_ERR_POLICY_LOCAL_ONLY', `${describeViolations('', local)}${more}`);
  }
  if (problems.length > 0 || !parsed.success) {
    throw new CollectorError('COL_ERR_POLICY_INVALID', `${problems.length} problem${problems.length === 1 ? '' : 's'}: ${problems.join('; ')}`);
  }
  return parsed.data;
}

/** Exceptions that have already expired: valid, but they waive nothing (worth a warning to whoever wrote them). */
export function expiredExceptions(doc: PolicyDocument, now: Date): PolicyException[] {
  return doc.exceptions.filter((e) => Date.parse(e.expires) <= now.getTime());
}

export async function latestPolicyVersion(store: EvidenceStore): Promise<number | null> {
  let latest: number | null = null;
  for await (const key of store.list('policy/')) {
    const m = /^policy\/(\d+)\.json$/.exec(key);
    if (m?.[1] !== undefined) latest = Math.max(latest ?? 0, Number(m[1]));
  }
  return latest;
}

export async function readPolicyVersion(store: EvidenceStore, version: number): Promise<PolicyDocument | null> {
  const raw = await store.get(`policy/${version}.json`);
  return raw === null ? null : Object.freeze(policyDocumentSchema.parse(JSON.parse(raw.toString('utf8'))));
}

/** Writes `raw` as the next version. Old versions are never overwritten: a race loses cleanly. */
export async function writeNextPolicy(store: EvidenceStore, raw: unknown, now: Date = new Date()): Promise<PolicyDocument> {
  const body = validatePolicyDocument({ ...(raw as object), version: 1, createdAt: now.toISOString() });
  const version = ((await latestPolicyVersion(store)) ?? 0) + 1;
  const doc = { ...body, version, createdAt: now.toISOString() };
  if ((await store.putIfAbsent(`policy/${version}.json`, Buffer.from(`${JSON.stringify(doc, null, 2)}\n`))) === 'exists') {
    throw new CollectorError('COL_ERR_POLICY_CONFLICT', `policy version ${version} was written by someone else first; retry`);
  }
  return doc;
}

/**
 * Loads the current policy, writing the default as version 1 on a new store. With `write: false`
 * (a store that failed its preflight takes no writes) the default is used without being stored.
 */
export async function loadOrInitPolicy(store: EvidenceStore, now: Date = new Date(), opts: { write?: boolean } = {}): Promise<PolicyDocument> {
  const version = await latestPolicyVersion(store);
  if (version === null && opts.write === false) return Object.freeze(defaultPolicyDocument(now));
  if (version === null) {
    const doc = defaultPolicyDocument(now);
    await store.putIfAbsent('policy/1.json', Buffer.from(`${JSON.stringify(doc, null, 2)}\n`));
    return loadOrInitPolicy(store, now);
  }
  const doc = await readPolicyVersion(store, version);
  if (doc === null) throw new CollectorError('COL_ERR_STORE_UNAVAILABLE', `policy/${version}.json vanished`);
  return doc;
}
