// The runner's contract: every failure becomes `unknown` with a code, never a pass and never a crash.
// Checks are defined inline; the HostIO is the real ReplayHostIO with a literal manifest.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import * as z from 'zod';
import { CHECK_ERROR_CODES, CheckError, type CheckErrorCode } from '../../checks/errors.js';
import { ReplayHostIO, UnrecordedCallError, type RecordedCall } from '../../checks/replay.js';
import { configFor, describeCode, evaluateFacts, runCheck, runChecks } from '../../checks/runner.js';
import type { AnyCheck, Check, CheckId, Evaluation, Finding, Platform } from '../../checks/types.js';

const ALL_CODES = Object.keys(CHECK_ERROR_CODES) as CheckErrorCode[];

const factsSchema = z.object({ open: z.number().int().min(0) }).strict();
const configSchema = z.object({ maxOpen: z.number().int().min(0).default(0) }).strict();
type Facts = z.infer<typeof factsSchema>;
type Config = z.infer<typeof configSchema>;

function judge(facts: Facts, config: Config): Evaluation {
  if (facts.open > config.maxOpen) {
    return { status: 'fail', reasons: [{ code: 'CHK_FAIL_TOO_MANY_OPEN', message: 'too many open', subject: String(facts.open) }] };
  }
  return { status: 'pass', reasons: [] };
}

/** A small check that passes with its default config (it collects no open things). */
function testCheck(over: Partial<Check<Config, Facts>> = {}): Check<Config, Facts> {
  return {
    id: 'vpn',
    version: '1.2.3',
    title: 'test check',
    platforms: ['linux'],
    sources: { linux: [] },
    configSchema,
    factsSchema,
    collect: async () => ({ open: 0 }),
    evaluate: judge,
    ...over,
  };
}

function throwing(thrown: unknown, id: CheckId = 'vpn'): Check<Config, Facts> {
  return testCheck({
    id,
    collect: async () => {
      throw thrown;
    },
  });
}

function replayIO(platform: Platform = 'linux', calls: RecordedCall[] = []): ReplayHostIO {
  return new ReplayHostIO({ version: 1, platform, calls });
}

function onlyReason(f: Finding): { code: string; message: string; subject?: string } {
  expect(f.reasons, JSON.stringify(f.reasons)).toHaveLength(1);
  return f.reasons[0]!;
}

describe('runCheck: the happy path', () => {
  it('collects through ctx.io and evaluates the facts', async () => {
    const io = replayIO('linux', [{ op: 'readFile', path: '/etc/open', content: '3\n' }]);
    let seenPlatform: Platform | undefined;
    const check = testCheck({
      collect: async (ctx) => {
        seenPlatform = ctx.platform;
        return { open: Number((await ctx.io.readFile('/etc/open')).trim()) };
      },
    });
    const finding = await runCheck(check, { io, configs: { vpn: { maxOpen: 5 } } });
    expect(finding.status).toBe('pass');
    expect(finding.facts).toEqual({ open: 3 });
    expect(seenPlatform).toBe(io.platform);
    io.assertComplete();
  });

  it('carries check, checkVersion, platform, collectedAt from the injected clock, and durationMs >= 0', async () => {
    const at = new Date(Date.UTC(2021, 4, 6, 7, 8, 9, 123));
    const check = testCheck({ id: 'usb_policy', version: '9.8.7', platforms: ['darwin'] });
    const io = replayIO('darwin');
    const finding = await runCheck(check, { io, now: () => at });
    expect(finding).toMatchObject({
      check: check.id,
      checkVersion: check.version,
      platform: io.platform,
      collectedAt: at.toISOString(),
    });
    expect(Number.isFinite(finding.durationMs)).toBe(true);
    expect(finding.durationMs).toBeGreaterThanOrEqual(0);
  });

  it('uses the real clock when no `now` is injected', async () => {
    const before = Date.now();
    const finding = await runCheck(testCheck(), { io: replayIO() });
    const at = Date.parse(finding.collectedAt);
    expect(at).toBeGreaterThanOrEqual(before);
    expect(at).toBeLessThanOrEqual(Date.now());
  });

  it('hands collect an AbortSignal that is not aborted while the budget lasts', async () => {
    let signal: AbortSignal | undefined;
    const check = testCheck({
      collect: async (ctx) => {
        signal = ctx.signal;
        return { open: 0 };
      },
    });
    const finding = await runCheck(check, { io: replayIO(), timeoutMs: 10_000 });
    expect(finding.status).toBe('pass');
    expect(signal).toBeInstanceOf(AbortSignal);
    expect(signal?.aborted).toBe(false);
  });
});

