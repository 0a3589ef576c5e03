// Pure parsers for credential_age on macOS: the XML plist that `dscl -plist . -readall /Users …`
// prints, and the accountPolicyData plist embedded in it as a string. No I/O and no clock.
import { CheckError } from '../errors.js';
import { ageInDays, inScope, type PasswordState, type ScopeOptions } from './linux.js';

export interface PlistDate {
  readonly kind: 'date';
  readonly iso: string;
}
export interface PlistData {
  readonly kind: 'data';
  readonly base64: string;
}
export type PlistValue = string | number | boolean | PlistDate | PlistData | PlistValue[] | Map<string, PlistValue>;

type Token = { t: 'open'; name: string } | { t: 'close'; name: string } | { t: 'empty'; name: string } | { t: 'text'; value: string };

function plistError(what: string, subject: string): CheckError {
  return new CheckError('CHK_ERR_PARSE', `not a property list: ${what}`, { subject });
}

const ENTITIES: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

function decodeEntities(s: string, subject: string): string {
  return s.replace(/&(#x[0-9A-Fa-f]+|#\d+|[a-z]+);/g, (_m, e: string) => {
    if (e.startsWith('#x')) return String.fromCodePoint(parseInt(e.slice(2), 16));
    if (e.startsWith('#')) return String.fromCodePoint(parseInt(e.slice(1), 10));
    const v = ENTITIES[e];
    if (v === undefined) throw plistError(`unknown entity &${e};`, subject);
    return v;
  });
}

function tokenize(xml: string, subject: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < xml.length) {
    const lt = xml.indexOf('<', i);
    const textEnd = lt < 0 ? xml.length : lt;
    if (textEnd > i) out.push({ t: 'text', value: xml.slice(i, textEnd) });
    if (lt < 0) break;
    if (xml.startsWith('<?', lt) || xml.startsWith('<!DOCTYPE', lt)) {
      const end = xml.indexOf('>', lt);
      if (end < 0) throw plistError('unterminated declaration', subject);
      i = end + 1;
      continue;
    }
    if (xml.startsWith('<!--', lt)) {
      const end = xml.indexOf('-->', lt);
      if (end < 0) throw plistError('unterminated comment', subject);
      i = end + 3;
      continue;
    }
    const end = xml.indexOf('>', lt);
    if (end < 0) throw plistError('unterminated tag', subject);
    const m = /^<(\/?)([A-Za-z]+)(?:\s[^>]*?)?(\/?)>$/.exec(xml.slice(lt, end + 1));
    if (m === null) throw plistError('malformed tag', subject);
    const name = m[2]!;
    out.push(m[1] === '/' ? { t: 'close', name } : m[3] === '/' ? { t: 'empty', name } : { t: 'open', name });
    i = end + 1;
  }
  // Whitespace between elements carries nothing.
  return out.filter((tok) => tok.t !== 'text' || tok.value.trim() !== '');
}

/** Parses an XML property list (the format `dscl -plist` and plutil print). */
export function parsePlist(xml: string, subject = 'plist'): PlistValue {
  const toks = tokenize(xml, subject);
  let pos = 0;
  const next = (): Token => {
    const tok = toks[pos++];
    if (tok === undefined) throw plistError('unexpected end', subject);
    return tok;
  };
  const textUntilClose = (name: string): string => {
    let tok = next();
    let text = '';
    if (tok.t === 'text') {
      text = decodeEntities(tok.value, subject);
      tok = next();
    }
    if (tok.t !== 'close' || tok.name !== name) throw plistError(`expected </${name}>`, subject);
    return text;
  };
  const value = (tok: Token): PlistValue => {
    if (tok.t === 'empty') {
      switch (tok.name) {
        case 'true':
          return true;
        case 'false':
          return false;
        case 'string':
          return '';
        case 'array':
          return [];
        case 'dict':
          return new Map();
        default:
          throw plistError(`unexpected <${tok.name}/>`, subject);
      }
    }
    if (tok.t !== 'open') throw plistError('expected an element', subject);
    switch (tok.name) {
      case 'string':
        return textUntilClose('string');
      case 'key':
        throw plistError('a key outside a dict', subject);
      case 'integer':
      case 'real': {
        const s = textUntilClose(tok.name).trim();
        const n = Number(s);
        if (s === '' || !Number.isFinite(n)) throw plistError(`bad <${tok.name}>`, subject);
        return n;
      }
      case 'date': {
        const iso = textUntilClose('date').trim();
        if (Number.isNaN(Date.parse(iso))) throw plistError('bad <date>', subject);
        return { kind: 'date', iso };
      }
      case 'data':
        return { kind: 'data', base64: textUntilClose('data').replace(/\s+/g, '') };
      case 'true':
      case 'false':
        textUntilClose(tok.name);
        return tok.name === 'true';
      case 'array': {
        const arr: PlistValue[] = [];
        for (let t = next(); !(t.t === 'close' && t.name === 'array'); t = next()) arr.push(value(t));
        return arr;
      }
      case 'dict': {
        const dict = new Map<string, PlistValue>();
        for (let t = next(); !(t.t === 'close' && t.name === 'dict'); t = next()) {
          if (t.t === 'empty' && t.name === 'key') {
            dict.set('', value(next()));
            continue;
          }
          if (t.t !== 'open' || t.name !== 'key') throw plistError('expected <key> in a dict', subject);
          dict.set(textUntilClose('key'), value(next()));
        }
        return dict;
      }
      default:
        throw plistError(`unknown element <${tok.name}>`, subject);
    }
  };
  const first = next();
  let root: PlistValue;
  if (first.t === 'open' && first.name === 'plist') {
    root = value(next());
    const close = next();
    if (close.t !== 'close' || close.name !== 'plist') throw plistError('expected </plist>', subject);
  } else {
    root = value(first);
  }
  if (pos !== toks.length) throw plistError('trailing content', subject);
  return root;
}

