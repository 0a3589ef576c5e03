import { describe, expect, it } from 'vitest';
import {
  classifyFstype,
  decodeOctalEscapes,
  dmUuidPrefix,
  isEncryptingDmUuid,
  isRamDevice,
  kernelNameFromLink,
  mountIndexForPath,
  parseMountinfo,
  parseSwaps,
} from '../../../checks/disk_encryption/linux.js';
import { thrownCode } from '../../helpers/check-errors.js';

describe('decodeOctalEscapes', () => {
  it('decodes the characters the kernel escapes', () => {
    expect(decodeOctalEscapes('/mnt/My\\040Disk\\011tab\\012nl\\134back')).toBe('/mnt/My Disk\ttab\nnl\\back');
  });

  it('leaves other backslashes and digits alone', () => {
    expect(decodeOctalEscapes('/a\\9b\\04/c')).toBe('/a\\9b\\04/c');
  });
});

describe('parseMountinfo', () => {
  it('parses the fields of an entry with one optional field', () => {
    const [e] = parseMountinfo('28 1 253:0 / / rw,relatime shared:1 - ext4 /dev/mapper/cryptroot rw,errors=remount-ro\n');
    expect(e).toEqual({
      id: 28,
      parentId: 1,
      major: 253,
      minor: 0,
      root: '/',
      mountpoint: '/',
      options: 'rw,relatime',
      optionalFields: ['shared:1'],
      fstype: 'ext4',
      source: '/dev/mapper/cryptroot',
      superOptions: 'rw,errors=remount-ro',
    });
  });

  it('accepts no optional fields and several of them', () => {
    const text = [
      '22 27 0:21 / /proc rw,relatime - proc proc rw',
      '95 68 0:35 /home /home rw,relatime shared:47 master:3 propagate_from:2 - btrfs /dev/mapper/luks-x rw,subvol=/home',
    ].join('\n');
    const [a, b] = parseMountinfo(text);
    expect(a?.optionalFields).toEqual([]);
    expect(a?.fstype).toBe('proc');
    expect(b?.optionalFields).toEqual(['shared:47', 'master:3', 'propagate_from:2']);
    expect(b).toMatchObject({ major: 0, minor: 35, root: '/home', mountpoint: '/home', fstype: 'btrfs', source: '/dev/mapper/luks-x' });
  });

  it('decodes escaped mount points, roots and sources', () => {
    const [e] = parseMountinfo('101 28 8:17 /data\\040dir /media/usb\\040stick\\134x rw - ext4 /dev/disk/by-label/My\\040Stick rw');
    expect(e?.root).toBe('/data dir');
    expect(e?.mountpoint).toBe('/media/usb stick\\x');
    expect(e?.source).toBe('/dev/disk/by-label/My Stick');
  });

  it('keeps an empty source as an empty field', () => {
    const [e] = parseMountinfo('40 22 0:33 / /sys/fs/fuse/connections rw - fusectl  rw');
    expect(e?.source).toBe('');
    expect(e?.superOptions).toBe('rw');
  });

  it('skips blank lines and returns nothing for an empty text', () => {
    expect(parseMountinfo('\n\n')).toEqual([]);
  });

  it.each([
    ['no separator', '28 1 253:0 / / rw,relatime shared:1 ext4 /dev/sda1 rw'],
    ['a bad device number', '28 1 253-0 / / rw,relatime - ext4 /dev/sda1 rw'],
    ['a non-numeric id', 'x 1 253:0 / / rw,relatime - ext4 /dev/sda1 rw'],
    ['missing super options', '28 1 253:0 / / rw,relatime - ext4'],
    ['a /proc/mounts line', '/dev/sda1 / ext4 rw,relatime 0 0'],
  ])('rejects %s with CHK_ERR_PARSE', (_, line) => {
    expect(thrownCode(() => parseMountinfo(`22 27 0:21 / /proc rw - proc proc rw\n${line}\n`))).toBe('CHK_ERR_PARSE');
  });
});

describe('parseSwaps', () => {
  const header = 'Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n';

  it('parses partitions and files, with escaped names and negative priorities', () => {
    const text =
      header +
      '/dev/dm-1                               partition\t8388604\t\t1024\t\t-2\n' +
      '/var/swap\\040file                       file\t\t1048572\t\t0\t\t10\n';
    expect(parseSwaps(text)).toEqual([
      { filename: '/dev/dm-1', type: 'partition', sizeKiB: 8388604, usedKiB: 1024, priority: -2 },
      { filename: '/var/swap file', type: 'file', sizeKiB: 1048572, usedKiB: 0, priority: 10 },
    ]);
  });

  it('returns no entries when only the header is there', () => {
    expect(parseSwaps(header)).toEqual([]);
  });

  it('rejects a text without the header', () => {
    expect(thrownCode(() => parseSwaps('/dev/sda2 partition 100 0 -2\n'))).toBe('CHK_ERR_PARSE');
    expect(thrownCode(() => parseSwaps(''))).toBe('CHK_ERR_PARSE');
  });

  it('rejects a malformed entry', () => {
    expect(thrownCode(() => parseSwaps(`${header}/dev/sda2 partition lots 0 -2\n`))).toBe('CHK_ERR_PARSE');
    expect(thrownCode(() => parseSwaps(`${header}/dev/sda2 partition\n`))).toBe('CHK_ERR_PARSE');
  });
});

