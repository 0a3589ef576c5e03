// The audit bundle's human report: one self-contained HTML file (inline CSS, inline SVG charts, no
// script, nothing fetched), and its PDF, printed by headless Chromium.
// The charts use Vega-Lite because a chart is then a short declarative spec (data and encodings, no
// drawing code) that compiles to Vega, which renders SVG headless in Node with neither a browser nor
// a canvas. Both are well kept, widely used projects with typed APIs.
import { spawn } from 'node:child_process';
import { accessSync, constants as fsConstants, statSync } from 'node:fs';
import { mkdtemp, open, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import type { CheckId } from '../../checks/types.js';
import type { AuditCell, AuditDefect, AuditException, AuditModel, ControlState } from './model.js';

// ---------------------------------------------------------------------------------------------
// Text helpers. Every string that comes from the model goes through esc() (or through Vega's own
// SVG escaping, for the axis labels inside a chart).

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Escapes text for HTML content and for double- or single-quoted attribute values. */
function esc(value: string | number | boolean): string {
  return String(value).replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]!);
}

const ISO_UTC = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2}(?:\.\d+)?)Z$/;

/** An ISO time as "2026-11-01 01:00:00 UTC" (milliseconds shown when not zero; anything else shown as it is), escaped. */
function timeText(iso: string): string {
  const m = ISO_UTC.exec(iso);
  return esc(m ? `${m[1]} ${m[2]!.replace(/\.0+$/, '')} UTC` : iso);
}

function time(iso: string | null, none = 'never'): string {
  if (iso === null) return `<span class="none">${esc(none)}</span>`;
  return `<time datetime="${esc(iso)}">${timeText(iso)}</time>`;
}

/** 1234567 as "1,234,567", the same on every machine whatever its locale. */
function num(n: number): string {
  if (!Number.isFinite(n)) return esc(String(n));
  const [int, frac] = String(Math.abs(n)).split('.');
  const grouped = int!.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return `${n < 0 ? '-' : ''}${grouped}${frac === undefined ? '' : `.${frac}`}`;
}

/** A duration in its two largest units: "3 d 4 h", "4 h 12 min", "12 min 5 s", "45 s". */
function humanDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return String(seconds);
  const s = Math.round(seconds);
  const units: [string, number][] = [['d', 86_400], ['h', 3_600], ['min', 60], ['s', 1]];
  const parts: string[] = [];
  let rest = s;
  for (const [name, size] of units) {
    const n = Math.floor(rest / size);
    rest -= n * size;
    if (n > 0 || parts.length > 0) parts.push(`${n} ${name}`);
    if (parts.length === 2) break;
  }
  const shown = parts.filter((p) => !p.startsWith('0 '));
  return shown.length > 0 ? shown.join(' ') : '0 s';
}

const AGENT_PREFIX = 12;
/** A host as its name, with the first hex digits of its agent id under it (names need not be unique). */
function host(hostname: string, agentId: string): string {
  return `<span class="free">${esc(hostname)}</span><br><code class="agent" title="${esc(agentId)}">${esc(agentId.slice(0, AGENT_PREFIX))}</code>`;
}

const CONTROL_TITLES: Record<CheckId, string> = {
  vpn: 'VPN',
  disk_encryption: 'Disk encryption',
  usb_policy: 'USB storage policy',
  credential_age: 'Credential age',
  sso_coverage: 'SSO coverage',
  open_ports: 'Open ports',
};

function controlTitle(control: string): string {
  const title = (CONTROL_TITLES as Record<string, string | undefined>)[control];
  return title === undefined ? esc(control) : `${esc(title)} <code>${esc(control)}</code>`;
}

function controlName(control: string): string {
  return `<code class="ctl">${esc(control)}</code>`;
}

// ---------------------------------------------------------------------------------------------
// States: five series, kept apart, in fixed colours (the same in the charts, the legend and the
// tables' badges). Stacked from the bottom in this order.

