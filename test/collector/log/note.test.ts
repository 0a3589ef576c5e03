// Signed notes and checkpoints against the published C2SP and Go vectors, against openssl as an
// independent Ed25519 verifier, and against the inputs they must refuse.
import { execFileSync } from 'node:child_process';
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { isCollectorError } from '../../../collector/errors.js';
import {
  addSignature,
  ed25519KeyId,
  formatCheckpoint,
  openNote,
  parseCheckpoint,
  parseVerifierKey,
  signNote,
  verifierKey,
} from '../../../collector/log/note.js';
import type { NoteVerifier } from '../../../collector/log/note.js';

function thrownCode(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return isCollectorError(err) ? err.code : `not a CollectorError: ${String(err)}`;
  }
  return undefined;
}

// A Go-style signer key "PRIVATE+KEY+<name>+<hex id>+base64(0x01 || 32-byte seed)" as a KeyObject.
function goSignerKey(skey: string): { name: string; keyIdHex: string; privateKey: KeyObject } {
  const [priv, key, name = '', keyIdHex = '', b64 = ''] = cutFive(skey);
  expect([priv, key]).toEqual(['PRIVATE', 'KEY']);
  const raw = Buffer.from(b64, 'base64');
  expect(raw[0]).toBe(0x01);
  const pkcs8 = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), raw.subarray(1)]);
  return { name, keyIdHex, privateKey: createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }) };
}

// The base64 tail may hold '+': split on the first four only.
function cutFive(s: string): string[] {
  const parts: string[] = [];
  let rest = s;
  for (let i = 0; i < 4; i++) {
    const at = rest.indexOf('+');
    parts.push(rest.slice(0, at));
    rest = rest.slice(at + 1);
  }
  return [...parts, rest];
}

function freshKey(name: string): { name: string; privateKey: KeyObject; verifier: NoteVerifier } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { name, privateKey, verifier: parseVerifierKey(verifierKey(name, publicKey)) };
}

// Vectors from golang/mod, sumdb/note/note_test.go (TestNewVerifier, TestSign, TestOpen) and the
// package doc in sumdb/note/note.go.
const PETER_VKEY = 'PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW';
const PETER_SKEY = 'PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz';
const ENOCH_VKEY = 'EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop';
const PETER_TEXT = 'If you think cryptography is the answer to your problem,\n' + "then you don't know what your problem is.\n";
const PETER_SIG = '— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n';
const ENOCH_SIG = '— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n';
const PETER_NOTE = `${PETER_TEXT}\n${PETER_SIG}`;

// Vectors from C2SP/C2SP, signed-note.md ("Verifier keys" example and the opening example).
const FOO_VKEY = 'example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k';
const FOO_NOTE =
  'This is an example message.\n\n' +
  '— example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n';
const QUASIMODO_TEXT = 'Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\ned è subito sera.\n';
const QUASIMODO_NOTE =
  `${QUASIMODO_TEXT}\n` +
  '— quasimodo.example/salvatore NnugSzTjtVAewIS+Z/iJhUPeFDkO/5QQ2i5ddnGITLlC+EhfLW9oJKONrMouFSQU0xMcXxj99ihAQwaqP3ZekRwNtIc=\n';

// Vectors from C2SP/C2SP, tlog-checkpoint.md (opening example) and tlog-witness.md (add-checkpoint
// and sign-subtree examples).
const SOFA_TEXT = 'example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n';
const SOFA_NOTE =
  `${SOFA_TEXT}\n` +
  '— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n';
const SOFA_14_TEXT = 'example.com/behind-the-sofa\n14\n/CcKVZM9n65aH7jLaIZuUB4/MSlEFQ4+ldwUC21rDHM=\n';

