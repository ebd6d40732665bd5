import { beforeAll, describe, expect, it } from 'vitest';
import { StatementTooComplexError } from './errors.js';
import { PolicyEngine, initPolicyEngine } from './policy-engine.js';
import { parsePolicyDocument } from './policy-document.js';
import { scanSql } from './sql-parser.js';
import { DEFAULT_MAX_DEPTH, assertNotTooComplex, operatorTokens, statementDepth } from './sql-complexity.js';

beforeAll(async () => {
  await initPolicyEngine();
});

const terms = (n: number, term: string, sep: string) => Array.from({ length: n }, (_, i) => term.replace('#', String(i))).join(sep);
const nest = (n: number, open: string, inner: string, close: string) => open.repeat(n) + inner + close.repeat(n);

/** Shapes that overflowed the WebAssembly parser's stack or leaked its memory (issue 18), each well past the limit. */
const pathological: { name: string; sql: string }[] = [
  { name: 'a 25,000-term sum', sql: `SELECT ${terms(25000, '1', '+')}` },
  { name: '20,000 nested parentheses', sql: `SELECT ${nest(20000, '(', '1', ')')}` },
  { name: 'nested ARRAY[…] 3,000 deep', sql: `SELECT ${nest(3000, 'ARRAY[', '1', ']')}` },
  { name: '25,000 NOTs', sql: `SELECT ${'NOT '.repeat(25000)}true` },
  { name: 'unary signs lexed from one operator run: 1+-+-+-…', sql: `SELECT 1${'+-'.repeat(5000)}1` },
  { name: '5,000 casts', sql: `SELECT 1${'::int'.repeat(5000)}` },
  { name: '1,000 nested subqueries', sql: `SELECT ${nest(1000, '(SELECT ', '1', ')')}` },
  { name: '300 nested CASE', sql: `SELECT ${nest(300, 'CASE WHEN true THEN ', '1', ' END')}` },
  { name: 'a 1,500-arm UNION of multi-column selects', sql: terms(1500, 'SELECT #, 2', ' UNION ') },
  { name: 'a 1,500-table JOIN chain', sql: `SELECT * FROM t0 ${terms(1500, 'JOIN t# ON a = 1 AND b = 2', ' ')}` },
  { name: '300 COLLATEs', sql: `SELECT 'a'${' COLLATE "C"'.repeat(300)}` },
  { name: '1,100 IS NULLs', sql: `SELECT 1${' IS NULL'.repeat(1100)}` },
  { name: 'a 1,100-piece || concatenation', sql: `SELECT ${terms(1100, "'x'", ' || ')}` },
  { name: 'nested calls, 600 deep', sql: `SELECT ${nest(600, 'abs(', '1', ')')}` },
  { name: '150 nested subqueries', sql: `SELECT ${nest(150, '(SELECT ', '1', ')')}` },
  {
    // the group stands first and its chain follows: the sum of both is the depth, not the larger
    name: 'groups each led by a chain after them: (((1)+1+…)+1+…)',
    sql: `SELECT ${'('.repeat(200)}1${`)${'+1'.repeat(20)}`.repeat(200)}`,
  },
  { name: 'the deep statement second in a multi-statement text', sql: `SELECT 1; SELECT ${terms(2000, '1', '+')}` },
  { name: 'a deep chain before an unterminated string (the scanner declines: raw text)', sql: `SELECT ${terms(2000, '1', '+')} '` },
  { name: 'deep chain inside a function call inside an IN list', sql: `SELECT 1 WHERE a IN (1, 2, f(${terms(1200, '1', '*')}))` },
  { name: 'deep chain as an OR arm', sql: `SELECT 1 WHERE a = 1 OR b = ${terms(1100, '1', '-')}` },
  { name: '400 nested EXISTS subqueries', sql: `SELECT ${nest(400, 'EXISTS (SELECT ', '1', ')')}` },
  { name: 'a chain of JSON arrows', sql: `SELECT a${"->'x'".repeat(1100)} FROM t` },
];