const STATES: readonly ControlState[] = ['pass', 'fail', 'unknown', 'stale', 'waived'];
const STATE_COLOURS: Record<ControlState, string> = {
  pass: '#2e7d32',
  fail: '#c62828',
  unknown: '#ef8f00',
  stale: '#757575',
  waived: '#6a3d9a',
};

function badge(state: string): string {
  const known = (STATES as readonly string[]).includes(state);
  return `<span class="badge${known ? ` s-${state}` : ''}">${esc(state)}</span>`;
}

// ---------------------------------------------------------------------------------------------
// Charts.

const DAY_MS = 86_400_000;
/** A bound on the days one chart draws, whatever the period says (a year and some). */
const MAX_DAYS = 400;
const CHART_WIDTH = 600;
const CHART_HEIGHT = 120;

// Vega measures label text with node-canvas when that happens to be installed, and estimates it
// otherwise; estimating always makes the SVG the same on every machine.
(vega as unknown as { textMetrics?: { canvas?: (use: boolean) => void } }).textMetrics?.canvas?.(false);

/** The UTC days the charts cover: the period's (up to the export, when it had not ended), and any day a tally names. */
function chartDays(model: AuditModel): string[] {
  const days = new Set<string>();
  const from = Date.parse(model.period.from);
  let end = Date.parse(model.period.to);
  const exported = Date.parse(model.exportedAt);
  if (!model.period.ended && Number.isFinite(exported) && exported < end) end = exported + 1;
  if (Number.isFinite(from) && Number.isFinite(end)) {
    const start = from - (((from % DAY_MS) + DAY_MS) % DAY_MS);
    for (let t = start; t < end && days.size < MAX_DAYS; t += DAY_MS) days.add(new Date(t).toISOString().slice(0, 10));
  }
  for (const t of model.tallies) days.add(t.day);
  return [...days].sort();
}

interface ChartRow {
  day: string;
  state: ControlState;
  hosts: number;
  order: number;
}

function chartSpec(rows: ChartRow[], days: string[], yMax: number): TopLevelSpec {
  const every = Math.max(1, Math.ceil(days.length / 16));
  const labelled = days.filter((_, i) => i % every === 0);
  return {
    width: CHART_WIDTH,
    height: CHART_HEIGHT,
    background: 'white',
    padding: 4,
    config: { font: 'sans-serif', view: { stroke: '#ddd' }, axis: { labelFontSize: 10, titleFontSize: 10 }, legend: { labelFontSize: 10 } },
    data: { values: rows },
    mark: { type: 'bar' },
    encoding: {
      x: {
        field: 'day',
        type: 'ordinal',
        title: null,
        scale: { domain: days, paddingInner: 0.15 },
        axis: { values: labelled, labelAngle: -45, labelOverlap: false },
      },
      y: {
        field: 'hosts',
        type: 'quantitative',
        stack: 'zero',
        title: 'hosts',
        scale: { domain: [0, yMax], nice: false },
        axis: { tickMinStep: 1, format: 'd' },
      },
      color: {
        field: 'state',
        type: 'nominal',
        title: null,
        scale: { domain: [...STATES], range: STATES.map((s) => STATE_COLOURS[s]) },
        legend: { orient: 'top', direction: 'horizontal', symbolType: 'square' },
      },
      order: { field: 'order', type: 'quantitative' },
    },
  };
}

/** Gives a chart's SVG ids (clip paths, gradients) a prefix of its own: unique in the page, the same on every run. */
function scopeSvgIds(svg: string, prefix: string): string {
  const ids = new Map<string, string>();
  for (const m of svg.matchAll(/\sid="([^"]*)"/g)) {
    if (!ids.has(m[1]!)) ids.set(m[1]!, `${prefix}-${ids.size + 1}`);
  }
  if (ids.size === 0) return svg;
  return svg.replace(/(\sid="|url\(#|href="#)([^")]*)/g, (all, lead: string, id: string) => {
    const scoped = ids.get(id);
    return scoped === undefined ? all : lead + scoped;
  });
}

