// End to end with the real parts: a collector process, five agents enrolled by the real agent CLI
// (their state directories hold the keys that sign the results) across two vendors with mixed
// states, and a real Prometheus scraping the collector on loopback every second with the rules
// loaded. Every dashboard panel and variable query is evaluated through Prometheus's HTTP API and
// checked against the states fed in; a failing control's alert goes pending, then firing.
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHECK_IDS, type CheckId, type Finding } from '../../checks/types.js';
import { ssoMetricSamples } from '../../checks/sso_coverage/metrics.js';
import { sha256Hex } from '../../collector/contract.js';
import { defaultPolicyDocument } from '../../collector/policy.js';
import { DASHBOARDS } from '../../dashboards/src/index.js';
import type { Dashboard, Panel, QueryVariable } from '../../dashboards/src/grafana.js';
import { STATE_CODES } from '../../dashboards/src/host.js';
import { JOB } from '../../dashboards/src/names.js';
import { alertRules, allAlerts, DEFAULT_ALERT_SETTINGS, recordingRules } from '../../dashboards/src/rules.js';
import { yamlFile } from '../../dashboards/src/index.js';
import type { Yaml } from '../../dashboards/src/yaml.js';
import { dropEnvelope, resultEnvelope, type TestAgent } from '../helpers/agents.js';
import { expectAccepted, postRaw } from '../helpers/collector-probe.js';
import { FIXTURES_ROOT, replayCase } from '../helpers/fixtures.js';
import { AGENT_CLI, COLLECTOR_CLI, REPO, runCli, sample, startCollectorProcess, tempDir, type CollectorProcess } from '../helpers/processes.js';
import { eventually, promtool, requirePrometheus, startPrometheus, type PromSample, type PrometheusProcess } from '../helpers/prometheus.js';
import { runScenario } from '../checks/sso_coverage/harness.js';
import { baseScenario } from '../checks/sso_coverage/scenario.js';
import { checkById } from '../../checks/index.js';
import { metricUses, panelTargets, substitute, type Substitution } from './promql.js';

type HostControl = Exclude<CheckId, 'sso_coverage'>;
type Planned = 'pass' | 'fail' | 'unknown' | 'old' | 'never';

/** Per host, what each control reports: a verdict, a result older than the freshness window, or nothing. */
const PLAN: Record<string, Record<string, Record<HostControl, Planned>>> = {
  acme: {
    'acme-1': { vpn: 'pass', disk_encryption: 'pass', usb_policy: 'pass', credential_age: 'pass', open_ports: 'pass' },
    // disk_encryption fails under exception EXC-SOON: waived.
    'acme-2': { vpn: 'fail', disk_encryption: 'fail', usb_policy: 'pass', credential_age: 'pass', open_ports: 'pass' },
    'acme-3': { vpn: 'pass', disk_encryption: 'pass', usb_policy: 'unknown', credential_age: 'never', open_ports: 'fail' },
  },
  globex: {
    'globex-1': { vpn: 'pass', disk_encryption: 'fail', usb_policy: 'pass', credential_age: 'fail', open_ports: 'unknown' },
    'globex-2': { vpn: 'old', disk_encryption: 'pass', usb_policy: 'pass', credential_age: 'pass', open_ports: 'pass' },
  },
};

/** Recorded hosts (test/fixtures/checks) whose verdict under the default policy is the one named. */
const FIXTURE: Record<HostControl, Record<'pass' | 'fail' | 'unknown', string>> = {
  vpn: { pass: 'wg-quick-split-default', fail: 'no-tunnel-client-running', unknown: 'offline' },
  disk_encryption: { pass: 'luks2-root-and-swap', fail: 'unencrypted-root', unknown: 'unreadable-sysfs-device' },
  usb_policy: { pass: 'kernel-module-blacklist', fail: 'usbguard-not-running', unknown: 'module-tree-missing' },
  credential_age: { pass: 'this-machine', fail: 'old-password', unknown: 'password-age-not-recorded' },
  open_ports: { pass: 'loopback-only', fail: 'wildcard-not-allowed', unknown: 'tcp-table-missing' },
};

const DAY = 86_400;
const STATES = ['pass', 'fail', 'unknown', 'stale', 'waived'] as const;
type State = (typeof STATES)[number];

function expectedState(vendor: string, host: string, control: HostControl): State {
  const p = PLAN[vendor]![host]![control];
  if (p === 'old' || p === 'never') return 'stale';
  if (p === 'fail' && vendor === 'acme' && host === 'acme-2' && control === 'disk_encryption') return 'waived';
  return p;
}

