import { beforeAll, describe, expect, it } from 'vitest';
import { parsePolicyDocument } from './policy-document.js';
import { evaluate, initPolicyEngine } from './policy-engine.js';

/**
 * A masked column may be used in a filter only with side-effect-free built-ins: a function that can
 * raise it in a notice, write it to a table, a setting, a channel or another server lets it out.
 */
const doc = parsePolicyDocument({
  name: 'filters',
  guardrails: [{ name: 'bulk-writes', action: 'require_approval', match: { statements: ['DELETE', 'UPDATE'], unbounded: true } }],
  dynamicSql: 'block',
  masking: [
    { name: 'ssns', columns: ['ssn'], strategy: 'redact' },
    { name: 'emails', columns: ['email'], strategy: 'partial' },
    { name: 'pii', detectors: ['EMAIL'], strategy: 'redact' },
  ],
});

beforeAll(async () => {
  await initPolicyEngine();
});

const A = 'allow';
const B = 'block';

// [name, sql, action, rule] — tricky rows first
const rows: [string, string, string, string | null][] = [
  ['a user function nested in a built-in', "SELECT id FROM customers WHERE lower(leak(ssn)) = 'x'", B, 'ssns'],
  ['a built-in over a user function over an expression', "SELECT id FROM customers WHERE leak(upper(ssn) || 'x')", B, 'ssns'],
  ['set_config of the value in WHERE', "SELECT id FROM customers WHERE set_config('app.x', ssn, false) IS NOT NULL", B, 'ssns'],
  ['pg_notify in WHERE', "SELECT 1 FROM customers WHERE pg_notify('ch', email) IS NULL", B, 'emails'],
  ['dblink_exec in a join condition', "SELECT 1 FROM customers c JOIN orders o ON dblink_exec('x', 'SELECT ' || c.ssn) = 'ok'", B, 'ssns'],
  ['lo_from_bytea in HAVING', "SELECT count(*) FROM customers GROUP BY id HAVING lo_from_bytea(0, convert_to(max(ssn), 'UTF8')) > 0", B, 'ssns'],
  ['a user function in ORDER BY', 'SELECT id FROM customers ORDER BY leak(ssn)', B, 'ssns'],
  ['a user function in an EXISTS subquery filter', 'SELECT 1 WHERE EXISTS (SELECT 1 FROM customers WHERE leak(ssn))', B, 'ssns'],
  ['a user function in an IN subquery target', 'SELECT 1 FROM t WHERE t.x IN (SELECT leak(ssn) FROM customers)', B, 'ssns'],
  ['a user function over the whole row', 'SELECT 1 FROM customers c WHERE leak(c)', B, 'ssns'],
  ['a schema-qualified function of a built-in name', "SELECT 1 FROM customers WHERE public.lower(ssn) = 'x'", B, 'ssns'],
  ['a user-defined operator', "SELECT 1 FROM customers WHERE ssn ### 'x'", B, 'ssns'],
  ['an operator qualified with another schema', "SELECT 1 FROM customers WHERE ssn OPERATOR(public.=) 'x'", B, 'ssns'],
  ['a cast to a user type (a domain CHECK runs user code)', "SELECT 1 FROM customers WHERE ssn::leaky_domain IS NOT NULL", B, 'ssns'],
  ['an aggregate FILTER with a user function', 'SELECT count(*) FILTER (WHERE leak(ssn)) FROM customers', B, 'ssns'],
  ['a volatile built-in in a DELETE filter', "DELETE FROM customers WHERE id = 1 AND set_config('a.b', ssn, true) <> ''", B, 'ssns'],
  ['a procedure call with the value', 'CALL keep((SELECT ssn FROM customers LIMIT 1))', B, 'ssns'],
  ['a UPDATE filter calling a user function', "UPDATE customers SET name = 'x' WHERE leak(email)", B, 'emails'],
  ['creating a function named like a safe built-in', 'CREATE FUNCTION public.lower(text) RETURNS text LANGUAGE sql AS $$ SELECT $1 $$', B, 'ssns'],
  ['creating an operator with a built-in symbol', 'CREATE OPERATOR public.= (LEFTARG = text, RIGHTARG = mytype, FUNCTION = leak)', B, 'ssns'],
  ['creating a cast with a function', 'CREATE CAST (text AS mytype) WITH FUNCTION leak(text) AS IMPLICIT', B, 'ssns'],
  // what stays allowed: built-ins without side effects, and any function of unmasked columns
  ['DELETE … USING a temporary table, joined on the masked column', 'DELETE FROM customers USING tmp WHERE customers.email = tmp.email', A, null],
  ['DELETE … USING with aliases', 'DELETE FROM customers c USING pg_temp.tmp t WHERE c.email = t.email AND c.id > 0', A, null],
  ['UPDATE … FROM joined on the masked column', "UPDATE customers SET name = 'x' FROM tmp WHERE customers.ssn = tmp.ssn", A, null],
  ['MERGE joined on the masked column', 'MERGE INTO customers c USING tmp t ON c.email = t.email WHEN MATCHED THEN DELETE', A, null],
  ['built-in text functions in WHERE', "SELECT id FROM customers WHERE lower(trim(email)) LIKE '%@example.com' AND substring(ssn FROM 1 FOR 3) = '123'", A, null],
  ['regex, BETWEEN, IN, IS DISTINCT FROM, SIMILAR TO', "SELECT id FROM customers WHERE ssn ~ '^1' AND ssn BETWEEN 'a' AND 'z' AND ssn IN ('a', 'b') AND ssn IS DISTINCT FROM 'c' AND ssn SIMILAR TO '1%'", A, null],
  ['built-in casts', "SELECT id FROM customers WHERE ssn::text = 'x' AND length(ssn)::int > 3", A, null],
  ['pg_catalog-qualified built-in', "SELECT id FROM customers WHERE pg_catalog.upper(ssn) = 'X'", A, null],
  ['HAVING with a built-in aggregate', "SELECT id FROM customers GROUP BY id HAVING max(ssn) > '1'", A, null],
  ['a user function of an unmasked column', "SELECT id FROM customers WHERE leak(name)", A, null],
  ['ORDER BY the masked column', 'SELECT id FROM customers ORDER BY ssn', A, null],
  ['a user function with no masked argument, over a masked-column filter', "SELECT leak(id) FROM customers WHERE ssn = 'x'", A, null],
  ['creating a function of another name', 'CREATE FUNCTION public.f(int) RETURNS int LANGUAGE sql AS $$ SELECT $1 $$', A, null],
];

describe('masked columns in filters', () => {
  it.each(rows)('%s', (_name, sql, action, rule) => {
    const d = evaluate(sql, doc);
    expect({ action: d.action, rule: d.rule }).toEqual({ action, rule });
  });

  it('says which function received the column', () => {
    const d = evaluate("SELECT id FROM customers WHERE set_config('app.x', ssn, false) IS NOT NULL", doc);
    expect(d.reason).toContain('may not be passed to set_config');
    expect(d.reason).toContain('masked by rule ssns');
  });
});