describe('runCheck: failures become unknown with a code', () => {
  it('an unsupported platform is unknown CHK_ERR_UNSUPPORTED_PLATFORM with facts null, and collect is not called', async () => {
    let collected = false;
    const check = testCheck({
      platforms: ['darwin', 'win32'],
      collect: async () => {
        collected = true;
        return { open: 0 };
      },
    });
    const finding = await runCheck(check, { io: replayIO('linux') });
    expect(finding.status).toBe('unknown');
    expect(onlyReason(finding).code).toBe('CHK_ERR_UNSUPPORTED_PLATFORM');
    expect(finding.facts).toBeNull();
    expect(finding.platform).toBe('linux');
    expect(collected).toBe(false);
  });

  it('a CheckError CHK_ERR_PERMISSION keeps its code and subject', async () => {
    const finding = await runCheck(throwing(new CheckError('CHK_ERR_PERMISSION', 'cannot read', { subject: '/etc/shadow' })), {
      io: replayIO(),
    });
    expect(finding.status).toBe('unknown');
    expect(finding.facts).toBeNull();
    expect(onlyReason(finding)).toMatchObject({ code: 'CHK_ERR_PERMISSION', subject: '/etc/shadow' });
  });

  it.each(['CHK_ERR_SOURCE_MISSING', 'CHK_ERR_PARSE'] as const)('a CheckError %s keeps its code', async (code) => {
    const finding = await runCheck(throwing(new CheckError(code, 'no luck')), { io: replayIO() });
    expect(finding.status).toBe('unknown');
    expect(finding.facts).toBeNull();
    const reason = onlyReason(finding);
    expect(reason.code).toBe(code);
    expect(reason).not.toHaveProperty('subject');
  });

  it('a HostIO failure reached through ctx.io becomes unknown with the recorded code', async () => {
    const io = replayIO('linux', [{ op: 'readFile', path: '/etc/missing', error: 'CHK_ERR_SOURCE_MISSING' }]);
    const check = testCheck({ collect: async (ctx) => ({ open: (await ctx.io.readFile('/etc/missing')).length }) });
    const finding = await runCheck(check, { io });
    expect(finding.status).toBe('unknown');
    expect(onlyReason(finding).code).toBe('CHK_ERR_SOURCE_MISSING');
    io.assertComplete();
  });

  it('a plain Error is unknown CHK_ERR_INTERNAL with facts null', async () => {
    const finding = await runCheck(throwing(new Error('boom')), { io: replayIO() });
    expect(finding.status).toBe('unknown');
    expect(finding.facts).toBeNull();
    const reason = onlyReason(finding);
    expect(reason.code).toBe('CHK_ERR_INTERNAL');
    expect(reason.message).toContain('boom');
  });

  it('a collect that throws synchronously (not async) is unknown CHK_ERR_INTERNAL', async () => {
    const check = testCheck({
      collect: () => {
        throw new TypeError('sync');
      },
    });
    const finding = await runCheck(check, { io: replayIO() });
    expect(finding.status).toBe('unknown');
    expect(onlyReason(finding).code).toBe('CHK_ERR_INTERNAL');
  });

  it('a collect that never resolves is unknown CHK_ERR_TIMEOUT within its budget, and ctx.signal is aborted', async () => {
    let signal: AbortSignal | undefined;
    let abortEvents = 0;
    const check = testCheck({
      collect: (ctx) => {
        signal = ctx.signal;
        ctx.signal.addEventListener('abort', () => {
          abortEvents += 1;
        });
        return new Promise<Facts>(() => {});
      },
    });
    const finding = await runCheck(check, { io: replayIO(), timeoutMs: 50 });
    expect(finding.status).toBe('unknown');
    expect(finding.facts).toBeNull();
    expect(onlyReason(finding).code).toBe('CHK_ERR_TIMEOUT');
    expect(signal?.aborted).toBe(true);
    expect(abortEvents).toBe(1);
  });

  it('a collect that honours ctx.signal inside an async function is still CHK_ERR_TIMEOUT', async () => {
    const check = testCheck({
      collect: async (ctx) => {
        await new Promise<never>((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)));
        return { open: 0 };
      },
    });
    const finding = await runCheck(check, { io: replayIO(), timeoutMs: 50 });
    expect(onlyReason(finding).code).toBe('CHK_ERR_TIMEOUT');
  });

  it(
    'a collect whose promise rejects as soon as the signal aborts is still CHK_ERR_TIMEOUT',
    async () => {
      const check = testCheck({
        collect: (ctx) => new Promise<Facts>((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason))),
      });
      const finding = await runCheck(check, { io: replayIO(), timeoutMs: 50 });
      expect(finding.status).toBe('unknown');
      expect(onlyReason(finding).code).toBe('CHK_ERR_TIMEOUT');
    },
  );

  it('facts outside factsSchema are unknown CHK_ERR_INTERNAL, and evaluate is not called', async () => {
    let evaluated = false;
    const check: AnyCheck = testCheck({
      collect: async () => ({ open: -1 }),
      evaluate: () => {
        evaluated = true;
        return { status: 'pass', reasons: [] };
      },
    });
    const finding = await runCheck(check, { io: replayIO() });
    expect(finding.status).toBe('unknown');
    expect(finding.facts).toBeNull();
    expect(onlyReason(finding).code).toBe('CHK_ERR_INTERNAL');
    expect(evaluated).toBe(false);
  });

  it('facts with an extra field (strict facts schema) are unknown CHK_ERR_INTERNAL', async () => {
    const check: AnyCheck = { ...testCheck(), collect: async () => ({ open: 0, sneaky: true }) };
    const finding = await runCheck(check, { io: replayIO() });
    expect(finding.status).toBe('unknown');
    expect(onlyReason(finding).code).toBe('CHK_ERR_INTERNAL');
  });

  it('an evaluate that throws is unknown CHK_ERR_INTERNAL, and the facts are kept', async () => {
    const check = testCheck({
      collect: async () => ({ open: 4 }),
      evaluate: () => {
        throw new RangeError('judge broke');
      },
    });
    const finding = await runCheck(check, { io: replayIO() });
    expect(finding.status).toBe('unknown');
    expect(onlyReason(finding).code).toBe('CHK_ERR_INTERNAL');
    expect(finding.facts).toEqual({ open: 4 });
  });

  it('an error with code REPLAY_UNRECORDED_CALL is rethrown, not hidden as unknown', async () => {
    await expect(runCheck(throwing(new UnrecordedCallError('readFile /x')), { io: replayIO() })).rejects.toBeInstanceOf(
      UnrecordedCallError,
    );
    const plain = Object.assign(new Error('harness'), { code: 'REPLAY_UNRECORDED_CALL' });
    await expect(runCheck(throwing(plain), { io: replayIO() })).rejects.toBe(plain);
  });

  it('an unrecorded call made through a ReplayHostIO rejects runCheck and is listed by the replay', async () => {
    const io = replayIO();
    const check = testCheck({ collect: async (ctx) => ({ open: (await ctx.io.readFile('/not/recorded')).length }) });
    await expect(runCheck(check, { io })).rejects.toMatchObject({ code: 'REPLAY_UNRECORDED_CALL' });
    expect(io.problems().unrecorded).toEqual(['readFile /not/recorded']);
  });
});

