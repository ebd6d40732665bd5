import { beforeAll, describe, expect, it } from 'vitest';
import { scanSql } from './sql-parser.js';
import { PolicyEngine, evaluate, initPolicyEngine } from './policy-engine.js';
import { sqlShape, type LiteralSpan } from './sql-scanner.js';
import { contractPolicy } from './test-fixtures.js';

const doc = contractPolicy();
const strip = ({ cached: _c, ...d }: { cached: boolean } & Record<string, unknown>) => d;

beforeAll(async () => {
  await initPolicyEngine();
});

// Pairs with the same literal-free shape whose decisions differ: the cache must never let the
// first decide the second. Each is run in both orders on a fresh engine.
const mustNotShare: [string, string, string][] = [
  ['WHERE constant comparison', 'DELETE FROM t WHERE 1 = 2', 'DELETE FROM t WHERE 1 = 1'],
  ['WHERE string comparison', "DELETE FROM t WHERE 'a' = 'b'", "DELETE FROM t WHERE 'a' = 'a'"],
  ['WHERE bare string as boolean', "DELETE FROM t WHERE 'f'", "DELETE FROM t WHERE 't'"],
  ['WHERE cast string', "UPDATE t SET x = 1 WHERE 'no'::boolean", "UPDATE t SET x = 1 WHERE 'yes'::boolean"],
  ['OR with a constant disjunct', 'DELETE FROM t WHERE id = 5 OR 1 = 2', 'DELETE FROM t WHERE id = 5 OR 1 = 1'],
  ['tautology by equal literals', 'DELETE FROM t WHERE id + 1 = id + 2', 'DELETE FROM t WHERE id + 1 = id + 1'],
  ['IS TRUE of a literal comparison', "DELETE FROM t WHERE ('a' = 'b') IS TRUE", "DELETE FROM t WHERE ('a' = 'a') IS TRUE"],
  ['EXPLAIN ANALYZE as a number', 'EXPLAIN (ANALYZE 0) DELETE FROM t', 'EXPLAIN (ANALYZE 1) DELETE FROM t'],
  ['EXPLAIN ANALYZE as a string', "EXPLAIN (ANALYZE 'off') DELETE FROM t", "EXPLAIN (ANALYZE 'on') DELETE FROM t"],
  ['DO body', 'DO $$ BEGIN NULL; END $$', 'DO $$ BEGIN DROP TABLE t; END $$'],
  ['DO body in single quotes', "DO 'BEGIN NULL; END'", "DO 'BEGIN TRUNCATE t; END'"],
  ['DO EXECUTE string', "DO $$ BEGIN EXECUTE 'SELECT 1'; END $$", "DO $$ BEGIN EXECUTE 'DROP TABLE t'; END $$"],
  ['DO language as a string', "DO LANGUAGE 'plpgsql' 'BEGIN NULL; END'", "DO LANGUAGE 'plperlu' 'BEGIN NULL; END'"],
  ['query_to_xml argument', "SELECT query_to_xml('SELECT 1', true, true, '')", "SELECT query_to_xml('DROP TABLE t', true, true, '')"],
  ['dblink_exec argument', "SELECT dblink_exec('db', 'SELECT 1')", "SELECT dblink_exec('db', 'DELETE FROM t')"],
  ['ts_stat argument', "SELECT * FROM ts_stat('SELECT v FROM t')", "SELECT * FROM ts_stat('SELECT pg_cancel_backend(1)')"],
  ['scs value', "SET standard_conforming_strings = 'on'", "SET standard_conforming_strings = 'off'"],
  ['client encoding value', "SET client_encoding = 'UTF8'", "SET client_encoding = 'SJIS'"],
  ['set_config setting name', "SELECT set_config('search_path', 'off', false)", "SELECT set_config('standard_conforming_strings', 'off', false)"],
  ['set_config value', "SELECT set_config('standard_conforming_strings', 'on', false)", "SELECT set_config('standard_conforming_strings', 'off', false)"],
  ['pg_settings UPDATE name', "UPDATE pg_settings SET setting = 'off' WHERE name = 'search_path'", "UPDATE pg_settings SET setting = 'off' WHERE name = 'standard_conforming_strings'"],
  ['pg_settings UPDATE value', "UPDATE pg_settings SET setting = 'on' WHERE name = 'standard_conforming_strings'", "UPDATE pg_settings SET setting = 'off' WHERE name = 'standard_conforming_strings'"],
  ['set_config of pg_settings rows', "SELECT set_config(name, 'off', false) FROM pg_settings WHERE name = 'search_path'", "SELECT set_config(name, 'off', false) FROM pg_settings WHERE name = 'standard_conforming_strings'"],
  ['MERGE condition', 'MERGE INTO t USING s ON 1 = 2 WHEN MATCHED THEN DELETE', 'MERGE INTO t USING s ON 1 = 1 WHEN MATCHED THEN DELETE'],
  ['SQL function body', "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'", "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'TRUNCATE t'"],
  ['PL/pgSQL function body', 'CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ BEGIN NULL; END $$', 'CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ BEGIN DROP TABLE t; END $$'],
  ['function language as a string', "CREATE FUNCTION f() RETURNS int LANGUAGE 'sql' AS 'SELECT 1'", "CREATE FUNCTION f() RETURNS int LANGUAGE 'plperlu' AS 'SELECT 1'"],
  ['ts_rewrite query text', "SELECT ts_rewrite('a'::tsquery, 'SELECT t, s FROM aliases')", "SELECT ts_rewrite('a'::tsquery, 'SELECT pg_cancel_backend(1)::text::tsquery, s FROM aliases')"],
  ['table_to_xml table name', "SELECT table_to_xml('public.orders', true, true, '')", "SELECT table_to_xml('vault.secrets', true, true, '')"],
  ['crosstab source SQL', "SELECT * FROM crosstab('SELECT 1, 1, 1') AS c(a int, b int)", "SELECT * FROM crosstab('SELECT pg_terminate_backend(1), 1, 1') AS c(a int, b int)"],
  ['LANGUAGE internal symbol', "CREATE FUNCTION f(int) RETURNS int LANGUAGE internal AS 'int4abs'", "CREATE FUNCTION f(int) RETURNS int LANGUAGE internal AS 'pg_cancel_backend'"],
  ['nested EXECUTE in a CTE-free DO', "DO $$ BEGIN EXECUTE 'DELETE FROM t WHERE id = 1'; END $$", "DO $$ BEGIN EXECUTE 'DELETE FROM t WHERE 1 = 1'; END $$"],
];

