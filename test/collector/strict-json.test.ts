import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { StrictJsonError, parseStrictJson, scanStrictJson } from '../../collector/strict-json.js';

const parse = (s: string) => parseStrictJson(Buffer.from(s, 'utf8'));

describe('strict JSON', () => {
  it('parses what JSON.parse parses, for compact JSON of any shape', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const text = JSON.stringify(v);
        expect(parse(text)).toEqual(JSON.parse(text));
      }),
    );
  });

  it.each([
    ['a duplicate key', '{"a":1,"a":2}', 'duplicate key'],
    ['a duplicate key in a nested object', '{"x":{"b":1,"c":2,"b":3}}', 'duplicate key'],
    ['a duplicate written with an escape', '{"a":1,"\\u0061":2}', 'duplicate key'],
    ['trailing bytes', '{"a":1}x', 'trailing'],
    ['a second value', '{"a":1}{"a":1}', 'trailing'],
    ['a trailing newline', '{"a":1}\n', 'trailing'],
    ['leading white space', ' {"a":1}', 'white space'],
    ['a byte-order mark', '\uFEFF{"a":1}', 'byte-order'],
    ['a control character in a string', '{"a":"x\ny"}', 'control'],
    ['an unterminated string', '{"a":"x', 'unterminated'],
    ['a bare word', '{"a":nope}', 'unexpected'],
  ])('refuses %s', (_label, text, message) => {
    expect(() => parse(text)).toThrow(StrictJsonError);
    expect(() => parse(text)).toThrow(message);
  });

  it('refuses invalid UTF-8 instead of reading it as a replacement character', () => {
    expect(() => parseStrictJson(Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d]))).toThrow('UTF-8');
    expect(parse('{"a":"\uFFFD"}')).toEqual({ a: '\uFFFD' });
  });

  it('refuses absurd nesting without blowing the stack', () => {
    expect(() => parse('['.repeat(10_000) + ']'.repeat(10_000))).toThrow('nested too deeply');
  });

  it('throws only StrictJsonError or SyntaxError on random bytes, never anything else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        try {
          parseStrictJson(Buffer.from(bytes));
        } catch (err) {
          expect(err instanceof StrictJsonError || err instanceof SyntaxError).toBe(true);
        }
      }),
    );
  });
});

describe('strict JSON: the fast check answers as the scanner does', () => {
  const outcome = (f: () => unknown) => {
    try {
      return { value: f() };
    } catch (err) {
      return { error: err instanceof StrictJsonError ? 'strict' : err instanceof SyntaxError ? 'syntax' : String(err) };
    }
  };
  // JSON texts with the faults the fast check must not let through: a member written twice (at
  // any depth, maybe escaped), white space around the value, a byte-order mark, deep nesting.
  const text = fc
    .tuple(fc.jsonValue({ maxDepth: 4 }), fc.nat(), fc.constantFrom('', ' ', '\n', '\uFEFF'), fc.constantFrom('', ' ', '\t', 'x'), fc.boolean(), fc.nat({ max: 70 }))
    .map(([v, pick, before, after, escape, depth]) => {
      let t = JSON.stringify(v);
      const members = [...t.matchAll(/"((?:[^"\\]|\\.)*)":/g)];
      if (members.length > 0 && pick % 3 === 0) {
        // Write one member again, beside the first: a duplicate key.
        const m = members[pick % members.length]!;
        const key = escape && m[1]!.length > 0 ? `\\u${m[1]!.charCodeAt(0).toString(16).padStart(4, '0')}${m[1]!.slice(1)}` : m[1];
        t = `${t.slice(0, m.index)}"${key}":0,${t.slice(m.index)}`;
      }
      if (pick % 5 === 1) t = '['.repeat(depth) + t + ']'.repeat(depth);
      return before + t + after;
    });

  it('accepts, refuses and parses exactly what the scanner does', () => {
    fc.assert(
      fc.property(text, (t) => {
        expect(outcome(() => parse(t))).toEqual(outcome(() => scanStrictJson(t)));
      }),
      { numRuns: 2000 },
    );
  });

  it('finds a duplicate key hidden by an escaped quote or backslash in a string', () => {
    for (const t of ['{"a\\"":1,"a\\"":2}', '{"a\\\\":1,"a\\\\":2}', '{"x":"\\":","x":1}', '{"k":"a\\\\","k":2}']) {
      expect(() => parse(t)).toThrow('duplicate key');
    }
    expect(parse('{"x":"\\":","y":1}')).toEqual({ x: '":', y: 1 });
  });
});
