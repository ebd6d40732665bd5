import { beforeAll, describe, expect, it } from 'vitest';
import { parseCopyToFormat } from './copy-options.js';
import { initPolicyEngine } from './policy-engine.js';

beforeAll(async () => {
  await initPolicyEngine();
});

const text = (o: Record<string, unknown> = {}) => ({ kind: 'format', format: { format: 'text', delimiter: '\t', null: '\\N', header: false, ...o } });
const csv = (o: Record<string, unknown> = {}) => ({ kind: 'format', format: { format: 'csv', delimiter: ',', quote: '"', escape: '"', null: '', header: false, forceQuote: [], ...o } });

describe('parseCopyToFormat: the format a COPY … TO STDOUT writes', () => {
  it.each([
    // the legacy syntax psql and old scripts use parses to the same options
    { name: 'legacy CSV HEADER', sql: 'COPY t TO STDOUT CSV HEADER', expected: csv({ header: true }) },
    { name: 'legacy WITH CSV QUOTE AS, DELIMITER AS, NULL AS, ESCAPE, FORCE QUOTE', sql: `COPY t TO STDOUT WITH CSV QUOTE AS '"' DELIMITER AS ';' NULL AS 'x' ESCAPE '\\' FORCE QUOTE a, b`, expected: csv({ delimiter: ';', null: 'x', escape: '\\', forceQuote: ['a', 'b'] }) },
    { name: 'legacy FORCE QUOTE *', sql: 'COPY t TO STDOUT WITH CSV FORCE QUOTE *', expected: csv({ forceQuote: '*' }) },
    { name: 'legacy DELIMITER and NULL in text', sql: "copy t to stdout delimiter '|' null ''", expected: text({ delimiter: '|', null: '' }) },
    { name: 'psql \\copy (query) with csv, header', sql: 'COPY  ( select 1 ) TO STDOUT with (format csv, header)', expected: csv({ header: true }) },
    { name: 'option list with FORCE_QUOTE (cols), ESCAPE, quoted identifier', sql: `COPY t TO STDOUT (FORMAT csv, FORCE_QUOTE (a, "B c"), ESCAPE E'\\\\', QUOTE '''')`, expected: csv({ forceQuote: ['a', 'B c'], escape: '\\', quote: "'" }) },
    { name: 'HEADER 0 / off / false', sql: 'COPY t TO STDOUT (FORMAT csv, HEADER 0)', expected: csv() },
    { name: 'HEADER on', sql: "COPY t TO STDOUT (FORMAT text, HEADER 'on')", expected: text({ header: true }) },
    { name: 'HEADER off', sql: 'COPY t TO STDOUT (HEADER off)', expected: text() },
    { name: 'a numeric delimiter in CSV', sql: 'COPY t TO STDOUT (FORMAT csv, DELIMITER 1)', expected: csv({ delimiter: '1' }) },
    { name: 'ENCODING utf-8 in any spelling', sql: "COPY t TO STDOUT (FORMAT csv, ENCODING 'Utf-8')", expected: csv() },
    { name: 'ENCODING unicode', sql: "COPY t TO STDOUT (ENCODING 'UNICODE')", expected: text() },
    { name: 'no options', sql: 'COPY public.people (id, name) TO stdout;', expected: text() },
    { name: 'FORMAT text spelled out', sql: "COPY t TO STDOUT WITH (FORMAT 'text')", expected: text() },
    { name: 'a tab delimiter in CSV', sql: "COPY t TO STDOUT (FORMAT csv, DELIMITER E'\\t')", expected: csv({ delimiter: '\t' }) },
  ])('$name', ({ sql, expected }) => {
    expect(parseCopyToFormat(sql)).toEqual(expected);
  });

  it.each([
    // what cannot be masked safely, or is not understood exactly, is refused
    { name: 'binary', sql: 'COPY t TO STDOUT BINARY', reason: /binary/ },
    { name: 'binary in an option list', sql: 'COPY t TO STDOUT (FORMAT binary)', reason: /binary/ },
    { name: 'an encoding other than UTF-8', sql: "COPY t TO STDOUT (FORMAT csv, ENCODING 'LATIN1')", reason: /ENCODING 'LATIN1': the gateway masks UTF-8 output only/ },
    { name: 'SJIS (ASCII bytes inside characters)', sql: "COPY t TO STDOUT WITH (ENCODING 'SJIS')", reason: /UTF-8/ },
    { name: 'a multi-byte delimiter', sql: "COPY t TO STDOUT (FORMAT csv, DELIMITER '€')", reason: /ASCII/ },
    { name: 'a two-character delimiter', sql: "COPY t TO STDOUT (DELIMITER '||')", reason: /single one-byte/ },
    { name: 'a newline quote', sql: "COPY t TO STDOUT (FORMAT csv, QUOTE E'\\n')", reason: /newline/ },
    { name: 'an escape equal to the delimiter', sql: "COPY t TO STDOUT (FORMAT csv, ESCAPE ',')", reason: /escape equal to the delimiter/ },
    { name: 'quote equal to the delimiter', sql: "COPY t TO STDOUT (FORMAT csv, QUOTE ',')", reason: /must be different/ },
    { name: 'a backslash delimiter in text', sql: "COPY t TO STDOUT (DELIMITER '\\', NULL 'x')", reason: /cannot be "\\"/ },
    { name: 'a lower-case letter delimiter in text', sql: "COPY t TO STDOUT (DELIMITER 'n')", reason: /cannot be "n"/ },
    { name: 'the delimiter inside NULL', sql: "COPY t TO STDOUT (FORMAT csv, NULL 'a,b')", reason: /NULL specification/ },
    { name: 'the quote inside NULL', sql: `COPY t TO STDOUT (FORMAT csv, NULL '"')`, reason: /quote character must not appear/ },
    { name: 'QUOTE in text format', sql: `COPY t TO STDOUT (QUOTE '"')`, reason: /CSV options/ },
    { name: 'FORCE_QUOTE in text format', sql: 'COPY t TO STDOUT (FORCE_QUOTE *)', reason: /CSV options/ },
    { name: 'FORCE_NULL (COPY FROM)', sql: 'COPY t TO STDOUT (FORMAT csv, FORCE_NULL (a))', reason: /FORCE_NULL is not a COPY TO option/ },
    { name: 'FORCE_NOT_NULL (COPY FROM)', sql: 'COPY t TO STDOUT (FORMAT csv, FORCE_NOT_NULL (a))', reason: /FORCE_NOT_NULL is not a COPY TO option/ },
    { name: 'HEADER MATCH (COPY FROM)', sql: 'COPY t TO STDOUT (FORMAT csv, HEADER match)', reason: /HEADER match is not a COPY TO choice/ },
    { name: 'HEADER 2', sql: 'COPY t TO STDOUT (FORMAT csv, HEADER 2)', reason: /HEADER/ },
    { name: 'an unknown option', sql: 'COPY t TO STDOUT (FORMAT csv, SHINY true)', reason: /unknown COPY option SHINY/ },
    { name: 'an unknown format', sql: "COPY t TO STDOUT (FORMAT 'CSV')", reason: /format "CSV"/ },
    { name: 'an option twice', sql: "COPY t TO STDOUT (DELIMITER '|', DELIMITER ',')", reason: /DELIMITER given twice/ },
    { name: 'an option without its value', sql: 'COPY t TO STDOUT (FORMAT csv, NULL)', reason: /NULL needs a value/ },
    { name: 'two statements', sql: 'COPY t TO STDOUT; SELECT 1', reason: /only statement/ },
    { name: 'COPY FROM', sql: 'COPY t FROM STDIN (FORMAT csv)', reason: /not a COPY … TO STDOUT/ },
    { name: 'COPY TO a server file', sql: "COPY t TO '/tmp/x' (FORMAT csv)", reason: /not a COPY … TO STDOUT/ },
    { name: 'COPY TO PROGRAM', sql: "COPY t TO PROGRAM 'cat' (FORMAT csv)", reason: /not a COPY … TO STDOUT/ },
    { name: 'not a COPY', sql: 'SELECT 1', reason: /not a COPY/ },
    { name: 'does not parse (WITH OIDS is gone)', sql: 'COPY t TO STDOUT WITH OIDS', reason: /could not be parsed/ },
  ])('refuses $name', ({ sql, reason }) => {
    const r = parseCopyToFormat(sql);
    expect(r.kind).toBe('refuse');
    expect(r.kind === 'refuse' ? r.reason : '').toMatch(reason);
  });
});
