// Typed builders for Grafana's classic dashboard JSON model (schemaVersion 39), limited to what
// the vcm dashboards use. Every panel gets the datasource variable, a description and a unit by
// construction; the lint tests in test/dashboards/ check the generated JSON all the same.

export const SCHEMA_VERSION = 39;

/** Grafana unit ids the dashboards use (Grafana's own names: Misc, Time, Throughput, Data). */
export const UNITS = ['percentunit', 'short', 'none', 's', 'dtdurations', 'dateTimeAsIso', 'ops', 'bytes'] as const;
export type Unit = (typeof UNITS)[number];

export const DATASOURCE = { type: 'prometheus', uid: '${datasource}' } as const;
type DatasourceRef = typeof DATASOURCE;

export interface Target {
  refId: string;
  datasource: DatasourceRef;
  expr: string;
  legendFormat: string;
  /** Instant queries for tables, stats and bar gauges (the value now); range ones for time series. */
  instant: boolean;
  range: boolean;
  format: 'time_series' | 'table';
}

export interface GridPos {
  x: number;
  y: number;
  w: number;
  h: number;
}

export type PanelType = 'stat' | 'bargauge' | 'table' | 'timeseries' | 'state-timeline';

export interface ValueMapping {
  type: 'value';
  options: Record<string, { text: string; color: string; index: number }>;
}

export interface Threshold {
  color: string;
  value: number | null;
}

export interface Panel {
  id: number;
  type: PanelType;
  title: string;
  description: string;
  gridPos: GridPos;
  datasource: DatasourceRef;
  targets: Target[];
  fieldConfig: {
    defaults: {
      unit: Unit;
      min?: number;
      max?: number;
      decimals?: number;
      mappings: ValueMapping[];
      thresholds: { mode: 'absolute'; steps: Threshold[] };
      color?: { mode: string };
      custom?: Record<string, unknown>;
    };
    overrides: unknown[];
  };
  options: Record<string, unknown>;
  transformations?: { id: string; options: Record<string, unknown> }[];
}

export interface DatasourceVariable {
  name: 'datasource';
  label: string;
  type: 'datasource';
  query: 'prometheus';
  current: Record<string, never>;
  hide: 0;
  refresh: 1;
  regex: '';
  multi: false;
  includeAll: false;
  options: [];
}

export interface QueryVariable {
  name: string;
  label: string;
  type: 'query';
  datasource: DatasourceRef;
  definition: string;
  query: { query: string; refId: string };
  refresh: 2;
  multi: boolean;
  includeAll: boolean;
  allValue?: string;
  sort: 1;
  current: Record<string, never>;
  hide: 0;
  regex: '';
  options: [];
}

export type Variable = DatasourceVariable | QueryVariable;

export interface Dashboard {
  uid: string;
  title: string;
  description: string;
  tags: string[];
  timezone: 'browser';
  editable: true;
  graphTooltip: 1;
  schemaVersion: typeof SCHEMA_VERSION;
  version: 1;
  refresh: string;
  time: { from: string; to: string };
  templating: { list: Variable[] };
  annotations: { list: unknown[] };
  links: { title: string; type: 'dashboards'; tags: string[]; asDropdown: boolean; includeVars: boolean; keepTime: boolean }[];
  panels: Panel[];
}

export function datasourceVariable(): DatasourceVariable {
  return { name: 'datasource', label: 'Data source', type: 'datasource', query: 'prometheus', current: {}, hide: 0, refresh: 1, regex: '', multi: false, includeAll: false, options: [] };
}

/**
 * A `label_values()` variable. Multi-select ones include "All" as `.+` (any value, new vendors
 * included) rather than a regex of every value Grafana saw when it last refreshed.
 */
export function labelValues(name: string, label: string, definition: string, opts: { multi: boolean }): QueryVariable {
  return {
    name,
    label,
    type: 'query',
    datasource: DATASOURCE,
    definition,
    query: { query: definition, refId: 'PrometheusVariableQueryEditor-VariableQuery' },
    refresh: 2,
    multi: opts.multi,
    includeAll: opts.multi,
    ...(opts.multi ? { allValue: '.+' } : {}),
    sort: 1,
    current: {},
    hide: 0,
    regex: '',
    options: [],
  };
}

export interface TargetSpec {
  expr: string;
  legend?: string;
}

export interface PanelSpec {
  type: PanelType;
  title: string;
  description: string;
  unit: Unit;
  /** Queries, refIds A, B, … in order. */
  targets: TargetSpec[];
  w: number;
  h: number;
  min?: number;
  max?: number;
  decimals?: number;
  thresholds?: Threshold[];
  mappings?: ValueMapping['options'];
  options?: Record<string, unknown>;
  transformations?: Panel['transformations'];
  custom?: Record<string, unknown>;
}

