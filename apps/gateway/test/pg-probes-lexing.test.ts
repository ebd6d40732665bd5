import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from './support/harness.js';
import { killAllPrograms, runProgram } from './support/run-program.js';

/**
 * Issue 19 critical 1, run again with routes the first fix's tests do not take. A lexing setting
 * changed where the server never reports it (a routine's SET clause, SET LOCAL or set_config inside
 * a DO block or routine body, ALTER SYSTEM) would let text the gateway analysed — a routine body, a
 * constant EXECUTE string — be read differently by the server. Such changes are refused outright
 * (rule "lexing"), whatever dynamicSql says; the ones the server reports are followed (pg-lexing.test.ts).
 * The policy is as lax as it gets (dynamicSql: allow), with one guardrail the smuggled DROP would dodge.
 */
const BODY = "SELECT 'a\\'' ; DROP TABLE t; --'";

let h: Harness;
beforeAll(async () => {
  h = await startHarness({
    connection: { policy: 'lax' },
    policies: [{ name: 'lax', version: 1, document: { name: 'lax', dynamicSql: 'allow', guardrails: [{ name: 'no-drop', action: 'block', match: { statements: ['DROP'] } }] } }],
    setupSql: `CREATE TABLE t (x int); INSERT INTO t VALUES (1);
      CREATE FUNCTION plain() RETURNS void LANGUAGE sql AS $$ ${BODY} $$;
      CREATE VIEW settings_view AS SELECT * FROM pg_settings;`,
  });
});
afterAll(async () => {
  killAllPrograms();
  await h?.stop();
});

async function tableSurvived(): Promise<boolean> {
  return (await h.targetQuery(`select to_regclass('public.t') is not null as ok`)).rows[0].ok as boolean;
}

async function psql(...commands: string[]) {
  const args = [h.connectionUri(await h.credential()), '-X', '-A', '-t', '-v', 'ON_ERROR_STOP=1'];
  for (const c of commands) args.push('-c', c);
  return runProgram('psql', args);
}

describe('lexing changes the server never reports are refused (re-run)', () => {
  it.each([
    ['a SQL function\'s SET clause', [`CREATE FUNCTION f1() RETURNS void LANGUAGE sql SET standard_conforming_strings = off AS $$ ${BODY} $$`, 'SELECT f1()']],
    ['a procedure\'s SET clause', [`CREATE PROCEDURE p1() LANGUAGE sql SET standard_conforming_strings TO 'off' AS $$ ${BODY} $$`, 'CALL p1()']],
    ['a PL/pgSQL function\'s SET clause with a constant EXECUTE', [`CREATE FUNCTION f2() RETURNS void LANGUAGE plpgsql SET standard_conforming_strings = false AS $f$ BEGIN EXECUTE $q$${BODY}$q$; END $f$`, 'SELECT f2()']],
    ['ALTER FUNCTION … SET of an existing function', ['ALTER FUNCTION plain() SET standard_conforming_strings = off', 'SELECT plain()']],
    ['SET LOCAL inside a DO block, then a constant EXECUTE', [`DO $f$ BEGIN SET LOCAL standard_conforming_strings = off; EXECUTE $q$${BODY}$q$; END $f$`]],
    ['set_config(…, true) inside a DO block, then a constant EXECUTE', [`DO $f$ BEGIN PERFORM set_config('standard_conforming_strings', 'off', true); EXECUTE $q$${BODY}$q$; END $f$`]],
    ['an UPDATE of pg_settings inside a DO block', [`DO $f$ BEGIN UPDATE pg_settings SET setting = 'off' WHERE name = 'standard_conforming_strings'; EXECUTE $q$${BODY}$q$; END $f$`]],
    ['set_config in a function body', [`CREATE FUNCTION f3() RETURNS void LANGUAGE plpgsql AS $f$ BEGIN PERFORM set_config('standard_conforming_strings', 'off', true); EXECUTE $q$${BODY}$q$; END $f$`, 'SELECT f3()']],
    ['set_config in SQL run by query_to_xml', [`SELECT query_to_xml($q$SELECT set_config('standard_conforming_strings', 'off', true)$q$, true, true, '')`]],
    ['ALTER SYSTEM (refused before the server; the server would refuse it in a transaction anyway)', ['BEGIN', 'ALTER SYSTEM SET standard_conforming_strings = off']],
    ['ALTER SYSTEM of client_encoding', ['BEGIN', "ALTER SYSTEM SET client_encoding = 'SJIS'"]],
    // a change the analyser cannot see (a view over pg_settings) is reported only after the whole query:
    // source the server lexes later in the same query must read alike under either setting
    ['a view UPDATE, then a DO block\'s EXECUTE string in the same query', [`UPDATE settings_view SET setting = 'off' WHERE name = 'standard_conforming_strings'; DO $f$ BEGIN EXECUTE $q$${BODY}$q$; END $f$`]],
    ['a view UPDATE inside a DO block, then its EXECUTE string', [`DO $f$ BEGIN UPDATE settings_view SET setting = 'off' WHERE name = 'standard_conforming_strings'; EXECUTE $q$${BODY}$q$; END $f$`]],
    ['a view UPDATE, then a DO block whose own body has the string', [`UPDATE settings_view SET setting = 'off' WHERE name = 'standard_conforming_strings'; DO $f$ BEGIN PERFORM ${BODY.slice(7)}\nEND $f$`]],
    ['a function created with such a body (to be called after a view UPDATE)', [`CREATE FUNCTION g() RETURNS void LANGUAGE sql AS $$ ${BODY} $$`]],
  ])('%s: refused by rule lexing, and the table survives', async (_name, commands) => {
    const r = await psql(...commands);
    if (process.env.PROBE_REPORT) console.log(`PROBE ${_name}: ${r.stderr.slice(0, 300)}`);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/ERROR: +statement blocked by rule "lexing"/);
    expect(await tableSurvived()).toBe(true);
  });

  it('late-lexed strings that read alike either way (E\'…\', dollar quotes, no backslash) stay allowed', async () => {
    const r = await psql(
      "DO $f$ BEGIN EXECUTE 'SELECT 1'; EXECUTE $q$SELECT E'a\\\\b'$q$; PERFORM E'x\\y', $d$c\\d$d$; END $f$",
      "CREATE FUNCTION ok2() RETURNS text LANGUAGE sql AS $$ SELECT E'1\\\\2' || $x$\\$x$ $$",
      'SELECT ok2()',
    );
    expect(r.stderr).toBe('');
    expect(r.stdout.trim().split('\n').at(-1)).toBe('1\\2\\');
  });

  it('settings the parser reads alike stay allowed in a routine\'s SET clause and a DO block', async () => {
    const r = await psql(
      'CREATE FUNCTION ok1() RETURNS text LANGUAGE sql SET standard_conforming_strings = on SET search_path = public AS $$ SELECT current_setting(\'search_path\') $$',
      "DO $f$ BEGIN SET LOCAL standard_conforming_strings = on; PERFORM set_config('client_encoding', 'UTF8', true); END $f$",
      'SELECT ok1()',
    );
    expect(r.stderr).toBe('');
    expect(r.stdout.trim().split('\n').at(-1)).toBe('public');
  });
});

