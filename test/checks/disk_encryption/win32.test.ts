// Windows: the BitLocker script, its JSON parser (PowerShell 5.1 quirks), the join of BitLocker
// rows to fixed volumes, collect against strict replays, and the BitLocker verdicts.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { configSchema, diskEncryption, evaluate, factsSchema, type Win32Facts, type Win32Volume } from '../../../checks/disk_encryption/index.js';
import {
  BITLOCKER_COMMAND,
  BITLOCKER_SCRIPT,
  classifyBitLocker,
  codeForPsError,
  collectWin32,
  joinVolumes,
  normalizeMountPoint,
  parseBitLockerReport,
  POWERSHELL,
  type BitLockerRow,
  type VolumeRow,
} from '../../../checks/disk_encryption/win32.js';
import { isCheckError } from '../../../checks/errors.js';
import { manifestSchema, ReplayHostIO, type RecordedCall } from '../../../checks/replay.js';
import { listCases } from '../../helpers/fixtures.js';
import { thrownCode } from '../../helpers/check-errors.js';

const defaults = configSchema.parse({});
const GUID_C = '\\\\?\\Volume{3f2e7a14-9b1c-4d2a-8e5f-0a1b2c3d4e5f}\\';
const GUID_D = '\\\\?\\Volume{5e6f7081-92a3-4b4c-8d5e-6f708192a3b4}\\';
const GUID_REC = '\\\\?\\Volume{a4b5c6d7-e8f9-4a0b-8c1d-2e3f40516273}\\';
const GUID_F = '\\\\?\\Volume{0badf00d-0000-4000-8000-000000000001}\\';

function row(over: Partial<BitLockerRow>): BitLockerRow {
  return {
    MountPoint: 'C:',
    VolumeType: 'OperatingSystem',
    ProtectionStatus: 'On',
    VolumeStatus: 'FullyEncrypted',
    EncryptionPercentage: 100,
    EncryptionMethod: 'XtsAes128',
    LockStatus: 'Unlocked',
    KeyProtector: ['Tpm', 'RecoveryPassword'],
    ...over,
  };
}

function wv(over: Partial<VolumeRow>): VolumeRow {
  return { DeviceID: GUID_C, DriveLetter: 'C:', Name: 'C:\\', Label: '', FileSystem: 'NTFS', Capacity: 1000, BootVolume: true, SystemVolume: false, ...over };
}

const C = wv({});
const D = wv({ DeviceID: GUID_D, DriveLetter: 'D:', Name: 'D:\\', Label: 'Data', BootVolume: false });
const REC = wv({ DeviceID: GUID_REC, DriveLetter: '', Name: GUID_REC, BootVolume: false });

describe('the BitLocker script', () => {
  it('is one Windows PowerShell command line, as the conventions say', () => {
    expect(BITLOCKER_COMMAND.command).toBe('C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe');
    expect(BITLOCKER_COMMAND.args.slice(0, 3)).toEqual(['-NoProfile', '-NonInteractive', '-Command']);
    expect(BITLOCKER_COMMAND.args[3]).toBe(BITLOCKER_SCRIPT);
    expect(BITLOCKER_SCRIPT.endsWith('| ConvertTo-Json -Depth 5 -Compress')).toBe(true);
  });

  it('uses single quotes only, so the command line needs no escaping', () => {
    expect(BITLOCKER_SCRIPT).not.toContain('"');
  });

  it('reads BitLocker live and lists every fixed volume beside it', () => {
    expect(BITLOCKER_SCRIPT).toContain('Get-BitLockerVolume');
    expect(BITLOCKER_SCRIPT).toContain("Win32_Volume -Filter 'DriveType=3'");
    expect(BITLOCKER_SCRIPT).not.toMatch(/manage-bde/i);
  });

  it('casts every enum it reads to [string]', () => {
    for (const p of ['VolumeType', 'ProtectionStatus', 'VolumeStatus', 'EncryptionMethod', 'LockStatus', 'KeyProtectorType']) {
      expect(BITLOCKER_SCRIPT).toMatch(new RegExp(`\\[string\\]\\$\\w+\\.${p}\\b`));
    }
  });

  it('is the command declared in sources.win32, and every win32 fixture runs exactly that', () => {
    expect(diskEncryption.sources.win32).toEqual([expect.objectContaining({ kind: 'command', command: POWERSHELL, args: BITLOCKER_COMMAND.args })]);
    const cases = listCases('disk_encryption').filter((c) => c.platform === 'win32');
    expect(cases.length).toBeGreaterThan(0);
    for (const c of cases) {
      const manifest = manifestSchema.parse(JSON.parse(readFileSync(path.join(c.dir, 'manifest.json'), 'utf8')));
      for (const call of manifest.calls) {
        expect(call.op, c.name).toBe('run');
        if (call.op === 'run') expect([call.command, ...call.args], c.name).toEqual([BITLOCKER_COMMAND.command, ...BITLOCKER_COMMAND.args]);
      }
    }
  });
});

