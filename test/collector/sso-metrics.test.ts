// vcm_sso_*: facts collected by the real Okta SDK from the local Okta-compatible server, signed,
// ingested over HTTP, and turned into per-vendor counts, never per person.
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ssoMetricSamples } from '../../checks/sso_coverage/metrics.js';
import { parseCollectorConfig, startCollector, type RunningCollector } from '../../collector/server.js';
import { chain, enrollTestAgent, finding } from '../helpers/agents.js';
import { sample, tempDir } from '../helpers/processes.js';
import { runScenario } from '../checks/sso_coverage/harness.js';
import { baseScenario } from '../checks/sso_coverage/scenario.js';

let dir: Awaited<ReturnType<typeof tempDir>>;
let collector: RunningCollector;

beforeAll(async () => {
  dir = await tempDir('sso-metrics');
  collector = await startCollector(parseCollectorConfig({ dataDir: dir.dir, listen: '127.0.0.1:0' }), { log: pino({ level: 'silent' }) });
});
afterAll(async () => {
  await collector.close();
  await dir.cleanup();
});

describe('vcm_sso_* series', () => {
  it('carry the counts of the newest sso_coverage result per vendor, labelled without people', async () => {
    const scenario = baseScenario({ staff: 120, now: new Date() });
    const { facts } = await runScenario(scenario);
    expect(facts).not.toBeNull();
    const agent = await enrollTestAgent(collector.url, collector.store, 'acme', 'okta-reader');
    const [e1] = chain(agent, 1, () => finding({ check: 'sso_coverage', checkVersion: '1.0.0', status: 'fail', facts, collectedAt: new Date(Date.now() - 1000).toISOString() }));
    const res = await fetch(`${collector.url}/v1/results`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: e1! });
    expect(res.status, await res.clone().text()).toBe(200);

    const text = await (await fetch(`${collector.url}/metrics`)).text();
    const expected = ssoMetricSamples(facts!);
    expect(expected.length).toBeGreaterThan(5);
    for (const s of expected) {
      const labels = Object.entries(s.labels).map(([k, v]) => `,${k}="${v}"`).join('');
      expect(sample(text, `${s.name}{vendor="acme"${labels}}`), `${s.name}${labels}`).toBe(s.value);
    }
    // No e-mail address, login or person id in any vcm_sso_* series.
    const ssoLines = text.split('\n').filter((l) => l.startsWith('vcm_sso_'));
    expect(ssoLines.length).toBe(expected.length);
    expect(ssoLines.join('\n')).not.toMatch(/@|login|00u/);
  });
});
