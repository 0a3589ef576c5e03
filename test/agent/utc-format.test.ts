// agent/utc-format.ts answers node-cron's two UTC formats without ICU. Every answer is held against
// the real Intl.DateTimeFormat (ICU) of this Node, part by part, and node-cron's next runs are the
// same with and without it.
import fc from 'fast-check';
import cron from 'node-cron';
import { afterEach, describe, expect, it } from 'vitest';
import { installUtcFormats, uninstallUtcFormats, utcFormatKind, utcParts } from '../../agent/utc-format.js';

const PARTS = { year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', weekday: 'short', hour12: false } as const;
const OFFSET = { timeZoneName: 'shortOffset' } as const;
const ZONES = ['UTC', 'Etc/UTC', 'GMT', 'Etc/GMT'];
const Real = Intl.DateTimeFormat;

/** Dates in the years answered here (1000–9999), to the millisecond, with midnights and year ends often. */
const dates = fc.oneof(
  fc.date({ min: new Date('1000-01-01T00:00:00.000Z'), max: new Date('9999-12-31T23:59:59.999Z'), noInvalidDate: true }),
  fc.integer({ min: 0, max: 400 * 365 }).map((d) => new Date(Date.UTC(1900, 0, 1) + d * 86_400_000)),
  fc.integer({ min: 1000, max: 9999 }).map((y) => new Date(Date.UTC(y, 11, 31, 23, 59, 59, 999))),
);

afterEach(() => {
  uninstallUtcFormats();
});

describe('utcParts', () => {
  it('gives exactly the parts ICU gives, for both formats and every UTC zone name', () => {
    fc.assert(
      fc.property(dates, fc.constantFrom(...ZONES), (date, timeZone) => {
        expect(utcParts('parts', date)).toEqual(new Real('en-US', { ...PARTS, timeZone }).formatToParts(date));
        expect(utcParts('offset', date)).toEqual(new Real('en-US', { ...OFFSET, timeZone }).formatToParts(date));
      }),
      { numRuns: 2000 },
    );
  });

  it('leaves years outside 1000–9999 and invalid dates to ICU', () => {
    for (const d of [new Date('0999-12-31T00:00:00Z'), new Date(Date.UTC(10000, 0, 1)), new Date(-8.64e15), new Date(NaN)]) {
      expect(utcParts('parts', d)).toBeNull();
      expect(utcParts('offset', d)).toBeNull();
    }
  });
});

describe('utcFormatKind', () => {
  it("recognises node-cron's two option sets in a UTC zone, and nothing else", () => {
    expect(utcFormatKind('en-US', { ...PARTS, timeZone: 'Etc/UTC' })).toBe('parts');
    expect(utcFormatKind('en-US', { timeZone: 'UTC', ...OFFSET })).toBe('offset');
    // node-cron leaves timeZone out for the local zone: that is ICU's to answer.
    expect(utcFormatKind('en-US', PARTS)).toBeNull();
    expect(utcFormatKind('en-US', { ...PARTS, timeZone: 'Europe/Paris' })).toBeNull();
    expect(utcFormatKind('en-GB', { ...PARTS, timeZone: 'UTC' })).toBeNull();
    expect(utcFormatKind(['en-US'], { ...PARTS, timeZone: 'UTC' })).toBeNull();
    expect(utcFormatKind('en-US', { ...PARTS, hour12: true, timeZone: 'UTC' })).toBeNull();
    expect(utcFormatKind('en-US', { ...PARTS, era: 'short', timeZone: 'UTC' })).toBeNull();
    expect(utcFormatKind('en-US', { year: 'numeric', timeZone: 'UTC' })).toBeNull();
    expect(utcFormatKind('en-US', undefined)).toBeNull();
  });
});

describe('installUtcFormats', () => {
  it('answers the two formats itself and passes everything else to the real DateTimeFormat', () => {
    installUtcFormats();
    expect(Intl.DateTimeFormat).not.toBe(Real);
    const date = new Date('2026-11-23T00:05:06.789Z');
    const parts = new Intl.DateTimeFormat('en-US', { ...PARTS, timeZone: 'Etc/UTC' });
    expect(parts).not.toBeInstanceOf(Real); // answered without ICU
    expect(parts.formatToParts(date)).toEqual(new Real('en-US', { ...PARTS, timeZone: 'Etc/UTC' }).formatToParts(date));
    expect(parts.format(date)).toBe(new Real('en-US', { ...PARTS, timeZone: 'Etc/UTC' }).format(date));
    expect(parts.formatToParts(date.getTime())).toEqual(parts.formatToParts(date));
    // What it does not answer itself, the real formatter does.
    expect(parts.resolvedOptions().timeZone).toBe(new Real('en-US', { timeZone: 'Etc/UTC' }).resolvedOptions().timeZone);
    expect(parts.formatToParts(new Date('0500-06-01T12:00:00Z'))).toEqual(new Real('en-US', { ...PARTS, timeZone: 'Etc/UTC' }).formatToParts(new Date('0500-06-01T12:00:00Z')));
    const other = new Intl.DateTimeFormat('de-DE', { dateStyle: 'long', timeZone: 'Europe/Berlin' });
    expect(other).toBeInstanceOf(Real);
    expect(other.format(date)).toBe(new Real('de-DE', { dateStyle: 'long', timeZone: 'Europe/Berlin' }).format(date));
    expect(Intl.DateTimeFormat.supportedLocalesOf(['en-US'])).toEqual(['en-US']);
    // Idempotent, and undone.
    const shim = Intl.DateTimeFormat;
    installUtcFormats();
    expect(Intl.DateTimeFormat).toBe(shim);
    uninstallUtcFormats();
    expect(Intl.DateTimeFormat).toBe(Real);
  });

  it("node-cron's next runs are the same with and without it", () => {
    const expressions = ['17 */5 * * * *', '0 0 * * * *', '30 59 23 * * *', '0 0 0 1 1 *', '5 4 3 29 2 *', '0 30 */6 * * 1-5'];
    const starts = [new Date('2026-11-22T23:59:59.500Z'), new Date('2028-02-28T23:59:00Z'), new Date('2026-12-31T23:59:59.999Z')];
    const nextRuns = () =>
      expressions.flatMap((e) =>
        starts.map((start) => {
          const task = cron.createTask(e, () => undefined, { timezone: 'Etc/UTC' });
          try {
            const walk: string[] = [];
            // node-cron's own "next run from": the walk every schedule uses.
            let at = start;
            for (let i = 0; i < 3; i++) {
              at = nextRunAfter(task, at);
              walk.push(at.toISOString());
            }
            return walk;
          } finally {
            void task.destroy();
          }
        }),
      );
    const withIcu = nextRuns();
    installUtcFormats();
    expect(nextRuns()).toEqual(withIcu);
  });
});

/** The next run node-cron computes for `task` after `from`. */
function nextRunAfter(task: ReturnType<typeof cron.createTask>, from: Date): Date {
  const timeMatcher = (task as unknown as { timeMatcher?: { getNextMatch(d: Date): Date } }).timeMatcher;
  if (timeMatcher === undefined) throw new Error('node-cron task has no timeMatcher: its internals changed; update this test');
  return timeMatcher.getNextMatch(from);
}
