import { beforeAll, describe, expect, it } from 'vitest';
import { evaluate, initPolicyEngine } from './policy-engine.js';
import { contractPolicy } from './test-fixtures.js';

// guardrails only: with masking rules a whole-table read is also refused as reading masked columns (below)
const doc = contractPolicy({ masking: [] });
const masked = contractPolicy();
const A = 'allow';
const B = 'block';
const R = 'require_approval';
const DDL = 'no-destructive-ddl';
const KILL = 'no-session-killing';
const BULK = 'bulk-writes';
const SECRETS = 'secrets-need-approval';
const DYN = 'dynamicSql';

beforeAll(async () => {
  await initPolicyEngine();
});

// [name, sql, action, rule] — the SQL a function runs from text is analysed like the statement's own
const rows: [string, string, string, string | null][] = [
  // ts_rewrite(tsquery, text) runs its second argument
  ['ts_rewrite runs its query text', "SELECT ts_rewrite('a & b'::tsquery, $$SELECT pg_cancel_backend(pid)::text::tsquery, 'x'::tsquery FROM pg_stat_activity$$)", B, KILL],
  ['ts_rewrite schema-qualified, text cast', "SELECT pg_catalog.ts_rewrite(to_tsquery('a'), 'SELECT pg_terminate_backend(1)::text::tsquery, ''a''::tsquery'::text)", B, KILL],
  ['ts_rewrite with a query built at run time', "SELECT ts_rewrite('a'::tsquery, 'SELECT ' || q) FROM t", B, DYN],
  ['ts_rewrite of three tsqueries runs nothing', "SELECT ts_rewrite('a & b'::tsquery, 'a'::tsquery, 'c'::tsquery)", A, null],
  ['ts_rewrite of a harmless query', "SELECT ts_rewrite('a'::tsquery, 'SELECT t, s FROM aliases')", A, null],
  // nesting: a function's SQL calls another such function
  ['query_to_xml of ts_stat of a kill', "SELECT query_to_xml($$SELECT * FROM ts_stat('SELECT pg_cancel_backend(1)')$$, true, true, '')", B, KILL],
  ['query_to_xml by named argument', "SELECT query_to_xml(query => 'SELECT 1', nulls => true, tableforest => true, targetns => '')", B, DYN],
  ['query_to_xmlschema runs its query', "SELECT query_to_xmlschema('DELETE FROM t RETURNING 1', true, true, '')", R, BULK],
  // whole-table readers: the table counts as read
  ['table_to_xml of a guarded table', "SELECT table_to_xml('vault.secrets', true, true, '')", R, SECRETS],
  ['table_to_xml of a guarded table as regclass', "SELECT table_to_xml('vault.secrets'::regclass, true, true, '')", R, SECRETS],
  ['table_to_xml by oid', "SELECT table_to_xml(16384, true, true, '')", B, DYN],
  ['table_to_xml of something that is not a name', "SELECT table_to_xml('t WHERE pg_cancel_backend(1)', true, true, '')", B, DYN],
  ['table_to_xml of a column', "SELECT table_to_xml(c.oid, true, true, '') FROM pg_class c", B, DYN],
  ['table_to_xml_and_xmlschema of a guarded table', "SELECT table_to_xml_and_xmlschema('vault.secrets', true, true, '')", R, SECRETS],
  ['table_to_xml of an unguarded table', "SELECT table_to_xml('public.orders', true, true, '')", A, null],
  ['schema_to_xml reads tables nobody named', "SELECT schema_to_xml('vault', true, true, '')", B, DYN],
  ['database_to_xml reads every table', "SELECT database_to_xml(true, true, '')", B, DYN],
  ['cursor_to_xml reads a cursor analysed at DECLARE', "SELECT cursor_to_xml('c', 10, true, true, '')", A, null],
  // tablefunc
  ['crosstab runs its source SQL', "SELECT * FROM crosstab('SELECT pg_cancel_backend(1), 1, 1') AS ct(a int, b int)", B, KILL],
  ['crosstab runs its category SQL', "SELECT * FROM crosstab('SELECT 1, 1, 1', 'DELETE FROM t RETURNING 1') AS ct(a int, b int)", R, BULK],
  ['crosstab with a column count', "SELECT * FROM crosstab('SELECT r, c, v FROM t', 2) AS ct(r int, a int, b int)", A, null],
  ['crosstab3 runs its SQL', "SELECT * FROM crosstab3('SELECT pg_terminate_backend(1)::text, 1::text, 1::text')", B, KILL],
  ['connectby pastes a smuggled relation into its SQL', "SELECT * FROM connectby('pg_stat_activity WHERE pg_terminate_backend(pid) IS NOT NULL --', 'pid', 'pid', '1', 0) AS t(a int, b int, l int)", B, KILL],
  ['connectby with an order column', "SELECT * FROM connectby('tree', 'id', 'parent', 'pos', '1', 0, '~') AS t(a int, b int, l int, p text)", A, null],
  ['connectby of a guarded table', "SELECT * FROM connectby('vault.secrets', 'id', 'parent', '1', 0) AS t(a int, b int, l int)", R, SECRETS],
  ['connectby with a built name', "SELECT * FROM t, connectby(t.r, 'id', 'parent', '1', 0) AS c(a int, b int, l int)", B, DYN],
  // xml2
  ['xpath_table runs its criteria', "SELECT * FROM xpath_table('id', 'doc', 'docs', '/a', 'pg_cancel_backend(1) IS NOT NULL') AS t(id int, a text)", B, KILL],
  ['xpath_table of a guarded table', "SELECT * FROM xpath_table('id', 'doc', 'vault.secrets', '/a', 'true') AS t(id int, a text)", R, SECRETS],
  ['xpath_table with a built criteria', "SELECT * FROM x, xpath_table('id', 'doc', 'docs', '/a', x.c) AS t(id int, a text)", B, DYN],
  // dblink can reach this very database
  ['dblink_open runs its cursor SQL', "SELECT dblink_open('c', 'DELETE FROM t RETURNING 1')", R, BULK],
  ['dblink_send_query runs its SQL', "SELECT dblink_send_query('conn', 'SELECT pg_terminate_backend(1)')", B, KILL],
  ['dblink_fetch reads what dblink_open ran', "SELECT * FROM dblink_fetch('c', 10) AS t(a int)", A, null],
  // third-party extensions
  ['pg_cron job, qualified', "SELECT cron.schedule('j', '* * * * *', 'DROP TABLE users')", B, DDL],
  ['pg_cron job, on the search_path', "SELECT schedule('j', '* * * * *', 'DROP TABLE users')", B, DDL],
  ['a schedule function of another schema', "SELECT app.schedule('j', '* * * * *', 'DROP TABLE users')", A, null],
  ['pglogical DDL replication', "SELECT pglogical.replicate_ddl_command('DROP TABLE users')", B, DDL],
];

describe('SQL run by functions from text', () => {
  it.each(rows)('%s', (_name, sql, action, rule) => {
    const d = evaluate(sql, doc);
    expect({ action: d.action, rule: d.rule }).toEqual({ action, rule });
  });

  // the whole table is read into the function's result: every masked column of it goes with it
  it.each([
    ['table_to_xml of any table carries an unqualified masked column', "SELECT table_to_xml('public.orders', true, true, '')", B, 'emails'],
    ['query_to_xml of a masked column', "SELECT query_to_xml('SELECT email FROM customers', true, true, '')", B, 'emails'],
    ['query_to_xml of a column nobody masks', "SELECT query_to_xml('SELECT id FROM customers', true, true, '')", A, null],
  ])('%s (with masking rules)', (_name, sql, action, rule) => {
    const d = evaluate(sql, masked);
    expect({ action: d.action, rule: d.rule }).toEqual({ action, rule });
  });
});
