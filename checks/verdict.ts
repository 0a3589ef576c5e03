// The one way findings combine: any fail is a fail, else any unknown is unknown, else pass.
import type { Evaluation, Reason } from './types.js';

export function verdict(fails: Reason[], unknowns: Reason[]): Evaluation {
  if (fails.length > 0) return { status: 'fail', reasons: fails };
  if (unknowns.length > 0) return { status: 'unknown', reasons: unknowns };
  return { status: 'pass', reasons: [] };
}
