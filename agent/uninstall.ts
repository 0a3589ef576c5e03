// `vcm-agent uninstall`: remove what the agent created, keep only what the operator asks to keep.
// It removes only names the agent itself writes, so a mistyped --state-dir cannot empty an
// unrelated folder; anything else found there is listed and left alone.
import { readdir, rm, rmdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { AgentError } from './errors.js';
import { TEMP_FILE_RE } from './fs-util.js';
import { acquireStateLock, lockFile } from './lock.js';
import type { StateDir } from './state.js';

export interface UninstallOptions {
  keepSpool?: boolean;
  keepKey?: boolean;
  /** The config file to remove as well (null: none), unless keepConfig. */
  configFile?: string | null;
  keepConfig?: boolean;
  dryRun?: boolean;
}

export interface UninstallPlan {
  remove: string[];
  keep: string[];
  /** Files in the state directory the agent did not create: never touched. */
  foreign: string[];
}

const KEY_FILES = ['agent-ed25519.pem', 'identity.json', 'agent-ed25519.next.pem', 'rotation.json'];
const SPOOL_FILES = ['spool', 'quarantine', 'chain.json', 'events.json'];
const OTHER_FILES = ['policy.json', 'status.json', 'agent.lock'];

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

export async function planUninstall(state: StateDir, opts: UninstallOptions = {}): Promise<UninstallPlan> {
  let names: string[];
  try {
    names = await readdir(state.dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') names = [];
    else throw new AgentError('AGT_ERR_STATE', `cannot read ${state.dir}: ${(err as Error).message}`);
  }
  const ours = new Set([...KEY_FILES, ...SPOOL_FILES, ...OTHER_FILES]);
  if (names.length > 0 && !names.some((n) => ours.has(n))) {
    throw new AgentError('AGT_ERR_STATE', `${state.dir} does not look like a vcm-agent state directory; nothing removed`);
  }
  const keepNames = new Set([...(opts.keepKey === true ? KEY_FILES : []), ...(opts.keepSpool === true ? SPOOL_FILES : [])]);
  const plan: UninstallPlan = { remove: [], keep: [], foreign: [] };
  for (const n of names.sort()) {
    const full = path.join(state.dir, n);
    if (!ours.has(n) && !TEMP_FILE_RE.test(n)) plan.foreign.push(full);
    else if (keepNames.has(n)) plan.keep.push(full);
    else plan.remove.push(full);
  }
  if (opts.configFile != null && (await exists(opts.configFile))) {
    (opts.keepConfig === true ? plan.keep : plan.remove).push(opts.configFile);
  }
  return plan;
}

export async function uninstall(state: StateDir, opts: UninstallOptions = {}): Promise<UninstallPlan> {
  const plan = await planUninstall(state, opts);
  if (opts.dryRun === true || (plan.remove.length === 0 && plan.keep.length === 0)) return plan;
  // Refuses while the daemon runs: it would recreate what we remove.
  const inState = plan.remove.filter((p) => path.dirname(p) === state.dir);
  const lock = inState.length > 0 ? acquireStateLock(state) : null;
  try {
    for (const p of plan.remove) {
      if (p === lockFile(state)) continue;
      await rm(p, { recursive: true, force: true });
    }
  } finally {
    lock?.release();
  }
  if (plan.keep.length === 0 && plan.foreign.length === 0) await rmdir(state.dir).catch(() => undefined);
  if (opts.configFile != null && plan.remove.includes(opts.configFile)) {
    // The config folder too, when the agent's file was all it held.
    await rmdir(path.dirname(opts.configFile)).catch(() => undefined);
  }
  return plan;
}

/** The commands that remove the service definition, per platform (printed after an uninstall). */
export function serviceRemovalHint(platform: NodeJS.Platform = process.platform): string[] {
  if (platform === 'linux') {
    return ['systemctl disable --now vcm-agent', 'rm /etc/systemd/system/vcm-agent.service && systemctl daemon-reload', 'userdel vcm-agent'];
  }
  if (platform === 'darwin') {
    return ['launchctl bootout system/dev.vcm.agent', 'rm /Library/LaunchDaemons/dev.vcm.agent.plist'];
  }
  if (platform === 'win32') return ['schtasks /End /TN "vcm-agent"', 'schtasks /Delete /TN "vcm-agent" /F'];
  return [];
}
