// Edge cases of the Linux walk, replayed strictly from inline manifests (no host needed).
import { describe, expect, it } from 'vitest';
import { diskEncryption, type Facts } from '../../../checks/disk_encryption/index.js';
import type { CheckErrorCode } from '../../../checks/errors.js';
import { ReplayHostIO, type RecordedCall } from '../../../checks/replay.js';
import { runCheck } from '../../../checks/runner.js';
import type { Finding } from '../../../checks/types.js';

const SWAPS_HEADER = 'Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n';
const SATA = '../../devices/pci0000:00/0000:00:17.0/ata1/host0/target0:0:0/0:0:0:0/block';

const file = (p: string, content: string): RecordedCall => ({ op: 'readFile', path: p, content });
const fileError = (p: string, error: CheckErrorCode): RecordedCall => ({ op: 'readFile', path: p, error });
const link = (p: string, target: string): RecordedCall => ({ op: 'readLink', path: p, target });
const linkError = (p: string, error: CheckErrorCode): RecordedCall => ({ op: 'readLink', path: p, error });
const dir = (p: string, names: string[]): RecordedCall => ({ op: 'readDir', path: p, entries: names.map((name) => ({ name, type: 'symlink' })) });
const dirError = (p: string, error: CheckErrorCode): RecordedCall => ({ op: 'readDir', path: p, error });

const mountinfo = (...lines: string[]): RecordedCall => file('/proc/1/mountinfo', `${lines.join('\n')}\n`);
const swaps = (...lines: string[]): RecordedCall => file('/proc/swaps', SWAPS_HEADER + lines.map((l) => `${l}\n`).join(''));
const devLink = (devno: string, name: string): RecordedCall => link(`/sys/dev/block/${devno}`, `../../devices/virtual/block/${name}`);

/** A whole disk without holders below it. */
const disk = (name: string): RecordedCall[] => [fileError(`/sys/class/block/${name}/dm/uuid`, 'CHK_ERR_SOURCE_MISSING'), dir(`/sys/class/block/${name}/slaves`, [])];
/** A partition of a SATA disk, and that disk. */
const partition = (name: string, of: string): RecordedCall[] => [
  fileError(`/sys/class/block/${name}/dm/uuid`, 'CHK_ERR_SOURCE_MISSING'),
  dirError(`/sys/class/block/${name}/slaves`, 'CHK_ERR_SOURCE_MISSING'),
  link(`/sys/class/block/${name}`, `${SATA}/${of}/${name}`),
  ...disk(of),
];
const dm = (name: string, uuid: string, slaves: string[]): RecordedCall[] => [
  file(`/sys/class/block/${name}/dm/uuid`, `${uuid}\n`),
  dir(`/sys/class/block/${name}/slaves`, slaves),
];
const LUKS = (name: string) => `CRYPT-LUKS2-6681c33580564635b45e3a1f7a79dd11-${name}`;
const LVM = 'LVM-jePbwq2d1TBWteIk4jAjnQzkKCmdvLBVbxQQIZtWdIlNeKtL820LxwOglvNtPnau';
/** A LUKS2 root on sda2: its mountinfo line, and the sysfs reads that trace it. */
const ROOT_LINE = '28 1 253:0 / / rw,relatime shared:1 - ext4 /dev/mapper/cryptroot rw';
const ROOT_TRACE = [devLink('253:0', 'dm-0'), ...dm('dm-0', LUKS('cryptroot'), ['sda2']), ...partition('sda2', 'sda')];

/** Replays the calls strictly: a call the check makes that is not listed fails, so does an unused one. */
async function run(calls: RecordedCall[], config?: unknown): Promise<Finding & { facts: Facts | null }> {
  const unique = new Map<string, RecordedCall>();
  for (const c of calls) {
    const key = c.op === 'run' ? c.command : c.op === 'httpGet' ? c.url : `${c.op} ${c.path}`;
    if (!unique.has(key)) unique.set(key, c);
  }
  const io = new ReplayHostIO({ version: 1, platform: 'linux', calls: [...unique.values()] });
  const finding = await runCheck(diskEncryption, { io, configs: config === undefined ? {} : { disk_encryption: config } });
  io.assertComplete();
  return finding as Finding & { facts: Facts | null };
}