async function renderChart(model: AuditModel, control: string, days: string[], yMax: number, index: number): Promise<string> {
  const perDay = new Map<string, Record<ControlState, number>>();
  for (const t of model.tallies) {
    if (t.control !== control) continue;
    const sum = perDay.get(t.day) ?? { pass: 0, fail: 0, unknown: 0, waived: 0, stale: 0 };
    for (const s of STATES) sum[s] += t.counts[s] ?? 0;
    perDay.set(t.day, sum);
  }
  const rows: ChartRow[] = [];
  for (const day of days) {
    const counts = perDay.get(day);
    if (counts === undefined) continue;
    STATES.forEach((state, order) => {
      if (counts[state] > 0) rows.push({ day, state, hosts: counts[state], order });
    });
  }
  const quiet = vega.logger(vega.Error);
  const { spec } = compile(chartSpec(rows, days, yMax), { logger: quiet });
  const view = new vega.View(vega.parse(spec), { renderer: 'none', logger: quiet, logLevel: vega.Error });
  try {
    return scopeSvgIds(await view.toSVG(), `chart${index}`);
  } finally {
    view.finalize();
  }
}

// ---------------------------------------------------------------------------------------------
// Sections.

function table(head: string[], rows: string[][], cls = ''): string {
  const th = head.map((h) => `<th>${h}</th>`).join('');
  const body = rows.map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join('')}</tr>`).join('\n');
  return `<table${cls ? ` class="${cls}"` : ''}><thead><tr>${th}</tr></thead><tbody>\n${body}\n</tbody></table>`;
}

function opt(v: string | number | undefined): string {
  return v === undefined ? '<span class="none">—</span>' : typeof v === 'number' ? num(v) : esc(v);
}

function defectRows(defects: AuditDefect[]): string[][] {
  return defects.map((d) => [
    `<code>${esc(d.code)}</code>`,
    `<span class="free">${esc(d.message)}</span>`,
    d.file === undefined ? opt(undefined) : `<code>${esc(d.file)}</code>`,
    opt(d.logIndex),
    d.agentId === undefined ? opt(undefined) : `<code class="id">${esc(d.agentId)}</code>`,
    opt(d.seq),
  ]);
}

function verificationSection(model: AuditModel): string {
  const v = model.verification;
  if (v === null) {
    return `<section id="verification" class="verification unverified">
<h2>Verification: <strong>not verified</strong></h2>
<p>No verification was run for this bundle. Until a verifier checks its signatures, log proofs and files, what it holds is the collector's claim.</p>
</section>`;
  }
  const head = v.verified
    ? `<h2>Verification: <strong>verified</strong></h2>`
    : `<h2>Verification: <strong>not verified</strong> — ${num(v.defects.length)} defect${v.defects.length === 1 ? '' : 's'}</h2>`;
  const who = `<p>Checked by ${esc(v.by)} at ${time(v.at)}.</p>`;
  const defects =
    v.defects.length === 0
      ? `<p>No defects found.</p>`
      : table(['Code', 'What', 'File', 'Log index', 'Agent', 'Seq'], defectRows(v.defects), 'defects');
  return `<section id="verification" class="verification ${v.verified && v.defects.length === 0 ? 'verified' : 'failed'}">