/** SQL as real clients send it: flat lists of any length, moderate nesting. None may be refused. */
const realWorld: { name: string; sql: string }[] = [
  { name: 'an IN list of 5,000 numbers', sql: `SELECT * FROM t WHERE id IN (${terms(5000, '#', ', ')})` },
  { name: 'an IN list of 3,000 strings', sql: `SELECT * FROM t WHERE name IN (${terms(3000, "'name-#'", ',')})` },
  { name: 'a 2,000-row multi-row INSERT', sql: `INSERT INTO t (a, b, c) VALUES ${terms(2000, "(#, 'x#', now() - interval '1 day')", ', ')}` },
  { name: 'a CASE with 3,000 arms', sql: `SELECT CASE ${terms(3000, "WHEN a = # THEN 'v#'", ' ')} ELSE 'other' END FROM t` },
  { name: '5,000 OR arms (an ORM composite key lookup)', sql: `SELECT * FROM t WHERE ${terms(5000, '(a = # AND b = #)', ' OR ')}` },
  { name: '3,000 AND conditions', sql: `SELECT 1 WHERE ${terms(3000, 'c# > 0', ' AND ')}` },
  { name: 'a 500-column select', sql: `SELECT ${terms(500, 'coalesce(c#, 0) + 1 AS x#', ', ')} FROM wide` },
  { name: 'a 240-term sum as pg_dump writes a view (every operator in parentheses)', sql: `CREATE VIEW v AS SELECT ${'('.repeat(239)}t.c0${terms(239, ' + t.c#)', '')} AS total FROM t` },
  { name: 'a 400-piece concatenation', sql: `SELECT ${terms(400, "'x'", ' || ')}` },
  { name: '100 nested parentheses', sql: `SELECT ${nest(100, '(', '1', ')')}` },
  { name: '50 nested subqueries', sql: `SELECT ${nest(50, '(SELECT ', '1', ')')}` },
  { name: 'a 100-arm UNION ALL', sql: terms(100, 'SELECT #, now(), x FROM t WHERE a = #', ' UNION ALL ') },
  { name: 'a 60-table join', sql: `SELECT * FROM t0 ${terms(60, 'LEFT JOIN t# ON t#.id = t0.id AND t#.ok', ' ')}` },
  { name: 'operators inside string literals and comments are not code', sql: `SELECT '${'('.repeat(50000)}', $q$${'+'.repeat(50000)}$q$ /* ${'NOT '.repeat(20000)} */ -- ${'('.repeat(9000)}\n` },
  { name: 'a DO block whose body is a literal', sql: `DO $$ BEGIN ${terms(2000, 'PERFORM #', '; ')}; END $$` },
  {
    name: "psql's \\d+ query for a table's policies",
    sql: `SELECT pol.polname, pol.polpermissive,
  CASE WHEN pol.polroles = '{0}' THEN NULL ELSE pg_catalog.array_to_string(array(select rolname from pg_catalog.pg_roles where oid = any (pol.polroles) order by 1),',') END,
  pg_catalog.pg_get_expr(pol.polqual, pol.polrelid),
  pg_catalog.pg_get_expr(pol.polwithcheck, pol.polrelid),
  CASE pol.polcmd
    WHEN 'r' THEN 'SELECT'
    WHEN 'a' THEN 'INSERT'
    WHEN 'w' THEN 'UPDATE'
    WHEN 'd' THEN 'DELETE'
    END AS cmd
FROM pg_catalog.pg_policy pol
WHERE pol.polrelid = '1259' ORDER BY 1;`,
  },
  {
    name: "psql's \\d+ query for a table's columns",
    sql: `SELECT a.attname,
  pg_catalog.format_type(a.atttypid, a.atttypmod),
  (SELECT pg_catalog.pg_get_expr(d.adbin, d.adrelid, true)
   FROM pg_catalog.pg_attrdef d
   WHERE d.adrelid = a.attrelid AND d.adnum = a.attnum AND a.atthasdef),
  a.attnotnull,
  (SELECT c.collname FROM pg_catalog.pg_collation c, pg_catalog.pg_type t
   WHERE c.oid = a.attcollation AND t.oid = a.atttypid AND a.attcollation <> t.typcollation) AS attcollation,
  a.attidentity,
  a.attgenerated,
  a.attstorage,
  a.attcompression AS attcompression,
  CASE WHEN a.attstattarget=-1 THEN NULL ELSE a.attstattarget END AS attstattarget,
  pg_catalog.col_description(a.attrelid, a.attnum)
FROM pg_catalog.pg_attribute a
WHERE a.attrelid = '1259' AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum;`,
  },
];

