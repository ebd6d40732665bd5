import { beforeAll, describe, expect, it } from 'vitest';
import { judgeConsequence, rowsOfTag, sampleQuery, withinTolerance, writesBetween } from './consequence.js';
import { PolicyValidationError } from './errors.js';
import { PolicyEngine, evaluate, initPolicyEngine } from './policy-engine.js';
import { parsePolicyDocument } from './policy-document.js';

beforeAll(async () => {
  await initPolicyEngine();
});

const doc = parsePolicyDocument({
  name: 'consequences',
  guardrails: [
    { name: 'no-destructive-ddl', action: 'block', match: { statements: ['DROP', 'TRUNCATE'] } },
    { name: 'big-writes', action: 'require_approval', match: { statements: ['DELETE', 'UPDATE', 'MERGE', 'INSERT'], rowsAffectedOver: 10 }, sampleRows: 5, tolerance: '10%' },
    { name: 'orders-capped', action: 'block', match: { statements: ['DELETE'], tables: ['orders'], rowsAffectedOver: 1000 } },
  ],
  dynamicSql: 'block',
});

// [name, sql, action, mode or null (not measured), rule of an immediate decision]
const rows: [string, string, string, 'tag' | 'stats' | null, string | null][] = [
  // the disguises of issue 20: each one is measured, whatever its WHERE says
  ['IS NOT NULL', 'DELETE FROM t WHERE id IS NOT NULL', 'allow', 'tag', null],
  ['id > 0', 'DELETE FROM t WHERE id > 0', 'allow', 'tag', null],
  ["LIKE '%'", "UPDATE t SET v = 'x' WHERE v LIKE '%'", 'allow', 'tag', null],
  ['IN (SELECT)', 'DELETE FROM t WHERE id IN (SELECT id FROM t)', 'allow', 'tag', null],
  ['MERGE … DELETE', 'MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE', 'allow', 'tag', null],
  ['ON CONFLICT DO UPDATE', 'INSERT INTO t SELECT * FROM t ON CONFLICT (id) DO UPDATE SET v = excluded.v', 'allow', 'tag', null],
  ['DO loop of one-row deletes', 'DO $$ BEGIN FOR i IN 1..100 LOOP DELETE FROM t WHERE id = i; END LOOP; END $$', 'allow', 'stats', null],
  ['extended <> $1', 'DELETE FROM t WHERE id <> $1', 'allow', 'tag', null],
  ['a plain bounded delete is measured too', 'DELETE FROM t WHERE id = 3', 'allow', 'tag', null],
  // what the tag cannot count is counted per table
  ['write in a CTE', 'WITH d AS (DELETE FROM t RETURNING id) SELECT count(*) FROM d', 'allow', 'stats', null],
  ['two statements', 'DELETE FROM t WHERE id = 1; DELETE FROM t WHERE id = 2', 'allow', 'stats', null],
  ['EXPLAIN ANALYZE runs it', 'EXPLAIN ANALYZE DELETE FROM t', 'allow', 'stats', null],
  ['SQL EXECUTE of a prepared statement', 'EXECUTE p(1)', 'allow', 'stats', null],
  // what cannot be measured gets the rule's action at once
  ['with transaction control', 'BEGIN; DELETE FROM t; COMMIT', 'require_approval', null, 'big-writes'],
  ['a DO block that commits', 'DO $$ BEGIN DELETE FROM t; COMMIT; END $$', 'require_approval', null, 'big-writes'],
  ['dblink', "SELECT dblink_exec('dbname=x', 'DELETE FROM t')", 'require_approval', null, 'big-writes'],
  // nothing to measure
  ['PREPARE only defines', 'PREPARE p AS DELETE FROM t', 'allow', null, null],
  ['CREATE FUNCTION only defines', "CREATE FUNCTION f() RETURNS void LANGUAGE sql AS 'DELETE FROM t'", 'allow', null, null],
  ['a SELECT', 'SELECT * FROM t', 'allow', null, null],
  ['an ordinary block still blocks', 'DROP TABLE t', 'block', null, 'no-destructive-ddl'],
];

