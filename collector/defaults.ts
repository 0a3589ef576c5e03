// What the command line needs before it loads the collector: `vcm-collector verify`, run on an
// auditor's laptop, and `--help` load none of the collector's modules (zod, pino, prom-client, the
// store), which would cost them a third of a second and 30 MiB before any work.

/** Where the collector listens unless told otherwise. */
export const DEFAULT_LISTEN = '127.0.0.1:8470';

/** A vendor's name: the contract's vendorSchema and the command line both check it with this. */
export const VENDOR_NAME_RE = /^[a-z0-9][a-z0-9._-]{0,62}$/;
export const VENDOR_NAME_RULE = 'vendor names are lower case letters, digits, ".", "_" and "-" (max 63)';

/**
 * Text made safe for a terminal or a log line: control characters (ESC, OSC 52, CR, newlines, the
 * C1 set, line and paragraph separators) shown as \\uXXXX escapes, everything else as it is.
 */
export function escapeControls(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