describe('lexing changes the server reports are followed (re-run)', () => {
  it('pg driver: set_config with the name and value as parameters of a prepared statement ends the session before the smuggle', async () => {
    const c = new pg.Client(h.clientConfig(await h.credential()));
    c.on('error', () => undefined);
    await c.connect();
    const err = await c.query('SELECT set_config($1, $2, false)', ['standard_conforming_strings', 'off']).then(() => null, (e: pg.DatabaseError) => e);
    expect(err?.severity).toBe('FATAL');
    expect(err?.message).toMatch(/standard_conforming_strings = off is not allowed through the gateway/);
    await expect(c.query(BODY)).rejects.toThrow();
    await c.end().catch(() => undefined);
    expect(await tableSurvived()).toBe(true);
  });

  it.each([
    ['options -c', { options: '-c standard_conforming_strings=off' }],
    ['options --name=value', { options: '--standard-conforming-strings=off' }],
    ['options -c client_encoding', { options: '-c client_encoding=SJIS' }],
    ['options with an escaped space', { options: '-c standard_conforming_strings=of\\ f' }],
  ])('startup %s: refused, or the server keeps the setting on', async (_name, extra) => {
    const c = new pg.Client({ ...h.clientConfig(await h.credential()), ...extra });
    c.on('error', () => undefined);
    const connected = await c.connect().then(() => true, () => false);
    if (connected) {
      const r = await c.query<{ scs: string; enc: string }>("SELECT current_setting('standard_conforming_strings') AS scs, current_setting('client_encoding') AS enc");
      expect(r.rows[0]).toEqual({ scs: 'on', enc: 'UTF8' });
      await c.query(BODY).catch(() => undefined);
      await c.end();
    }
    expect(await tableSurvived()).toBe(true);
  });

  it('psql: a transaction rolled back after a set_config the analyser cannot name still ends the session (the server reported off at once)', async () => {
    const r = await psql('BEGIN', "SELECT set_config(name, 'off', false) FROM pg_settings WHERE name LIKE 'standard_conforming%'", 'ROLLBACK', BODY);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/standard_conforming_strings = off is not allowed through the gateway/);
    expect(await tableSurvived()).toBe(true);
  });
});
