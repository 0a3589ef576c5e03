// A plausible audit model, built by hand, for tests of its renderings (CSV, OSCAL, report). The
// real model comes from an export (collector/audit/); these tests check the renderings alone.
import { createHash } from 'node:crypto';
import { CHECK_IDS, type CheckId } from '../../checks/types.js';
import type { AuditCell, AuditDayRow, AuditDayTally, AuditHost, AuditModel, ControlState, FileRef } from '../../collector/audit/model.js';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const ref = (path: string): FileRef => ({ path, sha256: sha(path) });

export interface SampleOptions {
  hosts?: number;
  days?: number;
  /** No host sent anything: an empty period. */
  silent?: boolean;
  ended?: boolean;
}

export function sampleModel(o: SampleOptions = {}): AuditModel {
  const nHosts = o.hosts ?? 3;
  const nDays = o.days ?? 7;
  const from = Date.parse('2026-11-01T00:00:00.000Z');
  const to = from + nDays * 86_400_000;
  const iso = (t: number) => new Date(t).toISOString();
  const dayOf = (i: number) => iso(from + i * 86_400_000).slice(0, 10);
  const controls: CheckId[] = [...CHECK_IDS];
  const hosts: AuditHost[] = [];
  const cells: AuditCell[] = [];
  const days: AuditDayRow[] = [];
  const tallies: AuditDayTally[] = [];
  for (let h = 0; h < nHosts; h++) {
    const agentId = sha(`agent-${h}`);
    const evidence = o.silent ? [] : Array.from({ length: nDays }, (_, d) => ref(`evidence/${agentId}/${dayOf(d)}.jsonl`));
    hosts.push({
      agentId,
      hostname: `build-${h}.acme.example`,
      os: h % 2 ? 'darwin' : 'linux',
      agentVersion: '0.1.0',
      enrolledAt: iso(from - 86_400_000),
      revokedAt: null,
      firstSeen: o.silent ? null : iso(from + 3_600_000),
      lastSeen: o.silent ? null : iso(to - 3_600_000),
      results: o.silent ? 0 : nDays * 24 * controls.length,
      evidence,
    });
    for (const control of controls) {
      const failing = !o.silent && h === 0 && control === 'disk_encryption';
      const waived = !o.silent && h === 1 && control === 'usb_policy';
      const perDay = o.silent ? 0 : 24;
      cells.push({
        agentId,
        hostname: `build-${h}.acme.example`,
        control,
        results: perDay * nDays,
        pass: failing || waived ? 0 : perDay * nDays,
        fail: failing ? perDay * nDays : 0,
        unknown: 0,
        waived: waived ? perDay * nDays : 0,
        firstFailure: failing ? iso(from + 3_600_000) : null,
        lastFailure: failing ? iso(to - 3_600_000) : null,
        lastSeen: o.silent ? null : iso(to - 3_600_000),
        lastState: o.silent ? 'stale' : failing ? 'fail' : waived ? 'waived' : 'pass',
        evidence,
      });
      for (let d = 0; d < nDays && !o.silent; d++) {
        days.push({
          agentId,
          hostname: `build-${h}.acme.example`,
          control,
          day: dayOf(d),
          results: perDay,
          passes: failing || waived ? 0 : perDay,
          fails: failing ? perDay : 0,
          unknowns: 0,
          waived: waived ? perDay : 0,
          firstFailure: failing ? iso(from + d * 86_400_000 + 3_600_000) : null,
          lastFailure: failing ? iso(from + (d + 1) * 86_400_000 - 3_600_000) : null,
          lastSeen: iso(from + (d + 1) * 86_400_000 - 3_600_000),
        });
      }
    }
  }
  for (let d = 0; d < nDays; d++) {
    for (const control of controls) {
      const counts: Record<ControlState, number> = { pass: 0, fail: 0, unknown: 0, waived: 0, stale: 0 };
      for (const c of cells.filter((x) => x.control === control)) counts[o.silent ? 'stale' : c.lastState]++;
      tallies.push({ day: dayOf(d), control, counts });
    }
  }
  const policyFile = ref('policy/1.json');
  return {
    vendor: 'acme',
    period: { from: iso(from), to: iso(to), ended: o.ended ?? true },
    exportedAt: iso(to + 3_600_000),
    generator: 'vcm-collector 0.1.0',
    collector: { origin: 'vcm.example/acme', fingerprint: sha('collector'), key: ref('keys/collector.pem') },
    log: {
      startSize: 0,
      endSize: o.silent ? 3 : 100,
      start: null,
      end: { size: o.silent ? 3 : 100, rootHash: sha('root'), issuedAt: iso(to + 3_600_000), file: ref('log/checkpoint-end.txt') },
      entries: ref('log/entries.jsonl'),
    },
    controls,
    hosts,
    cells,
    days,
    tallies,
    failures: o.silent
      ? []
      : [
          {
            agentId: hosts[0]!.agentId,
            hostname: hosts[0]!.hostname,
            control: 'disk_encryption',
            firstSeen: iso(from + 3_600_000),
            lastSeen: iso(to - 3_600_000),
            durationSeconds: (to - from - 7_200_000) / 1000,
            open: true,
            exceptionId: null,
          },
        ],
    silences: o.silent
      ? hosts.map((h) => ({ agentId: h.agentId, hostname: h.hostname, from: iso(from), to: iso(to), explanation: null }))
      : [],
    gaps: o.silent ? [] : [{ agentId: hosts[0]!.agentId, hostname: hosts[0]!.hostname, fromSeq: 40, toSeq: 52, explanation: 'spool-drop record at seq 53: 13 results dropped (spool_full_bytes)' }],
    exceptions: [
      {
        id: 'usb-build-1',
        control: 'usb_policy',
        hosts: 'build-1.*',
        justification: 'Hardware token programming station; reviewed monthly.',
        approver: 'ciso@customer.example',
        expires: iso(to + 10 * 86_400_000),
        policyVersions: [1],
        waivedResults: o.silent ? 0 : nDays * 24,
      },
    ],
    policyVersions: [{ version: 1, createdAt: iso(from - 2 * 86_400_000), file: policyFile }],
    verification: { verified: true, by: 'vcm-collector 0.1.0 (at export)', at: iso(to + 3_600_000), defects: [] },
  };
}