describe('parseBitLockerReport', () => {
  const report = (over: Record<string, unknown>) => JSON.stringify({ Elevated: true, BitLocker: [], BitLockerErrors: [], Volumes: [], VolumesError: null, ...over });

  it('accepts one volume written as an object instead of a one-element array', () => {
    const r = parseBitLockerReport(report({ BitLocker: row({ KeyProtector: 'Tpm' as unknown as string[] }), Volumes: C }));
    expect(r.BitLocker).toEqual([row({ KeyProtector: ['Tpm'] })]);
    expect(r.Volumes).toEqual([C]);
  });

  it('keeps an enum that escaped the cast as its digits, and reads numbers written as text', () => {
    const r = parseBitLockerReport(report({ BitLocker: [{ ...row({}), VolumeStatus: 1, ProtectionStatus: 1, EncryptionPercentage: '37.5', KeyProtector: null }] }));
    expect(r.BitLocker?.[0]).toMatchObject({ VolumeStatus: '1', ProtectionStatus: '1', EncryptionPercentage: 37.5, KeyProtector: [] });
  });

  it('tolerates a byte order mark and CRLF, and null lists', () => {
    const r = parseBitLockerReport(`\uFEFF${report({ BitLocker: null, BitLockerErrors: null, Volumes: null })}\r\n`);
    expect(r).toMatchObject({ BitLocker: null, BitLockerErrors: [], Volumes: null });
  });

  it.each([
    ['empty output', ''],
    ['text that is not JSON', 'Get-BitLockerVolume : The term is not recognized'],
    ['JSON without Elevated', JSON.stringify({ BitLocker: [] })],
    ['a row without MountPoint fields of the right type', report({ BitLocker: [{ MountPoint: 'C:', KeyProtector: [{ a: 1 }] }] })],
  ])('refuses %s with CHK_ERR_PARSE', (_what, stdout) => {
    expect(thrownCode(() => parseBitLockerReport(stdout))).toBe('CHK_ERR_PARSE');
  });
});

