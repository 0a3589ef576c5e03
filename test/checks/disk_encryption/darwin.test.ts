// macOS: the fdesetup and plist parsers on literal strings, collect against strict replays, and
// the FileVault verdicts, including the trap of APFS "Encryption" without FileVault.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  apfsVolumesFromPlist,
  collectDarwin,
  compareDeviceNames,
  DISKUTIL_APFS_LIST,
  FDESETUP,
  parseFdesetupStatus,
  parsePlist,
} from '../../../checks/disk_encryption/darwin.js';
import {
  configSchema,
  diskEncryption,
  evaluate,
  factsSchema,
  type ApfsVolume,
  type DarwinFacts,
  type FileVaultState,
} from '../../../checks/disk_encryption/index.js';
import { isCheckError, type CheckErrorCode } from '../../../checks/errors.js';
import { manifestSchema, ReplayHostIO, type RecordedCall } from '../../../checks/replay.js';
import { runCheck } from '../../../checks/runner.js';
import { listCases } from '../../helpers/fixtures.js';
import { thrownCode } from '../../helpers/check-errors.js';

const defaults = configSchema.parse({});

describe('parseFdesetupStatus', () => {
  it.each<[string, FileVaultState]>([
    ['FileVault is On.\n', 'on'],
    ['FileVault is On.\nFileVault master keychain appears to be installed.\n', 'on'],
    ['FileVault is On, but needs to be restarted to finish.\n', 'on_restart_pending'],
    ['FileVault is Off.\n', 'off'],
    ["FileVault is Off.\nDeferred enablement appears to be active for user 'jdoe'.\n", 'off_enable_deferred'],
    ['FileVault is Off, but will be enabled after the next restart.\n', 'off_enable_deferred'],
    ['FileVault is Off, but needs to be restarted to finish.\n', 'off_restart_pending'],
    ['\r\n  FileVault is On.  \r\n', 'on'],
  ])('reads %j as %s', (text, state) => {
    expect(parseFdesetupStatus(text)).toEqual({ state, percent: null });
  });

  it('lets a conversion line win over the headline, with its percentage', () => {
    expect(parseFdesetupStatus('FileVault is On.\nEncryption in progress: Percent completed = 42.0\n')).toEqual({ state: 'encrypting', percent: 42 });
    expect(parseFdesetupStatus('Encryption in progress: Percent completed = 3\n')).toEqual({ state: 'encrypting', percent: 3 });
    expect(parseFdesetupStatus('FileVault is On.\nEncryption in progress: percent completed = 99.5\n')).toEqual({ state: 'encrypting', percent: 99.5 });
    expect(parseFdesetupStatus('FileVault is Off.\nDecryption in progress: Percent completed = 73.0\n')).toEqual({ state: 'decrypting', percent: 73 });
    expect(parseFdesetupStatus('FileVault is On.\nDecryption in progress: Percent completed = 12\n')).toEqual({ state: 'decrypting', percent: 12 });
  });

  it('keeps a conversion without a percentage (Pending) and drops an impossible one', () => {
    expect(parseFdesetupStatus('FileVault is On.\nEncryption in progress: Pending\n')).toEqual({ state: 'encrypting', percent: null });
    expect(parseFdesetupStatus('Encryption in progress: Percent completed = 142\n')).toEqual({ state: 'encrypting', percent: null });
  });

  it.each(['', '\n', 'Error: Unable to get FileVault status.\n', 'FileVault is Enabled.\n', 'FileVault is on.\n', 'filevault is On.'])(
    'does not recognize %j',
    (text) => {
      expect(parseFdesetupStatus(text)).toBeNull();
    },
  );
});

