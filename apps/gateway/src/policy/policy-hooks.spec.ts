import { describe, expect, it } from 'vitest';
import { isDefaultTextCopy, parseCopyTo } from './policy-hooks.js';

describe('parseCopyTo', () => {
  it.each([
    // the tricky ones first: a literal that looks like the end of the subquery
    { name: 'literal with ") to stdout" in the subquery', sql: `COPY (select a, ') to stdout' from t) TO STDOUT (FORMAT csv)`, expected: { source: `select a, ') to stdout' from t`, options: '(FORMAT csv)' } },
    { name: 'options hiding a fake end: the source does not parse', sql: `COPY (select email from t) TO STDOUT (format csv, null ') to stdout')`, expected: { source: `select email from t) TO STDOUT (format csv, null '`, options: `')` } },
    { name: 'psql \\copy with csv', sql: 'COPY  ( select 1 ) TO STDOUT with (format csv, header)', expected: { source: ' select 1 ', options: 'with (format csv, header)' } },
    { name: 'pg_dump data', sql: 'COPY public.people (id, name) TO stdout;', expected: { source: 'SELECT id, name FROM public.people', options: '' } },
    { name: 'legacy CSV keyword', sql: 'copy t to stdout csv header', expected: { source: 'SELECT * FROM t', options: 'csv header' } },
    { name: 'quoted table', sql: 'COPY "Odd"."T" TO STDOUT', expected: { source: 'SELECT * FROM "Odd"."T"', options: '' } },
    { name: 'COPY FROM', sql: 'COPY t FROM STDIN', expected: null },
    { name: 'not first', sql: 'select 1; COPY t TO STDOUT', expected: null },
  ])('$name', ({ sql, expected }) => {
    expect(parseCopyTo(sql)).toEqual(expected);
  });
});

describe('isDefaultTextCopy', () => {
  it.each([
    { options: '', expected: true },
    { options: '(FORMAT text)', expected: true },
    { options: "WITH ( format 'text' )", expected: true },
    { options: '(FORMAT csv)', expected: false },
    { options: 'csv', expected: false },
    { options: "(DELIMITER ',')", expected: false },
    { options: '(FORMAT text, DELIMITER \'|\')', expected: false },
    { options: "(ENCODING 'LATIN1')", expected: false },
    { options: 'binary', expected: false },
    { options: '-- comment', expected: false },
  ])('$options → $expected', ({ options, expected }) => {
    expect(isDefaultTextCopy(options)).toBe(expected);
  });
});