describe('classifyFstype', () => {
  it.each(['proc', 'sysfs', 'tmpfs', 'cgroup2', 'overlay', 'squashfs', 'fuse.lxcfs', 'fuse.snapfuse', 'efivarfs', 'autofs'])(
    '%s is pseudo',
    (t) => expect(classifyFstype(t)).toBe('pseudo'),
  );
  it.each(['nfs', 'nfs4', 'cifs', 'smb3', '9p', 'virtiofs', 'fuse.sshfs', 'ceph', 'glusterfs'])('%s is network', (t) =>
    expect(classifyFstype(t)).toBe('network'),
  );
  it.each(['ext4', 'xfs', 'btrfs', 'vfat', 'f2fs', 'fuseblk', 'zfs', 'some-new-fs'])('%s is block-backed', (t) =>
    expect(classifyFstype(t)).toBe('block'),
  );
});

describe('dm uuids', () => {
  it.each([
    ['CRYPT-LUKS1-0a3681c950714257bad985cbef3896c1-cryptroot', true, 'CRYPT-LUKS1'],
    ['CRYPT-LUKS2-3f2c9a715be04d8e9c437a1e0b6d2f58-luks-3f2c9a71-5be0-4d8e-9c43-7a1e0b6d2f58', true, 'CRYPT-LUKS2'],
    ['CRYPT-PLAIN-cryptswap', true, 'CRYPT-PLAIN'],
    ['CRYPT-TCRYPT-veracrypt1', true, 'CRYPT-TCRYPT'],
    ['CRYPT-BITLK-c148b3fc3e654acba3f3a15b27694965-usb', true, 'CRYPT-BITLK'],
    ['CRYPT-LOOPAES-legacy', true, 'CRYPT-LOOPAES'],
    ['CRYPT-VERITY-8995ec3ff92c4be3be205479036e6e16-root', false, 'CRYPT-VERITY'],
    ['CRYPT-INTEGRITY-data', false, 'CRYPT-INTEGRITY'],
    ['CRYPT-SUBDEV-c148b3fc3e654acba3f3a15b27694965-luks_dif', false, 'CRYPT-SUBDEV'],
    ['LVM-EmLMsysMYTX7ibQnXYw6apGujOeoIgpisaHqImLovUjtqOAOPJ9mMj44CxjpL3xq', false, 'LVM'],
    ['mpath-3600508b400105e210000900000490000', false, 'mpath'],
    ['part1-mpath-3600508b400105e210000900000490000', false, 'part'],
  ])('%s: encrypting %s, prefix %s', (uuid, encrypting, prefix) => {
    expect(isEncryptingDmUuid(uuid)).toBe(encrypting);
    expect(dmUuidPrefix(uuid)).toBe(prefix);
  });

  it('has no prefix for an empty uuid', () => {
    expect(dmUuidPrefix('')).toBeUndefined();
    expect(isEncryptingDmUuid('')).toBe(false);
  });

  it('never returns the identifier part', () => {
    expect(dmUuidPrefix('LVM-EmLMsysMYTX7ibQnXYw6apGujOeoIgpisaHqImLovUjtqOAOPJ9mMj44CxjpL3xq')).toBe('LVM');
  });
});

describe('path helpers', () => {
  it('takes the kernel name from a sysfs or /dev link', () => {
    expect(kernelNameFromLink('../../devices/virtual/block/dm-2')).toBe('dm-2');
    expect(kernelNameFromLink('../dm-0')).toBe('dm-0');
    expect(kernelNameFromLink('../../nvme0n1p3')).toBe('nvme0n1p3');
  });

  it('finds the mount with the longest mount point prefix', () => {
    const mps = ['/', '/home', '/boot', '/home/alice/data', '/homework'];
    expect(mountIndexForPath(mps, '/swap.img')).toBe(0);
    expect(mountIndexForPath(mps, '/home/bob/x.img')).toBe(1);
    expect(mountIndexForPath(mps, '/home')).toBe(1);
    expect(mountIndexForPath(mps, '/homework/x')).toBe(4);
    expect(mountIndexForPath(mps, '/home/alice/data/x')).toBe(3);
    expect(mountIndexForPath(['/home'], 'relative')).toBe(-1);
  });

  it('lets a later mount over the same point win', () => {
    expect(mountIndexForPath(['/', '/data', '/data'], '/data/f')).toBe(2);
  });

  it('knows which devices live in RAM', () => {
    expect(isRamDevice('zram0')).toBe(true);
    expect(isRamDevice('ram1')).toBe(true);
    expect(isRamDevice('sda')).toBe(false);
    expect(isRamDevice('zram0p1')).toBe(false);
  });
});
