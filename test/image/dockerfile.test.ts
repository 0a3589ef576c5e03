// Docker cannot build here, so the image is tested by what it runs: the Dockerfile's own
// ENTRYPOINT, CMD and HEALTHCHECK are read from the file and run against the built dist/.
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO, tempDir } from '../helpers/processes.js';

const dockerfile = readFileSync(path.join(REPO, 'Dockerfile'), 'utf8').replace(/\\\n\s*/g, ' ');

function jsonInstruction(name: string): string[] {
  const line = dockerfile.split('\n').find((l) => l.startsWith(`${name} `));
  if (line === undefined) throw new Error(`Dockerfile has no ${name}`);
  const json = line.slice(line.indexOf('['));
  return JSON.parse(json) as string[];
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

describe('Dockerfile', () => {
  it('builds in stages on Node 24 and runs as a non-root user', () => {
    const froms = dockerfile.split('\n').filter((l) => l.startsWith('FROM '));
    expect(froms.length).toBeGreaterThanOrEqual(2);
    for (const f of froms) expect(f).toMatch(/^FROM node:24[-.\w]*/);
    const user = dockerfile.split('\n').filter((l) => l.startsWith('USER ')).at(-1);
    expect(user).toBeDefined();
    expect(user).not.toMatch(/USER (root|0)\b/);
    // Only what the build produces reaches the runtime stage.
    expect(dockerfile).toMatch(/COPY --from=build .*\/src\/dist \.\/dist/);
  });

  it('copies every source folder the build compiles', () => {
    const tsconfig = JSON.parse(readFileSync(path.join(REPO, 'tsconfig.json'), 'utf8')) as { include: string[] };
    const folders = new Set(tsconfig.include.map((p) => p.split('/')[0]));
    for (const folder of folders) expect(dockerfile).toContain(`COPY ${folder} ./${folder}`);
  });

  it('its ENTRYPOINT and CMD serve, and its HEALTHCHECK passes against them', async () => {
    const data = await tempDir('image');
    const port = await freePort();
    const local = (arg: string) => arg.replace('/app/', `${REPO}/`).replace(/^\/data$/, data.dir).replace('8470', String(port));
    const [entry, ...entryArgs] = jsonInstruction('ENTRYPOINT').map(local);
    const cmd = jsonInstruction('CMD').map(local);
    expect(entry).toBe('node');
    const child = spawn(process.execPath, [...entryArgs, ...cmd], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      await new Promise<void>((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          if (out.includes('collector ready')) resolve();
        });
        child.once('exit', (code) => reject(new Error(`exited ${code}: ${out}`)));
      });
      // HEALTHCHECK's JSON array is the one after its options and "CMD": run it as the container would.
      const [hcBin, ...hcArgs] = jsonInstruction('HEALTHCHECK').map(local);
      expect(hcBin).toBe('node');
      expect(() => execFileSync(process.execPath, hcArgs, { stdio: 'pipe' })).not.toThrow();
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      // With the server gone the same health check must fail, or it checks nothing.
      expect(() => execFileSync(process.execPath, hcArgs, { stdio: 'pipe' })).toThrow();
    } finally {
      child.kill('SIGKILL');
      await data.cleanup();
    }
  });
});
