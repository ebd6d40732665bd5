import { beforeAll, describe, expect, it } from 'vitest';
import { evaluate, initPolicyEngine } from './policy-engine.js';
import { contractPolicy } from './test-fixtures.js';

const doc = contractPolicy({ masking: [] });
// the function rule alone: ALTER … rows would otherwise end at no-destructive-ddl first
const killOnly = contractPolicy({
  masking: [],
  guardrails: [{ name: 'no-session-killing', action: 'block', match: { functions: ['pg_terminate_backend', 'pg_cancel_backend'] } }],
});
const A = 'allow';
const B = 'block';
const KILL = 'no-session-killing';
const DDL = 'no-destructive-ddl';
const DYN = 'dynamicSql';

beforeAll(async () => {
  await initPolicyEngine();
});

// [name, sql, action, rule] — binding a guarded function by DDL is calling it; tricky rows first
const bindings: [string, string, string, string | null][] = [
  ['operator over a guarded function, schema-qualified', 'CREATE OPERATOR ### (FUNCTION = pg_catalog.pg_cancel_backend, RIGHTARG = int)', B, KILL],
  ['operator with the old PROCEDURE spelling', 'CREATE OPERATOR public.### (PROCEDURE = pg_terminate_backend, LEFTARG = int, RIGHTARG = bigint)', B, KILL],
  ['operator hiding it in its selectivity estimator', 'CREATE OPERATOR ### (FUNCTION = int4eq, LEFTARG = int, RIGHTARG = int, RESTRICT = pg_cancel_backend)', B, KILL],
  ['operator with a quoted upper-case name', 'CREATE OPERATOR ### (FUNCTION = "pg_cancel_backend", RIGHTARG = int)', B, KILL],
  ['ALTER OPERATOR … SET a guarded estimator', 'ALTER OPERATOR === (int, int) SET (JOIN = pg_cancel_backend)', B, KILL],
  ['cast with a guarded function', 'CREATE CAST (int AS mytype) WITH FUNCTION pg_cancel_backend(int)', B, KILL],
  ['cast AS IMPLICIT with a qualified guarded function', 'CREATE CAST (bigint AS mytype) WITH FUNCTION pg_catalog.pg_terminate_backend(int, bigint) AS IMPLICIT', B, KILL],
  ['aggregate whose state function is guarded', 'CREATE AGGREGATE killer(int) (SFUNC = pg_cancel_backend, STYPE = bool)', B, KILL],
  ['aggregate whose final function is guarded', 'CREATE AGGREGATE a(int) (SFUNC = int4pl, STYPE = int, FINALFUNC = pg_cancel_backend)', B, KILL],
  ['moving-aggregate inverse function', 'CREATE AGGREGATE a(int) (SFUNC = int4pl, STYPE = int, MSFUNC = int4pl, MINVFUNC = pg_terminate_backend, MSTYPE = int)', B, KILL],
  ['old-style aggregate', 'CREATE AGGREGATE a (BASETYPE = int, SFUNC = pg_cancel_backend, STYPE = bool)', B, KILL],
  ['window aggregate used with OVER later', 'CREATE AGGREGATE w(int) (SFUNC = pg_cancel_backend, STYPE = bool, COMBINEFUNC = pg_cancel_backend)', B, KILL],
  ['trigger on a guarded function', 'CREATE TRIGGER t AFTER INSERT ON x FOR EACH ROW EXECUTE FUNCTION pg_cancel_backend()', B, KILL],
  ['trigger with EXECUTE PROCEDURE', 'CREATE TRIGGER t BEFORE UPDATE ON x EXECUTE PROCEDURE pg_catalog.pg_terminate_backend()', B, KILL],
  ['trigger WHEN calls a guarded function', 'CREATE TRIGGER t AFTER INSERT ON x FOR EACH ROW WHEN (pg_cancel_backend(1)) EXECUTE FUNCTION f()', B, KILL],
  ['event trigger on a guarded function', 'CREATE EVENT TRIGGER e ON ddl_command_end EXECUTE FUNCTION pg_terminate_backend()', B, KILL],
  ['base type input function', 'CREATE TYPE t (INPUT = pg_cancel_backend, OUTPUT = textout)', B, KILL],
  ['base type receive function', 'CREATE TYPE t (INPUT = textin, OUTPUT = textout, RECEIVE = pg_cancel_backend)', B, KILL],
  ['ALTER TYPE … SET a guarded send function', 'ALTER TYPE t SET (SEND = pg_cancel_backend)', B, KILL],
  ['range canonical function', 'CREATE TYPE r AS RANGE (SUBTYPE = int, CANONICAL = pg_cancel_backend)', B, KILL],
  ['conversion function', "CREATE CONVERSION c FOR 'UTF8' TO 'LATIN1' FROM pg_cancel_backend", B, KILL],
  ['language handler', 'CREATE LANGUAGE l HANDLER pg_cancel_backend', B, KILL],
  ['language inline handler', 'CREATE LANGUAGE l HANDLER plpgsql_call_handler INLINE pg_terminate_backend', B, KILL],
  ['access method handler', 'CREATE ACCESS METHOD am TYPE TABLE HANDLER pg_cancel_backend', B, KILL],
  ['foreign data wrapper handler', 'CREATE FOREIGN DATA WRAPPER w HANDLER pg_cancel_backend', B, KILL],
  ['ALTER FOREIGN DATA WRAPPER validator', 'ALTER FOREIGN DATA WRAPPER w VALIDATOR pg_terminate_backend', B, KILL],
  ['operator class support function', 'CREATE OPERATOR CLASS oc FOR TYPE int USING btree AS OPERATOR 1 <, FUNCTION 1 pg_cancel_backend(int)', B, KILL],
  ['operator family gains a support function', 'ALTER OPERATOR FAMILY f USING btree ADD FUNCTION 1 (int, int) pg_cancel_backend(int)', B, KILL],
  ['transform function', 'CREATE TRANSFORM FOR int LANGUAGE plpgsql (FROM SQL WITH FUNCTION pg_cancel_backend(internal), TO SQL WITH FUNCTION int4in(internal))', B, KILL],
  ['text search parser function', 'CREATE TEXT SEARCH PARSER p (START = pg_cancel_backend, GETTOKEN = b, END = c, LEXTYPES = d)', B, KILL],
  ['text search template function', 'CREATE TEXT SEARCH TEMPLATE tt (LEXIZE = pg_cancel_backend)', B, KILL],
  ['planner support function', 'CREATE FUNCTION f(int) RETURNS int LANGUAGE sql SUPPORT pg_cancel_backend AS $$ SELECT 1 $$', B, KILL],
  ['ALTER FUNCTION … SUPPORT', 'ALTER FUNCTION f(int) SUPPORT pg_terminate_backend', B, KILL],
  ['internal function renaming a guarded one', "CREATE FUNCTION nice(int) RETURNS bool LANGUAGE internal AS 'pg_cancel_backend'", B, KILL],
  // stored expressions are the statement's own calls
  ['column DEFAULT', 'CREATE TABLE x (a bool DEFAULT pg_cancel_backend(1))', B, KILL],
  ['generated column', 'CREATE TABLE x (pid int, k bool GENERATED ALWAYS AS (pg_terminate_backend(pid)) STORED)', B, KILL],
  ['ALTER COLUMN SET DEFAULT', 'ALTER TABLE x ALTER COLUMN a SET DEFAULT pg_cancel_backend(1)', B, KILL],
  ['table CHECK constraint', 'CREATE TABLE x (pid int CHECK (pg_cancel_backend(pid)))', B, KILL],
  ['domain CHECK', 'CREATE DOMAIN d AS int CHECK (pg_terminate_backend(VALUE))', B, KILL],
  ['expression index', 'CREATE INDEX ON x ((pg_cancel_backend(pid)))', B, KILL],
  ['partial index predicate', 'CREATE INDEX ON x (pid) WHERE pg_cancel_backend(pid)', B, KILL],
  ['RLS policy USING', 'CREATE POLICY p ON x USING (pg_cancel_backend(pid))', B, KILL],
  ['RLS policy WITH CHECK', 'CREATE POLICY p ON x FOR INSERT WITH CHECK (pg_terminate_backend(pid))', B, KILL],
  ['rule whose action calls it', 'CREATE RULE r AS ON INSERT TO x DO ALSO SELECT pg_cancel_backend(NEW.pid)', B, KILL],
  ['rule whose WHERE calls it', 'CREATE RULE r AS ON INSERT TO x WHERE pg_cancel_backend(NEW.pid) DO INSTEAD NOTHING', B, KILL],
  ['statistics expression', 'CREATE STATISTICS s ON (pg_cancel_backend(pid)), pid FROM x', B, KILL],
  ['publication row filter', 'CREATE PUBLICATION p FOR TABLE x WHERE (pg_cancel_backend(pid))', B, KILL],
  ['view over it', 'CREATE VIEW v AS SELECT pg_cancel_backend(pid) FROM pg_stat_activity', B, KILL],
  ['in a CREATE SCHEMA element', 'CREATE SCHEMA s CREATE TABLE x (a bool DEFAULT pg_cancel_backend(1))', B, KILL],
  // harmless bindings stay allowed
  ['operator over a harmless function', 'CREATE OPERATOR ### (FUNCTION = int4pl, LEFTARG = int, RIGHTARG = int)', A, null],
  ['aggregate over harmless functions', 'CREATE AGGREGATE mysum(int) (SFUNC = int4pl, STYPE = int, INITCOND = 0)', A, null],
  ['trigger on a user function', 'CREATE TRIGGER t AFTER INSERT ON x FOR EACH ROW EXECUTE FUNCTION audit_row()', A, null],
  ['cast WITHOUT FUNCTION', 'CREATE CAST (mytype AS int) WITHOUT FUNCTION', A, null],
  ['column DEFAULT now()', 'CREATE TABLE x (a timestamptz DEFAULT now())', A, null],
  ['a type named like a guarded function is not a function', 'CREATE AGGREGATE a(int) (SFUNC = int4pl, STYPE = pg_cancel_backend)', A, null],
];

