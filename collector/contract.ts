// The wire contract between agent and collector: schemas, DSSE encoding, ids and storage keys.
// It is the one collector file the agent imports, so signing and verifying cannot drift apart.
import { createHash, createPublicKey, sign as edSign, verify as edVerify, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import * as z from 'zod';
import { CHECK_IDS, PLATFORMS } from '../checks/types.js';
import { VENDOR_NAME_RE, VENDOR_NAME_RULE, escapeControls } from './defaults.js';

export const PAYLOAD_TYPE_STATEMENT = 'application/vnd.in-toto+json';
export const PAYLOAD_TYPE_ENROLL = 'application/vnd.vcm.enroll.v1+json';
export const PAYLOAD_TYPE_ROTATE_KEY = 'application/vnd.vcm.rotate-key.v1+json';
export const STATEMENT_TYPE = 'https://in-toto.io/Statement/v1';
export const PREDICATE_TYPE_FINDING = 'https://vcm.dev/attestation/finding/v1';
/** A signed record that the agent's spool overflowed and dropped results: loss is itself evidence. */
export const PREDICATE_TYPE_SPOOL_DROP = 'https://vcm.dev/attestation/spool-drop/v1';

/** Hosts may drift; results from further in the future than this are refused. */
export const DEFAULT_CLOCK_SKEW_SECONDS = 300;

// ---------------------------------------------------------------------------------------------
// DSSE (https://github.com/secure-systems-lab/dsse, protocol v1)

/** The pre-authentication encoding: what is actually signed. */
export function pae(payloadType: string, payload: Buffer): Buffer {
  const type = Buffer.from(payloadType, 'utf8');
  return Buffer.concat([
    Buffer.from(`DSSEv1 ${type.length} `, 'utf8'),
    type,
    Buffer.from(` ${payload.length} `, 'utf8'),
    payload,
  ]);
}

// Base64 is checked strictly when the signature is verified: a mangled payload or signature is a
// bad signature, not a malformed request.
const MAX_BASE64 = 16 * 1024 * 1024;
const base64 = z.string().max(MAX_BASE64);

export const envelopeSchema = z
  .object({
    payloadType: z.string().min(1).max(256),
    payload: base64,
    signatures: z.array(z.object({ keyid: z.string().max(256), sig: base64 }).strict()).min(1).max(4),
  })
  .strict();
export type Envelope = z.infer<typeof envelopeSchema>;

/** Decodes base64 only if it is canonical, so that no two strings carry the same bytes. */
export function strictBase64(text: string): Buffer | null {
  const buf = Buffer.from(text, 'base64');
  return buf.toString('base64') === text ? buf : null;
}

/**
 * The one byte form of a one-signature envelope: compact JSON in fixed member order. Agents send
 * it and the collector accepts nothing else, so the stored bytes (which the chain hashes) follow
 * from the signed content alone.
 */
export function canonicalEnvelope(e: Envelope): Buffer {
  if (e.signatures.length !== 1) throw new Error('a canonical envelope has exactly one signature');
  return encodeEnvelope(e);
}

/**
 * The canonical one-signature envelope's exact byte form, for strings that JSON writes without
 * escapes (the base64 payload and signature always are): one pattern match instead of a strict
 * parse, a schema check and a re-encoding to compare. Anything else does not match, and the full
 * checks decide and say why.
 */
const CANONICAL_ENVELOPE_RE =
  /^\{"payloadType":"([\x20\x21\x23-\x5b\x5d-\uffff]{1,256})","payload":"([A-Za-z0-9+/=]*)","signatures":\[\{"keyid":"([\x20\x21\x23-\x5b\x5d-\uffff]{0,256})","sig":"([A-Za-z0-9+/=]*)"\}\]\}$/;

/** The envelope when `bytes` are a canonical one-signature envelope in plain strings, else null. */
export function parseCanonicalEnvelope(bytes: Buffer): Envelope | null {
  const text = bytes.toString('utf8');
  // U+FFFD may stand for invalid UTF-8: left to the strict parser, which tells the two apart.
  if (text.includes('\uFFFD')) return null;
  const m = CANONICAL_ENVELOPE_RE.exec(text);
  if (m === null || m[2]!.length > MAX_BASE64 || m[4]!.length > MAX_BASE64) return null;
  return { payloadType: m[1]!, payload: m[2]!, signatures: [{ keyid: m[3]!, sig: m[4]! }] };
}

/** Compact JSON in fixed member order, for any number of signatures (key rotation carries two). */
export function encodeEnvelope(e: Envelope): Buffer {
  const signatures = e.signatures.map((s) => ({ keyid: s.keyid, sig: s.sig }));
  return Buffer.from(JSON.stringify({ payloadType: e.payloadType, payload: e.payload, signatures }), 'utf8');
}

/** Signs `payload` and returns the envelope as the exact bytes to send and store. */
export function signEnvelope(payloadType: string, payload: Buffer, key: KeyObject, keyid: string): Buffer {
  return signEnvelopeBy(payloadType, payload, [{ key, keyid }]);
}

/** One envelope signed by each key in turn, over the same pre-authentication encoding. */
export function signEnvelopeBy(payloadType: string, payload: Buffer, signers: readonly { key: KeyObject; keyid: string }[]): Buffer {
  const message = pae(payloadType, payload);
  const signatures = signers.map((s) => ({ keyid: s.keyid, sig: edSign(null, message, s.key).toString('base64') }));
  return encodeEnvelope({ payloadType, payload: payload.toString('base64'), signatures });
}

/**
 * What a signature on the envelope must cover (the PAE of its type and decoded payload) and its
 * signatures decoded, a malformed one as null; null when the payload is not canonical base64.
 * `payload` is strictBase64(envelope.payload) when the caller has decoded it already.
 */
function signingInputs(envelope: Envelope, payload = strictBase64(envelope.payload)): { message: Buffer; sigs: (Buffer | null)[] } | null {
  if (payload === null) return null;
  const sigs = envelope.signatures.map((s) => {
    const sig = strictBase64(s.sig);
    return sig !== null && sig.length === 64 ? sig : null;
  });
  return { message: pae(envelope.payloadType, payload), sigs };
}

/** True when the envelope's signature at `index` verifies under `publicKey` (rotation: 0 old key, 1 new key). */
export function verifySignatureAt(envelope: Envelope, index: number, publicKey: KeyObject): boolean {
  const inputs = signingInputs(envelope);
  const sig = inputs?.sigs[index];
  return inputs !== null && sig != null && edVerify(null, inputs.message, publicKey, sig);
}

/** True when one signature on the envelope verifies under `publicKey`. */
export function verifyEnvelope(envelope: Envelope, publicKey: KeyObject): boolean {
  const inputs = signingInputs(envelope);
  return inputs !== null && inputs.sigs.some((sig) => sig !== null && edVerify(null, inputs.message, publicKey, sig));
}

/**
 * verifyEnvelope on libuv's threads: the collector verifies the envelopes of a batch in parallel,
 * on every core, while its main thread parses and stores. Ingest, which parses the payload next,
 * passes it decoded (strictBase64(envelope.payload)), so that it is decoded once per envelope.
 */
export async function verifyEnvelopeAsync(envelope: Envelope, publicKey: KeyObject, payload?: Buffer): Promise<boolean> {
  const inputs = signingInputs(envelope, payload);
  if (inputs === null) return false;
  for (const sig of inputs.sigs) {
    if (sig === null) continue;
    const ok = await new Promise<boolean>((resolve, reject) => edVerify(null, inputs.message, publicKey, sig, (err, valid) => (err ? reject(err) : resolve(valid))));
    if (ok) return true;
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// Transport

/** Plain HTTP is allowed only to and on loopback: both sides apply this one rule. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '');
  if (h === 'localhost') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  return h === '::1';
}

// ---------------------------------------------------------------------------------------------
// Identities

/** An agent id is the SHA-256 of its public key (SPKI DER), in hex: stable, and self-certifying. */
export function agentIdFor(publicKeyPem: string): string {
  const der = createPublicKey(publicKeyPem).export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(der).digest('hex');
}

export function sha256Hex(bytes: Buffer | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export const agentIdSchema = z.string().regex(/^[0-9a-f]{64}$/);
export const vendorSchema = z
  .string()
  .regex(VENDOR_NAME_RE, VENDOR_NAME_RULE);

// ---------------------------------------------------------------------------------------------
// Findings inside statements

const reasonSchema = z.object({ code: z.string().max(64), message: z.string().max(2000), subject: z.string().max(512).optional() }).strict();

export const findingSchema = z
  .object({
    check: z.enum(CHECK_IDS),
    checkVersion: z.string().max(32),
    platform: z.enum(PLATFORMS),
    status: z.enum(['pass', 'fail', 'unknown']),
    reasons: z.array(reasonSchema).max(1000),
    facts: z.unknown(),
    collectedAt: z.iso.datetime({ offset: false }),
    durationMs: z.number().nonnegative(),
  })
  .strict();

/** What a host name can be (RFC 1123 labels, and `_` that some hosts use): no control characters, no spaces. */
export const HOSTNAME_RE = /^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$/;

export const hostSchema = z
  .object({
    hostname: z.string().min(1).max(253).regex(HOSTNAME_RE, 'a host name: letters, digits, "-", "_" and dots'),
    os: z.enum(PLATFORMS),
    arch: z.string().max(32),
  })
  .strict();
export type HostInfo = z.infer<typeof hostSchema>;

/** Things that happened to the agent itself since its last envelope (e.g. a watchdog restart). */
export const agentEventSchema = z
  .object({
    type: z.enum(['watchdog_restart', 'spool_quarantine', 'started', 'log_inconsistent']),
    at: z.iso.datetime({ offset: false }),
    detail: z.record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.null()])).optional(),
  })
  .strict();
export type AgentEvent = z.infer<typeof agentEventSchema>;

/** The highest sequence number: evidence file names hold it in 12 digits (evidenceKey). */
export const MAX_SEQ = 999_999_999_999;

/** What every predicate shares: who signed, where in the chain, when. */
const chainLinkShape = {
  agentId: agentIdSchema,
  agentVersion: z.string().max(64),
  host: hostSchema,
  /** Per-agent sequence number, from 1, at most what the evidence layout's 12 digits hold. */
  seq: z.number().int().min(1).max(MAX_SEQ),
  /** SHA-256 (hex) of the previous envelope's exact bytes; null for seq 1. */
  prev: z.string().regex(/^[0-9a-f]{64}$/).nullable(),
  collectedAt: z.iso.datetime({ offset: false }),
  policyVersion: z.number().int().min(0).nullable(),
  events: z.array(agentEventSchema).max(100).optional(),
};

export const findingPredicateSchema = z.object({ ...chainLinkShape, finding: findingSchema }).strict();
export type FindingPredicate = z.infer<typeof findingPredicateSchema>;

export const spoolDropPredicateSchema = z
  .object({
    ...chainLinkShape,
    dropped: z
      .object({
        count: z.number().int().min(1),
        /** The dropped results' own sequence numbers: the collector sees them as a gap. */
        firstSeq: z.number().int().min(1),
        lastSeq: z.number().int().min(1),
        checks: z.array(z.enum(CHECK_IDS)),
        from: z.iso.datetime({ offset: false }),
        to: z.iso.datetime({ offset: false }),
        reason: z.enum(['spool_full_bytes', 'spool_full_count']),
      })
      .strict(),
  })
  .strict();
export type SpoolDropPredicate = z.infer<typeof spoolDropPredicateSchema>;

const subjectSchema = z
  .array(z.object({ name: z.string(), digest: z.object({ sha256: z.string().regex(/^[0-9a-f]{64}$/) }).strict() }).strict())
  .length(1);

export const statementSchema = z
  .object({
    _type: z.literal(STATEMENT_TYPE),
    subject: subjectSchema,
    predicateType: z.literal(PREDICATE_TYPE_FINDING),
    predicate: findingPredicateSchema,
  })
  .strict();
export type Statement = z.infer<typeof statementSchema>;

export const spoolDropStatementSchema = z
  .object({
    _type: z.literal(STATEMENT_TYPE),
    subject: subjectSchema,
    predicateType: z.literal(PREDICATE_TYPE_SPOOL_DROP),
    predicate: spoolDropPredicateSchema,
  })
  .strict();
export type SpoolDropStatement = z.infer<typeof spoolDropStatementSchema>;

/** Every statement an agent may sign, told apart by predicateType. */
export const anyStatementSchema = z.discriminatedUnion('predicateType', [statementSchema, spoolDropStatementSchema]);
export type AnyStatement = z.infer<typeof anyStatementSchema>;

function subjectFor(agentId: string) {
  return [{ name: `vcm-agent:${agentId}`, digest: { sha256: agentId } }];
}

/** The in-toto subject is the host's key: the statement is about that machine. */
export function buildStatement(predicate: FindingPredicate): Statement {
  return { _type: STATEMENT_TYPE, subject: subjectFor(predicate.agentId), predicateType: PREDICATE_TYPE_FINDING, predicate };
}

export function buildSpoolDropStatement(predicate: SpoolDropPredicate): SpoolDropStatement {
  return { _type: STATEMENT_TYPE, subject: subjectFor(predicate.agentId), predicateType: PREDICATE_TYPE_SPOOL_DROP, predicate };
}

// ---------------------------------------------------------------------------------------------
// Enrollment

export const enrollPayloadSchema = z
  .object({
    publicKey: z.string().max(1000),
    host: hostSchema,
    agentVersion: z.string().max(64),
    /** Binds this proof of possession to one token, so it cannot be replayed with another. */
    tokenSha256: z.string().regex(/^[0-9a-f]{64}$/),
    requestedAt: z.iso.datetime({ offset: false }),
  })
  .strict();
export type EnrollPayload = z.infer<typeof enrollPayloadSchema>;

export const enrollResponseSchema = z
  .object({
    agentId: agentIdSchema,
    vendor: vendorSchema,
    collectorPublicKey: z.string(),
    policy: z.lazy(() => policySchema),
  })
  .strict();
export type EnrollResponse = z.infer<typeof enrollResponseSchema>;

// ---------------------------------------------------------------------------------------------
// Key rotation (POST /v1/keys/rotate): the new key is introduced by a request signed with the
// current key (signature 0) and, as proof of possession, with the new key (signature 1).

export const rotateKeyPayloadSchema = z
  .object({
    agentId: agentIdSchema,
    /** The new key's generation: the current one plus 1 (the enrolled key is generation 0). */
    generation: z.number().int().min(1).max(1_000_000),
    /** Fingerprint (as an agent id) of the key that signs this request: the agent's current key. */
    previousKeyId: agentIdSchema,
    publicKey: z.string().max(1000),
    /** The last sequence number signed with the current key; later ones are signed with the new key. */
    afterSeq: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
    requestedAt: z.iso.datetime({ offset: false }),
    /** Makes every request's bytes unique. */
    nonce: z.string().regex(/^[0-9a-f]{32}$/),
  })
  .strict();
export type RotateKeyPayload = z.infer<typeof rotateKeyPayloadSchema>;

export const rotateKeyResponseSchema = z
  .object({
    agentId: agentIdSchema,
    generation: z.number().int().min(1),
    keyId: agentIdSchema,
    afterSeq: z.number().int().min(0),
    rotatedAt: z.iso.datetime({ offset: false }),
    /** True when this exact request had already been applied (a retry after a lost answer). */
    duplicate: z.boolean(),
  })
  .strict();
export type RotateKeyResponse = z.infer<typeof rotateKeyResponseSchema>;

// ---------------------------------------------------------------------------------------------
// Policy (served at GET /v1/policy; versions are never overwritten)

export const checkPolicySchema = z
  .object({
    enabled: z.boolean().default(true),
    intervalSeconds: z.number().int().min(60).max(7 * 86400).default(900),
    /**
     * The time budget for one run; absent: the check's own default (30 s for host checks, 10
     * minutes for identity-provider reads). A run that outlasts it is unknown, CHK_ERR_TIMEOUT.
     */
    timeoutSeconds: z.number().int().min(1).max(3600).optional(),
    /** The check's own config (allow-lists, thresholds); validated by the check's schema. */
    config: z.record(z.string(), z.unknown()).default({}),
  })
  .strict();

/** The policy one vendor's agents get: which checks, how often, with which settings. */
export const policySchema = z
  .object({
    version: z.number().int().min(1),
    createdAt: z.iso.datetime({ offset: false }),
    /** A result older than this is shown as stale, never as its last status. */
    freshnessSeconds: z.number().int().min(60).default(7200),
    checks: z.partialRecord(z.enum(CHECK_IDS), checkPolicySchema),
  })
  .strict();
export type Policy = z.infer<typeof policySchema>;

/** A justified, approved and expiring waiver of failures: vendor, host pattern and check. */
export const exceptionSchema = z
  .object({
    id: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/),
    vendor: vendorSchema,
    /** Host names it covers: a glob where `*` matches any run of characters. */
    hosts: z.string().min(1).max(253).default('*'),
    check: z.enum(CHECK_IDS),
    justification: z.string().min(10).max(2000),
    approver: z.string().min(1).max(200),
    expires: z.iso.datetime({ offset: false }),
  })
  .strict();
