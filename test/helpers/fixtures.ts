// Fixture cases: test/fixtures/checks/<id>/<platform>/<case>/ with manifest.json, raw/ and case.json.
// Adding a case needs no code: test/checks/fixtures.test.ts finds every case directory.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as z from 'zod';
import { ReplayHostIO } from '../../checks/replay.js';
import { runCheck } from '../../checks/runner.js';
import type { AnyCheck, Finding } from '../../checks/types.js';

export const FIXTURES_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/checks');

export const caseSchema = z
  .object({
    description: z.string().min(1),
    synthetic: z.boolean(),
    provenance: z
      .object({
        capturedOn: z.string().min(1),
        capturedAt: z.string().min(1),
        redactions: z.string().optional(),
        notes: z.string().optional(),
      })
      .strict(),
    config: z.unknown().optional(),
    expected: z
      .object({
        status: z.enum(['pass', 'fail', 'unknown']),
        reasonCodes: z.array(z.string()).optional(),
        facts: z.unknown().optional(),
      })
      .strict(),
  })
  .strict();
export type FixtureCase = z.infer<typeof caseSchema>;

export interface FoundCase {
  checkId: string;
  platform: string;
  name: string;
  dir: string;
}

export function listCases(checkId?: string): FoundCase[] {
  const out: FoundCase[] = [];
  if (!existsSync(FIXTURES_ROOT)) return out;
  for (const id of readdirSync(FIXTURES_ROOT)) {
    if (checkId !== undefined && id !== checkId) continue;
    const idDir = path.join(FIXTURES_ROOT, id);
    for (const platform of readdirSync(idDir)) {
      const pDir = path.join(idDir, platform);
      for (const name of readdirSync(pDir)) {
        const dir = path.join(pDir, name);
        if (existsSync(path.join(dir, 'case.json'))) out.push({ checkId: id, platform, name, dir });
      }
    }
  }
  return out.sort((a, b) => a.dir.localeCompare(b.dir));
}

export function loadCase(dir: string): FixtureCase {
  return caseSchema.parse(JSON.parse(readFileSync(path.join(dir, 'case.json'), 'utf8')));
}

/** Runs the check on the recorded host and fails on unrecorded or unused calls. */
export async function replayCase(check: AnyCheck, dir: string): Promise<{ finding: Finding; fixture: FixtureCase }> {
  const fixture = loadCase(dir);
  const io = await ReplayHostIO.load(dir);
  const configs = fixture.config === undefined ? {} : { [check.id]: fixture.config };
  const finding = await runCheck(check, { io, configs, now: () => new Date('2026-11-22T12:00:00Z') });
  io.assertComplete();
  return { finding, fixture };
}
