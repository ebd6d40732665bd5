import { beforeAll, describe, expect, it } from 'vitest';
import { PolicyEngine, evaluate, initPolicyEngine } from './policy-engine.js';
import { parsePolicyDocument } from './policy-document.js';

/**
 * Masked columns may leave only as plain result columns (the gateway masks those by the server's
 * RowDescription): an expression over one, a copy of one, a whole row carrying one, or a renamed
 * one used in an expression is refused, with the masking rule's name. Filters are not outputs.
 */
const doc = parsePolicyDocument({
  name: 'flows',
  guardrails: [{ name: 'bulk-writes', action: 'require_approval', match: { statements: ['DELETE', 'UPDATE'], unbounded: true } }],
  dynamicSql: 'block',
  masking: [
    { name: 'ssns', columns: ['ssn'], strategy: 'redact' },
    { name: 'cards', columns: ['public.customers.card_number'], strategy: 'partial' },
    { name: 'pii', detectors: ['EMAIL'], strategy: 'redact' },
  ],
});

beforeAll(async () => {
  await initPolicyEngine();
});

const A = 'allow';
const B = 'block';
const SSN = 'ssns';
const CARD = 'cards';

// [name, sql, action, rule] — the tricky rows first
const rows: [string, string, string, string | null][] = [
  // renamed, then used in an expression
  ['subquery alias, then an expression', 'SELECT upper(x) FROM (SELECT ssn AS x FROM customers) s', B, SSN],
  ['two levels of aliases', 'SELECT upper(y) FROM (SELECT x AS y FROM (SELECT ssn AS x FROM customers) a) b', B, SSN],
  ['CTE column list, then an expression', 'WITH w(x) AS (SELECT ssn FROM customers) SELECT upper(x) FROM w', B, SSN],
  ['CTE column list over *', 'WITH w(x) AS (SELECT * FROM customers) SELECT upper(x) FROM w', B, SSN],
  ['table alias column list', 'SELECT lower(x) FROM customers AS c(a, b, x)', B, SSN],
  ['subquery alias column list', 'SELECT x || \'\' FROM (SELECT ssn FROM customers) AS s(x)', B, SSN],
  ['join alias column list', 'SELECT upper(j.x) FROM (customers c JOIN orders o USING (id)) AS j(x)', B, SSN],
  ['DML CTE RETURNING alias', 'WITH d AS (DELETE FROM customers WHERE id = 1 RETURNING ssn AS k) SELECT upper(k) FROM d', B, SSN],
  // set operations: the server traces none of their columns
  ['UNION, aliased in the first arm', "SELECT ssn AS x FROM customers UNION ALL SELECT 'a'", B, SSN],
  ['UNION, masked column in the second arm', "SELECT 'a' AS x UNION ALL SELECT ssn FROM customers", B, SSN],
  ['UNION in a subquery, aliased', "SELECT x FROM (SELECT ssn AS x FROM customers UNION ALL SELECT 'a') s", B, SSN],
  ['UNION, same name in the first arm', "SELECT ssn FROM customers UNION ALL SELECT 'a'", A, null],
  ['UNION of the same column in both arms', 'SELECT id, ssn FROM customers UNION SELECT id, ssn FROM old_customers', A, null],
  ['UNION, the second arm puts it under another name', 'SELECT id, name FROM customers UNION SELECT id, ssn FROM old_customers', B, SSN],
  ['three arms, the third out of place', 'SELECT ssn, name FROM a UNION SELECT ssn, name FROM b UNION SELECT name, ssn FROM c', B, SSN],
  ['three arms in place', 'SELECT ssn, name FROM a UNION SELECT ssn, name FROM b UNION SELECT ssn, name FROM c', A, null],
  ['UNION after a star in the first arm', 'SELECT * FROM customers UNION SELECT id, ssn FROM old_customers', B, SSN],
  // expressions
  ['function', 'SELECT upper(ssn) FROM customers', B, SSN],
  ['concatenation', "SELECT ssn || '' FROM customers", B, SSN],
  ['cast', 'SELECT ssn::text FROM customers', B, SSN],
  ['aggregate', 'SELECT max(ssn) FROM customers', B, SSN],
  ['array', 'SELECT ARRAY[ssn] FROM customers', B, SSN],
  ['row value', 'SELECT ROW(ssn) FROM customers', B, SSN],
  ['CASE', "SELECT CASE WHEN true THEN ssn END FROM customers", B, SSN],
  ['scalar subquery in the select list', 'SELECT (SELECT ssn FROM customers LIMIT 1)', B, SSN],
  ['VALUES with a scalar subquery', 'VALUES ((SELECT ssn FROM customers LIMIT 1))', B, SSN],
  ['LATERAL function over the column', 'SELECT * FROM customers c, LATERAL upper(c.ssn) u', B, SSN],
  ['RETURNING an expression', 'DELETE FROM customers WHERE id = 1 RETURNING upper(ssn)', B, SSN],
  ['COPY of an expression', 'COPY (SELECT upper(ssn) FROM customers) TO STDOUT', B, SSN],
  ['PREPARE of an expression', 'PREPARE p AS SELECT upper(ssn) FROM customers', B, SSN],
  ['quoted upper-case identifier (masking compares names case-insensitively)', 'SELECT upper("SSN") FROM customers', B, SSN],
  ['quoted lower-case identifier is the column', 'SELECT upper("ssn") FROM customers', B, SSN],
  ['schema-qualified column reference', 'SELECT upper(public.customers.ssn) FROM public.customers', B, SSN],
  // whole rows
  ['row_to_json of a row', 'SELECT row_to_json(c) FROM customers c', B, SSN],
  ['the row itself', 'SELECT c FROM customers c', B, SSN],
  ['json_agg of t.*', 'SELECT json_agg(c.*) FROM customers c', B, SSN],
  ['whole row of a subquery exposing the column', 'SELECT row_to_json(s) FROM (SELECT id, ssn FROM customers) s', B, SSN],
  ['whole row of a CTE exposing every column', 'WITH w AS (SELECT * FROM customers) SELECT row_to_json(w) FROM w', B, SSN],
  ['whole row of a subquery without it', 'SELECT row_to_json(s) FROM (SELECT id, name FROM customers) s', A, null],
  ['whole row of a function result (psql\'s own catalog queries)', "SELECT array(SELECT 'toast.' || x FROM unnest(ARRAY['a']) x)", A, null],
  ['UNION of two stars', 'SELECT * FROM customers UNION ALL SELECT * FROM customers', B, SSN],
  // copies
  ['INSERT … SELECT', 'INSERT INTO t SELECT ssn FROM customers', B, SSN],
  ['INSERT … SELECT *', 'INSERT INTO t SELECT * FROM customers', B, SSN],
  ['CREATE TABLE AS', 'CREATE TABLE t2 AS SELECT ssn FROM customers', B, SSN],
  ['SELECT INTO', 'SELECT ssn INTO t3 FROM customers', B, SSN],
  ['UPDATE SET another column', 'UPDATE customers SET notes = ssn WHERE id = 1', B, SSN],
  ['MERGE UPDATE SET another column', 'MERGE INTO customers c USING s ON c.id = s.id WHEN MATCHED THEN UPDATE SET notes = c.ssn', B, SSN],
  ['view', 'CREATE VIEW v AS SELECT ssn FROM customers', B, SSN],
  ['SQL function body', "CREATE FUNCTION f() RETURNS text LANGUAGE sql AS 'SELECT ssn FROM customers'", B, SSN],
  ['DO block into a variable', "DO $$ DECLARE v text; BEGIN SELECT ssn INTO v FROM customers; RAISE NOTICE '%', v; END $$", B, SSN],
  ['ON CONFLICT DO UPDATE SET another column', "INSERT INTO customers (id) VALUES (1) ON CONFLICT (id) DO UPDATE SET notes = customers.ssn", B, SSN],
  ['COPY of the table to a program', "COPY customers TO PROGRAM 'cat > /tmp/x'", B, SSN],
  ['COPY of the column list to a server file', "COPY customers (id, ssn) TO '/tmp/x'", B, SSN],
  ['COPY of other columns to a server file', "COPY customers (id, name) TO '/tmp/x'", A, null],
  ['COPY of the table to the client (masked there)', 'COPY customers TO STDOUT', A, null],
  ['COPY into the table from a file', "COPY customers FROM '/tmp/x'", A, null],
  ['COPY of the column to a server file', "COPY (SELECT ssn FROM customers) TO '/tmp/x'", B, SSN],
  // code attached to a table sees its rows whole (NEW / OLD): a row of any table
  ['trigger function copying NEW.col', 'CREATE FUNCTION t() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO sink VALUES (NEW.card_number); RETURN NEW; END $$', B, CARD],
  ['trigger function raising OLD whole', "CREATE FUNCTION t() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'row %', OLD; END $$", B, SSN],
  ['trigger function notifying NEW as JSON', "CREATE FUNCTION t() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_notify('c', row_to_json(NEW)::text); RETURN NEW; END $$", B, SSN],
  ['rule copying OLD.col', 'CREATE RULE r AS ON UPDATE TO customers DO ALSO INSERT INTO sink VALUES (OLD.card_number)', B, CARD],
  ['a row variable\'s field in PL/pgSQL', "DO $$ DECLARE r customers; BEGIN r.id := 1; RAISE NOTICE '%', r.card_number; END $$", B, CARD],
  // ALTER TABLE computing a column from others for every existing row
  ['generated column over it', 'ALTER TABLE customers ADD COLUMN g text GENERATED ALWAYS AS (card_number) STORED', B, CARD],
  ['ALTER COLUMN … TYPE USING another column', 'ALTER TABLE customers ALTER COLUMN name TYPE text USING ssn', B, SSN],
  ['ALTER COLUMN … TYPE USING itself', 'ALTER TABLE customers ALTER COLUMN ssn TYPE text USING trim(ssn)', A, null],
  ['generated column over another column', 'ALTER TABLE customers ADD COLUMN g text GENERATED ALWAYS AS (upper(name)) STORED', A, null],
  // statistics catalogs keep sample values of every column
  ['pg_stats', "SELECT most_common_vals FROM pg_stats WHERE tablename = 'customers'", B, SSN],
  ['pg_statistic', 'SELECT stavalues1 FROM pg_catalog.pg_statistic', B, SSN],
  ['pg_stats_ext in a subquery', 'SELECT 1 FROM t WHERE EXISTS (SELECT most_common_vals FROM pg_stats_ext)', B, SSN],
  ['pg_statistic_ext_data', 'SELECT m.* FROM pg_statistic_ext_data d, pg_mcv_list_items(d.stxdmcv) m', B, SSN],
  // table-qualified rules
  ['qualified rule, its table', 'SELECT upper(card_number) FROM customers', B, CARD],
  ['qualified rule, another table', 'SELECT upper(card_number) FROM orders', A, null],
  ['qualified rule, alias of another table', 'SELECT upper(o.card_number) FROM orders o JOIN customers c ON true', A, null],
  ['qualified rule, alias of its table', 'SELECT upper(c.card_number) FROM orders o JOIN customers c ON true', B, CARD],
  // what stays allowed
  ['plain column', 'SELECT ssn FROM customers', A, null],
  ['plain column aliased (the server traces it)', 'SELECT ssn AS x FROM customers', A, null],
  ['subquery alias read plainly (traced)', 'SELECT x FROM (SELECT ssn AS x FROM customers) s', A, null],
  ['CTE column list read plainly (traced)', 'WITH w(x) AS (SELECT ssn FROM customers) SELECT x FROM w', A, null],
  ['star', 'SELECT * FROM customers', A, null],
  ['t.*', 'SELECT c.* FROM customers c', A, null],
  ['RETURNING the column', 'DELETE FROM customers WHERE id = 1 RETURNING ssn', A, null],
  ['COPY of the column to the client', 'COPY (SELECT ssn FROM customers) TO STDOUT', A, null],
  ['filter on the column', "SELECT count(*) FROM customers WHERE ssn LIKE '1%'", A, null],
  ['EXISTS subquery', 'SELECT 1 WHERE EXISTS (SELECT upper(ssn) FROM customers)', A, null],
  ['IN subquery', 'SELECT * FROM t WHERE id IN (SELECT upper(ssn) FROM customers)', A, null],
  ['ORDER BY and GROUP BY', 'SELECT count(*) FROM customers GROUP BY ssn ORDER BY ssn', A, null],
  ['UPDATE of the column into itself', 'UPDATE customers SET ssn = trim(ssn) WHERE id = 1', A, null],
  ['UPDATE filtered by the column', "UPDATE customers SET notes = 'x' WHERE ssn = '1'", A, null],
  ['INSERT … SELECT * from a function', 'INSERT INTO t SELECT * FROM generate_series(1, 3)', A, null],
  ['INSERT … SELECT * from a subquery without it', 'INSERT INTO t SELECT * FROM (SELECT id, name FROM customers) s', A, null],
  ['INSERT … SELECT of other columns', "INSERT INTO x SELECT id FROM customers WHERE ssn = '1'", A, null],
  ['a detector rule is not a column rule', 'SELECT lower(email) FROM customers', A, null],
  ['an expression over another column', 'SELECT upper(name) FROM customers', A, null],
  ['string literal naming the column', "SELECT upper('ssn')", A, null],
];

