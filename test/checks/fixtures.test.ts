import { describe, expect, it } from 'vitest';
import { CHECKS, checkById } from '../../checks/index.js';
import { listCases, loadCase, replayCase } from '../helpers/fixtures.js';

const cases = listCases();

// sso_coverage reads an identity provider's API, not the host: its evidence is the Okta scenario
// suite against a local Okta-compatible server (test/checks/sso_coverage), not HostIO fixtures.
const NOT_HOST_CHECKS = new Set(['sso_coverage']);

describe('recorded and synthetic fixture cases', () => {
  it('every fixture folder names a listed check and one of its platforms', () => {
    for (const c of cases) {
      const check = checkById(c.checkId);
      expect(check, `${c.dir}: no check named ${c.checkId}`).toBeDefined();
      expect(check!.platforms, `${c.dir}: ${c.checkId} does not run on ${c.platform}`).toContain(c.platform);
    }
  });

  for (const check of CHECKS.filter((c) => !NOT_HOST_CHECKS.has(c.id))) {
    for (const platform of check.platforms) {
      it(`${check.id} on ${platform} has at least one pass, one fail and one unknown case`, () => {
        const statuses = new Set(
          cases.filter((c) => c.checkId === check.id && c.platform === platform).map((c) => loadCase(c.dir).expected.status),
        );
        expect([...statuses].sort()).toEqual(['fail', 'pass', 'unknown']);
      });
    }
  }

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
