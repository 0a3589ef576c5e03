// disk_encryption: is every persistent volume that is mounted (and every swap area) encrypted?
// Linux traces each block device through sysfs down to a dm-crypt layer; see README.md.
import { z } from 'zod';
import type { Check, Evaluation, Reason, SourceDecl } from '../types.js';
import { collectLinux } from './linux.js';

export const layerSchema = z.object({
  name: z.string(),
  type: z.enum(['crypt', 'lvm', 'dm', 'md', 'loop', 'partition', 'disk']),
  /** `CRYPT-LUKS2`, `LVM`, `mpath`…: the dm uuid's type prefix, never the uuid itself. */
  dmUuidPrefix: z.string().optional(),
});
export type Layer = z.infer<typeof layerSchema>;

export const volumeStateSchema = z.enum(['encrypted', 'unencrypted', 'unresolved']);
export type VolumeState = z.infer<typeof volumeStateSchema>;

export const volumeSchema = z.object({
  kind: z.enum(['mount', 'swap']),
  /** Every mount point of the device (bind mounts, subvolumes), or the swap path. */
  mountpoints: z.array(z.string()).min(1),
  fstype: z.string(),
  source: z.string(),
  /** Kernel name of the top block device (`dm-2`, `sda1`), null when it could not be found. */
  device: z.string().nullable(),
  /** The block stack from the top device down, depth first. */
  layers: z.array(layerSchema),
  state: volumeStateSchema,
  note: z.string().optional(),
});
export type Volume = z.infer<typeof volumeSchema>;

export const factsSchema = z.object({
  /** Which mount table was read: `/proc/1/mountinfo`, or `/proc/self/mountinfo` as a fallback. */
  mountSource: z.string(),
  volumes: z.array(volumeSchema),
  notLocal: z.array(z.object({ mountpoint: z.string(), fstype: z.string() })),
  ignoredPseudoMounts: z.number().int().nonnegative(),
});
export type Facts = z.infer<typeof factsSchema>;

export const DEFAULT_IGNORE_MOUNTPOINTS = ['/boot', '/boot/efi', '/efi'] as const;

export const configSchema = z
  .object({
    /** Volumes mounted only at these paths are not judged (boot partitions hold no user data). */
    ignoreMountpoints: z.array(z.string().startsWith('/')).default(() => [...DEFAULT_IGNORE_MOUNTPOINTS]),
    requireSwapEncrypted: z.boolean().default(true),
  })
  .strict();
export type Config = z.infer<typeof configSchema>;

export const FAIL_CODES = {
  CHK_FAIL_UNENCRYPTED_VOLUME: 'a mounted persistent volume is not encrypted',
  CHK_FAIL_UNENCRYPTED_SWAP: 'a swap area is not encrypted',
} as const;

const linuxSources: readonly SourceDecl[] = [
  { kind: 'file', path: '/proc/1/mountinfo', why: "the host's mount table (init's mount namespace), with device numbers" },
  { kind: 'file', path: '/proc/self/mountinfo', why: 'fallback mount table when /proc/1 is not readable' },
  { kind: 'file', path: '/proc/swaps', why: 'active swap partitions and swap files' },
  { kind: 'file', path: '/sys/dev/block/<major>:<minor>', why: 'link from a device number to the kernel device name' },
  { kind: 'file', path: '/sys/class/block', why: 'list of block devices, to find a device-mapper name' },
  { kind: 'file', path: '/sys/class/block/<name>', why: 'link whose parent names the disk of a partition' },
  { kind: 'file', path: '/sys/class/block/<name>/dm/uuid', why: 'device-mapper type prefix (CRYPT-LUKS2, LVM…)' },
  { kind: 'file', path: '/sys/class/block/<name>/dm/name', why: 'device-mapper name, to resolve /dev/mapper paths' },
  { kind: 'file', path: '/sys/class/block/<name>/slaves', why: 'the devices a dm, md or stacked device is built on' },
  { kind: 'file', path: '/sys/class/block/<name>/loop/backing_file', why: 'the file behind a loop device' },
  { kind: 'file', path: '/dev/mapper/<name>', why: 'link from a device-mapper path to its dm-N device' },
  { kind: 'file', path: '/dev/<path>', why: 'links such as /dev/disk/by-uuid/<uuid> or /dev/md/<name> to a device' },
];

function describeVolume(v: Volume): string {
  return v.kind === 'swap' ? `swap ${v.source}` : `${v.source} (${v.fstype}) at ${v.mountpoints.join(', ')}`;
}

/** Pure: the verdict from facts and config. Fail dominates; unknown is never a pass. */
export function evaluate(facts: Facts, config: Config): Evaluation {
  const ignored = new Set(config.ignoreMountpoints);
  const fails: Reason[] = [];
  const unknowns: Reason[] = [];
  for (const v of facts.volumes) {
    if (v.kind === 'swap' && !config.requireSwapEncrypted) continue;
    const subject = v.mountpoints.find((m) => !ignored.has(m));
    if (subject === undefined) continue;
    if (v.state === 'unencrypted') {
      fails.push(
        v.kind === 'swap'
          ? { code: 'CHK_FAIL_UNENCRYPTED_SWAP', message: `${describeVolume(v)} is not encrypted`, subject }
          : { code: 'CHK_FAIL_UNENCRYPTED_VOLUME', message: `${describeVolume(v)} is not encrypted`, subject },
      );
    } else if (v.state === 'unresolved') {
      const why = v.note === undefined ? '' : `: ${v.note}`;
      unknowns.push({ code: 'CHK_ERR_UNRESOLVED', message: `cannot tell whether ${describeVolume(v)} is encrypted${why}`, subject });
    }
  }
  if (fails.length > 0) return { status: 'fail', reasons: fails };
  // A check that cannot see the root file system must not pass (containers, overlay roots).
  if (!facts.volumes.some((v) => v.kind === 'mount' && v.mountpoints.includes('/'))) {
    unknowns.push({ code: 'CHK_ERR_UNRESOLVED', message: 'no block-backed volume is mounted at /', subject: '/' });
  }
  if (unknowns.length > 0) return { status: 'unknown', reasons: unknowns };
  return { status: 'pass', reasons: [] };
}

export const diskEncryption: Check<Config, Facts> = {
  id: 'disk_encryption',
  version: '1.0.0',
  title: 'Persistent volumes and swap are encrypted',
  platforms: ['linux'],
  sources: { linux: linuxSources },
  configSchema,
  factsSchema,
  collect(ctx) {
    return collectLinux(ctx.io, ctx.signal);
  },
  evaluate,
};
