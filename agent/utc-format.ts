// UTC date parts for node-cron without ICU.
//
// node-cron 4 computes every next run by formatting dates with Intl.DateTimeFormat, in UTC too.
// The first DateTimeFormat a process makes maps ICU's locale and time zone data: +9.6 MiB of idle
// RSS for the daemon's whole life (7.5 MiB of data pages, 2.1 MiB of heap), a third of what the
// agent adds to a bare Node. In UTC the two formats node-cron asks for are plain arithmetic on a
// Date's UTC fields. installUtcFormats() answers exactly those two (en-US, a UTC zone, the option
// sets below, years 1000–9999) and hands every other request, and every other method, to the real
// DateTimeFormat. test/agent/utc-format.test.ts holds the answers to the real ones, part by part.

const UTC_ZONES = new Set(['UTC', 'Etc/UTC', 'GMT', 'Etc/GMT']);
const PARTS_OPTIONS = ['year:numeric', 'month:2-digit', 'day:2-digit', 'hour:2-digit', 'minute:2-digit', 'second:2-digit', 'weekday:short', 'hour12:false'];
const OFFSET_OPTIONS = ['timeZoneName:shortOffset'];
const WEEKDAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];

type Kind = 'parts' | 'offset';
type Part = Intl.DateTimeFormatPart;

/** Which of node-cron's two formats these arguments ask for, or null for anything else. */
export function utcFormatKind(locales: unknown, options: unknown): Kind | null {
  if (locales !== 'en-US' || typeof options !== 'object' || options === null) return null;
  const { timeZone, ...rest } = options as Record<string, unknown>;
  if (typeof timeZone !== 'string' || !UTC_ZONES.has(timeZone)) return null;
  const given = Object.entries(rest)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}:${String(v)}`)
    .sort();
  const same = (want: string[]) => given.length === want.length && [...want].sort().every((w, i) => w === given[i]);
  return same(PARTS_OPTIONS) ? 'parts' : same(OFFSET_OPTIONS) ? 'offset' : null;
}

const pad2 = (n: number) => String(n).padStart(2, '0');
const lit = (value: string): Part => ({ type: 'literal', value });

/** The parts ICU gives for `kind` in UTC, or null outside the years answered here. */
export function utcParts(kind: Kind, date: Date): Part[] | null {
  const year = date.getUTCFullYear();
  if (!(year >= 1000 && year <= 9999)) return null; // also NaN: an invalid date
  // The offset format asks for no date fields, and ICU's default date has them numeric: "1/2/2026".
  const digits = kind === 'parts' ? pad2 : String;
  const dateParts: Part[] = [
    { type: 'month', value: digits(date.getUTCMonth() + 1) },
    lit('/'),
    { type: 'day', value: digits(date.getUTCDate()) },
    lit('/'),
    { type: 'year', value: String(year) },
    lit(', '),
  ];
  if (kind === 'offset') return [...dateParts, { type: 'timeZoneName', value: 'GMT+0' }];
  return [
    { type: 'weekday', value: WEEKDAYS[date.getUTCDay()]! },
    lit(', '),
    ...dateParts,
    // en-US with hour12:false is ICU's h24 cycle: midnight reads "24".
    { type: 'hour', value: pad2(date.getUTCHours() === 0 ? 24 : date.getUTCHours()) },
    lit(':'),
    { type: 'minute', value: pad2(date.getUTCMinutes()) },
    lit(':'),
    { type: 'second', value: pad2(date.getUTCSeconds()) },
  ];
}

type DateTimeFormatConstructor = typeof Intl.DateTimeFormat;

let installed: { real: DateTimeFormatConstructor; shim: DateTimeFormatConstructor } | null = null;

/**
 * Makes `Intl.DateTimeFormat` answer node-cron's two UTC formats without ICU. Idempotent; the
 * daemon calls it before it schedules anything.
 */
export function installUtcFormats(): void {
  if (installed !== null && Intl.DateTimeFormat === installed.shim) return;
  const real = Intl.DateTimeFormat;

  class UtcDateTimeFormat {
    readonly #kind: Kind;
    readonly #args: [unknown, unknown];
    #fallback: Intl.DateTimeFormat | null = null;
    constructor(kind: Kind, locales: unknown, options: unknown) {
      this.#kind = kind;
      this.#args = [locales, options];
    }
    /** The real formatter, made only when asked something this one does not answer. */
    #real(): Intl.DateTimeFormat {
      return (this.#fallback ??= new real(...(this.#args as [string, Intl.DateTimeFormatOptions])));
    }
    formatToParts(date?: Date | number): Part[] {
      const d = date === undefined ? new Date() : new Date(date);
      return utcParts(this.#kind, d) ?? this.#real().formatToParts(d);
    }
    format(date?: Date | number): string {
      return this.formatToParts(date)
        .map((p) => p.value)
        .join('');
    }
    resolvedOptions(): Intl.ResolvedDateTimeFormatOptions {
      return this.#real().resolvedOptions();
    }
  }

  const shim = function DateTimeFormat(locales?: unknown, options?: unknown) {
    const kind = utcFormatKind(locales, options);
    if (kind !== null) return new UtcDateTimeFormat(kind, locales, options);
    return new real(locales as string, options as Intl.DateTimeFormatOptions);
  } as unknown as DateTimeFormatConstructor;
  Object.defineProperty(shim, 'supportedLocalesOf', { value: real.supportedLocalesOf.bind(real), writable: true, configurable: true });
  Object.defineProperty(shim, 'prototype', { value: real.prototype });
  Intl.DateTimeFormat = shim;
  installed = { real, shim };
}

/** Puts the real `Intl.DateTimeFormat` back (tests). */
export function uninstallUtcFormats(): void {
  if (installed === null) return;
  if (Intl.DateTimeFormat === installed.shim) Intl.DateTimeFormat = installed.real;
  installed = null;
}
