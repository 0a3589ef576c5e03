// Strict JSON for signed bodies: JSON.parse keeps the last of duplicate keys and ignores
// surrounding white space, so two different byte strings could carry one meaning to one reader
// and another meaning to a different one. This module refuses duplicate keys, a byte-order mark,
// white space around the value, and nesting deeper than 64.
//
// Two ways to the same answer: a fast check for the common case (JSON.parse, then the keys written
// in the text counted against the keys parsed: a duplicate is a key written twice and kept once),
// and a scanner that finds the exact fault and its offset. Anything the fast check does not
// accept goes to the scanner, so the scanner alone decides what is refused and how it is reported.
import { CollectorError } from './errors.js';

export class StrictJsonError extends Error {
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(`${message} at byte ${offset}`);
    this.name = 'StrictJsonError';
  }
}

const MAX_DEPTH = 64;
/** A number or literal, matched where the scanner stands (sticky: nothing is copied). */
const SCALAR = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null/y;

const isSpace = (c: number) => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;

/** Keys written in a valid JSON text: strings followed by ":" (-1 if a string does not end). */
function keysWritten(text: string): number {
  let keys = 0;
  for (let open = text.indexOf('"'); open !== -1; ) {
    let close = text.indexOf('"', open + 1);
    for (;;) {
      if (close === -1) return -1;
      let slashes = 0;
      while (text.charCodeAt(close - 1 - slashes) === 0x5c) slashes++;
      if (slashes % 2 === 0) break;
      close = text.indexOf('"', close + 1); // that quote was escaped
    }
    let k = close + 1;
    while (isSpace(text.charCodeAt(k))) k++;
    if (text.charCodeAt(k) === 0x3a) keys++;
    open = text.indexOf('"', close + 1); // between strings a valid text has no quote
  }
  return keys;
}

/** Keys of every object in a parsed value, or -1 past the nesting limit (the scanner then reports it). */
function keysParsed(v: unknown, depth: number): number {
  if (depth > MAX_DEPTH) return -1;
  if (typeof v !== 'object' || v === null) return 0;
  let keys = 0;
  const values = Array.isArray(v) ? (v as unknown[]) : Object.values(v);
  if (!Array.isArray(v)) keys += values.length;
  for (const x of values) {
    const n = keysParsed(x, depth + 1);
    if (n < 0) return -1;
    keys += n;
  }
  return keys;
}

export function parseStrictJson(bytes: Buffer): unknown {
  const text = bytes.toString('utf8');
  // Invalid UTF-8 decodes to U+FFFD; refuse it rather than verify one text and parse another.
  if (text.includes('\uFFFD') && !Buffer.from(text, 'utf8').equals(bytes)) throw new StrictJsonError('invalid UTF-8', 0);
  const first = text.charCodeAt(0);
  if (first !== 0xfeff && !isSpace(first) && !isSpace(text.charCodeAt(text.length - 1))) {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      return scanStrictJson(text); // throws, saying where
    }
    const keys = keysParsed(value, 0);
    if (keys >= 0 && keys === keysWritten(text)) return value;
  }
  return scanStrictJson(text);
}

/** The scanner: refuses with the fault and its offset, or parses. `parseStrictJson` answers the same, faster. */
export function scanStrictJson(text: string): unknown {
  let i = 0;

  const ws = () => {
    while (i < text.length && isSpace(text.charCodeAt(i))) i++;
  };

  /** Skips a string; decodes it only for a key (values are decoded by JSON.parse at the end). */
  const string = (decode: boolean): string => {
    const start = i;
    let escaped = false;
    i++; // opening quote
    while (i < text.length) {
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        i++;
        if (!decode) return '';
        return escaped ? (JSON.parse(text.slice(start, i)) as string) : text.slice(start + 1, i - 1);
      }
      if (c === 0x5c) {
        escaped = true;
        i += 2;
      } else if (c < 0x20) throw new StrictJsonError('control character in string', i);
      else i++;
    }
    throw new StrictJsonError('unterminated string', start);
  };

  const value = (depth: number): void => {
    if (depth > MAX_DEPTH) throw new StrictJsonError('nested too deeply', i);
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      const keys = new Set<string>();
      ws();
      if (text[i] === '}') {
        i++;
        return;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') throw new StrictJsonError('expected a key', i);
        const keyAt = i;
        const key = string(true);
        if (keys.has(key)) throw new StrictJsonError(`duplicate key ${JSON.stringify(key)}`, keyAt);
        keys.add(key);
        ws();
        if (text[i] !== ':') throw new StrictJsonError('expected ":"', i);
        i++;
        value(depth + 1);
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') {
          i++;
          return;
        }
        throw new StrictJsonError('expected "," or "}"', i);
      }
    }
    if (c === '[') {
      i++;
      ws();
      if (text[i] === ']') {
        i++;
        return;
      }
      for (;;) {
        value(depth + 1);
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') {
          i++;
          return;
        }
        throw new StrictJsonError('expected "," or "]"', i);
      }
    }
    if (c === '"') {
      string(false);
      return;
    }
    // Numbers and literals: JSON.parse below validates their exact grammar.
    SCALAR.lastIndex = i;
    const m = SCALAR.exec(text);
    if (m === null) throw new StrictJsonError('unexpected token', i);
    i += m[0].length;
  };

  if (text.charCodeAt(0) === 0xfeff) throw new StrictJsonError('byte-order mark', 0);
  // The stored bytes are the signed bytes: no padding around the value either.
  if (/^\s/.test(text)) throw new StrictJsonError('white space before the JSON value', 0);
  value(0);
  if (i !== text.length) throw new StrictJsonError('trailing bytes after the JSON value', i);
  return JSON.parse(text);
}

/** A request body as strict JSON, or COL_ERR_MALFORMED saying why not. */
export function parseRequestJson(bytes: Buffer): unknown {
  try {
    return parseStrictJson(bytes);
  } catch (err) {
    throw new CollectorError('COL_ERR_MALFORMED', err instanceof StrictJsonError ? `the body is not strict JSON: ${err.message}` : 'the body is not JSON');
  }
}
