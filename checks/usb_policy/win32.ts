// The PowerShell script and the pure parser and verdict of usb_policy on Windows: the USBSTOR
// driver's start type and state, and the Removable Storage Access policies in the registry.
import * as z from 'zod';
import { CheckError } from '../errors.js';
import type { CommandResult, Evaluation, Reason } from '../types.js';

export const POWERSHELL = 'C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe';

/** Removable Disks, as RemovableStorage.admx names the class ("Removable Disks: Deny ... access"). */
export const REMOVABLE_DISKS_CLASS = '{53f5630d-b6bf-11d0-94f2-00a0c91efb8b}';

/**
 * One script, all values at once. Each registry read says whether the value is set, missing,
 * denied or failed, so that "cannot read" never looks like "not configured". Single quotes only:
 * double quotes do not survive powershell.exe's command-line parsing reliably.
 */
export const USB_POLICY_SCRIPT = [
  "$ErrorActionPreference='Stop';",
  'function Get-Reg([string]$Path,[string]$Name){',
  "try { $i=Get-ItemProperty -LiteralPath $Path -Name $Name; @{s='ok';v=$i.$Name} }",
  "catch [System.Management.Automation.ItemNotFoundException] { @{s='missing'} }",
  "catch [System.Management.Automation.PSArgumentException] { @{s='missing'} }",
  "catch [System.Security.SecurityException],[System.UnauthorizedAccessException] { @{s='denied'} }",
  "catch { @{s='error';e=$_.Exception.GetType().FullName} } };",
  'function Get-Driver {',
  "try { $d=@(Get-CimInstance -ClassName Win32_SystemDriver -Filter 'Name=''USBSTOR'''); if ($d.Count -eq 0) { @{s='missing'} } else { @{s='ok';state=[string]$d[0].State;startMode=[string]$d[0].StartMode} } }",
  "catch { @{s='error';e=$_.Exception.GetType().FullName} } };",
  "$rs='HKLM:\\SOFTWARE\\Policies\\Microsoft\\Windows\\RemovableStorageDevices';",
  `$rd=$rs+'\\${REMOVABLE_DISKS_CLASS}';`,
  "[pscustomobject]@{usbstorStart=(Get-Reg 'HKLM:\\SYSTEM\\CurrentControlSet\\Services\\USBSTOR' 'Start');",
  "denyAll=(Get-Reg $rs 'Deny_All');denyRead=(Get-Reg $rd 'Deny_Read');denyWrite=(Get-Reg $rd 'Deny_Write');",
  "denyExecute=(Get-Reg $rd 'Deny_Execute');driver=(Get-Driver)} | ConvertTo-Json -Depth 5 -Compress",
].join(' ');

export const USB_POLICY_ARGS = ['-NoProfile', '-NonInteractive', '-Command', USB_POLICY_SCRIPT] as const;

export const registryValueSchema = z.object({
  status: z.enum(['set', 'missing', 'denied', 'error']),
  /** DWORDs arrive as numbers; anything else is kept as text and never counts as set to 1. */
  value: z.union([z.number(), z.string()]).nullable(),
  error: z.string().nullable(),
});
export type RegistryValue = z.infer<typeof registryValueSchema>;

export const win32FactsSchema = z.object({
  platform: z.literal('win32'),
  /** HKLM\SYSTEM\CurrentControlSet\Services\USBSTOR\Start: 3 manual (default), 4 disabled. */
  usbstorStart: registryValueSchema,
  /** ...\Policies\Microsoft\Windows\RemovableStorageDevices\Deny_All ("All Removable Storage classes: Deny all access"). */
  denyAll: registryValueSchema,
  /** ...\RemovableStorageDevices\{53f5630d-...}: the Removable Disks class. */
  removableDisks: z.object({ denyRead: registryValueSchema, denyWrite: registryValueSchema, denyExecute: registryValueSchema }),
  /** Win32_SystemDriver USBSTOR: State `Running` means usbstor.sys serves a device now. */
  driver: z.object({
    status: z.enum(['ok', 'missing', 'error']),
    state: z.string().nullable(),
    startMode: z.string().nullable(),
    error: z.string().nullable(),
  }),
});
export type Win32Facts = z.infer<typeof win32FactsSchema>;

const rawValue = z.object({ s: z.enum(['ok', 'missing', 'denied', 'error']), v: z.unknown().optional(), e: z.string().optional() });
const rawOutput = z.object({
  usbstorStart: rawValue,
  denyAll: rawValue,
  denyRead: rawValue,
  denyWrite: rawValue,
  denyExecute: rawValue,
  driver: z.object({
    s: z.enum(['ok', 'missing', 'error']),
    state: z.string().nullable().optional(),
    startMode: z.string().nullable().optional(),
    e: z.string().optional(),
  }),
});

function toValue(r: z.infer<typeof rawValue>): RegistryValue {
  if (r.s !== 'ok') return { status: r.s, value: null, error: r.e ?? null };
  const v = r.v;
  // A present value that holds nothing (an empty REG_SZ) is kept as text, not as "missing".
  const value = typeof v === 'number' || typeof v === 'string' ? v : v === null || v === undefined ? '' : JSON.stringify(v);
  return { status: 'set', value, error: null };
}

