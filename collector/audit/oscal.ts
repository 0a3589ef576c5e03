// The OSCAL 1.0.6 documents of an audit bundle, rendered from its audit model (model.ts). Three JSON
// documents sit side by side in the bundle's oscal/ folder, each importing the one before it:
//
//   system-security-plan.json  The vendor's service as the system: its hosts (those running a vcm
//                              agent) as inventory items, the vcm agent as the component that
//                              implements vcm's controls, one implemented requirement per control.
//                              Its import-profile points (`#<uuid>`) to a back-matter resource that
//                              names vcm's own control set: it is not a NIST catalog or profile.
//   assessment-plan.json       import-ssp → system-security-plan.json. The controls reviewed, every
//                              host as subject, the collector as assessment platform, the period.
//   assessment-results.json    import-ap → assessment-plan.json. One result for the period: an
//                              observation per host and control (AuditCell), and per silence and
//                              sequence gap; a finding per control; a risk per policy exception; and
//                              back-matter resources for the bundle files they cite.
//
// Links to bundle files are relative to the oscal/ folder (`../evidence/<agent>/<day>.jsonl`) and
// sit in back-matter resources as rlinks, with the file's SHA-256 as the rlink's hash; observations
// cite them as relevant evidence by `#<resource-uuid>`. UUIDs are derived from a seed and a stable
// name, timestamps come from the model, never the clock: the same model gives the same bytes.
import { createHash } from 'node:crypto';
import { checkById } from '../../checks/index.js';
import type { CheckId } from '../../checks/types.js';
import { globMatches } from '../policy.js';
import type { AuditCell, AuditException, AuditGap, AuditModel, AuditSilence, FileRef } from './model.js';

export interface OscalDocuments {
  ssp: object;
  assessmentPlan: object;
  assessmentResults: object;
}

/** Where the documents go in the bundle. The hrefs between them assume they share a folder. */
export const OSCAL_PATHS = {
  ssp: 'oscal/system-security-plan.json',
  assessmentPlan: 'oscal/assessment-plan.json',
  assessmentResults: 'oscal/assessment-results.json',
} as const;

export const OSCAL_VERSION = '1.0.6';
/** The namespace of vcm's own props (OSCAL's core names are left to OSCAL). */
export const VCM_NS = 'https://vcm.dev/ns/oscal';

type Json = Record<string, unknown>;
interface Prop {
  name: string;
  ns: string;
  value: string;
}

// ---------------------------------------------------------------------------------------------
// Identifiers

/**
 * A name-based UUID: the first 16 bytes of SHA-256(seed, NUL, name) with the version nibble set to
 * 5 and the RFC 4122 variant bits, which is what OSCAL's UUID pattern accepts (version 4 or 5). Not
 * a strict RFC 4122 v5 (that one hashes with SHA-1), but derived the same way: same input, same id.
 */
