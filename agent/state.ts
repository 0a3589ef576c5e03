// The agent's state directory: its key, its enrollment, its chain head, the cached policy and the spool.
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { lstat, mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import * as z from 'zod';
import { agentIdSchema, hostSchema, policySchema, vendorSchema, type Policy } from '../collector/contract.js';
import { AgentError } from './errors.js';
import { writeFileDurable } from './fs-util.js';

export const identitySchema = z
  .object({
    collectorUrl: z.string().url(),
    agentId: agentIdSchema,
    vendor: vendorSchema,
    host: hostSchema,
    collectorPublicKey: z.string(),
    /** The CA file `enroll --ca-file` pinned (absolute): used when the agent's config names none. */
    caFile: z.string().optional(),
    enrolledAt: z.iso.datetime({ offset: false }),
    /** The key in use after a rotation; absent: the enrolled key (generation 0, fingerprint = agent id). */
    key: z
      .object({
        generation: z.number().int().min(1),
        keyId: agentIdSchema,
        afterSeq: z.number().int().min(0),
        rotatedAt: z.iso.datetime({ offset: false }),
      })
      .strict()
      .optional(),
  })
  .strict();
export type Identity = z.infer<typeof identitySchema>;

/** The generation and fingerprint of the key an identity signs with. */
export function keyInUse(identity: Identity): { generation: number; keyId: string } {
  return identity.key ?? { generation: 0, keyId: identity.agentId };
}

export const chainSchema = z
  .object({ seq: z.number().int().min(0), head: z.string().regex(/^[0-9a-f]{64}$/).nullable() })
  .strict();
export type ChainHead = z.infer<typeof chainSchema>;

/** A key rotation sent (or about to be) and not yet settled: rotation.json. */
export const pendingRotationSchema = z
  .object({
    generation: z.number().int().min(1),
    keyId: agentIdSchema,
    afterSeq: z.number().int().min(0),
    /** The exact request bytes (UTF-8 JSON): a retry sends them again, unchanged. */
    request: z.string(),
    createdAt: z.iso.datetime({ offset: false }),
  })
  .strict();
export type PendingRotation = z.infer<typeof pendingRotationSchema>;

export function defaultStateDir(platform: NodeJS.Platform = process.platform): string {
  const env = process.env.VCM_STATE_DIR;
  if (env !== undefined && env !== '') return env;
  if (platform === 'win32') return 'C:\\ProgramData\\vcm-agent\\state';
  if (platform === 'darwin') return '/Library/Application Support/vcm-agent/state';
  return '/var/lib/vcm-agent';
}

export class StateDir {
  readonly dir: string;
  constructor(dir: string) {
    this.dir = path.resolve(dir);
  }

  get identityFile(): string {
    return path.join(this.dir, 'identity.json');
  }
  get keyFile(): string {
    return path.join(this.dir, 'agent-ed25519.pem');
  }
  /** A key rotation in progress: the new key, written before the request is sent. */
  get nextKeyFile(): string {
    return path.join(this.dir, 'agent-ed25519.next.pem');
  }
  /** The signed rotation request, kept until the collector's answer is acted on. */
  get rotationFile(): string {
    return path.join(this.dir, 'rotation.json');
  }
  get chainFile(): string {
    return path.join(this.dir, 'chain.json');
  }
  get policyFile(): string {
    return path.join(this.dir, 'policy.json');
  }
  get spoolDir(): string {
    return path.join(this.dir, 'spool');
  }
  get quarantineDir(): string {
    return path.join(this.dir, 'quarantine');
  }
  /** Agent events (watchdog restarts, quarantines) waiting to ride in the next signed envelope. */
  get eventsFile(): string {
    return path.join(this.dir, 'events.json');
  }
  /** What `vcm-agent status` shows: last runs, last delivery, last error. Advisory, rebuildable. */
  get statusFile(): string {
    return path.join(this.dir, 'status.json');
  }

  async ensure(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
  }

  async #readJson<T>(file: string, schema: z.ZodType<T>): Promise<T | null> {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw new AgentError('AGT_ERR_STATE', `cannot read ${file}`, { cause: err });
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      throw new AgentError('AGT_ERR_STATE', `${file} is damaged: ${(err as Error).message}`, { cause: err });
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success) throw new AgentError('AGT_ERR_STATE', `${file} is damaged: ${parsed.error.issues[0]?.message ?? ''}`);
    return parsed.data;
  }

  async identity(): Promise<Identity | null> {
    return this.#readJson(this.identityFile, identitySchema);
  }

  /**
   * Refuses a state directory that someone else could change: a symlink, not owned by this user
   * (or root), or writable by group or others; and a key file others can read. Whoever can write
   * here can plant spool files or swap the key the agent signs with. Not on Windows (no modes).
   */
  async checkOwnership(): Promise<void> {
    const uid = process.getuid?.();
    if (uid === undefined) return;
    const fix = `(chown it to this user and chmod 700 ${this.dir})`;
    const dir = await lstat(this.dir).catch((err: unknown) => {
      throw new AgentError('AGT_ERR_STATE', `cannot read the state directory ${this.dir}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    });
    if (dir.isSymbolicLink() || !dir.isDirectory()) throw new AgentError('AGT_ERR_STATE', `${this.dir} is ${dir.isSymbolicLink() ? 'a symbolic link' : 'not a directory'}; the state directory must be a real directory`);
    if (dir.uid !== uid && dir.uid !== 0) throw new AgentError('AGT_ERR_STATE', `${this.dir} belongs to uid ${dir.uid}, not this user (uid ${uid}) ${fix}`);
    if ((dir.mode & 0o022) !== 0) throw new AgentError('AGT_ERR_STATE', `${this.dir} is writable by ${(dir.mode & 0o020) !== 0 ? 'its group' : 'others'} (mode ${(dir.mode & 0o777).toString(8)}) ${fix}`);
    const key = await lstat(this.keyFile).catch(() => null);
    if (key !== null && (key.isSymbolicLink() || (key.mode & 0o077) !== 0)) {
      throw new AgentError('AGT_ERR_STATE', `the agent key ${this.keyFile} is ${key.isSymbolicLink() ? 'a symbolic link' : `readable or writable by others (mode ${(key.mode & 0o777).toString(8)})`}; chmod 600 it`);
    }
  }

  async requireIdentity(): Promise<{ identity: Identity; key: KeyObject }> {
    const identity = await this.identity();
    if (identity === null) throw new AgentError('AGT_ERR_NOT_ENROLLED', `no enrollment in ${this.dir}; run vcm-agent enroll first`);
    await this.checkOwnership();
    let pem: string;
    try {
      pem = await readFile(this.keyFile, 'utf8');
    } catch (err) {
      throw new AgentError('AGT_ERR_STATE', `cannot read the agent key ${this.keyFile}`, { cause: err });
    }
    return { identity, key: createPrivateKey(pem) };
  }

  async pendingRotation(): Promise<PendingRotation | null> {
    return this.#readJson(this.rotationFile, pendingRotationSchema);
  }

  async writeKey(pem: string): Promise<void> {
    await writeFileDurable(this.keyFile, pem, 0o600);
  }

  async writeIdentity(identity: Identity): Promise<void> {
    await writeFileDurable(this.identityFile, `${JSON.stringify(identity, null, 2)}\n`, 0o644);
  }

  async chain(): Promise<ChainHead> {
    return (await this.#readJson(this.chainFile, chainSchema)) ?? { seq: 0, head: null };
  }

  async writeChain(chain: ChainHead): Promise<void> {
    await writeFileDurable(this.chainFile, `${JSON.stringify(chain)}\n`, 0o644);
  }

  /** The cached policy as stored; what runs checks goes through trust.ts's trustedCachedPolicy(). */
  async policy(): Promise<Policy | null> {
    return this.#readJson(this.policyFile, policySchema);
  }

  async writePolicy(policy: Policy): Promise<void> {
    await writeFileDurable(this.policyFile, `${JSON.stringify(policy, null, 2)}\n`, 0o644);
  }
}
