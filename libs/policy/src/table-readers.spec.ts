import { beforeAll, describe, expect, it } from 'vitest';
import { parsePolicyDocument } from './policy-document.js';
import { evaluate, initPolicyEngine } from './policy-engine.js';
import { analyzeSql } from './sql-analyzer.js';
import { relationName } from './table-readers.js';

/**
 * Functions that read a whole table by name, every table, or run SQL given as text: a masked column
 * must not leave through them. A whole-table read counts as reading every column of the table.
 */
const doc = parsePolicyDocument({
  name: 'readers',
  guardrails: [],
  dynamicSql: 'block',
  masking: [
    { name: 'ssns', columns: ['ssn'], strategy: 'redact' },
    { name: 'cards', columns: ['public.customers.card_number'], strategy: 'partial' },
    { name: 'pii', detectors: ['EMAIL'], strategy: 'redact' },
  ],
});
// only a table-qualified rule: reads of other tables are fine
const cardsOnly = parsePolicyDocument({
  name: 'cards-only',
  guardrails: [],
  masking: [{ name: 'cards', columns: ['public.customers.card_number'], strategy: 'partial' }],
});

beforeAll(async () => {
  await initPolicyEngine();
});

const B = 'block';
const A = 'allow';

// [name, sql, action, rule] — tricky rows first
const rows: [string, string, string, string | null][] = [
  ['table_to_xml by a regclass cast', "SELECT table_to_xml('customers'::regclass, true, true, '')", B, 'ssns'],
  ['table_to_xml schema-qualified and quoted', `SELECT table_to_xml('public."customers"', true, false, '')`, B, 'ssns'],
  ['table_to_xml by named arguments', "SELECT table_to_xml(nulls => true, tableforest => true, targetns => '', tbl => 'customers')", B, 'ssns'],
  ['table_to_xml of a table computed at run time', "SELECT table_to_xml((SELECT oid FROM pg_class WHERE relname = 'customers'), true, true, '')", B, 'ssns'],
  ['table_to_xml by OID', 'SELECT table_to_xml(16384::regclass, true, true, \'\')', B, 'ssns'],
  ['table_to_xml in a filter (a filter runs it all the same)', "SELECT 1 WHERE table_to_xml('customers', true, true, '')::text LIKE '%1%'", B, 'ssns'],
  ['xpath over table_to_xml', "SELECT xpath('//ssn/text()', table_to_xml('customers', true, true, ''))", B, 'ssns'],
  ['pg_catalog-qualified table_to_xmlschema', "SELECT pg_catalog.table_to_xmlschema('customers', true, true, '')", B, 'ssns'],
  ['table_to_xml_and_xmlschema', "SELECT table_to_xml_and_xmlschema('customers', true, true, '')", B, 'ssns'],
  ['table_to_xml inside a DO block', "DO $$ BEGIN PERFORM table_to_xml('customers', true, true, ''); END $$", B, 'ssns'],
  ['table_to_xml in a CTE', "WITH x AS (SELECT table_to_xml('customers', true, true, '') d) SELECT d FROM x", B, 'ssns'],
  ['cursor_to_xml: the cursor may read anything', "SELECT cursor_to_xml('c', 10, true, true, '')", B, 'ssns'],
  ['schema_to_xml', "SELECT schema_to_xml('public', true, true, '')", B, 'ssns'],
  ['database_to_xml', "SELECT database_to_xml(true, true, '')", B, 'ssns'],
  ['database_to_xmlschema (no values, counted all the same)', "SELECT database_to_xmlschema(true, true, '')", B, 'ssns'],
  ['pg_read_binary_file (a table\'s storage is a file)', "SELECT pg_read_binary_file('base/5/16384')", B, 'ssns'],
  ['logical decoding of every change', "SELECT data FROM pg_logical_slot_get_changes('s', NULL, NULL)", B, 'ssns'],
  ['pageinspect raw pages', "SELECT get_raw_page('customers', 0)", B, 'ssns'],
  ['connectby over the table', "SELECT * FROM connectby('customers', 'ssn', 'name', '1', 0) AS t(k text, p text, l int)", B, 'ssns'],
  ['dblink_build_sql_insert of a local row', "SELECT dblink_build_sql_insert('customers', '1', 1, '{1}', '{1}')", B, 'ssns'],
  // SQL given as text
  ['query_to_xml of a masked column', "SELECT query_to_xml('select ssn from customers', true, true, '')", B, 'ssns'],
  ['query_to_xml of SELECT *', "SELECT query_to_xml('select * from customers', true, true, '')", B, 'ssns'],
  ['query_to_xml nested in query_to_xml', `SELECT query_to_xml('select query_to_xml(''select ssn from customers'', true, true, '''')', true, true, '')`, B, 'ssns'],
  ['query_to_xml of concatenated constants (still a constant)', "SELECT query_to_xml('select ' || 'ssn from customers', true, true, '')", B, 'ssns'],
  ['query_to_xml of a column read at run time: dynamic SQL', "SELECT query_to_xml(q, true, true, '') FROM queries", B, 'dynamicSql'],
  ['ts_rewrite with a query string', "SELECT ts_rewrite('a'::tsquery, 'SELECT ssn::tsquery, ''b''::tsquery FROM customers')", B, 'ssns'],
  ['ts_stat with a query string', "SELECT * FROM ts_stat('SELECT to_tsvector(ssn) FROM customers')", B, 'ssns'],
  ['crosstab source SQL', "SELECT * FROM crosstab('SELECT name, ssn, ssn FROM customers') AS t(n text, a text)", B, 'ssns'],
  ['crosstab category SQL', "SELECT * FROM crosstab('SELECT name, id, id FROM customers', 'SELECT DISTINCT ssn FROM customers') AS t(n text, a int)", B, 'ssns'],
  ['dblink to this database', "SELECT * FROM dblink('dbname=x', 'SELECT ssn FROM customers') AS t(s text)", B, 'ssns'],
  // whole rows
  ['the row itself', 'SELECT c FROM customers c', B, 'ssns'],
  ['a row cast to text', 'SELECT c::text FROM customers c', B, 'ssns'],
  ['to_jsonb of t.*', 'SELECT to_jsonb(c.*) FROM customers c', B, 'ssns'],
  ['row_to_json of a table by its own name', 'SELECT row_to_json(customers) FROM customers', B, 'ssns'],
  ['a row in a scalar subquery', 'SELECT (SELECT c FROM customers c LIMIT 1)', B, 'ssns'],
  ['hstore-like function over a row in LATERAL', 'SELECT j FROM customers c, LATERAL to_json(c) j', B, 'ssns'],
  ['a field of the row selected (the whole row is evaluated)', 'SELECT (c).name FROM customers c', B, 'ssns'],
  // what stays allowed
  ['table_to_xml three-argument ts_rewrite takes no SQL', "SELECT ts_rewrite('a'::tsquery, 'a'::tsquery, 'b'::tsquery)", A, null],
  ['query_to_xml of unmasked columns', "SELECT query_to_xml('select id, name from customers', true, true, '')", A, null],
  ['a plain star is traced by the server', 'SELECT * FROM customers', A, null],
];

