// C2SP signed notes (c2sp.org/signed-note) with Ed25519 keys, and the tlog-checkpoint note text
// (c2sp.org/tlog-checkpoint). The parsing rules follow the specs and golang.org/x/mod/sumdb/note;
// where those are lenient we are strict, since we only need to read what conforming signers write.
import { createHash, createPublicKey, sign, verify } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { CollectorError } from '../errors.js';

const ED25519_TYPE = 0x01;
const SIG_PREFIX = '\u2014 ';
// The spec says "MUST accept at least up to 16"; Go's Open stops at 100, and so do we.
const MAX_SIGNATURES = 100;

export interface NoteVerifier {
  name: string;
  keyId: Buffer;
  publicKey: KeyObject;
}

export interface OpenedNote {
  text: string;
  /** Every distinct signature line, known key or not, in note order. */
  signatures: { name: string; keyId: Buffer; signature: Buffer }[];
  /** Names of the known verifiers whose signatures verified, each once, in note order. */
  verifiedBy: string[];
}

export interface Checkpoint {
  origin: string;
  size: number;
  rootHash: Buffer;
  extensions: string[];
}

function malformed(message: string): CollectorError {
  return new CollectorError('COL_ERR_MALFORMED', message);
}

/** Why `s` breaks "valid UTF-8 and no ASCII control characters other than newline", or null. */
function textProblem(s: string): string | null {
  // With the u flag a paired surrogate is one code point, so only lone halves match.
  if (/[\uD800-\uDFFF]/u.test(s)) return 'is not valid Unicode (lone surrogate)';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 && c !== 0x0a) return `holds the control character U+${c.toString(16).padStart(4, '0')}`;
  }
  return null;
}

function checkText(text: string, what: string): void {
  if (!text.endsWith('\n')) throw malformed(`${what} does not end in a newline`);
  const problem = textProblem(text);
  if (problem !== null) throw malformed(`${what} ${problem}`);
}

function checkName(name: string): void {
  if (name === '') throw malformed('the key name is empty');
  // Go's unicode.IsSpace is exactly the White_Space property.
  if (/\p{White_Space}/u.test(name)) throw malformed(`the key name ${JSON.stringify(name)} holds a space`);
  if (name.includes('+')) throw malformed(`the key name ${JSON.stringify(name)} holds a '+'`);
  const problem = textProblem(name);
  if (problem !== null) throw malformed(`the key name ${problem}`);
}

/** Standard padded base64, canonical only: Buffer.from alone skips junk and accepts loose padding. */
function decodeBase64(s: string): Buffer | null {
  if (s.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(s)) return null;
  const bytes = Buffer.from(s, 'base64');
  return bytes.toString('base64') === s ? bytes : null;
}

function rawPublicKey(publicKey: KeyObject): Buffer {
  if (publicKey.type !== 'public' || publicKey.asymmetricKeyType !== 'ed25519') {
    throw malformed('the key is not an Ed25519 public key');
  }
  const { x } = publicKey.export({ format: 'jwk' });
  return Buffer.from(x ?? '', 'base64url');
}

function checkPrivateKey(privateKey: KeyObject): void {
  if (privateKey.type !== 'private' || privateKey.asymmetricKeyType !== 'ed25519') {
    throw malformed('the key is not an Ed25519 private key');
  }
}

function keyIdOf(name: string, raw: Buffer): Buffer {
  const h = createHash('sha256').update(name, 'utf8').update(Buffer.from([0x0a, ED25519_TYPE])).update(raw).digest();
  return h.subarray(0, 4);
}

export function ed25519KeyId(name: string, publicKey: KeyObject): Buffer {
  checkName(name);
  return keyIdOf(name, rawPublicKey(publicKey));
}

export function verifierKey(name: string, publicKey: KeyObject): string {
  checkName(name);
  const raw = rawPublicKey(publicKey);
  const material = Buffer.concat([Buffer.from([ED25519_TYPE]), raw]).toString('base64');
  return `${name}+${keyIdOf(name, raw).toString('hex')}+${material}`;
}