${head}
${who}
${defects}
</section>`;
}

function periodText(model: AuditModel): string {
  const p = model.period;
  const range = `${time(p.from)} to ${time(p.to)} <span class="note">(results collected in it, whenever delivered; the end excluded)</span>`;
  if (p.ended) return range;
  return `${range}<br><strong class="warn">Not ended: exported before the period ended, up to ${time(model.exportedAt)}.</strong>`;
}

function headerSection(model: AuditModel): string {
  const log = model.log;
  const start = log.start === null
    ? `the log's beginning (size ${num(log.startSize)})`
    : `size ${num(log.start.size)}, root <code class="id">${esc(log.start.rootHash)}</code> (<code>${esc(log.start.file.path)}</code>)`;
  const rows: [string, string][] = [
    ['Vendor', `<strong>${esc(model.vendor)}</strong>`],
    ['Period', periodText(model)],
    ['Generator', esc(model.generator)],
    ['Exported at', time(model.exportedAt)],
    ['Collector', `${esc(model.collector.origin)}`],
    ['Collector key fingerprint', `<code class="id">${esc(model.collector.fingerprint)}</code> (<code>${esc(model.collector.key.path)}</code>)`],
    ['Log range', `entries ${num(log.startSize)} to ${num(log.endSize)} (<code>${esc(log.entries.path)}</code>); start checkpoint: ${start}`],
    [
      'End checkpoint',
      `size ${num(log.end.size)}, issued ${time(log.end.issuedAt)}<br>root <code class="id">${esc(log.end.rootHash)}</code> (<code>${esc(log.end.file.path)}</code>)`,
    ],
  ];
  return `<header>
<h1>Audit report: ${esc(model.vendor)}</h1>
<dl class="facts">
${rows.map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`).join('\n')}
</dl>
</header>`;
}

function nothingSent(model: AuditModel): boolean {
  return model.hosts.every((h) => h.results === 0) && model.cells.every((c) => c.results === 0);
}

function silenceNotice(model: AuditModel): string {
  if (!nothingSent(model)) return '';
  const who = model.hosts.length === 0 ? 'No host was enrolled for this vendor, and none sent anything' : `No host sent anything in this period (${num(model.hosts.length)} enrolled)`;
  return `<section id="silence" class="notice">
<h2>${who}.</h2>
<p>This silence is itself the evidence: an enrolled agent that runs sends results all the time, so a period without any means the controls were not monitored. It does not mean they passed.</p>
</section>`;
}

function summarySection(model: AuditModel): string {
  const results = model.hosts.reduce((n, h) => n + h.results, 0);
  const sending = model.hosts.filter((h) => h.results > 0).length;
  const open = model.failures.filter((f) => f.open).length;
  const unexplainedSilences = model.silences.filter((s) => s.explanation === null).length;
  const unexplainedGaps = model.gaps.filter((g) => g.explanation === null).length;
  const items: [string, string][] = [
    ['Hosts', `${num(model.hosts.length)} (${num(sending)} sent results)`],
    ['Results', num(results)],
    ['Controls', num(model.controls.length)],
    ['Failures', `${num(model.failures.length)} (${num(open)} open at the end)`],
    ['Silent hosts', `${num(model.silences.length)} (${num(unexplainedSilences)} unexplained)`],
    ['Chain gaps', `${num(model.gaps.length)} (${num(unexplainedGaps)} unexplained)`],
    ['Exceptions', num(model.exceptions.length)],
    ['Policy versions', num(model.policyVersions.length)],
  ];
  return `<section id="summary">
<h2>At a glance</h2>
<dl class="glance">
${items.map(([k, v]) => `<div><dt>${k}</dt><dd>${v}</dd></div>`).join('\n')}
</dl>
</section>`;
}

/** The controls to show: the model's, then any other its cells or tallies name, in first-seen order. */
function allControls(model: AuditModel): string[] {
  const seen = new Set<string>(model.controls);
  for (const x of [...model.cells, ...model.tallies]) seen.add(x.control);
  return [...seen];
}

async function controlsSection(model: AuditModel, controls: string[]): Promise<string> {
  const days = chartDays(model);
  let yMax = Math.max(1, model.hosts.length);
  for (const t of model.tallies) yMax = Math.max(yMax, STATES.reduce((n, s) => n + (t.counts[s] ?? 0), 0));
  const parts: string[] = [];
  for (const [i, control] of controls.entries()) {
    const svg = await renderChart(model, control, days, yMax, i + 1);
    const ending: Record<ControlState, number> = { pass: 0, fail: 0, unknown: 0, waived: 0, stale: 0 };
    for (const c of model.cells) if (c.control === control && c.lastState in ending) ending[c.lastState]++;
    const endText = STATES.map((s) => `${num(ending[s])} ${s}`).join(', ');
    parts.push(`<section class="control" id="control-${esc(control)}">
