// FileCache on real files under a temp root, through the real HostIO: an unchanged file is not
// read again; any change to its content, inode or permissions is seen; files changed too
// recently to trust their timestamps, symlinks and failed reads are never kept. Then usb_policy
// with a cache, as the daemon runs it, against the same check without one.
import { execFileSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rename, rm, stat, symlink, unlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { FileCache, RACY_MS } from '../../checks/file-cache.js';
import { RealHostIO } from '../../checks/host-io.js';
import { runCheck } from '../../checks/runner.js';
import type { DirEntry, FileStat, HostIO } from '../../checks/types.js';
import { usbPolicy } from '../../checks/usb_policy/index.js';
import type { LinuxFacts } from '../../checks/usb_policy/linux.js';

let root: string;
beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'vcm-file-cache-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** The real HostIO, with a count of the calls that reach it. */
class Counting implements HostIO {
  readonly platform = 'linux' as const;
  readonly calls: string[] = [];
  constructor(readonly inner: RealHostIO) {}
  readFile(p: string): Promise<string> {
    this.calls.push(`readFile ${p}`);
    return this.inner.readFile(p);
  }
  readDir(p: string): Promise<DirEntry[]> {
    this.calls.push(`readDir ${p}`);
    return this.inner.readDir(p);
  }
  readLink(p: string): Promise<string> {
    this.calls.push(`readLink ${p}`);
    return this.inner.readLink(p);
  }
  stat(p: string): Promise<FileStat> {
    this.calls.push(`stat ${p}`);
    return this.inner.stat(p);
  }
  run(): never {
    throw new Error('no commands here');
  }
  httpGet(): never {
    throw new Error('no probes here');
  }
  reads(): string[] {
    return this.calls.filter((c) => c.startsWith('readFile '));
  }
}

// ctime cannot be set back, so "this file has not changed for a while" is shown by a clock
// that runs ahead of the file system's.
const later = () => Date.now() + RACY_MS + 60_000;

describe('FileCache', () => {
  const write = async (name: string, content: string) => writeFile(path.join(root, name), content);
  const loader = (io: HostIO, p: string) => async () => (await io.readFile(p)).toUpperCase();

  it('an unchanged file is answered from the cache, with one stat and no read', async () => {
    await write('a.conf', 'blacklist uas\n');
    const io = new Counting(new RealHostIO({ root }));
    const store = new Map<string, unknown>();
    expect(await new FileCache(io, store, later).get('/a.conf', loader(io, '/a.conf'))).toBe('BLACKLIST UAS\n');
    io.calls.length = 0;
    expect(await new FileCache(io, store, later).get('/a.conf', loader(io, '/a.conf'))).toBe('BLACKLIST UAS\n');
    expect(io.calls).toEqual(['stat /a.conf']);
  });

  it('sees new content of the same size even when the mtime is put back (the ctime changes)', async () => {
    await write('b.conf', 'install usb_storage /bin/true\n');
    const io = new Counting(new RealHostIO({ root }));
    const store = new Map<string, unknown>();
    await new FileCache(io, store, later).get('/b.conf', loader(io, '/b.conf'));
    const file = path.join(root, 'b.conf');
    const before = await stat(file);
    // touch -r copies the timestamps to the nanosecond (utimes from Node would round them).
    execFileSync('touch', ['-r', file, path.join(root, 'b.ref')]);
    await write('b.conf', 'install usb_storage /bin/fals\n');
    execFileSync('touch', ['-r', path.join(root, 'b.ref'), file]);
    const after = await stat(file);
    expect([after.mtimeMs, after.size, after.ino]).toEqual([before.mtimeMs, before.size, before.ino]);
    expect(await new FileCache(io, store, later).get('/b.conf', loader(io, '/b.conf'))).toBe('INSTALL USB_STORAGE /BIN/FALS\n');
  });

  it('sees a file replaced by another (a new inode), and a change of permissions', async () => {
    await write('c.conf', 'one\n');
    const io = new Counting(new RealHostIO({ root }));
    const store = new Map<string, unknown>();
    const get = () => new FileCache(io, store, later).get('/c.conf', loader(io, '/c.conf'));
    await get();
    await write('c.new', 'two\n');
    await rename(path.join(root, 'c.new'), path.join(root, 'c.conf'));
    expect(await get()).toBe('TWO\n');
    io.calls.length = 0;
    await chmod(path.join(root, 'c.conf'), 0o600);
    await get();
    expect(io.reads()).toEqual(['readFile /c.conf']);
  });

  it('a file changed within RACY_MS is read again each time: its timestamps cannot vouch for it yet', async () => {
    await write('d.conf', 'fresh\n');
    const io = new Counting(new RealHostIO({ root }));
    const store = new Map<string, unknown>();
    for (let i = 0; i < 2; i++) await new FileCache(io, store, Date.now).get('/d.conf', loader(io, '/d.conf'));
    expect(io.reads()).toEqual(['readFile /d.conf', 'readFile /d.conf']);
    expect(store.size).toBe(0);
  });

  it('a symlink is read each time (its own stat says nothing of its target), and so is a missing file', async () => {
    await write('target.conf', 'x\n');
    await symlink('target.conf', path.join(root, 'e.conf'));
    const io = new Counting(new RealHostIO({ root }));
    const store = new Map<string, unknown>();
    const missing = async () => io.readFile('/nope.conf').catch(() => null);
    for (let i = 0; i < 2; i++) {
      await new FileCache(io, store, later).get('/e.conf', loader(io, '/e.conf'));
      expect(await new FileCache(io, store, later).get('/nope.conf', missing)).toBeNull();
    }
    expect(io.reads()).toEqual(['readFile /e.conf', 'readFile /nope.conf', 'readFile /e.conf', 'readFile /nope.conf']);
    expect(store.size).toBe(0);
  });

  it('what load throws is passed on and not kept', async () => {
    await write('f.conf', 'bad\n');
    const io = new Counting(new RealHostIO({ root }));
    const store = new Map<string, unknown>();
    const boom = () => Promise.reject(new Error('parse failed'));
    await expect(new FileCache(io, store, later).get('/f.conf', boom)).rejects.toThrow('parse failed');
    expect(await new FileCache(io, store, later).get('/f.conf', loader(io, '/f.conf'))).toBe('BAD\n');
  });

  it('sweep drops the files a run did not ask for', async () => {
    await write('g.conf', 'g\n');
    await write('h.conf', 'h\n');
    const io = new RealHostIO({ root });
    const store = new Map<string, unknown>();
    let cache = new FileCache(io, store, later);
    await cache.get('/g.conf', loader(io, '/g.conf'));
    await cache.get('/h.conf', loader(io, '/h.conf'));
    cache.sweep();
    cache = new FileCache(io, store, later);
    await cache.get('/g.conf', loader(io, '/g.conf'));
    cache.sweep();
    expect([...store.keys()]).toEqual(['file /g.conf']);
  });

  it('without a store it only loads: no stat, nothing kept', async () => {
    await write('i.conf', 'i\n');
    const io = new Counting(new RealHostIO({ root }));
    for (let i = 0; i < 2; i++) await new FileCache(io, undefined, later).get('/i.conf', loader(io, '/i.conf'));
    expect(io.calls).toEqual(['readFile /i.conf', 'readFile /i.conf']);
  });
});

describe('usb_policy with a cache, as the daemon runs it', () => {
  const R = '6.1.0-28-amd64';
  let tree: string;
  const put = async (p: string, content: string) => {
    await mkdir(path.dirname(path.join(tree, p)), { recursive: true });
    await writeFile(path.join(tree, p), content);
  };

  beforeAll(async () => {
    tree = await mkdtemp(path.join(os.tmpdir(), 'vcm-usb-cache-'));
    await put('/proc/cmdline', 'root=/dev/sda1 ro quiet\n');
    await put('/proc/modules', 'usbcore 348160 0 - Live 0x0000000000000000\n');
    await put('/proc/sys/kernel/osrelease', `${R}\n`);
    await put('/proc/sys/kernel/modules_disabled', '0\n');
    await put(`/lib/modules/${R}/modules.builtin`, 'kernel/fs/binfmt_script.ko\n');
    await put(
      `/lib/modules/${R}/modules.dep`,
      'kernel/drivers/usb/storage/usb-storage.ko:\nkernel/drivers/usb/storage/uas.ko: kernel/drivers/usb/storage/usb-storage.ko\n',
    );
    await put('/etc/modprobe.d/10-usb.conf', 'install usb-storage /bin/true\n');
    await put('/lib/modprobe.d/50-uas.conf', 'blacklist uas\n');
    await mkdir(path.join(tree, 'sys', 'bus'), { recursive: true });
  });
  afterAll(async () => {
    await rm(tree, { recursive: true, force: true });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  const facts = async (io: HostIO, caches?: Record<string, Map<string, unknown>>): Promise<LinuxFacts> => {
    const f = await runCheck(usbPolicy, { io, ...(caches === undefined ? {} : { caches }) });
    expect(f.facts, JSON.stringify(f.reasons)).not.toBeNull();
    return f.facts as LinuxFacts;
  };

  it('gives the facts the uncached check gives, before and after the configuration changes, and reads only what changed', async () => {
    // Only Date is faked, to stand for time passing since the files were written (see `later`).
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(later());
    const io = new Counting(new RealHostIO({ root: tree, platform: 'linux' }));
    const caches = { usb_policy: new Map<string, unknown>() };
    const fresh = () => facts(new RealHostIO({ root: tree, platform: 'linux' }));

    expect(await facts(io, caches)).toEqual(await fresh());
    io.calls.length = 0;
    expect(await facts(io, caches)).toEqual(await fresh());
    const cached = [`/lib/modules/${R}/modules.builtin`, `/lib/modules/${R}/modules.dep`, '/etc/modprobe.d/10-usb.conf', '/lib/modprobe.d/50-uas.conf'];
    for (const p of cached) {
      expect(io.reads(), p).not.toContain(`readFile ${p}`);
      expect(io.calls, p).toContain(`stat ${p}`);
    }

    // Same size, new meaning; a file added that hides one of the same name; a file removed.
    await put('/etc/modprobe.d/10-usb.conf', 'install usb-storage /bin/echo\n'.slice(0, 30));
    await put('/etc/modprobe.d/50-uas.conf', '# nothing\n');
    vi.setSystemTime(later());
    io.calls.length = 0;
    const changed = await facts(io, caches);
    expect(changed).toEqual(await fresh());
    expect(changed.modprobe.filesRead).toEqual(['/etc/modprobe.d/10-usb.conf', '/etc/modprobe.d/50-uas.conf']);
    expect(io.reads()).toEqual(expect.arrayContaining(['readFile /etc/modprobe.d/10-usb.conf', 'readFile /etc/modprobe.d/50-uas.conf']));
    expect(io.reads()).not.toContain(`readFile /lib/modules/${R}/modules.dep`);
    // The hidden file is no longer asked for, so its entry is gone.
    expect([...caches.usb_policy.keys()].some((k) => k.endsWith('/lib/modprobe.d/50-uas.conf'))).toBe(false);

    await unlink(path.join(tree, 'etc/modprobe.d/50-uas.conf'));
    expect(await facts(io, caches)).toEqual(await fresh());
  });
});