const ok = requirePrometheus();
// The JSON as Grafana reads it.
const dashboards: Dashboard[] = Object.values(DASHBOARDS).map((make) => JSON.parse(JSON.stringify(make())) as Dashboard);
const byUid = (uid: string) => dashboards.find((d) => d.uid === uid)!;
const panel = (uid: string, title: string): Panel => {
  const p = byUid(uid).panels.find((x) => x.title === title);
  if (p === undefined) throw new Error(`no panel "${title}" on ${uid}`);
  return p;
};

describe.skipIf(!ok)('dashboards and rules on a real collector and Prometheus', () => {
  let data: Awaited<ReturnType<typeof tempDir>>;
  let collector: CollectorProcess;
  let prom: PrometheusProcess;
  const agents = new Map<string, TestAgent & { vendor: string; seq: number; prev: string | null }>();
  /** vendor/host/control → state, for every row the collector shows (sso_coverage as the collector judged it). */
  const expected = new Map<string, State>();
  let ssoSamples: ReturnType<typeof ssoMetricSamples> = [];
  let promStart = 0;
  /** When the results were dated from (each one some time before it). */
  let fedAt = 0;
  let exported = new Map<string, string>();
  let metricsText = '';
  const t0 = Date.now();
  const times: Record<string, number> = {};

  const send = async (name: string, f: Finding) => {
    const a = agents.get(name)!;
    a.seq++;
    const bytes = resultEnvelope(a, a.seq, a.prev, f);
    await expectAccepted(collector.url, bytes);
    a.prev = sha256Hex(bytes);
  };

  beforeAll(async () => {
    data = await tempDir('dash-e2e');
    const store = path.join(data.dir, 'store');
    const now = Date.now();
    fedAt = now;
    const iso = (ms: number) => new Date(ms).toISOString();
    const policyFile = path.join(data.dir, 'policy.json');
    const exception = (id: string, vendor: string, hosts: string, check: CheckId, days: number) => ({
      id,
      vendor,
      hosts,
      check,
      justification: 'replacement laptops are on order',
      approver: 'ciso@customer.example',
      expires: iso(now + days * DAY * 1000),
    });
    const { checks, freshnessSeconds } = defaultPolicyDocument();
    await writeFile(
      policyFile,
      JSON.stringify({
        freshnessSeconds,
        checks,
        exceptions: [
          exception('EXC-SOON', 'acme', 'acme-2', 'disk_encryption', 5),
          exception('EXC-MID', 'globex', '*', 'usb_policy', 10),
          exception('EXC-LATE', 'globex', 'lab-*', 'credential_age', 30),
        ],
      }),
    );
    // Only serve makes a store; the policy is written before the collector that judges under it starts.
    await (await startCollectorProcess(store)).stop();
    const set = await runCli(COLLECTOR_CLI, ['policy', 'set', policyFile, '--data-dir', store]);
    expect(set.code, set.stderr).toBe(0);
    collector = await startCollectorProcess(store, { args: ['--checkpoint-interval', '1s'] });

    // Real agents: the CLI generates each key in its state directory and enrolls it.
    await Promise.all(
      Object.entries(PLAN).map(async ([vendor, hosts]) => {
        const token = await runCli(COLLECTOR_CLI, ['token', 'create', '--vendor', vendor, '--uses', String(Object.keys(hosts).length), '--data-dir', store]);
        expect(token.code, token.stderr).toBe(0);
        await Promise.all(Object.keys(hosts).map(async (host) => {
          const stateDir = path.join(data.dir, 'agents', host);
          const res = await runCli(AGENT_CLI, ['enroll', '--collector', collector.url, '--token', token.stdout.trim(), '--state-dir', stateDir, '--hostname', host]);
          expect(res.code, res.stderr).toBe(0);
          const identity = JSON.parse(await readFile(path.join(stateDir, 'identity.json'), 'utf8')) as { agentId: string };
          const key = createPrivateKey(await readFile(path.join(stateDir, 'agent-ed25519.pem')));
          const publicKeyPem = createPublicKey(key).export({ type: 'spki', format: 'pem' }).toString();
          agents.set(host, { agentId: identity.agentId, key, publicKeyPem, hostname: host, vendor, seq: 0, prev: null });
        }));
      }),
    );
    // A host whose result is older than the freshness window was enrolled before it: the collector
    // refuses results dated before enrollment. The store is made to say so, as an enrollment hours
    // ago would have left it, and the collector restarted to load it.
    await collector.stop();
    for (const host of Object.values(PLAN).flatMap((hosts) => Object.entries(hosts)).filter(([, c]) => Object.values(c).includes('old')).map(([h]) => h)) {
      const file = path.join(store, 'keys', `${agents.get(host)!.agentId}.json`);
      const record = JSON.parse(await readFile(file, 'utf8')) as { enrolledAt: string };
      await writeFile(file, JSON.stringify({ ...record, enrolledAt: iso(now - 4 * 3600_000) }));
    }
    collector = await startCollectorProcess(store, { args: ['--checkpoint-interval', '1s'] });
    times.enrolled = Date.now() - t0;

    // Each result is a real check's finding on a recorded host, signed with the agent's key.
    for (const [vendor, hosts] of Object.entries(PLAN)) {
      for (const [host, controls] of Object.entries(hosts)) {
        for (const [control, planned] of Object.entries(controls) as [HostControl, Planned][]) {
          expected.set(`${vendor}/${host}/${control}`, expectedState(vendor, host, control));
          if (planned === 'never') continue;
          const verdict = planned === 'old' ? 'pass' : planned;
          const { finding } = await replayCase(checkById(control)!, path.join(FIXTURES_ROOT, control, 'linux', FIXTURE[control][verdict]));
          expect(finding.status, `${control}/${FIXTURE[control][verdict]}`).toBe(verdict);
          const collectedAt = iso(planned === 'old' ? now - 3 * 3600_000 : now - 60_000);
          await send(host, { ...finding, collectedAt });
        }
      }
    }
    // One vendor's sso_coverage, from the real Okta SDK against the local Okta-compatible server.
    const sso = await runScenario(baseScenario({ staff: 60, now: new Date() }));
    expect(sso.facts).not.toBeNull();
    ssoSamples = ssoMetricSamples(sso.facts!);
    await send('acme-1', { check: 'sso_coverage', checkVersion: '1.0.0', platform: 'linux', status: sso.verdict!.status, reasons: sso.verdict!.reasons, facts: sso.facts, collectedAt: iso(now - 30_000), durationMs: 5 });
    times.fed = Date.now() - t0;

    metricsText = await (await fetch(`${collector.url}/metrics`)).text();
    const ssoState = STATES.find((st) => sample(metricsText, `vcm_control_state{vendor="acme",host="acme-1",agent_id="${agents.get('acme-1')!.agentId}",control="sso_coverage",state="${st}"}`) === 1);
    expect(ssoState, 'the collector shows a state for acme-1 sso_coverage').toBeDefined();
    expected.set('acme/acme-1/sso_coverage', ssoState!);
    exported = new Map([...metricsText.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1]!, m[2]!]));

    // Prometheus: 1 s scrapes and evaluations; the alerts as committed, with `for:` shortened.
    const promDir = path.join(data.dir, 'prometheus');
    await mkdir(promDir, { recursive: true });
    await writeFile(path.join(promDir, 'recording.yml'), yamlFile(recordingRules() as unknown as Yaml));
    await writeFile(path.join(promDir, 'alerts.yml'), yamlFile(alertRules({ ...DEFAULT_ALERT_SETTINGS, failingFor: '4s', staleFor: '4s' }) as unknown as Yaml));
    const target = new URL(collector.url).host;
    prom = await startPrometheus(
      promDir,
      yamlFile({
        global: { scrape_interval: '1s', evaluation_interval: '1s' },
        rule_files: ['recording.yml', 'alerts.yml'],
        scrape_configs: [{ job_name: JOB, static_configs: [{ targets: [target] }] }],
      }),
    );
    promStart = Date.now() / 1000;
    times.promStarted = Date.now() - t0;
    // The zero-started per-vendor counters are scraped before anything happens to them.
    await eventually('the first scrapes', async () => {
      const r = (await prom.query('count(vcm_control_failing_since_timestamp_seconds) and count(vcm_evidence_chain_gaps_total{vendor="globex"} == 0)')).result as PromSample[];
      return r.length === 1 ? true : undefined;
    });
    times.firstScrapes = Date.now() - t0;
    await new Promise((r) => setTimeout(r, 1000));
    // After them: a spool-drop record of acme-3 (a gap of two results), and three forged envelopes.
    const a3 = agents.get('acme-3')!;
    a3.seq += 3;
    const drop = dropEnvelope(a3, a3.seq, a3.prev, a3.seq - 2, a3.seq - 1);
    await expectAccepted(collector.url, drop);
    const forged = Buffer.from(resultEnvelope(agents.get('globex-1')!, 99, 'f'.repeat(64)).toString().replace(/"sig":"(.)/, (_m, c: string) => `"sig":"${c === 'A' ? 'B' : 'A'}`));
    for (let i = 0; i < 3; i++) expect((await postRaw(collector.url, '/v1/results', forged)).code).toBe('COL_ERR_BAD_SIGNATURE');
    // Two scrapes and an evaluation after them, for rates and alerts to see the changes.
    await eventually('the drop and the forged envelopes scraped', async () => {
      const r = (await prom.query('vcm_agent_spool_dropped_total{vendor="acme"} > 0 and on () vcm_ingest_rejected_total{reason="bad_signature"} >= 3')).result as PromSample[];
      return r.length > 0 ? true : undefined;
    });
    await new Promise((r) => setTimeout(r, 2000));
    times.promReady = Date.now() - t0;
  }, 60_000);

  afterAll(async () => {
    await prom?.stop();
    await collector?.stop();
    await data?.cleanup();
    console.log(`dashboards e2e (ms from the start): ${Object.entries(times).map(([k, v]) => `${k} ${v}`).join(', ')}, done ${Date.now() - t0}`);
  });

  const subs = (d: Dashboard): Substitution => ({
    vars: d.uid === 'vcm-host' ? { vendor: ['acme'], host: ['acme-2'], control: [...CHECK_IDS] } : { vendor: ['acme', 'globex'], control: [...CHECK_IDS], job: [JOB] },
    rateInterval: '4s',
    interval: '1s',
    range: '30s',
  });

  const instant = async (d: Dashboard, expr: string): Promise<PromSample[]> => {
    const r = await prom.query(substitute(expr, subs(d)));
    expect(r.resultType, expr).toBe('vector');
    return r.result as PromSample[];
  };
  const ofPanel = (uid: string, title: string, refId = 'A') => instant(byUid(uid), panel(uid, title).targets.find((t) => t.refId === refId)!.expr);

  it('promtool check metrics finds nothing to say about /metrics', async () => {
    const res = await promtool(['check', 'metrics'], { input: metricsText });
    expect(res.stdout + res.stderr).toBe('');
    expect(res.code).toBe(0);
    // Still there: the process and Node.js metrics, without the _total gauges.
    expect(exported.get('vcm_collector_process_resident_memory_bytes')).toBe('gauge');
    expect(exported.get('vcm_collector_nodejs_active_handles')).toBe('gauge');
    expect(exported.has('vcm_collector_nodejs_active_handles_total')).toBe(false);
  });

  it('starts the per-vendor counters of known vendors at 0', () => {
    for (const vendor of Object.keys(PLAN)) {
      expect(sample(metricsText, `vcm_evidence_chain_gaps_total{vendor="${vendor}"}`), vendor).toBe(0);
      expect(sample(metricsText, `vcm_agent_spool_dropped_total{vendor="${vendor}"}`), vendor).toBe(0);
    }
    expect(sample(metricsText, 'vcm_ingest_rejected_total{reason="bad_signature"}')).toBe(0);
  });

  it('exports each exception\'s expiry, by vendor, control and id, and never its approver', () => {
    const lines = metricsText.split('\n').filter((l) => l.startsWith('vcm_exception_expiry_timestamp_seconds{'));
    expect(lines.map((l) => l.slice(0, l.lastIndexOf(' '))).sort()).toEqual([
      'vcm_exception_expiry_timestamp_seconds{vendor="acme",control="disk_encryption",exception_id="EXC-SOON"}',
      'vcm_exception_expiry_timestamp_seconds{vendor="globex",control="credential_age",exception_id="EXC-LATE"}',
      'vcm_exception_expiry_timestamp_seconds{vendor="globex",control="usb_policy",exception_id="EXC-MID"}',
    ]);
    expect(metricsText).not.toContain('ciso@');
    const soon = sample(metricsText, 'vcm_exception_expiry_timestamp_seconds{vendor="acme",control="disk_encryption",exception_id="EXC-SOON"}')!;
    expect(Math.abs(soon - (t0 / 1000 + 5 * DAY))).toBeLessThan(120);
  });

  it('every metric a panel, variable or rule names is one the collector exports, a rule records, or Prometheus makes', () => {
    const recorded = new Set(recordingRules().groups.flatMap((g) => g.rules.map((r) => r.record)));
    const prometheusOwn = new Set(['up', 'scrape_duration_seconds']);
    const names = new Set<string>();
    for (const { target } of panelTargets(dashboards)) for (const u of metricUses(target.expr)) names.add(u.name);
    for (const d of dashboards) for (const v of d.templating.list.filter((x): x is QueryVariable => x.type === 'query')) for (const u of metricUses(v.query.query.replace(/^label_values\((.*), \w+\)$/, '$1'))) names.add(u.name);
    for (const g of [...recordingRules().groups, ...alertRules().groups]) for (const r of g.rules) for (const u of metricUses(r.expr)) names.add(u.name);
    expect(names.size).toBeGreaterThan(30);
    for (const name of names) {
      const family = exported.has(name) ? name : name.replace(/_(bucket|sum|count)$/, '');
      const known = recorded.has(name) || prometheusOwn.has(name) || (exported.has(family) && (family === name || exported.get(family) === 'histogram'));
      expect(known, `${name} is exported, recorded or Prometheus's own`).toBe(true);
    }
  });

  it('collector/README.md\'s metric list is what the collector exports', () => {
    const readme = readFileSync(path.join(REPO, 'collector/README.md'), 'utf8');
    const section = /## Where the metrics are\n([\s\S]*?)\n## /.exec(readme)![1]!;
    const documented = [...section.matchAll(/^\| (.*?) \|/gm)].flatMap((m) => [...m[1]!.matchAll(/`([a-z_:*]+)(?:\{[^}]*\})?`/g)].map((x) => x[1]!)).filter((n) => n !== 'metric');
    const ssoReadme = readFileSync(path.join(REPO, 'checks/sso_coverage/README.md'), 'utf8');
    const ssoFamilies = [...ssoReadme.matchAll(/^\| `(vcm_sso_[a-z_]+)` \|/gm)].map((m) => m[1]!);
    const patterns = documented.map((d) => (d.endsWith('*') ? new RegExp(`^${d.slice(0, -1)}`) : new RegExp(`^${d}$`)));
    for (const family of exported.keys()) {
      const covered = patterns.some((p) => p.test(family)) && (!family.startsWith('vcm_sso_') || ssoFamilies.includes(family));
      expect(covered, `${family} is documented in collector/README.md (or, for vcm_sso_*, checks/sso_coverage/README.md)`).toBe(true);
    }
    for (const d of documented.filter((x) => !x.endsWith('*'))) expect(exported.has(d), `documented ${d} is exported`).toBe(true);
    // The rejection reasons listed are the ones that start at 0, in order.
    const reasons = /^\| `vcm_ingest_rejected_total\{reason\}` \| ([a-z_, ]+?), each from 0/m.exec(section)?.[1]?.split(', ');
    expect(reasons).toEqual([...metricsText.matchAll(/^vcm_ingest_rejected_total\{reason="(\w+)"\}/gm)].map((m) => m[1]));
    for (const d of ssoFamilies) expect(exported.has(d), `documented ${d} is exported`).toBe(true);
  });

  it('every variable query returns the known values', async () => {
    const want: Record<string, string[]> = {
      'vcm-posture $vendor': ['acme', 'globex'],
      'vcm-posture $control': [...CHECK_IDS].sort(),
      'vcm-host $vendor': ['acme', 'globex'],
      'vcm-host $host': ['acme-1', 'acme-2', 'acme-3'],
      'vcm-host $control': ['credential_age', 'disk_encryption', 'open_ports', 'usb_policy', 'vpn'],
      'vcm-sso $vendor': ['acme'],
      'vcm-collector $job': [JOB],
      'vcm-collector $vendor': ['acme', 'globex'],
    };
    const seen: string[] = [];
    for (const d of dashboards) {
      for (const v of d.templating.list.filter((x): x is QueryVariable => x.type === 'query')) {
        const [, selector, label] = /^label_values\((.*), (\w+)\)$/.exec(v.query.query)!;
        // As Grafana asks: the series of the selector, with the variables before it substituted.
        const series = await prom.api<Record<string, string>[]>('/api/v1/series', { 'match[]': substitute(selector!, subs(d)), start: String(promStart - 5) });
        const values = [...new Set(series.map((s) => s[label!]!))].sort();
        expect(values, `${d.uid} $${v.name}`).toEqual(want[`${d.uid} $${v.name}`]);
        seen.push(`${d.uid} $${v.name}`);
      }
    }
    expect(seen.sort()).toEqual(Object.keys(want).sort());
  });

  it('every panel query returns data of the shape its panel expects', async () => {
    const end = Date.now() / 1000;
    for (const { dashboard, panel: p, target } of panelTargets(dashboards)) {
      const expr = substitute(target.expr, subs(dashboard));
      const where = `${dashboard.uid} / ${p.title} / ${target.refId}`;
      const r = target.instant ? await prom.query(expr) : await prom.queryRange(expr, promStart, end, 1);
      expect(r.resultType, where).toBe(target.instant ? 'vector' : 'matrix');
      const result = r.result as PromSample[];
      expect(result.length, `${where}: ${expr}`).toBeGreaterThan(0);
      for (const s of result) {
        // Every label the legend names is on every series.
        for (const m of target.legendFormat.matchAll(/\{\{(\w+)\}\}/g)) expect(s.metric[m[1]!], `${where}: label ${m[1]}`).toBeDefined();
        const points = target.instant ? [s.value!] : s.values!;
        expect(points.length, where).toBeGreaterThan(0);
        // Shares stay within 0..1; nothing else is negative.
        for (const [, v] of points) {
          if (v === 'NaN') continue;
          if (p.fieldConfig.defaults.unit === 'percentunit' && !p.title.includes('CPU')) expect(Number(v), where).toBeLessThanOrEqual(1);
          expect(Number(v), where).toBeGreaterThanOrEqual(0);
        }
      }
      if (!target.instant) expect(result.some((s) => s.values!.some(([, v]) => v !== 'NaN')), `${where} has a number somewhere`).toBe(true);
    }
  });

  it('posture: hosts by state and the passing share match the states fed in, with unknown, stale and waived apart', async () => {
    const counts = new Map<string, number>();
    for (const [key, st] of expected) {
      const [vendor, , control] = key.split('/');
      counts.set(`${vendor}/${control}/${st}`, (counts.get(`${vendor}/${control}/${st}`) ?? 0) + 1);
    }
    const pairs = new Set([...expected.keys()].map((k) => k.split('/').filter((_, i) => i !== 1).join('/')));
    const table = panel('vcm-posture', 'Hosts by state');
    for (const [i, st] of STATES.entries()) {
      const got = await instant(byUid('vcm-posture'), table.targets[i]!.expr);
      expect(Object.fromEntries(got.map((s) => [`${s.metric.vendor}/${s.metric.control}`, Number(s.value![1])])), st).toEqual(
        Object.fromEntries([...pairs].map((pair) => [pair, counts.get(`${pair}/${st}`) ?? 0])),
      );
    }
    const share = await ofPanel('vcm-posture', 'Hosts passing, by vendor and control');
    const hostsPer = (pair: string) => STATES.reduce((n, st) => n + (counts.get(`${pair}/${st}`) ?? 0), 0);
    expect(Object.fromEntries(share.map((s) => [`${s.metric.vendor}/${s.metric.control}`, Number(s.value![1])]))).toEqual(
      Object.fromEntries([...pairs].map((pair) => [pair, (counts.get(`${pair}/pass`) ?? 0) / hostsPer(pair)])),
    );
    // A silent or unknown host is never passing: globex vpn has one host passing of two.
    expect(share.find((s) => s.metric.vendor === 'globex' && s.metric.control === 'vpn')?.value?.[1]).toBe('0.5');
  });

  it('posture: failing now lists exactly the unwaived failures; most failures and expiring exceptions are right', async () => {
    const fails = [...expected].filter(([, st]) => st === 'fail').map(([k]) => k).sort();
    const failing = await ofPanel('vcm-posture', 'Failing now, and for how long');
    expect(failing.map((s) => `${s.metric.vendor}/${s.metric.host}/${s.metric.control}`).sort()).toEqual(fails);
    for (const s of failing) {
      // Failing since its result, collected a minute before the feed began: the evidence's time, not Prometheus's first sight of it.
      expect(Number(s.value![1])).toBeGreaterThanOrEqual(60);
      expect(Number(s.value![1])).toBeLessThan((Date.now() - fedAt) / 1000 + 62);
      expect(Number(s.value![1])).toBeGreaterThan(Date.now() / 1000 - promStart);
    }
    const most = await ofPanel('vcm-posture', 'Controls with most failures');
    const perControl: Record<string, number> = {};
    for (const k of fails) perControl[k.split('/')[2]!] = (perControl[k.split('/')[2]!] ?? 0) + 1;
    expect(Object.fromEntries(most.map((s) => [s.metric.control, Number(s.value![1])]))).toEqual(
      Object.fromEntries([...new Set([...expected.keys()].map((k) => k.split('/')[2]!))].map((c) => [c, perControl[c] ?? 0])),
    );
    const expiring = await ofPanel('vcm-posture', 'Exceptions expiring within 14 days');
    expect(Object.fromEntries(expiring.map((s) => [s.metric.exception_id, Math.round(Number(s.value![1]) / DAY)]))).toEqual({ 'EXC-SOON': 5, 'EXC-MID': 10 });
  });

  it('host: acme-2\'s controls, result ages and agent', async () => {
    const states = await ofPanel('vcm-host', 'Controls');
    const want = Object.fromEntries((Object.keys(PLAN.acme!['acme-2']!) as HostControl[]).map((c) => [c, STATE_CODES[expectedState('acme', 'acme-2', c)]]));
    expect(Object.fromEntries(states.map((s) => [s.metric.control, Number(s.value![1])]))).toEqual(want);
    expect(want.disk_encryption).toBe(STATE_CODES.waived);
    expect(want.vpn).toBe(STATE_CODES.fail);
    const ages = await ofPanel('vcm-host', 'Age of the latest result');
    for (const s of ages) expect(Number(s.value![1]), s.metric.control).toBeGreaterThanOrEqual(55);
    for (const s of ages) expect(Number(s.value![1]), s.metric.control).toBeLessThan(60 + (Date.now() - t0) / 1000 + 5);
    const agent = await ofPanel('vcm-host', 'Agent');
    expect(agent.map((s) => [s.metric.agent_id, s.metric.os, s.metric.version])).toEqual([[agents.get('acme-2')!.agentId, 'linux', '0.1.0']]);
    // acme-2's chain has no holes: 0, not no data. acme-3 dropped two results from its spool.
    const missing = await ofPanel('vcm-host', 'Results missing from the chain');
    expect(missing.map((s) => [s.metric.agent_id, s.value![1]])).toEqual([[agents.get('acme-2')!.agentId, '0']]);
    const a3 = (await prom.query(substitute(panel('vcm-host', 'Results missing from the chain').targets[0]!.expr, { ...subs(byUid('vcm-host')), vars: { vendor: ['acme'], host: ['acme-3'], control: [...CHECK_IDS] } }))).result as PromSample[];
    expect(a3.map((s) => [s.metric.agent_id, s.value![1]])).toEqual([[agents.get('acme-3')!.agentId, '2']]);
    // The timeline shows the same states over the range.
    const d = byUid('vcm-host');
    const timeline = (await prom.queryRange(substitute(panel('vcm-host', 'State over time').targets[0]!.expr, subs(d)), promStart + 2, Date.now() / 1000, 1)).result as PromSample[];
    expect(Object.fromEntries(timeline.map((s) => [s.metric.control, [...new Set(s.values!.map(([, v]) => Number(v)))]]))).toEqual(Object.fromEntries(Object.entries(want).map(([c, v]) => [c, [v]])));
  });

  it('SSO coverage: the counts and ratios of acme\'s newest sso_coverage result', async () => {
    const value = (name: string, labels: Record<string, string>) => ssoSamples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k as keyof typeof s.labels] === v))?.value;
    const accounts = await ofPanel('vcm-sso', 'Accounts by status');
    expect(Object.fromEntries(accounts.map((s) => [s.metric.status, Number(s.value![1])]))).toEqual(
      Object.fromEntries(ssoSamples.filter((s) => s.name === 'vcm_sso_accounts').map((s) => [s.labels.status, s.value])),
    );
    const mfa = await ofPanel('vcm-sso', 'MFA coverage');
    const eligible = value('vcm_sso_mfa_eligible_accounts', {})!;
    expect(eligible).toBeGreaterThan(0);
    for (const strength of ['any', 'phishing_resistant']) {
      expect(Number(mfa.find((s) => s.metric.strength === strength)!.value![1]), strength).toBeCloseTo(value('vcm_sso_mfa_accounts', { strength })! / eligible, 10);
    }
    const assignments = await ofPanel('vcm-sso', 'App assignments: federated against password-vaulted');
    const total = ssoSamples.filter((s) => s.name === 'vcm_sso_app_assignments').reduce((n, s) => n + s.value, 0);
    expect(Number(assignments.find((s) => s.metric.sign_on_class === 'federated')!.value![1])).toBeCloseTo(value('vcm_sso_app_assignments', { sign_on_class: 'federated' })! / total, 10);
    const leavers = await ofPanel('vcm-sso', 'Leavers still active past the deadline');
    expect(leavers.map((s) => Number(s.value![1]))).toEqual([value('vcm_sso_leavers_past_deadline', { status: 'active' })]);
    const stale = await ofPanel('vcm-sso', 'Stale accounts');
    expect(stale.map((s) => Number(s.value![1]))).toEqual([value('vcm_sso_stale_accounts', {})]);
  });

  it('collector health: the drop, the gap and the forged envelopes show in their rates', async () => {
    const d = byUid('vcm-collector');
    const inRange = async (title: string, labels: Record<string, string>) => {
      const r = (await prom.queryRange(substitute(panel('vcm-collector', title).targets[0]!.expr, subs(d)), promStart, Date.now() / 1000, 1)).result as PromSample[];
      const s = r.find((x) => Object.entries(labels).every(([k, v]) => x.metric[k] === v));
      return Math.max(0, ...(s?.values ?? []).map(([, v]) => Number(v)).filter((v) => !Number.isNaN(v)));
    };
    expect(await inRange('Chain gaps by vendor', { vendor: 'acme' })).toBeGreaterThan(0);
    expect(await inRange('Chain gaps by vendor', { vendor: 'globex' })).toBe(0);
    expect(await inRange('Spool drops by vendor', { vendor: 'acme' })).toBeGreaterThan(0);
    expect(await inRange('Rejections by reason', { reason: 'bad_signature' })).toBeGreaterThan(0);
    expect(await inRange('Rejections by reason', { reason: 'replay' })).toBe(0);
    expect((await ofPanel('vcm-collector', 'Collector up')).map((s) => s.value![1])).toEqual(['1']);
    expect((await ofPanel('vcm-collector', 'Evidence store preflight')).map((s) => s.value![1])).toEqual(['1']);
    const logs = await ofPanel('vcm-collector', 'Transparency log size');
    expect(logs.map((s) => s.metric.vendor).sort()).toEqual(['acme', 'globex']);
  });

  it('a failing control\'s alert goes pending, then firing; a waived failure never alerts', async () => {
    const target = (a: { labels: Record<string, string> }) => a.labels.alertname === 'VcmControlFailing' && a.labels.host === 'acme-2' && a.labels.control === 'vpn';
    // Failing since before Prometheus started: pending at its first evaluations, firing 4 s on.
    const firing = await eventually(
      'VcmControlFailing firing for acme-2 vpn',
      async () => {
        const a = (await prom.alerts()).find(target);
        return a?.state === 'firing' ? a : undefined;
      },
      20_000,
    );
    expect(firing.labels).toMatchObject({ alertname: 'VcmControlFailing', severity: 'warning', vendor: 'acme', host: 'acme-2', control: 'vpn', state: 'fail', job: JOB });
    expect(firing.annotations.summary).toBe('vpn fails on acme-2 (acme)');
    expect(firing.annotations.description).toContain(`host acme-2 (agent ${agents.get('acme-2')!.agentId}) of vendor acme`);
    const forState = (await prom.query('ALERTS{alertname="VcmControlFailing",host="acme-2",control="vpn"}')).result as PromSample[];
    expect(forState.map((s) => s.metric.alertstate)).toEqual(['firing']);
    const all = await prom.alerts();
    const failing = all.filter((a) => a.labels.alertname === 'VcmControlFailing').map((a) => `${a.labels.vendor}/${a.labels.host}/${a.labels.control}`).sort();
    expect(failing).toEqual([...expected].filter(([, st]) => st === 'fail').map(([k]) => k).sort());
    expect(failing).not.toContain('acme/acme-2/disk_encryption');
    expect(all.filter((a) => a.labels.alertname === 'VcmExceptionExpiring').map((a) => a.labels.exception_id)).toEqual(['EXC-SOON']);
    expect(all.filter((a) => a.labels.alertname === 'VcmChainGap').map((a) => a.labels.vendor)).toEqual(['acme']);
    expect(all.filter((a) => a.labels.alertname === 'VcmCollectorDown')).toEqual([]);
    // Every alert the rules define is known to Prometheus.
    const groups = await prom.api<{ groups: { rules: { name: string; type: string }[] }[] }>('/api/v1/rules');
    expect(groups.groups.flatMap((g) => g.rules.filter((r) => r.type === 'alerting').map((r) => r.name)).sort()).toEqual(allAlerts().map((a) => a.alert).sort());
  });

  it('pending comes before firing for a new failure', async () => {
    // A new failure: acme-1's usb_policy fails from now on.
    const { finding } = await replayCase(checkById('usb_policy')!, path.join(FIXTURES_ROOT, 'usb_policy', 'linux', FIXTURE.usb_policy.fail));
    await send('acme-1', { ...finding, collectedAt: new Date(Date.now() - 1000).toISOString() });
    const states: string[] = [];
    await eventually(
      'VcmControlFailing pending, then firing, for acme-1 usb_policy',
      async () => {
        const a = (await prom.alerts()).find((x) => x.labels.alertname === 'VcmControlFailing' && x.labels.host === 'acme-1' && x.labels.control === 'usb_policy');
        if (a !== undefined && states.at(-1) !== a.state) states.push(a.state);
        return a?.state === 'firing' ? true : undefined;
      },
      20_000,
    );
    expect(states).toEqual(['pending', 'firing']);
  });
});
