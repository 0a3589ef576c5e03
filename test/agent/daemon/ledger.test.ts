// The ledger on a real state directory: chain, spool bounds and drop records, events, and
// crash recovery at every step (faults injected between the durable writes).
import { generateKeyPairSync } from 'node:crypto';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import fc from 'fast-check';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Ledger, decodeStatement } from '../../../agent/ledger.js';
import { Spool, type SpoolEntry, type SpoolKind } from '../../../agent/spool.js';
import { StateDir, type ChainHead, type Identity } from '../../../agent/state.js';
import { CHECK_IDS } from '../../../checks/types.js';
import { agentIdFor, anyStatementSchema, sha256Hex } from '../../../collector/contract.js';
import { finding } from '../../helpers/agents.js';
import { tempDir } from '../../helpers/processes.js';

const log = pino({ level: 'silent' });
let dir: Awaited<ReturnType<typeof tempDir>>;
let state: StateDir;
let identity: Identity;
const { privateKey: key, publicKey } = generateKeyPairSync('ed25519');

beforeEach(async () => {
  dir = await tempDir('ledger');
  state = new StateDir(path.join(dir.dir, 'state'));
  await state.ensure();
  const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  identity = {
    collectorUrl: 'http://127.0.0.1:9',
    agentId: agentIdFor(pem),
    vendor: 'acme',
    host: { hostname: 'h1', os: 'linux', arch: 'x64' },
    collectorPublicKey: pem,
    enrolledAt: '2026-11-22T10:00:00.000Z',
  };
});

afterEach(async () => {
  await dir.cleanup();
});

type Predicate = { seq: number; prev: string | null; events?: { type: string; detail?: Record<string, unknown> }[]; dropped?: { count: number; firstSeq: number; lastSeq: number; checks: string[]; from: string; to: string; reason: string }; finding?: { check: string } };

function predicateOf(bytes: Buffer): Predicate {
  const statement = decodeStatement(bytes);
  // Every envelope the agent writes must satisfy the wire contract.
  anyStatementSchema.parse(statement);
  return statement!.predicate as unknown as Predicate;
}

async function spooled(): Promise<{ entry: SpoolEntry; bytes: Buffer; p: Predicate }[]> {
  const spool = new Spool(state.spoolDir, state.quarantineDir);
  const out = [];
  for (const entry of await spool.list()) {
    const bytes = await spool.read(entry);
    out.push({ entry, bytes, p: predicateOf(bytes) });
  }
  return out;
}

const at = (i: number) => new Date(Date.UTC(2026, 10, 22, 10, 0, i)).toISOString();