<h3>${controlTitle(control)}</h3>
<p>At the ${model.period.ended ? "period's end" : 'export'}: ${endText}.</p>
<figure class="chart" data-control="${esc(control)}">
${svg}
<figcaption>${esc(control)}: hosts per UTC day, by the state each ended the day in.</figcaption>
</figure>
</section>`);
  }
  return `<section id="controls">
<h2>Compliance per control</h2>
<p class="note">Each bar is one UTC day: how many hosts ended it passing, failing, unknown (the check could not tell), stale (no fresh result) or waived (a failure an exception in force covered). The five are counted apart and never folded into pass; a day without a bar has no tally.</p>
${parts.join('\n')}
</section>`;
}

function cellsSection(cells: AuditCell[]): string {
  if (cells.length === 0) return `<section id="cells"><h2>Hosts and controls</h2><p>No host and control had anything to show.</p></section>`;
  const rows = cells.map((c) => [
    host(c.hostname, c.agentId),
    controlName(c.control),
    badge(c.lastState),
    num(c.results),
    num(c.pass),
    num(c.fail),
    num(c.unknown),
    num(c.waived),
    time(c.lastSeen),
  ]);
  return `<section id="cells">
<h2>Hosts and controls</h2>
<p class="note">Last state: at the period's end, or at the export for a period not ended (stale: the last result is too old). Counts are results in the period; waived failures are counted as waived, not as fail. Under each host name, the first ${AGENT_PREFIX} hex digits of its agent id; the host list gives them in full.</p>
${table(['Host', 'Control', 'Last state', 'Results', 'Pass', 'Fail', 'Unknown', 'Waived', 'Last seen'], rows, 'cells num-cols')}
</section>`;
}

function explanation(text: string | null): string {
  return text === null ? '<strong class="unexplained">unexplained</strong>' : `<span class="free">${esc(text)}</span>`;
}

function failuresSection(model: AuditModel, byId: Map<string, AuditException>): string {
  const body =
    model.failures.length === 0
      ? '<p>No failures in the period.</p>'
      : table(
          ['Host', 'Control', 'First seen', 'Last seen', 'Duration', 'Status', 'Waived by'],
          model.failures.map((f) => {
            const ex = f.exceptionId === null ? undefined : byId.get(f.exceptionId);
            const waivedBy =
              f.exceptionId === null
                ? '<span class="none">not waived</span>'
                : `<code>${esc(f.exceptionId)}</code>${ex === undefined ? ' <span class="warn">(not among the exceptions below)</span>' : ` (approved by ${esc(ex.approver)})`}`;
            return [
              host(f.hostname, f.agentId),
              controlName(f.control),
              time(f.firstSeen),
              time(f.lastSeen),
              esc(humanDuration(f.durationSeconds)),
              f.open ? '<strong class="open">open</strong>' : 'closed',
              waivedBy,
            ];
          }),
          'failures',
        );
  return `<section id="failures">
<h2>Failures</h2>
<p class="note">A failure runs from a host's first failing result for a control to its next result that is not a failure; open: still failing at the period's end.</p>
${body}
</section>`;
}

function silencesSection(model: AuditModel): string {
  const silences =
    model.silences.length === 0
      ? '<p>No host was silent for longer than its freshness allows.</p>'
      : table(
          ['Host', 'From', 'To', 'Length', 'Explanation'],
          model.silences.map((s) => {
            const secs = (Date.parse(s.to) - Date.parse(s.from)) / 1000;
            return [host(s.hostname, s.agentId), time(s.from), time(s.to), esc(Number.isFinite(secs) ? humanDuration(secs) : '?'), explanation(s.explanation)];
          }),
          'silences',
        );
  const gaps =
    model.gaps.length === 0
      ? '<p>No gaps: the collector received every sequence number of every agent.</p>'
      : table(
          ['Host', 'Missing seqs', 'Count', 'Explanation'],
          model.gaps.map((g) => [
            host(g.hostname, g.agentId),
            `${num(g.fromSeq)}–${num(g.toSeq)}`,
            num(g.toSeq - g.fromSeq + 1),
            explanation(g.explanation),
          ]),
          'gaps',
        );
  return `<section id="silences">