describe('runCheck: configuration', () => {
  const withOpen = (open: number): Check<Config, Facts> => testCheck({ collect: async () => ({ open }) });

  it('applies the schema defaults ({}) when no config is given', async () => {
    let seen: Config | undefined;
    const check = testCheck({
      collect: async () => ({ open: 2 }),
      evaluate: (facts, config) => {
        seen = config;
        return judge(facts, config);
      },
    });
    const finding = await runCheck(check, { io: replayIO() });
    expect(seen).toEqual(configSchema.parse({}));
    expect(finding.status).toBe('fail');
    expect(onlyReason(finding)).toMatchObject({ code: 'CHK_FAIL_TOO_MANY_OPEN', subject: '2' });
  });

  it('a valid config reaches evaluate and changes the status', async () => {
    const io = replayIO();
    const strictDefault = await runCheck(withOpen(2), { io });
    const lenient = await runCheck(withOpen(2), { io, configs: { vpn: { maxOpen: 2 } } });
    expect(strictDefault.status).toBe('fail');
    expect(lenient.status).toBe('pass');
    expect(lenient.reasons).toEqual([]);
  });

  it('a config keyed by another check id does not apply', async () => {
    const finding = await runCheck(withOpen(2), { io: replayIO(), configs: { usb_policy: { maxOpen: 99 } } });
    expect(finding.status).toBe('fail');
  });

  it.each([
    ['a value the schema rejects', { maxOpen: -1 }],
    ['a wrong type', { maxOpen: 'lots' }],
    ['an unknown field (strict schema)', { maxOpen: 5, typo: 1 }],
    ['not an object', 'maxOpen=5'],
  ])('an invalid config (%s) is unknown CHK_ERR_NOT_CONFIGURED, never pass', async (_label, raw) => {
    let evaluated = false;
    const check = testCheck({
      evaluate: () => {
        evaluated = true;
        return { status: 'pass', reasons: [] };
      },
    });
    const finding = await runCheck(check, { io: replayIO(), configs: { vpn: raw } });
    expect(finding.status).toBe('unknown');
    expect(onlyReason(finding).code).toBe('CHK_ERR_NOT_CONFIGURED');
    expect(evaluated).toBe(false);
  });

  it('a check that needs config which is not set is unknown CHK_ERR_NOT_CONFIGURED', async () => {
    const check: AnyCheck = { ...testCheck(), configSchema: z.object({ allowed: z.array(z.string()) }).strict() };
    const finding = await runCheck(check, { io: replayIO() });
    expect(finding.status).toBe('unknown');
    expect(onlyReason(finding).code).toBe('CHK_ERR_NOT_CONFIGURED');
  });
});