describe('classifyBitLocker', () => {
  it.each<[string, Partial<BitLockerRow>, string]>([
    ['fully encrypted, protection on', {}, 'protected'],
    ['wiping free space, protection on', { VolumeStatus: 'FullyEncryptedWipeInProgress' }, 'protected'],
    ['suspended: encrypted, Off, protectors kept', { ProtectionStatus: 'Off' }, 'suspended'],
    ['encrypted with a clear key and no protector', { ProtectionStatus: 'Off', KeyProtector: [] }, 'off'],
    ['decrypted', { VolumeStatus: 'FullyDecrypted', ProtectionStatus: 'Off', KeyProtector: [] }, 'off'],
    ['encrypting', { VolumeStatus: 'EncryptionInProgress', ProtectionStatus: 'Off', EncryptionPercentage: 37.5 }, 'encrypting'],
    ['encryption paused', { VolumeStatus: 'EncryptionSuspended', ProtectionStatus: 'Off' }, 'encrypting'],
    ['decrypting', { VolumeStatus: 'DecryptionInProgress', ProtectionStatus: 'Off' }, 'decrypting'],
    ['decryption paused', { VolumeStatus: 'DecryptionSuspended', ProtectionStatus: 'Off' }, 'decrypting'],
    ['a locked data volume', { VolumeType: 'FixedData', LockStatus: 'Locked', ProtectionStatus: 'Unknown', VolumeStatus: 'FullyEncrypted' }, 'protected'],
    ['protection status unknown on an unlocked volume', { ProtectionStatus: 'Unknown' }, 'unresolved'],
    ['an enum left as its integer', { VolumeStatus: '1', ProtectionStatus: '1' }, 'unresolved'],
    ['an empty status', { VolumeStatus: '' }, 'unresolved'],
  ])('%s → %s', (_what, over, state) => {
    expect(classifyBitLocker(row(over)).state).toBe(state);
  });
});

describe('normalizeMountPoint and codeForPsError', () => {
  it('normalizes drive letters and paths for comparison', () => {
    expect(normalizeMountPoint('c:\\')).toBe('C:');
    expect(normalizeMountPoint('C:')).toBe('C:');
    expect(normalizeMountPoint('d:\\Data\\')).toBe('D:\\DATA');
    expect(normalizeMountPoint(GUID_C)).toBe(GUID_C.slice(0, -1).toUpperCase());
  });

  it('maps PowerShell errors to check codes', () => {
    const e = (Category: string, Type: string, Message: string) => ({ Category, Type, Message });
    expect(codeForPsError(e('PermissionDenied', 'Microsoft.Management.Infrastructure.CimException', 'Access denied '))).toBe('CHK_ERR_PERMISSION');
    expect(codeForPsError(e('NotSpecified', 'System.UnauthorizedAccessException', 'x'))).toBe('CHK_ERR_PERMISSION');
    expect(codeForPsError(e('NotSpecified', 'System.Runtime.InteropServices.COMException', 'Access is denied. (Exception from HRESULT: 0x80070005 (E_ACCESSDENIED))'))).toBe('CHK_ERR_PERMISSION');
    expect(codeForPsError(e('ObjectNotFound', 'System.Management.Automation.CommandNotFoundException', "The term 'Get-BitLockerVolume' is not recognized"))).toBe('CHK_ERR_SOURCE_MISSING');
    expect(codeForPsError(e('NotSpecified', 'System.Runtime.InteropServices.COMException', 'Device Id: x does not have a corresponding volume.'))).toBe('CHK_ERR_COMMAND_FAILED');
  });
});

