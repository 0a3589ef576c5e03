// What the agent takes from its collector, and what it never does. The collector's policy chooses
// what is observed and how it is judged; where a secret comes from and where the agent connects
// come only from this host's own config (checks/local-only.ts). A policy that says otherwise is
// refused whole: the agent keeps the policy it had.
import { checkById } from '../checks/index.js';
import { describeViolations, localOnlyViolations } from '../checks/local-only.js';
import type { Policy } from '../collector/contract.js';
import { AgentError } from './errors.js';
import type { StateDir } from './state.js';

/** Throws AGT_ERR_POLICY_LOCAL_ONLY when the policy names a setting only the agent's config may hold. */
export function refuseLocalOnly(policy: Policy): Policy {
  const found = Object.entries(policy.checks).flatMap(([id, c]) => {
    const check = checkById(id);
    return check === undefined || c === undefined ? [] : localOnlyViolations(check, c.config);
  });
  if (found.length > 0) throw new AgentError('AGT_ERR_POLICY_LOCAL_ONLY', describeViolations('checks.', found));
  return policy;
}

/** The cached policy, refused the same way (an older agent may have cached one that names such a setting). */
export async function trustedCachedPolicy(state: StateDir): Promise<Policy | null> {
  const policy = await state.policy();
  return policy === null ? null : refuseLocalOnly(policy);
}
