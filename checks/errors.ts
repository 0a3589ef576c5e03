// Stable codes for why a check could not tell (status `unknown`). Callers branch on the code,
// never on the message. checks/README.md documents each one; a test keeps the two equal.
export const CHECK_ERROR_CODES = {
  CHK_ERR_UNSUPPORTED_PLATFORM: 'the check has no implementation for this platform',
  CHK_ERR_SOURCE_MISSING: 'a source the check needs does not exist on this host',
  CHK_ERR_PERMISSION: 'the agent lacks the privilege to read a source',
  CHK_ERR_TIMEOUT: 'the check or one of its commands ran out of time',
  CHK_ERR_PARSE: 'a source could not be parsed',
  CHK_ERR_COMMAND_NOT_ALLOWED: 'a command outside the declared allow-list was requested',
  CHK_ERR_COMMAND_FAILED: 'an allow-listed command exited with an error',
  CHK_ERR_NETWORK: 'a network probe named in the policy failed',
  CHK_ERR_UNRESOLVED: 'the check read its sources but cannot decide from them',
  CHK_ERR_NOT_CONFIGURED: 'the check needs configuration that is not set',
  CHK_ERR_INTERNAL: 'the check failed unexpectedly (a bug); the other checks still ran',
} as const;

export type CheckErrorCode = keyof typeof CHECK_ERROR_CODES;

/** Thrown by HostIO implementations and checks; the runner turns it into `unknown`. */
export class CheckError extends Error {
  readonly code: CheckErrorCode;
  readonly subject: string | undefined;
  constructor(code: CheckErrorCode, message: string, opts?: { subject?: string; cause?: unknown }) {
    super(message, opts?.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'CheckError';
    this.code = code;
    this.subject = opts?.subject;
  }
}

export function isCheckError(err: unknown): err is CheckError {
  return err instanceof CheckError;
}

/** Maps a Node fs error to a check error code (ENOENT → missing, EACCES → permission). */
export function codeForFsError(err: unknown): CheckErrorCode {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case 'ENOENT':
    case 'ENOTDIR':
      return 'CHK_ERR_SOURCE_MISSING';
    case 'EACCES':
    case 'EPERM':
      return 'CHK_ERR_PERMISSION';
    default:
      return 'CHK_ERR_INTERNAL';
  }
}