// [name, sql, action, rule] — using an operator: only built-in ones can be analysed
const operators: [string, string, string, string | null][] = [
  ['prefix user operator', 'SELECT ###1', B, DYN],
  ['infix user operator', 'SELECT 1 ### 2', B, DYN],
  ['OPERATOR() with a user schema', 'SELECT 1 OPERATOR(myschema.+) 2', B, DYN],
  ['OPERATOR() with a built-in symbol in a user schema', 'SELECT pid OPERATOR(public.=) 1 FROM pg_stat_activity', B, DYN],
  ['user operator in ANY', 'SELECT 1 ### ANY (ARRAY[1, 2])', B, DYN],
  ['user operator on a subquery', 'SELECT 1 ### ALL (SELECT pid FROM pg_stat_activity)', B, DYN],
  ['ORDER BY … USING a user operator', 'SELECT pid FROM pg_stat_activity ORDER BY pid USING ###', B, DYN],
  ['user operator in an EXCLUDE constraint', 'CREATE TABLE x (pid int, EXCLUDE USING gist (pid WITH ###))', B, DYN],
  ['user operator in a WHERE', 'SELECT 1 FROM t WHERE a ### b', B, DYN],
  ['user operator in a DO block', "DO $$ BEGIN PERFORM 1 ### 2; END $$", B, DYN],
  ['user operator in a function body', 'CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1 ### 2 $$', B, DYN],
  ['operator whose commutator is a user operator', 'CREATE OPERATOR === (FUNCTION = int4eq, LEFTARG = int, RIGHTARG = int, COMMUTATOR = ###)', B, DYN],
  ['operator whose negator is a user operator', 'CREATE OPERATOR === (FUNCTION = int4eq, LEFTARG = int, RIGHTARG = int, NEGATOR = OPERATOR(public.<>))', B, DYN],
  ['aggregate whose sort operator is a user operator', 'CREATE AGGREGATE mx(int) (SFUNC = int4larger, STYPE = int, SORTOP = ###)', B, DYN],
  ['operator that is its own commutator', 'CREATE OPERATOR ### (FUNCTION = int4eq, LEFTARG = int, RIGHTARG = int, COMMUTATOR = ###)', A, null],
  ['operator with built-in commutator and negator', 'CREATE OPERATOR === (FUNCTION = int4eq, LEFTARG = int, RIGHTARG = int, COMMUTATOR = =, NEGATOR = <>)', A, null],
  ['user operator in an operator class', 'CREATE OPERATOR CLASS oc FOR TYPE int USING btree AS OPERATOR 1 ###', B, DYN],
  ['user operator in SQL text a function runs', "SELECT query_to_xml('SELECT 1 ### 2', true, true, '')", B, DYN],
  ['user operator hidden in a string is no use', "SELECT '1 ### 2'", A, null],
  ['OPERATOR(pg_catalog.+)', 'SELECT 1 OPERATOR(pg_catalog.+) 2', A, null],
  ['built-in jsonb operators', "SELECT '{\"a\":1}'::jsonb -> 'a', '{}'::jsonb ? 'a', '[]'::jsonb @> '[]'", A, null],
  ['built-in text operators', "SELECT 'a' || 'b', 'a' ~~ 'b', 'a' !~* 'b', 'a' ^@ 'a'", A, null],
  ['LIKE, IN, DISTINCT, NULLIF, BETWEEN', "SELECT 1 FROM t WHERE a LIKE 'x%' AND b IN (1, 2) AND c IS DISTINCT FROM d AND NULLIF(a, b) IS NULL AND e BETWEEN 1 AND 2", A, null],
  ['a contrib operator (pg_trgm)', "SELECT 'abc' <% 'abcd'", A, null],
  ['DROP OPERATOR names the operator but runs nothing', 'DROP OPERATOR ### (int, int)', B, DDL],
];

describe('functions bound by DDL count as calls', () => {
  it.each(bindings)('%s', (_name, sql, action, rule) => {
    const d = evaluate(sql, killOnly);
    expect({ action: d.action, rule: d.rule }).toEqual({ action, rule });
  });

  it('says the function was bound, not called', () => {
    expect(evaluate('CREATE OPERATOR ### (FUNCTION = pg_cancel_backend, RIGHTARG = int)', killOnly).reason)
      .toBe('CREATE OPERATOR over pg_cancel_backend (it calls the function) is blocked by guardrail no-session-killing');
  });
});

describe('operators that are not built-in cannot be analysed', () => {
  it.each(operators)('%s', (_name, sql, action, rule) => {
    const d = evaluate(sql, doc);
    expect({ action: d.action, rule: d.rule }).toEqual({ action, rule });
  });
});