<h2>Silent hosts</h2>
${silences}
<h2>Chain gaps</h2>
<p class="note">Sequence numbers an agent used that the collector never received.</p>
${gaps}
</section>`;
}

function exceptionsSection(model: AuditModel): string {
  const body =
    model.exceptions.length === 0
      ? '<p>No exceptions were in force: no failure was waived.</p>'
      : table(
          ['Id', 'Control', 'Hosts', 'Justification', 'Approver', 'Expires', 'Policy versions', 'Waived results'],
          model.exceptions.map((e) => [
            `<code>${esc(e.id)}</code>`,
            controlName(e.control),
            `<code>${esc(e.hosts)}</code>`,
            `<span class="free">${esc(e.justification)}</span>`,
            `<span class="free">${esc(e.approver)}</span>`,
            time(e.expires) + (Date.parse(e.expires) < Date.parse(model.period.to) ? ' <span class="warn">(before the period’s end)</span>' : ''),
            e.policyVersions.length === 0 ? opt(undefined) : e.policyVersions.map((v) => num(v)).join(', '),
            num(e.waivedResults),
          ]),
          'exceptions',
        );
  return `<section id="exceptions">
<h2>Waivers (exceptions)</h2>
${body}
</section>`;
}

function policySection(model: AuditModel): string {
  const body =
    model.policyVersions.length === 0
      ? '<p>No policy version is in the bundle.</p>'
      : table(
          ['Version', 'Created', 'File', 'SHA-256'],
          model.policyVersions.map((p) => [num(p.version), time(p.createdAt), `<code>${esc(p.file.path)}</code>`, `<code class="id">${esc(p.file.sha256)}</code>`]),
          'policies',
        );
  return `<section id="policies">
<h2>Policy versions</h2>
${body}
</section>`;
}

function hostsSection(model: AuditModel): string {
  const body =
    model.hosts.length === 0
      ? '<p>No host was enrolled for this vendor.</p>'
      : table(
          ['Host', 'Agent id', 'OS', 'Agent version', 'Enrolled', 'Revoked', 'First seen', 'Last seen', 'Results'],
          model.hosts.map((h) => [
            `<span class="free">${esc(h.hostname)}</span>`,
            `<code class="id">${esc(h.agentId)}</code>`,
            esc(h.os),
            esc(h.agentVersion),
            time(h.enrolledAt),
            time(h.revokedAt, 'not revoked'),
            time(h.firstSeen, 'sent nothing'),
            time(h.lastSeen, 'sent nothing'),
            num(h.results),
          ]),
          'hosts',
        );
  return `<section id="hosts">
