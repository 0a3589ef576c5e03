// macOS: FileVault state from `fdesetup status`, with the APFS volumes from
// `diskutil apfs list -plist` as supporting evidence. The parsers are pure; collectDarwin reads
// through HostIO (declared commands only).
import { CheckError, isCheckError } from '../errors.js';
import type { HostIO } from '../types.js';
import type { ApfsVolume, DarwinFacts, FileVaultState } from './index.js';

export const FDESETUP = { command: '/usr/bin/fdesetup', args: ['status'] } as const;
export const DISKUTIL_APFS_LIST = { command: '/usr/sbin/diskutil', args: ['apfs', 'list', '-plist'] } as const;

// ---------------------------------------------------------------------------------------------
// fdesetup status

export interface FdesetupStatus {
  state: FileVaultState;
  /** "Percent completed = 42.0" during a conversion; null otherwise or when fdesetup gives none. */
  percent: number | null;
}

// The headlines fdesetup prints, as public Jamf and MunkiReport scripts list them. Matched
// whole, so a new wording is unrecognized, never a pass.
const HEADLINES: readonly [RegExp, FileVaultState][] = [
  [/^FileVault is On\.?$/, 'on'],
  [/^FileVault is On, but needs to be restarted to finish\.?$/, 'on_restart_pending'],
  [/^FileVault is Off\.?$/, 'off'],
  [/^FileVault is Off, but will be enabled after the next restart\.?$/, 'off_enable_deferred'],
  [/^FileVault is Off, but needs to be restarted to finish\.?$/, 'off_restart_pending'],
];

function percentIn(line: string): number | null {
  const m = /percent completed\s*=\s*(\d+(?:\.\d+)?)/i.exec(line);
  if (m?.[1] === undefined) return null;
  const n = Number(m[1]);
  return n >= 0 && n <= 100 ? n : null;
}

/**
 * Reads the output of `fdesetup status`. A conversion line ("Encryption in progress: Percent
 * completed = 42.0", "Decryption in progress: …", "Encryption in progress: Pending") wins over
 * the headline, which fdesetup may or may not print beside it. Returns null for anything else.
 */
export function parseFdesetupStatus(text: string): FdesetupStatus | null {
  const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '');
  const decrypting = lines.find((l) => /^Decryption (in progress|paused)\b/i.test(l));
  if (decrypting !== undefined) return { state: 'decrypting', percent: percentIn(decrypting) };
  const encrypting = lines.find((l) => /^Encryption (in progress|paused)\b/i.test(l));
  if (encrypting !== undefined) return { state: 'encrypting', percent: percentIn(encrypting) };
  let state: FileVaultState | null = null;
  for (const line of lines) {
    const hit = HEADLINES.find(([re]) => re.test(line));
    if (hit !== undefined) {
      state = hit[1];
      break;
    }
  }
  if (state === null) return null;
  // "FileVault is Off." followed by "Deferred enablement appears to be active for user '…'."
  if (state === 'off' && lines.some((l) => /^Deferred enablement appears to be active/i.test(l))) state = 'off_enable_deferred';
  return { state, percent: null };
}

// ---------------------------------------------------------------------------------------------
// XML property lists (the subset diskutil writes: dict, array, key, string, integer, real,
// true, false, date, data)

export type PlistValue = string | number | boolean | PlistValue[] | PlistDict;
export interface PlistDict {
  [key: string]: PlistValue;
}

interface Tag {
  name: string;
  kind: 'open' | 'close' | 'empty';
}

const ENTITIES: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

function decodeEntities(s: string, fail: (why: string) => never): string {
  return s.replace(/&(#x[0-9A-Fa-f]+|#\d+|[A-Za-z]+);/g, (_, ent: string) => {
    if (ent.startsWith('#x')) return String.fromCodePoint(parseInt(ent.slice(2), 16));
    if (ent.startsWith('#')) return String.fromCodePoint(parseInt(ent.slice(1), 10));
    const named = ENTITIES[ent];
    if (named === undefined) fail(`unknown entity &${ent};`);
    return named;
  });
}

