// Pure parser for credential_age on Windows: Get-LocalUser as Windows PowerShell 5.1's
// ConvertTo-Json writes it. No I/O and no clock.
import { CheckError } from '../errors.js';
import { ageInDays, type PasswordState } from './linux.js';

/**
 * Declared once: the HostIO allow-list matches this exact argument vector. UTF-8 output keeps
 * non-ASCII names intact; setting it can fail without a console, which must not stop the script.
 */
export const LOCAL_USERS_SCRIPT =
  'try { [Console]::OutputEncoding = [System.Text.Encoding]::UTF8 } catch { }; ' +
  "$ErrorActionPreference = 'Stop'; " +
  '@(Get-LocalUser | Select-Object Name, Enabled, PasswordRequired, PasswordLastSet, PasswordExpires, ' +
  "@{Name='SID';Expression={[string]$_.SID}}, @{Name='PrincipalSource';Expression={[string]$_.PrincipalSource}}) " +
  '| ConvertTo-Json -Depth 5 -Compress';

export interface LocalUser {
  name: string;
  sid: string | null;
  enabled: boolean;
  /** USER_PASSWORD_NOT_REQUIRED is clear. New-LocalUser leaves it set, so it does not mean "no password". */
  passwordRequired: boolean | null;
  /** Null when SAM holds 0: the password must be changed at next logon (or was never set). */
  passwordLastSetMs: number | null;
  passwordExpiresMs: number | null;
  /** Local, MicrosoftAccount, AzureAD, ActiveDirectory; null where Windows does not tell. */
  principalSource: string | null;
}

function parseError(what: string, subject: string): CheckError {
  return new CheckError('CHK_ERR_PARSE', `Get-LocalUser output: ${what}`, { subject });
}

/**
 * A DateTime as ConvertTo-Json writes it: "\/Date(1700000000000)\/" in Windows PowerShell 5.1
 * (JSON.parse leaves "/Date(…)/"), an ISO 8601 string in PowerShell 7, or an object whose
 * `value` holds either when the DateTime carried extra properties.
 */
export function parsePsDate(v: unknown, subject: string): number | null {
  if (v === null || v === undefined || v === '') return null;
  if (typeof v === 'object' && !Array.isArray(v) && 'value' in v) return parsePsDate((v as { value: unknown }).value, subject);
  if (typeof v !== 'string') throw parseError('a date is neither a string nor null', subject);
  const m = /^\/Date\((-?\d+)(?:[+-]\d{4})?\)\/$/.exec(v);
  if (m !== null) return Number(m[1]);
  const ms = Date.parse(v);
  if (Number.isNaN(ms)) throw parseError(`unreadable date ${JSON.stringify(v)}`, subject);
  return ms;
}

function optionalBool(v: unknown, what: string, subject: string): boolean | null {
  if (v === null || v === undefined) return null;
  if (typeof v !== 'boolean') throw parseError(`${what} is not a boolean`, subject);
  return v;
}

function optionalString(v: unknown): string | null {
  if (typeof v === 'string') return v === '' ? null : v;
  // A SecurityIdentifier not cast to [string] becomes { BinaryLength, AccountDomainSid, Value }.
  if (typeof v === 'object' && v !== null && typeof (v as { Value?: unknown }).Value === 'string') return (v as { Value: string }).Value;
  return null;
}

/**
 * Parses the script's output. One user is an object rather than a one-element array in
 * PowerShell 5.1; an array piped whole may come back as { value: [...], Count }. Empty output
 * means Get-LocalUser returned nothing.
 */
export function parseLocalUsers(stdout: string, subject = 'Get-LocalUser'): LocalUser[] {
  const text = stdout.replace(/^\uFEFF/, '').trim();
  if (text === '') return [];
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw parseError('not JSON', subject);
  }
  const wrapped = json as { value?: unknown; Count?: unknown } | null;
  if (wrapped !== null && typeof wrapped === 'object' && Array.isArray(wrapped.value) && typeof wrapped.Count === 'number') {
    json = wrapped.value;
  }
  const items = Array.isArray(json) ? json : [json];
  return items.map((item, i) => {
    if (item === null || typeof item !== 'object' || Array.isArray(item)) throw parseError(`item ${i} is not an object`, subject);
    const o = item as Record<string, unknown>;
    if (typeof o.Name !== 'string' || o.Name === '') throw parseError(`item ${i} has no Name`, subject);
    const where = `${subject}: ${o.Name}`;
    const enabled = optionalBool(o.Enabled, 'Enabled', where);
    if (enabled === null) throw parseError(`item ${i} has no Enabled`, subject);
    return {
      name: o.Name,
      sid: optionalString(o.SID),
      enabled,
      passwordRequired: optionalBool(o.PasswordRequired, 'PasswordRequired', where),
      passwordLastSetMs: parsePsDate(o.PasswordLastSet, where),
      passwordExpiresMs: parsePsDate(o.PasswordExpires, where),
      principalSource: optionalString(o.PrincipalSource),
    };
  });
}

export interface WindowsAccount {
  name: string;
  sid: string | null;
  password: PasswordState;
  enabled: boolean;
  passwordRequired: boolean | null;
  passwordExpires: string | null;
  principalSource: string | null;
}

export interface WindowsPassword {
  account: string;
  lastChanged: string | null;
  ageDays: number | null;
  active: boolean;
  mustChange: boolean;
  note?: string;
}

/**
 * Every local account is reported; only enabled ones are judged. Accounts tied to a Microsoft or
 * Entra ID account sign in with that account's password, which this host does not manage.
 */
export function windowsPasswords(users: readonly LocalUser[], nowMs: number): { accounts: WindowsAccount[]; passwords: WindowsPassword[] } {
  const accounts: WindowsAccount[] = [];
  const passwords: WindowsPassword[] = [];
  for (const u of users) {
    const external = u.principalSource === 'MicrosoftAccount' || u.principalSource === 'AzureAD';
    accounts.push({
      name: u.name,
      sid: u.sid,
      password: external ? 'external' : 'set',
      enabled: u.enabled,
      passwordRequired: u.passwordRequired,
      passwordExpires: u.passwordExpiresMs === null ? null : new Date(u.passwordExpiresMs).toISOString(),
      principalSource: u.principalSource,
    });
    if (external) continue;
    const fact: WindowsPassword = { account: u.name, lastChanged: null, ageDays: null, active: u.enabled, mustChange: false };
    if (u.passwordLastSetMs === null) {
      fact.mustChange = true;
      fact.note = 'PasswordLastSet is empty: the password must be changed at next logon or was never set';
    } else {
      fact.lastChanged = new Date(u.passwordLastSetMs).toISOString();
      fact.ageDays = ageInDays(u.passwordLastSetMs, nowMs);
    }
    passwords.push(fact);
  }
  return { accounts, passwords };
}