describe('configFor and evaluateFacts', () => {
  it('configFor applies defaults for undefined and null', () => {
    for (const raw of [undefined, null]) {
      const cfg = configFor(testCheck(), raw);
      expect(cfg).toEqual({ ok: true, config: configSchema.parse({}) });
    }
  });

  it('configFor returns the parsed config', () => {
    expect(configFor(testCheck(), { maxOpen: 7 })).toEqual({ ok: true, config: { maxOpen: 7 } });
  });

  it('configFor refuses a bad config with CHK_ERR_NOT_CONFIGURED naming the field', () => {
    const cfg = configFor(testCheck(), { maxOpen: -3 });
    expect(cfg.ok).toBe(false);
    if (cfg.ok) return;
    expect(cfg.reason.code).toBe('CHK_ERR_NOT_CONFIGURED');
    expect(cfg.reason.message).toContain('maxOpen');
  });

  it('evaluateFacts judges facts under a config', () => {
    expect(evaluateFacts(testCheck(), { open: 1 }, { maxOpen: 1 }).status).toBe('pass');
    expect(evaluateFacts(testCheck(), { open: 2 }, { maxOpen: 1 }).status).toBe('fail');
  });

  it('evaluateFacts: facts that do not match the schema are unknown CHK_ERR_PARSE', () => {
    const ev = evaluateFacts(testCheck(), { open: 'three' }, {});
    expect(ev.status).toBe('unknown');
    expect(ev.reasons.map((r) => r.code)).toEqual(['CHK_ERR_PARSE']);
  });

  it('evaluateFacts: a bad config is unknown CHK_ERR_NOT_CONFIGURED even when the facts would pass', () => {
    const ev = evaluateFacts(testCheck(), { open: 0 }, { maxOpen: 'x' });
    expect(ev.status).toBe('unknown');
    expect(ev.reasons.map((r) => r.code)).toEqual(['CHK_ERR_NOT_CONFIGURED']);
  });

  it('evaluateFacts: an evaluate that throws is unknown CHK_ERR_INTERNAL', () => {
    const check = testCheck({
      evaluate: () => {
        throw new Error('judge broke');
      },
    });
    const ev = evaluateFacts(check, { open: 0 }, {});
    expect(ev.status).toBe('unknown');
    expect(ev.reasons.map((r) => r.code)).toEqual(['CHK_ERR_INTERNAL']);
  });

  it('describeCode returns the documented meaning of every code, and undefined for others', () => {
    for (const code of ALL_CODES) expect(describeCode(code)).toBe(CHECK_ERROR_CODES[code]);
    expect(describeCode('CHK_ERR_NOPE')).toBeUndefined();
  });
});