describe('published signed-note vectors', () => {
  it('parses the Go verifier keys and recomputes their key IDs', () => {
    const peter = parseVerifierKey(PETER_VKEY);
    expect(peter.name).toBe('PeterNeumann');
    expect(peter.keyId.toString('hex')).toBe('c74f20a3');
    expect(ed25519KeyId('PeterNeumann', peter.publicKey).toString('hex')).toBe('c74f20a3');
    expect(verifierKey('PeterNeumann', peter.publicKey)).toBe(PETER_VKEY);
    expect(verifierKey('EnochRoot', parseVerifierKey(ENOCH_VKEY).publicKey)).toBe(ENOCH_VKEY);
  });

  it('opens the Go example note with its verifier key', () => {
    const opened = openNote(PETER_NOTE, [parseVerifierKey(PETER_VKEY)]);
    expect(opened.text).toBe(PETER_TEXT);
    expect(opened.verifiedBy).toEqual(['PeterNeumann']);
    expect(opened.signatures).toHaveLength(1);
    expect(opened.signatures[0]?.keyId.toString('hex')).toBe('c74f20a3');
    expect(opened.signatures[0]?.signature).toHaveLength(64);
  });

  it('signs the Go example text with the published private key, byte for byte', () => {
    const signer = goSignerKey(PETER_SKEY);
    expect(signer.name).toBe('PeterNeumann');
    expect(ed25519KeyId(signer.name, createPublicKey(signer.privateKey)).toString('hex')).toBe(signer.keyIdHex);
    expect(verifierKey(signer.name, createPublicKey(signer.privateKey))).toBe(PETER_VKEY);
    expect(signNote(PETER_TEXT, signer.name, signer.privateKey)).toBe(PETER_NOTE);
  });

  it('opens the Go doubly-signed note: both known, or only one known and the other ignored', () => {
    const both = `${PETER_TEXT}\n${PETER_SIG}${ENOCH_SIG}`;
    const all = openNote(both, [parseVerifierKey(PETER_VKEY), parseVerifierKey(ENOCH_VKEY)]);
    expect(all.verifiedBy).toEqual(['PeterNeumann', 'EnochRoot']);
    const one = openNote(both, [parseVerifierKey(PETER_VKEY)]);
    expect(one.verifiedBy).toEqual(['PeterNeumann']);
    expect(one.signatures.map((s) => `${s.name}+${s.keyId.toString('hex')}`)).toEqual(['PeterNeumann+c74f20a3', 'EnochRoot+af0cfe78']);
    expect(openNote(both, [parseVerifierKey(ENOCH_VKEY)]).verifiedBy).toEqual(['EnochRoot']);
  });

  it('computes key IDs as the spec writes them: SHA-256(name || 0x0A || 0x01 || key)[:4]', () => {
    const { publicKey } = generateKeyPairSync('ed25519');
    const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x ?? '', 'base64url');
    expect(raw).toHaveLength(32);
    const want = createHash('sha256').update(Buffer.concat([Buffer.from('vcm.example/log\n\u0001'), raw])).digest().subarray(0, 4);
    expect(ed25519KeyId('vcm.example/log', publicKey)).toEqual(want);
    expect(verifierKey('vcm.example/log', publicKey)).toBe(
      `vcm.example/log+${want.toString('hex')}+${Buffer.concat([Buffer.from([1]), raw]).toString('base64')}`,
    );
  });

  it('opens the C2SP verifier-key example note', () => {
    const foo = parseVerifierKey(FOO_VKEY);
    expect(ed25519KeyId('example.com/foo', foo.publicKey).toString('hex')).toBe('530d903a');
    expect(verifierKey(foo.name, foo.publicKey)).toBe(FOO_VKEY);
    const opened = openNote(FOO_NOTE, [foo]);
    expect(opened.text).toBe('This is an example message.\n');
    expect(opened.verifiedBy).toEqual(['example.com/foo']);
  });

  it('reads the C2SP opening example, whose text holds an empty line, up to its unpublished key', () => {
    // Its key is not published: the note parses (no MALFORMED) and then has no known signer.
    expect(thrownCode(() => openNote(QUASIMODO_NOTE, [parseVerifierKey(FOO_VKEY)]))).toBe('COL_ERR_BAD_SIGNATURE');
    const k = freshKey('quasimodo.example/salvatore');
    const signed = signNote(QUASIMODO_TEXT, k.name, k.privateKey);
    expect(signed.startsWith(`${QUASIMODO_TEXT}\n— quasimodo.example/salvatore `)).toBe(true);
    expect(openNote(signed, [k.verifier]).text).toBe(QUASIMODO_TEXT);
    // The published signature line is in the same shape: same name, 4 + 64 bytes.
    const theirs = Buffer.from(QUASIMODO_NOTE.trimEnd().split(' ').at(-1) ?? '', 'base64');
    expect(theirs).toHaveLength(68);
  });
});