// Pairs that differ only in data: they must share one parse.
const mustShare: [string, string, string][] = [
  ['point lookup', 'SELECT * FROM users WHERE id = 1', 'SELECT * FROM users WHERE id = 987654'],
  ['pgbench -S', 'SELECT abalance FROM pgbench_accounts WHERE aid = 40213;', 'SELECT abalance FROM pgbench_accounts WHERE aid = 77;'],
  ['pgbench update', 'UPDATE pgbench_accounts SET abalance = abalance + -1234 WHERE aid = 5', 'UPDATE pgbench_accounts SET abalance = abalance + -99 WHERE aid = 123456'],
  ['insert values', "INSERT INTO t (a, b) VALUES ('x', 1.5)", "INSERT INTO t (a, b) VALUES ('it''s', 2e10)"],
  ['string that looks like SQL is data', "SELECT * FROM t WHERE note = 'hello'", "SELECT * FROM t WHERE note = 'DROP TABLE users'"],
  ['bounded delete', 'DELETE FROM t WHERE id = 5', 'DELETE FROM t WHERE id = 6'],
  ['IN list', 'DELETE FROM t WHERE id IN (1, 2, 3)', 'DELETE FROM t WHERE id IN (4, 5, 6)'],
  ['comments and whitespace', "SELECT * FROM t WHERE a = 'x' /* trace=1 */", "SELECT  *  FROM t /* trace=2 */ WHERE a = 'y' -- x"],
  ['E and dollar strings', "SELECT E'a\\'b', $q$x$q$", "SELECT E'zz', $q$DROP TABLE t$q$"],
  ['hex and underscore numbers', 'SELECT * FROM t WHERE a = 0x1F', 'SELECT * FROM t WHERE a = 1_000'],
];