export function parseVerifierKey(vkey: string): NoteVerifier {
  // The base64 part may itself hold '+', so split on the first two only.
  const a = vkey.indexOf('+');
  const b = a < 0 ? -1 : vkey.indexOf('+', a + 1);
  if (b < 0) throw malformed('a verifier key is <name>+<hex key ID>+<base64 key>');
  const name = vkey.slice(0, a);
  const hex = vkey.slice(a + 1, b);
  checkName(name);
  // The spec's hex is "fixed length lowercase"; Go also takes upper case, we do not.
  if (!/^[0-9a-f]{8}$/.test(hex)) throw malformed('the verifier key ID is not 8 lowercase hex digits');
  const material = decodeBase64(vkey.slice(b + 1));
  if (material === null) throw malformed('the verifier key material is not canonical base64');
  if (material[0] !== ED25519_TYPE) throw malformed('the verifier key is not an Ed25519 (type 0x01) key');
  if (material.length !== 33) throw malformed('an Ed25519 verifier key must hold 32 key bytes');
  const raw = material.subarray(1);
  const keyId = keyIdOf(name, raw);
  if (keyId.toString('hex') !== hex) throw malformed('the verifier key ID does not match its name and key');
  const publicKey = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') }, format: 'jwk' });
  return { name, keyId, publicKey };
}

interface SigLine {
  name: string;
  keyId: Buffer;
  signature: Buffer;
  b64: string;
}

function parseNote(note: string): { text: string; sigs: SigLine[] } {
  const problem = textProblem(note);
  if (problem !== null) throw malformed(`the signed note ${problem}`);
  // "the text is separated from the signatures by the last empty line in the note"
  const split = note.lastIndexOf('\n\n');
  if (split < 0) throw malformed('the signed note has no blank line before its signatures');
  const text = note.slice(0, split + 1);
  const block = note.slice(split + 2);
  if (block === '' || !block.endsWith('\n')) throw malformed('the signed note must end in newline-terminated signature lines');
  const lines = block.slice(0, -1).split('\n');
  if (lines.length > MAX_SIGNATURES) throw malformed(`the signed note has more than ${MAX_SIGNATURES} signatures`);
  const sigs = lines.map((line): SigLine => {
    if (!line.startsWith(SIG_PREFIX)) throw malformed('a signature line does not start with an em dash and a space');
    const rest = line.slice(SIG_PREFIX.length);
    const sp = rest.indexOf(' ');
    if (sp < 0) throw malformed('a signature line has no space between key name and signature');
    const name = rest.slice(0, sp);
    const b64 = rest.slice(sp + 1);
    checkName(name);
    const raw = decodeBase64(b64);
    if (raw === null || raw.length < 5) throw malformed('a signature is not base64 of a key ID and signature bytes');
    return { name, keyId: raw.subarray(0, 4), signature: raw.subarray(4), b64 };
  });
  return { text, sigs };
}

function signatureLine(text: string, name: string, privateKey: KeyObject): { name: string; keyId: Buffer; line: string } {
  checkName(name);
  checkPrivateKey(privateKey);
  const keyId = keyIdOf(name, rawPublicKey(createPublicKey(privateKey)));
  const sig = sign(null, Buffer.from(text, 'utf8'), privateKey);
  return { name, keyId, line: `${SIG_PREFIX}${name} ${Buffer.concat([keyId, sig]).toString('base64')}\n` };
}

export function signNote(text: string, name: string, privateKey: KeyObject): string {
  checkText(text, 'the note text');
  return `${text}\n${signatureLine(text, name, privateKey).line}`;
}

/** Adds one more signature (cosigning) to an existing signed note. */
export function addSignature(note: string, name: string, privateKey: KeyObject): string {
  // The existing signatures are not checked here: cosigners openNote first.
  const { text, sigs } = parseNote(note);
  const added = signatureLine(text, name, privateKey);
  // As Go's Sign does, a new signature replaces an older one by the same key.
  const kept = sigs.filter((s) => !(s.name === added.name && s.keyId.equals(added.keyId)));
  if (kept.length + 1 > MAX_SIGNATURES) throw malformed(`the signed note would have more than ${MAX_SIGNATURES} signatures`);
  return `${text}\n${kept.map((s) => `${SIG_PREFIX}${s.name} ${s.b64}\n`).join('')}${added.line}`;
}