export type PolicyException = z.infer<typeof exceptionSchema>;

/** The customer's policy document at the collector: defaults, per-vendor overrides, exceptions. */
export const policyDocumentSchema = policySchema
  .extend({
    vendors: z
      .record(
        vendorSchema,
        z
          .object({
            freshnessSeconds: z.number().int().min(60).optional(),
            checks: z.partialRecord(z.enum(CHECK_IDS), checkPolicySchema.partial()).default({}),
          })
          .strict(),
      )
      .default({}),
    exceptions: z.array(exceptionSchema).default([]),
  })
  .strict();
export type PolicyDocument = z.infer<typeof policyDocumentSchema>;

// ---------------------------------------------------------------------------------------------
// Agent-signed requests (reads an agent makes of its own vendor, such as its log's checkpoint)

/** `authorization: VCM-Agent agent=<id>, created=<unix seconds>, sig=<base64 Ed25519>` */
export const AGENT_AUTH_RE = /^VCM-Agent agent=([0-9a-f]{64}), created=(\d{1,12}), sig=([A-Za-z0-9+/]{86}==)$/;

/** The bytes an agent signs for a request: bound to the method, the exact target and the time. */
export function agentRequestMessage(method: string, target: string, created: number): Buffer {
  return Buffer.from(`vcm-agent-request v1\n${method}\n${target}\n${created}\n`, 'utf8');
}

