// Linux: pure parsers for mountinfo and /proc/swaps, and the sysfs walk from a mount to the
// block devices under it. Everything is read through HostIO (host-absolute paths, --root aware).
import { CheckError, isCheckError } from '../errors.js';
import type { HostIO } from '../types.js';
import type { Facts, Layer, Volume, VolumeState } from './index.js';

// ---------------------------------------------------------------------------------------------
// Pure parsers

/** Undoes the kernel's octal escapes (`\040` space, `\011` tab, `\012` newline, `\134` backslash). */
export function decodeOctalEscapes(s: string): string {
  // The kernel escapes only ASCII characters this way, so one escape is one character.
  return s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

export interface MountinfoEntry {
  id: number;
  parentId: number;
  major: number;
  minor: number;
  root: string;
  mountpoint: string;
  options: string;
  optionalFields: string[];
  fstype: string;
  source: string;
  superOptions: string;
}

function parseError(what: string, lineNo: number, subject: string): CheckError {
  return new CheckError('CHK_ERR_PARSE', `${what} on line ${lineNo}`, { subject });
}

/** Parses /proc/<pid>/mountinfo (proc(5)). Throws CHK_ERR_PARSE on a malformed line. */
export function parseMountinfo(text: string, subject = '/proc/self/mountinfo'): MountinfoEntry[] {
  const out: MountinfoEntry[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? '';
    if (line.trim() === '') continue;
    // Split on single spaces: an empty source is a real (empty) field, not a separator run.
    const f = line.split(' ');
    const sep = f.indexOf('-', 6);
    if (f.length < 10 || sep < 6 || f.length < sep + 3) throw parseError('malformed mountinfo entry', i + 1, subject);
    const [id, parentId, devno, root, mountpoint, options] = f;
    const dev = /^(\d+):(\d+)$/.exec(devno ?? '');
    if (!/^\d+$/.test(id ?? '') || !/^\d+$/.test(parentId ?? '') || dev === null) {
      throw parseError('malformed mountinfo ids or device number', i + 1, subject);
    }
    out.push({
      id: Number(id),
      parentId: Number(parentId),
      major: Number(dev[1]),
      minor: Number(dev[2]),
      root: decodeOctalEscapes(root ?? ''),
      mountpoint: decodeOctalEscapes(mountpoint ?? ''),
      options: options ?? '',
      optionalFields: f.slice(6, sep),
      fstype: decodeOctalEscapes(f[sep + 1] ?? ''),
      source: decodeOctalEscapes(f[sep + 2] ?? ''),
      superOptions: f.slice(sep + 3).join(' '),
    });
  }
  return out;
}

export interface SwapEntry {
  filename: string;
  type: string;
  sizeKiB: number;
  usedKiB: number;
  priority: number;
}

/** Parses /proc/swaps: a header line, then `Filename Type Size Used Priority` per area. */
export function parseSwaps(text: string, subject = '/proc/swaps'): SwapEntry[] {
  const lines = text.split('\n');
  if (!/^Filename\s+Type\s+Size\s+Used\s+Priority\s*$/.test(lines[0] ?? '')) {
    throw new CheckError('CHK_ERR_PARSE', 'missing /proc/swaps header', { subject });
  }
  const out: SwapEntry[] = [];
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i] ?? '';
    if (line.trim() === '') continue;
    // The file name's own blanks are escaped, so whitespace only separates columns.
    const f = line.trim().split(/\s+/);
    const [filename, type, size, used, priority] = f;
    if (f.length !== 5 || !/^\d+$/.test(size ?? '') || !/^\d+$/.test(used ?? '') || !/^-?\d+$/.test(priority ?? '')) {
      throw parseError('malformed swap entry', i + 1, subject);
    }
    out.push({
      filename: decodeOctalEscapes(filename ?? ''),
      type: type ?? '',
      sizeKiB: Number(size),
      usedKiB: Number(used),
      priority: Number(priority),
    });
  }
  return out;
}

// Virtual file systems: nothing persistent of their own. overlay, ecryptfs and other stacked file
// systems store their data on a lower mount that is checked itself; squashfs and erofs are
// read-only images.
const PSEUDO_FSTYPES = new Set([
  'proc', 'sysfs', 'tmpfs', 'devtmpfs', 'devpts', 'cgroup', 'cgroup2', 'cpuset', 'securityfs', 'debugfs',
  'tracefs', 'pstore', 'bpf', 'mqueue', 'hugetlbfs', 'configfs', 'fusectl', 'autofs', 'binfmt_misc',
  'rpc_pipefs', 'nsfs', 'efivarfs', 'ramfs', 'rootfs', 'selinuxfs', 'smackfs', 'nfsd', 'resctrl',
  'functionfs', 'xenfs', 'overlay', 'aufs', 'shiftfs', 'ecryptfs', 'squashfs', 'erofs', 'cramfs', 'romfs',
  'fuse',
]);