function verifierIndex(verifiers: readonly NoteVerifier[]): Map<string, NoteVerifier> {
  const byKey = new Map<string, { v: NoteVerifier; raw: Buffer }>();
  for (const v of verifiers) {
    let raw: Buffer;
    try {
      raw = rawPublicKey(v.publicKey);
      checkName(v.name);
    } catch (err) {
      throw new CollectorError('COL_ERR_CONFIG', `verifier ${JSON.stringify(v.name)}: ${(err as Error).message}`);
    }
    // A hand-built verifier with a stale key ID would silently never match.
    if (!keyIdOf(v.name, raw).equals(v.keyId)) {
      throw new CollectorError('COL_ERR_CONFIG', `verifier ${JSON.stringify(v.name)}: its key ID does not match its name and key`);
    }
    const k = `${v.name}+${v.keyId.toString('hex')}`;
    const prev = byKey.get(k);
    // The spec has name+ID identify one key; two keys under one tuple is a configuration error.
    if (prev !== undefined && !prev.raw.equals(raw)) throw new CollectorError('COL_ERR_CONFIG', `two different verifier keys share ${k}`);
    byKey.set(k, { v, raw });
  }
  return new Map([...byKey].map(([k, { v }]) => [k, v]));
}

export function openNote(note: string, verifiers: readonly NoteVerifier[]): OpenedNote {
  const known = verifierIndex(verifiers);
  const { text, sigs } = parseNote(note);
  const message = Buffer.from(text, 'utf8');
  const signatures: OpenedNote['signatures'] = [];
  const seen = new Set<string>();
  const verifiedBy: string[] = [];
  for (const s of sigs) {
    const line = `${s.name} ${s.b64}`;
    if (seen.has(line)) continue;
    seen.add(line);
    signatures.push({ name: s.name, keyId: Buffer.from(s.keyId), signature: Buffer.from(s.signature) });
    const v = known.get(`${s.name}+${s.keyId.toString('hex')}`);
    // "Verifiers MUST ignore signatures from unknown keys, even if they share a name or ID".
    if (v === undefined) continue;
    // "If a signature from a known key fails to verify, clients SHOULD reject the whole note."
    if (s.signature.length !== 64 || !verify(null, message, v.publicKey, s.signature)) {
      throw new CollectorError('COL_ERR_BAD_SIGNATURE', `the signature by ${s.name}+${s.keyId.toString('hex')} does not verify`);
    }
    if (!verifiedBy.includes(s.name)) verifiedBy.push(s.name);
  }
  if (verifiedBy.length === 0) throw new CollectorError('COL_ERR_BAD_SIGNATURE', 'the note has no signature from a known verifier');
  return { text, signatures, verifiedBy };
}

export function formatCheckpoint(c: Checkpoint): string {
  if (c.origin === '' || c.origin.includes('\n')) throw malformed('the checkpoint origin must be one non-empty line');
  if (!Number.isSafeInteger(c.size) || c.size < 0) throw malformed('the checkpoint size must be a non-negative safe integer');
  if (c.rootHash.length !== 32) throw malformed('the checkpoint root hash must be 32 bytes');
  for (const e of c.extensions) {
    if (e === '' || e.includes('\n')) throw malformed('a checkpoint extension must be one non-empty line');
  }
  const text = `${c.origin}\n${c.size}\n${c.rootHash.toString('base64')}\n${c.extensions.map((e) => `${e}\n`).join('')}`;
  checkText(text, 'the checkpoint');
  return text;
}

export function parseCheckpoint(text: string): Checkpoint {
  checkText(text, 'the checkpoint');
  const lines = text.slice(0, -1).split('\n');
  // "a sequence of at least three non-empty lines"; extension lines "MUST be non-empty".
  if (lines.length < 3) throw malformed('a checkpoint has at least an origin, a size and a root hash line');
  if (lines.includes('')) throw malformed('a checkpoint line is empty');
  const [origin = '', sizeLine = '', rootLine = ''] = lines;
  // "no leading zeroes (unless the tree is empty, in which case the tree size is `0`)"
  if (!/^(0|[1-9][0-9]*)$/.test(sizeLine)) throw malformed('the checkpoint size is not a canonical decimal number');
  const size = Number(sizeLine);
  if (!Number.isSafeInteger(size)) throw malformed('the checkpoint size is larger than 2^53-1');
  const rootHash = decodeBase64(rootLine);
  if (rootHash === null || rootHash.length !== 32) throw malformed('the checkpoint root hash is not canonical base64 of 32 bytes');
  return { origin, size, rootHash, extensions: lines.slice(3) };
}