describe('consequence rules in decisions', () => {
  it.each(rows)('%s', (_name, sql, action, mode, rule) => {
    const d = evaluate(sql, doc);
    expect(d.action).toBe(action);
    if (rule) expect(d.rule).toBe(rule);
    if (mode === null) expect(d.measure).toBeUndefined();
    else expect(d.measure?.mode).toBe(mode);
  });

  it('names the rules and tables that apply', () => {
    const d = evaluate('DELETE FROM public.orders WHERE id > 0', doc);
    expect(d.measure?.checks.map((c) => c.rule)).toEqual(['big-writes', 'orders-capped']);
    expect(d.measure?.tables).toEqual(['public.orders']);
    expect(evaluate('UPDATE orders SET x = 1', doc).measure?.checks.map((c) => c.rule)).toEqual(['big-writes']);
  });

  it('says why it could not measure', () => {
    expect(evaluate('BEGIN; DELETE FROM t; COMMIT', doc).reason).toMatch(/without a row count: .*transaction control/);
  });

  it('caches the plan per shape without literals in it', () => {
    const engine = new PolicyEngine(doc);
    engine.evaluate('DELETE FROM t WHERE id = 1');
    const d = engine.evaluate('DELETE FROM t WHERE id = 2');
    expect(d.cached).toBe(true);
    expect(d.measure?.mode).toBe('tag');
  });
});

describe('judging a measurement', () => {
  const plan = () => evaluate('DELETE FROM orders WHERE id > 0', doc).measure!;
  it.each([
    ['under every threshold', { count: 10 }, null, 10],
    ['over the approval threshold', { count: 11 }, 'big-writes', 11],
    ['over the block threshold: block wins', { count: 5000 }, 'orders-capped', 5000],
  ] as const)('%s', (_n, m, rule, rows) => {
    const j = judgeConsequence(plan(), m);
    expect(j.check?.rule ?? null).toBe(rule);
    expect(j.rows).toBe(rows);
  });
  it('counts per table for stats plans, only the tables a rule names', () => {
    const p = evaluate('WITH d AS (DELETE FROM orders RETURNING 1) DELETE FROM t', doc).measure!;
    const j = judgeConsequence(p, { perTable: [{ table: 'public.orders', rows: 2000 }, { table: 'public.t', rows: 3 }] });
    expect(j.check?.rule).toBe('orders-capped');
    expect(j.rows).toBe(2000);
    expect(j.tables).toEqual(['public.orders', 'public.t']);
  });
  it('reads command tags', () => {
    expect(['DELETE 3', 'UPDATE 0', 'INSERT 0 7', 'MERGE 2', 'SELECT 4', 'DO'].map(rowsOfTag)).toEqual([3, 0, 7, 2, null, null]);
  });
  it('tolerance in rows or percent', () => {
    expect(withinTolerance({ tolerance: { rows: 0 } }, 100, 100)).toBe(true);
    expect(withinTolerance({ tolerance: { rows: 0 } }, 100, 101)).toBe(false);
    expect(withinTolerance({ tolerance: { percent: 10 } }, 100, 110)).toBe(true);
    expect(withinTolerance({ tolerance: { percent: 10 } }, 100, 89)).toBe(false);
  });
  it('differences of transaction write counts', () => {
    expect(writesBetween([['public.t', '5']], [['public.t', '8'], ['"My".x', '2']])).toEqual([{ table: 'public.t', rows: 3 }, { table: 'My.x', rows: 2 }]);
  });
});

describe('sample queries', () => {
  it.each([
    ['DELETE FROM t WHERE id > 0;', 'WITH portcullis_affected AS (\nDELETE FROM t WHERE id > 0\nRETURNING *\n) SELECT * FROM portcullis_affected LIMIT 5'],
    ['UPDATE t SET v = 1 RETURNING id -- mine', 'WITH portcullis_affected AS (\nUPDATE t SET v = 1 RETURNING id -- mine\n) SELECT * FROM portcullis_affected LIMIT 5'],
    ['MERGE INTO t USING s ON true WHEN MATCHED THEN DELETE', null],
    ['SELECT 1', null],
    ['DELETE FROM t; DELETE FROM u', null],
  ])('%s', (sql, expected) => {
    expect(sampleQuery(sql, 5)).toBe(expected);
  });
});

describe('validation', () => {
  it.each([
    [{ action: 'allow', match: { rowsAffectedOver: 1 } }, 'action'],
    [{ action: 'block', match: { statements: ['DROP'], rowsAffectedOver: 1 } }, 'match.statements.0'],
    [{ action: 'block', match: { unbounded: true, rowsAffectedOver: 1 } }, 'match.unbounded'],
    [{ action: 'block', match: { statements: ['DELETE'] }, sampleRows: 3 }, 'sampleRows'],
    [{ action: 'block', match: { rowsAffectedOver: 1 }, tolerance: 'lots' }, 'tolerance'],
  ])('%j is refused at %s', (g, path) => {
    try {
      parsePolicyDocument({ name: 'x', guardrails: [{ name: 'g', ...g }] });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(PolicyValidationError);
      expect((err as PolicyValidationError).issues.map((i) => i.path).join(' ')).toContain(`guardrails.0.${path}`);
    }
  });
});
