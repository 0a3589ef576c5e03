// The OSCAL documents of an audit bundle, validated against NIST's official OSCAL 1.0.6 JSON schemas
// (../shared/oscal next to the repository) with Ajv, and read back for what they must say.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import { beforeAll, describe, expect, it } from 'vitest';
import type { AuditModel } from '../../../collector/audit/model.js';
import { OSCAL_PATHS, VCM_NS, oscalDocuments, type OscalDocuments } from '../../../collector/audit/oscal.js';
import { sampleModel } from '../../helpers/audit-model.js';

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const SCHEMAS = path.join(path.resolve(REPO_ROOT, '..', 'shared', 'oscal'), '1.0.6');
const SCHEMA_FILES = {
  ssp: 'oscal_ssp_schema.json',
  assessmentPlan: 'oscal_assessment-plan_schema.json',
  assessmentResults: 'oscal_assessment-results_schema.json',
} as const;
type Kind = keyof typeof SCHEMA_FILES;
const KINDS = Object.keys(SCHEMA_FILES) as Kind[];
const UUID = /^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[45][0-9A-Fa-f]{3}-[89ABab][0-9A-Fa-f]{3}-[0-9A-Fa-f]{12}$/;

let validators: Record<Kind, ValidateFunction>;

beforeAll(() => {
  const ajv = new Ajv({ strict: false, allErrors: true });
  addFormats.default(ajv);
  const compile = (file: string) => ajv.compile(JSON.parse(readFileSync(path.join(SCHEMAS, file), 'utf8')) as object);
  validators = { ssp: compile(SCHEMA_FILES.ssp), assessmentPlan: compile(SCHEMA_FILES.assessmentPlan), assessmentResults: compile(SCHEMA_FILES.assessmentResults) };
});

// Just enough of the documents' shapes to read them back.
interface Prop { name: string; ns?: string; value: string }
interface Observation { uuid: string; props: Prop[]; 'relevant-evidence'?: { href: string }[]; subjects: { 'subject-uuid': string }[] }
interface Finding {
  uuid: string;
  props: Prop[];
  target: { 'target-id': string; status: { state: string; reason?: string; remarks?: string } };
  'related-observations'?: { 'observation-uuid': string }[];
  'related-risks'?: { 'risk-uuid': string }[];
}
interface Risk { uuid: string; status: string; statement: string; deadline?: string; props: Prop[]; 'related-observations'?: { 'observation-uuid': string }[] }
interface Result { start: string; end?: string; props?: Prop[]; remarks?: string; observations?: Observation[]; findings?: Finding[]; risks?: Risk[] }
interface Resource { uuid: string; rlinks?: { href: string; hashes?: { algorithm: string; value: string }[] }[] }
interface Ar {
  uuid: string;
  metadata: Record<string, unknown>;
  'import-ap': { href: string };
  results: Result[];
  'back-matter'?: { resources: Resource[] };
}

const ar = (d: OscalDocuments) => (d.assessmentResults as { 'assessment-results': Ar })['assessment-results'];
const ap = (d: OscalDocuments) => (d.assessmentPlan as { 'assessment-plan': Record<string, unknown> })['assessment-plan'];
const ssp = (d: OscalDocuments) => (d.ssp as { 'system-security-plan': Record<string, unknown> })['system-security-plan'];
const result = (d: OscalDocuments) => ar(d).results[0]!;
const findingOf = (d: OscalDocuments, control: string) => result(d).findings!.find((f) => f.target['target-id'] === control)!;
const propValue = (ps: Prop[] | undefined, name: string) => ps?.find((p) => p.name === name && p.ns === VCM_NS)?.value;

function expectValid(docs: OscalDocuments): void {
  for (const kind of KINDS) {
    const ok = validators[kind](docs[kind]);
    expect(ok, `${kind}: ${JSON.stringify(validators[kind].errors?.slice(0, 5))}`).toBe(true);
  }
}