describe('checkpoints', () => {
  it('parses and formats the tlog-checkpoint and tlog-witness examples byte for byte', () => {
    const sofa = parseCheckpoint(SOFA_TEXT);
    expect(sofa.origin).toBe('example.com/behind-the-sofa');
    expect(sofa.size).toBe(20852163);
    expect(sofa.rootHash.toString('base64')).toBe('CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=');
    expect(sofa.rootHash).toHaveLength(32);
    expect(sofa.extensions).toEqual([]);
    expect(formatCheckpoint(sofa)).toBe(SOFA_TEXT);
    expect(formatCheckpoint(parseCheckpoint(SOFA_14_TEXT))).toBe(SOFA_14_TEXT);
    expect(parseCheckpoint(SOFA_14_TEXT).size).toBe(14);
  });

  it('takes the example checkpoint out of its signed note, ignoring the unknown log signature', () => {
    const log = freshKey('example.com/behind-the-sofa');
    const cosigned = addSignature(SOFA_NOTE, log.name, log.privateKey);
    expect(cosigned.startsWith(SOFA_NOTE)).toBe(true);
    const opened = openNote(cosigned, [log.verifier]);
    expect(opened.signatures).toHaveLength(2);
    expect(opened.verifiedBy).toEqual(['example.com/behind-the-sofa']);
    expect(formatCheckpoint(parseCheckpoint(opened.text))).toBe(SOFA_TEXT);
  });

  it('round-trips the empty tree and extension lines', () => {
    const empty = { origin: 'vcm.example/log', size: 0, rootHash: Buffer.alloc(32, 0xe3), extensions: [] };
    expect(formatCheckpoint(empty)).toBe(`vcm.example/log\n0\n${Buffer.alloc(32, 0xe3).toString('base64')}\n`);
    expect(parseCheckpoint(formatCheckpoint(empty))).toEqual(empty);
    const ext = { ...empty, size: Number.MAX_SAFE_INTEGER, extensions: ['vcm/v1 a b', 'x'] };
    const text = formatCheckpoint(ext);
    expect(text.endsWith('\nvcm/v1 a b\nx\n')).toBe(true);
    expect(parseCheckpoint(text)).toEqual(ext);
  });

  it('refuses non-canonical checkpoints', () => {
    const root = 'CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=';
    const bad = [
      `o\n01\n${root}\n`, // leading zero
      `o\n00\n${root}\n`,
      `o\n+1\n${root}\n`,
      `o\n1.0\n${root}\n`,
      `o\n 1\n${root}\n`,
      `o\n9007199254740992\n${root}\n`, // 2^53
      `o\n1\n${Buffer.alloc(31).toString('base64')}\n`, // 31-byte root
      `o\n1\n${Buffer.alloc(33).toString('base64')}\n`,
      `o\n1\n${root.slice(0, -1)}\n`, // unpadded
      `o\n1\nCsUYapGGPo4dkMgIAUqom_Xajj7h2fB2MPA3j2jxq2I=\n`, // base64url
      `o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2J=\n`, // non-zero trailing bits
      `\n1\n${root}\n`, // empty origin
      `o\n1\n${root}`, // no final newline
      `o\n1\n`,
      `o\n1\n${root}\n\n`, // empty extension
      `o\n1\n${root}\next\r\n`,
    ];
    for (const text of bad) expect([text, thrownCode(() => parseCheckpoint(text))]).toEqual([text, 'COL_ERR_MALFORMED']);
    expect(thrownCode(() => parseCheckpoint(`o\n1\n${root}\n`))).toBeUndefined();
    const good = parseCheckpoint(SOFA_TEXT);
    expect(thrownCode(() => formatCheckpoint({ ...good, rootHash: Buffer.alloc(31) }))).toBe('COL_ERR_MALFORMED');
    expect(thrownCode(() => formatCheckpoint({ ...good, origin: '' }))).toBe('COL_ERR_MALFORMED');
    expect(thrownCode(() => formatCheckpoint({ ...good, size: -1 }))).toBe('COL_ERR_MALFORMED');
    expect(thrownCode(() => formatCheckpoint({ ...good, size: 1.5 }))).toBe('COL_ERR_MALFORMED');
    expect(thrownCode(() => formatCheckpoint({ ...good, extensions: [''] }))).toBe('COL_ERR_MALFORMED');
    expect(thrownCode(() => formatCheckpoint({ ...good, extensions: ['a\nb'] }))).toBe('COL_ERR_MALFORMED');
  });
});