describe('decision cache', () => {
  it.each(mustNotShare)('never shares across literals: %s', (_name, a, b) => {
    const expectA = strip(evaluate(a, doc));
    const expectB = strip(evaluate(b, doc));
    expect(expectA).not.toEqual(expectB); // the pair is a real boundary
    expect(sqlShape(a)).toBe(sqlShape(b)); // and the shapes collide
    for (const [first, second, expectSecond] of [[a, b, expectB], [b, a, expectA]] as const) {
      const engine = new PolicyEngine(doc, { revision: 1 });
      engine.evaluate(first);
      const d = engine.evaluate(second);
      expect(d.cached).toBe(false);
      expect(strip(d)).toEqual(expectSecond);
    }
  });

  it.each(mustShare)('shares across literals: %s', (_name, a, b) => {
    expect(sqlShape(a)).toBe(sqlShape(b));
    const engine = new PolicyEngine(doc);
    const first = engine.evaluate(a);
    expect(first.cached).toBe(false);
    const second = engine.evaluate(b);
    expect(second.cached).toBe(true);
    expect(strip(second)).toEqual(strip(evaluate(b, doc)));
  });

  it('repeats are cached and the cached decision is the same', () => {
    const engine = new PolicyEngine(doc);
    const a = engine.evaluate('DROP TABLE users');
    const b = engine.evaluate('DROP TABLE users');
    expect(a.cached).toBe(false);
    expect(b.cached).toBe(true);
    expect(strip(b)).toEqual(strip(a));
    expect(Object.isFrozen(b)).toBe(true);
    expect(engine.stats()).toMatchObject({ hits: 1, misses: 1 });
  });

  it('UESCAPE literals are code: a different escape is a different table', () => {
    const hidden = `SELECT * FROM vault.U&"s!0065crets" UESCAPE '!'`;
    const other = `SELECT * FROM vault.U&"s!0065crets" UESCAPE '#'`;
    expect(sqlShape(hidden)).not.toBe(sqlShape(other));
    const engine = new PolicyEngine(doc);
    expect(engine.evaluate(other).action).toBe('allow');
    expect(engine.evaluate(hidden)).toMatchObject({ action: 'require_approval', rule: 'secrets-need-approval' });
  });

  it('keys on the policy: engines of different revisions do not share', () => {
    const strict = new PolicyEngine(doc, { revision: 1 });
    const lax = new PolicyEngine(contractPolicy({ guardrails: [] }), { revision: 2 });
    expect(strict.evaluate('DROP TABLE t').action).toBe('block');
    expect(lax.evaluate('DROP TABLE t').action).toBe('allow');
  });

  it('evicts first-in first-out at cacheSize', () => {
    const engine = new PolicyEngine(doc, { cacheSize: 2 });
    engine.evaluate('SELECT a FROM t');
    engine.evaluate('SELECT b FROM t');
    engine.evaluate('SELECT c FROM t');
    expect(engine.stats().exactEntries).toBe(2);
    expect(engine.evaluate('SELECT a FROM t').cached).toBe(false);
    expect(engine.evaluate('SELECT c FROM t').cached).toBe(true);
  });

  it('refuses an enormous statement before parsing, with a clear reason', () => {
    const engine = new PolicyEngine(doc, { maxStatementBytes: 1000 });
    const d = engine.evaluate(`SELECT '${'x'.repeat(2000)}'`);
    expect(d).toMatchObject({ action: 'block', rule: 'statement-too-large' });
    expect(d.reason).toMatch(/exceeds the limit of 1000 bytes/);
    // multibyte characters count as bytes
    expect(engine.evaluate(`SELECT '${'é'.repeat(600)}'`).rule).toBe('statement-too-large');
    expect(engine.evaluate(`SELECT '${'é'.repeat(400)}'`).action).toBe('allow');
    expect(new PolicyEngine(doc).maxStatementBytes).toBe(1024 * 1024);
  });

  // Property: for the literal variants of many statements, an engine that has seen the original
  // answers exactly what an uncached evaluation answers.
  const corpus = [
    'DELETE FROM t WHERE id = 5', 'DELETE FROM t WHERE 1 = 0', "DELETE FROM t WHERE 'a' = 'b'", 'UPDATE t SET a = 1 WHERE 2 > 3',
    "DELETE FROM t WHERE id = 1 OR 'x' = 'y'", 'EXPLAIN (ANALYZE 0) UPDATE t SET a = 2', "DO 'BEGIN NULL; END'",
    "SELECT query_to_xml('SELECT 1', true, true, '')", "SET client_encoding = 'UTF8'", "SELECT * FROM t WHERE a = 'q' AND b = 3",
    'DELETE FROM t WHERE id + 0 = id + 1', "DELETE FROM t WHERE 'off'::bool", "SELECT set_config('work_mem', '64MB', false)",
  ];
  const numbers = ['0', '1', '2', '99999999999999999999'];
  const strings = ["''", "'t'", "'f'", "'off'", "'on'", "'DROP TABLE users'", "'SJIS'", "'standard_conforming_strings'", "'BEGIN DROP TABLE t; END'"];
  it.each(corpus)('literal variants of %s agree with uncached evaluation', (sql) => {
    const spans: LiteralSpan[] = [];
    sqlShape(sql, spans);
    const engine = new PolicyEngine(doc);
    engine.evaluate(sql);
    let checked = 0;
    for (const span of spans) {
      for (const lit of span.kind === 'number' ? numbers : strings) {
        const variant = sql.slice(0, span.start) + lit + sql.slice(span.end);
        const expected = strip(evaluate(variant, doc));
        // a literal the server would reject (an out-of-range number where an integer is
        // required) may share its valid twin's decision: it never executes
        if (expected.rule === 'parse-error') continue;
        expect(strip(engine.evaluate(variant)), variant).toEqual(expected);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(0);
  });
});

// The scanner must find exactly the literals Postgres's own lexer finds.
const LITERAL_TOKENS = new Set(['SCONST', 'USCONST', 'ICONST', 'FCONST', 'BCONST', 'XCONST']);
const scannerCorpus = [
  "SELECT 'a''b', E'c\\'d', e'\\\\', B'0101', X'ff', N'nat', U&'\\0041' FROM t",
  'SELECT $$x$$, $tag$ $$ nested $$ $tag$, $1, a$b, $2::int',
  'SELECT 1, 1.5, .5, 5., 1e10, 1.5E-3, 0x1F, 0o17, 0b101, 1_000_000, 3 FROM t WHERE x IN (1,2)',
  'SELECT "quoted ""id""", "x$$y", U&"d\\0061t" FROM t',
  "SELECT 1 -- comment 'not a string'\n, 2 /* block $$ 'not' /* nested */ still */ , 3",
  "SELECT 'multi\nline', 'a'\n'continued'",
  "SELECT t.1e3x FROM t",
  "SELECT U&'d!0061t' UESCAPE '!' , 'after'",
  "SELECT x::text, 'ü', \"é\", ü FROM tbl WHERE a='ä'",
];

describe('sqlShape scanner', () => {
  it.each(scannerCorpus)('agrees with the Postgres lexer on %s', (sql) => {
    const spans: LiteralSpan[] = [];
    const shape = sqlShape(sql, spans);
    let lexed: { start: number; end: number }[];
    try {
      const bytes = Buffer.from(sql, 'utf8');
      lexed = scanSql(sql).tokens
        .filter((t) => LITERAL_TOKENS.has(t.tokenName) || /^([uU]&|[bBxX])'/.test(t.text))
        .map((t) => ({ start: bytes.subarray(0, t.start).toString('utf8').length, end: bytes.subarray(0, t.end).toString('utf8').length }));
    } catch {
      expect(shape).toBeNull(); // where the lexer gives up, so must the scanner
      return;
    }
    if (shape === null) return; // the scanner may always decline
    // Postgres joins string literals separated by whitespace with a newline into one token; the
    // shape keeps them apart but keeps the newline, so equal shapes still mean equal tokens
    const ours: { start: number; end: number }[] = [];
    for (const s of spans) {
      const prev = ours[ours.length - 1];
      if (prev && s.kind === 'string' && /^\s*\n\s*$/.test(sql.slice(prev.end, s.start))) prev.end = s.end;
      else ours.push({ start: s.start, end: s.end });
    }
    // the UESCAPE string is code to us, a literal to the lexer
    const uescape = /UESCAPE\s*('[^']*')/i.exec(sql);
    const theirs = lexed.filter((t) => !(uescape && sql.slice(t.start, t.end) === uescape[1] && sql.lastIndexOf(uescape[1]) === t.start));
    expect(ours).toEqual(theirs);
  });

  it.each([
    ["SELECT 'abc", 'unterminated string'],
    ['SELECT 1 /* abc', 'unterminated comment'],
    ['SELECT $$abc', 'unterminated dollar quote'],
    ['SELECT "abc', 'unterminated identifier'],
    ['SELECT 123abc', 'trailing junk'],
    ['SELECT 1e', 'incomplete exponent'],
    ['SELECT \u0001', 'placeholder character in the input'],
    ['SELECT $1abc', 'junk after a parameter'],
    ['SELECT 1..2', 'the DOT_DOT token'],
  ])('declines %s (%s)', (sql) => {
    expect(sqlShape(sql)).toBeNull();
  });

  it.each([
    ['SELECT 1', 'SELECT \u0001'],
    ["SELECT 'a' , E'b'", 'SELECT \u0002 , E\u0002'],
    ['  SELECT   1  -- c\n', 'SELECT \u0001'],
    ["SELECT 'a'\n'b'", 'SELECT \u0002\n\u0002'],
    ["SELECT 'a' 'b'", 'SELECT \u0002 \u0002'],
    ['SELECT $1, $$x$$', 'SELECT $1, \u0002'],
    ['SELECT t1.c2 FROM t3', 'SELECT t1.c2 FROM t3'],
    ["SELECT U&'x' UESCAPE '!'", "SELECT U&\u0002 UESCAPE '!'"],
  ])('shape of %j', (sql, shape) => {
    expect(sqlShape(sql)).toBe(shape);
  });
});
