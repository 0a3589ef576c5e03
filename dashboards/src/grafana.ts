// The vcm dashboards' panels, queries and variables, built with Grafana's Foundation SDK
// (@grafana/grafana-foundation-sdk, the Grafana 11.6 build: classic JSON model, schemaVersion 41).
// The SDK types and builds the JSON; this layer adds what the SDK leaves open: every panel gets
// the datasource variable, a title, a description and a unit from a closed list, tables, stats
// and bar gauges ask for the value now (instant queries) and time series for a range, and panels
// are laid out in rows. The lint tests in test/dashboards/ check the generated JSON all the same.
import type * as cog from '@grafana/grafana-foundation-sdk/cog';
import * as bargauge from '@grafana/grafana-foundation-sdk/bargauge';
import * as common from '@grafana/grafana-foundation-sdk/common';
import * as dash from '@grafana/grafana-foundation-sdk/dashboard';
import * as prometheus from '@grafana/grafana-foundation-sdk/prometheus';
import * as stat from '@grafana/grafana-foundation-sdk/stat';
import * as statetimeline from '@grafana/grafana-foundation-sdk/statetimeline';
import * as table from '@grafana/grafana-foundation-sdk/table';
import * as timeseries from '@grafana/grafana-foundation-sdk/timeseries';
import * as units from '@grafana/grafana-foundation-sdk/units';

/** The schema version the SDK writes: 41, the newest that Grafana 11.6 and every Grafana 12 know. */
export const SCHEMA_VERSION = dash.defaultDashboard().schemaVersion;

/** Grafana unit ids the dashboards use, by the SDK's names for them. */
export const UNITS = [
  units.PercentUnit,
  units.Short,
  units.NoUnit,
  units.Seconds,
  units.DurationSeconds,
  units.DatetimeISO,
  units.OpsPerSecond,
  units.BytesIEC,
] as const;
export type Unit = (typeof UNITS)[number];

export const DATASOURCE = { type: 'prometheus', uid: '${datasource}' } as const;
type DatasourceRef = typeof DATASOURCE;

// What the generated JSON holds, as Grafana and the tests read it: the SDK's types, with what this
// layer guarantees made required.

export type Target = Required<Pick<prometheus.dataquery, 'refId' | 'expr' | 'legendFormat' | 'instant' | 'range'>> & {
  datasource: DatasourceRef;
  format: `${prometheus.PromQueryFormat}`;
};

export type Panel = Omit<dash.Panel, 'type' | 'id' | 'title' | 'description' | 'gridPos' | 'datasource' | 'targets' | 'fieldConfig'> & {
  type: PanelType;
  id: number;
  title: string;
  description: string;
  gridPos: dash.GridPos;
  datasource: DatasourceRef;
  targets: Target[];
  fieldConfig: { defaults: dash.FieldConfig & { unit: Unit }; overrides: dash.FieldConfigSource['overrides'] };
};

type VariableJson = Omit<dash.VariableModel, 'type' | 'name' | 'datasource' | 'query'>;
export type DatasourceVariable = VariableJson & { type: 'datasource'; name: 'datasource'; query: 'prometheus' };
export type QueryVariable = VariableJson & { type: 'query'; name: string; datasource: DatasourceRef; query: { query: string; refId: string } };
export type Variable = DatasourceVariable | QueryVariable;

export type Dashboard = Omit<dash.Dashboard, 'uid' | 'title' | 'description' | 'templating' | 'panels'> & {
  uid: string;
  title: string;
  description: string;
  templating: { list: Variable[] };
  panels: Panel[];
};

// Variables.

function datasourceVariable(): dash.DatasourceVariableBuilder {
  return new dash.DatasourceVariableBuilder('datasource')
    .label('Data source')
    .type('prometheus')
    .hide(dash.VariableHide.DontHide)
    .regex('')
    .multi(false)
    .includeAll(false);
}

/**
 * A `label_values()` variable. Multi-select ones include "All" as `.+` (any value, new vendors
 * included) rather than a regex of every value Grafana saw when it last refreshed.
 */
export function labelValues(name: string, label: string, definition: string, opts: { multi: boolean }): dash.QueryVariableBuilder {
  const v = new dash.QueryVariableBuilder(name)
    .label(label)
    .datasource(DATASOURCE)
    .query({ query: definition, refId: 'PrometheusVariableQueryEditor-VariableQuery' })
    .refresh(dash.VariableRefresh.OnTimeRangeChanged)
    .multi(opts.multi)
    .includeAll(opts.multi)
    .sort(dash.VariableSort.AlphabeticalAsc)
    .hide(dash.VariableHide.DontHide)
    .regex('')
    .options([]);
  return opts.multi ? v.allValue('.+') : v;
}

// Panels.

