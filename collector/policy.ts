// The customer's policy: policy/<version>.json, each version written once, the highest one current.
import { policySchema, type Policy } from './contract.js';
import type { EvidenceStore } from './store.js';

export function defaultPolicy(now: Date = new Date()): Policy {
  return policySchema.parse({
    version: 1,
    createdAt: now.toISOString(),
    freshnessSeconds: 7200,
    checks: {
      disk_encryption: { enabled: true, intervalSeconds: 3600, config: {} },
      open_ports: { enabled: true, intervalSeconds: 900, config: {} },
    },
  });
}

export async function latestPolicyVersion(store: EvidenceStore): Promise<number | null> {
  let latest: number | null = null;
  for await (const key of store.list('policy/')) {
    const m = /^policy\/(\d+)\.json$/.exec(key);
    if (m?.[1] !== undefined) latest = Math.max(latest ?? 0, Number(m[1]));
  }
  return latest;
}

/** Loads the current policy, writing the default as version 1 on a new store. */
export async function loadOrInitPolicy(store: EvidenceStore, now: Date = new Date()): Promise<Policy> {
  const version = await latestPolicyVersion(store);
  if (version === null) {
    const policy = defaultPolicy(now);
    await store.putIfAbsent('policy/1.json', Buffer.from(`${JSON.stringify(policy, null, 2)}\n`));
    return loadOrInitPolicy(store, now);
  }
  const raw = await store.get(`policy/${version}.json`);
  if (raw === null) throw new Error(`policy/${version}.json vanished`);
  return Object.freeze(policySchema.parse(JSON.parse(raw.toString('utf8'))));
}