// Remote or host-shared storage: encryption at rest is the remote side's business.
const NETWORK_FSTYPES = new Set([
  'nfs', 'nfs4', 'cifs', 'smb3', 'smbfs', 'ncpfs', '9p', 'virtiofs', 'ceph', 'glusterfs', 'afs', 'coda',
  'lustre', 'beegfs', 'gpfs', 'orangefs', 'davfs', 'vboxsf', 'vmhgfs', 'prl_fs', 'drvfs', 'fuse.sshfs',
  'fuse.rclone', 'fuse.s3fs', 'fuse.gcsfuse', 'fuse.glusterfs', 'fuse.ceph-fuse', 'fuse.vmhgfs-fuse',
]);

export type MountClass = 'pseudo' | 'network' | 'block';

export function classifyFstype(fstype: string): MountClass {
  if (NETWORK_FSTYPES.has(fstype)) return 'network';
  // fuse.* are user-space file systems (lxcfs, gvfs, snapfuse); fuseblk is a real block device.
  if (PSEUDO_FSTYPES.has(fstype) || fstype.startsWith('fuse.')) return 'pseudo';
  return 'block';
}

// dm uuid prefixes that cryptsetup gives to layers that encrypt. CRYPT-VERITY and
// CRYPT-INTEGRITY (and CRYPT-SUBDEV) are dm-crypt's cousins that do not encrypt.
const ENCRYPTING_PREFIXES = ['LUKS1', 'LUKS2', 'PLAIN', 'TCRYPT', 'BITLK', 'LOOPAES', 'FVAULT2'].map((t) => `CRYPT-${t}-`);

export function isEncryptingDmUuid(uuid: string): boolean {
  return ENCRYPTING_PREFIXES.some((p) => uuid.startsWith(p));
}

/** The type part of a dm uuid (`CRYPT-LUKS2`, `LVM`, `mpath`, `part`), never its identifier. */
export function dmUuidPrefix(uuid: string): string | undefined {
  const crypt = /^CRYPT-([A-Z0-9]+)/.exec(uuid);
  if (crypt !== null) return `CRYPT-${crypt[1]}`;
  return /^[A-Za-z]+/.exec(uuid)?.[0];
}

/** `../../devices/virtual/block/dm-2` → `dm-2`. */
export function kernelNameFromLink(target: string): string {
  return target.replace(/\/+$/, '').split('/').pop() ?? '';
}

/** Index of the mount whose mount point is the longest prefix of `path`; later mounts win ties. */
export function mountIndexForPath(mountpoints: readonly string[], path: string): number {
  let best = -1;
  let bestLen = -1;
  mountpoints.forEach((mp, i) => {
    const inside = mp === '/' ? path.startsWith('/') : path === mp || path.startsWith(`${mp}/`);
    if (inside && mp.length >= bestLen) {
      best = i;
      bestLen = mp.length;
    }
  });
  return best;
}

/** zram and brd devices live in RAM: nothing persists, so they are not judged. */
export function isRamDevice(name: string): boolean {
  return /^(zram|ram)\d+$/.test(name);
}

// ---------------------------------------------------------------------------------------------
// The walk through sysfs

const MAX_DEPTH = 16;

interface Trace {
  state: VolumeState;
  layers: Layer[];
  note?: string;
}

interface MountGroup {
  key: string;
  entries: MountinfoEntry[];
}

type Resolved = { name: string } | { note: string };

function isMissing(err: unknown): boolean {
  return isCheckError(err) && err.code === 'CHK_ERR_SOURCE_MISSING';
}

/** Per-device read failures make that device unresolved; anything else (a bug, replay) propagates. */
function failure(err: unknown, path: string): string {
  if (isCheckError(err)) return `cannot read ${path} (${err.code})`;
  throw err;
}

function unresolved(layers: Layer[], note: string): Trace {
  return { state: 'unresolved', layers, note };
}