describe('masked columns leave only as plain result columns', () => {
  it.each(rows)('%s', (_name, sql, action, rule) => {
    const d = evaluate(sql, doc);
    expect({ action: d.action, rule: d.rule }).toEqual({ action, rule });
    if (action === 'block') expect(d.reason).toMatch(/masked by rule .* can be read only as a plain column of a result/);
  });

  it('a policy without column rules never looks (its decisions are the guardrails alone)', () => {
    const noColumns = parsePolicyDocument({ name: 'n', guardrails: [], masking: [{ name: 'pii', detectors: ['EMAIL'], strategy: 'redact' }] });
    expect(evaluate('SELECT upper(ssn) FROM customers', noColumns).action).toBe('allow');
  });

  it('the shape cache never shares a decision across different columns', () => {
    const engine = new PolicyEngine(doc, { revision: 1 });
    expect(engine.evaluate('SELECT upper(name) FROM customers WHERE id = 1').action).toBe('allow');
    expect(engine.evaluate('SELECT upper(ssn) FROM customers WHERE id = 2').action).toBe('block');
    expect(engine.evaluate('SELECT upper(name) FROM customers WHERE id = 3')).toMatchObject({ action: 'allow', cached: true });
    expect(engine.evaluate('SELECT upper(ssn) FROM customers WHERE id = 4')).toMatchObject({ action: 'block', rule: SSN, cached: true });
  });
});