describe('joinVolumes', () => {
  it('joins by drive letter and by volume GUID path, and keeps unmounted partitions unjudged', () => {
    const out = joinVolumes([row({}), row({ MountPoint: GUID_REC, VolumeType: 'FixedData', VolumeStatus: 'FullyDecrypted', ProtectionStatus: 'Off', KeyProtector: [] }), row({ MountPoint: 'D:', VolumeType: 'FixedData' })], [D, REC, C]);
    expect(out.map((v) => [v.mountPoint, v.kind, v.mounted, v.fixed, v.state])).toEqual([
      ['C:', 'os', true, true, 'protected'],
      ['D:', 'fixed_data', true, true, 'protected'],
      [GUID_REC.slice(0, -1), 'fixed_data', false, true, 'off'],
    ]);
    expect(out[0]).toMatchObject({ deviceId: GUID_C, driveLetter: 'C:', bitLocker: { keyProtectors: ['RecoveryPassword', 'Tpm'] }, bootVolume: true });
  });

  it('lists a fixed volume BitLocker leaves out as not_listed, guessing its kind from BootVolume', () => {
    expect(joinVolumes([], [C, D]).map((v) => [v.mountPoint, v.kind, v.state, v.bitLocker])).toEqual([
      ['C:', 'os', 'not_listed', null],
      ['D:', 'fixed_data', 'not_listed', null],
    ]);
  });

  it('joins a folder-mounted volume by its GUID path and names it by its folder', () => {
    const folder = wv({ DeviceID: GUID_F, DriveLetter: '', Name: 'C:\\Data\\Projects\\', BootVolume: false });
    const out = joinVolumes([row({ MountPoint: GUID_F, VolumeType: 'FixedData' })], [folder]);
    expect(out).toEqual([expect.objectContaining({ mountPoint: 'C:\\Data\\Projects', mounted: true, state: 'protected', kind: 'fixed_data' })]);
  });

  it('keeps BitLocker rows no fixed volume matches (removable drives), and an unknown type as fixed data', () => {
    const out = joinVolumes([row({ MountPoint: 'E:', VolumeType: 'Removable', VolumeStatus: 'FullyDecrypted', ProtectionStatus: 'Off', KeyProtector: [] }), row({ MountPoint: 'F:', VolumeType: '7' })], [C]);
    expect(out.map((v) => [v.mountPoint, v.kind, v.fixed, v.mounted, v.state])).toEqual([
      ['C:', 'os', true, true, 'not_listed'],
      ['E:', 'removable', false, true, 'off'],
      ['F:', 'fixed_data', false, true, 'unresolved'],
    ]);
  });

  it('does not match one BitLocker row twice', () => {
    const twin = wv({ DeviceID: GUID_D, DriveLetter: 'C:', Name: 'C:\\' });
    const out = joinVolumes([row({})], [C, twin]);
    expect(out.filter((v) => v.bitLocker !== null)).toHaveLength(1);
  });
});

const ps = (stdout: string, exitCode = 0, stderr = ''): RecordedCall => ({ op: 'run', command: POWERSHELL, args: [...BITLOCKER_COMMAND.args], stdout, exitCode, stderr });
const json = (over: Record<string, unknown>) => JSON.stringify({ Elevated: true, BitLocker: [row({})], BitLockerErrors: [], Volumes: [C], VolumesError: null, ...over });

async function collectCode(calls: RecordedCall[]): Promise<string> {
  const io = new ReplayHostIO({ version: 1, platform: 'win32', calls });
  const err = await collectWin32(io).catch((e: unknown) => e);
  io.assertComplete();
  return isCheckError(err) ? err.code : `no CheckError: ${JSON.stringify(err)}`;
}

