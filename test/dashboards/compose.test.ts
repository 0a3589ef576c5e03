// compose.yaml cannot run here (no Docker), so it is held to what it uses: the collector image's
// Dockerfile (port, volume, command), prometheus.yml's target, and the provisioning paths.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { JOB } from '../../dashboards/src/names.js';
import { REPO } from '../helpers/processes.js';

const read = (f: string) => readFileSync(path.join(REPO, f), 'utf8');
const dockerfile = read('Dockerfile');
const compose = read('dashboards/compose.yaml');
const promConfig = read('dashboards/prometheus/prometheus.yml');
const datasource = read('dashboards/provisioning/datasources/vcm-prometheus.yml');
const provider = read('dashboards/provisioning/dashboards/vcm.yml');

/** The lines of one service in compose.yaml. */
function service(name: string): string {
  const m = new RegExp(`^  ${name}:\\n((?:    .*\\n|\\n)+)`, 'm').exec(compose);
  if (m === null) throw new Error(`no service ${name} in compose.yaml`);
  return m[1]!;
}

describe('dashboards/compose.yaml, read against what it runs', () => {
  it('builds the collector from the repository\'s Dockerfile, with its port and its data volume', () => {
    const collector = service('collector');
    expect(collector).toMatch(/context: \.\.\n\s+dockerfile: Dockerfile/);
    const exposed = /^EXPOSE (\d+)$/m.exec(dockerfile)![1]!;
    const volume = /^VOLUME \["([^"]+)"\]$/m.exec(dockerfile)![1]!;
    expect(collector).toContain(`:${exposed}:${exposed}"`);
    expect(collector).toMatch(new RegExp(`- collector-data:${volume}\\n`));
    // The image serves on that port, on every interface, with its evidence in the volume.
    expect(dockerfile).toMatch(new RegExp(`CMD \\["serve", "--data-dir", "${volume}", "--listen", "0\\.0\\.0\\.0:${exposed}", "--allow-plain-http"\\]`));
    // prometheus.yml scrapes that service and port, as the job the alerts expect.
    expect(promConfig).toContain(`job_name: ${JOB}`);
    expect(promConfig).toContain(`targets: ['collector:${exposed}']`);
  });

  it('gives Prometheus the config and the rule files beside it', () => {
    const prometheus = service('prometheus');
    const mount = /- \.\/prometheus:([^:\n]+):ro/.exec(prometheus)?.[1];
    expect(mount).toBeDefined();
    expect(prometheus).toContain(`--config.file=${mount}/prometheus.yml`);
    for (const f of ['vcm-recording.rules.yml', 'vcm-alerts.rules.yml']) expect(promConfig).toContain(`  - ${f}\n`);
    expect(datasource).toMatch(/url: http:\/\/prometheus:9090\n/);
    expect(prometheus).toContain(':9090:9090');
  });

  it('mounts Grafana\'s provisioning and the dashboards where the provider reads them', () => {
    const grafana = service('grafana');
    expect(grafana).toContain('- ./provisioning:/etc/grafana/provisioning:ro');
    const providerPath = /path: (\S+)/.exec(provider)![1]!;
    expect(grafana).toContain(`- ./grafana:${providerPath}:ro`);
    // The datasource's scrape interval is prometheus.yml's ($__rate_interval is built on it).
    expect(datasource).toContain(`timeInterval: ${/scrape_interval: (\S+)/.exec(promConfig)![1]}`);
  });
});