describe('openssl agrees', () => {
  function opensslVerify(dir: string, text: Buffer, sig: Buffer): string {
    writeFileSync(path.join(dir, 'text'), text);
    writeFileSync(path.join(dir, 'sig'), sig);
    try {
      return execFileSync(
        '/usr/bin/openssl',
        ['pkeyutl', '-verify', '-pubin', '-inkey', path.join(dir, 'pub.pem'), '-rawin', '-in', path.join(dir, 'text'), '-sigfile', path.join(dir, 'sig')],
        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
      );
    } catch (err) {
      return String((err as { stdout?: unknown }).stdout);
    }
  }

  it('verifies a checkpoint note signature, and refuses it with a flipped byte', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const text = formatCheckpoint({ origin: 'vcm.example/log', size: 42, rootHash: Buffer.alloc(32, 7), extensions: [] });
    const note = signNote(text, 'vcm.example/log', privateKey);
    const lines = note.split('\n');
    expect(lines.at(-1)).toBe('');
    const sigLine = lines.at(-2) ?? '';
    expect(sigLine.startsWith('— vcm.example/log ')).toBe(true);
    const raw = Buffer.from(sigLine.slice('— vcm.example/log '.length), 'base64');
    expect(raw.subarray(0, 4)).toEqual(ed25519KeyId('vcm.example/log', publicKey));
    const sig = raw.subarray(4);
    expect(sig).toHaveLength(64);

    const dir = mkdtempSync(path.join(tmpdir(), 'vcm-note-'));
    try {
      writeFileSync(path.join(dir, 'pub.pem'), publicKey.export({ type: 'spki', format: 'pem' }));
      expect(opensslVerify(dir, Buffer.from(text), sig)).toContain('Signature Verified Successfully');
      const flipped = Buffer.from(sig);
      flipped[10] = (flipped[10] ?? 0) ^ 0x01;
      expect(opensslVerify(dir, Buffer.from(text), flipped)).toContain('Signature Verification Failure');
      // The signature covers the final newline: without it openssl refuses too.
      expect(opensslVerify(dir, Buffer.from(text.slice(0, -1)), sig)).toContain('Signature Verification Failure');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('cosigning', () => {
  it('adds a signature that both the signer and the cosigner verify', () => {
    const log = freshKey('vcm.example/log');
    const witness = freshKey('witness.example/w1');
    const text = formatCheckpoint({ origin: log.name, size: 3, rootHash: Buffer.alloc(32, 1), extensions: [] });
    const note = addSignature(signNote(text, log.name, log.privateKey), witness.name, witness.privateKey);
    expect(note.split('\n').filter((l) => l.startsWith('— '))).toHaveLength(2);
    expect(openNote(note, [log.verifier, witness.verifier]).verifiedBy).toEqual([log.name, witness.name]);
    expect(openNote(note, [witness.verifier]).verifiedBy).toEqual([witness.name]);
    // Signing again with the same key replaces, not duplicates, its line.
    expect(addSignature(note, witness.name, witness.privateKey)).toBe(note);
  });

  it('adds to the Go example note so that the Go signature still verifies', () => {
    const enoch = freshKey('EnochRoot');
    const note = addSignature(PETER_NOTE, enoch.name, enoch.privateKey);
    expect(note.startsWith(PETER_NOTE)).toBe(true);
    expect(openNote(note, [parseVerifierKey(PETER_VKEY), enoch.verifier]).verifiedBy).toEqual(['PeterNeumann', 'EnochRoot']);
  });
});

describe('refusals', () => {
  const peter = parseVerifierKey(PETER_VKEY);

  it('refuses a tampered text', () => {
    const tampered = PETER_NOTE.replace('answer', 'Answer');
    expect(tampered).not.toBe(PETER_NOTE);
    expect(thrownCode(() => openNote(tampered, [peter]))).toBe('COL_ERR_BAD_SIGNATURE');
    expect(thrownCode(() => openNote(PETER_NOTE.replace('is.\n', 'is!\n'), [peter]))).toBe('COL_ERR_BAD_SIGNATURE');
  });

  it('refuses a note signed only by unknown keys, and one with no verifiers at all', () => {
    const stranger = freshKey('PeterNeumann');
    const note = signNote(PETER_TEXT, stranger.name, stranger.privateKey);
    expect(thrownCode(() => openNote(note, [peter]))).toBe('COL_ERR_BAD_SIGNATURE');
    expect(thrownCode(() => openNote(PETER_NOTE, []))).toBe('COL_ERR_BAD_SIGNATURE');
    expect(openNote(note, [stranger.verifier]).verifiedBy).toEqual(['PeterNeumann']);
  });

  it('treats a wrong key ID or a wrong name as an unknown key', () => {
    const raw = Buffer.from(PETER_SIG.slice('— PeterNeumann '.length, -1), 'base64');
    const wrongId = Buffer.from(raw);
    wrongId[3] = (wrongId[3] ?? 0) ^ 0xff;
    const wrongIdNote = `${PETER_TEXT}\n— PeterNeumann ${wrongId.toString('base64')}\n`;
    expect(thrownCode(() => openNote(wrongIdNote, [peter]))).toBe('COL_ERR_BAD_SIGNATURE');
    expect(thrownCode(() => openNote(PETER_NOTE.replace('— PeterNeumann', '— PeterNeuman'), [peter]))).toBe('COL_ERR_BAD_SIGNATURE');
    // With a good signature beside them they are ignored.
    expect(openNote(`${PETER_TEXT}\n— PeterNeumann ${wrongId.toString('base64')}\n${PETER_SIG}`, [peter]).verifiedBy).toEqual(['PeterNeumann']);
  });

  it('refuses the whole note when a known key signature fails, even beside a good one', () => {
    const bad = PETER_SIG.slice(0, 60) + 'ABCD' + PETER_SIG.slice(64);
    expect(thrownCode(() => openNote(`${PETER_TEXT}\n${PETER_SIG}${bad}`, [peter]))).toBe('COL_ERR_BAD_SIGNATURE');
    // A 4-byte key ID with a short signature from the known key.
    const short = `— PeterNeumann ${Buffer.concat([peter.keyId, Buffer.alloc(8)]).toString('base64')}\n`;
    expect(thrownCode(() => openNote(`${PETER_TEXT}\n${PETER_SIG}${short}`, [peter]))).toBe('COL_ERR_BAD_SIGNATURE');
  });

  it('ignores unknown extra signatures and drops repeated lines', () => {
    const other = freshKey('witness.example/w1');
    const otherLine = addSignature(PETER_NOTE, other.name, other.privateKey).slice(PETER_NOTE.length);
    const junk = `— someone.else ${Buffer.alloc(68, 9).toString('base64')}\n`;
    const note = `${PETER_TEXT}\n${junk}${PETER_SIG}${otherLine}${PETER_SIG}${junk}`;
    const opened = openNote(note, [peter]);
    expect(opened.verifiedBy).toEqual(['PeterNeumann']);
    expect(opened.signatures.map((s) => s.name)).toEqual(['someone.else', 'PeterNeumann', 'witness.example/w1']);
  });

  it('refuses malformed signed notes (the Go bad-message list and more)', () => {
    const bad = [
      PETER_TEXT, // no signatures
      `${PETER_TEXT}\n`, // blank line, then nothing
      `${PETER_TEXT}\n${PETER_SIG.slice(0, -1)}`, // last line not terminated
      `\u0001${PETER_NOTE}`,
      `${PETER_TEXT.replace('\n', '\r\n')}\n${PETER_SIG}`,
      `\uD800${PETER_NOTE}`, // not valid UTF-8 once encoded
      `${PETER_TEXT}\n— Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n`,
      `${PETER_NOTE}Unexpected line.\n`,
      `${PETER_TEXT}${PETER_SIG}`, // missing blank line
      `${PETER_TEXT}\n${PETER_SIG.replace('—', '-')}`, // hyphen, not em dash
      `${PETER_TEXT}\n${PETER_SIG.replace('— ', '—')}`,
      `${PETER_TEXT}\n${PETER_SIG.replace('— ', '—  ')}`, // empty name
      `${PETER_TEXT}\n— PeterNeumann\n`,
      `${PETER_TEXT}\n— PeterNeumann \n`,
      `${PETER_TEXT}\n— Peter+Neumann ${PETER_SIG.slice('— PeterNeumann '.length)}`,
      `${PETER_TEXT}\n— Peter\u00a0Neumann ${PETER_SIG.slice('— PeterNeumann '.length)}`,
      `${PETER_TEXT}\n${PETER_SIG.replace('AM=\n', 'AM\n')}`, // unpadded base64
      `${PETER_TEXT}\n${PETER_SIG.replace('x08go/', 'x08go_')}`, // base64url
      `${PETER_TEXT}\n${PETER_SIG.replace('=\n', ' =\n')}`,
      `${PETER_TEXT}\n— PeterNeumann ${Buffer.from([0xc7, 0x4f, 0x20, 0xa3]).toString('base64')}\n`, // ID only
      `${PETER_TEXT}\n${PETER_SIG.repeat(101)}`, // over the signature limit
    ];
    for (const note of bad) {
      expect(note).not.toBe(PETER_NOTE);
      expect([note, thrownCode(() => openNote(note, [peter]))]).toEqual([note, 'COL_ERR_MALFORMED']);
    }
    // The limit is Go's: 100 lines still open.
    expect(openNote(`${PETER_TEXT}\n${PETER_SIG.repeat(100)}`, [peter]).signatures).toHaveLength(1);
  });

  it('refuses bad texts, names and keys when signing', () => {
    const k = freshKey('vcm.example/log');
    expect(thrownCode(() => signNote('no newline', k.name, k.privateKey))).toBe('COL_ERR_MALFORMED');
    expect(thrownCode(() => signNote('tab\there\n', k.name, k.privateKey))).toBe('COL_ERR_MALFORMED');
    expect(thrownCode(() => signNote('cr\r\n', k.name, k.privateKey))).toBe('COL_ERR_MALFORMED');
    expect(thrownCode(() => signNote('lone \uDC00\n', k.name, k.privateKey))).toBe('COL_ERR_MALFORMED');
    for (const name of ['', 'a+b', 'a b', 'a\u3000b', 'a\nb', 'a\u0001b']) {
      expect([name, thrownCode(() => signNote('ok\n', name, k.privateKey))]).toEqual([name, 'COL_ERR_MALFORMED']);
      expect([name, thrownCode(() => verifierKey(name, k.verifier.publicKey))]).toEqual([name, 'COL_ERR_MALFORMED']);
    }
    expect(thrownCode(() => signNote('ok\n', k.name, k.verifier.publicKey))).toBe('COL_ERR_MALFORMED');
    expect(thrownCode(() => ed25519KeyId(k.name, k.privateKey))).toBe('COL_ERR_MALFORMED');
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    expect(thrownCode(() => signNote('ok\n', k.name, ec.privateKey))).toBe('COL_ERR_MALFORMED');
    expect(thrownCode(() => verifierKey(k.name, ec.publicKey))).toBe('COL_ERR_MALFORMED');
    expect(thrownCode(() => addSignature('not a note\n', k.name, k.privateKey))).toBe('COL_ERR_MALFORMED');
    expect(thrownCode(() => addSignature(PETER_NOTE, 'a b', k.privateKey))).toBe('COL_ERR_MALFORMED');
    expect(signNote('ok\n', k.name, k.privateKey).startsWith('ok\n\n— vcm.example/log ')).toBe(true);
  });

  it('refuses mangled verifier keys', () => {
    const bad = [
      '',
      'PeterNeumann',
      'PeterNeumann+c74f20a3',
      'PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW', // upper-case hex
      'PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW', // wrong ID
      'PeterNeumann+c74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW',
      'PeterNeuman+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW', // ID is for another name
      'Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW',
      '+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW',
      'PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T', // not base64
      'PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW ',
      // From the Go test: wrong key length and unknown algorithm, each with an adjusted key ID.
      'PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==',
      'PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW',
    ];
    for (const vkey of bad) expect([vkey, thrownCode(() => parseVerifierKey(vkey))]).toEqual([vkey, 'COL_ERR_MALFORMED']);
    expect(thrownCode(() => parseVerifierKey(PETER_VKEY))).toBeUndefined();
  });

  it('refuses a vkey of the wrong length even when its key ID is right', () => {
    const raw = Buffer.concat([Buffer.from([1]), Buffer.alloc(31, 5)]);
    const id = createHash('sha256').update(Buffer.concat([Buffer.from('short.example\n'), raw])).digest().subarray(0, 4);
    expect(thrownCode(() => parseVerifierKey(`short.example+${id.toString('hex')}+${raw.toString('base64')}`))).toBe('COL_ERR_MALFORMED');
  });

  it('names a verifier once in verifiedBy when two of its keys signed (key rotation)', () => {
    const old = freshKey('vcm.example/log');
    const next = freshKey('vcm.example/log');
    const note = addSignature(signNote(PETER_TEXT, old.name, old.privateKey), next.name, next.privateKey);
    const opened = openNote(note, [old.verifier, next.verifier]);
    expect(opened.signatures).toHaveLength(2);
    expect(opened.verifiedBy).toEqual(['vcm.example/log']);
  });

  it('refuses inconsistent verifier lists as configuration errors', () => {
    // Two real Ed25519 keys whose key IDs under this name collide, found by a birthday search.
    const a = parseVerifierKey('collide.example/key+5429bea6+AWvGefv312/3t5tFCAy8Y8vvuMTDsSpREd2RmFcnQx9/');
    const b = parseVerifierKey('collide.example/key+5429bea6+Ad3x79Dpz/LaL4WkKumksxPB+IJ/BK0g8FzhCcOGgY3K');
    expect(a.keyId).toEqual(b.keyId);
    expect(thrownCode(() => openNote(PETER_NOTE, [peter, a]))).toBeUndefined();
    expect(thrownCode(() => openNote(PETER_NOTE, [peter, a, b]))).toBe('COL_ERR_CONFIG');
    const stale = { ...peter, keyId: Buffer.from('00000000', 'hex') };
    expect(thrownCode(() => openNote(PETER_NOTE, [stale]))).toBe('COL_ERR_CONFIG');
    // Another key claiming Peter's ID (a real 32-bit collision cannot be built in a test).
    const impostor = { ...freshKey('PeterNeumann').verifier, keyId: peter.keyId };
    expect(thrownCode(() => openNote(PETER_NOTE, [peter, impostor]))).toBe('COL_ERR_CONFIG');
    // The same key listed twice is harmless.
    expect(openNote(PETER_NOTE, [peter, parseVerifierKey(PETER_VKEY)]).verifiedBy).toEqual(['PeterNeumann']);
  });
});