describe('collectWin32', () => {
  it('joins what the script printed into sorted facts', async () => {
    const io = new ReplayHostIO({ version: 1, platform: 'win32', calls: [ps(json({ Volumes: [D, C] , BitLocker: [row({ MountPoint: 'D:', VolumeType: 'FixedData' }), row({})] }))] });
    const facts = await collectWin32(io);
    io.assertComplete();
    expect(facts.platform).toBe('win32');
    expect(facts.volumes.map((v) => v.mountPoint)).toEqual(['C:', 'D:']);
    expect(factsSchema.parse(facts)).toEqual(facts);
  });

  it('answers CHK_ERR_PERMISSION when the agent is not elevated, whatever else the script saw', async () => {
    expect(await collectCode([ps(json({ Elevated: false }))])).toBe('CHK_ERR_PERMISSION');
  });

  it('answers CHK_ERR_PERMISSION when Get-BitLockerVolume was denied, even for one volume', async () => {
    const denied = { Category: 'PermissionDenied', Type: 'Microsoft.Management.Infrastructure.CimException', Message: 'Access denied ' };
    expect(await collectCode([ps(json({ BitLocker: null, BitLockerErrors: [denied] }))])).toBe('CHK_ERR_PERMISSION');
    expect(await collectCode([ps(json({ BitLockerErrors: [denied] }))])).toBe('CHK_ERR_PERMISSION');
  });

  it('answers CHK_ERR_SOURCE_MISSING without the BitLocker module, COMMAND_FAILED for other failures', async () => {
    const missing = { Category: 'ObjectNotFound', Type: 'System.Management.Automation.CommandNotFoundException', Message: "The term 'Get-BitLockerVolume' is not recognized" };
    expect(await collectCode([ps(json({ BitLocker: null, BitLockerErrors: [missing] }))])).toBe('CHK_ERR_SOURCE_MISSING');
    expect(await collectCode([ps(json({ BitLocker: null }))])).toBe('CHK_ERR_COMMAND_FAILED');
    expect(await collectCode([ps(json({ Volumes: null, VolumesError: { Category: 'NotSpecified', Type: 'Microsoft.Management.Infrastructure.CimException', Message: 'Invalid class' } }))])).toBe(
      'CHK_ERR_COMMAND_FAILED',
    );
    expect(await collectCode([ps('', 1, 'powershell.exe : The system cannot find the path specified.')])).toBe('CHK_ERR_COMMAND_FAILED');
    expect(await collectCode([ps('')])).toBe('CHK_ERR_PARSE');
  });

  it('keeps per-volume errors as facts when the listing itself worked', async () => {
    const err = { Category: 'NotSpecified', Type: 'System.Runtime.InteropServices.COMException', Message: 'Device Id: x does not have a corresponding volume.' };
    const io = new ReplayHostIO({ version: 1, platform: 'win32', calls: [ps(json({ BitLockerErrors: [err] }))] });
    const facts = await collectWin32(io);
    expect(facts.bitLockerErrors).toEqual(['System.Runtime.InteropServices.COMException: Device Id: x does not have a corresponding volume.']);
  });
});

function vol(over: Partial<Win32Volume>): Win32Volume {
  return {
    mountPoint: 'C:',
    deviceId: GUID_C,
    driveLetter: 'C:',
    kind: 'os',
    mounted: true,
    fixed: true,
    fileSystem: 'NTFS',
    label: null,
    sizeBytes: 1000,
    bootVolume: true,
    systemVolume: false,
    bitLocker: { volumeType: 'OperatingSystem', protectionStatus: 'On', volumeStatus: 'FullyEncrypted', encryptionPercentage: 100, encryptionMethod: 'XtsAes128', lockStatus: 'Unlocked', keyProtectors: ['Tpm'] },
    state: 'protected',
    ...over,
  };
}

const facts = (...volumes: Win32Volume[]): Win32Facts => ({ platform: 'win32', volumes, bitLockerErrors: [] });
const dataVol = (over: Partial<Win32Volume>) => vol({ mountPoint: 'D:', driveLetter: 'D:', deviceId: GUID_D, kind: 'fixed_data', bootVolume: false, ...over });
const codes = (ev: { reasons: { code: string; subject?: string }[] }) => ev.reasons.map((r) => `${r.code} ${r.subject ?? ''}`);

