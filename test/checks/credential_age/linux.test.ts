import { describe, expect, it } from 'vitest';
import {
  ageInDays,
  authorizedKeysNames,
  classifyPasswordField,
  hostKeyNames,
  inScope,
  isLoginShell,
  isScannableHome,
  isoDay,
  linuxPasswords,
  parseAuthorizedKeys,
  parsePasswd,
  parseShadow,
  privateKeyNames,
  sshDirOf,
} from '../../../checks/credential_age/linux.js';
import type { DirEntry } from '../../../checks/types.js';
import { thrownCode } from '../../helpers/check-errors.js';

// Public keys made with ssh-keygen; the fingerprints are what `ssh-keygen -lf` printed for them.
const ED25519 = 'AAAAC3NzaC1lZDI1NTE5AAAAIEoTGMdCe8DejhbfyZOMUBWCtIBv+VWfIMe6av3QJ0zm';
const ED25519_FP = 'SHA256:Gf1jzRmCx+JO4cXrONB3upDkDyxDQ/Ersa7n66U2P+8';
const ECDSA =
  'AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBHAg2Atw3OL8oAdOO+1o/ZvYq1glv2a2r0xtUqin+ch52bZDIkAHd/Con7NrtYNlZ7B+haHS5zXSMpgdV0Ugskg=';
const ECDSA_FP = 'SHA256:xmeFSjej6gO4dvjBb+w06dCjGuYeOkzBzurxfQJTfyg';

const DAY = 86_400_000;
/** 2026-11-22T12:00:00Z is day 20779 since 1970-01-01. */
const NOW = Date.parse('2026-11-22T12:00:00Z');
const TODAY = 20779;

describe('classifyPasswordField (shadow(5) password field)', () => {
  it.each([
    ['', 'empty'],
    ['!', 'locked'],
    ['!!', 'locked'],
    ['!*', 'locked'],
    ['!$6$salt$hash', 'locked'],
    ['*', 'none'],
    ['*LK*', 'none'],
    ['x', 'none'],
    ['NP', 'none'],
    ['$6$rounds=5000$salt$abcdefghijklmnop', 'set'],
    ['$y$j9T$abc$def', 'set'],
    ['abJnggxhB/yWI', 'set'],
    ['_J9..abcdefghijklmno', 'set'],
  ] as const)('%j is %s', (field, state) => {
    expect(classifyPasswordField(field)).toBe(state);
  });
});

describe('parsePasswd', () => {
  it('reads name, uid, home and shell, skipping comments, blank and NIS lines', () => {
    const text = [
      'root:x:0:0:root:/root:/bin/bash',
      '# a comment',
      '',
      'alice:x:1000:1000:Alice,,,:/home/alice:/bin/bash',
      '+@netgroup::::::',
      '-bob::::::',
      'old:abJnggxhB/yWI:1001:1001::/home/old:',
    ].join('\n');
    expect(parsePasswd(text)).toEqual([
      { name: 'root', uid: 0, home: '/root', shell: '/bin/bash', shadowed: true, legacyState: 'none' },
      { name: 'alice', uid: 1000, home: '/home/alice', shell: '/bin/bash', shadowed: true, legacyState: 'none' },
      { name: 'old', uid: 1001, home: '/home/old', shell: '', shadowed: false, legacyState: 'set' },
    ]);
  });

  it.each([
    ['six fields', 'root:x:0:0:root:/root'],
    ['a non-numeric uid', 'root:x:zero:0:root:/root:/bin/sh'],
    ['an empty name', ':x:0:0:root:/root:/bin/sh'],
  ])('refuses %s with CHK_ERR_PARSE', (_what, line) => {
    expect(thrownCode(() => parsePasswd(line))).toBe('CHK_ERR_PARSE');
  });
});

describe('parseShadow', () => {
  it('keeps the state and days, never the hash', () => {
    const m = parseShadow(['root:*:20228:0:99999:7:::', 'alice:$y$j9T$salt$hash:20000:0:99999:7:::', 'gone:!:20263::::::', 'short:$6$a$b'].join('\n'));
    expect([...m.values()]).toEqual([
      { name: 'root', state: 'none', lastChangeDay: 20228, expireDay: null },
      { name: 'alice', state: 'set', lastChangeDay: 20000, expireDay: null },
      { name: 'gone', state: 'locked', lastChangeDay: 20263, expireDay: null },
      { name: 'short', state: 'set', lastChangeDay: null, expireDay: null },
    ]);
    expect(JSON.stringify([...m.values()])).not.toContain('$y$');
  });

  it('reads the expiry day from field 8', () => {
    expect(parseShadow('a:$6$s$h:20000:0:99999:7::20500:').get('a')?.expireDay).toBe(20500);
  });

  it.each([
    ['a non-numeric last change', 'a:$6$s$h:yesterday::::::'],
    ['ten fields', 'a:$6$s$h:1:2:3:4:5:6:7:8'],
    ['one field', 'a'],
  ])('refuses %s with CHK_ERR_PARSE', (_what, line) => {
    expect(thrownCode(() => parseShadow(line))).toBe('CHK_ERR_PARSE');
  });
});