export interface TargetSpec {
  expr: string;
  legend?: string;
}

interface BaseSpec {
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
  thresholds?: dash.Threshold[];
  /** Value mappings: value → text, colour and order. */
  mappings?: Record<string, dash.ValueMappingResult>;
  transformations?: dash.DataTransformerConfig[];
}

export interface StatSpec extends BaseSpec {
  type: 'stat';
  textMode?: common.BigValueTextMode;
  colorMode?: common.BigValueColorMode;
}

export interface BarGaugeSpec extends BaseSpec {
  type: 'bargauge';
  displayMode?: common.BarGaugeDisplayMode;
}

export interface TableSpec extends BaseSpec {
  type: 'table';
}

export interface TimeSeriesSpec extends BaseSpec {
  type: 'timeseries';
  /** Stacks the series (all in one group). */
  stacking?: common.StackingMode;
  fillOpacity?: number;
}

export interface StateTimelineSpec extends BaseSpec {
  type: 'state-timeline';
}

export type PanelSpec = StatSpec | BarGaugeSpec | TableSpec | TimeSeriesSpec | StateTimelineSpec;
export type PanelType = PanelSpec['type'];

const NEUTRAL: dash.Threshold[] = [{ color: 'text', value: null }];

/** States and their colours, the same on every dashboard: only pass is green. */
export const STATE_COLOURS = { pass: 'green', waived: 'blue', unknown: 'orange', stale: 'purple', fail: 'red' } as const;

/** The builder methods every panel type has (each SDK panel builder is its own class). */
interface AnyPanelBuilder extends cog.Builder<dash.Panel> {
  id(id: number): this;
  title(title: string): this;
  description(description: string): this;
  gridPos(gridPos: dash.GridPos): this;
  datasource(datasource: dash.DataSourceRef): this;
  withTarget(target: cog.Builder<cog.Dataquery>): this;
  unit(unit: string): this;
  min(min: number): this;
  max(max: number): this;
  decimals(decimals: number): this;
  mappings(mappings: dash.ValueMapping[]): this;
  thresholds(thresholds: cog.Builder<dash.ThresholdsConfig>): this;
  colorScheme(color: cog.Builder<dash.FieldColor>): this;
  withTransformation(transformation: dash.DataTransformerConfig): this;
}

/** What every panel gets: id, title, description, place, the datasource variable, its queries and field config. */
function basePanel<B extends AnyPanelBuilder>(b: B, s: PanelSpec, id: number, gridPos: dash.GridPos): B {
  const instant = s.type !== 'timeseries' && s.type !== 'state-timeline';
  const format = s.type === 'table' ? prometheus.PromQueryFormat.Table : prometheus.PromQueryFormat.TimeSeries;
  b.id(id).title(s.title).description(s.description).gridPos(gridPos).datasource(DATASOURCE);
  s.targets.forEach((t, j) => {
    const q = new prometheus.DataqueryBuilder()
      .refId(String.fromCharCode(65 + j))
      .datasource(DATASOURCE)
      .expr(t.expr)
      .legendFormat(t.legend ?? '')
      .format(format);
    b.withTarget(instant ? q.instant() : q.range());
  });
  b.unit(s.unit);
  if (s.min !== undefined) b.min(s.min);
  if (s.max !== undefined) b.max(s.max);
  if (s.decimals !== undefined) b.decimals(s.decimals);
  b.mappings(s.mappings === undefined ? [] : [{ type: dash.MappingType.ValueToText, options: s.mappings }]);
  b.thresholds(new dash.ThresholdsConfigBuilder().mode(dash.ThresholdsMode.Absolute).steps(s.thresholds ?? NEUTRAL));
  if (s.thresholds !== undefined || s.mappings !== undefined) b.colorScheme(new dash.FieldColorBuilder().mode(dash.FieldColorModeId.Thresholds));
  for (const t of s.transformations ?? []) b.withTransformation(t);
  return b;
}

const lastValue = () => new common.ReduceDataOptionsBuilder().calcs(['lastNotNull']).fields('').values(false);