/** The stack flattened depth first; a disk under two partitions is listed once. */
function flatten(layer: Layer, below: Trace[]): Layer[] {
  const seen = new Set<string>();
  return [layer, ...below.flatMap((t) => t.layers)].filter((l) => !seen.has(l.name) && seen.add(l.name));
}

/** Unencrypted wins (data can land there), then unresolved, then encrypted. */
function combine(layer: Layer, below: Trace[]): Trace {
  const layers = flatten(layer, below);
  const plain = below.find((t) => t.state === 'unencrypted');
  if (plain !== undefined) return { state: 'unencrypted', layers, ...(plain.note === undefined ? {} : { note: plain.note }) };
  const open = below.find((t) => t.state === 'unresolved');
  if (open !== undefined) return { state: 'unresolved', layers, ...(open.note === undefined ? {} : { note: open.note }) };
  return { state: 'encrypted', layers };
}

class Walker {
  constructor(
    private readonly io: HostIO,
    /** Every mount in mountinfo order, with its group when it is block-backed. */
    private readonly table: ReadonlyArray<{ mountpoint: string; group: MountGroup | undefined }>,
  ) {}

  /** The block-backed volume a file lives on, or why there is none. */
  groupForPath(path: string): MountGroup | string {
    const hit = this.table[mountIndexForPath(this.table.map((m) => m.mountpoint), path)];
    if (hit === undefined) return `no mount holds ${path}`;
    if (hit.group === undefined) return `${path} is on ${hit.mountpoint}, which is not a local block-backed volume`;
    return hit.group;
  }

  async resolveGroup(group: MountGroup): Promise<Resolved> {
    const first = group.entries[0];
    if (first === undefined) return { note: 'empty mount group' };
    if (first.major !== 0) {
      const link = `/sys/dev/block/${first.major}:${first.minor}`;
      try {
        return { name: kernelNameFromLink(await this.io.readLink(link)) };
      } catch (err) {
        return { note: failure(err, link) };
      }
    }
    // Anonymous device numbers (btrfs, fuseblk, zfs): only the source names the device.
    return this.resolveDevPath(first.source);
  }

  async resolveDevPath(path: string): Promise<Resolved> {
    if (!path.startsWith('/dev/')) return { note: `source ${path} is not a block device path (zfs and similar are not traced)` };
    const rest = path.slice('/dev/'.length);
    if (rest !== '' && !rest.includes('/')) return { name: rest };
    try {
      return { name: kernelNameFromLink(await this.io.readLink(path)) };
    } catch (err) {
      const why = failure(err, path);
      // /dev may not be the host's (a container without /dev bound): sysfs knows dm names too.
      if (rest.startsWith('mapper/')) return this.findDmByName(rest.slice('mapper/'.length), why);
      return { note: why };
    }
  }

  async findDmByName(dmName: string, why: string): Promise<Resolved> {
    let entries;
    try {
      entries = await this.io.readDir('/sys/class/block');
    } catch (err) {
      return { note: `${why}; ${failure(err, '/sys/class/block')}` };
    }
    const dms = entries.map((e) => e.name).filter((n) => /^dm-\d+$/.test(n));
    dms.sort((a, b) => Number(a.slice(3)) - Number(b.slice(3)));
    for (const dm of dms) {
      const p = `/sys/class/block/${dm}/dm/name`;
      try {
        if ((await this.io.readFile(p)).trim() === dmName) return { name: dm };
      } catch (err) {
        // An unreadable name is just not a match; only non-io errors propagate.
        if (!isCheckError(err)) throw err;
      }
    }
    return { note: `${why}; no dm device is named ${dmName}` };
  }

  async traceGroup(group: MountGroup, chain: readonly string[]): Promise<Trace & { device: string | null; ram?: true }> {
    const marker = `mount:${group.key}`;
    if (chain.includes(marker)) return { device: null, ...unresolved([], 'loop device backed by a file on itself') };
    const r = await this.resolveGroup(group);
    if ('note' in r) return { device: null, ...unresolved([], r.note) };
    if (isRamDevice(r.name)) return { device: r.name, ram: true, state: 'unencrypted', layers: [] };
    return { device: r.name, ...(await this.traceDevice(r.name, [...chain, marker])) };
  }

  async listSlaves(name: string): Promise<string[] | { missing: true } | { note: string }> {
    const p = `/sys/class/block/${name}/slaves`;
    try {
      return (await this.io.readDir(p)).map((e) => e.name).sort();
    } catch (err) {
      if (isMissing(err)) return { missing: true };
      return { note: failure(err, p) };
    }
  }

