// Human output for findings: a plain table that fits a terminal.
import type { Finding } from '../checks/types.js';
import { paintStatus, type Paint } from './terminal.js';

function detail(f: Finding): string {
  if (f.reasons.length === 0) return f.status === 'pass' ? 'ok' : '';
  const first = f.reasons[0]!;
  const more = f.reasons.length > 1 ? ` (+${f.reasons.length - 1} more)` : '';
  return `${first.code}${first.subject === undefined ? '' : ` ${first.subject}`}: ${first.message}${more}`;
}

/** The table; with `paint`, the status column is coloured (after padding, so columns stay aligned). */
export function findingsTable(findings: readonly Finding[], extra?: (f: Finding) => string, paint?: Paint): string {
  const rows = findings.map((f) => [f.check, f.status.toUpperCase(), ...(extra === undefined ? [] : [extra(f)]), detail(f)]);
  const header = ['CHECK', 'STATUS', ...(extra === undefined ? [] : ['SENT']), 'DETAIL'];
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  return all
    .map((r, row) =>
      r
        .map((cell, i) => {
          const padded = i === r.length - 1 ? cell : cell.padEnd(widths[i]!);
          return row > 0 && i === 1 && paint !== undefined ? padded.replace(cell, paintStatus(paint, cell)) : padded;
        })
        .join('  '),
    )
    .join('\n');
}
