// The one EvidenceStore contract, run against every implementation (filesystem, S3 on Ceph RGW,
// S3 on the in-memory AWS stand-in). Each test gets a fresh, empty store from the factory.
import { createHash, generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { evidenceKey } from '../../collector/contract.js';
import { isCollectorError } from '../../collector/errors.js';
import { encodeEntry, type LogEntry } from '../../collector/log/entries.js';
import { VendorLog, readEntryLines } from '../../collector/log/vendor-log.js';
import { AgentRegistry, keyForSeq, type KeyEvent } from '../../collector/registry.js';
import type { EvidenceStore } from '../../collector/store.js';
import { newKey, rotationBody } from '../helpers/agents.js';

export interface StoreUnderTest {
  store: EvidenceStore;
  /** Keys per list page, when the store pages (to prove multi-page listing with few keys). */
  listPageSize?: number;
}

async function collect(it: AsyncIterable<string>): Promise<string[]> {
  const out: string[] = [];
  for await (const k of it) out.push(k);
  return out;
}

async function codeOf(p: Promise<unknown> | (() => Promise<unknown>)): Promise<string> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    return isCollectorError(err) ? err.code : `not a CollectorError: ${String(err)}`;
  }
  return 'no error';
}

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
const AGENT = 'a'.repeat(64);

function layoutKey(vendor: string, seq: number, date = '2026-11-22'): string {
  return evidenceKey({ vendor, collectedAt: `${date}T10:00:00Z`, agentId: AGENT, seq, sha256: sha(`${vendor}${seq}`) });
}