function panel(s: PanelSpec, id: number, gridPos: dash.GridPos): cog.Builder<dash.Panel> {
  switch (s.type) {
    case 'stat':
      return basePanel(new stat.PanelBuilder(), s, id, gridPos)
        .reduceOptions(lastValue())
        .colorMode(s.colorMode ?? common.BigValueColorMode.Background)
        .graphMode(common.BigValueGraphMode.None)
        .justifyMode(common.BigValueJustifyMode.Auto)
        .textMode(s.textMode ?? common.BigValueTextMode.ValueAndName)
        .orientation(common.VizOrientation.Auto);
    case 'bargauge':
      return basePanel(new bargauge.PanelBuilder(), s, id, gridPos)
        .reduceOptions(lastValue())
        .displayMode(s.displayMode ?? common.BarGaugeDisplayMode.Basic)
        .orientation(common.VizOrientation.Horizontal)
        .showUnfilled(true);
    case 'table':
      return basePanel(new table.PanelBuilder(), s, id, gridPos).showHeader(true).cellHeight(common.TableCellHeight.Sm);
    case 'timeseries': {
      const b = basePanel(new timeseries.PanelBuilder(), s, id, gridPos)
        .legend(new common.VizLegendOptionsBuilder().displayMode(common.LegendDisplayMode.Table).placement(common.LegendPlacement.Right).showLegend(true).calcs(['lastNotNull']))
        .tooltip(new common.VizTooltipOptionsBuilder().mode(common.TooltipDisplayMode.Multi).sort(common.SortOrder.Descending));
      if (s.stacking !== undefined) b.stacking(new common.StackingConfigBuilder().mode(s.stacking).group('A'));
      if (s.fillOpacity !== undefined) b.fillOpacity(s.fillOpacity);
      return b;
    }
    case 'state-timeline':
      return basePanel(new statetimeline.PanelBuilder(), s, id, gridPos)
        .showValue(common.VisibilityMode.Never)
        .mergeValues(true)
        .alignValue(common.TimelineValueAlignment.Left)
        .rowHeight(0.9)
        .legend(new common.VizLegendOptionsBuilder().displayMode(common.LegendDisplayMode.List).placement(common.LegendPlacement.Bottom).showLegend(true));
  }
}

/**
 * Lays panels out left to right in rows 24 units wide, and numbers them. A panel that does not
 * fit on the current row starts the next one. (The SDK's own placement starts a new row only once
 * a row is full, and would push a panel past the right edge.)
 */
function layout(specs: PanelSpec[]): cog.Builder<dash.Panel>[] {
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
    return panel(s, i + 1, gridPos);
  });
}

/** Hides the labels a table should not show (Prometheus's own, and the raw time). */
export function organize(exclude: string[], rename: Record<string, string> = {}): dash.DataTransformerConfig {
  return { id: 'organize', options: { excludeByName: Object.fromEntries(['Time', 'job', 'instance', '__name__', ...exclude].map((k) => [k, true])), renameByName: rename, indexByName: {} } };
}

// Dashboards.

export function dashboard(d: { uid: string; title: string; description: string; variables: dash.QueryVariableBuilder[]; panels: PanelSpec[]; time?: string }): Dashboard {
  const b = new dash.DashboardBuilder(d.title)
    .uid(d.uid)
    .description(d.description)
    .tags(['vcm'])
    .timezone('browser')
    .editable()
    .tooltip(dash.DashboardCursorSync.Crosshair)
    .version(1)
    .refresh('1m')
    .time({ from: d.time ?? 'now-24h', to: 'now' })
    .withVariable(datasourceVariable());
  for (const v of d.variables) b.withVariable(v);
  b.annotations([]).link(new dash.DashboardLinkBuilder('vcm dashboards').type(dash.DashboardLinkType.Dashboards).tags(['vcm']).asDropdown(true).includeVars(true).keepTime(true));
  for (const p of layout(d.panels)) b.withPanel(p);
  return asJson(b.build());
}

/**
 * The built dashboard as JSON (what Grafana reads: no functions, no undefined), checked for what
 * this layer promises before it is typed so.
 */
function asJson(built: dash.Dashboard): Dashboard {
  const json = JSON.parse(JSON.stringify(built)) as dash.Dashboard;
  const same = (ds: dash.DataSourceRef | undefined) => ds?.type === DATASOURCE.type && ds.uid === DATASOURCE.uid;
  const fail = (what: string) => {
    throw new Error(`${json.uid}: ${what}`);
  };
  const list = json.templating.list ?? [];
  if (list.filter((v) => v.type === dash.VariableType.Datasource).length !== 1) fail('not one datasource variable');
  for (const v of list) if (v.type === dash.VariableType.Query && !same(v.datasource)) fail(`$${v.name} without the datasource variable`);
  for (const p of json.panels ?? []) {
    if (p.type === 'row') fail(`a row (${p.title}): this layer makes none`);
    const t = p as dash.Panel;
    if (!t.title || !t.description) fail(`panel ${t.id} without a title or description`);
    // The SDK types a query only as "some datasource's query"; these are Prometheus ones.
    const queries = (t.targets ?? []) as prometheus.dataquery[];
    if (!same(t.datasource) || queries.length === 0 || !queries.every((q) => same(q.datasource))) fail(`${t.title}: not every query on the datasource variable`);
    if (!(UNITS as readonly string[]).includes(t.fieldConfig?.defaults.unit ?? '')) fail(`${t.title}: unit outside the list`);
  }
  return json as unknown as Dashboard;
}
