// Runs the check on the machine the tests run on, and compares its answer for / with an
// independent reading of sysfs: a root straight on a disk or partition (no device-mapper layer)
// is unencrypted, and the check must say so by name.
import { existsSync, readFileSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { diskEncryption } from '../../../checks/disk_encryption/index.js';
import { RealHostIO } from '../../../checks/host-io.js';
import { runCheck } from '../../../checks/runner.js';

const hasMountinfo = existsSync('/proc/1/mountinfo');
if (!hasMountinfo) console.warn('disk_encryption real-host test skipped: /proc/1/mountinfo is missing (not a Linux host with procfs)');

/** The kernel name of the device under /, or null when it has no block device (major 0). */
function rootDevice(): string | null {
  const line = readFileSync('/proc/1/mountinfo', 'utf8').split('\n').find((l) => l.split(' ')[4] === '/');
  const majmin = line?.split(' ')[2];
  if (majmin === undefined || majmin.startsWith('0:')) return null;
  return path.basename(readlinkSync(`/sys/dev/block/${majmin}`));
}

describe('disk_encryption on this machine', () => {
  it.skipIf(!hasMountinfo)('judges / the way sysfs shows it', async () => {
    const finding = await runCheck(diskEncryption, { io: new RealHostIO() });
    expect(finding.facts).not.toBeNull();
    const device = rootDevice();
    const plain = device !== null && !existsSync(`/sys/class/block/${device}/dm`) && !existsSync(`/sys/class/block/${device}/md`);
    if (plain) {
      expect(finding.status, JSON.stringify(finding.reasons)).toBe('fail');
      expect(finding.reasons).toContainEqual(expect.objectContaining({ code: 'CHK_FAIL_UNENCRYPTED_VOLUME', subject: '/' }));
    } else {
      console.info(`root is on ${device ?? 'a device-less filesystem'}: checking only that / was traced`);
      const facts = finding.facts as { volumes: { mountpoints: string[] }[] };
      expect(facts.volumes.some((v) => v.mountpoints.includes('/'))).toBe(true);
    }
  });
});