describe('whole-table readers and SQL as text', () => {
  it.each(rows)('%s', (_name, sql, action, rule) => {
    const d = evaluate(sql, doc);
    expect({ action: d.action, rule: d.rule }).toEqual({ action, rule });
  });

  it('names the function and the table in the reason', () => {
    const d = evaluate("SELECT table_to_xml('customers', true, true, '')", doc);
    expect(d.reason).toContain('table_to_xml reads every column of customers');
    expect(d.reason).toContain('masked by rule ssns');
    expect(evaluate("SELECT database_to_xml(true, true, '')", doc).reason).toContain('database_to_xml may read any table');
  });

  it.each([
    ['another table is fine under a table-qualified rule', "SELECT table_to_xml('orders', true, true, '')", A, null],
    ['the table of the rule', "SELECT table_to_xml('public.customers', true, true, '')", B, 'cards'],
    ['the table of the rule, unqualified', "SELECT table_to_xml('Customers', true, true, '')", B, 'cards'],
    ['a quoted name of another case is another table', `SELECT table_to_xml('"Customers"', true, true, '')`, A, null],
    ['a table computed at run time may be the rule\'s', "SELECT table_to_xml(t::regclass, true, true, '') FROM names", B, 'cards'],
  ])('table-qualified rule: %s', (_name, sql, action, rule) => {
    const d = evaluate(sql, cardsOnly);
    expect({ action: d.action, rule: d.rule }).toEqual({ action, rule });
  });

  it('a whole-table read counts as touching the table for tables guardrails', () => {
    const a = analyzeSql("SELECT table_to_xml('vault.secrets', true, true, '')");
    expect(a.units[0]!.tables).toContainEqual({ schema: 'vault', name: 'secrets' });
  });

  it.each([
    ['customers', { schema: null, name: 'customers' }],
    [' Public . Customers ', { schema: 'public', name: 'customers' }],
    ['"My ""T"""', { schema: null, name: 'My "T"' }],
    ['db.s.t', { schema: 's', name: 't' }],
    ['a.b.c.d', null],
    ['"unterminated', null],
    ['a..b', null],
    ['', null],
  ])('relationName(%j)', (text, expected) => {
    expect(relationName(text)).toEqual(expected);
  });
});
