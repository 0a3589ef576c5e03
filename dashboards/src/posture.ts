// Vendor posture: per vendor and control, the share of hosts passing, with fail, unknown, stale
// and waived counted apart (never as passing), the trend, who fails now, and expiring exceptions.
import { BarGaugeDisplayMode, StackingMode } from '@grafana/grafana-foundation-sdk/common';
import { dashboard, labelValues, organize, type Dashboard } from './grafana.js';
import { RULES } from './names.js';

const VC = 'vendor=~"$vendor",control=~"$control"';
const STATES = ['pass', 'fail', 'unknown', 'stale', 'waived'] as const;
const DAY = 86_400;

export function posture(): Dashboard {
  return dashboard({
    uid: 'vcm-posture',
    title: 'vcm / Vendor posture',
    description: 'Per vendor and control: hosts passing, failing, unknown, stale and waived. A silent host is stale, never passing.',
    variables: [
      labelValues('vendor', 'Vendor', 'label_values(vcm_control_hosts, vendor)', { multi: true }),
      labelValues('control', 'Control', 'label_values(vcm_control_hosts{vendor=~"$vendor"}, control)', { multi: true }),
    ],
    panels: [
      {
        type: 'bargauge',
        title: 'Hosts passing, by vendor and control',
        description:
          'Share of a vendor\'s hosts whose latest result for the control passes under the collector\'s policy. The denominator counts every host the control applies to: failing, unknown, stale (silent, or never reported) and waived hosts all count against it.',
        unit: 'percentunit',
        min: 0,
        max: 1,
        thresholds: [{ color: 'red', value: null }, { color: 'orange', value: 0.9 }, { color: 'green', value: 1 }],
        targets: [{ expr: `${RULES.stateRatio}{state="pass",${VC}}`, legend: '{{vendor}} / {{control}}' }],
        w: 12,
        h: 10,
        displayMode: BarGaugeDisplayMode.Lcd,
      },
      {
        type: 'table',
        title: 'Hosts by state',
        description: 'Hosts per vendor, control and state, each state in its own column: pass, fail, unknown, stale and waived (a failure covered by an unexpired exception).',
        unit: 'short',
        targets: STATES.map((state) => ({ expr: `sum by (vendor, control) (vcm_control_hosts{state="${state}",${VC}})` })),
        transformations: [
          { id: 'merge', options: {} },
          organize([], Object.fromEntries(STATES.map((s, i) => [`Value #${String.fromCharCode(65 + i)}`, s]))),
        ],
        w: 12,
        h: 10,
      },
      {
        type: 'stat',
        title: 'Host controls not passing, by state',
        description: 'Host and control pairs in each non-passing state across the selected vendors and controls.',
        unit: 'short',
        targets: [{ expr: `sum by (state) (vcm_control_hosts{state!="pass",${VC}})`, legend: '{{state}}' }],
        thresholds: [{ color: 'green', value: null }, { color: 'red', value: 1 }],
        w: 24,
        h: 4,
      },
      {
        type: 'timeseries',
        title: 'Hosts passing over time',
        description: 'The passing share per vendor and control over the selected range (the recorded ratio; unknown, stale and waived hosts count against it).',
        unit: 'percentunit',
        min: 0,
        max: 1,
        targets: [{ expr: `${RULES.stateRatio}{state="pass",${VC}}`, legend: '{{vendor}} / {{control}}' }],
        w: 12,
        h: 9,
      },
      {
        type: 'timeseries',
        title: 'Host controls not passing over time, by state',
        description: 'Host and control pairs per non-passing state over the selected range, stacked.',
        unit: 'short',
        targets: [{ expr: `sum by (state) (vcm_control_hosts{state!="pass",${VC}})`, legend: '{{state}}' }],
        stacking: StackingMode.Normal,
        fillOpacity: 30,
        w: 12,
        h: 9,
      },
      {
        type: 'table',
        title: 'Failing now, and for how long',
        description:
          'Hosts whose control fails now (not waived), with how long it has failed without a break: since the first result of its unbroken run of failing results, as the collector knows it from the evidence (it survives restarts of the collector and of Prometheus).',
        unit: 'dtdurations',
        targets: [{ expr: `sort_desc(time() - vcm_control_failing_since_timestamp_seconds{${VC}})` }],
        transformations: [organize([], { Value: 'failing for' })],
        w: 12,
        h: 10,
      },
      {
        type: 'bargauge',
        title: 'Controls with most failures',
        description: 'Failing hosts per control across the selected vendors, the ten highest.',
        unit: 'short',
        targets: [{ expr: `topk(10, sum by (control) (vcm_control_hosts{state="fail",${VC}}))`, legend: '{{control}}' }],
        thresholds: [{ color: 'green', value: null }, { color: 'red', value: 1 }],
        w: 6,
        h: 10,
      },
      {
        type: 'table',
        title: 'Exceptions expiring within 14 days',
        description: 'Policy exceptions whose waiver ends within 14 days, with the time left. When one expires, the failures it covered count as failing again.',
        unit: 'dtdurations',
        targets: [{ expr: `sort((vcm_exception_expiry_timestamp_seconds{${VC}} - time()) > 0 < ${14 * DAY})` }],
        transformations: [organize([], { Value: 'expires in', exception_id: 'exception' })],
        thresholds: [{ color: 'red', value: null }, { color: 'orange', value: 7 * DAY }],
        w: 6,
        h: 10,
      },
    ],
  });
}
