// Stable collector error codes, their HTTP status and the rejection reason they count under.
// The body is always { "error": { "code", "message" } }, never a stack trace.
export const COLLECTOR_ERRORS = {
  COL_ERR_TOO_LARGE: { status: 413, reason: 'too_large', message: 'the request body is larger than the limit' },
  COL_ERR_HEADERS_TOO_LARGE: { status: 431, reason: 'headers_too_large', message: 'the request headers are larger than the limit' },
  COL_ERR_REQUEST_TIMEOUT: { status: 408, reason: 'request_timeout', message: 'the request was not received in time' },
  COL_ERR_MALFORMED: { status: 400, reason: 'malformed', message: 'the body is not a valid envelope' },
  COL_ERR_UNSUPPORTED_MEDIA_TYPE: { status: 415, reason: 'malformed', message: 'unsupported content type' },
  COL_ERR_BAD_SIGNATURE: { status: 401, reason: 'bad_signature', message: 'the signature does not verify against the registered key' },
  COL_ERR_UNKNOWN_AGENT: { status: 401, reason: 'unknown_agent', message: 'no agent is registered under this key id' },
  COL_ERR_REVOKED: { status: 403, reason: 'revoked', message: 'the agent is revoked' },
  COL_ERR_UNKNOWN_TYPE: { status: 400, reason: 'unknown_type', message: 'unknown payload or predicate type' },
  COL_ERR_SCHEMA: { status: 422, reason: 'schema', message: 'the statement does not match the schema' },
  COL_ERR_REPLAY: { status: 409, reason: 'replay', message: 'this sequence number was already stored with other content' },
  COL_ERR_CHAIN_BROKEN: { status: 409, reason: 'chain_broken', message: 'the previous-envelope hash does not match the stored chain' },
  COL_ERR_SEQ_JUMP: { status: 409, reason: 'seq_jump', message: 'the sequence number jumps too far ahead of the chain head' },
  COL_ERR_FUTURE: { status: 422, reason: 'future', message: 'the collection time is in the future beyond the allowed skew' },
  COL_ERR_BACKDATED: { status: 422, reason: 'backdated', message: 'the collection time is before the agent enrolled, or before the day of the result it follows in the chain, beyond the allowed skew' },
  COL_ERR_TOKEN_INVALID: { status: 401, reason: 'token_invalid', message: 'the enrollment token is unknown, used or expired' },
  COL_ERR_AGENT_EXISTS: { status: 409, reason: 'agent_exists', message: 'this key is already enrolled' },
  COL_ERR_BAD_KEY_PROOF: { status: 401, reason: 'bad_key_proof', message: 'the new key\'s proof of possession does not verify' },
  COL_ERR_ROTATION_REPLAY: { status: 409, reason: 'rotation_replay', message: 'this rotation was already made, or does not build on the agent\'s current key' },
  COL_ERR_ROTATION_BEHIND: { status: 409, reason: 'rotation_behind', message: 'the rotation point is below the chain head the collector holds' },
  COL_ERR_KEY_REUSED: { status: 409, reason: 'key_reused', message: 'the new key is already registered' },
  COL_ERR_RATE_LIMITED: { status: 429, reason: 'rate_limited', message: 'this agent sends faster than its rate limit' },
  COL_ERR_UNAUTHORIZED: { status: 401, reason: 'unauthorized', message: 'an admin or auditor bearer token is required' },
  COL_ERR_FORBIDDEN: { status: 403, reason: 'forbidden', message: 'this token\'s role or vendor scope does not allow that' },
  COL_ERR_POLICY_INVALID: { status: 422, reason: 'policy_invalid', message: 'the policy document is invalid' },
  COL_ERR_POLICY_LOCAL_ONLY: { status: 422, reason: 'policy_local_only', message: 'the policy names a secret source or an endpoint, which only an agent\'s own config may name' },
  COL_ERR_POLICY_CONFLICT: { status: 409, reason: 'policy_conflict', message: 'another policy version was written first' },
  COL_ERR_STORE_UNAVAILABLE: { status: 503, reason: 'store_unavailable', message: 'the evidence store cannot take writes now' },
  COL_ERR_NOT_FOUND: { status: 404, reason: 'not_found', message: 'no such endpoint' },
  COL_ERR_LOG_RANGE: { status: 400, reason: 'log_range', message: 'the index or size is outside what the log has signed' },
  COL_ERR_LOG_INCONSISTENT: { status: 409, reason: 'log_inconsistent', message: 'two checkpoints of a log do not agree: its history was rewritten' },
  COL_ERR_EXPORT_PERIOD: { status: 400, reason: 'export_period', message: 'the export period is not two ISO 8601 times, from before to' },
  COL_ERR_METHOD: { status: 405, reason: 'method', message: 'method not allowed' },
  COL_ERR_CONFIG: { status: 500, reason: 'config', message: 'invalid collector configuration' },
  COL_ERR_USAGE: { status: 400, reason: 'usage', message: 'invalid usage: an unknown command or option, a missing or bad argument, or an input file that cannot be read' },
  COL_ERR_NO_STORE: { status: 500, reason: 'no_store', message: 'the data directory holds no evidence store; vcm-collector serve --data-dir DIR makes one' },
  COL_ERR_INTERNAL: { status: 500, reason: 'internal', message: 'internal error' },
} as const;

export type CollectorErrorCode = keyof typeof COLLECTOR_ERRORS;

export class CollectorError extends Error {
  readonly code: CollectorErrorCode;
  constructor(code: CollectorErrorCode, message?: string, opts?: { cause?: unknown }) {
    super(message ?? COLLECTOR_ERRORS[code].message, opts);
    this.name = 'CollectorError';
    this.code = code;
  }
  get status(): number {
    return COLLECTOR_ERRORS[this.code].status;
  }
  get reason(): string {
    return COLLECTOR_ERRORS[this.code].reason;
  }
  toBody(): { error: { code: string; message: string } } {
    return { error: { code: this.code, message: this.message } };
  }
}

export function isCollectorError(err: unknown): err is CollectorError {
  return err instanceof CollectorError;
}

/** The reasons `vcm_ingest_rejected_total` counts (pre-initialized to 0 so that rate() works). */
export const INGEST_REJECT_REASONS = [
  'too_large',
  'malformed',
  'bad_signature',
  'unknown_agent',
  'revoked',
  'unknown_type',
  'schema',
  'replay',
  'chain_broken',
  'seq_jump',
  'future',
  'backdated',
  'rate_limited',
] as const;