const doc = parsePolicyDocument({ name: 't', guardrails: [], dynamicSql: 'allow' });

describe('statement complexity bound (refused before the parser)', () => {
  it.each(pathological)('refuses $name with 54001', ({ sql }) => {
    expect(statementDepth(sql)).toBeGreaterThan(DEFAULT_MAX_DEPTH);
    expect(() => assertNotTooComplex(sql)).toThrow(StatementTooComplexError);
    const d = new PolicyEngine(doc).evaluate(sql);
    expect(d).toMatchObject({ action: 'block', rule: 'statement-too-complex', sqlstate: '54001' });
    expect(d.reason).toMatch(/^statement too complex: /);
  });

  it.each(realWorld)('accepts $name (and the parser reads it)', ({ sql }) => {
    expect(statementDepth(sql)).toBeLessThanOrEqual(DEFAULT_MAX_DEPTH);
    const d = new PolicyEngine(doc).evaluate(sql);
    expect(d.rule).not.toBe('statement-too-complex');
    expect(d.reason).not.toMatch(/could not be analysed/);
  });

  // Just under the limit, each shape must still parse and analyse: the limit sits below what the
  // parser and the analyser's own walks can take, with room to spare (bench/parser-bench.mjs
  // prints how far below).
  const shapes: { name: string; make: (n: number) => string }[] = [
    { name: 'sum', make: (n) => `SELECT ${terms(n, '1', '+')}` },
    { name: 'NOT chain', make: (n) => `SELECT ${'NOT '.repeat(n)}true` },
    { name: 'casts', make: (n) => `SELECT 1${'::int'.repeat(n)}` },
    { name: 'COLLATE chain', make: (n) => `SELECT 'a'${' COLLATE "C"'.repeat(n)}` },
    { name: 'nested subqueries', make: (n) => `SELECT ${nest(n, '(SELECT ', '1', ')')}` },
    { name: 'nested CASE', make: (n) => `SELECT ${nest(n, 'CASE WHEN true THEN ', '1', ' END')}` },
    { name: 'nested calls', make: (n) => `SELECT ${nest(n, 'abs(', '1', ')')}` },
    { name: 'nested arrays', make: (n) => `SELECT ${nest(n, 'ARRAY[', '1', ']')}` },
    { name: 'UNION chain', make: (n) => terms(n, 'SELECT #', ' UNION ') },
    { name: 'JOIN chain', make: (n) => `SELECT * FROM t0 ${terms(n, 'JOIN t# ON true', ' ')}` },
    { name: 'parenthesised sum (pg_dump)', make: (n) => `SELECT ${'('.repeat(n)}1${' + 1)'.repeat(n)}` },
  ];
  it.each(shapes)('the largest accepted $name parses and is analysed', ({ make }) => {
    let lo = 1;
    let hi = 2 * DEFAULT_MAX_DEPTH + 1;
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (statementDepth(make(mid)) <= DEFAULT_MAX_DEPTH) lo = mid;
      else hi = mid;
    }
    const d = new PolicyEngine(doc).evaluate(make(lo));
    expect(d.rule).not.toBe('statement-too-complex');
    expect(d.reason).not.toMatch(/could not be analysed/);
    expect(new PolicyEngine(doc).evaluate(make(hi)).rule).toBe('statement-too-complex');
  });
});

describe('operator tokens as scan.l splits them', () => {
  it.each([
    { run: '+', tokens: 1 },
    { run: '||', tokens: 1 },
    { run: '->>', tokens: 1 },
    { run: '<=', tokens: 1 },
    { run: '+-', tokens: 2 },
    { run: '+-+-', tokens: 4 },
    { run: '*-', tokens: 2 },
    { run: '*-*-', tokens: 2 },
    { run: '<+-', tokens: 3 },
    { run: '|-', tokens: 1 },
    { run: '~+-', tokens: 1 },
    { run: '@-', tokens: 1 },
    { run: '%-', tokens: 1 },
  ])('$run is $tokens token(s), as the Postgres lexer says', ({ run, tokens }) => {
    expect(operatorTokens(run, 0, run.length)).toBe(tokens);
    expect(scanSql(`a ${run} b`).tokens.length - 2).toBe(tokens);
  });
});
