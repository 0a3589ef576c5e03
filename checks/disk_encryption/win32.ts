// Windows: BitLocker state of every fixed volume, read live from Get-BitLockerVolume (which
// queries WMI Win32_EncryptableVolume), next to the fixed volumes Win32_Volume lists, so that a
// fixed volume BitLocker leaves out is seen rather than skipped. One PowerShell script returns
// both as JSON; the parsers here are pure.
import * as z from 'zod';
import { CheckError } from '../errors.js';
import type { HostIO } from '../types.js';
import type { Win32Facts, Win32Volume, Win32VolumeKind, Win32VolumeState } from './index.js';

export const POWERSHELL = 'C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe';

// Windows PowerShell 5.1. Single quotes only: the command line is quoted by Node, and double
// quotes inside it would need escaping rules powershell.exe does not share. Every enum is cast to
// [string] (ConvertTo-Json would write its integer value), and each list is wrapped in @() so
// that one volume is still an array. Non-terminating errors (a volume Get-BitLockerVolume cannot
// open) are collected, not thrown, so that the other volumes are still reported.
export const BITLOCKER_SCRIPT = [
  "$ErrorActionPreference = 'Stop'",
  '$p = [Security.Principal.WindowsPrincipal][Security.Principal.WindowsIdentity]::GetCurrent()',
  '$elevated = $p.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)',
  '$e = @()',
  'try { $raw = @(Get-BitLockerVolume -ErrorAction SilentlyContinue -ErrorVariable e) } catch { $raw = $null; $e = @($_) }',
  '$bl = $null',
  'if ($null -ne $raw) { $bl = @(foreach ($v in $raw) { [ordered]@{ MountPoint = [string]$v.MountPoint; VolumeType = [string]$v.VolumeType; ProtectionStatus = [string]$v.ProtectionStatus; VolumeStatus = [string]$v.VolumeStatus; EncryptionPercentage = $v.EncryptionPercentage; EncryptionMethod = [string]$v.EncryptionMethod; LockStatus = [string]$v.LockStatus; KeyProtector = @(foreach ($k in @($v.KeyProtector)) { if ($null -ne $k) { [string]$k.KeyProtectorType } }) } }) }',
  '$blErr = @(foreach ($x in @($e)) { if ($null -ne $x) { [ordered]@{ Category = [string]$x.CategoryInfo.Category; Type = [string]$x.Exception.GetType().FullName; Message = [string]$x.Exception.Message } } })',
  '$vols = $null; $volErr = $null',
  "try { $vols = @(foreach ($v in @(Get-CimInstance -ClassName Win32_Volume -Filter 'DriveType=3')) { [ordered]@{ DeviceID = [string]$v.DeviceID; DriveLetter = [string]$v.DriveLetter; Name = [string]$v.Name; Label = [string]$v.Label; FileSystem = [string]$v.FileSystem; Capacity = $v.Capacity; BootVolume = [bool]$v.BootVolume; SystemVolume = [bool]$v.SystemVolume } }) } catch { $volErr = [ordered]@{ Category = [string]$_.CategoryInfo.Category; Type = [string]$_.Exception.GetType().FullName; Message = [string]$_.Exception.Message } }",
  '[pscustomobject]@{ Elevated = $elevated; BitLocker = $bl; BitLockerErrors = $blErr; Volumes = $vols; VolumesError = $volErr } | ConvertTo-Json -Depth 5 -Compress',
].join('; ');

export const BITLOCKER_COMMAND = {
  command: POWERSHELL,
  args: ['-NoProfile', '-NonInteractive', '-Command', BITLOCKER_SCRIPT],
} as const;

// ---------------------------------------------------------------------------------------------
// Parsing the script's JSON

/** ConvertTo-Json in PowerShell 5.1 writes one element as an object, not a one-element array. */
function listOf<T extends z.ZodType>(item: T) {
  return z.preprocess((v) => (v === null || v === undefined ? [] : Array.isArray(v) ? v : [v]), z.array(item));
}