describe('ledger', () => {
  it('chains every envelope to the one before and spools it before returning', async () => {
    const ledger = await Ledger.open(state, identity, key, { log });
    const { signed } = await ledger.append([finding(), finding({ check: 'vpn' })], 3);
    await ledger.append([finding({ check: 'usb_policy' })], 3);
    expect(signed.map((s) => s.seq)).toEqual([1, 2]);
    const all = await spooled();
    expect(all.map((x) => x.p.seq)).toEqual([1, 2, 3]);
    expect(all[0]!.p.prev).toBeNull();
    expect(all[1]!.p.prev).toBe(sha256Hex(all[0]!.bytes));
    expect(all[2]!.p.prev).toBe(sha256Hex(all[1]!.bytes));
    // chain.json follows lazily: the spool's newest file is the head until it leaves the spool.
    expect((await state.chain()).seq).toBeLessThan(3);
    expect((await Ledger.open(state, identity, key, { log })).head).toEqual({ seq: 3, head: sha256Hex(all[2]!.bytes) });
    await ledger.flushHead();
    expect(await state.chain()).toEqual({ seq: 3, head: sha256Hex(all[2]!.bytes) });
    expect(ledger.depth()).toMatchObject({ count: 3, oldestSeq: 1 });
    // Before the head leaves the spool, chain.json is made current.
    await ledger.append([finding()], 3);
    await ledger.exclusive(async (spool) => spool.acknowledge(await spool.list()));
    expect((await state.chain()).seq).toBe(4);
  });

  it('attaches each pending event to exactly one envelope, and keeps it across a restart until then', async () => {
    let ledger = await Ledger.open(state, identity, key, { log });
    await ledger.append([finding()], 1);
    await ledger.recordEvent('watchdog_restart', { reason: 'rss', rssMb: 300 });
    // Restart before the next envelope: the event is still pending.
    ledger = await Ledger.open(state, identity, key, { log });
    await ledger.recordEvent('started', { agentVersion: '0.1.0' });
    await ledger.append([finding(), finding()], 1);
    const all = await spooled();
    expect(all[0]!.p.events).toBeUndefined();
    expect(all[1]!.p.events?.map((e) => e.type)).toEqual(['watchdog_restart', 'started']);
    expect(all[2]!.p.events).toBeUndefined();
  });

  it('a crash after spooling an envelope with events, before chain.json, does not attach them again', async () => {
    let ledger = await Ledger.open(state, identity, key, { log });
    await ledger.append([finding()], 1);
    await ledger.flushHead();
    await ledger.recordEvent('watchdog_restart', { reason: 'cpu' });
    await ledger.append([finding()], 1);
    expect((await state.chain()).seq).toBe(1); // what a crash now leaves: chain.json never saw seq 2
    ledger = await Ledger.open(state, identity, key, { log });
    expect(ledger.head.seq).toBe(2);
    expect(ledger.pendingEvents()).toEqual([]);
    await ledger.append([finding()], 1);
    const all = await spooled();
    expect(all.map((x) => x.p.events?.length ?? 0)).toEqual([0, 1, 0]);
  });

  it('removes partial writes a crash left in the spool, and never reuses a spooled sequence number', async () => {
    const ledger = await Ledger.open(state, identity, key, { log });
    await ledger.append([finding()], 1);
    await writeFile(path.join(state.spoolDir, '.000000000002.dsse.json.0123456789ab.tmp'), '{"half":');
    const reopened = await Ledger.open(state, identity, key, { log });
    expect(await readdir(state.spoolDir)).toEqual(['000000000001.dsse.json']);
    expect((await reopened.append([finding()], 1)).signed[0]!.seq).toBe(2);
  });

  it('when the spool is full by count, drops the oldest and signs a record of exactly what it dropped', async () => {
    const ledger = await Ledger.open(state, identity, key, { log, bounds: { maxCount: 10 } });
    const checks = ['vpn', 'open_ports', 'usb_policy'] as const;
    for (let i = 0; i < 25; i++) await ledger.append([finding({ check: checks[i % 3]!, collectedAt: at(i) })], 1);
    const all = await spooled();
    expect(all.length).toBeLessThanOrEqual(10);
    const drops = all.filter((x) => x.entry.kind === 'drop');
    expect(drops.length).toBeGreaterThan(0);
    // Every sequence number is either still spooled or covered by exactly one spooled drop record,
    // and the counts add up to the results that are gone.
    const head = ledger.head.seq;
    const present = new Set(all.map((x) => x.p.seq));
    const covered = new Map<number, number>();
    for (const d of drops) {
      for (let s = d.p.dropped!.firstSeq; s <= d.p.dropped!.lastSeq; s++) covered.set(s, (covered.get(s) ?? 0) + 1);
      expect(d.p.dropped!.reason).toBe('spool_full_count');
    }
    let missingResults = 0;
    for (let s = 1; s <= head; s++) {
      if (present.has(s)) continue;
      expect(covered.get(s), `seq ${s}`).toBe(1);
      missingResults++;
    }
    const presentResults = all.filter((x) => x.entry.kind === 'result').length;
    expect(drops.reduce((n, d) => n + d.p.dropped!.count, 0)).toBe(25 - presentResults);
    expect(missingResults).toBeGreaterThanOrEqual(25 - presentResults);
    const first = drops[0]!.p.dropped!;
    expect(first.checks).toEqual(CHECK_IDS.filter((c) => (checks as readonly string[]).includes(c)));
    expect(first.from).toBe(at(0));
    // Drop records chain like results.
    for (let i = 1; i < all.length; i++) {
      if (all[i]!.p.seq === all[i - 1]!.p.seq + 1) expect(all[i]!.p.prev).toBe(sha256Hex(all[i - 1]!.bytes));
    }
  });

  it('when the spool is full by bytes, says so in the record', async () => {
    const ledger = await Ledger.open(state, identity, key, { log, bounds: { maxBytes: 64 * 1024 } });
    const big = finding({ reasons: [{ code: 'CHK_FAIL_X', message: 'x'.repeat(1900) }] });
    for (let i = 0; i < 40; i++) await ledger.append([{ ...big, collectedAt: at(i) }], 1);
    const all = await spooled();
    expect(all.reduce((n, x) => n + x.bytes.length, 0)).toBeLessThanOrEqual(64 * 1024);
    const drops = all.filter((x) => x.entry.kind === 'drop');
    expect(drops.length).toBeGreaterThan(0);
    expect(drops.every((d) => d.p.dropped!.reason === 'spool_full_bytes')).toBe(true);
  });

  it('a crash between writing a drop record and removing what it covers is finished at the next open', async () => {
    const ledger = await Ledger.open(state, identity, key, { log, bounds: { maxCount: 10 } });
    for (let i = 0; i < 10; i++) await ledger.append([finding({ collectedAt: at(i) })], 1);
    const before = await spooled();
    await ledger.append([finding({ collectedAt: at(10) })], 1);
    const after = await spooled();
    const drop = after.find((x) => x.entry.kind === 'drop')!;
    // Put the victims back, as if the process died before unlinking them.
    for (const v of before.filter((x) => x.p.seq >= drop.p.dropped!.firstSeq && x.p.seq <= drop.p.dropped!.lastSeq)) {
      await new Spool(state.spoolDir, state.quarantineDir).put(v.p.seq, v.bytes);
    }
    expect((await spooled()).length).toBeGreaterThan(after.length);
    await Ledger.open(state, identity, key, { log, bounds: { maxCount: 10 } });
    expect((await spooled()).map((x) => x.p.seq)).toEqual(after.map((x) => x.p.seq));
  });

  it('drop records never crowd out results, and the spool never grows past its bound', async () => {
    const ledger = await Ledger.open(state, identity, key, { log, bounds: { maxCount: 10 } });
    for (let i = 0; i < 200; i++) {
      await ledger.append([finding({ collectedAt: at(i % 60) })], 1);
      const all = await spooled();
      expect(all.length).toBeLessThanOrEqual(10);
      expect(all.filter((x) => x.entry.kind === 'drop').length).toBeLessThanOrEqual(5);
    }
    const all = await spooled();
    const drops = all.filter((x) => x.entry.kind === 'drop');
    const present = new Set(all.map((x) => x.p.seq));
    const covered = new Map<number, number>();
    for (const d of drops) for (let s = d.p.dropped!.firstSeq; s <= d.p.dropped!.lastSeq; s++) if (!present.has(s)) covered.set(s, (covered.get(s) ?? 0) + 1);
    // Every missing sequence number is covered once, and the counts say how many results are gone.
    for (let s = 1; s <= ledger.head.seq; s++) if (!present.has(s)) expect(covered.get(s), `seq ${s}`).toBe(1);
    expect(drops.reduce((n, d) => n + d.p.dropped!.count, 0)).toBe(200 - all.filter((x) => x.entry.kind === 'result').length);
  });

  it('quarantine records one event per run of refusals, and not twice for the same envelope', async () => {
    const ledger = await Ledger.open(state, identity, key, { log });
    await ledger.append([finding(), finding(), finding()], 1);
    await ledger.exclusive(async (spool) => {
      const [a, b] = await spool.list();
      await spool.quarantine(a!, { status: 400, code: 'COL_ERR_SCHEMA', message: 'x' });
      await spool.quarantine(b!, { status: 400, code: 'COL_ERR_SCHEMA', message: 'x' });
    });
    expect(ledger.pendingEvents()).toEqual([
      expect.objectContaining({ type: 'spool_quarantine', detail: { count: 2, firstSeq: 1, lastSeq: 2, status: 400, code: 'COL_ERR_SCHEMA' } }),
    ]);
    expect((await readdir(state.quarantineDir)).sort()).toEqual(['000000000001.dsse.json', '000000000002.dsse.json']);
    expect(ledger.depth().count).toBe(1);
    await ledger.append([finding()], 1);
    expect((await spooled()).at(-1)!.p.events?.[0]?.type).toBe('spool_quarantine');
  });
});

