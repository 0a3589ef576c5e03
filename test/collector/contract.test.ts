import { createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  PAYLOAD_TYPE_STATEMENT,
  agentIdFor,
  canonicalEnvelope,
  encodeEnvelope,
  envelopeSchema,
  evidenceKey,
  pae,
  parseCanonicalEnvelope,
  signEnvelope,
  strictBase64,
  verifyEnvelope,
  verifyEnvelopeAsync,
  type Envelope,
} from '../../collector/contract.js';
import { parseStrictJson } from '../../collector/strict-json.js';

describe('DSSE encoding', () => {
  it('matches the pre-authentication encoding example of the DSSE specification', () => {
    expect(pae('http://example.com/HelloWorld', Buffer.from('hello world')).toString()).toBe(
      'DSSEv1 29 http://example.com/HelloWorld 11 hello world',
    );
  });

  it('counts bytes, not characters, in the lengths', () => {
    expect(pae('t', Buffer.from('é')).toString('utf8')).toBe('DSSEv1 1 t 2 é');
  });

  it('signs and verifies, and any change to type, payload or signature fails (on the main thread and on libuv\'s threads alike)', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const bytes = signEnvelope('application/x-test', Buffer.from('{"a":1}'), privateKey, 'k1');
    const env = envelopeSchema.parse(JSON.parse(bytes.toString()));
    const sig = Buffer.from(env.signatures[0]!.sig, 'base64');
    sig[0] = sig[0]! ^ 1;
    const flipped = { keyid: 'k1', sig: sig.toString('base64') };
    const cases: [Envelope, KeyObject, boolean][] = [
      [env, publicKey, true],
      [{ ...env, payloadType: 'application/x-other' }, publicKey, false],
      [{ ...env, payload: Buffer.from('{"a":2}').toString('base64') }, publicKey, false],
      [{ ...env, signatures: [flipped] }, publicKey, false],
      [env, generateKeyPairSync('ed25519').publicKey, false],
      // One good signature among several is enough (a key rotation carries two).
      [{ ...env, signatures: [flipped, env.signatures[0]!] }, publicKey, true],
      [{ ...env, signatures: [{ keyid: 'k1', sig: 'not base64!' }] }, publicKey, false],
    ];
    for (const [e, key, expected] of cases) {
      expect(verifyEnvelope(e, key)).toBe(expected);
      expect(await verifyEnvelopeAsync(e, key)).toBe(expected);
    }
  });

  it('accepts only canonical base64, so that no two strings carry the same bytes', () => {
    expect(strictBase64('aGk=')?.toString()).toBe('hi');
    expect(strictBase64('aGl=')).toBeNull(); // non-zero padding bits
    expect(strictBase64('aGk')).toBeNull(); // missing padding
    expect(strictBase64('aG k=')).toBeNull();
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const text = Buffer.from(bytes).toString('base64');
        expect(strictBase64(text)?.equals(Buffer.from(bytes))).toBe(true);
      }),
    );
  });
});

describe('identities and keys', () => {
  it('derives the agent id from the public key alone', () => {
    const { publicKey } = generateKeyPairSync('ed25519');
    const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const id = agentIdFor(pem);
    expect(id).toMatch(/^[0-9a-f]{64}$/);
    expect(agentIdFor(createPublicKey(pem).export({ type: 'spki', format: 'pem' }).toString())).toBe(id);
    expect(agentIdFor(generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }).toString())).not.toBe(id);
  });

  it('lays evidence out as the storage layout fixes it', () => {
    expect(
      evidenceKey({ vendor: 'acme', collectedAt: '2026-11-22T23:59:59.000Z', agentId: 'a'.repeat(64), seq: 42, sha256: 'b'.repeat(64) }),
    ).toBe(`evidence/vendor=acme/date=2026-11-22/agent=${'a'.repeat(64)}/000000000042-${'b'.repeat(64)}.dsse.json`);
  });
});

describe('the canonical envelope form, recognised by its bytes', () => {
  /** What the full checks make of the bytes: strict JSON, the schema, canonical form. */
  const checked = (bytes: Buffer): Envelope | null => {
    try {
      const env = envelopeSchema.parse(parseStrictJson(bytes));
      return env.signatures.length === 1 && bytes.equals(canonicalEnvelope(env)) ? env : null;
    } catch {
      return null;
    }
  };
  const str = fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom('', 'a"b', 'a\\b', '\u0001', 'é', '\u2028', 'x'.repeat(257)));
  const b64 = fc.oneof(fc.base64String({ maxLength: 40 }), str);
  const envelopes = fc.oneof(
    fc.record({ payloadType: str, payload: b64, signatures: fc.array(fc.record({ keyid: str, sig: b64 }), { minLength: 0, maxLength: 2 }) }).map((e) => encodeEnvelope(e)),
    // Byte-level damage to a well-formed one: a space, a reordered or repeated member, a cut.
    fc.tuple(fc.record({ payloadType: str, payload: b64, signatures: fc.record({ keyid: fc.constant('k'), sig: fc.constant('AA==') }).map((s) => [s]) }), fc.nat(), fc.constantFrom(' ', '"', '}', ',"payload":"x"', '\\u0061', '\u00ff'))
      .map(([e, at, insert]) => {
        const t = encodeEnvelope(e).toString('utf8');
        const i = at % (t.length + 1);
        return Buffer.from(t.slice(0, i) + insert + t.slice(i), 'utf8');
      }),
    fc.uint8Array({ maxLength: 120 }).map((b) => Buffer.from(b)),
  );

  it('never accepts bytes the full checks refuse, and reads what they read', () => {
    fc.assert(
      fc.property(envelopes, (bytes) => {
        const fast = parseCanonicalEnvelope(bytes);
        if (fast !== null) expect(fast).toEqual(checked(bytes));
      }),
      { numRuns: 3000 },
    );
  });

  it('recognises what agents send', () => {
    const { privateKey } = generateKeyPairSync('ed25519');
    const bytes = signEnvelope(PAYLOAD_TYPE_STATEMENT, Buffer.from('{"a":1}'), privateKey, 'a'.repeat(64));
    expect(parseCanonicalEnvelope(bytes)).toEqual(checked(bytes));
    expect(parseCanonicalEnvelope(bytes)).not.toBeNull();
    // Invalid UTF-8 is left to the strict parser.
    expect(parseCanonicalEnvelope(Buffer.concat([bytes.subarray(0, 20), Buffer.from([0xff]), bytes.subarray(21)]))).toBeNull();
  });
});