/** A string field; a number (an enum that escaped the [string] cast) is kept as its digits. */
const text = z.preprocess((v) => (typeof v === 'number' ? String(v) : v ?? ''), z.string());
const optionalNumber = z.preprocess((v) => (typeof v === 'string' && v.trim() !== '' ? Number(v) : v ?? null), z.number().nullable());

const errorSchema = z.object({ Category: text, Type: text, Message: text });
export type PsError = z.infer<typeof errorSchema>;

const bitLockerRowSchema = z.object({
  MountPoint: text,
  VolumeType: text,
  ProtectionStatus: text,
  VolumeStatus: text,
  EncryptionPercentage: optionalNumber,
  EncryptionMethod: text,
  LockStatus: text,
  KeyProtector: listOf(text),
});
export type BitLockerRow = z.infer<typeof bitLockerRowSchema>;

const volumeRowSchema = z.object({
  DeviceID: text,
  DriveLetter: text,
  Name: text,
  Label: text,
  FileSystem: text,
  Capacity: optionalNumber,
  BootVolume: z.boolean().nullable().default(null),
  SystemVolume: z.boolean().nullable().default(null),
});
export type VolumeRow = z.infer<typeof volumeRowSchema>;

const reportSchema = z.object({
  Elevated: z.boolean(),
  BitLocker: z.union([z.null(), listOf(bitLockerRowSchema)]),
  BitLockerErrors: listOf(errorSchema),
  Volumes: z.union([z.null(), listOf(volumeRowSchema)]),
  VolumesError: errorSchema.nullable().default(null),
});
export type BitLockerReport = z.infer<typeof reportSchema>;

/** Parses the script's output. Throws CHK_ERR_PARSE when it is not the expected JSON. */
export function parseBitLockerReport(stdout: string): BitLockerReport {
  const body = stdout.replace(/^\uFEFF/, '').trim();
  if (body === '') throw new CheckError('CHK_ERR_PARSE', 'the BitLocker script printed nothing', { subject: POWERSHELL });
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    throw new CheckError('CHK_ERR_PARSE', 'the BitLocker script did not print JSON', { subject: POWERSHELL });
  }
  const parsed = reportSchema.safeParse(json);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    throw new CheckError('CHK_ERR_PARSE', `unexpected BitLocker script output at ${first?.path.join('.') ?? '?'}: ${first?.message ?? ''}`, { subject: POWERSHELL });
  }
  return parsed.data;
}

/** Which check error a PowerShell error stands for: denied, missing, or just failed. */
export function codeForPsError(err: PsError): 'CHK_ERR_PERMISSION' | 'CHK_ERR_SOURCE_MISSING' | 'CHK_ERR_COMMAND_FAILED' {
  if (
    err.Category === 'PermissionDenied' ||
    /UnauthorizedAccess/.test(err.Type) ||
    /access (is )?denied|0x80070005|0x80041003/i.test(err.Message)
  ) {
    return 'CHK_ERR_PERMISSION';
  }
  if (/CommandNotFoundException/.test(err.Type)) return 'CHK_ERR_SOURCE_MISSING';
  return 'CHK_ERR_COMMAND_FAILED';
}

// ---------------------------------------------------------------------------------------------
// Joining and classifying