describe('parsePlist', () => {
  it('reads scalars, nested containers, empty elements and entities', () => {
    const xml = `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<!-- a comment -->
<plist version="1.0">
<dict>
	<key>A &amp; B</key><string>x &lt;y&gt; &#65;&#x42;</string>
	<key>n</key><integer>-12</integer>
	<key>r</key><real>1.5</real>
	<key>t</key><true/>
	<key>f</key><false/>
	<key>e</key><array/>
	<key>d</key><dict/>
	<key>s</key><string/>
	<key>list</key><array><integer>1</integer><dict><key>k</key><string>v</string></dict></array>
	<key>when</key><date>2026-11-22T12:00:00Z</date>
	<key>blob</key><data>
		AAEC
		Aw==
	</data>
</dict>
</plist>
`;
    expect(parsePlist(xml)).toEqual({
      'A & B': 'x <y> AB',
      n: -12,
      r: 1.5,
      t: true,
      f: false,
      e: [],
      d: {},
      s: '',
      list: [1, { k: 'v' }],
      when: '2026-11-22T12:00:00Z',
      blob: 'AAECAw==',
    });
  });

  it('keeps a key named __proto__ as plain data', () => {
    const v = parsePlist('<plist version="1.0"><dict><key>__proto__</key><string>x</string></dict></plist>') as Record<string, unknown>;
    expect(Object.keys(v)).toEqual(['__proto__']);
    expect(Object.getPrototypeOf(v)).toBeNull();
  });

  it.each([
    ['no plist element', '<dict/>'],
    ['an unclosed dict', '<plist><dict><key>a</key><string>b</string></plist>'],
    ['a value without a key', '<plist><dict><string>b</string></dict></plist>'],
    ['an unknown element', '<plist><set/></plist>'],
    ['a bad integer', '<plist><integer>12a</integer></plist>'],
    ['markup inside a string', '<plist><string>a<b/></string></plist>'],
    ['trailing content', '<plist><true/></plist><plist/>'],
    ['an unknown entity', '<plist><string>&nbsp;</string></plist>'],
    ['an unterminated string', '<plist><string>abc'],
    ['a mismatched close', '<plist><array><true/></dict></plist>'],
    ['nothing', ''],
  ])('refuses %s with CHK_ERR_PARSE', (_what, xml) => {
    expect(thrownCode(() => parsePlist(xml))).toBe('CHK_ERR_PARSE');
  });
});

const APFS = `<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0">
<dict>
	<key>Containers</key>
	<array>
		<dict>
			<key>ContainerReference</key><string>disk3</string>
			<key>Volumes</key>
			<array>
				<dict>
					<key>DeviceIdentifier</key><string>disk3s10</string>
					<key>Name</key><string>Update</string>
					<key>Roles</key><array><string>Update</string></array>
				</dict>
				<dict>
					<key>CryptoMigrationOn</key><false/>
					<key>DeviceIdentifier</key><string>disk3s5</string>
					<key>Encryption</key><true/>
					<key>FileVault</key><false/>
					<key>Locked</key><false/>
					<key>Name</key><string>Macintosh HD - Data</string>
					<key>Roles</key><array><string>Data</string></array>
				</dict>
			</array>
		</dict>
		<dict>
			<key>ContainerReference</key><string>disk1</string>
			<key>Volumes</key><array/>
		</dict>
	</array>
</dict>
</plist>`;

describe('apfsVolumesFromPlist', () => {
  it('lists every volume with its flags, sorted by device, and null for absent flags', () => {
    expect(apfsVolumesFromPlist(parsePlist(APFS))).toEqual([
      { container: 'disk3', device: 'disk3s5', name: 'Macintosh HD - Data', roles: ['Data'], encryption: true, fileVault: false, locked: false, cryptoMigrationOn: false },
      { container: 'disk3', device: 'disk3s10', name: 'Update', roles: ['Update'], encryption: null, fileVault: null, locked: null, cryptoMigrationOn: null },
    ]);
  });

  it('answers an empty list when there are no APFS containers', () => {
    expect(apfsVolumesFromPlist(parsePlist('<plist><dict><key>Containers</key><array/></dict></plist>'))).toEqual([]);
  });

  it.each([
    ['a top level that is not a dict', '<plist><array/></plist>'],
    ['no Containers', '<plist><dict/></plist>'],
    ['a container without Volumes', '<plist><dict><key>Containers</key><array><dict><key>ContainerReference</key><string>disk1</string></dict></array></dict></plist>'],
    ['a volume without DeviceIdentifier', '<plist><dict><key>Containers</key><array><dict><key>ContainerReference</key><string>disk1</string><key>Volumes</key><array><dict/></array></dict></array></dict></plist>'],
  ])('refuses %s', (_what, xml) => {
    expect(thrownCode(() => apfsVolumesFromPlist(parsePlist(xml)))).toBe('CHK_ERR_PARSE');
  });

  it('orders device names by their numbers', () => {
    expect(['disk3s10', 'disk3s5', 'disk10s1', 'disk3s1', 'disk1s2'].sort(compareDeviceNames)).toEqual(['disk1s2', 'disk3s1', 'disk3s5', 'disk3s10', 'disk10s1']);
  });
});

const fde = (stdout: string, exitCode = 0, stderr = ''): RecordedCall => ({ op: 'run', command: FDESETUP.command, args: [...FDESETUP.args], stdout, exitCode, stderr });
const du = (over: Partial<Extract<RecordedCall, { op: 'run' }>>): RecordedCall => ({ op: 'run', command: DISKUTIL_APFS_LIST.command, args: [...DISKUTIL_APFS_LIST.args], ...over });

