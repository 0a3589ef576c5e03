// Writes the generated dashboards and rule files from dashboards/src/ (TypeScript, bundled with
// esbuild in memory together with Grafana's Foundation SDK, a devDependency: Node 20 runs no
// TypeScript by itself). Run after editing the source:
//   node dashboards/generate.mjs
import { build } from 'esbuild';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const result = await build({
  entryPoints: [path.join(here, 'src/index.ts')],
  bundle: true,
  format: 'esm',
  platform: 'node',
  write: false,
});
const source = result.outputFiles[0].text;
const { generatedFiles } = await import(`data:text/javascript;base64,${Buffer.from(source).toString('base64')}`);
for (const [file, content] of generatedFiles()) {
  const target = path.join(here, file);
  await mkdir(path.dirname(target), { recursive: true });
  await writeFile(target, content);
  console.log(`wrote dashboards/${file}`);
}
