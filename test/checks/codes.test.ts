// The documented codes equal the exported ones: CHK_ERR_* in checks/README.md against errors.ts,
// and each check's CHK_FAIL_* codes in its README against its source files.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CHECK_ERROR_CODES } from '../../checks/errors.js';

const CHECKS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../checks');

/** Rows like "| `CHK_ERR_X` | meaning |", in document order (duplicates kept). */
function parseErrorTable(markdown: string): [string, string][] {
  const rows: [string, string][] = [];
  for (const line of markdown.split('\n')) {
    const m = /^\|\s*`(CHK_ERR_[A-Z0-9_]+)`\s*\|(.*)\|\s*$/.exec(line.trim());
    if (m !== null) rows.push([m[1]!, m[2]!.trim()]);
  }
  return rows;
}

function failCodesIn(text: string): Set<string> {
  return new Set(text.match(/CHK_FAIL_[A-Z0-9_]+/g) ?? []);
}

const sorted = (s: Iterable<string>): string[] => [...s].sort();

describe('CHK_ERR_* codes: checks/README.md equals checks/errors.ts', () => {
  const readme = readFileSync(path.join(CHECKS_DIR, 'README.md'), 'utf8');
  const rows = parseErrorTable(readme);

  it('the parser reads table rows and nothing else', () => {
    expect(parseErrorTable('| `CHK_ERR_A` | first meaning |\n|---|---|\n`CHK_ERR_B` in prose\n| `CHK_ERR_C` | has | pipes |')).toEqual([
      ['CHK_ERR_A', 'first meaning'],
      ['CHK_ERR_C', 'has | pipes'],
    ]);
  });

  it('documents each code once', () => {
    const codes = rows.map(([code]) => code);
    expect(codes.filter((c, i) => codes.indexOf(c) !== i)).toEqual([]);
  });

  it('documents exactly the exported codes', () => {
    expect(sorted(rows.map(([code]) => code))).toEqual(sorted(Object.keys(CHECK_ERROR_CODES)));
  });

  it('documents each code with the meaning errors.ts gives it', () => {
    expect(Object.fromEntries(rows)).toEqual({ ...CHECK_ERROR_CODES });
  });

  it('mentions no CHK_ERR_* code anywhere in the README that errors.ts does not export', () => {
    const mentioned = new Set(readme.match(/CHK_ERR_[A-Z0-9_]+/g) ?? []);
    expect(sorted(mentioned).filter((c) => !(c in CHECK_ERROR_CODES))).toEqual([]);
  });
});

// Listed at test time: other checks are being added, and each folder gets the same test.
const checkDirs = readdirSync(CHECKS_DIR, { withFileTypes: true })
  .filter((e) => e.isDirectory())
  .map((e) => e.name)
  .sort();

describe('CHK_FAIL_* codes: each check README equals its sources', () => {
  it('finds check folders under checks/', () => {
    expect(checkDirs.length, `no check folders under ${CHECKS_DIR}`).toBeGreaterThan(0);
  });

  it.each(checkDirs)('checks/%s: README.md and *.ts name the same CHK_FAIL_* codes', (id) => {
    const dir = path.join(CHECKS_DIR, id);
    const readmePath = path.join(dir, 'README.md');
    expect(existsSync(readmePath), `checks/${id}/README.md is missing (CONVENTIONS.md: every check has one)`).toBe(true);
    const documented = failCodesIn(readFileSync(readmePath, 'utf8'));
    const sources = readdirSync(dir).filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'));
    expect(sources.length, `checks/${id} has no .ts sources`).toBeGreaterThan(0);
    const used = new Set<string>();
    for (const f of sources) for (const c of failCodesIn(readFileSync(path.join(dir, f), 'utf8'))) used.add(c);
    expect(
      { undocumented: sorted(used).filter((c) => !documented.has(c)), documentedButUnused: sorted(documented).filter((c) => !used.has(c)) },
      `checks/${id}: README.md vs ${sources.join(', ')}`,
    ).toEqual({ undocumented: [], documentedButUnused: [] });
  });
});
