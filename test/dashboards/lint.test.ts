// A dashboard lint after the rules of grafana/dashboard-linter (which cannot run here), on the
// generated JSON model: one datasource variable used by every panel, query and variable; a title,
// a description and a valid unit on every panel; $__rate_interval in rates; counters only inside
// rates; and every query, with its variables substituted, parsed by promtool.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { DASHBOARDS } from '../../dashboards/src/index.js';
import type { Dashboard, QueryVariable } from '../../dashboards/src/grafana.js';
import { toYaml } from '../../dashboards/src/yaml.js';
import { promtool, requirePrometheus } from '../helpers/prometheus.js';
import { isCounterName, metricUses, panelTargets, substitute } from './promql.js';

// Unit ids from Grafana's value formats (packages/grafana-data/src/valueFormats/categories.ts).
const GRAFANA_UNITS = new Set([
  'none', 'short', 'percent', 'percentunit', 'humidity', 'decibel', 'hex', 'hex0x', 'sci', 'locale', 'pixel',
  'ns', 'µs', 'ms', 's', 'm', 'h', 'd', 'dtdurationms', 'dtdurations', 'dthms', 'dtdhms', 'timeticks', 'clockms', 'clocks',
  'dateTimeAsIso', 'dateTimeAsIsoNoDateIfToday', 'dateTimeAsUS', 'dateTimeAsUSNoDateIfToday', 'dateTimeAsLocal', 'dateTimeFromNow',
  'bytes', 'decbytes', 'bits', 'decbits', 'kbytes', 'mbytes', 'gbytes', 'Bps', 'binBps', 'bps', 'binbps',
  'cps', 'ops', 'reqps', 'rps', 'wps', 'iops', 'eventsps', 'mps', 'opm', 'rpm', 'wpm', 'cpm', 'reqpm',
  'bool', 'bool_yes_no', 'bool_on_off', 'string',
]);

// The JSON as Grafana reads it, not the builder's objects.
const dashboards: Dashboard[] = Object.values(DASHBOARDS).map((make) => JSON.parse(JSON.stringify(make())) as Dashboard);

describe.each(dashboards.map((d) => [d.title, d] as const))('%s', (_title, d) => {
  it('has one datasource variable, and every panel, query and variable uses it', () => {
    const ds = d.templating.list.filter((v) => v.type === 'datasource');
    expect(ds).toHaveLength(1);
    expect(ds[0]).toMatchObject({ name: 'datasource', query: 'prometheus' });
    for (const p of d.panels) {
      expect(p.datasource, p.title).toEqual({ type: 'prometheus', uid: '${datasource}' });
      for (const t of p.targets) expect(t.datasource, `${p.title} ${t.refId}`).toEqual({ type: 'prometheus', uid: '${datasource}' });
    }
    for (const v of d.templating.list.filter((x): x is QueryVariable => x.type === 'query')) expect(v.datasource, v.name).toEqual({ type: 'prometheus', uid: '${datasource}' });
  });

  it('gives every panel a title, a description and a valid unit, and at least one query', () => {
    expect(d.panels.length).toBeGreaterThan(0);
    for (const p of d.panels) {
      expect(p.title.trim(), `panel ${p.id}`).not.toBe('');
      expect(p.description.trim().length, p.title).toBeGreaterThan(20);
      expect(GRAFANA_UNITS.has(p.fieldConfig.defaults.unit), `${p.title}: unit ${p.fieldConfig.defaults.unit}`).toBe(true);
      expect(p.targets.length, p.title).toBeGreaterThan(0);
    }
  });

  it('uses $__rate_interval in every rate and increase, and names counters only inside one', () => {
    let counted = 0;
    for (const { panel, target } of panelTargets([d])) {
      for (const use of metricUses(target.expr)) {
        if (use.range !== null) expect(use.range, `${panel.title}: ${target.expr}`).toBe('$__rate_interval');
        if (isCounterName(use.name)) {
          counted++;
          expect(['rate', 'increase', 'irate'], `${panel.title}: ${use.name} outside a rate in ${target.expr}`).toContain(use.calls[0]);
        }
      }
    }
    // Not a count to keep equal: the collector dashboard must hold counters for this to prove anything.
    if (d.uid === 'vcm-collector') expect(counted).toBeGreaterThan(0);
  });

  it('has unique panel ids, refIds per panel, and panels inside the 24-column grid without overlap', () => {
    const ids = d.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    const cells = new Set<string>();
    for (const p of d.panels) {
      expect(new Set(p.targets.map((t) => t.refId)).size, p.title).toBe(p.targets.length);
      expect(p.gridPos.x + p.gridPos.w, p.title).toBeLessThanOrEqual(24);
      for (let x = p.gridPos.x; x < p.gridPos.x + p.gridPos.w; x++) {
        for (let y = p.gridPos.y; y < p.gridPos.y + p.gridPos.h; y++) {
          expect(cells.has(`${x},${y}`), `${p.title} overlaps at ${x},${y}`).toBe(false);
          cells.add(`${x},${y}`);
        }
      }
    }
  });

  it('reads with a schemaVersion current Grafana migrates from, and a stable uid', () => {
    expect(d.schemaVersion).toBeGreaterThanOrEqual(36);
    expect(d.uid).toMatch(/^vcm-[a-z-]+$/);
    expect(d.uid.length).toBeLessThanOrEqual(40);
  });
});