export function agentAuthorization(agentId: string, key: KeyObject, method: string, target: string, created = Math.floor(Date.now() / 1000)): string {
  const sig = edSign(null, agentRequestMessage(method, target, created), key).toString('base64');
  return `VCM-Agent agent=${agentId}, created=${created}, sig=${sig}`;
}

// ---------------------------------------------------------------------------------------------
// Signed answers: the collector proves each answer to an agent is its own, and fresh

/** The agent's request header: a fresh random nonce (base64url, 16 to 64 bytes) per request. */
export const NONCE_HEADER = 'vcm-nonce';
/** The collector's answer header: its Ed25519 signature over collectorAnswerMessage, base64. */
export const PROOF_HEADER = 'vcm-collector-proof';
export const NONCE_RE = /^[A-Za-z0-9_-]{22,86}$/;

export interface AnswerBinding {
  method: string;
  /** The request target exactly as sent: path and query. */
  target: string;
  nonce: string;
  /** SHA-256 (hex) of the request body; of nothing for a GET. */
  requestSha256: string;
  status: number;
  /** SHA-256 (hex) of the answer body. */
  bodySha256: string;
}

/**
 * The bytes the collector signs for an answer: bound to the request (method, target, body), to the
 * agent's nonce, and to the answer (status and body). A replayed answer carries another nonce; a
 * relayed one, another request or body.
 */
