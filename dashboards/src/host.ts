// One host: its six controls' states and result ages, the agent's version and OS, and the
// delivery and chain health of its agent: the holes in its own chain, and the vendor's gap and
// spool-drop rates.
import { BigValueColorMode, BigValueTextMode } from '@grafana/grafana-foundation-sdk/common';
import { dashboard, labelValues, organize, STATE_COLOURS, type Dashboard, type PanelSpec } from './grafana.js';

const H = 'vendor="$vendor",host="$host"';
const HC = `${H},control=~"$control"`;

/** Each state as a number, so that a state timeline can colour it: only pass is green. */
export const STATE_CODES = { pass: 0, waived: 1, unknown: 2, stale: 3, fail: 4 } as const;

const stateMappings: NonNullable<PanelSpec['mappings']> = Object.fromEntries(
  Object.entries(STATE_CODES).map(([state, code]) => [String(code), { text: state, color: STATE_COLOURS[state as keyof typeof STATE_COLOURS], index: code }]),
);

/** The host's controls, each as the code of its current state. */
export const stateCodeExpr = `max by (control) (${Object.entries(STATE_CODES)
  .map(([state, code]) => `vcm_control_state{${HC},state="${state}"} * ${code}`)
  .join(' or ')})`;

export function host(): Dashboard {
  return dashboard({
    uid: 'vcm-host',
    title: 'vcm / Host',
    description: 'One host: the state of each control, the age of its latest result, the agent, and its delivery and chain health.',
    variables: [
      labelValues('vendor', 'Vendor', 'label_values(vcm_agent_info, vendor)', { multi: false }),
      labelValues('host', 'Host', 'label_values(vcm_agent_info{vendor="$vendor"}, host)', { multi: false }),
      labelValues('control', 'Control', 'label_values(vcm_control_state{vendor="$vendor",host="$host"}, control)', { multi: true }),
    ],
    panels: [
      {
        type: 'stat',
        title: 'Controls',
        description: 'The current state of each control on this host: pass, fail, unknown, stale (no fresh result) or waived (a failure under an unexpired exception).',
        unit: 'none',
        targets: [{ expr: stateCodeExpr, legend: '{{control}}' }],
        mappings: stateMappings,
        thresholds: [{ color: 'text', value: null }],
        textMode: BigValueTextMode.ValueAndName,
        colorMode: BigValueColorMode.Background,
        w: 24,
        h: 4,
      },
      {
        type: 'bargauge',
        title: 'Age of the latest result',
        description: 'Time since the agent collected the latest result of each control. Past the policy\'s freshness window (2 h by default) the control shows as stale.',
        unit: 'dtdurations',
        targets: [{ expr: `time() - vcm_control_last_result_timestamp_seconds{${HC}}`, legend: '{{control}}' }],
        thresholds: [{ color: 'green', value: null }, { color: 'orange', value: 3600 }, { color: 'red', value: 7200 }],
        w: 12,
        h: 8,
      },
      {
        type: 'table',
        title: 'Agent',
        description: 'The enrolled agent on this host: its id, operating system and version (as it reported at enrollment).',
        unit: 'none',
        targets: [{ expr: `vcm_agent_info{${H}}` }],
        transformations: [organize(['Value'])],
        w: 12,
        h: 4,
      },
      {
        type: 'stat',
        title: 'Last delivery',
        description: 'Time since the collector last accepted a result from this host. A silent agent turns every control stale once this passes the freshness window.',
        unit: 'dtdurations',
        targets: [{ expr: `time() - vcm_agent_last_seen_timestamp_seconds{${H}}`, legend: 'since last result' }],
        thresholds: [{ color: 'green', value: null }, { color: 'orange', value: 3600 }, { color: 'red', value: 7200 }],
        w: 12,
        h: 4,
      },
      {
        type: 'state-timeline',
        title: 'State over time',
        description: 'Each control\'s state over the selected range.',
        unit: 'none',
        targets: [{ expr: stateCodeExpr, legend: '{{control}}' }],
        mappings: stateMappings,
        thresholds: [{ color: 'text', value: null }],
        w: 24,
        h: 8,
      },
      {
        type: 'stat',
        title: 'Results missing from the chain',
        description: 'Per agent on this host name: sequence numbers below its chain head that the collector holds no result for. They were lost, dropped from a full spool (the agent\'s signed drop record says which), or are still on their way. 0 is a chain without holes. The collector rebuilds it from the store, so it survives restarts.',
        unit: 'short',
        targets: [{ expr: `max by (agent_id) (vcm_agent_chain_missing_results{${H}}) or max by (agent_id) (vcm_agent_info{${H}}) * 0`, legend: '{{agent_id}}' }],
        thresholds: [{ color: 'green', value: null }, { color: 'orange', value: 1 }],
        textMode: BigValueTextMode.ValueAndName,
        colorMode: BigValueColorMode.Background,
        w: 24,
        h: 4,
      },
      {
        type: 'timeseries',
        title: 'Chain gaps (this host\'s vendor)',
        description: 'Results of the vendor\'s agents that arrived after a gap in their agent\'s chain, per interval. The collector counts gaps per vendor; which host had one is in the vendor\'s transparency log (chain_gap entries).',
        unit: 'short',
        targets: [{ expr: 'sum by (vendor) (increase(vcm_evidence_chain_gaps_total{vendor="$vendor"}[$__rate_interval]))', legend: '{{vendor}}' }],
        w: 12,
        h: 7,
      },
      {
        type: 'timeseries',
        title: 'Spool drops (this host\'s vendor)',
        description: 'Results the vendor\'s agents dropped from a full spool before delivery, from their signed drop records, per interval.',
        unit: 'short',
        targets: [{ expr: 'sum by (vendor) (increase(vcm_agent_spool_dropped_total{vendor="$vendor"}[$__rate_interval]))', legend: '{{vendor}}' }],
        w: 12,
        h: 7,
      },
    ],
  });
}
