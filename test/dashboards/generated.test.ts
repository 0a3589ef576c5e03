// The committed dashboards and rule files are what dashboards/src/ generates: editing a JSON or
// YAML file by hand, or the source without regenerating, fails here.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DASHBOARDS, generatedFiles } from '../../dashboards/src/index.js';
import { REPO } from '../helpers/processes.js';

const DASHBOARDS_DIR = path.join(REPO, 'dashboards');

function filesUnder(dir: string): string[] {
  return readdirSync(path.join(DASHBOARDS_DIR, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile())
    .map((e) => path.relative(DASHBOARDS_DIR, path.join(e.parentPath, e.name)).split(path.sep).join('/'));
}

describe('generated dashboards and rules', () => {
  const generated = generatedFiles();

  it('are committed exactly as dashboards/src/ generates them (run `node dashboards/generate.mjs`)', () => {
    expect(generated.size).toBeGreaterThanOrEqual(7);
    for (const [file, content] of generated) {
      expect(readFileSync(path.join(DASHBOARDS_DIR, file), 'utf8'), `dashboards/${file}`).toBe(content);
    }
  });

  it('leave no stale generated file behind: every dashboard JSON and rule file has a source', () => {
    const committed = [...filesUnder('grafana'), ...filesUnder('prometheus')].filter((f) => f !== 'prometheus/prometheus.yml');
    expect(committed.sort()).toEqual([...generated.keys()].sort());
  });

  it('are described in dashboards/README.md: every dashboard and every panel by its title', () => {
    const readme = readFileSync(path.join(DASHBOARDS_DIR, 'README.md'), 'utf8');
    for (const make of Object.values(DASHBOARDS)) {
      const d = make();
      expect(readme, d.title).toContain(`### ${d.title}`);
      const section = readme.slice(readme.indexOf(`### ${d.title}`)).split(/\n### /)[0]!;
      for (const p of d.panels) expect(section, `${d.title}: ${p.title}`).toContain(`**${p.title}**`);
    }
  });
});