async function collect(calls: RecordedCall[]): Promise<DarwinFacts> {
  const io = new ReplayHostIO({ version: 1, platform: 'darwin', calls });
  const facts = await collectDarwin(io);
  io.assertComplete();
  return facts;
}

async function collectError(calls: RecordedCall[]): Promise<CheckErrorCode | string> {
  const io = new ReplayHostIO({ version: 1, platform: 'darwin', calls });
  const err = await collectDarwin(io).catch((e: unknown) => e);
  io.assertComplete();
  return isCheckError(err) ? err.code : `no CheckError: ${String(err)}`;
}

describe('collectDarwin', () => {
  it('records fdesetup and every APFS volume', async () => {
    const facts = await collect([fde('FileVault is On.\n'), du({ stdout: APFS })]);
    expect(facts).toMatchObject({ platform: 'darwin', fileVault: { state: 'on', percent: null, exitCode: 0, output: ['FileVault is On.'] } });
    expect(facts.apfsVolumes?.map((v) => v.device)).toEqual(['disk3s5', 'disk3s10']);
    expect(facts.apfsNote).toBeUndefined();
  });

  it('reads the output of an fdesetup that exits non-zero', async () => {
    expect((await collect([fde('FileVault is Off.\n', 1), du({ stdout: APFS })])).fileVault).toMatchObject({ state: 'off', exitCode: 1 });
  });

  it('answers COMMAND_FAILED for a failing fdesetup it does not understand, PARSE when it exited 0', async () => {
    expect(await collectError([fde('', 1, 'fdesetup: Error: unable to connect to the service\n')])).toBe('CHK_ERR_COMMAND_FAILED');
    expect(await collectError([fde('Something new.\n')])).toBe('CHK_ERR_PARSE');
  });

  it('passes on HostIO failures of fdesetup (missing, timed out)', async () => {
    expect(await collectError([{ op: 'run', command: FDESETUP.command, args: [...FDESETUP.args], error: 'CHK_ERR_SOURCE_MISSING' }])).toBe('CHK_ERR_SOURCE_MISSING');
    expect(await collectError([{ op: 'run', command: FDESETUP.command, args: [...FDESETUP.args], error: 'CHK_ERR_TIMEOUT' }])).toBe('CHK_ERR_TIMEOUT');
  });

  it('keeps going without diskutil, and says why its evidence is missing', async () => {
    const failed = await collect([fde('FileVault is On.\n'), du({ error: 'CHK_ERR_SOURCE_MISSING' })]);
    expect(failed).toMatchObject({ apfsVolumes: null, apfsNote: 'diskutil could not run (CHK_ERR_SOURCE_MISSING)' });
    const exited = await collect([fde('FileVault is On.\n'), du({ stdout: '', exitCode: 1 })]);
    expect(exited).toMatchObject({ apfsVolumes: null, apfsNote: 'diskutil exited with 1' });
    const garbled = await collect([fde('FileVault is On.\n'), du({ stdout: 'Could not find disk: apfs' })]);
    expect(garbled.apfsVolumes).toBeNull();
    expect(garbled.apfsNote).toMatch(/malformed property list/);
  });

  it('does not hide a diskutil timeout as missing evidence', async () => {
    expect(await collectError([fde('FileVault is On.\n'), du({ error: 'CHK_ERR_TIMEOUT' })])).toBe('CHK_ERR_TIMEOUT');
  });
});

function vol(over: Partial<ApfsVolume>): ApfsVolume {
  return { container: 'disk3', device: 'disk3s5', name: 'Macintosh HD - Data', roles: ['Data'], encryption: true, fileVault: true, locked: false, cryptoMigrationOn: false, ...over };
}

function darwin(state: FileVaultState, apfsVolumes: ApfsVolume[] | null = [vol({})], percent: number | null = null): DarwinFacts {
  return factsSchema.parse({ platform: 'darwin', fileVault: { state, percent, exitCode: 0, output: [] }, apfsVolumes }) as DarwinFacts;
}

const codes = (ev: { reasons: { code: string; subject?: string }[] }) => ev.reasons.map((r) => `${r.code} ${r.subject ?? ''}`);