export function nameUuid(seed: string, name: string): string {
  const b = createHash('sha256').update(seed).update('\0').update(name).digest();
  b[6] = (b[6]! & 0x0f) | 0x50;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = b.subarray(0, 16).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/**
 * Every UUID the three documents share, by what it names. What stays the same from one bundle to
 * the next (the vendor, the system and its components, each host, each control's requirement, each
 * exception) is derived from `subjectSeed`, the log and the vendor, so that GRC tooling that
 * merges bundles sees one host as one inventory item. What belongs to this export (the documents,
 * the result, its observations, findings and evidence files) is derived from `exportSeed`.
 */
function identifiers(exportSeed: string, subjectSeed: string) {
  const u = (name: string) => nameUuid(exportSeed, name);
  const s = (name: string) => nameUuid(subjectSeed, name);
  return {
    ssp: u('document:ssp'),
    ap: u('document:assessment-plan'),
    ar: u('document:assessment-results'),
    vendorParty: s('party:vendor'),
    system: s('component:this-system'),
    agent: s('component:vcm-agent'),
    collector: s('component:vcm-collector'),
    platform: s('assessment-platform'),
    staff: s('user:vendor-staff'),
    informationType: s('information-type'),
    controlSet: s('resource:vcm-controls'),
    task: s('task:continuous-checks'),
    result: u('result:period'),
    host: (agentId: string) => s(`inventory-item:${agentId}`),
    requirement: (control: CheckId) => s(`implemented-requirement:${control}`),
    byComponent: (control: CheckId) => s(`by-component:${control}`),
    observation: (agentId: string, control: CheckId) => u(`observation:${agentId}:${control}`),
    silence: (x: AuditSilence) => u(`observation:silence:${x.agentId}:${x.from}`),
    gap: (g: AuditGap) => u(`observation:gap:${g.agentId}:${g.fromSeq}`),
    finding: (control: CheckId) => u(`finding:${control}`),
    risk: (exceptionId: string) => s(`risk:${exceptionId}`),
    resource: (path: string) => u(`resource:${path}`),
  };
}
type Ids = ReturnType<typeof identifiers>;

interface Ctx {
  model: AuditModel;
  ids: Ids;
}

// ---------------------------------------------------------------------------------------------
// Small builders

/** OSCAL strings may not be empty, span lines or start or end with white space. */
const oneLine = (s: string) => s.replace(/\s+/g, ' ').trim();

/** vcm props, in order; entries without a value are left out. */
function props(entries: [string, string | number | boolean | null | undefined][]): Prop[] | undefined {
  const out = entries.flatMap(([name, v]) => {
    const value = v === null || v === undefined ? '' : oneLine(String(v));
    return value === '' ? [] : [{ name, ns: VCM_NS, value }];
  });
  return nonEmpty(out);
}

/** OSCAL arrays have at least one item: an empty list is left out instead. */
const nonEmpty = <T>(xs: T[]): T[] | undefined => (xs.length > 0 ? xs : undefined);

/**
 * The href of a bundle file, relative to the oscal/ folder the documents sit in: `../` and its path
 * in the bundle (`../evidence/<agent>/<day>.jsonl`). Bundle paths are plain ASCII, so encodeURI
 * leaves them as they are; it only keeps an odd character from making the reference invalid.
 */
export function bundleHref(path: string): string {
  return `../${encodeURI(path)}`;
}

const controlTitle = (control: CheckId) => checkById(control)?.title ?? control;
const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
const periodText = (m: AuditModel) => `${m.period.from} to ${m.period.to}`;

function metadata(m: AuditModel, ids: Ids, kind: string): Json {
  return {
    title: `vcm ${kind}: ${m.vendor}, ${periodText(m)}`,
    'last-modified': m.exportedAt,
    version: m.generator,
    'oscal-version': OSCAL_VERSION,
    props: props([
      ['vendor', m.vendor],
      ['period-start', m.period.from],
      ['period-end', m.period.to],
      ['period-ended', m.period.ended],
      ['exported-at', m.exportedAt],
    ]),
    roles: [{ id: 'provider', title: 'Provider', description: 'The vendor whose hosts vcm monitors.' }],
    parties: [{ uuid: ids.vendorParty, type: 'organization', name: m.vendor }],
    'responsible-parties': [{ 'role-id': 'provider', 'party-uuids': [ids.vendorParty] }],
  };
}

function reviewedControls(m: AuditModel): Json {
  return {
    description: "vcm's own controls, reported by the vcm agent on each host.",
    'control-selections': [
      m.controls.length > 0 ? { 'include-controls': m.controls.map((id) => ({ 'control-id': id })) } : { 'include-all': {} },
    ],
  };
}

// ---------------------------------------------------------------------------------------------
// The system security plan

function systemSecurityPlan(ctx: Ctx): Json {
  const { model: m, ids } = ctx;
  return {
    'system-security-plan': {
      uuid: ids.ssp,
      metadata: metadata(m, ids, 'system security plan'),
      'import-profile': {
        href: `#${ids.controlSet}`,
        remarks: "vcm's own control set, named by the back-matter resource this points to; it is not an OSCAL catalog or profile.",
      },
      'system-characteristics': systemCharacteristics(ctx),
      'system-implementation': systemImplementation(ctx),
      'control-implementation': {
        description: `Each host of ${m.vendor} runs the vcm agent, which checks the controls below and signs every result; the collector verifies, stores and logs them.`,
        'implemented-requirements': m.controls.map((control) => implementedRequirement(ids, control)),
      },
      'back-matter': { resources: [controlSetResource(ctx)] },
    },
  };
}

/** vcm does not categorize the vendor's service: what OSCAL requires there says so. */
function systemCharacteristics({ model: m, ids }: Ctx): Json {
  const notCategorized = { base: 'not-categorized' };
  return {
    'system-ids': [{ 'identifier-type': VCM_NS, id: m.vendor }],
    'system-name': m.vendor,
    description: `The service of vendor ${m.vendor}, as far as vcm monitors it: the hosts enrolled with the collector and the controls their agents report.`,
    'security-sensitivity-level': 'not-categorized',
    'system-information': {
      'information-types': [
        {
          uuid: ids.informationType,
          title: 'Not categorized by vcm',
          description: 'vcm monitors controls on the hosts; it does not categorize the information the service handles.',
          'confidentiality-impact': notCategorized,
          'integrity-impact': notCategorized,
          'availability-impact': notCategorized,
        },
      ],
    },
    'security-impact-level': {
      'security-objective-confidentiality': 'not-categorized',
      'security-objective-integrity': 'not-categorized',
      'security-objective-availability': 'not-categorized',
    },
    status: { state: 'other', remarks: 'vcm does not track the lifecycle of the service.' },
    'authorization-boundary': {
      description: `The hosts enrolled for ${m.vendor} with the collector ${m.collector.origin}, listed in the inventory; vcm sees nothing outside them.`,
    },
  };
}

function systemImplementation({ model: m, ids }: Ctx): Json {
  return {
    users: [
      {
        uuid: ids.staff,
        title: `Staff of ${m.vendor}`,
        description: 'The people who sign in to the service; the sso_coverage control reads them from the identity provider. vcm keeps no list of them.',
      },
    ],
    components: [
      {
        uuid: ids.system,
        type: 'this-system',
        title: `The service of ${m.vendor}`,
        description: `Everything of ${m.vendor} that vcm's agents run on.`,
        status: { state: 'other', remarks: 'vcm does not track the lifecycle of the service.' },
      },
      {
        uuid: ids.agent,
        type: 'software',
        title: 'vcm agent',
        description: 'Runs the controls\' checks on its host and signs each result with the host\'s key.',
        status: { state: 'operational' },
      },
    ],
    'inventory-items': nonEmpty(
      m.hosts.map((h) => ({
        uuid: ids.host(h.agentId),
        description: `Host ${h.hostname} (${h.os}), vcm agent ${h.agentVersion}, enrolled ${h.enrolledAt}${h.revokedAt ? `, revoked ${h.revokedAt}` : ''}.`,
        props: props([
          ['agent-id', h.agentId],
          ['hostname', h.hostname],
          ['os', h.os],
          ['agent-version', h.agentVersion],
          ['enrolled-at', h.enrolledAt],
          ['revoked-at', h.revokedAt],
        ]),
        'implemented-components': [{ 'component-uuid': ids.agent }],
      })),
    ),
  };
}

function implementedRequirement(ids: Ids, control: CheckId): Json {
  return {
    uuid: ids.requirement(control),
    'control-id': control,
    props: props([['control-title', controlTitle(control)]]),
    'by-components': [
      {
        'component-uuid': ids.agent,
        uuid: ids.byComponent(control),
        description: `The vcm agent checks on each host that ${lowerFirst(controlTitle(control))}, and signs the result.`,
      },
    ],
  };
}

const lowerFirst = (s: string) => s.charAt(0).toLowerCase() + s.slice(1);

function controlSetResource({ model: m, ids }: Ctx): Json {
  return {
    uuid: ids.controlSet,
    title: 'vcm controls',
    description: [
      "vcm's own control set (not an OSCAL catalog). Each control has one objective, named by the control id.",
      '',
      ...m.controls.map((c) => `- \`${c}\`: ${controlTitle(c)}`),
    ].join('\n'),
    props: props(m.controls.map((c) => ['control-id', c])),
  };
}

// ---------------------------------------------------------------------------------------------
// The assessment plan

function assessmentPlan(ctx: Ctx): Json {
  const { model: m, ids } = ctx;
  return {
    'assessment-plan': {
      uuid: ids.ap,
      metadata: metadata(m, ids, 'assessment plan'),
      'import-ssp': { href: 'system-security-plan.json' },
      'reviewed-controls': reviewedControls(m),
      'assessment-subjects': [
        { type: 'inventory-item', description: `Every host of ${m.vendor} in the system security plan's inventory.`, 'include-all': {} },
      ],
      'assessment-assets': {
        components: [collectorComponent(ctx)],
        'assessment-platforms': [{ uuid: ids.platform, title: m.generator, 'uses-components': [{ 'component-uuid': ids.collector }] }],
      },
      tasks: [
        {
          uuid: ids.task,
          type: 'action',
          title: 'Continuous control checks',
          description:
            'Every agent runs the checks on its schedule and signs each result; the collector verifies the signatures, stores the results and appends them to its transparency log.',
          timing: { 'within-date-range': { start: m.period.from, end: m.period.to } },
        },
      ],
    },
  };
}

function collectorComponent({ model: m, ids }: Ctx): Json {
  return {
    uuid: ids.collector,
    type: 'software',
    title: 'vcm collector',
    description: `Verifies, stores and logs the agents' signed results (${m.collector.origin}).`,
    props: props([
      ['origin', m.collector.origin],
      ['key-fingerprint', m.collector.fingerprint],
    ]),
    status: { state: 'operational' },
  };
}

// ---------------------------------------------------------------------------------------------
// The assessment results

function assessmentResults(ctx: Ctx): Json {
  const { model: m, ids } = ctx;
  return {
    'assessment-results': {
      uuid: ids.ar,
      metadata: metadata(m, ids, 'assessment results'),
      'import-ap': { href: 'assessment-plan.json' },
      results: [periodResult(ctx)],
      'back-matter': { resources: bundleResources(ctx) },
    },
  };
}

function periodResult(ctx: Ctx): Json {
  const { model: m, ids } = ctx;
  const log = m.log;
  return {
    uuid: ids.result,
    title: `${m.vendor}, ${periodText(m)}`,
    description: `What the hosts of ${m.vendor} reported for vcm's controls over the period [${m.period.from}, ${m.period.to}), from the signed results in this bundle.`,
    start: m.period.from,
    end: m.period.to,
    props: props([
      ['period-ended', m.period.ended],
      ['log-size-start', log.startSize],
      ['log-size-end', log.endSize],
      ['log-root-hash', log.end.rootHash],
      ...verificationProps(m),
    ]),
    links: [
      { href: `#${ids.resource(log.end.file.path)}`, rel: 'reference', text: 'The signed log checkpoint at the end of the period' },
      ...(log.start ? [{ href: `#${ids.resource(log.start.file.path)}`, rel: 'reference', text: 'The signed log checkpoint at the start of the period' }] : []),
    ],
    'reviewed-controls': reviewedControls(m),
    observations: nonEmpty([
      ...m.cells.map((c) => cellObservation(ctx, c)),
      ...m.silences.map((s) => silenceObservation(ctx, s)),
      ...m.gaps.map((g) => gapObservation(ctx, g)),
    ]),
    risks: nonEmpty(m.exceptions.map((e) => exceptionRisk(ctx, e))),
    findings: nonEmpty(m.controls.map((c) => controlFinding(ctx, c))),
    remarks: resultRemarks(m),
  };
}

function verificationProps(m: AuditModel): [string, string | number | boolean | null][] {
  const v = m.verification;
  if (!v) return [['verified', 'not-checked']];
  return [
    ['verified', v.verified],
    ['verified-by', v.by],
    ['verified-at', v.at],
    ['defects', v.defects.length],
  ];
}

function resultRemarks(m: AuditModel): string | undefined {
  const lines: string[] = [];
  if (!m.period.ended) {
    lines.push(`The period had not ended when this was exported (${m.exportedAt}): results collected after that are not in it, and states "at the end" are states at export.`);
  }
  if (m.verification && m.verification.defects.length > 0) {
    lines.push('Verification defects:', '', ...m.verification.defects.map((d) => `- ${d.code}: ${oneLine(d.message)}`));
  }
  return lines.length > 0 ? lines.join('\n') : undefined;
}

// Observations. `collected` is the export time: each one is the tally of the period the export made.

function cellObservation({ model: m, ids }: Ctx, c: AuditCell): Json {
  return {
    uuid: ids.observation(c.agentId, c.control),
    title: `${c.control} on ${c.hostname}`,
    description:
      `${plural(c.results, 'result')} of ${c.control} from ${c.hostname} in the period: ` +
      `${c.pass} pass, ${c.fail} fail, ${c.unknown} unknown, ${c.waived} waived; state at the end: ${c.lastState}.`,
    props: props([
      ['control-id', c.control],
      ['agent-id', c.agentId],
      ['results', c.results],
      ['pass', c.pass],
      ['fail', c.fail],
      ['unknown', c.unknown],
      ['waived', c.waived],
      ['first-failure', c.firstFailure],
      ['last-failure', c.lastFailure],
      ['last-seen', c.lastSeen],
      ['last-state', c.lastState],
      ['verdict', cellVerdict(c)],
    ]),
    methods: ['TEST'],
    origins: [{ actors: [{ type: 'tool', 'actor-uuid': ids.agent }] }],
    subjects: [hostSubject(ids, c.agentId, c.hostname)],
    'relevant-evidence': nonEmpty(
      c.evidence.map((f) => ({
        href: `#${ids.resource(f.path)}`,
        description: `Signed results of ${c.hostname} for one day (all its controls): ${f.path}`,
      })),
    ),
    collected: m.exportedAt,
    remarks: VERDICT_REMARKS[cellVerdict(c)],
  };
}

function silenceObservation({ model: m, ids }: Ctx, s: AuditSilence): Json {
  return {
    uuid: ids.silence(s),
    title: `${s.hostname} silent`,
    description: `${s.hostname} sent nothing from ${s.from} to ${s.to}, longer than its freshness allows. ${s.explanation ?? 'Nothing in the evidence explains it.'}`,
    props: props([
      ['kind', 'silence'],
      ['agent-id', s.agentId],
      ['from', s.from],
      ['to', s.to],
      ['explained', s.explanation !== null],
    ]),
    methods: ['EXAMINE'],
    origins: [{ actors: [{ type: 'assessment-platform', 'actor-uuid': ids.platform }] }],
    subjects: [hostSubject(ids, s.agentId, s.hostname)],
    collected: m.exportedAt,
  };
}

function gapObservation({ model: m, ids }: Ctx, g: AuditGap): Json {
  return {
    uuid: ids.gap(g),
    title: `${g.hostname} sequence gap`,
    description: `The collector never received results ${g.fromSeq} to ${g.toSeq} of ${g.hostname}. ${g.explanation ?? 'Nothing in the evidence explains it.'}`,
    props: props([
      ['kind', 'sequence-gap'],
      ['agent-id', g.agentId],
      ['from-seq', g.fromSeq],
      ['to-seq', g.toSeq],
      ['explained', g.explanation !== null],
    ]),
    methods: ['EXAMINE'],
    origins: [{ actors: [{ type: 'assessment-platform', 'actor-uuid': ids.platform }] }],
    subjects: [hostSubject(ids, g.agentId, g.hostname)],
    collected: m.exportedAt,
  };
}

const hostSubject = (ids: Ids, agentId: string, hostname: string) => ({
  'subject-uuid': ids.host(agentId),
  type: 'inventory-item',
  title: hostname,
});

// Verdicts: what a host's control, and a control over all hosts, amount to for the period.
// Worst first. Only `pass` is satisfied: unknown, stale and silent are never read as compliant, and
// a waived failure is still a failure of the control, covered by an approved deviation (a risk).

export const VERDICTS = ['fail', 'unknown', 'stale', 'silent', 'waived', 'pass'] as const;
export type Verdict = (typeof VERDICTS)[number];

const VERDICT_REMARKS: Record<Verdict, string> = {
  fail: 'The control failed in the period.',
  unknown: 'No failure, but some results were unknown: an unknown result is not evidence of compliance.',
  stale: "No failure, but the last result is older than the control's freshness allows: the state at the end is not known.",
  silent: 'No result for this control in the period: nothing shows it was kept.',
  waived: 'The control failed, and an approved exception covered the failures (see the related risks).',
  pass: 'Every result passed, and the control passed at the end of the period.',
};

export function cellVerdict(c: AuditCell): Verdict {
  if (c.results === 0) return 'silent';
  if (c.fail > 0 || c.lastState === 'fail') return 'fail';
  if (c.unknown > 0 || c.lastState === 'unknown') return 'unknown';
  if (c.lastState === 'stale') return 'stale';
  if (c.waived > 0 || c.lastState === 'waived') return 'waived';
  return 'pass';
}

/** The worst verdict of the hosts; silent when no host has the control. */
function controlVerdict(cells: AuditCell[]): Verdict {
  const found = new Set(cells.map(cellVerdict));
  return VERDICTS.find((v) => found.has(v)) ?? 'silent';
}

function controlFinding(ctx: Ctx, control: CheckId): Json {
  const { model: m, ids } = ctx;
  const cells = m.cells.filter((c) => c.control === control);
  const verdict = controlVerdict(cells);
  const byVerdict = VERDICTS.map((v) => [v, cells.filter((c) => cellVerdict(c) === v).map((c) => c.hostname)] as const);
  return {
    uuid: ids.finding(control),
    title: `${control}: ${controlTitle(control)}`,
    description: findingDescription(cells.length, byVerdict),
    props: props([
      ['control-id', control],
      ['verdict', verdict],
      ['hosts', cells.length],
      ...byVerdict.map(([v, hosts]): [string, number] => [`hosts-${v}`, hosts.length]),
    ]),
    origins: [{ actors: [{ type: 'assessment-platform', 'actor-uuid': ids.platform }] }],
    target: {
      type: 'objective-id',
      'target-id': control,
      title: `The objective of ${control}`,
      status: {
        state: verdict === 'pass' ? 'satisfied' : 'not-satisfied',
        reason: verdict === 'pass' ? 'pass' : verdict === 'fail' ? 'fail' : 'other',
        remarks: cells.length === 0 ? 'No host reported this control in the period.' : VERDICT_REMARKS[verdict],
      },
    },
    'related-observations': nonEmpty(cells.map((c) => ({ 'observation-uuid': ids.observation(c.agentId, control) }))),
    'related-risks': nonEmpty(m.exceptions.filter((e) => e.control === control).map((e) => ({ 'risk-uuid': ids.risk(e.id) }))),
  };
}

function findingDescription(hosts: number, byVerdict: (readonly [Verdict, string[]])[]): string {
  if (hosts === 0) return 'No host reported this control in the period.';
  return [
    `Over the period, ${plural(hosts, 'host')}:`,
    '',
    ...byVerdict.filter(([, names]) => names.length > 0).map(([v, names]) => `- ${v}: ${names.join(', ')}`),
  ].join('\n');
}

/** A policy exception: a deviation the customer approved, with its justification, approver and expiry. */
function exceptionRisk({ model: m, ids }: Ctx, e: AuditException): Json {
  const covered = m.cells.filter((c) => c.control === e.control && globMatches(e.hosts, c.hostname));
  const expiredInPeriod = Date.parse(e.expires) < Date.parse(m.period.to);
  return {
    uuid: ids.risk(e.id),
    title: `Exception ${e.id}: ${e.control} on ${e.hosts}`,
    description:
      `An exception in the customer's policy waives failures of \`${e.control}\` on hosts matching \`${e.hosts}\` until ${e.expires}` +
      `${expiredInPeriod ? ' (it expired within the period)' : ''}. It waived ${plural(e.waivedResults, 'failing result')} in the period.`,
    statement: `Justification: ${e.justification}\n\nApproved by ${e.approver}; expires ${e.expires}.`,
    props: props([
      ['exception-id', e.id],
      ['control-id', e.control],
      ['hosts', e.hosts],
      ['justification', e.justification],
      ['approver', e.approver],
      ['expires', e.expires],
      ['waived-results', e.waivedResults],
      ...e.policyVersions.map((v): [string, number] => ['policy-version', v]),
    ]),
    status: 'deviation-approved',
    deadline: e.expires,
    'related-observations': nonEmpty(covered.map((c) => ({ 'observation-uuid': ids.observation(c.agentId, c.control) }))),
  };
}

// ---------------------------------------------------------------------------------------------
// Back matter: the bundle files the results cite, each with its SHA-256.

function bundleResources({ model: m, ids }: Ctx): Json[] {
  const files = new Map<string, { ref: FileRef; description: string }>();
  const add = (ref: FileRef, description: string) => {
    const seen = files.get(ref.path);
    if (seen && seen.ref.sha256 !== ref.sha256) {
      throw new Error(`audit model names ${ref.path} with two hashes (${seen.ref.sha256}, ${ref.sha256})`);
    }
    if (!seen) files.set(ref.path, { ref, description });
  };
  const hostname = new Map(m.hosts.map((h) => [h.agentId, h.hostname]));
  for (const h of m.hosts) for (const f of h.evidence) add(f, `Signed result envelopes of ${h.hostname}, one day.`);
  for (const c of m.cells) for (const f of c.evidence) add(f, `Signed result envelopes of ${hostname.get(c.agentId) ?? c.hostname}, one day.`);
  add(m.log.end.file, 'The signed log checkpoint at the end of the period.');
  if (m.log.start) add(m.log.start.file, 'The signed log checkpoint at the start of the period.');
  add(m.log.entries, 'The log entries of the period.');
  add(m.collector.key, "The collector's public key.");
  for (const p of m.policyVersions) add(p.file, `Policy version ${p.version}.`);
  return [...files.values()]
    .sort((a, b) => (a.ref.path < b.ref.path ? -1 : a.ref.path > b.ref.path ? 1 : 0))
    .map(({ ref, description }) => ({
      uuid: ids.resource(ref.path),
      title: ref.path,
      description,
      rlinks: [{ href: bundleHref(ref.path), hashes: [{ algorithm: 'SHA-256', value: ref.sha256 }] }],
    }));
}

// ---------------------------------------------------------------------------------------------

/** The default export seed: the log's root hash at the period's end, the period, and the vendor. */
export const defaultUuidSeed = (model: AuditModel) => `${model.log.end.rootHash}\0${model.period.from}\0${model.period.to}\0${model.vendor}`;

/** The seed of what every bundle of one vendor's log names alike: the log's origin and the vendor. */
const subjectSeed = (model: AuditModel) => `${model.collector.origin}\0${model.vendor}`;

export function oscalDocuments(model: AuditModel, opts: { uuidSeed?: string } = {}): OscalDocuments {
  const ctx: Ctx = { model, ids: identifiers(opts.uuidSeed ?? defaultUuidSeed(model), subjectSeed(model)) };
  return {
    ssp: plain(systemSecurityPlan(ctx)),
    assessmentPlan: plain(assessmentPlan(ctx)),
    assessmentResults: plain(assessmentResults(ctx)),
  };
}

/** Plain JSON: the optional fields left undefined (OSCAL has no empty lists) are dropped. */
const plain = (doc: Json): object => JSON.parse(JSON.stringify(doc)) as object;