/** Parses the script's JSON. A failed or empty run is unknown, never "nothing configured". */
export function parseUsbPolicyOutput(r: CommandResult): Win32Facts {
  const subject = 'powershell.exe';
  if (r.exitCode !== 0) {
    const first = (r.stderr.trim() || r.stdout.trim()).split('\n')[0] ?? '';
    throw new CheckError('CHK_ERR_COMMAND_FAILED', `PowerShell exited with status ${r.exitCode}: ${first}`, { subject });
  }
  const text = r.stdout.trim();
  if (text === '') throw new CheckError('CHK_ERR_PARSE', 'PowerShell printed nothing', { subject });
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new CheckError('CHK_ERR_PARSE', 'PowerShell output is not JSON', { subject });
  }
  const parsed = rawOutput.safeParse(json);
  if (!parsed.success) throw new CheckError('CHK_ERR_PARSE', 'PowerShell output has an unexpected shape', { subject });
  const o = parsed.data;
  return {
    platform: 'win32',
    usbstorStart: toValue(o.usbstorStart),
    denyAll: toValue(o.denyAll),
    removableDisks: { denyRead: toValue(o.denyRead), denyWrite: toValue(o.denyWrite), denyExecute: toValue(o.denyExecute) },
    driver: {
      status: o.driver.s,
      state: o.driver.s === 'ok' ? (o.driver.state ?? null) : null,
      startMode: o.driver.s === 'ok' ? (o.driver.startMode ?? null) : null,
      error: o.driver.e ?? null,
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Verdict

export const WIN32_FAIL_CODES = {
  CHK_FAIL_NO_BLOCKING_POLICY: 'no enforced policy blocks removable storage',
  CHK_FAIL_PARTIAL_BLOCK: 'removable storage is only partly blocked: reading or writing is still allowed',
  CHK_FAIL_LOADED_DESPITE_BLOCK: 'a storage module (or driver) is loaded although its block is configured',
} as const;

const isOne = (r: RegistryValue): boolean => r.status === 'set' && r.value === 1;

function show(r: RegistryValue): string {
  return r.status === 'set' ? String(r.value) : r.status === 'missing' ? 'not set' : r.status;
}

/**
 * Blocked means: Deny_All = 1; or Removable Disks with both Deny_Read and Deny_Write = 1; or the
 * USBSTOR driver disabled (Start = 4) and not running. Deny_Write alone is write protection, and
 * Deny_Read alone still lets data out: both are partial. Deny_Execute is recorded, not needed.
 */
export function evaluateWin32(facts: Win32Facts): Evaluation {
  const { usbstorStart, denyAll, removableDisks: rd, driver } = facts;
  if (isOne(denyAll) || (isOne(rd.denyRead) && isOne(rd.denyWrite))) return { status: 'pass', reasons: [] };
  if (usbstorStart.status === 'set' && usbstorStart.value === 4) {
    if (driver.status === 'ok' && driver.state === 'Running') {
      return {
        status: 'fail',
        reasons: [{ code: 'CHK_FAIL_LOADED_DESPITE_BLOCK', message: 'USBSTOR Start is 4 (disabled) but usbstor.sys is running and serving a device now', subject: 'USBSTOR' }],
      };
    }
    if (driver.status === 'error') {
      return { status: 'unknown', reasons: [{ code: 'CHK_ERR_UNRESOLVED', message: `cannot tell whether usbstor.sys is running: ${driver.error ?? 'query failed'}`, subject: 'USBSTOR' }] };
    }
    return { status: 'pass', reasons: [] };
  }
  const unknowns: Reason[] = [];
  const named: [string, RegistryValue][] = [
    ['USBSTOR\\Start', usbstorStart],
    ['Deny_All', denyAll],
    [`${REMOVABLE_DISKS_CLASS}\\Deny_Read`, rd.denyRead],
    [`${REMOVABLE_DISKS_CLASS}\\Deny_Write`, rd.denyWrite],
  ];
  for (const [name, r] of named) {
    if (r.status === 'denied') unknowns.push({ code: 'CHK_ERR_PERMISSION', message: `access to ${name} was denied`, subject: name });
    if (r.status === 'error') unknowns.push({ code: 'CHK_ERR_UNRESOLVED', message: `reading ${name} failed: ${r.error ?? 'unknown error'}`, subject: name });
  }
  if (unknowns.length > 0) return { status: 'unknown', reasons: unknowns };
  if (isOne(rd.denyRead) || isOne(rd.denyWrite)) {
    const which = isOne(rd.denyWrite) ? 'writing is denied but reading is allowed' : 'reading is denied but writing is allowed';
    return { status: 'fail', reasons: [{ code: 'CHK_FAIL_PARTIAL_BLOCK', message: `Removable Disks: ${which}`, subject: REMOVABLE_DISKS_CLASS }] };
  }
  return {
    status: 'fail',
    reasons: [
      {
        code: 'CHK_FAIL_NO_BLOCKING_POLICY',
        message: `USBSTOR Start is ${show(usbstorStart)} (4 disables it) and no Removable Storage Access policy denies removable disks`,
        subject: 'USBSTOR',
      },
    ],
  };
}
