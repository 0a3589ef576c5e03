import { describe, expect, it } from 'vitest';
import { checkById } from '../../checks/index.js';
import { listCases, replayCase } from '../helpers/fixtures.js';

const cases = listCases();

describe('recorded and synthetic fixture cases', () => {
  it('finds fixture cases for every listed check', () => {
    const ids = new Set(cases.map((c) => c.checkId));
    expect([...ids].sort()).toEqual(['disk_encryption', 'open_ports']);
  });

  for (const c of cases) {
    it(`${c.checkId}/${c.platform}/${c.name}`, async () => {
      const check = checkById(c.checkId);
      expect(check, `no check named ${c.checkId}`).toBeDefined();
      const { finding, fixture } = await replayCase(check!, c.dir);
      expect(finding.platform).toBe(c.platform);
      expect(finding.status, JSON.stringify(finding.reasons)).toBe(fixture.expected.status);
      if (fixture.expected.reasonCodes !== undefined) {
        expect([...new Set(finding.reasons.map((r) => r.code))].sort()).toEqual([...new Set(fixture.expected.reasonCodes)].sort());
      }
      if (fixture.expected.facts !== undefined) {
        expect(finding.facts).toMatchObject(fixture.expected.facts as object);
      }
    });
  }
});