export interface DsclUser {
  name: string;
  uid: number;
  home: string | null;
  shell: string | null;
  /** AuthenticationAuthority tags: ShadowHash, DisabledUser, LocalCachedUser, Kerberosv5… */
  authorities: string[];
  /** Milliseconds since 1970; null when accountPolicyData has no passwordLastSetTime. */
  passwordLastSetMs: number | null;
  /** accountPolicyData was present at all. */
  hasPolicyData: boolean;
}

function strings(v: PlistValue | undefined): string[] {
  if (v === undefined) return [];
  if (typeof v === 'string') return [v];
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}

function attr(rec: Map<string, PlistValue>, name: string): string[] {
  return strings(rec.get(`dsAttrTypeStandard:${name}`) ?? rec.get(`dsAttrTypeNative:${name}`) ?? rec.get(name));
}

/** `;ShadowHash;HASHLIST:<…>` → `ShadowHash`. Only the tag is kept. */
export function authorityTag(value: string): string {
  return value.split(';')[1]?.trim() ?? '';
}

/**
 * passwordLastSetTime from an accountPolicyData plist: seconds since 1970 as <real> or <integer>
 * (macOS 10.10 and later) or a <date> (older systems and migrated accounts).
 */
export function passwordLastSetMs(policyXml: string, subject: string): number | null {
  const policy = parsePlist(policyXml, subject);
  if (!(policy instanceof Map)) throw plistError('accountPolicyData is not a dict', subject);
  const v = policy.get('passwordLastSetTime');
  if (v === undefined) return null;
  if (typeof v === 'number') return Math.round(v * 1000);
  if (typeof v === 'object' && !Array.isArray(v) && !(v instanceof Map) && v.kind === 'date') return Date.parse(v.iso);
  throw plistError('passwordLastSetTime is neither a number nor a date', subject);
}

/** Parses `dscl -plist . -readall /Users RecordName UniqueID …`: an array with one dict per user. */
export function parseDsclUsers(xml: string, subject = 'dscl'): DsclUser[] {
  const root = parsePlist(xml, subject);
  const records = root instanceof Map ? [root] : root;
  if (!Array.isArray(records)) throw plistError('expected an array of user records', subject);
  const users: DsclUser[] = [];
  for (const rec of records) {
    if (!(rec instanceof Map)) throw plistError('a user record is not a dict', subject);
    const name = attr(rec, 'RecordName')[0];
    const uidText = attr(rec, 'UniqueID')[0];
    if (name === undefined || uidText === undefined || !/^-?\d+$/.test(uidText.trim())) {
      throw plistError('a user record lacks RecordName or a numeric UniqueID', subject);
    }
    const policy = attr(rec, 'accountPolicyData')[0];
    users.push({
      name,
      uid: Number(uidText.trim()),
      home: attr(rec, 'NFSHomeDirectory')[0] ?? null,
      shell: attr(rec, 'UserShell')[0] ?? null,
      authorities: attr(rec, 'AuthenticationAuthority').map(authorityTag).filter((t) => t !== ''),
      passwordLastSetMs: policy === undefined ? null : passwordLastSetMs(policy, `${subject}: accountPolicyData of ${name}`),
      hasPolicyData: policy !== undefined,
    });
  }
  return users;
}

export interface DarwinAccount {
  name: string;
  uid: number;
  home: string | null;
  shell: string | null;
  loginShell: boolean | null;
  password: PasswordState;
  enabled: boolean;
}

export interface DarwinPassword {
  account: string;
  lastChanged: string | null;
  ageDays: number | null;
  active: boolean;
  note?: string;
}

const DARWIN_NO_LOGIN = new Set(['/usr/bin/false', '/bin/false', '/usr/sbin/nologin', '/sbin/nologin']);

/**
 * Local accounts in scope (names starting with `_` are service accounts and never are), their
 * password state, and the password age of those that have a local password.
 */
export function darwinPasswords(users: readonly DsclUser[], scope: ScopeOptions, nowMs: number): { accounts: DarwinAccount[]; passwords: DarwinPassword[] } {
  const accounts: DarwinAccount[] = [];
  const passwords: DarwinPassword[] = [];
  for (const u of users) {
    if (u.name.startsWith('_') || u.uid < 0 || !inScope(u.uid, scope)) continue;
    const tags = new Set(u.authorities);
    const password: PasswordState = tags.has('LocalCachedUser') ? 'external' : tags.has('ShadowHash') ? 'set' : 'none';
    const enabled = !tags.has('DisabledUser');
    accounts.push({
      name: u.name,
      uid: u.uid,
      home: u.home,
      shell: u.shell,
      loginShell: u.shell === null ? null : !DARWIN_NO_LOGIN.has(u.shell),
      password,
      enabled,
    });
    if (password !== 'set') continue;
    const fact: DarwinPassword = { account: u.name, lastChanged: null, ageDays: null, active: enabled };
    if (u.passwordLastSetMs === null) {
      fact.note = u.hasPolicyData ? 'accountPolicyData has no passwordLastSetTime' : 'the account has no accountPolicyData';
    } else {
      fact.lastChanged = new Date(u.passwordLastSetMs).toISOString();
      fact.ageDays = ageInDays(u.passwordLastSetMs, nowMs);
    }
    passwords.push(fact);
  }
  return { accounts, passwords };
}
