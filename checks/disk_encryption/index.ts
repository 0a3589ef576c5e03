// disk_encryption: is every persistent volume that is mounted (and every swap area) encrypted?
// Linux traces each block device through sysfs down to a dm-crypt layer; macOS asks fdesetup
// for FileVault; Windows asks BitLocker about every fixed volume. See README.md.
import * as z from 'zod';
import { CheckError } from '../errors.js';
import type { Check, Evaluation, Reason, SourceDecl } from '../types.js';
import { collectDarwin, DISKUTIL_APFS_LIST, FDESETUP } from './darwin.js';
import { collectLinux } from './linux.js';
import { BITLOCKER_COMMAND, collectWin32, normalizeMountPoint } from './win32.js';
import { verdict } from '../verdict.js';

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

/** The Linux facts (no `platform` field: they predate the other platforms, and stored evidence keeps that shape). */
export const linuxFactsSchema = z.object({
  /** Which mount table was read: `/proc/1/mountinfo`, or `/proc/self/mountinfo` as a fallback. */
  mountSource: z.string(),
  volumes: z.array(volumeSchema),
  notLocal: z.array(z.object({ mountpoint: z.string(), fstype: z.string() })),
  ignoredPseudoMounts: z.number().int().nonnegative(),
});
export type LinuxFacts = z.infer<typeof linuxFactsSchema>;
/** The Linux facts, under the name they had when Linux was the only platform. */
export type Facts = LinuxFacts;

// macOS -----------------------------------------------------------------------------------------

export const fileVaultStateSchema = z.enum([
  'on',
  'on_restart_pending',
  'off',
  'off_enable_deferred',
  'off_restart_pending',
  'encrypting',
  'decrypting',
]);
export type FileVaultState = z.infer<typeof fileVaultStateSchema>;

export const apfsVolumeSchema = z.object({
  container: z.string(),
  device: z.string(),
  name: z.string().nullable(),
  roles: z.array(z.string()),
  /** APFS "Encryption": also true on T2 and Apple silicon Macs without FileVault (hardware keys only). */
  encryption: z.boolean().nullable(),
  fileVault: z.boolean().nullable(),
  locked: z.boolean().nullable(),
  cryptoMigrationOn: z.boolean().nullable(),
});
export type ApfsVolume = z.infer<typeof apfsVolumeSchema>;

export const darwinFactsSchema = z.object({
  platform: z.literal('darwin'),
  fileVault: z.object({
    state: fileVaultStateSchema,
    /** Conversion progress fdesetup reported, when it did. */
    percent: z.number().min(0).max(100).nullable(),
    exitCode: z.number().int(),
    /** The lines fdesetup printed, as evidence. */
    output: z.array(z.string()),
  }),
  /** Every APFS volume from diskutil; null when diskutil could not be read (see apfsNote). */
  apfsVolumes: z.array(apfsVolumeSchema).nullable(),
  apfsNote: z.string().optional(),
});
export type DarwinFacts = z.infer<typeof darwinFactsSchema>;

// Windows ---------------------------------------------------------------------------------------

export const win32VolumeKindSchema = z.enum(['os', 'fixed_data', 'removable']);
export type Win32VolumeKind = z.infer<typeof win32VolumeKindSchema>;
export const win32VolumeStateSchema = z.enum(['protected', 'suspended', 'off', 'encrypting', 'decrypting', 'not_listed', 'unresolved']);
export type Win32VolumeState = z.infer<typeof win32VolumeStateSchema>;

