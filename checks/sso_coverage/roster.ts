// The staff roster: CSV (header row) or JSON (an array of objects), one row per person with
// id, email, login, employeeNumber, start and end. Pure: strings in, typed rows out.
import { CheckError } from '../errors.js';

export type JoinOn = 'email' | 'login' | 'employeeNumber';

export interface RosterRow {
  id: string;
  email: string | null;
  login: string | null;
  employeeNumber: string | null;
  /** ISO instants; a date-only start is that day's 00:00 UTC, a date-only end the next day's. */
  start: string | null;
  end: string | null;
  /** Where the row came from, for error messages (`roster.csv:12`). */
  where: string;
}

const FIELDS = ['id', 'email', 'login', 'employeeNumber', 'start', 'end'] as const;
type Field = (typeof FIELDS)[number];

function fail(message: string, where: string): never {
  throw new CheckError('CHK_ERR_PARSE', message, { subject: where });
}

/** RFC 4180 records: quoted fields may hold commas, quotes ("") and line breaks. */
export function parseCsv(text: string, where: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  let atFieldStart = true;
  for (; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i++;
        } else quoted = false;
      } else field += c;
      continue;
    }
    if (c === '"' && atFieldStart) {
      quoted = true;
      atFieldStart = false;
    } else if (c === ',') {
      row.push(field);
      field = '';
      atFieldStart = true;
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
      atFieldStart = true;
    } else {
      field += c;
      atFieldStart = false;
    }
  }
  if (quoted) fail('unterminated quoted field', where);
  if (field !== '' || row.length > 0) {
    row.push(field);
    rows.push(row);
  }
  // Blank lines are not people.
  return rows.filter((r) => !(r.length === 1 && r[0]!.trim() === ''));
}

const DATE_ONLY = /^(\d{4})-(\d{2})-(\d{2})$/;
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/;

/** `2026-01-31` as an end is 2026-02-01T00:00:00.000Z: the person works through the last day. */
export function parseRosterDate(value: string, edge: 'start' | 'end', where: string): string | null {
  const v = value.trim();
  if (v === '') return null;
  const d = DATE_ONLY.exec(v);
  if (d !== null) {
    const ms = Date.UTC(Number(d[1]), Number(d[2]) - 1, Number(d[3]) + (edge === 'end' ? 1 : 0));
    const check = new Date(Date.UTC(Number(d[1]), Number(d[2]) - 1, Number(d[3])));
    if (check.getUTCMonth() !== Number(d[2]) - 1 || check.getUTCDate() !== Number(d[3])) fail(`invalid ${edge} date "${v}"`, where);
    return new Date(ms).toISOString();
  }
  if (DATE_TIME.test(v)) {
    const ms = Date.parse(v);
    if (!Number.isNaN(ms)) return new Date(ms).toISOString();
  }
  return fail(`invalid ${edge} date "${v}" (use YYYY-MM-DD or an ISO 8601 date-time with an offset)`, where);
}

function normalizeHeader(h: string): Field | null {
  const k = h.trim().toLowerCase().replace(/[\s_-]/g, '');
  if (k === 'employeenumber') return 'employeeNumber';
  return (FIELDS as readonly string[]).includes(k) ? (k as Field) : null;
}

function toRow(values: Partial<Record<Field, string>>, where: string): RosterRow {
  const text = (f: Field): string | null => {
    const v = values[f]?.trim() ?? '';
    return v === '' ? null : v;
  };
  const id = text('id');
  if (id === null) fail('a roster row has no id', where);
  return {
    id,
    email: text('email'),
    login: text('login'),
    employeeNumber: text('employeeNumber'),
    start: parseRosterDate(values.start ?? '', 'start', where),
    end: parseRosterDate(values.end ?? '', 'end', where),
    where,
  };
}

export function parseRosterCsv(text: string, file: string): RosterRow[] {
  const records = parseCsv(text, file);
  const header = records.shift();
  if (header === undefined) fail('the roster is empty', file);
  const columns = header.map(normalizeHeader);
  if (!columns.includes('id')) fail('the roster header has no "id" column', file);
  return records.map((r, i) => {
    const where = `${file}:${i + 2}`;
    const values: Partial<Record<Field, string>> = {};
    r.forEach((v, j) => {
      const col = columns[j];
      if (col !== null && col !== undefined) values[col] = v;
    });
    return toRow(values, where);
  });
}