  async traceAll(names: readonly string[], chain: readonly string[]): Promise<Trace[]> {
    const out: Trace[] = [];
    for (const n of names) out.push(await this.traceDevice(n, chain));
    return out;
  }

  async traceDevice(name: string, chain: readonly string[]): Promise<Trace> {
    if (chain.includes(name)) return unresolved([], `cycle in the device stack at ${name}`);
    if (chain.length >= MAX_DEPTH) return unresolved([], `device stack deeper than ${MAX_DEPTH} layers`);
    const next = [...chain, name];
    const base = `/sys/class/block/${name}`;
    // Loop devices are never dm and have no slaves: their backing file decides.
    if (/^loop\d+$/.test(name)) return this.traceLoop(name, next);

    let uuid: string | undefined;
    try {
      uuid = (await this.io.readFile(`${base}/dm/uuid`)).trim();
    } catch (err) {
      if (!isMissing(err)) return unresolved([], failure(err, `${base}/dm/uuid`));
    }

    if (uuid !== undefined) {
      const prefix = dmUuidPrefix(uuid);
      const withPrefix = prefix === undefined ? {} : { dmUuidPrefix: prefix };
      const slaves = await this.listSlaves(name);
      if (isEncryptingDmUuid(uuid)) {
        // Encrypted whatever lies below; the lower layers are listed as evidence only.
        const below = Array.isArray(slaves) ? await this.traceAll(slaves, next) : [];
        return { state: 'encrypted', layers: flatten({ name, type: 'crypt', ...withPrefix }, below) };
      }
      const layer: Layer = { name, type: prefix === 'LVM' ? 'lvm' : 'dm', ...withPrefix };
      if (!Array.isArray(slaves)) return unresolved([layer], 'note' in slaves ? slaves.note : `${base}/slaves is missing`);
      if (slaves.length === 0) return unresolved([layer], `${name} is not a crypt layer and has no underlying devices`);
      return combine(layer, await this.traceAll(slaves, next));
    }

    const slaves = await this.listSlaves(name);
    if (Array.isArray(slaves)) {
      const isMd = /^md/.test(name);
      const layer: Layer = { name, type: isMd ? 'md' : 'disk' };
      if (slaves.length > 0) return combine(layer, await this.traceAll(slaves, next));
      if (isMd) return unresolved([layer], `${name} has no member devices`);
      return { state: 'unencrypted', layers: [layer] };
    }
    if ('note' in slaves) return unresolved([], slaves.note);

    // Only whole disks have a slaves directory: this is a partition, and its disk decides.
    let target: string;
    try {
      target = await this.io.readLink(base);
    } catch (err) {
      return unresolved([], isMissing(err) ? `no block device named ${name}` : failure(err, base));
    }
    const parts = target.replace(/\/+$/, '').split('/');
    const parent = parts[parts.length - 2];
    const layer: Layer = { name, type: 'partition' };
    if (parent === undefined || parent === 'block' || parent === '..' || parent === '') {
      return unresolved([layer], `cannot find the disk that holds ${name}`);
    }
    return combine(layer, [await this.traceDevice(parent, next)]);
  }

  async traceLoop(name: string, chain: readonly string[]): Promise<Trace> {
    const layer: Layer = { name, type: 'loop' };
    const p = `/sys/class/block/${name}/loop/backing_file`;
    let file: string;
    try {
      file = (await this.io.readFile(p)).replace(/\n$/, '').replace(/ \(deleted\)$/, '');
    } catch (err) {
      return unresolved([layer], isMissing(err) ? `${name} has no backing file` : failure(err, p));
    }
    const t = await this.traceFile(file, chain);
    return { state: t.state, layers: [layer], ...(t.note === undefined ? {} : { note: t.note }) };
  }

  /** A file (swap file, loop image) is as encrypted as the volume it lives on. */
  async traceFile(file: string, chain: readonly string[]): Promise<Trace & { device: string | null }> {
    const group = this.groupForPath(file);
    if (typeof group === 'string') return { device: null, ...unresolved([], group) };
    const t = await this.traceGroup(group, chain);
    const where = group.entries.map((e) => e.mountpoint).sort()[0] ?? '?';
    const note = `${file} is on the volume mounted at ${where}`;
    if (t.ram === true) return { device: t.device, ...unresolved([], `${note}, which is in RAM`) };
    return { device: t.device, state: t.state, layers: [], note: t.note === undefined ? note : `${note}; ${t.note}` };
  }
}