const NEUTRAL: Threshold[] = [{ color: 'text', value: null }];

/** States and their colours, the same on every dashboard: only pass is green. */
export const STATE_COLOURS = { pass: 'green', waived: 'blue', unknown: 'orange', stale: 'purple', fail: 'red' } as const;

/**
 * Lays panels out left to right in rows 24 units wide, and numbers them. A panel that does not
 * fit on the current row starts the next one.
 */
export function layout(specs: PanelSpec[]): Panel[] {
  let x = 0;
  let y = 0;
  let rowH = 0;
  return specs.map((s, i) => {
    if (x + s.w > 24) {
      x = 0;
      y += rowH;
      rowH = 0;
    }
    const gridPos = { x, y, w: s.w, h: s.h };
    x += s.w;
    rowH = Math.max(rowH, s.h);
    const instant = s.type !== 'timeseries' && s.type !== 'state-timeline';
    const table = s.type === 'table';
    const panel: Panel = {
      id: i + 1,
      type: s.type,
      title: s.title,
      description: s.description,
      gridPos,
      datasource: DATASOURCE,
      targets: s.targets.map((t, j) => ({
        refId: String.fromCharCode(65 + j),
        datasource: DATASOURCE,
        expr: t.expr,
        legendFormat: t.legend ?? '',
        instant,
        range: !instant,
        format: table ? 'table' : 'time_series',
      })),
      fieldConfig: {
        defaults: {
          unit: s.unit,
          ...(s.min === undefined ? {} : { min: s.min }),
          ...(s.max === undefined ? {} : { max: s.max }),
          ...(s.decimals === undefined ? {} : { decimals: s.decimals }),
          mappings: s.mappings === undefined ? [] : [{ type: 'value', options: s.mappings }],
          thresholds: { mode: 'absolute', steps: s.thresholds ?? NEUTRAL },
          ...(s.thresholds === undefined && s.mappings === undefined ? {} : { color: { mode: 'thresholds' } }),
          ...(s.custom === undefined ? {} : { custom: s.custom }),
        },
        overrides: [],
      },
      options: { ...defaultOptions(s.type), ...s.options },
      ...(s.transformations === undefined ? {} : { transformations: s.transformations }),
    };
    return panel;
  });
}

function defaultOptions(type: PanelType): Record<string, unknown> {
  const reduce = { reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false } };
  switch (type) {
    case 'stat':
      return { ...reduce, colorMode: 'background', graphMode: 'none', justifyMode: 'auto', textMode: 'value_and_name', orientation: 'auto' };
    case 'bargauge':
      return { ...reduce, displayMode: 'basic', orientation: 'horizontal', showUnfilled: true };
    case 'table':
      return { showHeader: true, cellHeight: 'sm' };
    case 'timeseries':
      return { legend: { displayMode: 'table', placement: 'right', showLegend: true, calcs: ['lastNotNull'] }, tooltip: { mode: 'multi', sort: 'desc' } };
    case 'state-timeline':
      return { showValue: 'never', mergeValues: true, alignValue: 'left', rowHeight: 0.9, legend: { displayMode: 'list', placement: 'bottom', showLegend: true } };
  }
}

/** Hides the labels a table should not show (Prometheus's own, and the raw time). */
export function organize(exclude: string[], rename: Record<string, string> = {}): { id: string; options: Record<string, unknown> } {
  return { id: 'organize', options: { excludeByName: Object.fromEntries(['Time', 'job', 'instance', '__name__', ...exclude].map((k) => [k, true])), renameByName: rename, indexByName: {} } };
}

export function dashboard(d: { uid: string; title: string; description: string; variables: Variable[]; panels: PanelSpec[]; time?: string }): Dashboard {
  return {
    uid: d.uid,
    title: d.title,
    description: d.description,
    tags: ['vcm'],
    timezone: 'browser',
    editable: true,
    graphTooltip: 1,
    schemaVersion: SCHEMA_VERSION,
    version: 1,
    refresh: '1m',
    time: { from: d.time ?? 'now-24h', to: 'now' },
    templating: { list: [datasourceVariable(), ...d.variables] },
    annotations: { list: [] },
    links: [{ title: 'vcm dashboards', type: 'dashboards', tags: ['vcm'], asDropdown: true, includeVars: true, keepTime: true }],
    panels: layout(d.panels),
  };
}