/** Registers the contract suite under `name`. */
export function evidenceStoreContract(name: string, factory: () => Promise<StoreUnderTest>): void {
  describe(`EvidenceStore contract: ${name}`, () => {
    it('stores new bytes as created and returns them exactly (every byte value)', async () => {
      const { store } = await factory();
      const bytes = Buffer.from(Array.from({ length: 512 }, (_, i) => i % 256));
      const key = layoutKey('acme', 1);
      expect(await store.putIfAbsent(key, bytes)).toBe('created');
      const got = await store.get(key);
      expect(got).not.toBeNull();
      expect(Buffer.compare(got!, bytes)).toBe(0);
    });

    it('answers exists for a key already written, and keeps the original bytes unchanged', async () => {
      const { store } = await factory();
      const key = 'policy/1.json';
      const original = Buffer.from('{"version":1}\n');
      expect(await store.putIfAbsent(key, original)).toBe('created');
      expect(await store.putIfAbsent(key, Buffer.from('{"version":1,"tampered":true}\n'))).toBe('exists');
      expect(await store.putIfAbsent(key, original)).toBe('exists'); // an idempotent retry
      expect((await store.get(key))?.toString()).toBe(original.toString());
      expect(await collect(store.list('policy/'))).toEqual([key]);
    });

    it('answers null for keys never written', async () => {
      const { store } = await factory();
      expect(await store.get('keys/nobody.json')).toBeNull();
      await store.putIfAbsent('keys/somebody.json', Buffer.from('{}'));
      expect(await store.get('keys/nobody.json')).toBeNull();
      expect(await store.get('keys/somebody.json/deeper')).toBeNull();
    });

    it('lets exactly one of many concurrent writers of one key create it, and keeps the winner\'s bytes', async () => {
      const { store } = await factory();
      const key = 'tokens/0123.use-1';
      const values = Array.from({ length: 8 }, (_, i) => Buffer.from(`{"usedAt":"writer-${i}"}\n`));
      const results = await Promise.all(values.map((v) => store.putIfAbsent(key, v)));
      expect(results.filter((r) => r === 'created')).toHaveLength(1);
      expect(results.filter((r) => r === 'exists')).toHaveLength(values.length - 1);
      const winner = values[results.indexOf('created')]!;
      expect((await store.get(key))?.toString()).toBe(winner.toString());
    });

    it('lists every key under a prefix in lexical (byte) order, and nothing outside it', async () => {
      const { store } = await factory();
      const keys = [
        layoutKey('acme', 2),
        layoutKey('acme', 1),
        layoutKey('acme', 1, '2026-11-21'),
        layoutKey('acme-2', 1), // "acme-2/" sorts before "acme/" ("-" < "/")
        layoutKey('acme.io', 1),
        'keys/b.json',
        'keys/a.json',
        'policy/10.json',
        'policy/2.json',
        'policy/1.json',
        'tokens/x.json',
        'tokens/x.use-1',
      ];
      for (const k of keys) expect(await store.putIfAbsent(k, Buffer.from(k))).toBe('created');
      const byteOrder = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));
      expect(await collect(store.list(''))).toEqual([...keys].sort(byteOrder));
      expect(await collect(store.list('policy/'))).toEqual(['policy/1.json', 'policy/10.json', 'policy/2.json']);
      expect(await collect(store.list('evidence/vendor=acme/'))).toEqual(
        [layoutKey('acme', 1, '2026-11-21'), layoutKey('acme', 1), layoutKey('acme', 2)],
      );
      expect(await collect(store.list('evidence/'))).toEqual(keys.filter((k) => k.startsWith('evidence/')).sort(byteOrder));
      expect(await collect(store.list('keys/'))).toEqual(['keys/a.json', 'keys/b.json']);
    });

    it('lists across more keys than one page, each key once and in order', async () => {
      const { store, listPageSize } = await factory();
      const n = 2 * (listPageSize ?? 10) + 3;
      const keys = Array.from({ length: n }, (_, i) => layoutKey('pager', i + 1));
      await Promise.all(keys.map((k) => store.putIfAbsent(k, Buffer.from('x'))));
      const listed = await collect(store.list('evidence/vendor=pager/'));
      expect(listed).toEqual([...keys].sort());
      expect(new Set(listed).size).toBe(n);
    });

    it('lists nothing for an absent prefix', async () => {
      const { store } = await factory();
      await store.putIfAbsent('policy/1.json', Buffer.from('{}'));
      expect(await collect(store.list('evidence/vendor=nobody/'))).toEqual([]);
      expect(await collect(store.list('keys/'))).toEqual([]);
    });

    it('refuses list prefixes that do not end in "/"', async () => {
      const { store } = await factory();
      expect(await codeOf(collect(store.list('policy')))).toBe('COL_ERR_INTERNAL');
    });

    it.each(['', '/abs', '../escape', 'a//b', 'a/./b', 'a/../b', 'a b', 'a/.tmp-123', 'trailing/'])(
      'refuses the invalid key %j and writes nothing',
      async (bad) => {
        const { store } = await factory();
        expect(await codeOf(store.putIfAbsent(bad, Buffer.from('x')))).toBe('COL_ERR_INTERNAL');
        expect(await codeOf(store.get(bad))).toBe('COL_ERR_INTERNAL');
        expect(await collect(store.list(''))).toEqual([]);
      },
    );

    it('round-trips an empty value and a value over 1 MiB', async () => {
      const { store } = await factory();
      const big = Buffer.alloc((1 << 20) + 17);
      for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
      expect(await store.putIfAbsent('state/empty', Buffer.alloc(0))).toBe('created');
      expect(await store.putIfAbsent('state/big.bin', big)).toBe('created');
      expect((await store.get('state/empty'))?.length).toBe(0);
      expect(sha((await store.get('state/big.bin'))!)).toBe(sha(big));
    });

    it('answers ping and names itself', async () => {
      const { store } = await factory();
      await expect(store.ping()).resolves.toBeUndefined();
      expect(store.description).toMatch(/^(filesystem:|s3:\/\/)/);
    });

    it('holds a transparency log: rounds, tiles and checkpoints written create-only, read back the same by a fresh log; a second writer is refused', async () => {
      const { store } = await factory();
      const { privateKey } = generateKeyPairSync('ed25519');
      const writer = new VendorLog({ vendor: 'acme', origin: 'contract.test/acme', store, key: privateKey });
      await writer.load(() => undefined);
      const entry = (seq: number): LogEntry => ({ type: 'chain_gap', agentId: AGENT, seq, headSeq: seq - 2, receivedAt: '2026-11-22T10:00:00.000Z' });
      expect(await writer.append([entry(3), entry(5)])).toBe(0);
      const first = await writer.issueCheckpoint(new Date('2026-11-22T10:00:00Z'));
      expect(await writer.append(Array.from({ length: 300 }, (_, i) => entry(10 + i)))).toBe(2);
      const second = await writer.issueCheckpoint(new Date('2026-11-22T11:00:00Z'));
      const reader = new VendorLog({ vendor: 'acme', origin: 'contract.test/acme', store, key: privateKey });
      await reader.load(() => undefined);
      expect([reader.size, reader.broken, reader.checkpoints.map((c) => c.note)]).toEqual([302, null, [first.note, second.note]]);
      expect(await reader.selfCheck()).toBeNull();
      expect(reader.tree.root(302).equals(writer.tree.root(302))).toBe(true);
      // The same index from another writer (a second collector) is taken: refused, never overwritten.
      const rival = new VendorLog({ vendor: 'acme', origin: 'contract.test/acme', store, key: privateKey });
      await rival.load(() => undefined);
      const walKeys = await collect(store.list('log/vendor=acme/wal/'));
      const stored = await store.get(walKeys.at(-1)!);
      await writer.append([entry(400)]);
      expect(await codeOf(rival.append([entry(401)]))).toBe('COL_ERR_STORE_UNAVAILABLE');
      expect(rival.broken).toMatch(/another collector writes this vendor's log/);
      expect((await store.get(walKeys.at(-1)!))?.equals(stored!)).toBe(true);
      // A log read back takes appends, and the tiles and entry bundles of its next checkpoint
      // agree with its entries (the partial last tile is written again from what it holds).
      const more = Array.from({ length: 30 }, (_, i) => entry(1000 + i));
      const resumed = new VendorLog({ vendor: 'acme', origin: 'contract.test/acme', store, key: privateKey });
      await resumed.load();
      expect(await resumed.append(more)).toBe(303);
      await resumed.issueCheckpoint(new Date('2026-11-22T12:00:00Z'));
      expect(await resumed.selfCheck()).toBeNull();
      const lines: string[] = [];
      for await (const chunk of readEntryLines(store, 'acme', 250, 333)) lines.push(...chunk.lines.map((l) => l.toString('utf8')));
      expect(lines).toEqual([...Array.from({ length: 52 }, (_, i) => entry(258 + i)), entry(400), ...more].map((e) => encodeEntry(e).toString('utf8')));
    });

    it('keeps an agent registry with its key rotations and revocation: a new registry loads the same history', async () => {
      const { store } = await factory();
      const enrolled = newKey();
      const rotated = [newKey(), newKey()];
      const registry = new AgentRegistry(store);
      await registry.register({
        agentId: enrolled.agentId,
        vendor: 'acme',
        host: { hostname: 'h', os: 'linux', arch: 'x64' },
        agentVersion: '0.1.0',
        publicKey: enrolled.publicKeyPem,
        enrolledAt: '2026-11-22T10:00:00.000Z',
        revokedAt: null,
      });
      const current = [enrolled, ...rotated];
      for (const [i, next] of rotated.entries()) {
        const request = JSON.parse(rotationBody(enrolled, current[i]!, next, { generation: i + 1, afterSeq: 10 * (i + 1) }).toString()) as KeyEvent['request'];
        const event: KeyEvent = { generation: i + 1, keyId: next.agentId, publicKey: next.publicKeyPem, afterSeq: 10 * (i + 1), rotatedAt: '2026-11-22T11:00:00.000Z', request };
        expect((await registry.addKeyEvent(enrolled.agentId, event)).put).toBe('created');
        // Create-only: the same generation again is refused, the first one stays.
        expect((await registry.addKeyEvent(enrolled.agentId, { ...event, afterSeq: 99 })).put).toBe('exists');
      }
      await registry.revoke(enrolled.agentId, { revokedAt: '2026-11-22T12:00:00.000Z', afterSeq: 25, reason: 'test', by: 'contract' });

      const loaded = new AgentRegistry(store);
      await loaded.load();
      const agent = loaded.all().find((a) => a.record.agentId === enrolled.agentId)!;
      expect(agent.keys.map((k) => [k.generation, k.keyId, k.afterSeq])).toEqual([
        [0, enrolled.agentId, 0],
        [1, rotated[0]!.agentId, 10],
        [2, rotated[1]!.agentId, 20],
      ]);
      expect([1, 10, 11, 20, 21].map((seq) => keyForSeq(agent, seq).generation)).toEqual([0, 0, 1, 1, 2]);
      expect(agent.revocation?.afterSeq).toBe(25);
      expect(loaded.keyOwner(rotated[1]!.agentId)).toBe(enrolled.agentId);
    });
  });
}