export const win32VolumeSchema = z.object({
  /** `C:`, a folder mount such as `D:\Data`, or the volume GUID path when it has neither. */
  mountPoint: z.string(),
  deviceId: z.string().nullable(),
  driveLetter: z.string().nullable(),
  kind: win32VolumeKindSchema,
  /** Has a drive letter or a folder mount; system and recovery partitions have neither. */
  mounted: z.boolean(),
  /** Listed by Win32_Volume as a local fixed disk (DriveType 3). */
  fixed: z.boolean(),
  fileSystem: z.string().nullable(),
  label: z.string().nullable(),
  sizeBytes: z.number().nullable(),
  bootVolume: z.boolean().nullable(),
  systemVolume: z.boolean().nullable(),
  /** The Get-BitLockerVolume row, enums as their names; null when BitLocker does not list the volume. */
  bitLocker: z
    .object({
      volumeType: z.string(),
      protectionStatus: z.string(),
      volumeStatus: z.string(),
      encryptionPercentage: z.number().nullable(),
      encryptionMethod: z.string(),
      lockStatus: z.string(),
      keyProtectors: z.array(z.string()),
    })
    .nullable(),
  state: win32VolumeStateSchema,
  note: z.string().optional(),
});
export type Win32Volume = z.infer<typeof win32VolumeSchema>;

export const win32FactsSchema = z.object({
  platform: z.literal('win32'),
  volumes: z.array(win32VolumeSchema),
  /** Per-volume errors Get-BitLockerVolume wrote while listing the others. */
  bitLockerErrors: z.array(z.string()),
});
export type Win32Facts = z.infer<typeof win32FactsSchema>;

/** Facts of any platform. The platform-tagged shapes are tried first; Linux facts have no tag. */
export const factsSchema = z.union([darwinFactsSchema, win32FactsSchema, linuxFactsSchema]);
export type DiskEncryptionFacts = z.infer<typeof factsSchema>;

export const DEFAULT_IGNORE_MOUNTPOINTS = ['/boot', '/boot/efi', '/efi'] as const;

/** A Unix path, a Windows drive (`D:`), a folder mount (`D:\Data`) or a volume GUID path. */
const mountPointSetting = z
  .string()
  .refine((s) => s.startsWith('/') || /^[A-Za-z]:(\\.*)?$/.test(s) || /^\\\\\?\\Volume\{[^}]+\}\\?$/i.test(s), {
    message: 'a mount point is an absolute path, a drive such as D:, or a volume GUID path',
  });

export const configSchema = z
  .object({
    /** Volumes mounted only at these paths are not judged (boot partitions hold no user data). */
    ignoreMountpoints: z.array(mountPointSetting).default(() => [...DEFAULT_IGNORE_MOUNTPOINTS]),
    requireSwapEncrypted: z.boolean().default(true),
    /** Windows: judge every fixed data volume, not only the operating system volume. */
    requireAllFixedVolumes: z.boolean().default(true),
    /** Windows: also judge removable volumes BitLocker lists (USB drives). */
    requireRemovableVolumes: z.boolean().default(false),
  })
  .strict();
export type Config = z.infer<typeof configSchema>;

