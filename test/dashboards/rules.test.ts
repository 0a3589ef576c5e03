// The Prometheus rules through the real promtool: the committed files load, the unit tests pass,
// each alert has a case where it fires and one where it stays silent, and those cases can fail
// (a copy whose alerts never fire, or always fire, fails them).
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { RULE_FILES, RULE_TEST_FILE, yamlFile } from '../../dashboards/src/index.js';
import { ALERT_CASES, ruleTests } from '../../dashboards/src/rule-tests.js';
import { allAlerts, alertRules, recordingRules, type AlertRule, type RuleFile } from '../../dashboards/src/rules.js';
import type { Yaml } from '../../dashboards/src/yaml.js';
import { promtool, requirePrometheus } from '../helpers/prometheus.js';
import { REPO } from '../helpers/processes.js';

const DIR = path.join(REPO, 'dashboards');
const alerts = allAlerts();

/** A Prometheus duration (1h5m, 65m, 5m30s) in seconds. */
function seconds(d: string): number {
  const units: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };
  return [...d.matchAll(/(\d+)([smhd])/g)].reduce((sum, m) => sum + Number(m[1]) * units[m[2]!]!, 0);
}

/** (alert, eval time in seconds) of every failed alert case in promtool's report. */
function failedCases(report: string): Set<string> {
  return new Set([...report.matchAll(/alertname: (\w+), time: (\w+)/g)].map((m) => `${m[1]} @ ${seconds(m[2]!)}`));
}

async function testWithAlerts(work: string, mutate: (a: AlertRule) => AlertRule) {
  const mutated: RuleFile<AlertRule> = { groups: alertRules().groups.map((g) => ({ ...g, rules: g.rules.map(mutate) })) };
  await writeFile(path.join(work, 'recording.yml'), yamlFile(recordingRules() as unknown as Yaml));
  await writeFile(path.join(work, 'alerts.yml'), yamlFile(mutated as unknown as Yaml));
  await writeFile(path.join(work, 'test.yml'), yamlFile(ruleTests(['recording.yml', 'alerts.yml'])));
  return promtool(['test', 'rules', 'test.yml'], { cwd: work });
}

describe('alert rules, as written', () => {
  it('give every alert a severity, a summary, a description and a runbook section in dashboards/README.md', () => {
    const readme = readFileSync(path.join(DIR, 'README.md'), 'utf8');
    const headings = new Set([...readme.matchAll(/^#{2,4} (.+)$/gm)].map((m) => m[1]!.trim().toLowerCase()));
    expect(alerts.length).toBeGreaterThanOrEqual(9);
    for (const a of alerts) {
      expect(['critical', 'warning']).toContain(a.labels.severity);
      expect(a.annotations.summary.length, a.alert).toBeGreaterThan(10);
      expect(a.annotations.description.length, a.alert).toBeGreaterThan(40);
      expect(a.annotations.runbook, a.alert).toBe(`dashboards/README.md#${a.alert.toLowerCase()}`);
      expect(headings.has(a.alert.toLowerCase()), `dashboards/README.md has a section "${a.alert}"`).toBe(true);
    }
  });

  it('have, for every alert, a case where it fires and one where it stays silent', () => {
    for (const a of alerts) {
      const cases = ALERT_CASES.filter((c) => c.alert === a.alert);
      expect(cases.some((c) => c.expect.length > 0), `${a.alert} fires somewhere`).toBe(true);
      expect(cases.some((c) => c.expect.length === 0), `${a.alert} stays silent somewhere`).toBe(true);
    }
    for (const c of ALERT_CASES) expect(alerts.map((a) => a.alert), c.title).toContain(c.alert);
  });

  it('name vendor, control and host in the description wherever the alert carries them', () => {
    for (const c of ALERT_CASES) {
      const a = alerts.find((x) => x.alert === c.alert)!;
      for (const e of c.expect) {
        for (const label of ['vendor', 'control', 'host'].filter((l) => l in e.labels)) {
          expect(a.annotations.description, `${a.alert} names its ${label}`).toContain(`{{ $labels.${label} }}`);
        }
      }
    }
  });
});

describe('promtool', () => {
  let ok = false;
  let work: string;
  beforeAll(async () => {
    ok = requirePrometheus();
    work = await mkdtemp(path.join(tmpdir(), 'vcm-rules-'));
    return () => rm(work, { recursive: true, force: true });
  });

  it('checks every rule file and prometheus.yml', async (ctx) => {
    if (!ok) return ctx.skip();
    const counts = { recording: recordingRules().groups.flatMap((g) => g.rules).length, alerts: alerts.length };
    for (const [kind, file] of Object.entries(RULE_FILES)) {
      const res = await promtool(['check', 'rules', path.join(DIR, file)]);
      expect(res.code, res.stdout + res.stderr).toBe(0);
      expect(res.stdout).toContain(`SUCCESS: ${counts[kind as keyof typeof counts]} rules found`);
    }
    const config = await promtool(['check', 'config', path.join(DIR, 'prometheus/prometheus.yml')]);
    expect(config.code, config.stdout + config.stderr).toBe(0);
    expect(config.stdout).toContain('SUCCESS: 2 rule files found');
  });

  it('passes the committed rule unit tests', async (ctx) => {
    if (!ok) return ctx.skip();
    const res = await promtool(['test', 'rules', path.basename(RULE_TEST_FILE)], { cwd: path.join(DIR, path.dirname(RULE_TEST_FILE)) });
    expect(res.code, res.stdout + res.stderr).toBe(0);
    expect(res.stdout).toContain('SUCCESS');
  });

  it('fails every firing case when the alerts never fire', async (ctx) => {
    if (!ok) return ctx.skip();
    const res = await testWithAlerts(work, (a) => ({ ...a, expr: 'vector(1) == 0' }));
    expect(res.code).not.toBe(0);
    const firing = new Set(ALERT_CASES.filter((c) => c.expect.length > 0).map((c) => `${c.alert} @ ${seconds(c.evalTime)}`));
    expect(failedCases(res.stdout + res.stderr)).toEqual(firing);
  });

  it('fails every silent case when the alerts always fire', async (ctx) => {
    if (!ok) return ctx.skip();
    const res = await testWithAlerts(work, (a) => ({ ...a, expr: 'vector(1)' }));
    expect(res.code).not.toBe(0);
    const failed = failedCases(res.stdout + res.stderr);
    for (const c of ALERT_CASES.filter((x) => x.expect.length === 0)) expect(failed.has(`${c.alert} @ ${seconds(c.evalTime)}`), c.title).toBe(true);
  });
});
