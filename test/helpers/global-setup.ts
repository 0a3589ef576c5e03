// Integration tests run the built CLIs as a user would, so build once before any test runs.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export default function setup(): void {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
  // What `npm run build` does: tsc, then the agent's bundle.
  execFileSync(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', path.join(root, 'tsconfig.json')], {
    stdio: 'inherit',
  });
  execFileSync(process.execPath, [path.join(root, 'agent/bundle.mjs')], { stdio: 'inherit' });
}