export function collectorAnswerMessage(b: AnswerBinding): Buffer {
  return Buffer.from(`vcm-collector-answer v1\n${b.method}\n${b.target}\n${b.nonce}\n${b.requestSha256}\n${b.status}\n${b.bodySha256}\n`, 'utf8');
}

export { escapeControls };

/** A key's fingerprint as `vcm-collector key fingerprint` prints it: SHA-256 of its SPKI DER, hex. */
export function keyFingerprint(key: KeyObject): string {
  return createHash('sha256').update(key.export({ type: 'spki', format: 'der' })).digest('hex');
}

export function signAnswer(b: AnswerBinding, key: KeyObject): string {
  return edSign(null, collectorAnswerMessage(b), key).toString('base64');
}

export function verifyAnswer(b: AnswerBinding, proof: string, key: KeyObject): boolean {
  if (!/^[A-Za-z0-9+/]{86}==$/.test(proof)) return false;
  return edVerify(null, collectorAnswerMessage(b), key, Buffer.from(proof, 'base64'));
}

/** What `GET /v1/log/checkpoint?from=N` answers an agent: its vendor log's latest checkpoint, and the proof from N. */
export const agentCheckpointSchema = z
  .object({
    checkpoint: z.string().max(8192),
    consistency: z.object({ from: z.number().int().min(1), to: z.number().int().min(1), hashes: z.array(z.string().max(64)).max(128) }).strict().nullable(),
  })
  .strict();