/**
 * Fault injection: a crash is an exception thrown before or after any one durable step (spool
 * write, chain.json write, unlink, rename, events write). Whatever the disk holds at that point
 * is what a SIGKILL would leave. After each crash a fresh ledger opens the same directory.
 */
describe('ledger crash safety (fault injection at every durable step)', () => {
  class Crash extends Error {}

  it('never spools two different envelopes under one sequence number, and keeps the chain linked', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.nat(200), { minLength: 3, maxLength: 12 }), fc.integer({ min: 4, max: 12 }), async (crashPoints, maxCount) => {
        const d = await tempDir('ledger-crash');
        try {
          const st = new StateDir(path.join(d.dir, 'state'));
          await st.ensure();
          let step = 0;
          let crashAt = crashPoints[0]!;
          const tick = () => {
            if (step++ === crashAt) throw new Crash();
          };
          // Every envelope ever made durable in the spool, by sequence number.
          const seen = new Map<number, Set<string>>();
          const bytesBySeq = new Map<number, Buffer>();
          class FaultySpool extends Spool {
            override async put(seq: number, bytes: Buffer, kind: SpoolKind = 'result'): Promise<SpoolEntry> {
              tick();
              const e = await super.put(seq, bytes, kind);
              (seen.get(seq) ?? seen.set(seq, new Set()).get(seq)!).add(sha256Hex(bytes));
              bytesBySeq.set(seq, bytes);
              tick();
              return e;
            }
            override async removeMany(entries: readonly SpoolEntry[]): Promise<void> {
              tick();
              // A crash half way through a multi-file removal.
              if (entries.length > 1 && step % 2 === 0) {
                await super.removeMany(entries.slice(0, 1));
                tick();
              }
              await super.removeMany(entries);
            }
            override async quarantine(entry: SpoolEntry): Promise<string> {
              tick();
              return super.quarantine(entry);
            }
          }
          class FaultyState extends StateDir {
            override async writeChain(chain: ChainHead): Promise<void> {
              tick();
              await super.writeChain(chain);
              tick();
            }
          }
          const fst = new FaultyState(st.dir);
          let total = 0;
          for (let round = 0; round <= crashPoints.length; round++) {
            crashAt = round < crashPoints.length ? step + crashPoints[round]! % 25 : Number.MAX_SAFE_INTEGER;
            try {
              const ledger = await Ledger.open(fst, identity, key, { log, bounds: { maxCount }, spool: new FaultySpool(st.spoolDir, st.quarantineDir) });
              for (let i = 0; i < 6; i++) {
                if (i === 3) await ledger.recordEvent('started', { round });
                await ledger.append([finding({ collectedAt: at(total++ % 60) })], 1);
                if (i === 4) {
                  await ledger.exclusive(async (spool) => {
                    const [first] = await spool.list();
                    if (first !== undefined && first.kind === 'result') await spool.acknowledge([first]);
                  });
                }
              }
            } catch (err) {
              if (!(err instanceof Crash)) throw err;
            }
          }
          for (const [seq, hashes] of seen) expect(hashes.size, `seq ${seq} was spooled with ${hashes.size} contents`).toBe(1);
          // Each envelope's prev is the hash of the one spooled under the sequence number before it.
          for (const [seq, bytes] of bytesBySeq) {
            const prev = bytesBySeq.get(seq - 1);
            if (prev !== undefined) expect(predicateOf(bytes).prev, `seq ${seq}`).toBe(sha256Hex(prev));
          }
          // The final ledger agrees with what is spooled, and the spool holds no covered victims.
          const final = await Ledger.open(st, identity, key, { log, bounds: { maxCount } });
          const spool = new Spool(st.spoolDir, st.quarantineDir);
          const entries = await spool.list();
          expect(final.head.seq).toBe(Math.max(...bytesBySeq.keys()));
          for (const e of entries.filter((x) => x.kind === 'drop')) {
            const p = predicateOf(await spool.read(e));
            // No result inside a spooled drop record's span survives it.
            expect(entries.filter((x) => x.kind === 'result' && x.seq < e.seq && x.seq >= p.dropped!.firstSeq && x.seq <= p.dropped!.lastSeq)).toEqual([]);
          }
        } finally {
          await d.cleanup();
        }
      }),
      { numRuns: 25 },
    );
  }, 120_000);
});

describe('spool names', () => {
  it('tells results from drop records, and ignores anything else', async () => {
    const spool = new Spool(state.spoolDir, state.quarantineDir);
    await spool.put(2, Buffer.from('{}'), 'drop');
    await spool.put(1, Buffer.from('{}'));
    await writeFile(path.join(state.spoolDir, 'README'), 'x');
    expect((await spool.list()).map((e) => [e.seq, e.kind])).toEqual([
      [1, 'result'],
      [2, 'drop'],
    ]);
    expect(JSON.parse(await readFile(path.join(state.spoolDir, '000000000002.drop.dsse.json'), 'utf8'))).toEqual({});
  });
});
