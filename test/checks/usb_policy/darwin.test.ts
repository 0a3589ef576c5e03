// The macOS parsers of usb_policy: the XML property list reader and `profiles -C -o stdout-xml`.
import { describe, expect, it } from 'vitest';
import { parsePlist, parseProfilesOutput } from '../../../checks/usb_policy/darwin.js';
import type { CommandResult } from '../../../checks/types.js';
import { thrownCode as codeOf } from '../../helpers/check-errors.js';

const HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n<plist version="1.0">\n';
const plist = (body: string): string => `${HEAD}${body}\n</plist>\n`;
const ok = (stdout: string): CommandResult => ({ stdout, stderr: '', exitCode: 0 });

describe('XML property lists', () => {
  it('reads every value type', () => {
    const v = parsePlist(
      plist(`<dict>
  <key>s</key><string>a &amp; b &lt;c&gt; &#x41;&#66;</string>
  <key>i</key><integer>-42</integer>
  <key>r</key><real>1.5</real>
  <key>t</key><true/>
  <key>f</key><false/>
  <key>d</key><date>2026-03-31T01:14:38Z</date>
  <key>b</key><data>
    AAEC
  </data>
  <key>a</key><array><string>x</string><dict/><array/></array>
  <key>e</key><string/>
  <!-- a comment -->
</dict>`),
    );
    expect(v).toEqual({ s: 'a & b <c> AB', i: -42, r: 1.5, t: true, f: false, d: '2026-03-31T01:14:38Z', b: '\n    AAEC\n  ', a: ['x', {}, []], e: '' });
  });

  it('rejects what is not a property list', () => {
    expect(codeOf(() => parsePlist('profiles: something else'))).toBe('CHK_ERR_PARSE');
    expect(codeOf(() => parsePlist(plist('<dict><key>a</key><string>unterminated</dict>')))).toBe('CHK_ERR_PARSE');
    expect(codeOf(() => parsePlist(plist('<dict><string>no key</string></dict>')))).toBe('CHK_ERR_PARSE');
    expect(codeOf(() => parsePlist(plist('<dict><key>n</key><integer>ten</integer></dict>')))).toBe('CHK_ERR_PARSE');
    expect(codeOf(() => parsePlist(plist('<set/>')))).toBe('CHK_ERR_PARSE');
  });
});

const profile = (id: string, items: string): string => `<dict>
  <key>ProfileDisplayName</key><string>${id} name</string>
  <key>ProfileIdentifier</key><string>${id}</string>
  <key>ProfileItems</key><array>${items}</array>
  <key>ProfileType</key><string>Configuration</string>
</dict>`;
const payload = (type: string, content: string, ident = `${type}.payload`): string =>
  `<dict><key>PayloadContent</key><dict>${content}</dict><key>PayloadIdentifier</key><string>${ident}</string><key>PayloadType</key><string>${type}</string></dict>`;

describe('profiles -C -o stdout-xml', () => {
  it('finds mount-controls in computer-level systemuiserver payloads', () => {
    const out = plist(`<dict><key>_computerlevel</key><array>
${profile('com.example.firewall', payload('com.apple.security.firewall', '<key>EnableFirewall</key><true/>'))}
${profile(
  'com.example.media',
  payload(
    'com.apple.systemuiserver',
    '<key>mount-controls</key><dict><key>harddisk-external</key><array><string>deny</string></array><key>disk-image</key><string>authenticate</string></dict>',
  ) + payload('com.apple.systemuiserver', '<key>logout-eject</key><dict/>', 'other'),
)}
</array></dict>`);
    expect(parseProfilesOutput(ok(out))).toEqual({
      platform: 'darwin',
      profileCount: 2,
      mountControls: [
        {
          profileIdentifier: 'com.example.media',
          profileDisplayName: 'com.example.media name',
          payloadIdentifier: 'com.apple.systemuiserver.payload',
          harddiskExternal: ['deny'],
          diskImage: ['authenticate'],
        },
      ],
    });
  });

  it('reads no profiles from an empty list, a missing _computerlevel, or the "none installed" message', () => {
    const none = { platform: 'darwin', profileCount: 0, mountControls: [] };
    expect(parseProfilesOutput(ok(plist('<dict><key>_computerlevel</key><array/></dict>')))).toEqual(none);
    expect(parseProfilesOutput(ok(plist('<dict/>')))).toEqual(none);
    expect(parseProfilesOutput(ok('There are no configuration profiles installed in the system domain\n'))).toEqual(none);
  });

  it('answers CHK_ERR_PERMISSION when profiles needs root, whatever its exit status', () => {
    expect(codeOf(() => parseProfilesOutput(ok('profiles: this command requires root privileges\n')))).toBe('CHK_ERR_PERMISSION');
    expect(codeOf(() => parseProfilesOutput({ stdout: '', stderr: 'Must be running as root\n', exitCode: 1 }))).toBe('CHK_ERR_PERMISSION');
  });

  it('answers CHK_ERR_COMMAND_FAILED for other errors and CHK_ERR_PARSE for output it cannot read', () => {
    expect(codeOf(() => parseProfilesOutput({ stdout: '', stderr: 'profiles: unexpected error (-205)\n', exitCode: 1 }))).toBe('CHK_ERR_COMMAND_FAILED');
    expect(codeOf(() => parseProfilesOutput(ok('')))).toBe('CHK_ERR_PARSE');
    expect(codeOf(() => parseProfilesOutput(ok(plist('<array/>'))))).toBe('CHK_ERR_PARSE');
    expect(codeOf(() => parseProfilesOutput(ok(plist('<dict><key>_computerlevel</key><string>x</string></dict>'))))).toBe('CHK_ERR_PARSE');
  });
});