export const FAIL_CODES = {
  CHK_FAIL_UNENCRYPTED_VOLUME: 'a mounted persistent volume is not encrypted',
  CHK_FAIL_UNENCRYPTED_SWAP: 'a swap area is not encrypted',
  CHK_FAIL_FILEVAULT_OFF: 'FileVault is off on the startup volume',
  CHK_FAIL_BITLOCKER_OFF: 'a required volume is not protected by BitLocker',
  CHK_FAIL_BITLOCKER_SUSPENDED: 'BitLocker protection is suspended on a required volume',
  CHK_FAIL_ENCRYPTION_IN_PROGRESS: 'a required volume is still being encrypted',
  CHK_FAIL_DECRYPTION_IN_PROGRESS: 'a required volume is being decrypted',
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

const darwinSources: readonly SourceDecl[] = [
  {
    kind: 'command',
    command: FDESETUP.command,
    args: FDESETUP.args,
    why: 'FileVault state of the startup volume, with the conversion progress; works unprivileged',
  },
  {
    kind: 'command',
    command: DISKUTIL_APFS_LIST.command,
    args: DISKUTIL_APFS_LIST.args,
    why: 'APFS volumes with their FileVault, Encryption and Locked flags, as supporting evidence',
  },
];

const win32Sources: readonly SourceDecl[] = [
  {
    kind: 'command',
    command: BITLOCKER_COMMAND.command,
    args: BITLOCKER_COMMAND.args,
    why: 'BitLocker state of every volume (Get-BitLockerVolume, live from WMI; needs an elevated agent) beside every fixed volume (Win32_Volume)',
  },
];

const PASS: Evaluation = { status: 'pass', reasons: [] };

function describeVolume(v: Volume): string {
  return v.kind === 'swap' ? `swap ${v.source}` : `${v.source} (${v.fstype}) at ${v.mountpoints.join(', ')}`;
}

function evaluateLinux(facts: LinuxFacts, config: Config): Evaluation {
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
  // A check that cannot see the root file system must not pass (containers, overlay roots).
  if (!facts.volumes.some((v) => v.kind === 'mount' && v.mountpoints.includes('/'))) {
    unknowns.push({ code: 'CHK_ERR_UNRESOLVED', message: 'no block-backed volume is mounted at /', subject: '/' });
  }
  return verdict(fails, unknowns);
}

/**
 * macOS: only FileVault on passes. The APFS "Encryption" flag alone never counts: T2 and Apple
 * silicon Macs set it without FileVault, and such a volume unlocks at boot without a password.
 */
function evaluateDarwin(facts: DarwinFacts, config: Config): Evaluation {
  const subject = '/';
  if (config.ignoreMountpoints.includes(subject)) return PASS;
  const fv = facts.fileVault;
  const done = fv.percent === null ? '' : ` (${fv.percent}% done)`;
  const fail = (code: keyof typeof FAIL_CODES, message: string): Evaluation => ({ status: 'fail', reasons: [{ code, message, subject }] });
  switch (fv.state) {
    case 'on': {
      const volumes = facts.apfsVolumes;
      if (volumes !== null && volumes.length > 0 && !volumes.some((v) => v.fileVault === true)) {
        return {
          status: 'unknown',
          reasons: [{ code: 'CHK_ERR_UNRESOLVED', message: 'fdesetup reports FileVault on, but no APFS volume has its FileVault flag set', subject }],
        };
      }
      return PASS;
    }
    case 'encrypting':
      return fail('CHK_FAIL_ENCRYPTION_IN_PROGRESS', `FileVault is still encrypting the startup volume${done}; what is not yet converted is not protected`);
    case 'on_restart_pending':
      return fail('CHK_FAIL_ENCRYPTION_IN_PROGRESS', 'FileVault is on but needs a restart to finish');
    case 'decrypting':
      return fail('CHK_FAIL_DECRYPTION_IN_PROGRESS', `FileVault is decrypting the startup volume${done}`);
    case 'off':
    case 'off_enable_deferred':
    case 'off_restart_pending': {
      const why = { off: 'FileVault is off', off_enable_deferred: 'FileVault is off (enablement deferred to the next restart)', off_restart_pending: 'FileVault is off (a restart is needed to finish)' }[
        fv.state
      ];
      // The user data volume: role Data since macOS 10.15, a single volume without roles before.
      const hardware = (facts.apfsVolumes ?? [])
        .filter((v) => (v.roles.includes('Data') || v.roles.length === 0) && v.encryption === true && v.fileVault !== true)
        .map((v) => v.device);
      const note =
        hardware.length === 0
          ? ''
          : `; APFS reports ${hardware.join(', ')} as encrypted, but without FileVault that is only the hardware key of a T2 or Apple silicon Mac, which unlocks without a password and does not count`;
      return fail('CHK_FAIL_FILEVAULT_OFF', `${why}${note}`);
    }
  }
}

function describeWin32(v: Win32Volume): string {
  const kind = { os: 'operating system volume', fixed_data: 'fixed data volume', removable: 'removable volume' }[v.kind];
  return `${kind} ${v.mountPoint}`;
}

/** Windows: which volumes the config asks about. Unmounted partitions (EFI, recovery) are not judged. */
export function isJudgedWin32(v: Win32Volume, config: Config): boolean {
  if (!v.mounted) return false;
  const ignored = new Set(config.ignoreMountpoints.filter((m) => !m.startsWith('/')).map(normalizeMountPoint));
  if (ignored.has(normalizeMountPoint(v.mountPoint))) return false;
  if (v.kind === 'os') return true;
  if (v.kind === 'fixed_data') return config.requireAllFixedVolumes;
  return config.requireRemovableVolumes;
}

function evaluateWin32(facts: Win32Facts, config: Config): Evaluation {
  const fails: Reason[] = [];
  const unknowns: Reason[] = [];
  for (const v of facts.volumes) {
    if (!isJudgedWin32(v, config)) continue;
    const subject = v.mountPoint;
    const what = describeWin32(v);
    const bl = v.bitLocker;
    const pct = bl?.encryptionPercentage === null || bl === null ? '' : ` (${bl.encryptionPercentage}% encrypted)`;
    switch (v.state) {
      case 'protected':
        break;
      case 'off':
        fails.push({ code: 'CHK_FAIL_BITLOCKER_OFF', message: `${what} is not protected by BitLocker${v.note === undefined ? '' : ` (${v.note})`}`, subject });
        break;
      case 'suspended':
        fails.push({ code: 'CHK_FAIL_BITLOCKER_SUSPENDED', message: `BitLocker protection is suspended on ${what} (it is encrypted, but its key is stored in the clear)`, subject });
        break;
      case 'encrypting':
        fails.push({ code: 'CHK_FAIL_ENCRYPTION_IN_PROGRESS', message: `BitLocker is still encrypting ${what}${pct}`, subject });
        break;
      case 'decrypting':
        fails.push({ code: 'CHK_FAIL_DECRYPTION_IN_PROGRESS', message: `BitLocker is decrypting ${what}${pct}`, subject });
        break;
      case 'not_listed':
        unknowns.push({ code: 'CHK_ERR_UNRESOLVED', message: `Get-BitLockerVolume does not list ${what}; cannot tell whether it is encrypted`, subject });
        break;
      case 'unresolved':
        unknowns.push({ code: 'CHK_ERR_UNRESOLVED', message: `cannot read the BitLocker state of ${what}${v.note === undefined ? '' : ` (${v.note})`}`, subject });
        break;
    }
  }
  // Never pass without having seen the operating system volume.
  if (!facts.volumes.some((v) => v.kind === 'os')) {
    unknowns.push({ code: 'CHK_ERR_UNRESOLVED', message: 'no operating system volume was found', subject: 'operating system volume' });
  }
  return verdict(fails, unknowns);
}

/** Pure: the verdict from facts and config. Fail dominates; unknown is never a pass. */
export function evaluate(facts: DiskEncryptionFacts, config: Config): Evaluation {
  if ('platform' in facts) return facts.platform === 'darwin' ? evaluateDarwin(facts, config) : evaluateWin32(facts, config);
  return evaluateLinux(facts, config);
}

export const diskEncryption: Check<Config, DiskEncryptionFacts> = {
  id: 'disk_encryption',
  version: '1.1.0',
  title: 'Persistent volumes and swap are encrypted',
  platforms: ['linux', 'darwin', 'win32'],
  sources: { linux: linuxSources, darwin: darwinSources, win32: win32Sources },
  configSchema,
  factsSchema,
  collect(ctx) {
    switch (ctx.platform) {
      case 'linux':
        return collectLinux(ctx.io, ctx.signal);
      case 'darwin':
        return collectDarwin(ctx.io);
      case 'win32':
        return collectWin32(ctx.io);
      default:
        return Promise.reject(new CheckError('CHK_ERR_UNSUPPORTED_PLATFORM', `disk_encryption does not run on ${String(ctx.platform)}`));
    }
  },
  evaluate,
};
