// Stable agent error codes. The CLI prints `code: message` and exits non-zero; scripts branch on the code.
export const AGENT_ERROR_CODES = {
  AGT_ERR_CONFIG: 'invalid option or configuration',
  AGT_ERR_NOT_ENROLLED: 'the state directory holds no enrollment; run `vcm-agent enroll` first',
  AGT_ERR_ALREADY_ENROLLED: 'the state directory already holds an enrollment',
  AGT_ERR_POLICY_INVALID: "the collector's policy answer is not a valid policy; the cached policy stays in force",
  AGT_ERR_POLICY_LOCAL_ONLY: "the collector's policy names a secret source or an endpoint, which only this agent's own config may name; the policy is refused",
  AGT_ERR_INSECURE_URL: 'plain HTTP is refused except to loopback',
  AGT_ERR_ENROLL_REJECTED: 'the collector refused the enrollment',
  AGT_ERR_COLLECTOR_UNREACHABLE: 'the collector could not be reached',
  AGT_ERR_COLLECTOR_UNVERIFIED: 'the server did not prove it holds the collector key pinned at enrollment; nothing is sent to it',
  AGT_ERR_DELIVERY: 'the collector did not acknowledge every result',
  AGT_ERR_STATE: 'the state directory is damaged or unreadable',
  AGT_ERR_UNKNOWN_CHECK: 'no check has that id',
  AGT_ERR_STATE_LOCKED: 'another vcm-agent process is using the state directory',
  AGT_ERR_ROTATE_REJECTED: 'the collector refused the key rotation; the agent keeps its current key',
  AGT_ERR_LOG_INCONSISTENT: "the collector showed a log checkpoint that does not extend the one this agent checked before, or that its key did not sign",
  AGT_ERR_ROTATION_PENDING: 'a key rotation waits for the collector\'s answer; nothing new is signed until it comes',
} as const;

export type AgentErrorCode = keyof typeof AGENT_ERROR_CODES;

export class AgentError extends Error {
  readonly code: AgentErrorCode;
  constructor(code: AgentErrorCode, message?: string, opts?: { cause?: unknown }) {
    super(message ?? AGENT_ERROR_CODES[code], opts);
    this.name = 'AgentError';
    this.code = code;
  }
}

export function isAgentError(err: unknown): err is AgentError {
  return err instanceof AgentError;
}