describe('linuxPasswords', () => {
  const passwd = parsePasswd(
    [
      'root:x:0:0:root:/root:/bin/bash',
      'daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin',
      'alice:x:1000:1000::/home/alice:/bin/bash',
      'bob:x:1001:1001::/home/bob:/bin/bash',
      'carol:x:1002:1002::/home/carol:/bin/zsh',
      'dave:x:1003:1003::/home/dave:/bin/bash',
      'erin:x:1004:1004::/home/erin:/usr/sbin/nologin',
      'frank:x:1005:1005::/home/frank:/bin/bash',
      'gina:x:1006:1006::/home/gina:/bin/bash',
      'nosh:x:1007:1007::/home/nosh:/bin/bash',
    ].join('\n'),
  );
  const shadow = parseShadow(
    [
      'root:$6$s$h:20000:0:99999:7:::',
      'daemon:*:20000:0:99999:7:::',
      'alice:$6$s$h:16500:0:99999:7:::',
      'bob:::0:99999:7:::',
      'carol:$6$s$h:0:0:99999:7:::',
      'dave:$6$s$h::0:99999:7:::',
      'erin:!$6$s$h:20700:0:99999:7:::',
      'frank:$6$s$h:20700:0:99999:7::20000:',
      'gina:$6$s$h:20700:0:99999:7::0:',
    ].join('\n'),
  );
  const scope = { minUid: 1000, includeRoot: true };

  it('judges set passwords by field 3, and marks the rest', () => {
    const { accounts, passwords } = linuxPasswords(passwd, shadow, scope, NOW);
    expect(accounts.map((a) => [a.name, a.password, a.enabled, a.loginShell])).toEqual([
      ['root', 'set', true, true],
      ['alice', 'set', true, true],
      ['bob', 'empty', true, true],
      ['carol', 'set', true, true],
      ['dave', 'set', true, true],
      ['erin', 'locked', true, false],
      ['frank', 'set', false, true],
      // Expiry day 0 is ambiguous in shadow(5): not read as expired.
      ['gina', 'set', true, true],
      // `x` with no shadow entry: no hash, so no password can log in.
      ['nosh', 'none', true, true],
    ]);
    expect(passwords).toEqual([
      { account: 'root', lastChanged: '2024-10-04', ageDays: TODAY - 20000, active: true, mustChange: false },
      { account: 'alice', lastChanged: isoDay(16500), ageDays: TODAY - 16500, active: true, mustChange: false },
      { account: 'carol', lastChanged: null, ageDays: null, active: true, mustChange: true, note: expect.stringContaining('must be changed at next login') },
      { account: 'dave', lastChanged: null, ageDays: null, active: true, mustChange: false, note: expect.stringContaining('aging is disabled') },
      { account: 'frank', lastChanged: isoDay(20700), ageDays: 79, active: false, mustChange: false },
      { account: 'gina', lastChanged: isoDay(20700), ageDays: 79, active: true, mustChange: false },
    ]);
  });

  it('leaves root out when includeRoot is false, and takes system uids from minUid', () => {
    expect(linuxPasswords(passwd, shadow, { minUid: 1, includeRoot: false }, NOW).accounts.map((a) => a.name).slice(0, 2)).toEqual(['daemon', 'alice']);
  });

  it('says unknown for every account when /etc/shadow was not read', () => {
    const { accounts, passwords } = linuxPasswords(passwd, null, scope, NOW);
    expect(new Set(accounts.map((a) => a.password))).toEqual(new Set(['unknown']));
    expect(accounts.every((a) => a.enabled === null)).toBe(true);
    expect(passwords).toEqual([]);
  });

  it('reports a password kept in /etc/passwd with no date', () => {
    const { passwords } = linuxPasswords(parsePasswd('old:abJnggxhB/yWI:1001:1001::/home/old:/bin/sh'), new Map(), scope, NOW);
    expect(passwords).toEqual([{ account: 'old', lastChanged: null, ageDays: null, active: true, mustChange: false, note: expect.stringContaining('/etc/passwd') }]);
  });
});