async function readMountinfo(io: HostIO): Promise<{ text: string; source: string }> {
  try {
    return { text: await io.readFile('/proc/1/mountinfo'), source: '/proc/1/mountinfo' };
  } catch (err) {
    if (!isCheckError(err) || (err.code !== 'CHK_ERR_PERMISSION' && err.code !== 'CHK_ERR_SOURCE_MISSING')) throw err;
  }
  return { text: await io.readFile('/proc/self/mountinfo'), source: '/proc/self/mountinfo' };
}

async function readSwaps(io: HostIO): Promise<SwapEntry[]> {
  try {
    return parseSwaps(await io.readFile('/proc/swaps'));
  } catch (err) {
    // A kernel built without swap support has no /proc/swaps, and cannot swap.
    if (isMissing(err)) return [];
    throw err;
  }
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function withNote<T extends object>(v: T, note: string | undefined): T & { note?: string } {
  return note === undefined ? v : { ...v, note };
}

export async function collectLinux(io: HostIO, signal?: AbortSignal): Promise<Facts> {
  const { text, source: mountSource } = await readMountinfo(io);
  const mounts = parseMountinfo(text, mountSource);
  if (mounts.length === 0) throw new CheckError('CHK_ERR_PARSE', 'the mount table is empty', { subject: mountSource });
  const swaps = await readSwaps(io);

  let ignoredPseudoMounts = 0;
  const notLocal: Facts['notLocal'] = [];
  const groups = new Map<string, MountGroup>();
  const table: Array<{ mountpoint: string; group: MountGroup | undefined }> = [];
  for (const m of mounts) {
    const cls = classifyFstype(m.fstype);
    if (cls === 'pseudo') ignoredPseudoMounts++;
    if (cls === 'network') notLocal.push({ mountpoint: m.mountpoint, fstype: m.fstype });
    if (cls !== 'block') {
      table.push({ mountpoint: m.mountpoint, group: undefined });
      continue;
    }
    // Bind mounts share a device number; btrfs subvolumes get anonymous ones but share a source.
    const key = m.major !== 0 ? `${m.major}:${m.minor}` : `0:${m.fstype}:${m.source}`;
    let g = groups.get(key);
    if (g === undefined) {
      g = { key, entries: [] };
      groups.set(key, g);
    }
    g.entries.push(m);
    table.push({ mountpoint: m.mountpoint, group: g });
  }

  const walker = new Walker(io, table);
  const volumes: Volume[] = [];
  for (const g of groups.values()) {
    signal?.throwIfAborted();
    const first = g.entries[0];
    if (first === undefined) continue;
    const t = await walker.traceGroup(g, []);
    if (t.ram === true) {
      ignoredPseudoMounts += g.entries.length;
      continue;
    }
    const mountpoints = [...new Set(g.entries.map((e) => e.mountpoint))].sort(cmp);
    volumes.push(
      withNote({ kind: 'mount' as const, mountpoints, fstype: first.fstype, source: first.source, device: t.device, layers: t.layers, state: t.state }, t.note),
    );
  }

  for (const s of swaps) {
    signal?.throwIfAborted();
    const base = { kind: 'swap' as const, mountpoints: [s.filename], fstype: 'swap', source: s.filename };
    if (s.type === 'file') {
      const t = await walker.traceFile(s.filename, []);
      volumes.push(withNote({ ...base, device: t.device, layers: t.layers, state: t.state }, t.note));
      continue;
    }
    if (s.type !== 'partition') {
      volumes.push({ ...base, device: null, layers: [], state: 'unresolved', note: `unknown swap type ${s.type}` });
      continue;
    }
    const r = await walker.resolveDevPath(s.filename);
    if ('note' in r) {
      volumes.push({ ...base, device: null, layers: [], state: 'unresolved', note: r.note });
      continue;
    }
    // zram swap is compressed RAM: nothing reaches a disk.
    if (isRamDevice(r.name)) continue;
    const t = await walker.traceDevice(r.name, []);
    volumes.push(withNote({ ...base, device: r.name, layers: t.layers, state: t.state }, t.note));
  }

  volumes.sort((a, b) => cmp(a.kind, b.kind) || cmp(a.mountpoints[0] ?? '', b.mountpoints[0] ?? ''));
  notLocal.sort((a, b) => cmp(a.mountpoint, b.mountpoint) || cmp(a.fstype, b.fstype));
  return { mountSource, volumes, notLocal, ignoredPseudoMounts };
}
