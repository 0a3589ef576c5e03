import { describe, expect, it } from 'vitest';
import { LOCAL_USERS_SCRIPT, parseLocalUsers, parsePsDate, windowsPasswords } from '../../../checks/credential_age/win32.js';
import { thrownCode } from '../../helpers/check-errors.js';

const NOW = Date.parse('2026-11-22T12:00:00Z');

// As Windows PowerShell 5.1 prints it: dates as \/Date(ms)\/, SID cast to a string.
const TWO_USERS =
  '[{"Name":"Administrator","Enabled":false,"PasswordRequired":true,"PasswordLastSet":"\\/Date(1562600000000)\\/","PasswordExpires":null,"SID":"S-1-5-21-1394777289-3961777894-1791813945-500","PrincipalSource":"Local"},' +
  '{"Name":"alice","Enabled":true,"PasswordRequired":false,"PasswordLastSet":"\\/Date(1782000000000)\\/","PasswordExpires":"\\/Date(1785628800000)\\/","SID":"S-1-5-21-1394777289-3961777894-1791813945-1001","PrincipalSource":"Local"}]';

describe('the PowerShell script', () => {
  it('asks for UTF-8 without failing on it, stops on errors, and ends in ConvertTo-Json -Depth 5 -Compress', () => {
    expect(LOCAL_USERS_SCRIPT.startsWith('try { [Console]::OutputEncoding = [System.Text.Encoding]::UTF8 } catch { }; ')).toBe(true);
    // Stop is set after the encoding, so only Get-LocalUser's own errors end the script.
    expect(LOCAL_USERS_SCRIPT.indexOf("$ErrorActionPreference = 'Stop';")).toBeGreaterThan(LOCAL_USERS_SCRIPT.indexOf('catch'));
    expect(LOCAL_USERS_SCRIPT.endsWith('| ConvertTo-Json -Depth 5 -Compress')).toBe(true);
    // Activity (LastLogon) is not what this control needs: it is not selected.
    expect(LOCAL_USERS_SCRIPT).not.toContain('LastLogon');
  });
});

describe('parsePsDate', () => {
  it.each([
    ['/Date(1700000000000)/', 1700000000000],
    ['/Date(1700000000000+0100)/', 1700000000000],
    ['/Date(-1000)/', -1000],
    ['2023-11-14T22:13:20.0000000+00:00', 1700000000000],
    [null, null],
    ['', null],
    [{ value: '/Date(1700000000000)/', DisplayHint: 2, DateTime: 'Tuesday, November 14, 2023 10:13:20 PM' }, 1700000000000],
  ])('%j → %j', (input, ms) => {
    expect(parsePsDate(input, 's')).toBe(ms);
  });

  it.each([[42], ['not a date'], [true]])('refuses %j', (input) => {
    expect(thrownCode(() => parsePsDate(input, 's'))).toBe('CHK_ERR_PARSE');
  });
});

describe('parseLocalUsers', () => {
  it('reads an array of users', () => {
    expect(parseLocalUsers(TWO_USERS)).toEqual([
      {
        name: 'Administrator',
        sid: 'S-1-5-21-1394777289-3961777894-1791813945-500',
        enabled: false,
        passwordRequired: true,
        passwordLastSetMs: 1562600000000,
        passwordExpiresMs: null,
        principalSource: 'Local',
      },
      {
        name: 'alice',
        sid: 'S-1-5-21-1394777289-3961777894-1791813945-1001',
        enabled: true,
        passwordRequired: false,
        passwordLastSetMs: 1782000000000,
        passwordExpiresMs: 1785628800000,
        principalSource: 'Local',
      },
    ]);
  });

  it('reads one user printed as an object, not an array', () => {
    const one = '{"Name":"alice","Enabled":true,"PasswordRequired":true,"PasswordLastSet":"\\/Date(1782000000000)\\/","PasswordExpires":null,"SID":"S-1-5-21-1-2-3-1001","PrincipalSource":""}';
    expect(parseLocalUsers(one)).toEqual([
      { name: 'alice', sid: 'S-1-5-21-1-2-3-1001', enabled: true, passwordRequired: true, passwordLastSetMs: 1782000000000, passwordExpiresMs: null, principalSource: null },
    ]);
  });

  it('unwraps { value, Count } and reads a SID object and a UTF-8 BOM', () => {
    const wrapped =
      '\uFEFF{"value":[{"Name":"bob","Enabled":true,"PasswordLastSet":null,"SID":{"BinaryLength":28,"AccountDomainSid":"S-1-5-21-1-2-3","Value":"S-1-5-21-1-2-3-1002"}}],"Count":1}\r\n';
    expect(parseLocalUsers(wrapped)).toEqual([
      { name: 'bob', sid: 'S-1-5-21-1-2-3-1002', enabled: true, passwordRequired: null, passwordLastSetMs: null, passwordExpiresMs: null, principalSource: null },
    ]);
  });

  it('gives no users for empty output', () => {
    expect(parseLocalUsers('  \r\n')).toEqual([]);
  });

  it.each([
    ['text that is not JSON', 'Get-LocalUser : The term is not recognized'],
    ['an item without Name', '[{"Enabled":true}]'],
    ['an item without Enabled', '[{"Name":"x"}]'],
    ['a string Enabled', '[{"Name":"x","Enabled":"True"}]'],
    ['a number', '42'],
    ['a bad date', '[{"Name":"x","Enabled":true,"PasswordLastSet":"soon"}]'],
  ])('refuses %s with CHK_ERR_PARSE', (_what, out) => {
    expect(thrownCode(() => parseLocalUsers(out))).toBe('CHK_ERR_PARSE');
  });
});

describe('windowsPasswords', () => {
  it('reports every account, judges enabled ones, and leaves online-account passwords out', () => {
    const users = parseLocalUsers(TWO_USERS);
    users.push(
      { name: 'newhire', sid: null, enabled: true, passwordRequired: true, passwordLastSetMs: null, passwordExpiresMs: null, principalSource: 'Local' },
      { name: 'msa', sid: null, enabled: true, passwordRequired: true, passwordLastSetMs: 1500000000000, passwordExpiresMs: null, principalSource: 'MicrosoftAccount' },
    );
    const { accounts, passwords } = windowsPasswords(users, NOW);
    expect(accounts.map((a) => [a.name, a.password, a.enabled, a.passwordExpires])).toEqual([
      ['Administrator', 'set', false, null],
      ['alice', 'set', true, '2026-08-02T00:00:00.000Z'],
      ['newhire', 'set', true, null],
      ['msa', 'external', true, null],
    ]);
    expect(passwords).toEqual([
      { account: 'Administrator', lastChanged: '2019-07-08T15:33:20.000Z', ageDays: 2693, active: false, mustChange: false },
      { account: 'alice', lastChanged: '2026-06-21T00:00:00.000Z', ageDays: 154, active: true, mustChange: false },
      { account: 'newhire', lastChanged: null, ageDays: null, active: true, mustChange: true, note: expect.stringContaining('next logon') },
    ]);
  });
});
