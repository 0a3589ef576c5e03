// A symlink planted in the spool (#17, low): it was read, sent to the collector and then deleted
// as acknowledged. The spool takes regular files only, and reads them with O_NOFOLLOW.
import { mkdir, readFile, readlink, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Spool } from '../../agent/spool.js';
import { tempDir } from '../helpers/processes.js';

describe('the spool and symlinks', () => {
  it('lists no symlink or folder, never reads one, and leaves it in place', async () => {
    const dir = await tempDir('spool-link');
    try {
      const spoolDir = path.join(dir.dir, 'spool');
      await mkdir(spoolDir, { recursive: true });
      const secret = path.join(dir.dir, 'shadow');
      await writeFile(secret, 'root:$6$secret\n');
      const spool = new Spool(spoolDir, path.join(dir.dir, 'quarantine'));
      const real = await spool.put(1, Buffer.from('{"payloadType":"x"}'));
      const planted = path.join(spoolDir, Spool.fileName(2));
      await symlink(secret, planted);
      await mkdir(path.join(spoolDir, Spool.fileName(3)));
      const listed = await spool.list({ sizes: true });
      expect(listed.map((e) => e.seq)).toEqual([1]);
      await spool.removeMany(listed);
      expect(await readlink(planted)).toBe(secret);
      expect(await readFile(secret, 'utf8')).toContain('secret');
      // Swapped for a symlink after the listing: refused, not followed.
      const swapped = await spool.put(4, Buffer.from('{}'));
      await import('node:fs/promises').then((fs) => fs.unlink(swapped.file));
      await symlink(secret, swapped.file);
      await expect(spool.read(swapped)).rejects.toMatchObject({ code: 'ELOOP' });
      expect(real.seq).toBe(1);
    } finally {
      await dir.cleanup();
    }
  });
});
