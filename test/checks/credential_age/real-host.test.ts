// Runs the check on the machine the tests run on and compares the accounts it reports with an
// independent reading of /etc/passwd, and its verdict on /etc/shadow with whether we may read it.
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { credentialAge, type Facts } from '../../../checks/credential_age/index.js';
import { RealHostIO } from '../../../checks/host-io.js';
import { runCheck } from '../../../checks/runner.js';

const isLinux = process.platform === 'linux' && existsSync('/etc/passwd');
if (!isLinux) console.warn('credential_age real-host test skipped: not a Linux host with /etc/passwd');

function readable(path: string): boolean {
  try {
    accessSync(path, constants.R_OK);
    return true;
  } catch {
    return false;
  }
}

describe('credential_age on this machine', () => {
  it.skipIf(!isLinux)('reports the accounts /etc/passwd puts in scope, and knows whether it could read /etc/shadow', async () => {
    const finding = await runCheck(credentialAge, { io: new RealHostIO() });
    expect(finding.facts, JSON.stringify(finding.reasons)).not.toBeNull();
    const facts = finding.facts as Facts;
    const expected = readFileSync('/etc/passwd', 'utf8')
      .split('\n')
      .filter((l) => l !== '' && !l.startsWith('#') && !l.startsWith('+') && !l.startsWith('-'))
      .map((l) => l.split(':'))
      .filter((f) => Number(f[2]) === 0 || Number(f[2]) >= 1000)
      .map((f) => f[0]);
    expect(facts.accounts.map((a) => a.name).sort()).toEqual(expected.sort());
    const shadow = facts.sources.find((s) => s.path === '/etc/shadow');
    if (readable('/etc/shadow')) {
      expect(shadow?.state).toBe('read');
    } else {
      expect(shadow).toEqual({ path: '/etc/shadow', kinds: ['password'], state: 'unreadable', code: 'CHK_ERR_PERMISSION' });
      expect(finding.status).not.toBe('pass');
    }
  });
});
