// Runs the check on the machine the tests run on and compares its facts with an independent
// reading of /proc and /sys: the loaded modules, whether the kernel has USB and module support,
// and whether a storage interface is attached.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { RealHostIO } from '../../../checks/host-io.js';
import { runCheck } from '../../../checks/runner.js';
import { usbPolicy } from '../../../checks/usb_policy/index.js';
import type { LinuxFacts } from '../../../checks/usb_policy/linux.js';

const isLinux = process.platform === 'linux' && existsSync('/proc/cmdline');
if (!isLinux) console.warn('usb_policy real-host test skipped: not a Linux host with procfs');

function loadedModules(): string[] {
  if (!existsSync('/proc/modules')) return [];
  return readFileSync('/proc/modules', 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => l.split(' ')[0]!);
}

function storageInterfaces(): string[] {
  const dir = '/sys/bus/usb/devices';
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((n) => n.includes(':'))
    .filter((n) => {
      try {
        return readFileSync(`${dir}/${n}/bInterfaceClass`, 'utf8').trim() === '08';
      } catch {
        return false;
      }
    })
    .sort();
}

describe('usb_policy on this machine', () => {
  it.skipIf(!isLinux)('sees the modules, USB support and storage interfaces that /proc and /sys show', async () => {
    const finding = await runCheck(usbPolicy, { io: new RealHostIO({ platform: 'linux' }) });
    expect(finding.facts, JSON.stringify(finding.reasons)).not.toBeNull();
    const facts = finding.facts as LinuxFacts;
    expect(facts.moduleSupport).toBe(existsSync('/proc/modules'));
    expect(facts.usbBus).toBe(existsSync('/sys/bus/usb/devices'));
    const loaded = new Set(loadedModules());
    for (const m of facts.modules) expect(m.loaded, m.name).toBe(loaded.has(m.name));
    expect(facts.attachedMassStorage.map((d) => d.interface)).toEqual(storageInterfaces());
    if (!facts.moduleSupport && !facts.usbBus) {
      // A kernel that has no USB and cannot load modules can never run a storage driver.
      expect(finding.status).toBe('pass');
    } else {
      console.info(`this host has USB or loadable modules: status ${finding.status}, checking only the facts`);
    }
  });
});