export type AgentCheckpoint = z.infer<typeof agentCheckpointSchema>;

// The log verification an agent needs, from here: the one collector file the agent imports.
export { ed25519KeyId, openNote, parseCheckpoint } from './log/note.js';
export { verifyConsistency } from './log/merkle.js';

// ---------------------------------------------------------------------------------------------
// Results

export const RESULTS_CONTENT_TYPES = {
  single: 'application/json',
  batch: 'application/x-ndjson',
} as const;

export const ingestOutcomeSchema = z
  .object({
    seq: z.number().int().nullable(),
    outcome: z.enum(['accepted', 'duplicate', 'rejected']),
    key: z.string().optional(),
    /** The envelope's index in its vendor's transparency log: the receipt. */
    logIndex: z.number().int().min(0).optional(),
    error: z.object({ code: z.string(), message: z.string() }).strict().optional(),
  })
  .strict();
export const resultsResponseSchema = z.object({ results: z.array(ingestOutcomeSchema) }).strict();
export type IngestOutcome = z.infer<typeof ingestOutcomeSchema>;

export const errorBodySchema = z.object({ error: z.object({ code: z.string(), message: z.string() }).strict() }).strict();

// ---------------------------------------------------------------------------------------------
// Storage layout (contract: collector/README.md, "Where the evidence is")

export function evidenceKey(p: { vendor: string; collectedAt: string; agentId: string; seq: number; sha256: string }): string {
  const date = p.collectedAt.slice(0, 10);
  return `evidence/vendor=${p.vendor}/date=${date}/agent=${p.agentId}/${String(p.seq).padStart(12, '0')}-${p.sha256}.dsse.json`;
}

export const EVIDENCE_FILE_RE = /^(\d{12})-([0-9a-f]{64})\.dsse\.json$/;