describe('runChecks', () => {
  it('a throwing check never stops the others: the next check still runs and passes', async () => {
    const ran: string[] = [];
    const track = (id: CheckId, c: Check<Config, Facts>): Check<Config, Facts> => ({
      ...c,
      id,
      collect: (ctx) => {
        ran.push(id);
        return c.collect(ctx);
      },
    });
    const checks: AnyCheck[] = [
      track('vpn', throwing(new Error('first broke'))),
      track('usb_policy', testCheck()),
      track('credential_age', throwing(new CheckError('CHK_ERR_PARSE', 'bad'))),
      track('sso_coverage', testCheck()),
    ];
    const findings = await runChecks(checks, { io: replayIO() });
    expect(ran).toEqual(checks.map((c) => c.id));
    expect(findings.map((f) => [f.check, f.status, f.reasons[0]?.code])).toEqual([
      ['vpn', 'unknown', 'CHK_ERR_INTERNAL'],
      ['usb_policy', 'pass', undefined],
      ['credential_age', 'unknown', 'CHK_ERR_PARSE'],
      ['sso_coverage', 'pass', undefined],
    ]);
  });

  it('a check that times out does not stop the next one', async () => {
    const hang: AnyCheck = testCheck({ id: 'vpn', collect: () => new Promise<Facts>(() => {}) });
    const ok: AnyCheck = testCheck({ id: 'open_ports' });
    const findings = await runChecks([hang, ok], { io: replayIO(), timeoutMs: 50 });
    expect(findings.map((f) => [f.check, f.status, f.reasons[0]?.code])).toEqual([
      ['vpn', 'unknown', 'CHK_ERR_TIMEOUT'],
      ['open_ports', 'pass', undefined],
    ]);
  });

  it('applies each check its own config', async () => {
    const a: AnyCheck = testCheck({ id: 'vpn', collect: async () => ({ open: 3 }) });
    const b: AnyCheck = testCheck({ id: 'usb_policy', collect: async () => ({ open: 3 }) });
    const findings = await runChecks([a, b], { io: replayIO(), configs: { vpn: { maxOpen: 3 }, usb_policy: { maxOpen: 2 } } });
    expect(findings.map((f) => f.status)).toEqual(['pass', 'fail']);
  });

  it('an unrecorded replay call still reaches the caller from runChecks', async () => {
    const check: AnyCheck = testCheck({ collect: async (ctx) => ({ open: (await ctx.io.readDir('/nowhere')).length }) });
    await expect(runChecks([testCheck({ id: 'usb_policy' }), check], { io: replayIO() })).rejects.toBeInstanceOf(UnrecordedCallError);
  });
});

// Values a buggy check might throw, nullish and null-prototype ones included.
const codeArb = fc.constantFrom(...ALL_CODES);
const thrownArb: fc.Arbitrary<unknown> = fc.oneof(
  fc.string(),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.bigInt(),
  fc.array(fc.anything(), { maxLength: 3 }),
  fc.object(),
  fc.constant(null),
  fc.constant(undefined),
  fc.constant(Object.create(null) as unknown),
  fc.string().map((m) => new Error(m)),
  fc.string().map((m) => new TypeError(m)),
  fc.record(
    { message: fc.option(fc.anything(), { nil: undefined }), code: fc.option(fc.string(), { nil: undefined }) },
    { noNullPrototype: false },
  ),
  fc.tuple(codeArb, fc.string(), fc.option(fc.string(), { nil: undefined })).map(
    ([code, message, subject]) => new CheckError(code, message, subject === undefined ? undefined : { subject }),
  ),
);