describe('the lint itself', () => {
  it('finds a counter outside a rate, and a rate without $__rate_interval', () => {
    expect(metricUses('vcm_ingest_envelopes_total{outcome="accepted"}')).toEqual([{ name: 'vcm_ingest_envelopes_total', calls: [], range: null }]);
    expect(metricUses('sum by (reason) (rate(vcm_ingest_rejected_total{job=~"$job"}[5m]))')).toEqual([{ name: 'vcm_ingest_rejected_total', calls: ['rate', 'sum'], range: '5m' }]);
    expect(metricUses('a / ignoring (state) group_left () sum without (state) (b)').map((u) => u.name)).toEqual(['a', 'b']);
  });
});

describe('every panel and variable query parses', () => {
  let work: string;
  let ok = false;
  beforeAll(async () => {
    ok = requirePrometheus();
    work = await mkdtemp(path.join(tmpdir(), 'vcm-dash-lint-'));
    return () => rm(work, { recursive: true, force: true });
  });

  it('through promtool, with Grafana variables substituted as Grafana sends them', async (ctx) => {
    if (!ok) return ctx.skip();
    const s = { vars: { vendor: ['acme', 'globex'], control: ['vpn'], host: ['acme-1'], job: ['vcm-collector'] }, rateInterval: '2m', interval: '30s', range: '6h' };
    const exprs: { where: string; expr: string }[] = [];
    for (const { dashboard, panel, target } of panelTargets(dashboards)) exprs.push({ where: `${dashboard.uid} / ${panel.title} / ${target.refId}`, expr: substitute(target.expr, s) });
    for (const d of dashboards) {
      for (const v of d.templating.list.filter((x): x is QueryVariable => x.type === 'query')) {
        // label_values(selector, label) is Grafana's: Prometheus sees the selector (on /api/v1/series).
        const m = /^label_values\((.*), (\w+)\)$/.exec(v.query.query);
        expect(m, `${d.uid} $${v.name}`).not.toBeNull();
        exprs.push({ where: `${d.uid} $${v.name}`, expr: substitute(m![1]!, s) });
      }
    }
    for (const e of exprs) expect(e.expr, e.where).not.toMatch(/\$/);
    // promtool parses rule expressions: one recording rule per query.
    const file = path.join(work, 'queries.yml');
    await writeFile(file, toYaml({ groups: [{ name: 'dashboard-queries', rules: exprs.map((e, i) => ({ record: `dashboard:query:${i}`, expr: e.expr })) }] }));
    const res = await promtool(['check', 'rules', file]);
    expect(res.stdout + res.stderr, exprs.map((e, i) => `${i}: ${e.where}`).join('\n')).toContain(`SUCCESS: ${exprs.length} rules found`);
    expect(res.code).toBe(0);
    // And promtool refuses a broken one, or the check above proves nothing.
    await writeFile(file, toYaml({ groups: [{ name: 'broken', rules: [{ record: 'dashboard:query:0', expr: 'sum by (vendor (vcm_control_hosts)' }] }] }));
    expect((await promtool(['check', 'rules', file])).code).not.toBe(0);
  });
});
