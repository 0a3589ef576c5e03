import { describe, expect, it } from 'vitest';
import { isCheckError } from '../../../checks/errors.js';
import { accountKey, parseCsv, parseRoster, parseRosterDate, rosterKey, rosterPeople } from '../../../checks/sso_coverage/roster.js';

const codeOf = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    return isCheckError(err) ? `${err.code} ${err.subject ?? ''}` : 'not a CheckError';
  }
  return 'no error';
};

describe('CSV', () => {
  it('reads quoted fields with commas, quotes and line breaks, CRLF, a BOM, and skips blank lines', () => {
    const text = '\uFEFFid,email\r\n1,"a,b@x"\r\n\r\n2,"say ""hi"""\n3,"two\nlines"\n';
    expect(parseCsv(text, 'r.csv')).toEqual([
      ['id', 'email'],
      ['1', 'a,b@x'],
      ['2', 'say "hi"'],
      ['3', 'two\nlines'],
    ]);
  });

  it('refuses an unterminated quote', () => {
    expect(codeOf(() => parseCsv('id\n"open', 'r.csv'))).toBe('CHK_ERR_PARSE r.csv');
  });
});

describe('roster rows', () => {
  it('reads a CSV roster with any header case and column order; dates become instants', () => {
    const rows = parseRoster('Email,ID,Employee Number,Start,End\nAda@Example.com,HR1,E1,2024-01-15,2026-01-31\nbob@example.com,HR2,,2025-06-01,\n', '/etc/roster.csv', 'auto');
    expect(rows.map(({ where: _w, ...r }) => r)).toEqual([
      { id: 'HR1', email: 'Ada@Example.com', login: null, employeeNumber: 'E1', start: '2024-01-15T00:00:00.000Z', end: '2026-02-01T00:00:00.000Z' },
      { id: 'HR2', email: 'bob@example.com', login: null, employeeNumber: null, start: '2025-06-01T00:00:00.000Z', end: null },
    ]);
    expect(rows[1]!.where).toBe('/etc/roster.csv:3');
  });

  it('reads a JSON roster (by extension, or by content when the name says nothing)', () => {
    const json = JSON.stringify([{ id: 'HR1', email: 'a@x', end: '2026-01-01T17:30:00+02:00', employeeNumber: 42, extra: { ignored: true } }]);
    const expected = [{ id: 'HR1', email: 'a@x', login: null, employeeNumber: '42', start: null, end: '2026-01-01T15:30:00.000Z' }];
    expect(parseRoster(json, '/r.json', 'auto').map(({ where: _w, ...r }) => r)).toEqual(expected);
    expect(parseRoster(json, '/roster', 'auto').map(({ where: _w, ...r }) => r)).toEqual(expected);
    expect(parseRoster('id,email\n1,a@x\n', '/roster', 'auto')).toHaveLength(1);
  });

  it.each([
    ['id,email\n,a@x\n', 'csv', 'CHK_ERR_PARSE /r:2'],
    ['email\na@x\n', 'csv', 'CHK_ERR_PARSE /r'],
    ['id,end\n1,2026-02-30\n', 'csv', 'CHK_ERR_PARSE /r:2'],
    ['id,end\n1,31/01/2026\n', 'csv', 'CHK_ERR_PARSE /r:2'],
    ['id,end\n1,2026-01-31T10:00:00\n', 'csv', 'CHK_ERR_PARSE /r:2'],
    ['{"id":1}', 'json', 'CHK_ERR_PARSE /r'],
    ['[1]', 'json', 'CHK_ERR_PARSE /r[0]'],
    ['[{"id":"1","email":["a"]}]', 'json', 'CHK_ERR_PARSE /r[0]'],
    ['not json', 'json', 'CHK_ERR_PARSE /r'],
    ['', 'csv', 'CHK_ERR_PARSE /r'],
  ] as const)('refuses %j (%s) with %s', (text, format, expected) => {
    expect(codeOf(() => parseRoster(text, '/r', format))).toBe(expected);
  });

  it('a date-only end is the end of that day, UTC; a start is its beginning', () => {
    expect(parseRosterDate('2024-02-29', 'end', 'w')).toBe('2024-03-01T00:00:00.000Z');
    expect(parseRosterDate('2024-12-31', 'end', 'w')).toBe('2025-01-01T00:00:00.000Z');
    expect(parseRosterDate('2024-02-29', 'start', 'w')).toBe('2024-02-29T00:00:00.000Z');
    expect(parseRosterDate('  ', 'end', 'w')).toBeNull();
  });
});

describe('join keys', () => {
  const row = { id: 'HR7', email: 'Ada@Example.com', login: null, employeeNumber: null, start: null, end: null, where: 'w' };
  it('e-mail and login compare case-insensitively; login falls back to e-mail, employeeNumber to id', () => {
    expect(rosterKey(row, 'email')).toBe('ada@example.com');
    expect(rosterKey(row, 'login')).toBe('ada@example.com');
    expect(rosterKey({ ...row, login: 'ADA' }, 'login')).toBe('ada');
    expect(rosterKey(row, 'employeeNumber')).toBe('HR7');
    expect(rosterKey({ ...row, employeeNumber: 'E7' }, 'employeeNumber')).toBe('E7');
    expect(accountKey({ email: 'ADA@example.com', login: 'Ada.L@Example.com', employeeNumber: 'E7' }, 'login')).toBe('ada.l@example.com');
    expect(accountKey({ email: null, login: 'x', employeeNumber: null }, 'email')).toBeNull();
  });
});

describe('people', () => {
  const now = new Date('2026-03-10T12:00:00Z');
  const r = (id: string, email: string, start: string | null, end: string | null) => ({ id, email, login: null, employeeNumber: null, start, end, where: id });

  it('current, leaver (latest end) or future; a rehire is current', () => {
    const people = rosterPeople(
      [
        r('1', 'cur@x', '2020-01-01T00:00:00.000Z', null),
        r('2', 'left@x', '2020-01-01T00:00:00.000Z', '2026-03-01T00:00:00.000Z'),
        r('3', 'left@x', '2026-03-02T00:00:00.000Z', '2026-03-05T00:00:00.000Z'),
        r('4', 'soon@x', '2026-04-01T00:00:00.000Z', null),
        r('5', 'rehired@x', '2019-01-01T00:00:00.000Z', '2020-01-01T00:00:00.000Z'),
        r('6', 'rehired@x', '2026-01-01T00:00:00.000Z', null),
        r('7', 'lastday@x', null, '2026-03-10T12:00:00.000Z'),
      ],
      'email',
      now,
    );
    expect(people).toEqual([
      { key: 'cur@x', ids: ['1'], state: 'current', end: null },
      { key: 'lastday@x', ids: ['7'], state: 'leaver', end: '2026-03-10T12:00:00.000Z' },
      { key: 'left@x', ids: ['2', '3'], state: 'leaver', end: '2026-03-05T00:00:00.000Z' },
      { key: 'rehired@x', ids: ['5', '6'], state: 'current', end: null },
      { key: 'soon@x', ids: ['4'], state: 'future', end: null },
    ]);
  });

  it('a row without the join value is refused', () => {
    expect(codeOf(() => rosterPeople([r('1', '', null, null)].map((x) => ({ ...x, email: null })), 'email', now))).toBe('CHK_ERR_PARSE 1');
  });
});