describe('disk_encryption collect on Linux', () => {
  it('groups bind mounts of one device into one volume', async () => {
    const f = await run([
      mountinfo(
        ROOT_LINE,
        '90 28 253:0 /var/lib/data /srv/data rw,relatime shared:1 - ext4 /dev/mapper/cryptroot rw',
      ),
      swaps(),
      ...ROOT_TRACE,
    ]);
    expect(f.status).toBe('pass');
    expect(f.facts?.volumes).toHaveLength(1);
    expect(f.facts?.volumes[0]?.mountpoints).toEqual(['/', '/srv/data']);
  });

  it('reports network mounts as not local and counts pseudo ones', async () => {
    const f = await run([
      mountinfo(
        ROOT_LINE,
        '22 28 0:21 / /proc rw - proc proc rw',
        '23 28 0:44 / /mnt/nas\\040share rw - cifs //nas/share rw,vers=3.1.1',
        '24 28 0:45 / /home/alice/remote rw - fuse.sshfs alice@host: rw,user_id=1000',
        '25 28 0:46 / /var/lib/lxcfs rw - fuse.lxcfs lxcfs rw',
        '26 28 0:47 / /var/lib/docker/overlay2/abc/merged rw - overlay overlay rw,lowerdir=/x,upperdir=/y,workdir=/z',
      ),
      swaps(),
      ...ROOT_TRACE,
    ]);
    expect(f.status).toBe('pass');
    expect(f.facts?.notLocal).toEqual([
      { mountpoint: '/home/alice/remote', fstype: 'fuse.sshfs' },
      { mountpoint: '/mnt/nas share', fstype: 'cifs' },
    ]);
    expect(f.facts?.ignoredPseudoMounts).toBe(3);
  });

  it('does not pass inside a container that sees only its overlay root', async () => {
    const f = await run([
      fileError('/proc/1/mountinfo', 'CHK_ERR_SOURCE_MISSING'),
      file(
        '/proc/self/mountinfo',
        '500 400 0:52 / / rw,relatime - overlay overlay rw,lowerdir=/var/lib/docker/overlay2/l/A,upperdir=/u,workdir=/w\n' +
          '501 500 0:55 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw\n',
      ),
      swaps(),
    ]);
    expect(f.status).toBe('unknown');
    expect(f.reasons).toEqual([expect.objectContaining({ code: 'CHK_ERR_UNRESOLVED', subject: '/' })]);
    expect(f.facts?.mountSource).toBe('/proc/self/mountinfo');
  });

  it('answers unknown with the io code when no mount table can be read', async () => {
    const f = await run([fileError('/proc/1/mountinfo', 'CHK_ERR_PERMISSION'), fileError('/proc/self/mountinfo', 'CHK_ERR_PERMISSION')]);
    expect(f.status).toBe('unknown');
    expect(f.reasons[0]?.code).toBe('CHK_ERR_PERMISSION');
    expect(f.facts).toBeNull();
  });

  it('does not fall back on errors other than missing or denied', async () => {
    const f = await run([fileError('/proc/1/mountinfo', 'CHK_ERR_TIMEOUT')]);
    expect(f.reasons[0]?.code).toBe('CHK_ERR_TIMEOUT');
  });

  it('answers CHK_ERR_PARSE for a mount table it cannot parse, or an empty one', async () => {
    expect((await run([file('/proc/1/mountinfo', '/dev/sda1 / ext4 rw 0 0\n')])).reasons[0]?.code).toBe('CHK_ERR_PARSE');
    expect((await run([file('/proc/1/mountinfo', '')])).reasons[0]?.code).toBe('CHK_ERR_PARSE');
  });

  it('reads no swap when the kernel has no /proc/swaps', async () => {
    const f = await run([mountinfo(ROOT_LINE), fileError('/proc/swaps', 'CHK_ERR_SOURCE_MISSING'), ...ROOT_TRACE]);
    expect(f.status).toBe('pass');
    expect(f.facts?.volumes.filter((v) => v.kind === 'swap')).toEqual([]);
  });

  it('resolves /dev/mapper through sysfs dm names when /dev is not the host one', async () => {
    const f = await run([
      mountinfo('68 1 0:35 /root / rw,relatime shared:1 - btrfs /dev/mapper/luks-home rw,subvol=/root'),
      swaps(),
      linkError('/dev/mapper/luks-home', 'CHK_ERR_SOURCE_MISSING'),
      dir('/sys/class/block', ['sda', 'dm-10', 'dm-2', 'sda1']),
      file('/sys/class/block/dm-2/dm/name', 'vg-other\n'),
      file('/sys/class/block/dm-10/dm/name', 'luks-home\n'),
      ...dm('dm-10', LUKS('luks-home'), ['sda1']),
      ...partition('sda1', 'sda'),
    ]);
    expect(f.status).toBe('pass');
    expect(f.facts?.volumes[0]).toMatchObject({ device: 'dm-10', state: 'encrypted' });
  });

  it('leaves a major-0 source that is not a device path unresolved (zfs)', async () => {
    const f = await run([
      mountinfo(ROOT_LINE, '80 28 0:60 / /tank/vms rw,noatime shared:40 - zfs tank/vms rw,xattr,posixacl'),
      swaps(),
      ...ROOT_TRACE,
    ]);
    expect(f.status).toBe('unknown');
    expect(f.facts?.volumes[1]).toMatchObject({ mountpoints: ['/tank/vms'], device: null, state: 'unresolved' });
    expect(f.reasons[0]).toMatchObject({ code: 'CHK_ERR_UNRESOLVED', subject: '/tank/vms' });
  });

  it('traces fuseblk (NTFS) through its source path', async () => {
    const f = await run([
      ...ROOT_TRACE,
      mountinfo(
        ROOT_LINE,
        '120 28 0:70 / /media/usb rw,nosuid,nodev,relatime shared:60 - fuseblk /dev/sdb1 rw,user_id=0,group_id=0,allow_other,blksize=4096',
      ),
      swaps(),
      ...partition('sdb1', 'sdb'),
    ]);
    expect(f.status).toBe('fail');
    expect(f.reasons).toEqual([expect.objectContaining({ code: 'CHK_FAIL_UNENCRYPTED_VOLUME', subject: '/media/usb' })]);
  });

  it('ignores zram swap and zram-backed mounts', async () => {
    const f = await run([
      ...ROOT_TRACE,
      mountinfo(
        ROOT_LINE,
        '40 28 252:1 / /var/tmp rw,relatime shared:20 - ext4 /dev/zram1 rw',
      ),
      link('/sys/dev/block/252:1', '../../devices/virtual/block/zram1'),
      swaps('/dev/zram0                              partition\t8388604\t\t0\t\t100'),
    ]);
    expect(f.status).toBe('pass');
    expect(f.facts?.volumes.map((v) => v.mountpoints[0])).toEqual(['/']);
    expect(f.facts?.ignoredPseudoMounts).toBe(1);
  });

  it('judges a loop device by the volume that holds its backing file', async () => {
    const base = [
      mountinfo(
        ROOT_LINE,
        '50 28 8:3 / /data rw,relatime shared:30 - ext4 /dev/sda3 rw',
        '60 28 7:0 / /mnt/image rw,relatime shared:31 - ext4 /dev/loop0 rw',
      ),
      swaps(),
      ...ROOT_TRACE,
      link('/sys/dev/block/8:3', '../../devices/x/block/sda/sda3'),
      ...partition('sda3', 'sda'),
      devLink('7:0', 'loop0'),
    ];
    const onRoot = await run([...base, file('/sys/class/block/loop0/loop/backing_file', '/var/lib/images/disk.img\n')]);
    expect(onRoot.facts?.volumes.find((v) => v.mountpoints[0] === '/mnt/image')).toMatchObject({
      device: 'loop0',
      state: 'encrypted',
      layers: [{ name: 'loop0', type: 'loop' }],
      note: '/var/lib/images/disk.img is on the volume mounted at /',
    });
    const onData = await run([...base, file('/sys/class/block/loop0/loop/backing_file', '/data/disk.img (deleted)\n')]);
    expect(onData.facts?.volumes.find((v) => v.mountpoints[0] === '/mnt/image')?.state).toBe('unencrypted');
    expect(onData.reasons.map((r) => r.subject)).toEqual(['/data', '/mnt/image']);
  });

  it('leaves a loop device without a backing file unresolved', async () => {
    const f = await run([
      mountinfo('28 1 7:1 / / rw - ext4 /dev/loop1 rw'),
      swaps(),
      devLink('7:1', 'loop1'),
      fileError('/sys/class/block/loop1/loop/backing_file', 'CHK_ERR_SOURCE_MISSING'),
    ]);
    expect(f.status).toBe('unknown');
    expect(f.facts?.volumes[0]).toMatchObject({ state: 'unresolved', note: 'loop1 has no backing file' });
  });

  it('requires every md RAID member to be encrypted', async () => {
    const head = [mountinfo('28 1 9:127 / / rw,relatime shared:1 - ext4 /dev/md127 rw'), swaps(), devLink('9:127', 'md127'), fileError('/sys/class/block/md127/dm/uuid', 'CHK_ERR_SOURCE_MISSING'), dir('/sys/class/block/md127/slaves', ['dm-0', 'dm-1'])];
    const both = await run([...head, ...dm('dm-0', LUKS('md0'), ['sda1']), ...partition('sda1', 'sda'), ...dm('dm-1', LUKS('md1'), ['sdb1']), ...partition('sdb1', 'sdb')]);
    expect(both.status).toBe('pass');
    expect(both.facts?.volumes[0]?.layers.map((l) => `${l.type}:${l.name}`)).toEqual([
      'md:md127', 'crypt:dm-0', 'partition:sda1', 'disk:sda', 'crypt:dm-1', 'partition:sdb1', 'disk:sdb',
    ]);
    const one = await run([...head, ...dm('dm-0', LUKS('md0'), ['sda1']), ...partition('sda1', 'sda'), ...dm('dm-1', LVM, ['sdb1']), ...partition('sdb1', 'sdb')]);
    expect(one.status).toBe('fail');
  });

  it('follows a partition of an md array to its members', async () => {
    const f = await run([
      mountinfo('28 1 259:5 / / rw - ext4 /dev/md127p1 rw'),
      swaps(),
      link('/sys/dev/block/259:5', '../../devices/virtual/block/md127/md127p1'),
      fileError('/sys/class/block/md127p1/dm/uuid', 'CHK_ERR_SOURCE_MISSING'),
      dirError('/sys/class/block/md127p1/slaves', 'CHK_ERR_SOURCE_MISSING'),
      link('/sys/class/block/md127p1', '../../devices/virtual/block/md127/md127p1'),
      fileError('/sys/class/block/md127/dm/uuid', 'CHK_ERR_SOURCE_MISSING'),
      dir('/sys/class/block/md127/slaves', ['dm-0']),
      ...dm('dm-0', LUKS('md0'), ['sda1']),
      ...partition('sda1', 'sda'),
    ]);
    expect(f.status).toBe('pass');
  });

  it('leaves a non-crypt dm device without slaves unresolved', async () => {
    const f = await run([mountinfo('28 1 253:0 / / rw - ext4 /dev/mapper/odd rw'), swaps(), devLink('253:0', 'dm-0'), ...dm('dm-0', '', [])]);
    expect(f.status).toBe('unknown');
    expect(f.facts?.volumes[0]?.layers).toEqual([{ name: 'dm-0', type: 'dm' }]);
  });

  it('stops at a cycle in the device stack', async () => {
    const f = await run([
      mountinfo('28 1 253:0 / / rw - ext4 /dev/mapper/a rw'),
      swaps(),
      devLink('253:0', 'dm-0'),
      ...dm('dm-0', LVM, ['dm-1']),
      ...dm('dm-1', LVM, ['dm-0']),
    ]);
    expect(f.status).toBe('unknown');
    expect(f.facts?.volumes[0]?.note).toBe('cycle in the device stack at dm-0');
  });

  it('leaves a device unresolved when its sysfs entry is missing', async () => {
    const f = await run([
      mountinfo('28 1 8:2 / / rw - ext4 /dev/sda2 rw'),
      swaps(),
      linkError('/sys/dev/block/8:2', 'CHK_ERR_SOURCE_MISSING'),
    ]);
    expect(f.status).toBe('unknown');
    expect(f.facts?.volumes[0]).toMatchObject({ device: null, state: 'unresolved', note: 'cannot read /sys/dev/block/8:2 (CHK_ERR_SOURCE_MISSING)' });
  });

  it('leaves a swap file on a network mount unresolved', async () => {
    const f = await run([
      ...ROOT_TRACE,
      mountinfo(ROOT_LINE, '70 28 0:50 / /nfs rw - nfs4 srv:/x rw'),
      swaps('/nfs/swapfile                           file\t\t1048572\t\t0\t\t-2'),
    ]);
    expect(f.status).toBe('unknown');
    expect(f.reasons).toEqual([expect.objectContaining({ code: 'CHK_ERR_UNRESOLVED', subject: '/nfs/swapfile' })]);
  });

  it('keeps the volumes sorted whatever the mountinfo order', async () => {
    const f = await run([
      mountinfo(
        '50 28 8:3 / /srv rw - ext4 /dev/sda3 rw',
        ROOT_LINE,
        '51 28 8:3 / /home rw - ext4 /dev/sda3 rw',
      ),
      swaps('/dev/sda4                               partition\t1000\t\t0\t\t-2'),
      ...ROOT_TRACE,
      link('/sys/dev/block/8:3', '../../devices/x/block/sda/sda3'),
      ...partition('sda3', 'sda'),
      ...partition('sda4', 'sda'),
    ]);
    expect(f.facts?.volumes.map((v) => `${v.kind} ${v.mountpoints.join(',')}`)).toEqual(['mount /', 'mount /home,/srv', 'swap /dev/sda4']);
  });
});
