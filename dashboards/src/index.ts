// Everything generated from dashboards/src/: the Grafana dashboards and the Prometheus rule and
// rule-test files, by path under dashboards/. `node dashboards/generate.mjs` writes them;
// test/dashboards/generated.test.ts holds the committed files equal to these.
import { collector } from './collector.js';
import type { Dashboard } from './grafana.js';
import { host } from './host.js';
import { posture } from './posture.js';
import { ruleTests } from './rule-tests.js';
import { alertRules, recordingRules } from './rules.js';
import { sso } from './sso.js';
import { toYaml, type Yaml } from './yaml.js';

export const DASHBOARDS: Record<string, () => Dashboard> = {
  'grafana/vcm-posture.json': posture,
  'grafana/vcm-host.json': host,
  'grafana/vcm-sso.json': sso,
  'grafana/vcm-collector.json': collector,
};

export const RULE_FILES = {
  recording: 'prometheus/vcm-recording.rules.yml',
  alerts: 'prometheus/vcm-alerts.rules.yml',
} as const;

export const RULE_TEST_FILE = 'prometheus/tests/vcm-rules.test.yml';

const HEADER = '# Generated from dashboards/src/ by `node dashboards/generate.mjs`: edit the source, not this file.\n';

export function yamlFile(v: Yaml): string {
  return HEADER + toYaml(v);
}

/** Every generated file: path under dashboards/ → content. */
export function generatedFiles(): Map<string, string> {
  const out = new Map<string, string>();
  for (const [file, make] of Object.entries(DASHBOARDS)) out.set(file, `${JSON.stringify(make(), null, 2)}\n`);
  out.set(RULE_FILES.recording, yamlFile(recordingRules() as unknown as Yaml));
  out.set(RULE_FILES.alerts, yamlFile(alertRules() as unknown as Yaml));
  out.set(RULE_TEST_FILE, yamlFile(ruleTests(Object.values(RULE_FILES).map((f) => `../${f.slice('prometheus/'.length)}`))));
  return out;
}
