// Human output for findings: a plain table that fits a terminal.
import type { Finding } from '../checks/types.js';

function detail(f: Finding): string {
  if (f.reasons.length === 0) return f.status === 'pass' ? 'ok' : '';
  const first = f.reasons[0]!;
  const more = f.reasons.length > 1 ? ` (+${f.reasons.length - 1} more)` : '';
  return `${first.code}${first.subject === undefined ? '' : ` ${first.subject}`}: ${first.message}${more}`;
}

export function findingsTable(findings: readonly Finding[], extra?: (f: Finding) => string): string {
  const rows = findings.map((f) => [f.check, f.status.toUpperCase(), ...(extra === undefined ? [] : [extra(f)]), detail(f)]);
  const header = ['CHECK', 'STATUS', ...(extra === undefined ? [] : ['SENT']), 'DETAIL'];
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  return all.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ')).join('\n');
}
