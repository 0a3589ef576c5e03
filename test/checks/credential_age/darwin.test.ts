import { describe, expect, it } from 'vitest';
import { authorityTag, darwinPasswords, parseDsclUsers, parsePlist, passwordLastSetMs } from '../../../checks/credential_age/darwin.js';
import { thrownCode } from '../../helpers/check-errors.js';

const HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n<plist version="1.0">\n';

/** accountPolicyData as dscl embeds it: a whole plist, escaped, inside a <string>. */
function policy(body: string): string {
  const inner = `${HEAD}<dict>\n${body}\n</dict>\n</plist>\n`;
  return inner.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function record(attrs: Record<string, string[]>): string {
  return `\t<dict>\n${Object.entries(attrs)
    .map(([k, vs]) => `\t\t<key>${k}</key>\n\t\t<array>\n${vs.map((v) => `\t\t\t<string>${v}</string>`).join('\n')}\n\t\t</array>`)
    .join('\n')}\n\t</dict>`;
}

const SHADOW = ';ShadowHash;HASHLIST:&lt;SALTED-SHA512-PBKDF2,SRP-RFC5054-4096-SHA512-PBKDF2&gt;';
const NOW = Date.parse('2026-11-22T12:00:00Z');

const DSCL_OUTPUT = `${HEAD}<array>
${record({
  'dsAttrTypeNative:accountPolicyData': [
    policy(
      '\t<key>creationTime</key>\n\t<real>1540611063.535651</real>\n\t<key>failedLoginCount</key>\n\t<integer>0</integer>\n\t<key>passwordLastSetTime</key>\n\t<real>1540611064.6205959</real>',
    ),
  ],
  'dsAttrTypeStandard:AuthenticationAuthority': [SHADOW, ';Kerberosv5;;alice@LKDC:SHA1.0A1B;LKDC:SHA1.0A1B;', ';SecureToken;'],
  'dsAttrTypeStandard:NFSHomeDirectory': ['/Users/alice'],
  'dsAttrTypeStandard:RecordName': ['alice', 'Alice Example'],
  'dsAttrTypeStandard:UniqueID': ['501'],
  'dsAttrTypeStandard:UserShell': ['/bin/zsh'],
})}
${record({
  'dsAttrTypeNative:accountPolicyData': [policy('\t<key>passwordLastSetTime</key>\n\t<date>2014-03-01T10:00:00Z</date>')],
  'dsAttrTypeStandard:AuthenticationAuthority': [SHADOW, ';DisabledUser;'],
  'dsAttrTypeStandard:NFSHomeDirectory': ['/Users/bob'],
  'dsAttrTypeStandard:RecordName': ['bob'],
  'dsAttrTypeStandard:UniqueID': ['502'],
  'dsAttrTypeStandard:UserShell': ['/bin/zsh'],
})}
${record({
  'dsAttrTypeStandard:AuthenticationAuthority': [';LocalCachedUser;/Active Directory/CORP/corp.example.org:carol:0F0E', SHADOW],
  'dsAttrTypeStandard:NFSHomeDirectory': ['/Users/carol'],
  'dsAttrTypeStandard:RecordName': ['carol'],
  'dsAttrTypeStandard:UniqueID': ['1105'],
})}
${record({
  'dsAttrTypeNative:accountPolicyData': [policy('\t<key>creationTime</key>\n\t<real>1700000000</real>')],
  'dsAttrTypeStandard:AuthenticationAuthority': [SHADOW],
  'dsAttrTypeStandard:NFSHomeDirectory': ['/Users/dave'],
  'dsAttrTypeStandard:RecordName': ['dave'],
  'dsAttrTypeStandard:UniqueID': ['503'],
  'dsAttrTypeStandard:UserShell': ['/bin/bash'],
})}
${record({
  'dsAttrTypeStandard:NFSHomeDirectory': ['/var/root'],
  'dsAttrTypeStandard:RecordName': ['root', 'BUILTIN\\Local System'],
  'dsAttrTypeStandard:UniqueID': ['0'],
  'dsAttrTypeStandard:UserShell': ['/bin/sh'],
})}
${record({
  'dsAttrTypeStandard:NFSHomeDirectory': ['/var/empty'],
  'dsAttrTypeStandard:RecordName': ['nobody'],
  'dsAttrTypeStandard:UniqueID': ['-2'],
  'dsAttrTypeStandard:UserShell': ['/usr/bin/false'],
})}
${record({
  'dsAttrTypeStandard:AuthenticationAuthority': [SHADOW],
  'dsAttrTypeStandard:NFSHomeDirectory': ['/var/setup'],
  'dsAttrTypeStandard:RecordName': ['_mbsetupuser'],
  'dsAttrTypeStandard:UniqueID': ['248'],
  'dsAttrTypeStandard:UserShell': ['/bin/bash'],
})}
${record({
  'dsAttrTypeStandard:NFSHomeDirectory': ['/var/db/hidden'],
  'dsAttrTypeStandard:RecordName': ['_hidden'],
  'dsAttrTypeStandard:UniqueID': ['600'],
})}
</array>
</plist>
`;

describe('parsePlist', () => {
  it('reads dicts, arrays, strings, numbers, booleans, dates and data', () => {
    const xml = `${HEAD}<dict>
  <key>s</key><string>a &lt;b&gt; &amp; &#233;&#x41;</string>
  <key>e</key><string/>
  <key>i</key><integer>-3</integer>
  <key>r</key><real>1.5</real>
  <key>t</key><true/>
  <key>f</key><false/>
  <key>d</key><date>2014-03-01T10:00:00Z</date>
  <key>b</key><data>
    AAEC
  </data>
  <key>a</key><array><string>x</string><array/><dict/></array>
  <!-- a comment -->
</dict>
</plist>`;
    const v = parsePlist(xml);
    expect(v).toEqual(
      new Map<string, unknown>([
        ['s', 'a <b> & éA'],
        ['e', ''],
        ['i', -3],
        ['r', 1.5],
        ['t', true],
        ['f', false],
        ['d', { kind: 'date', iso: '2014-03-01T10:00:00Z' }],
        ['b', { kind: 'data', base64: 'AAEC' }],
        ['a', ['x', [], new Map()]],
      ]),
    );
  });

  it.each([
    ['an unclosed dict', `${HEAD}<dict><key>a</key><string>b</string></plist>`],
    ['a value without a key', `${HEAD}<dict><string>b</string></dict></plist>`],
    ['a bad number', `${HEAD}<real>fast</real></plist>`],
    ['an unknown element', `${HEAD}<set/></plist>`],
    ['an unknown entity', `${HEAD}<string>&nbsp;</string></plist>`],
    ['trailing content', `${HEAD}<string>a</string></plist><string>b</string>`],
    ['an empty document', ''],
    ['a bad date', `${HEAD}<date>yesterday</date></plist>`],
  ])('refuses %s with CHK_ERR_PARSE', (_what, xml) => {
    expect(thrownCode(() => parsePlist(xml))).toBe('CHK_ERR_PARSE');
  });
});

describe('passwordLastSetMs', () => {
  it('reads <real> seconds, <integer> seconds and <date>', () => {
    const doc = (body: string) => `${HEAD}<dict>${body}</dict></plist>`;
    expect(passwordLastSetMs(doc('<key>passwordLastSetTime</key><real>1540611064.6205959</real>'), 's')).toBe(1540611064621);
    expect(passwordLastSetMs(doc('<key>passwordLastSetTime</key><integer>1400000000</integer>'), 's')).toBe(1400000000000);
    expect(passwordLastSetMs(doc('<key>passwordLastSetTime</key><date>2014-03-01T10:00:00Z</date>'), 's')).toBe(Date.parse('2014-03-01T10:00:00Z'));
    expect(passwordLastSetMs(doc('<key>creationTime</key><real>1</real>'), 's')).toBeNull();
    expect(thrownCode(() => passwordLastSetMs(doc('<key>passwordLastSetTime</key><string>x</string>'), 's'))).toBe('CHK_ERR_PARSE');
    expect(thrownCode(() => passwordLastSetMs(`${HEAD}<array/></plist>`, 's'))).toBe('CHK_ERR_PARSE');
  });
});

describe('parseDsclUsers', () => {
  it('reads each record of dscl -plist . -readall /Users', () => {
    const users = parseDsclUsers(DSCL_OUTPUT);
    expect(users.map((u) => [u.name, u.uid, u.home, u.shell, u.authorities, u.passwordLastSetMs, u.hasPolicyData])).toEqual([
      ['alice', 501, '/Users/alice', '/bin/zsh', ['ShadowHash', 'Kerberosv5', 'SecureToken'], 1540611064621, true],
      ['bob', 502, '/Users/bob', '/bin/zsh', ['ShadowHash', 'DisabledUser'], Date.parse('2014-03-01T10:00:00Z'), true],
      ['carol', 1105, '/Users/carol', null, ['LocalCachedUser', 'ShadowHash'], null, false],
      ['dave', 503, '/Users/dave', '/bin/bash', ['ShadowHash'], null, true],
      ['root', 0, '/var/root', '/bin/sh', [], null, false],
      ['nobody', -2, '/var/empty', '/usr/bin/false', [], null, false],
      ['_mbsetupuser', 248, '/var/setup', '/bin/bash', ['ShadowHash'], null, false],
      ['_hidden', 600, '/var/db/hidden', null, [], null, false],
    ]);
  });

  it('accepts attribute names without the dsAttrType prefix, and a lone record', () => {
    const xml = `${HEAD}<dict><key>RecordName</key><array><string>solo</string></array><key>UniqueID</key><array><string>501</string></array></dict></plist>`;
    expect(parseDsclUsers(xml).map((u) => [u.name, u.uid])).toEqual([['solo', 501]]);
  });

  it.each([
    ['a record without UniqueID', `${HEAD}<array><dict><key>dsAttrTypeStandard:RecordName</key><array><string>x</string></array></dict></array></plist>`],
    ['a non-numeric UniqueID', `${HEAD}<array>${record({ 'dsAttrTypeStandard:RecordName': ['x'], 'dsAttrTypeStandard:UniqueID': ['abc'] })}</array></plist>`],
    ['a top-level string', `${HEAD}<string>x</string></plist>`],
    ['a record that is not a dict', `${HEAD}<array><string>x</string></array></plist>`],
    ['the text dscl prints without -plist', 'RecordName: alice\nUniqueID: 501\n'],
  ])('refuses %s with CHK_ERR_PARSE', (_what, xml) => {
    expect(thrownCode(() => parseDsclUsers(xml))).toBe('CHK_ERR_PARSE');
  });

  it('authorityTag keeps only the tag', () => {
    expect(authorityTag(';ShadowHash;HASHLIST:<SALTED-SHA512-PBKDF2>')).toBe('ShadowHash');
    expect(authorityTag(';Kerberosv5;;alice@LKDC:SHA1.X;LKDC:SHA1.X;')).toBe('Kerberosv5');
    expect(authorityTag('junk')).toBe('');
  });
});

describe('darwinPasswords', () => {
  const users = parseDsclUsers(DSCL_OUTPUT);

  it('keeps local accounts from minUid up and root, never service accounts', () => {
    const { accounts, passwords } = darwinPasswords(users, { minUid: 500, includeRoot: true }, NOW);
    expect(accounts.map((a) => [a.name, a.password, a.enabled, a.loginShell])).toEqual([
      ['alice', 'set', true, true],
      ['bob', 'set', false, true],
      ['carol', 'external', true, null],
      ['dave', 'set', true, true],
      ['root', 'none', true, true],
    ]);
    expect(passwords).toEqual([
      { account: 'alice', lastChanged: '2018-10-27T03:31:04.621Z', ageDays: 2948, active: true },
      { account: 'bob', lastChanged: '2014-03-01T10:00:00.000Z', ageDays: 4649, active: false },
      { account: 'dave', lastChanged: null, ageDays: null, active: true, note: 'accountPolicyData has no passwordLastSetTime' },
    ]);
  });

  it('leaves root out when includeRoot is false', () => {
    expect(darwinPasswords(users, { minUid: 502, includeRoot: false }, NOW).accounts.map((a) => a.name)).toEqual(['bob', 'carol', 'dave']);
  });
});
