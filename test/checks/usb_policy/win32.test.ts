// The Windows script and parser of usb_policy.
import { describe, expect, it } from 'vitest';
import { usbPolicy } from '../../../checks/usb_policy/index.js';
import { parseUsbPolicyOutput, POWERSHELL, USB_POLICY_ARGS, USB_POLICY_SCRIPT } from '../../../checks/usb_policy/win32.js';
import type { CommandResult } from '../../../checks/types.js';
import { thrownCode as codeOf } from '../../helpers/check-errors.js';

const ok = (stdout: string): CommandResult => ({ stdout, stderr: '', exitCode: 0 });

describe('the PowerShell script', () => {
  it('is declared exactly as it is run', () => {
    expect(usbPolicy.sources.win32).toEqual([expect.objectContaining({ kind: 'command', command: POWERSHELL, args: USB_POLICY_ARGS })]);
    expect(USB_POLICY_ARGS).toEqual(['-NoProfile', '-NonInteractive', '-Command', USB_POLICY_SCRIPT]);
  });

  it('reads every value the verdict needs and prints compressed JSON', () => {
    for (const needle of [
      "'HKLM:\\SYSTEM\\CurrentControlSet\\Services\\USBSTOR' 'Start'",
      "'HKLM:\\SOFTWARE\\Policies\\Microsoft\\Windows\\RemovableStorageDevices'",
      "'\\{53f5630d-b6bf-11d0-94f2-00a0c91efb8b}'",
      "'Deny_All'",
      "'Deny_Read'",
      "'Deny_Write'",
      "'Deny_Execute'",
      'Win32_SystemDriver',
      'ConvertTo-Json -Depth 5 -Compress',
    ]) {
      expect(USB_POLICY_SCRIPT).toContain(needle);
    }
  });

  it('uses no double quotes and no newlines, which powershell.exe -Command mangles', () => {
    expect(USB_POLICY_SCRIPT).not.toMatch(/["\n\r]/);
  });

  it('keeps braces balanced and never separates a try block from its catch with a semicolon', () => {
    let depth = 0;
    for (const ch of USB_POLICY_SCRIPT) {
      if (ch === '{') depth++;
      if (ch === '}') depth--;
      expect(depth).toBeGreaterThanOrEqual(0);
    }
    expect(depth).toBe(0);
    expect(USB_POLICY_SCRIPT).not.toMatch(/}\s*;\s*catch/);
  });
});

describe('parsing the script output', () => {
  const full =
    '{"usbstorStart":{"v":4,"s":"ok"},"denyAll":{"s":"missing"},"denyRead":{"s":"denied"},"denyWrite":{"v":"1","s":"ok"},' +
    '"denyExecute":{"s":"error","e":"System.IO.IOException"},"driver":{"startMode":"Disabled","s":"ok","state":"Stopped"}}\r\n';

  it('maps every status and keeps non-numbers as text', () => {
    expect(parseUsbPolicyOutput(ok(full))).toEqual({
      platform: 'win32',
      usbstorStart: { status: 'set', value: 4, error: null },
      denyAll: { status: 'missing', value: null, error: null },
      removableDisks: {
        denyRead: { status: 'denied', value: null, error: null },
        denyWrite: { status: 'set', value: '1', error: null },
        denyExecute: { status: 'error', value: null, error: 'System.IO.IOException' },
      },
      driver: { status: 'ok', state: 'Stopped', startMode: 'Disabled', error: null },
    });
  });

  it('keeps a value that is present but empty as set', () => {
    const out = full.replace('{"v":4,"s":"ok"}', '{"v":null,"s":"ok"}').replace('"driver":{"startMode":"Disabled","s":"ok","state":"Stopped"}', '"driver":{"s":"missing"}');
    const f = parseUsbPolicyOutput(ok(out));
    expect(f.usbstorStart).toEqual({ status: 'set', value: '', error: null });
    expect(f.driver).toEqual({ status: 'missing', state: null, startMode: null, error: null });
  });

  it('answers unknown for a failed run, no output, or output of another shape', () => {
    expect(codeOf(() => parseUsbPolicyOutput({ stdout: '', stderr: 'Program blocked by group policy', exitCode: 1 }))).toBe('CHK_ERR_COMMAND_FAILED');
    expect(codeOf(() => parseUsbPolicyOutput(ok('')))).toBe('CHK_ERR_PARSE');
    expect(codeOf(() => parseUsbPolicyOutput(ok('Start : 4\r\n')))).toBe('CHK_ERR_PARSE');
    expect(codeOf(() => parseUsbPolicyOutput(ok('[{"usbstorStart":{"s":"ok"}}]')))).toBe('CHK_ERR_PARSE');
    expect(codeOf(() => parseUsbPolicyOutput(ok(full.replace('"s":"missing"', '"s":"absent"'))))).toBe('CHK_ERR_PARSE');
  });
});
