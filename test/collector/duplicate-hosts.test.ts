// Two agents of one vendor with one host name (cloned VMs, two containers) stay two hosts in
// /metrics (#17): every per-host series carries agent_id, so no label set repeats, promtool finds
// nothing to say, and vcm_control_hosts agrees with the per-host states. Before, 11 label sets
// repeated and Prometheus silently kept one of each. In-process collector on 127.0.0.1, the real
// promtool.
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCollectorConfig, startCollector, type RunningCollector } from '../../collector/server.js';
import { chain, enrollTestAgent, finding, type TestAgent } from '../helpers/agents.js';
import { tempDir } from '../helpers/processes.js';
import { promtool, requirePrometheus } from '../helpers/prometheus.js';

let data: Awaited<ReturnType<typeof tempDir>>;
let collector: RunningCollector;
let twins: TestAgent[];

beforeAll(async () => {
  data = await tempDir('duplicate-hosts');
  collector = await startCollector(parseCollectorConfig({ dataDir: data.dir, listen: '127.0.0.1:0' }), { log: pino({ level: 'silent' }) });
  twins = [await enrollTestAgent(collector.url, collector.store, 'acme', 'clone'), await enrollTestAgent(collector.url, collector.store, 'acme', 'clone')];
  const now = new Date().toISOString();
  for (const agent of twins) {
    const [env] = chain(agent, 1, () => finding({ collectedAt: now }));
    const res = await fetch(`${collector.url}/v1/results`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: env });
    expect(res.status).toBe(200);
  }
});
afterAll(async () => {
  await collector.close();
  await data.cleanup();
});

describe('two hosts with one name', () => {
  it('are two sets of series, told apart by agent_id, and the counts agree', async () => {
    const text = await (await fetch(`${collector.url}/metrics`)).text();
    const series = text.split('\n').filter((l) => l !== '' && !l.startsWith('#')).map((l) => l.slice(0, l.lastIndexOf(' ')));
    expect(series.length - new Set(series).size, 'label sets that repeat').toBe(0);
    for (const agent of twins) {
      expect(text).toContain(`vcm_agent_last_seen_timestamp_seconds{vendor="acme",host="clone",agent_id="${agent.agentId}"}`);
      expect(text).toContain(`vcm_control_last_result_timestamp_seconds{vendor="acme",host="clone",agent_id="${agent.agentId}",control="open_ports"}`);
    }
    const states = [...text.matchAll(/^vcm_control_state\{vendor="acme",host="clone",agent_id="[0-9a-f]{64}",control="open_ports",state="(\w+)"\} 1$/gm)].map((m) => m[1]);
    expect(states).toEqual(['pass', 'pass']);
    const hosts = [...text.matchAll(/^vcm_control_hosts\{vendor="acme",control="open_ports",state="\w+"\} (\d+)$/gm)].reduce((n, m) => n + Number(m[1]), 0);
    expect(hosts).toBe(2);
  });

  it.runIf(requirePrometheus())('promtool check metrics has nothing to say', async () => {
    const text = await (await fetch(`${collector.url}/metrics`)).text();
    const res = await promtool(['check', 'metrics'], { input: text });
    expect(res.stdout + res.stderr).toBe('');
    expect(res.code).toBe(0);
  });
});
