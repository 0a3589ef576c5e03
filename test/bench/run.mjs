// npm run bench [name...]: runs each test/bench/*.bench.mjs in its own process, one after another,
// so that one benchmark's memory and CPU never colour the next one's numbers. Each benchmark
// prints its figures as ratios against a baseline measured in the same run.
import { spawnSync } from 'node:child_process';
import { readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SCRATCH_ROOT, describeScratch, markRemoved, scratchEntries } from './scratch.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const wanted = process.argv.slice(2);
const benches = readdirSync(here)
  .filter((f) => f.endsWith('.bench.mjs'))
  .filter((f) => wanted.length === 0 || wanted.some((w) => f.includes(w)))
  .sort();
if (benches.length === 0) {
  console.error(`no benchmark matches ${wanted.join(' ')}`);
  process.exit(2);
}
const before = scratchEntries();
console.log(await describeScratch());
let failed = 0;
for (const bench of benches) {
  console.log(`\n=== ${bench}`);
  const res = spawnSync(process.execPath, ['--expose-gc', path.join(here, bench)], { stdio: 'inherit', env: { ...process.env, BENCH_DEFER_CLEANUP: '1' } });
  if (res.status !== 0) failed++;
}
// The benchmarks' scratch folders, removed once all of them are done (see removeScratch).
if (process.env.BENCH_KEEP !== '1') {
  for (const name of scratchEntries()) if (!before.has(name)) rmSync(path.join(SCRATCH_ROOT, name), { recursive: true, force: true });
  markRemoved();
}
process.exit(failed === 0 ? 0 : 1);
