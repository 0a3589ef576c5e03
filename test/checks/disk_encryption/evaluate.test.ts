import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { configSchema, diskEncryption, evaluate, type Config, type Facts, type Volume } from '../../../checks/disk_encryption/index.js';
import { manifestSchema } from '../../../checks/replay.js';
import { listCases } from '../../helpers/fixtures.js';

const defaults: Config = configSchema.parse({});

function mount(mountpoints: string[], state: Volume['state'], extra: Partial<Volume> = {}): Volume {
  return { kind: 'mount', mountpoints, fstype: 'ext4', source: '/dev/x', device: 'x', layers: [], state, ...extra };
}

function swap(p: string, state: Volume['state']): Volume {
  return { kind: 'swap', mountpoints: [p], fstype: 'swap', source: p, device: 'x', layers: [], state };
}

function facts(volumes: Volume[]): Facts {
  return { mountSource: '/proc/1/mountinfo', volumes, notLocal: [], ignoredPseudoMounts: 0 };
}

function codes(ev: { reasons: { code: string; subject?: string }[] }): string[] {
  return ev.reasons.map((r) => `${r.code} ${r.subject ?? ''}`);
}

describe('configSchema', () => {
  it('fills the defaults from {}', () => {
    expect(defaults).toEqual({
      ignoreMountpoints: ['/boot', '/boot/efi', '/efi'],
      requireSwapEncrypted: true,
      requireAllFixedVolumes: true,
      requireRemovableVolumes: false,
    });
  });

  it('rejects unknown keys and relative mount points', () => {
    expect(configSchema.safeParse({ ignoreMountpoint: ['/boot'] }).success).toBe(false);
    expect(configSchema.safeParse({ ignoreMountpoints: ['boot'] }).success).toBe(false);
    expect(configSchema.safeParse({ requireSwapEncrypted: 'no' }).success).toBe(false);
  });

  it('does not share the default array between parses', () => {
    const a = configSchema.parse({});
    a.ignoreMountpoints.push('/srv');
    expect(configSchema.parse({}).ignoreMountpoints).toEqual(['/boot', '/boot/efi', '/efi']);
  });
});

describe('evaluate', () => {
  it('passes when every judged volume and swap is encrypted', () => {
    const ev = evaluate(facts([mount(['/'], 'encrypted'), mount(['/home'], 'encrypted'), swap('/dev/dm-1', 'encrypted')]), defaults);
    expect(ev).toEqual({ status: 'pass', reasons: [] });
  });

  it('skips volumes mounted only at ignored mount points', () => {
    const ev = evaluate(facts([mount(['/'], 'encrypted'), mount(['/boot'], 'unencrypted'), mount(['/boot/efi'], 'unresolved')]), defaults);
    expect(ev.status).toBe('pass');
  });

  it('judges a volume that is also mounted somewhere not ignored, naming that mount point', () => {
    const ev = evaluate(facts([mount(['/'], 'encrypted'), mount(['/boot', '/srv/boot-copy'], 'unencrypted')]), defaults);
    expect(ev.status).toBe('fail');
    expect(codes(ev)).toEqual(['CHK_FAIL_UNENCRYPTED_VOLUME /srv/boot-copy']);
  });

  it('fails on an unencrypted root, naming /', () => {
    const ev = evaluate(facts([mount(['/'], 'unencrypted')]), defaults);
    expect(ev.status).toBe('fail');
    expect(codes(ev)).toEqual(['CHK_FAIL_UNENCRYPTED_VOLUME /']);
  });

  it('fails on unencrypted swap unless the config waives swap', () => {
    const f = facts([mount(['/'], 'encrypted'), swap('/dev/sda3', 'unencrypted'), swap('/swapfile', 'unresolved')]);
    const strict = evaluate(f, defaults);
    expect(strict.status).toBe('fail');
    expect(codes(strict)).toEqual(['CHK_FAIL_UNENCRYPTED_SWAP /dev/sda3']);
    expect(evaluate(f, { ...defaults, requireSwapEncrypted: false })).toEqual({ status: 'pass', reasons: [] });
  });

  it('lets fail dominate unresolved volumes', () => {
    const ev = evaluate(facts([mount(['/'], 'unresolved'), mount(['/home'], 'unencrypted'), swap('/dev/sdb2', 'unencrypted')]), defaults);
    expect(ev.status).toBe('fail');
    expect(codes(ev)).toEqual(['CHK_FAIL_UNENCRYPTED_VOLUME /home', 'CHK_FAIL_UNENCRYPTED_SWAP /dev/sdb2']);
  });

  it('answers unknown for each unresolved volume', () => {
    const ev = evaluate(facts([mount(['/'], 'encrypted'), mount(['/data'], 'unresolved', { note: 'zfs' }), swap('/swap', 'unresolved')]), defaults);
    expect(ev.status).toBe('unknown');
    expect(codes(ev)).toEqual(['CHK_ERR_UNRESOLVED /data', 'CHK_ERR_UNRESOLVED /swap']);
    expect(ev.reasons[0]?.message).toContain('zfs');
  });

  it('never passes without a root volume', () => {
    for (const f of [facts([]), facts([mount(['/home'], 'encrypted')]), facts([swap('/', 'encrypted')])]) {
      const ev = evaluate(f, defaults);
      expect(ev.status).toBe('unknown');
      expect(codes(ev)).toEqual(['CHK_ERR_UNRESOLVED /']);
    }
  });

  it('accepts a root the config ignores on purpose', () => {
    expect(evaluate(facts([mount(['/'], 'unencrypted')]), { ...defaults, ignoreMountpoints: ['/'] }).status).toBe('pass');
  });
});

describe('the disk_encryption spec', () => {
  it('is declared for Linux, macOS and Windows, with sources (Linux reads files only)', () => {
    expect(diskEncryption.id).toBe('disk_encryption');
    expect(diskEncryption.version).toBe('1.1.0');
    expect(diskEncryption.platforms).toEqual(['linux', 'darwin', 'win32']);
    expect(diskEncryption.sources.linux?.every((s) => s.kind === 'file' && s.why.length > 0)).toBe(true);
  });

  // --list-sources must cover what the check reads: every path in every fixture matches a declaration.
  it('declares every path its fixtures read', () => {
    const patterns = (diskEncryption.sources.linux ?? []).map((s) => {
      if (s.kind !== 'file') throw new Error('Linux declares files only');
      const re = s.path.split(/<[^>]+>/).map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
      // <path> may span directories; other placeholders are one path component.
      const joined = s.path.includes('<path>') ? re.join('.+') : re.join('[^/]+');
      return new RegExp(`^${joined}$`);
    });
    const cases = listCases('disk_encryption').filter((c) => c.platform === 'linux');
    expect(cases.length).toBeGreaterThan(0);
    for (const c of cases) {
      const manifest = manifestSchema.parse(JSON.parse(readFileSync(path.join(c.dir, 'manifest.json'), 'utf8')));
      for (const call of manifest.calls) {
        expect(call.op, `${c.name}: Linux runs no commands`).not.toBe('run');
        if (call.op === 'run' || call.op === 'httpGet') continue;
        expect(patterns.some((p) => p.test(call.path)), `${c.name}: ${call.path} is not declared`).toBe(true);
      }
    }
  });
});