export function parseRosterJson(text: string, file: string): RosterRow[] {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    return fail('the roster is not valid JSON', file);
  }
  if (!Array.isArray(data)) fail('a JSON roster must be an array of objects', file);
  return data.map((item: unknown, i) => {
    const where = `${file}[${i}]`;
    if (item === null || typeof item !== 'object' || Array.isArray(item)) fail('a roster entry is not an object', where);
    const values: Partial<Record<Field, string>> = {};
    for (const [k, v] of Object.entries(item)) {
      const col = normalizeHeader(k);
      if (col === null || v === null || v === undefined) continue;
      if (typeof v !== 'string' && typeof v !== 'number') fail(`roster field "${k}" must be a string`, where);
      values[col] = String(v);
    }
    return toRow(values, where);
  });
}

export function parseRoster(text: string, file: string, format: 'auto' | 'csv' | 'json'): RosterRow[] {
  let f = format;
  if (f === 'auto') {
    if (/\.json$/i.test(file)) f = 'json';
    else if (/\.csv$/i.test(file)) f = 'csv';
    else f = /^\s*\[/.test(text.replace(/^\uFEFF/, '')) ? 'json' : 'csv';
  }
  return f === 'json' ? parseRosterJson(text.replace(/^\uFEFF/, ''), file) : parseRosterCsv(text, file);
}

/** The value joined against Okta: e-mail and login compare case-insensitively. */
export function rosterKey(row: RosterRow, joinOn: JoinOn): string | null {
  switch (joinOn) {
    case 'email':
      return row.email?.toLowerCase() ?? null;
    case 'login':
      return (row.login ?? row.email)?.toLowerCase() ?? null;
    case 'employeeNumber':
      return row.employeeNumber ?? row.id;
  }
}

export function accountKey(profile: { email: string | null; login: string; employeeNumber: string | null }, joinOn: JoinOn): string | null {
  switch (joinOn) {
    case 'email':
      return profile.email?.toLowerCase() ?? null;
    case 'login':
      return profile.login.toLowerCase();
    case 'employeeNumber':
      return profile.employeeNumber;
  }
}

export type RosterState = 'current' | 'leaver' | 'future';

export interface RosterPerson {
  key: string;
  /** Roster ids of the rows merged under this key (a rehire has several). */
  ids: string[];
  state: RosterState;
  /** For a leaver: the latest end. */
  end: string | null;
}

/**
 * Merges rows by join key: a person is current if any row is current now, a leaver if every row
 * has ended (the latest end counts), and future if the only rows start later.
 */
export function rosterPeople(rows: readonly RosterRow[], joinOn: JoinOn, now: Date): RosterPerson[] {
  const byKey = new Map<string, RosterRow[]>();
  for (const r of rows) {
    const key = rosterKey(r, joinOn);
    if (key === null) fail(`a roster row has no ${joinOn === 'employeeNumber' ? 'employeeNumber or id' : joinOn === 'login' ? 'login or email' : 'email'} to join on`, r.where);
    const list = byKey.get(key) ?? [];
    list.push(r);
    byKey.set(key, list);
  }
  const t = now.getTime();
  const people: RosterPerson[] = [];
  for (const [key, list] of byKey) {
    const ids = [...new Set(list.map((r) => r.id))].sort();
    const isCurrent = (r: RosterRow) => (r.start === null || Date.parse(r.start) <= t) && (r.end === null || Date.parse(r.end) > t);
    const ended = (r: RosterRow) => r.end !== null && Date.parse(r.end) <= t;
    if (list.some(isCurrent)) people.push({ key, ids, state: 'current', end: null });
    else if (list.every(ended)) {
      const end = list.map((r) => r.end!).sort().at(-1)!;
      people.push({ key, ids, state: 'leaver', end });
    } else people.push({ key, ids, state: 'future', end: null });
  }
  return people.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}
