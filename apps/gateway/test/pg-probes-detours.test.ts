import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from './support/harness.js';

/**
 * Issue 19 high 4, run again: every object that makes Postgres call a function later — a rule, a
 * view, a policy, a default, a generated column, a domain CHECK, an index expression, a trigger, an
 * event trigger, an operator's support function — over a guarded function is the guarded call, and
 * is refused when created (42501 naming the rule); the victim session lives on.
 */
const policy = {
  name: 'default',
  guardrails: [
    { name: 'no-session-killing', action: 'block', match: { functions: ['pg_terminate_backend', 'pg_cancel_backend'] } },
    // as in the demo policy: a program on the database host could end any backend
    { name: 'no-copy-program', action: 'block', match: { copy: 'program' } },
  ],
  dynamicSql: 'block',
};

let h: Harness;
let victim: pg.Client;
let victimPid: number;
beforeAll(async () => {
  h = await startHarness({ connection: { policy: 'default' }, policies: [{ name: 'default', version: 1, document: policy }], setupSql: 'CREATE TABLE t (id int, pid int)' });
  victim = new pg.Client(h.clientConfig(await h.credential()));
  await victim.connect();
  victimPid = (await victim.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
});
afterAll(async () => {
  await victim?.end().catch(() => undefined);
  await h?.stop();
});

describe('guardrail detours (re-run)', () => {
  const P = () => String(victimPid);
  it.each([
    ['a rule DO INSTEAD SELECT', () => `CREATE RULE r1 AS ON INSERT TO t DO INSTEAD SELECT pg_cancel_backend(${P()})`],
    ['a rule DO ALSO over NEW', () => 'CREATE RULE r2 AS ON INSERT TO t DO ALSO SELECT pg_terminate_backend(NEW.pid)'],
    ['a view', () => `CREATE VIEW v1 AS SELECT pg_terminate_backend(${P()})`],
    ['a policy', () => 'CREATE POLICY p1 ON t USING (pg_terminate_backend(pid))'],
    ['a column default', () => `ALTER TABLE t ALTER COLUMN id SET DEFAULT pg_cancel_backend(${P()})::int`],
    ['a generated column', () => 'ALTER TABLE t ADD COLUMN g boolean GENERATED ALWAYS AS (pg_terminate_backend(pid)) STORED'],
    ['a domain CHECK', () => 'CREATE DOMAIN killer AS int CHECK (pg_terminate_backend(VALUE))'],
    ['an index expression', () => 'CREATE INDEX ON t ((pg_cancel_backend(pid)))'],
    ['a partial index predicate', () => 'CREATE INDEX ON t (id) WHERE pg_cancel_backend(pid)'],
    ['a table CHECK constraint', () => 'ALTER TABLE t ADD CONSTRAINT c CHECK (pg_terminate_backend(pid))'],
    ['a SQL function body', () => `CREATE FUNCTION f1() RETURNS boolean LANGUAGE sql AS $$ SELECT pg_terminate_backend(${P()}) $$`],
    ['a SQL-standard function body', () => `CREATE FUNCTION f2() RETURNS boolean LANGUAGE sql RETURN pg_terminate_backend(${P()})`],
    ['a trigger function', () => `CREATE FUNCTION tf() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_terminate_backend(NEW.pid); RETURN NEW; END $$`],
    ['an event trigger function', () => `CREATE FUNCTION ef() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_terminate_backend(${P()}); END $$`],
    ['an operator with a restrict estimator', () => 'CREATE OPERATOR ##% (FUNCTION = int4eq, LEFTARG = int, RIGHTARG = int, RESTRICT = pg_terminate_backend)'],
    ['a qualified call', () => `SELECT pg_catalog.pg_terminate_backend(${P()})`],
    ['a quoted call', () => `SELECT "pg_terminate_backend"(${P()})`],
    ['EXECUTE of a prepared statement', () => `PREPARE k AS SELECT pg_terminate_backend($1)`],
    ['a COPY … FROM PROGRAM', () => `COPY t FROM PROGRAM 'kill -TERM ${P()}'`],
    ['a lateral function in FROM', () => `SELECT * FROM pg_terminate_backend(${P()})`],
    ['a data-modifying CTE', () => `WITH x AS (SELECT pg_cancel_backend(${P()})) SELECT * FROM x`],
    ['ALTER FUNCTION … SUPPORT', () => 'ALTER FUNCTION int4eq(int, int) SUPPORT pg_terminate_backend'],
  ])('%s is refused, and the victim lives', async (_name, sql) => {
    const c = new pg.Client(h.clientConfig(await h.credential()));
    c.on('error', () => undefined);
    await c.connect();
    try {
      const err = await c.query(sql()).then(() => null, (e: pg.DatabaseError) => e);
      if (process.env.PROBE_REPORT) console.log(`PROBE ${_name}: ${err?.code} ${err?.message?.slice(0, 160)}`);
            expect(err?.code).toBe('42501');
      expect(err?.message).toMatch(/rule "no-(session-killing|copy-program)"/);
      expect((await victim.query<{ n: number }>('SELECT 1 AS n')).rows[0]!.n).toBe(1);
      const { rows } = await h.targetQuery(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = $1`, [victimPid]);
      expect(rows[0].n).toBe(1);
    } finally {
      await c.end().catch(() => undefined);
    }
  });
});