const GUID_PATH = /^\\\\\?\\Volume\{/i;

/** `c:\` → `C:`; `\\?\Volume{…}\` keeps its form, without the final backslash. */
export function normalizeMountPoint(s: string): string {
  const t = s.trim();
  const stripped = /^[A-Za-z]:\\$/.test(t) ? t.slice(0, 2) : t.replace(/\\+$/, '');
  return stripped.toUpperCase();
}

const FULLY_ENCRYPTED = new Set(['FullyEncrypted', 'FullyEncryptedWipeInProgress', 'FullyEncryptedWipeSuspended']);

/**
 * One BitLocker row → a state. Suspension is what Get-BitLockerVolume shows after
 * Suspend-BitLocker (or manage-bde -protectors -disable): the volume stays FullyEncrypted, its key
 * protectors stay listed, and ProtectionStatus turns Off because the key is kept in the clear.
 * Fully encrypted, Off and without protectors is a volume never protected (a clear key, as in
 * "waiting for activation"): that is off, not suspended.
 */
export function classifyBitLocker(row: BitLockerRow): { state: Win32VolumeState; note?: string } {
  if (row.LockStatus === 'Locked') return { state: 'protected', note: 'locked: its data cannot be read without a key' };
  if (FULLY_ENCRYPTED.has(row.VolumeStatus)) {
    if (row.ProtectionStatus === 'On') return { state: 'protected' };
    if (row.ProtectionStatus === 'Off') {
      return row.KeyProtector.length > 0
        ? { state: 'suspended' }
        : { state: 'off', note: 'encrypted with a clear key: no key protector' };
    }
    return { state: 'unresolved', note: `protection status ${JSON.stringify(row.ProtectionStatus)}` };
  }
  switch (row.VolumeStatus) {
    case 'FullyDecrypted':
      return { state: 'off' };
    case 'EncryptionInProgress':
    case 'EncryptionSuspended':
      return { state: 'encrypting' };
    case 'DecryptionInProgress':
    case 'DecryptionSuspended':
      return { state: 'decrypting' };
    default:
      return { state: 'unresolved', note: `volume status ${JSON.stringify(row.VolumeStatus)}` };
  }
}

function kindFromBitLocker(volumeType: string): Win32VolumeKind | null {
  if (volumeType === 'OperatingSystem') return 'os';
  if (volumeType === 'FixedData') return 'fixed_data';
  if (volumeType === 'Removable') return 'removable';
  return null;
}

const orNull = (s: string): string | null => (s.trim() === '' ? null : s);

function bitLockerFacts(row: BitLockerRow): NonNullable<Win32Volume['bitLocker']> {
  return {
    volumeType: row.VolumeType,
    protectionStatus: row.ProtectionStatus,
    volumeStatus: row.VolumeStatus,
    encryptionPercentage: row.EncryptionPercentage,
    encryptionMethod: row.EncryptionMethod,
    lockStatus: row.LockStatus,
    keyProtectors: [...row.KeyProtector].sort(),
  };
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Joins BitLocker rows to the fixed volumes. Get-BitLockerVolume names a volume by its drive
 * letter, or by its volume GUID path when it has none; Win32_Volume gives both. Every fixed volume
 * becomes one entry (`not_listed` when BitLocker has no row for it), and so does every BitLocker
 * row that matched no fixed volume (removable drives).
 */
export function joinVolumes(bitLocker: readonly BitLockerRow[], volumes: readonly VolumeRow[]): Win32Volume[] {
  const out: Win32Volume[] = [];
  const used = new Set<number>();
  for (const v of volumes) {
    const driveLetter = orNull(v.DriveLetter);
    const keys = new Set([v.DriveLetter, v.Name, v.DeviceID].filter((k) => k.trim() !== '').map(normalizeMountPoint));
    const index = bitLocker.findIndex((b, i) => !used.has(i) && keys.has(normalizeMountPoint(b.MountPoint)));
    const row = index < 0 ? undefined : bitLocker[index];
    if (index >= 0) used.add(index);
    const name = orNull(v.Name);
    const folderMount = name !== null && !GUID_PATH.test(name) ? name.replace(/\\+$/, '') : null;
    const mountPoint = driveLetter ?? folderMount ?? (orNull(v.DeviceID)?.replace(/\\+$/, '') || row?.MountPoint || '(no mount point)');
    const kind = (row === undefined ? null : kindFromBitLocker(row.VolumeType)) ?? (v.BootVolume === true ? 'os' : 'fixed_data');
    const judged = row === undefined ? { state: 'not_listed' as const, note: 'Get-BitLockerVolume does not list this fixed volume' } : classifyBitLocker(row);
    out.push({
      mountPoint,
      deviceId: orNull(v.DeviceID),
      driveLetter,
      kind,
      mounted: driveLetter !== null || folderMount !== null,
      fixed: true,
      fileSystem: orNull(v.FileSystem),
      label: orNull(v.Label),
      sizeBytes: v.Capacity,
      bootVolume: v.BootVolume,
      systemVolume: v.SystemVolume,
      bitLocker: row === undefined ? null : bitLockerFacts(row),
      state: judged.state,
      ...(judged.note === undefined ? {} : { note: judged.note }),
    });
  }
  bitLocker.forEach((row, i) => {
    if (used.has(i)) return;
    const kind = kindFromBitLocker(row.VolumeType);
    const judged = kind === null ? { state: 'unresolved' as const, note: `volume type ${JSON.stringify(row.VolumeType)}` } : classifyBitLocker(row);
    const mountPoint = normalizeMountPoint(row.MountPoint) === '' ? '(no mount point)' : row.MountPoint.replace(/^([A-Za-z]:)\\$/, '$1');
    out.push({
      mountPoint,
      deviceId: GUID_PATH.test(row.MountPoint) ? row.MountPoint : null,
      driveLetter: /^[A-Za-z]:\\?$/.test(row.MountPoint) ? row.MountPoint.slice(0, 2).toUpperCase() : null,
      // An unknown type is judged as fixed data: never silently out of scope.
      kind: kind ?? 'fixed_data',
      mounted: /^[A-Za-z]:/.test(row.MountPoint),
      fixed: false,
      fileSystem: null,
      label: null,
      sizeBytes: null,
      bootVolume: null,
      systemVolume: null,
      bitLocker: bitLockerFacts(row),
      state: judged.state,
      ...(judged.note === undefined ? {} : { note: judged.note }),
    });
  });
  return out.sort((a, b) => cmp(a.mountPoint.toUpperCase(), b.mountPoint.toUpperCase()) || cmp(a.deviceId ?? '', b.deviceId ?? ''));
}

// ---------------------------------------------------------------------------------------------
// Collect

export async function collectWin32(io: HostIO): Promise<Win32Facts> {
  const res = await io.run(BITLOCKER_COMMAND.command, BITLOCKER_COMMAND.args);
  if (res.exitCode !== 0 && res.stdout.trim() === '') {
    const said = res.stderr.trim().split(/\r?\n/)[0] ?? '';
    throw new CheckError('CHK_ERR_COMMAND_FAILED', `powershell exited with ${res.exitCode}${said === '' ? '' : `: ${said.slice(0, 200)}`}`, { subject: POWERSHELL });
  }
  const report = parseBitLockerReport(res.stdout);
  // The cmdlet needs an elevated agent; without it the answer is "cannot tell", never a pass.
  if (!report.Elevated) {
    throw new CheckError('CHK_ERR_PERMISSION', 'Get-BitLockerVolume needs an elevated (administrator or SYSTEM) agent', { subject: 'Get-BitLockerVolume' });
  }
  const blErrors = report.BitLockerErrors;
  if (report.BitLocker === null) {
    const first = blErrors[0];
    const code = first === undefined ? 'CHK_ERR_COMMAND_FAILED' : codeForPsError(first);
    throw new CheckError(code, `Get-BitLockerVolume failed${first === undefined ? '' : `: ${first.Message.slice(0, 200)}`}`, { subject: 'Get-BitLockerVolume' });
  }
  const denied = blErrors.find((e) => codeForPsError(e) === 'CHK_ERR_PERMISSION');
  if (denied !== undefined) {
    throw new CheckError('CHK_ERR_PERMISSION', `Get-BitLockerVolume was denied: ${denied.Message.slice(0, 200)}`, { subject: 'Get-BitLockerVolume' });
  }
  if (report.Volumes === null) {
    const err = report.VolumesError;
    throw new CheckError(err === null ? 'CHK_ERR_COMMAND_FAILED' : codeForPsError(err), `cannot list the fixed volumes (Win32_Volume)${err === null ? '' : `: ${err.Message.slice(0, 200)}`}`, {
      subject: 'Win32_Volume',
    });
  }
  return {
    platform: 'win32',
    volumes: joinVolumes(report.BitLocker, report.Volumes),
    bitLockerErrors: blErrors.map((e) => `${e.Type}: ${e.Message}`).sort(),
  };
}
