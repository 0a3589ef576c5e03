import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { StrictJsonError, parseStrictJson } from '../../collector/strict-json.js';

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
