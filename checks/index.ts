// The explicit list of checks. No side-effect registration: a check exists when it is listed here.
import { credentialAge } from './credential_age/index.js';
import { diskEncryption } from './disk_encryption/index.js';
import { openPorts } from './open_ports/index.js';
import { ssoCoverage } from './sso_coverage/index.js';
import { usbPolicy } from './usb_policy/index.js';
import { vpn } from './vpn/index.js';
import type { AnyCheck, Platform } from './types.js';

export const CHECKS: readonly AnyCheck[] = [vpn, diskEncryption, usbPolicy, credentialAge, ssoCoverage, openPorts];

export function checkById(id: string): AnyCheck | undefined {
  return CHECKS.find((c) => c.id === id);
}

/** The exact commands the given checks declare for a platform: the HostIO allow-list. */
export function allowListFor(checks: readonly AnyCheck[], platform: Platform): { command: string; args: readonly string[] }[] {
  return checks.flatMap((c) =>
    (c.sources[platform] ?? []).flatMap((s) => (s.kind === 'command' ? [{ command: s.command, args: s.args }] : [])),
  );
}