describe('evaluate on Windows', () => {
  it('passes when every judged volume is protected', () => {
    expect(evaluate(facts(vol({}), dataVol({}), dataVol({ mountPoint: 'E:', state: 'protected', note: 'locked: its data cannot be read without a key' })), defaults)).toEqual({ status: 'pass', reasons: [] });
  });

  it.each<[Win32Volume['state'], string]>([
    ['off', 'CHK_FAIL_BITLOCKER_OFF'],
    ['suspended', 'CHK_FAIL_BITLOCKER_SUSPENDED'],
    ['encrypting', 'CHK_FAIL_ENCRYPTION_IN_PROGRESS'],
    ['decrypting', 'CHK_FAIL_DECRYPTION_IN_PROGRESS'],
  ])('fails a %s volume with %s', (state, code) => {
    const ev = evaluate(facts(vol({}), dataVol({ state })), defaults);
    expect(ev.status).toBe('fail');
    expect(codes(ev)).toEqual([`${code} D:`]);
  });

  it('is unknown for a fixed volume BitLocker does not list, or one it cannot read', () => {
    const ev = evaluate(facts(vol({}), dataVol({ state: 'not_listed', bitLocker: null }), dataVol({ mountPoint: 'E:', state: 'unresolved', note: 'volume status "1"' })), defaults);
    expect(ev.status).toBe('unknown');
    expect(codes(ev)).toEqual(['CHK_ERR_UNRESOLVED D:', 'CHK_ERR_UNRESOLVED E:']);
    expect(ev.reasons[1]?.message).toContain('volume status "1"');
  });

  it('lets fail dominate unknown', () => {
    const ev = evaluate(facts(vol({ state: 'suspended' }), dataVol({ state: 'not_listed' })), defaults);
    expect(codes(ev)).toEqual(['CHK_FAIL_BITLOCKER_SUSPENDED C:']);
  });

  it('judges only the operating system volume when requireAllFixedVolumes is false', () => {
    const f = facts(vol({}), dataVol({ state: 'off' }));
    expect(evaluate(f, { ...defaults, requireAllFixedVolumes: false }).status).toBe('pass');
    expect(evaluate(facts(vol({ state: 'off' }), dataVol({})), { ...defaults, requireAllFixedVolumes: false }).status).toBe('fail');
  });

  it('judges removable volumes only when asked to', () => {
    const usb = dataVol({ mountPoint: 'F:', kind: 'removable', fixed: false, state: 'off' });
    expect(evaluate(facts(vol({}), usb), defaults).status).toBe('pass');
    expect(codes(evaluate(facts(vol({}), usb), { ...defaults, requireRemovableVolumes: true }))).toEqual(['CHK_FAIL_BITLOCKER_OFF F:']);
  });

  it('never judges partitions without a drive letter or folder (EFI, recovery)', () => {
    const esp = vol({ mountPoint: GUID_REC.slice(0, -1), driveLetter: null, kind: 'fixed_data', mounted: false, state: 'not_listed', bitLocker: null });
    expect(evaluate(facts(vol({}), esp), defaults).status).toBe('pass');
  });

  it('skips mount points the config ignores, whatever their case or trailing backslash', () => {
    const f = facts(vol({}), dataVol({ state: 'off' }));
    expect(evaluate(f, configSchema.parse({ ignoreMountpoints: ['d:\\'] })).status).toBe('pass');
    expect(evaluate(f, configSchema.parse({ ignoreMountpoints: ['D:'] })).status).toBe('pass');
    expect(evaluate(f, configSchema.parse({ ignoreMountpoints: ['/boot'] })).status).toBe('fail');
  });

  it('never passes without an operating system volume', () => {
    const ev = evaluate(facts(dataVol({})), defaults);
    expect(ev.status).toBe('unknown');
    expect(codes(ev)).toEqual(['CHK_ERR_UNRESOLVED operating system volume']);
    expect(evaluate(facts(), defaults).status).toBe('unknown');
  });

  it('names the progress of a conversion', () => {
    const ev = evaluate(facts(vol({}), dataVol({ state: 'decrypting', bitLocker: { ...vol({}).bitLocker!, volumeStatus: 'DecryptionInProgress', encryptionPercentage: 61 } })), defaults);
    expect(ev.reasons[0]?.message).toContain('61% encrypted');
  });
});

describe('Windows mount points in the config', () => {
  it.each(['D:', 'd:', 'D:\\Data', GUID_C, GUID_C.slice(0, -1)])('accepts %j', (m) => {
    expect(configSchema.safeParse({ ignoreMountpoints: [m] }).success).toBe(true);
  });

  it.each(['D', 'C:/data', 'Volume{x}', '\\\\server\\share'])('refuses %j', (m) => {
    expect(configSchema.safeParse({ ignoreMountpoints: [m] }).success).toBe(false);
  });
});
