// One process at a time per state directory: two writers would sign two different envelopes with
// the same sequence number. The daemon, `run --once` and `uninstall` take the lock; `status` and
// `check` only read. A lock left by a process that died is taken over.
import { readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { AgentError } from './errors.js';
import type { StateDir } from './state.js';
import { pidAlive } from './status.js';

export interface StateLock {
  readonly file: string;
  release(): void;
}

/** Locks this process holds (its own pid in a lock file is not a stale lock: see lockHolder). */
const heldHere = new Set<string>();

export function lockFile(state: StateDir): string {
  return path.join(state.dir, 'agent.lock');
}

/**
 * The pid holding the lock, if that process is still alive and is not this one. A lock naming
 * our own pid was left by an earlier process that had the same pid: in a container the agent is
 * often pid 1 after every restart.
 */
export function lockHolder(state: StateDir): number | null {
  try {
    const pid = Number(readFileSync(lockFile(state), 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 && pid !== process.pid && pidAlive(pid) ? pid : null;
  } catch {
    return null;
  }
}

export function acquireStateLock(state: StateDir): StateLock {
  const file = lockFile(state);
  if (heldHere.has(file)) throw new AgentError('AGT_ERR_STATE_LOCKED', `this process already runs an agent on ${state.dir}`);
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      writeFileSync(file, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
      heldHere.add(file);
      let released = false;
      return {
        file,
        release() {
          if (released) return;
          released = true;
          heldHere.delete(file);
          try {
            if (readFileSync(file, 'utf8').trim() === String(process.pid)) unlinkSync(file);
          } catch {
            // already gone
          }
        },
      };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw new AgentError('AGT_ERR_NOT_ENROLLED', `no state directory at ${state.dir}; run vcm-agent enroll first`);
      if (code !== 'EEXIST') throw new AgentError('AGT_ERR_STATE', `cannot create ${file}: ${(err as Error).message}`);
      const holder = lockHolder(state);
      if (holder !== null) {
        throw new AgentError('AGT_ERR_STATE_LOCKED', `another vcm-agent process (pid ${holder}) is using ${state.dir}`);
      }
      // Stale: its process is gone.
      try {
        unlinkSync(file);
      } catch {
        // someone else took it over first; try again
      }
    }
  }
  throw new AgentError('AGT_ERR_STATE_LOCKED', `cannot take the lock ${file}`);
}
