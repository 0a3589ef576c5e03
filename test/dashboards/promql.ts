// What the dashboard tests need to know about a PromQL expression: the metrics it names, which
// function call each sits in and with what range; and Grafana's variables substituted.
import type { Dashboard, Panel, Target } from '../../dashboards/src/grafana.js';

const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'offset', 'bool', 'inf', 'nan']);
/** Keywords followed by a parenthesised list of label names, not an expression. */
const LABEL_LISTS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right']);

export interface MetricUse {
  name: string;
  /** Enclosing function calls, innermost first. */
  calls: string[];
  /** The range selector right after it (`$__rate_interval`, `5m`), if any. */
  range: string | null;
}

/** Metric names in `expr`, with where each one sits. A small scanner, not a full parser: promtool parses. */
export function metricUses(expr: string): MetricUse[] {
  const out: MetricUse[] = [];
  /** One entry per open parenthesis: the function it calls, or '' for grouping and label lists. */
  const stack: string[] = [];
  let i = 0;
  const skipString = () => {
    const quote = expr[i]!;
    i++;
    while (i < expr.length && expr[i] !== quote) i += expr[i] === '\\' ? 2 : 1;
    i++;
  };
  const skipTo = (close: string) => {
    while (i < expr.length && expr[i] !== close) {
      if (expr[i] === '"' || expr[i] === "'") skipString();
      else i++;
    }
    i++;
  };
  while (i < expr.length) {
    const c = expr[i]!;
    if (c === '"' || c === "'" || c === '`') {
      skipString();
      continue;
    }
    if (c === '{') {
      skipTo('}');
      continue;
    }
    if (c === '[') {
      skipTo(']');
      continue;
    }
    if (c === '(') {
      stack.push('');
      i++;
      continue;
    }
    if (c === ')') {
      stack.pop();
      i++;
      continue;
    }
    const ident = /^[A-Za-z_:][A-Za-z0-9_:]*/.exec(expr.slice(i));
    if (ident !== null && !/[0-9.]/.test(expr[i - 1] ?? ' ')) {
      const word = ident[0];
      i += word.length;
      let j = i;
      while (expr[j] === ' ' || expr[j] === '\n') j++;
      if (LABEL_LISTS.has(word.toLowerCase()) && expr[j] === '(') {
        i = j + 1;
        skipTo(')');
        continue;
      }
      if (KEYWORDS.has(word.toLowerCase())) continue;
      // An aggregation with its grouping first: `sum by (vendor) (…)`.
      const grouping = /^(by|without)\s*\([^)]*\)\s*\(/.exec(expr.slice(j));
      if (grouping !== null) {
        stack.push(word);
        i = j + grouping[0].length;
        continue;
      }
      if (expr[j] === '(') {
        stack.push(word);
        i = j + 1;
        continue;
      }
      // A metric: its matchers and range selector follow.
      if (expr[j] === '{') {
        i = j;
        skipTo('}');
        j = i;
        while (expr[j] === ' ') j++;
      }
      let range: string | null = null;
      if (expr[j] === '[') {
        const end = expr.indexOf(']', j);
        range = expr.slice(j + 1, end);
        i = end + 1;
      }
      out.push({ name: word, calls: stack.filter((s) => s !== '').reverse(), range });
      continue;
    }
    i++;
  }
  return out;
}

/** Counters and the counter parts of histograms, which only make sense inside a rate. */
export function isCounterName(name: string): boolean {
  return /_(total|bucket|count|sum)$/.test(name);
}

export interface Substitution {
  /** Variable name → values selected (several for a multi-select). */
  vars: Record<string, string[]>;
  rateInterval: string;
  interval: string;
  range: string;
}

/** The query Grafana would send: variables as it formats them for Prometheus (regex alternation for multi-values). */
export function substitute(expr: string, s: Substitution): string {
  return expr.replace(/\$(__rate_interval|__interval|__range|\{?(\w+)\}?)/g, (m, all: string, name: string | undefined) => {
    if (all === '__rate_interval') return s.rateInterval;
    if (all === '__interval') return s.interval;
    if (all === '__range') return s.range;
    const v = name === undefined ? undefined : s.vars[name];
    if (v === undefined) return m;
    const escaped = v.map((x) => x.replace(/[\\^$*+?.()|[\]{}]/g, '\\\\$&'));
    return escaped.length === 1 ? escaped[0]! : `(${escaped.join('|')})`;
  });
}

export interface PanelTarget {
  dashboard: Dashboard;
  panel: Panel;
  target: Target;
}

export function panelTargets(dashboards: Dashboard[]): PanelTarget[] {
  return dashboards.flatMap((dashboard) => dashboard.panels.flatMap((panel) => panel.targets.map((target) => ({ dashboard, panel, target }))));
}