describe('small helpers', () => {
  it('isoDay and ageInDays count whole UTC days', () => {
    expect(isoDay(0)).toBe('1970-01-01');
    expect(isoDay(TODAY)).toBe('2026-11-22');
    expect(ageInDays(NOW - 365 * DAY, NOW)).toBe(365);
    expect(ageInDays(NOW - 365 * DAY + 1, NOW)).toBe(364);
    expect(ageInDays(NOW + 2 * DAY, NOW)).toBe(-2);
  });

  it('inScope takes root only when asked', () => {
    expect(inScope(0, { minUid: 1000, includeRoot: true })).toBe(true);
    expect(inScope(0, { minUid: 0, includeRoot: false })).toBe(false);
    expect(inScope(999, { minUid: 1000, includeRoot: true })).toBe(false);
    expect(inScope(1000, { minUid: 1000, includeRoot: false })).toBe(true);
  });

  it('isLoginShell is false only for nologin and false', () => {
    expect(['/usr/sbin/nologin', '/sbin/nologin', '/bin/false', '/usr/bin/false'].map(isLoginShell)).toEqual([false, false, false, false]);
    expect(['/bin/bash', '/bin/sync', ''].map(isLoginShell)).toEqual([true, true, true]);
  });

  it('sshDirOf and isScannableHome', () => {
    expect(sshDirOf('/home/alice')).toBe('/home/alice/.ssh');
    expect(sshDirOf('/')).toBe('/.ssh');
    expect(sshDirOf('/home/alice/')).toBe('/home/alice/.ssh');
    expect(['/home/a', '/', 'home/a', '/home/../etc', ''].map(isScannableHome)).toEqual([true, true, false, false, false]);
  });
});

describe('~/.ssh and /etc/ssh listings', () => {
  const f = (name: string, type: DirEntry['type'] = 'file'): DirEntry => ({ name, type });

  it('finds private keys by name only', () => {
    const entries = [
      f('id_rsa'),
      f('id_rsa.pub'),
      f('id_ed25519_sk'),
      f('id_ed25519-cert.pub'),
      f('deploy'),
      f('deploy.pub'),
      f('lonely'),
      f('known_hosts'),
      f('config'),
      f('authorized_keys'),
      f('id_linked', 'symlink'),
      f('id_dir', 'dir'),
    ];
    expect(privateKeyNames(entries)).toEqual(['deploy', 'id_ed25519_sk', 'id_linked', 'id_rsa']);
    expect(authorizedKeysNames([...entries, f('authorized_keys2'), f('authorized_keys.bak')])).toEqual(['authorized_keys', 'authorized_keys2']);
    expect(authorizedKeysNames([f('authorized_keys', 'dir')])).toEqual([]);
  });

  it('finds host private keys, not their public halves or other files', () => {
    const entries = [f('ssh_host_rsa_key'), f('ssh_host_rsa_key.pub'), f('ssh_host_ed25519_key'), f('sshd_config'), f('moduli'), f('ssh_host_ecdsa_key', 'symlink')];
    expect(hostKeyNames(entries)).toEqual(['ssh_host_ecdsa_key', 'ssh_host_ed25519_key', 'ssh_host_rsa_key']);
  });
});

describe('parseAuthorizedKeys', () => {
  it('reads type, fingerprint, comment and options per entry, as ssh-keygen -l does', () => {
    const text = [
      '# managed by hand',
      `ssh-ed25519 ${ED25519} alice@example.org`,
      '',
      `command="/usr/bin/rsync --server -a . /srv",no-pty,from="10.0.0.0/8" ecdsa-sha2-nistp256 ${ECDSA}`,
      `  ssh-ed25519 ${ED25519} two words\r`,
    ].join('\n');
    expect(parseAuthorizedKeys(text)).toEqual({
      keys: [
        { type: 'ssh-ed25519', fingerprint: ED25519_FP, comment: 'alice@example.org', options: false },
        { type: 'ecdsa-sha2-nistp256', fingerprint: ECDSA_FP, comment: null, options: true },
        { type: 'ssh-ed25519', fingerprint: ED25519_FP, comment: 'two words', options: false },
      ],
      invalidLines: 0,
    });
  });

  it('counts lines that are not keys, including a blob whose inner type disagrees', () => {
    const text = ['not a key at all', `ssh-rsa ${ED25519} mislabelled`, 'ssh-ed25519 !!!notbase64', `ssh-ed25519 AAAA`].join('\n');
    expect(parseAuthorizedKeys(text)).toEqual({ keys: [], invalidLines: 4 });
  });

  it('gives nothing for an empty file', () => {
    expect(parseAuthorizedKeys('')).toEqual({ keys: [], invalidLines: 0 });
  });
});
