// What a parser throws, as the CHK_ERR_* code the tests compare (undefined when it returns).
import { isCheckError } from '../../checks/errors.js';

export function thrownCode(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return isCheckError(err) ? err.code : `not a CheckError: ${String(err)}`;
  }
  return undefined;
}
