// `vcm-collector verify`: a bundle file or folder checked by verify-core.ts, the same code as the
// bundle's own verify/verify.mjs. Apart from the export's commands, so that verifying loads none of
// the collector's store, log or contract modules.
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { AGENT_VERSION } from '../../agent/version.js';
import type { AuditModel } from './model.js';
import { ArchiveError, unpackTarGz, type UnpackLimits } from './tar.js';
import { emptyVerdict, formatVerdict, verifyBundleDir, type Verdict, type VerifyOptions } from './verify-core.js';

/**
 * Verifies a bundle file (unpacked into a private folder first) or an unpacked bundle folder.
 * `then` runs with the unpacked folder and the verdict before the folder is removed.
 */
export async function verifyBundle(
  bundle: string,
  opts: VerifyOptions & { limits?: UnpackLimits },
  then?: (dir: string, verdict: Verdict) => Promise<void>,
): Promise<Verdict> {
  const st = await stat(bundle).catch(() => null);
  if (st === null) return unusable(`no such file or folder: ${bundle}`);
  const verified = async (dir: string) => {
    const v = await verifyBundleDir(dir, opts);
    await then?.(dir, v);
    return v;
  };
  if (st.isDirectory()) return verified(bundle);
  const dir = await mkdtemp(path.join(tmpdir(), 'vcm-verify-'));
  try {
    try {
      await unpackTarGz(bundle, dir, opts.limits);
    } catch (err) {
      if (err instanceof ArchiveError) return unusable(err.message);
      throw err;
    }
    return await verified(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * `verify --report FILE`: the bundle's report rendered again from its model.json, with this
 * verification in place of the one made at export. The auditor's own verdict, defects and all,
 * is what the report then shows; a bundle that did not verify says so at the top, because its
 * model is then only the collector's claim. Returns what to tell the user.
 */
export async function writeVerifiedReport(dir: string, v: Verdict, out: string): Promise<string> {
  if (v.unusable !== null) return `no report: the bundle could not be verified (${v.unusable})`;
  const text = await readFile(path.join(dir, 'model.json'), 'utf8').catch(() => null);
  if (text === null) return 'no report: the bundle holds no model.json';
  const model = JSON.parse(text) as AuditModel;
  model.verification = {
    verified: v.verified,
    by: `vcm-collector verify ${AGENT_VERSION}${v.keyPinned ? ', collector key pinned out of band' : ', collector key NOT pinned (give --collector-fingerprint)'}`,
    at: new Date().toISOString(),
    defects: v.defects.map((d) => ({ ...d })),
  };
  const { renderReport } = await import('./report.js');
  await writeFile(out, await renderReport(model));
  return `report written to ${out}`;
}

function unusable(why: string): Verdict {
  return { ...emptyVerdict(), unusable: why };
}

export { formatVerdict };