<h2>Hosts</h2>
${body}
</section>`;
}

const CSS = `
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { font: 10.5pt/1.4 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: #111; margin: 0 auto; padding: 16px; max-width: 1100px; -webkit-print-color-adjust: exact; print-color-adjust: exact; }
h1 { font-size: 18pt; margin: 0 0 8px; }
h2 { font-size: 13pt; margin: 18px 0 6px; border-bottom: 1px solid #ccc; }
h3 { font-size: 11pt; margin: 12px 0 4px; }
code { font: 9pt ui-monospace, "DejaVu Sans Mono", monospace; }
code.id { word-break: break-all; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 0; }
dl.facts dt { font-weight: 600; }
dl.facts dd { margin: 0; overflow-wrap: anywhere; }
dl.glance { display: flex; flex-wrap: wrap; gap: 6px 20px; margin: 0; }
dl.glance dt { font-size: 8.5pt; color: #555; }
dl.glance dd { margin: 0; font-weight: 600; }
.verification { border: 3px solid; padding: 6px 12px; margin: 12px 0; }
.verification h2 { border: 0; margin: 4px 0; font-size: 15pt; }
.verified { border-color: #2e7d32; background: #edf7ee; }
.failed, .unverified { border-color: #c62828; background: #fdecea; }
.notice { border: 2px solid #757575; background: #f3f3f3; padding: 6px 12px; margin: 12px 0; }
.notice h2 { border: 0; }
.warn, .open, .unexplained { color: #b71c1c; }
.note { color: #444; font-size: 9pt; }
.none { color: #777; }
table { border-collapse: collapse; width: 100%; font-size: 9pt; margin: 4px 0 10px; }
th, td { border: 1px solid #ccc; padding: 2px 5px; text-align: left; vertical-align: top; overflow-wrap: break-word; }
.free { overflow-wrap: anywhere; }
code.agent { font-size: 8pt; color: #555; }
.badge, code.ctl { white-space: nowrap; }
th { background: #f0f0f0; }
thead { display: table-header-group; }
table.num-cols td:nth-child(n+4):nth-child(-n+8) { text-align: right; }
.badge { display: inline-block; padding: 0 6px; border-radius: 3px; color: #fff; background: #333; font-size: 8.5pt; }
.s-pass { background: ${STATE_COLOURS.pass}; }
.s-fail { background: ${STATE_COLOURS.fail}; }
.s-unknown { background: ${STATE_COLOURS.unknown}; }
.s-stale { background: ${STATE_COLOURS.stale}; }
.s-waived { background: ${STATE_COLOURS.waived}; }
figure.chart { margin: 4px 0 10px; }
figure.chart svg { display: block; max-width: 100%; height: auto; }
figcaption { font-size: 8.5pt; color: #444; }
footer { margin-top: 20px; font-size: 8.5pt; color: #555; }
@page { size: A4; margin: 14mm 12mm; }
@media print {
  body { font-size: 9pt; padding: 0; max-width: none; }
  tr, figure, .verification, .notice, dl.facts, .control { break-inside: avoid; page-break-inside: avoid; }
  h2, h3 { break-after: avoid; page-break-after: avoid; }
  table { font-size: 8pt; }
}
`;

/** The report: one HTML document, the same bytes for the same model. */
export async function renderReport(model: AuditModel): Promise<string> {
  const controls = allControls(model);
  const byId = new Map(model.exceptions.map((e) => [e.id, e] as const));
  const body = [
    headerSection(model),
    verificationSection(model),
    silenceNotice(model),
    summarySection(model),
    await controlsSection(model, controls),
    cellsSection(model.cells),
    failuresSection(model, byId),
    silencesSection(model),
    exceptionsSection(model),
    policySection(model),
    hostsSection(model),
    `<footer>Rendered from the bundle's audit model by ${esc(model.generator)}. The bundle's files, named above with their SHA-256, are the evidence; this report is a reading of them.</footer>`,
  ]
    .filter((s) => s !== '')
    .join('\n');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Audit report: ${esc(model.vendor)}, ${esc(model.period.from.slice(0, 10))} to ${esc(model.period.to.slice(0, 10))}</title>
<style>${CSS}</style>
</head>
<body>
${body}
</body>
</html>
`;
}

// ---------------------------------------------------------------------------------------------
// PDF.

function isExecutableFile(file: string): boolean {
  try {
    if (!statSync(file).isFile()) return false;
    accessSync(file, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The Chromium to print with: $VCM_CHROMIUM when set, else chromium, chromium-browser or google-chrome on PATH. */
export function findChromium(): string | null {
  const fromEnv = process.env.VCM_CHROMIUM;
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  const dirs = (process.env.PATH ?? '').split(path.delimiter).filter((d) => d !== '');
  for (const name of ['chromium', 'chromium-browser', 'google-chrome']) {
    for (const dir of dirs) {
      const candidate = path.join(dir, name);
      if (isExecutableFile(candidate)) return candidate;
    }
  }
  return null;
}

const DEFAULT_PRINT_TIMEOUT_MS = 60_000;
const STDERR_KEEP = 64 * 1024;

interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  stderr: string;
  error?: Error;
}

function runChromium(command: string, args: string[], timeoutMs: number): Promise<RunResult> {
  return new Promise((resolve) => {
    let stderr = '';
    let timedOut = false;
    let settled = false;
    // Its own process group, so that on a timeout the browser and its helpers go together.
    const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
    const finish = (r: Omit<RunResult, 'stderr' | 'timedOut'>) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ ...r, timedOut, stderr });
    };
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }, timeoutMs);
    child.stderr.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-STDERR_KEEP);
    });
    child.once('error', (error) => finish({ code: null, signal: null, error }));
    child.once('close', (code, signal) => finish({ code, signal }));
  });
}

/** The last lines of Chromium's stderr that say something (its D-Bus complaints in a container do not). */
function stderrTail(stderr: string): string {
  const lines = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.includes('dbus') && !l.includes('bytes written to file'));
  return lines.slice(-5).join(' | ');
}

/**
 * Prints `htmlFile` to `pdfFile` (A4, as the report's print CSS asks) with headless Chromium, in a
 * throwaway profile and with its background networking off. Never throws: when Chromium is
 * missing, fails or takes longer than `timeoutMs`, it says why.
 */
export async function printPdf(
  htmlFile: string,
  pdfFile: string,
  opts: { chromium?: string; timeoutMs?: number } = {},
): Promise<{ ok: true } | { ok: false; reason: string }> {
  let profile: string | undefined;
  try {
    const chromium = opts.chromium ?? findChromium();
    if (chromium === null) {
      return { ok: false, reason: 'Chromium not found: set VCM_CHROMIUM, or put chromium, chromium-browser or google-chrome on PATH' };
    }
    if (chromium.includes('/') && !isExecutableFile(chromium)) {
      return { ok: false, reason: `Chromium not found: ${chromium} is not an executable file` };
    }
    const html = path.resolve(htmlFile);
    const pdf = path.resolve(pdfFile);
    try {
      if (!(await stat(html)).isFile()) return { ok: false, reason: `${html} is not a file` };
    } catch (err) {
      return { ok: false, reason: `cannot read ${html}: ${(err as Error).message}` };
    }
    const timeoutMs = opts.timeoutMs ?? DEFAULT_PRINT_TIMEOUT_MS;
    profile = await mkdtemp(path.join(tmpdir(), 'vcm-chromium-'));
    // So that a PDF from an earlier run is never taken for this one.
    await rm(pdf, { force: true });
    const args = [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-dev-shm-usage',
      '--no-first-run',
      '--no-default-browser-check',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-extensions',
      `--user-data-dir=${profile}`,
      '--no-pdf-header-footer',
      `--print-to-pdf=${pdf}`,
      pathToFileURL(html).href,
    ];
    const run = await runChromium(chromium, args, timeoutMs);
    if (run.error !== undefined) return { ok: false, reason: `cannot run Chromium (${chromium}): ${run.error.message}` };
    if (run.timedOut) return { ok: false, reason: `Chromium did not finish printing within ${timeoutMs} ms` };
    if (run.code !== 0) {
      const how = run.code === null ? `was killed by ${run.signal ?? 'a signal'}` : `exited with ${run.code}`;
      const tail = stderrTail(run.stderr);
      return { ok: false, reason: `Chromium ${how}${tail ? `: ${tail}` : ''}` };
    }
    let head: Buffer;
    try {
      const fh = await open(pdf, 'r');
      try {
        head = Buffer.alloc(5);
        const { bytesRead } = await fh.read(head, 0, 5, 0);
        head = head.subarray(0, bytesRead);
      } finally {
        await fh.close();
      }
    } catch {
      const tail = stderrTail(run.stderr);
      return { ok: false, reason: `Chromium exited without writing ${pdf}${tail ? `: ${tail}` : ''}` };
    }
    if (head.toString('latin1') !== '%PDF-') return { ok: false, reason: `${pdf} is not a PDF` };
    return { ok: true };
  } catch (err) {
    return { ok: false, reason: `printing failed: ${(err as Error).message}` };
  } finally {
    if (profile !== undefined) await rm(profile, { recursive: true, force: true }).catch(() => undefined);
  }
}
