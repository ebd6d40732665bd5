import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from './support/harness.js';
import { killAllPrograms, runProgram } from './support/run-program.js';

/**
 * What CREATE FUNCTION / CREATE PROCEDURE stores runs on every later call, out of the gateway's
 * sight: the body is checked when the routine is created, with psql and the pg driver (extended
 * protocol), and a refusal comes from the gateway (42501, the rule's name), not from Postgres.
 */

const policy = {
  name: 'default',
  guardrails: [
    { name: 'no-destructive-ddl', action: 'block', match: { statements: ['DROP', 'TRUNCATE', 'ALTER'] }, reason: 'Destructive DDL goes through a migration.' },
    { name: 'no-session-killing', action: 'block', match: { functions: ['pg_terminate_backend', 'pg_cancel_backend'] } },
    { name: 'bulk-writes', action: 'require_approval', match: { statements: ['DELETE', 'UPDATE'], unbounded: true } },
  ],
  dynamicSql: 'block',
  masking: [],
};

let h: Harness;
beforeAll(async () => {
  h = await startHarness({
    connection: { policy: 'default' },
    policies: [{ name: 'default', version: 1, document: policy }],
    setupSql: `CREATE TABLE victim (x int); INSERT INTO victim VALUES (1), (2);
      CREATE TABLE counters (id int primary key, n int not null); INSERT INTO counters VALUES (1, 0), (2, 0);`,
  });
});
afterAll(async () => {
  killAllPrograms();
  await h?.stop();
});

async function psql(sql: string) {
  const token = await h.credential();
  return runProgram('psql', ['-X', '-v', 'ON_ERROR_STOP=1', '-v', 'VERBOSITY=verbose', '-d', h.connectionUri(token, 'target'), '-c', sql]);
}

async function routineExists(name: string): Promise<boolean> {
  return (await h.targetQuery('select count(*)::int as n from pg_proc where proname = $1', [name])).rows[0].n > 0;
}

describe('routine bodies through the gateway', () => {
  it.each([
    ['a SQL function that drops a table', "CREATE FUNCTION wipe() RETURNS void LANGUAGE sql AS 'DROP TABLE victim'", 'wipe', /no-destructive-ddl.*Destructive DDL goes through a migration/s],
    ['a PL/pgSQL procedure that EXECUTEs a constant TRUNCATE', "CREATE PROCEDURE purge() LANGUAGE plpgsql AS $$ BEGIN EXECUTE 'TRUNC' || 'ATE victim'; END $$", 'purge', /no-destructive-ddl/],
    ['a function that kills sessions', 'CREATE FUNCTION kill_all() RETURNS SETOF bool LANGUAGE sql AS $$ SELECT pg_terminate_backend(pid) FROM pg_stat_activity $$', 'kill_all', /no-session-killing/],
    ['a PL/pgSQL function that EXECUTEs a built string', "CREATE FUNCTION run(q text) RETURNS void LANGUAGE plpgsql AS $$ BEGIN EXECUTE q; END $$", 'run', /dynamicSql.*cannot be analysed/s],
    ['a function in a language the gateway cannot read', "CREATE FUNCTION py() RETURNS void LANGUAGE plpython3u AS $$ plpy.execute('DROP TABLE victim') $$", 'py', /language plpython3u cannot be analysed/],
  ])('psql: %s is refused by the gateway and never created', async (_name, sql, routine, message) => {
    const r = await psql(sql);
    expect(r.code).not.toBe(0);
    // 42501 is the gateway's refusal; Postgres itself would have created these (or said 42704 for plpython3u)
    expect(r.stderr).toMatch(/ERROR:\s+42501:/);
    expect(r.stderr).toMatch(message);
    expect(await routineExists(routine)).toBe(false);
    expect((await h.targetQuery('select count(*)::int as n from victim')).rows[0].n).toBe(2);
  });

  it('psql: a function with a bounded update is created and runs; one with an unbounded update waits for approval', async () => {
    const ok = await psql('CREATE FUNCTION bump(p_id int) RETURNS int LANGUAGE plpgsql AS $$ BEGIN UPDATE counters SET n = n + 1 WHERE id = p_id; RETURN p_id; END $$');
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    const call = await psql('SELECT bump(1); SELECT bump(1);');
    expect(call.code).toBe(0);
    expect((await h.targetQuery('select n from counters order by id')).rows.map((r) => r.n)).toEqual([2, 0]);

    const held = await psql('CREATE FUNCTION bump_all() RETURNS void LANGUAGE sql AS $$ UPDATE counters SET n = n + 1 $$');
    expect(held.code).not.toBe(0);
    expect(held.stderr).toMatch(/requires approval by rule "bulk-writes"/);
    expect(await routineExists('bump_all')).toBe(false);
  });

  it('pg driver, extended protocol: the body is checked at Parse; the session goes on', async () => {
    const c = new pg.Client(h.clientConfig(await h.credential()));
    await c.connect();
    try {
      const err = await c
        .query({ name: 'mk', text: "CREATE OR REPLACE FUNCTION wipe2() RETURNS void LANGUAGE plpgsql AS $$ BEGIN DROP TABLE victim; END $$" })
        .then(() => null, (e: pg.DatabaseError) => e);
      expect(err?.code).toBe('42501');
      expect(err?.message).toMatch(/no-destructive-ddl/);
      expect(await routineExists('wipe2')).toBe(false);
      await c.query({ name: 'mk2', text: "CREATE FUNCTION shout(t text) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT upper(t) || '!' $$" });
      expect((await c.query('SELECT shout($1) AS s', ['hi'])).rows[0].s).toBe('HI!');
    } finally {
      await c.end();
    }
  });
});