describe('evaluate on macOS', () => {
  it('passes only when FileVault is on', () => {
    expect(evaluate(darwin('on'), defaults)).toEqual({ status: 'pass', reasons: [] });
    // diskutil's evidence is optional: without it fdesetup decides alone (CoreStorage, or diskutil failed).
    expect(evaluate(darwin('on', null), defaults).status).toBe('pass');
    expect(evaluate(darwin('on', []), defaults).status).toBe('pass');
  });

  it('never passes on the APFS Encryption flag alone (T2 and Apple silicon hardware keys)', () => {
    const ev = evaluate(darwin('off', [vol({ device: 'disk3s1', roles: ['System'], encryption: false, fileVault: false }), vol({ encryption: true, fileVault: false })]), defaults);
    expect(ev.status).toBe('fail');
    expect(codes(ev)).toEqual(['CHK_FAIL_FILEVAULT_OFF /']);
    expect(ev.reasons[0]?.message).toContain('disk3s5');
    expect(ev.reasons[0]?.message).toContain('does not count');
    expect(ev.reasons[0]?.message).not.toContain('disk3s1');
  });

  it('says nothing of hardware encryption when no data volume reports it', () => {
    const ev = evaluate(darwin('off', [vol({ encryption: false, fileVault: false })]), defaults);
    expect(ev.reasons[0]?.message).toBe('FileVault is off');
  });

  it.each<[FileVaultState, string]>([
    ['off', 'CHK_FAIL_FILEVAULT_OFF'],
    ['off_enable_deferred', 'CHK_FAIL_FILEVAULT_OFF'],
    ['off_restart_pending', 'CHK_FAIL_FILEVAULT_OFF'],
    ['encrypting', 'CHK_FAIL_ENCRYPTION_IN_PROGRESS'],
    ['on_restart_pending', 'CHK_FAIL_ENCRYPTION_IN_PROGRESS'],
    ['decrypting', 'CHK_FAIL_DECRYPTION_IN_PROGRESS'],
  ])('fails %s with %s on /', (state, code) => {
    const ev = evaluate(darwin(state), defaults);
    expect(ev.status).toBe('fail');
    expect(codes(ev)).toEqual([`${code} /`]);
  });

  it('names the conversion progress', () => {
    expect(evaluate(darwin('encrypting', [vol({ cryptoMigrationOn: true })], 42), defaults).reasons[0]?.message).toContain('42% done');
    expect(evaluate(darwin('decrypting', null, 73.5), defaults).reasons[0]?.message).toContain('73.5% done');
  });

  it('is unknown when fdesetup says on but no APFS volume carries the FileVault flag', () => {
    const ev = evaluate(darwin('on', [vol({ fileVault: false }), vol({ device: 'disk3s1', roles: ['System'], fileVault: null })]), defaults);
    expect(ev.status).toBe('unknown');
    expect(codes(ev)).toEqual(['CHK_ERR_UNRESOLVED /']);
  });

  it('accepts a startup volume the config ignores on purpose', () => {
    expect(evaluate(darwin('off'), { ...defaults, ignoreMountpoints: ['/'] }).status).toBe('pass');
  });
});

describe('the facts schema', () => {
  it('keeps darwin facts apart from Linux facts, and both evaluate', () => {
    const linux = { mountSource: '/proc/1/mountinfo', volumes: [], notLocal: [], ignoredPseudoMounts: 0 };
    expect(factsSchema.parse(linux)).toEqual(linux);
    expect(factsSchema.safeParse({ platform: 'darwin', fileVault: { state: 'maybe', percent: null, exitCode: 0, output: [] }, apfsVolumes: null }).success).toBe(false);
    expect(factsSchema.safeParse({ platform: 'darwin', fileVault: { state: 'on', percent: 101, exitCode: 0, output: [] }, apfsVolumes: null }).success).toBe(false);
  });

  it('runs end to end through the runner with the darwin platform', async () => {
    const io = new ReplayHostIO({ version: 1, platform: 'darwin', calls: [fde('FileVault is On.\n'), du({ stdout: APFS })] });
    const finding = await runCheck(diskEncryption, { io });
    io.assertComplete();
    // APFS shows FileVault false on the Data volume here: fdesetup and diskutil disagree.
    expect(finding).toMatchObject({ platform: 'darwin', status: 'unknown', checkVersion: '1.1.0' });
  });
});

describe('the macOS sources', () => {
  it('declares exactly the two commands, and every darwin fixture runs only those', () => {
    const declared = (diskEncryption.sources.darwin ?? []).map((s) => (s.kind === 'command' ? [s.command, ...s.args] : [s.path]));
    expect(declared).toEqual([
      ['/usr/bin/fdesetup', 'status'],
      ['/usr/sbin/diskutil', 'apfs', 'list', '-plist'],
    ]);
    const cases = listCases('disk_encryption').filter((c) => c.platform === 'darwin');
    expect(cases.length).toBeGreaterThan(0);
    for (const c of cases) {
      const manifest = manifestSchema.parse(JSON.parse(readFileSync(path.join(c.dir, 'manifest.json'), 'utf8')));
      for (const call of manifest.calls) {
        expect(call.op, c.name).toBe('run');
        if (call.op === 'run') expect(declared, c.name).toContainEqual([call.command, ...call.args]);
      }
    }
  });
});