describe('runCheck: property', () => {
  it('for arbitrary thrown values, runCheck resolves to unknown with a known code, never pass, never rejects', async () => {
    await fc.assert(
      fc.asyncProperty(thrownArb, async (thrown) => {
        const finding = await runCheck(throwing(thrown), { io: replayIO() });
        expect(finding.status).toBe('unknown');
        expect(finding.facts).toBeNull();
        expect(ALL_CODES).toContain(onlyReason(finding).code);
      }),
    );
  });

  it('a thrown CheckError keeps its exact code and subject', async () => {
    await fc.assert(
      fc.asyncProperty(codeArb, fc.string(), fc.option(fc.string(), { nil: undefined }), async (code, message, subject) => {
        const err = new CheckError(code, message, subject === undefined ? undefined : { subject });
        const finding = await runCheck(throwing(err), { io: replayIO() });
        expect(finding.status).toBe('unknown');
        expect(finding.reasons).toEqual([subject === undefined ? { code, message } : { code, message, subject }]);
      }),
    );
  });

  it('for arbitrary values thrown by evaluate, runCheck resolves to unknown CHK_ERR_INTERNAL', async () => {
    await fc.assert(
      fc.asyncProperty(thrownArb, async (thrown) => {
        const check = testCheck({
          evaluate: () => {
            throw thrown;
          },
        });
        const finding = await runCheck(check, { io: replayIO() });
        expect(finding.status).toBe('unknown');
        expect(onlyReason(finding).code).toBe('CHK_ERR_INTERNAL');
      }),
    );
  });

  it('an arbitrary thrown value with code REPLAY_UNRECORDED_CALL is the one thing that rejects', async () => {
    await fc.assert(
      fc.asyncProperty(fc.object(), async (extra) => {
        const thrown = { ...extra, code: 'REPLAY_UNRECORDED_CALL' };
        await expect(runCheck(throwing(thrown), { io: replayIO() })).rejects.toBe(thrown);
      }),
    );
  });

  // Values that break naive `.code` / `.message` / String() handling.
  it.each([
    ['null', null],
    ['undefined', undefined],
  ])('a collect that throws %s is unknown CHK_ERR_INTERNAL', async (_l, thrown) => {
    const finding = await runCheck(throwing(thrown), { io: replayIO() });
    expect(finding.status).toBe('unknown');
  });

  it(
    'a collect that throws a null-prototype object is unknown (it cannot even be printed)',
    async () => {
      const finding = await runCheck(throwing(Object.create(null)), { io: replayIO() });
      expect(finding.status).toBe('unknown');
    },
  );

  it.each([
    ['null', null],
    ['undefined', undefined],
  ])('an evaluate that throws %s is unknown CHK_ERR_INTERNAL', async (_l, thrown) => {
    const check = testCheck({
      evaluate: () => {
        throw thrown;
      },
    });
    const finding = await runCheck(check, { io: replayIO() });
    expect(finding.status).toBe('unknown');
  });
});

// In vitest the worker keeps the event loop alive; the agent is a bare node process, where a collect
// stuck on a promise that holds no handle must still end in a finding when the budget fires.
describe('runCheck in a bare node process (the built runner, as the agent runs it)', () => {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
  const builtRunner = path.join(root, 'dist/checks/runner.js');
  let child: { exitCode: number | null; stdout: string; stderr: string } | undefined;

  beforeAll(async () => {
    if (!existsSync(builtRunner)) return;
    const script = `
      const { runCheck } = await import(${JSON.stringify(pathToFileURL(builtRunner).href)});
      const schema = { safeParse: (v) => ({ success: true, data: v }) };
      const io = { platform: 'linux' };
      const check = { id: 'vpn', version: '1', title: 't', platforms: ['linux'], sources: {},
        configSchema: schema, factsSchema: schema, collect: () => new Promise(() => {}),
        evaluate: () => ({ status: 'pass', reasons: [] }) };
      console.log('started');
      const main = async () => { const f = await runCheck(check, { io, timeoutMs: 50 }); console.log(JSON.stringify(f)); };
      main();
    `;
    child = await new Promise((resolve) => {
      execFile(process.execPath, ['--input-type=module', '-e', script], { timeout: 10_000 }, (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : null;
        resolve({ exitCode: code, stdout, stderr });
      });
    });
  });

  it('the child process loaded the built runner (dist/ is built by the global setup)', () => {
    expect(existsSync(builtRunner), `${builtRunner} is missing: run npm run build`).toBe(true);
    expect(child?.stderr).toBe('');
    expect(child?.stdout).toContain('started');
  });

  it('a hung collect still ends in a CHK_ERR_TIMEOUT finding, not a silent exit', () => {
    expect(child?.stdout).toContain('CHK_ERR_TIMEOUT');
  });
});