/** Every value of a `uuid` key anywhere in the document (the ids it defines). */
function definedUuids(doc: unknown, out: string[] = []): string[] {
  if (Array.isArray(doc)) for (const x of doc) definedUuids(x, out);
  else if (doc !== null && typeof doc === 'object') {
    for (const [k, v] of Object.entries(doc)) {
      if (k === 'uuid' && typeof v === 'string') out.push(v);
      else definedUuids(v, out);
    }
  }
  return out;
}

/** The sample with one cell changed. */
function withCell(m: AuditModel, host: number, control: string, change: Partial<AuditModel['cells'][number]>): AuditModel {
  const agentId = m.hosts[host]!.agentId;
  m.cells = m.cells.map((c) => (c.agentId === agentId && c.control === control ? { ...c, ...change } : c));
  return m;
}

describe('OSCAL documents of an audit bundle', () => {
  it('validate against the NIST 1.0.6 schemas, and link: the results import the plan, the plan the system plan', () => {
    const m = sampleModel();
    const docs = oscalDocuments(m);
    expectValid(docs);
    expect(OSCAL_PATHS).toEqual({ ssp: 'oscal/system-security-plan.json', assessmentPlan: 'oscal/assessment-plan.json', assessmentResults: 'oscal/assessment-results.json' });
    expect(ar(docs)['import-ap']).toEqual({ href: 'assessment-plan.json' });
    expect(ap(docs)['import-ssp']).toEqual({ href: 'system-security-plan.json' });
    for (const kind of KINDS) {
      const meta = Object.values(docs[kind] as Record<string, { metadata: Record<string, unknown> }>)[0]!.metadata;
      expect(meta['oscal-version']).toBe('1.0.6');
      expect(meta['last-modified']).toBe(m.exportedAt);
      expect(meta.version).toBe(m.generator);
      expect(meta.title).toContain('acme');
      expect(meta.title).toContain(m.period.from);
    }
  });

  it('the system plan lists every host and implements the six controls, against a vcm control set in its back matter', () => {
    const m = sampleModel();
    const plan = ssp(oscalDocuments(m));
    const items = (plan['system-implementation'] as { 'inventory-items': { props: Prop[] }[] })['inventory-items'];
    expect(items.map((i) => propValue(i.props, 'hostname'))).toEqual(m.hosts.map((h) => h.hostname));
    const reqs = (plan['control-implementation'] as { 'implemented-requirements': { 'control-id': string }[] })['implemented-requirements'];
    expect(reqs.map((r) => r['control-id'])).toEqual(['vpn', 'disk_encryption', 'usb_policy', 'credential_age', 'sso_coverage', 'open_ports']);
    const href = (plan['import-profile'] as { href: string }).href;
    const resources = (plan['back-matter'] as { resources: { uuid: string; props: Prop[] }[] }).resources;
    const set = resources.find((r) => `#${r.uuid}` === href)!;
    expect(set.props.map((p) => p.value)).toEqual(m.controls);
  });

  it('the sample: a failing control is not satisfied, a passing one is, and every cell has its observation', () => {
    const m = sampleModel();
    const docs = oscalDocuments(m);
    const disk = findingOf(docs, 'disk_encryption');
    expect(disk.target.status).toMatchObject({ state: 'not-satisfied', reason: 'fail' });
    expect(propValue(disk.props, 'verdict')).toBe('fail');
    expect(findingOf(docs, 'vpn').target.status).toMatchObject({ state: 'satisfied', reason: 'pass' });
    const observations = result(docs).observations!;
    expect(disk['related-observations']).toHaveLength(m.hosts.length);
    const failing = observations.find((o) => o.uuid === disk['related-observations']![0]!['observation-uuid'])!;
    expect(propValue(failing.props, 'fail')).toBe(String(m.cells.find((c) => c.control === 'disk_encryption')!.fail));
    expect(propValue(failing.props, 'last-state')).toBe('fail');
    expect(propValue(failing.props, 'first-failure')).toBe(m.cells.find((c) => c.control === 'disk_encryption')!.firstFailure);
    // One per cell, plus the sample's sequence gap.
    expect(observations).toHaveLength(m.cells.length + m.gaps.length + m.silences.length);
  });

  it('unknown or stale results with no failure are never satisfied', () => {
    const unknown = oscalDocuments(withCell(sampleModel(), 2, 'vpn', { pass: 160, unknown: 8 }));
    expectValid(unknown);
    expect(findingOf(unknown, 'vpn').target.status).toMatchObject({ state: 'not-satisfied', reason: 'other' });
    expect(propValue(findingOf(unknown, 'vpn').props, 'verdict')).toBe('unknown');
    const stale = oscalDocuments(withCell(sampleModel(), 2, 'vpn', { lastState: 'stale' }));
    expect(findingOf(stale, 'vpn').target.status.state).toBe('not-satisfied');
    expect(propValue(findingOf(stale, 'vpn').props, 'verdict')).toBe('stale');
    expect(findingOf(stale, 'vpn').target.status.remarks).toContain('freshness');
  });

  it('an empty period validates, and shows every control as not satisfied with silent hosts', () => {
    const m = sampleModel({ silent: true });
    const docs = oscalDocuments(m);
    expectValid(docs);
    const r = result(docs);
    expect(r.findings).toHaveLength(6);
    for (const f of r.findings!) {
      expect(f.target.status.state).toBe('not-satisfied');
      expect(propValue(f.props, 'verdict')).toBe('silent');
      expect(propValue(f.props, 'hosts-silent')).toBe(String(m.hosts.length));
    }
    expect(r.observations!.filter((o) => propValue(o.props, 'kind') === 'silence')).toHaveLength(m.hosts.length);
    expect(r.observations!.every((o) => o['relevant-evidence'] === undefined)).toBe(true);
  });

  it('a period not ended at export says so, and still ends at the period\'s end', () => {
    const m = sampleModel({ ended: false });
    const docs = oscalDocuments(m);
    expectValid(docs);
    const r = result(docs);
    expect(r.start).toBe(m.period.from);
    expect(r.end).toBe(m.period.to);
    expect(propValue(r.props, 'period-ended')).toBe('false');
    expect(r.remarks).toContain('had not ended');
    expect(propValue(result(oscalDocuments(sampleModel())).props, 'period-ended')).toBe('true');
    expect(result(oscalDocuments(sampleModel())).remarks).toBeUndefined();
  });

  it('names a host, a component and an exception alike in every bundle of the log, and each export\'s documents apart', () => {
    const first = sampleModel();
    const later: AuditModel = { ...sampleModel(), log: { ...first.log, end: { ...first.log.end, rootHash: 'ab'.repeat(32) } } };
    const [a, b] = [oscalDocuments(first), oscalDocuments(later)];
    const items = (d: OscalDocuments) => (ssp(d)['system-implementation'] as { 'inventory-items': { uuid: string }[]; components: { uuid: string }[] });
    expect(items(b)['inventory-items'].map((i) => i.uuid)).toEqual(items(a)['inventory-items'].map((i) => i.uuid));
    expect(items(b).components.map((c) => c.uuid)).toEqual(items(a).components.map((c) => c.uuid));
    expect(items(a)['inventory-items'].length).toBeGreaterThan(0);
    expect(result(a).risks?.length).toBeGreaterThan(0);
    expect(result(b).risks?.map((r) => r.uuid)).toEqual(result(a).risks?.map((r) => r.uuid));
    expect(ar(b).uuid).not.toBe(ar(a).uuid);
    expect(ssp(b).uuid).not.toBe(ssp(a).uuid);
    // Another collector's log (another origin) names its hosts apart.
    const elsewhere: AuditModel = { ...first, collector: { ...first.collector, origin: 'other.example/vcm' } };
    expect(items(oscalDocuments(elsewhere))['inventory-items'][0]!.uuid).not.toBe(items(a)['inventory-items'][0]!.uuid);
  });

  it('is deterministic, its UUIDs are version 4 or 5 and unique, and another seed gives other UUIDs', () => {
    const m = sampleModel();
    const a = JSON.stringify(oscalDocuments(m));
    expect(JSON.stringify(oscalDocuments(sampleModel()))).toBe(a);
    expect(JSON.stringify(oscalDocuments(m, { uuidSeed: 'another seed' }))).not.toBe(a);
    const docs = oscalDocuments(m);
    for (const kind of KINDS) {
      const ids = definedUuids(docs[kind]);
      expect(ids.length).toBeGreaterThan(0);
      expect(ids.every((id) => UUID.test(id))).toBe(true);
      expect(new Set(ids).size).toBe(ids.length);
    }
    expect(ar(docs).metadata['last-modified']).toBe(m.exportedAt);
  });

  it('binds every evidence link to a back-matter resource whose rlink names the bundle file and its SHA-256', () => {
    const m = sampleModel();
    const docs = oscalDocuments(m);
    const resources = new Map(ar(docs)['back-matter']!.resources.map((r) => [r.uuid, r]));
    const hashOf = new Map(m.cells.flatMap((c) => c.evidence).map((f) => [f.path, f.sha256]));
    let links = 0;
    for (const o of result(docs).observations!) {
      for (const e of o['relevant-evidence'] ?? []) {
        expect(e.href.startsWith('#')).toBe(true);
        const link = resources.get(e.href.slice(1))!.rlinks![0]!;
        const bundlePath = path.posix.normalize(path.posix.join('oscal', link.href));
        expect(link.href.startsWith('../evidence/')).toBe(true);
        expect(hashOf.has(bundlePath)).toBe(true);
        expect(link.hashes).toEqual([{ algorithm: 'SHA-256', value: hashOf.get(bundlePath) }]);
        links++;
      }
    }
    expect(links).toBe(m.cells.reduce((n, c) => n + c.evidence.length, 0));
    expect(links).toBeGreaterThan(0);
  });

  it("a waived cell's finding points to its exception: a deviation-approved risk with justification, approver and expiry", () => {
    const m = sampleModel();
    const docs = oscalDocuments(m);
    const exception = m.exceptions[0]!;
    const usb = findingOf(docs, 'usb_policy');
    expect(usb.target.status.state).toBe('not-satisfied');
    expect(propValue(usb.props, 'verdict')).toBe('waived');
    expect(usb['related-risks']).toHaveLength(1);
    const risk = result(docs).risks!.find((r) => r.uuid === usb['related-risks']![0]!['risk-uuid'])!;
    expect(risk.status).toBe('deviation-approved');
    expect(risk.statement).toContain(exception.justification);
    expect(propValue(risk.props, 'approver')).toBe(exception.approver);
    expect(propValue(risk.props, 'expires')).toBe(exception.expires);
    expect(risk.deadline).toBe(exception.expires);
    // It covers build-1 alone, whose usb_policy observation shows the waived results.
    const waived = result(docs).observations!.find((o) => o.uuid === risk['related-observations']![0]!['observation-uuid'])!;
    expect(risk['related-observations']).toHaveLength(1);
    expect(propValue(waived.props, 'waived')).toBe(String(exception.waivedResults));
    expect(findingOf(docs, 'disk_encryption')['related-risks']).toBeUndefined();
  });

  it('the schemas refuse a broken document, so these checks can fail', () => {
    const docs = oscalDocuments(sampleModel());
    delete (ar(docs) as Partial<Ar>)['import-ap'];
    expect(validators.assessmentResults(docs.assessmentResults)).toBe(false);
    expect(validators.assessmentResults.errors).toContainEqual(expect.objectContaining({ keyword: 'required', params: { missingProperty: 'import-ap' } }));
    const plan = oscalDocuments(sampleModel());
    ap(plan).uuid = '00000000-0000-1000-8000-000000000000';
    expect(validators.assessmentPlan(plan.assessmentPlan)).toBe(false);
    const system = oscalDocuments(sampleModel());
    (ssp(system).metadata as Record<string, unknown>)['last-modified'] = 'yesterday';
    expect(validators.ssp(system.ssp)).toBe(false);
  });
});