/** Parses an XML plist into plain values. Throws CHK_ERR_PARSE on anything malformed. */
export function parsePlist(xml: string, subject = 'plist'): PlistValue {
  let pos = 0;
  const fail = (why: string): never => {
    throw new CheckError('CHK_ERR_PARSE', `malformed property list: ${why} at offset ${pos}`, { subject });
  };

  /** Skips whitespace, the XML declaration, the doctype and comments. */
  const skipMisc = (): void => {
    for (;;) {
      while (pos < xml.length && /\s/.test(xml[pos] ?? '')) pos++;
      if (xml.startsWith('<?', pos)) {
        const end = xml.indexOf('?>', pos);
        if (end < 0) fail('unterminated declaration');
        pos = end + 2;
      } else if (xml.startsWith('<!--', pos)) {
        const end = xml.indexOf('-->', pos);
        if (end < 0) fail('unterminated comment');
        pos = end + 3;
      } else if (xml.startsWith('<!DOCTYPE', pos)) {
        const end = xml.indexOf('>', pos);
        if (end < 0) fail('unterminated doctype');
        pos = end + 1;
      } else {
        return;
      }
    }
  };

  const readTag = (): Tag => {
    skipMisc();
    const m = /^<(\/?)([A-Za-z][\w.-]*)((?:\s+[\w:-]+\s*=\s*(?:"[^"]*"|'[^']*'))*)\s*(\/?)>/.exec(xml.slice(pos, pos + 512));
    if (m === null) fail('expected a tag');
    const [whole, slash, name, , selfClose] = m as RegExpExecArray;
    pos += whole.length;
    if (slash === '/' && selfClose === '/') fail('bad tag');
    return { name: name ?? '', kind: slash === '/' ? 'close' : selfClose === '/' ? 'empty' : 'open' };
  };

  const readText = (name: string): string => {
    const end = xml.indexOf(`</${name}>`, pos);
    if (end < 0) fail(`unterminated <${name}>`);
    const raw = xml.slice(pos, end);
    if (raw.includes('<')) fail(`markup inside <${name}>`);
    pos = end + name.length + 3;
    return decodeEntities(raw, fail);
  };

  const readValue = (tag: Tag): PlistValue => {
    if (tag.kind === 'close') fail(`unexpected </${tag.name}>`);
    const empty = tag.kind === 'empty';
    switch (tag.name) {
      case 'true':
      case 'false':
        if (!empty) {
          const close = readTag();
          if (close.kind !== 'close' || close.name !== tag.name) fail(`<${tag.name}> must be empty`);
        }
        return tag.name === 'true';
      case 'string':
      case 'date':
      case 'data':
        return empty ? '' : tag.name === 'data' ? readText(tag.name).replace(/\s+/g, '') : readText(tag.name);
      case 'integer':
      case 'real': {
        const text = empty ? '' : readText(tag.name).trim();
        const re = tag.name === 'integer' ? /^[+-]?(\d+|0x[0-9A-Fa-f]+)$/ : /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
        if (!re.test(text)) fail(`bad <${tag.name}> ${JSON.stringify(text)}`);
        return Number(text);
      }
      case 'array': {
        const out: PlistValue[] = [];
        if (empty) return out;
        for (;;) {
          const next = readTag();
          if (next.kind === 'close') {
            if (next.name !== 'array') fail(`</${next.name}> closes <array>`);
            return out;
          }
          out.push(readValue(next));
        }
      }
      case 'dict': {
        // No prototype: keys such as "__proto__" stay plain data.
        const out = Object.create(null) as PlistDict;
        if (empty) return out;
        for (;;) {
          const next = readTag();
          if (next.kind === 'close') {
            if (next.name !== 'dict') fail(`</${next.name}> closes <dict>`);
            return out;
          }
          if (next.name !== 'key' || next.kind !== 'open') fail('expected <key> in <dict>');
          const key = readText('key');
          out[key] = readValue(readTag());
        }
      }
      default:
        return fail(`unknown element <${tag.name}>`);
    }
  };

  const root = readTag();
  if (root.name !== 'plist' || root.kind !== 'open') fail('expected <plist>');
  const value = readValue(readTag());
  const close = readTag();
  if (close.kind !== 'close' || close.name !== 'plist') fail('expected </plist>');
  skipMisc();
  if (pos !== xml.length) fail('trailing content');
  return value;
}

// ---------------------------------------------------------------------------------------------
// diskutil apfs list -plist

function isDict(v: PlistValue | undefined): v is PlistDict {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function bool(v: PlistValue | undefined): boolean | null {
  return typeof v === 'boolean' ? v : null;
}

/** `disk3s10` after `disk3s5`: digit runs compare as numbers; the order never depends on locale. */
export function compareDeviceNames(a: string, b: string): number {
  const pa = a.match(/\d+|\D+/g) ?? [];
  const pb = b.match(/\d+|\D+/g) ?? [];
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    const x = pa[i] ?? '';
    const y = pb[i] ?? '';
    if (x === y) continue;
    if (/^\d/.test(x) && /^\d/.test(y)) return Number(x) - Number(y) || (x < y ? -1 : 1);
    return x < y ? -1 : 1;
  }
  return pa.length - pb.length;
}

/**
 * The volumes of every APFS container, sorted by device. Keys are those of
 * `diskutil apfs list -plist` (Containers[].ContainerReference, Volumes[].DeviceIdentifier,
 * Name, Roles, Encryption, FileVault, Locked, CryptoMigrationOn). Throws CHK_ERR_PARSE when
 * the shape is not that.
 */
export function apfsVolumesFromPlist(root: PlistValue, subject = 'diskutil apfs list -plist'): ApfsVolume[] {
  const bad = (why: string): never => {
    throw new CheckError('CHK_ERR_PARSE', `unexpected diskutil output: ${why}`, { subject });
  };
  if (!isDict(root)) return bad('the top level is not a dict');
  const containers = root['Containers'];
  if (!Array.isArray(containers)) return bad('no Containers array');
  const out: ApfsVolume[] = [];
  for (const c of containers) {
    if (!isDict(c)) return bad('a container is not a dict');
    const ref = c['ContainerReference'];
    const volumes = c['Volumes'];
    if (typeof ref !== 'string' || !Array.isArray(volumes)) return bad('a container lacks ContainerReference or Volumes');
    for (const v of volumes) {
      if (!isDict(v)) return bad('a volume is not a dict');
      const device = v['DeviceIdentifier'];
      if (typeof device !== 'string') return bad('a volume lacks DeviceIdentifier');
      const roles = v['Roles'];
      const name = v['Name'];
      out.push({
        container: ref,
        device,
        name: typeof name === 'string' ? name : null,
        roles: Array.isArray(roles) ? roles.filter((r): r is string => typeof r === 'string') : [],
        encryption: bool(v['Encryption']),
        fileVault: bool(v['FileVault']),
        locked: bool(v['Locked']),
        cryptoMigrationOn: bool(v['CryptoMigrationOn']),
      });
    }
  }
  return out.sort((a, b) => compareDeviceNames(a.device, b.device));
}

// ---------------------------------------------------------------------------------------------
// Collect

function outputLines(text: string): string[] {
  return text.split(/\r?\n/).map((l) => l.trimEnd()).filter((l) => l.trim() !== '');
}

async function readApfs(io: HostIO): Promise<{ volumes: ApfsVolume[] | null; note?: string }> {
  let res;
  try {
    res = await io.run(DISKUTIL_APFS_LIST.command, DISKUTIL_APFS_LIST.args);
  } catch (err) {
    if (!isCheckError(err) || err.code === 'CHK_ERR_TIMEOUT' || err.code === 'CHK_ERR_INTERNAL') throw err;
    return { volumes: null, note: `diskutil could not run (${err.code})` };
  }
  if (res.exitCode !== 0) return { volumes: null, note: `diskutil exited with ${res.exitCode}` };
  try {
    return { volumes: apfsVolumesFromPlist(parsePlist(res.stdout, 'diskutil apfs list -plist')) };
  } catch (err) {
    if (!isCheckError(err)) throw err;
    return { volumes: null, note: err.message };
  }
}

/**
 * fdesetup decides; diskutil is evidence only, so its failure is recorded rather than fatal.
 * fdesetup exits non-zero in some states (HostIO hands the exit code over as data), so its
 * output is read first and the exit code only matters when the output is not understood.
 */
export async function collectDarwin(io: HostIO): Promise<DarwinFacts> {
  const res = await io.run(FDESETUP.command, FDESETUP.args);
  const status = parseFdesetupStatus(res.stdout);
  if (status === null) {
    const said = outputLines(`${res.stdout}\n${res.stderr}`)[0];
    const detail = said === undefined ? 'no output' : JSON.stringify(said.slice(0, 200));
    if (res.exitCode !== 0) {
      throw new CheckError('CHK_ERR_COMMAND_FAILED', `fdesetup status exited with ${res.exitCode}: ${detail}`, { subject: FDESETUP.command });
    }
    throw new CheckError('CHK_ERR_PARSE', `fdesetup status said something unrecognized: ${detail}`, { subject: FDESETUP.command });
  }
  const apfs = await readApfs(io);
  return {
    platform: 'darwin',
    fileVault: { ...status, exitCode: res.exitCode, output: outputLines(res.stdout) },
    apfsVolumes: apfs.volumes,
    ...(apfs.note === undefined ? {} : { apfsNote: apfs.note }),
  };
}
