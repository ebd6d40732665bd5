import { connect as netConnect } from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BackendMessageType as B,
  PgFramer,
  decodeDataRow,
  decodeErrorResponse,
  encodeBind,
  encodeExecute,
  encodeParse,
  encodePassword,
  encodeQuery,
  encodeStartupMessage,
  encodeSync,
  type PgFrame,
} from '@portcullis/protocol';
import { PG_ADMIN_URL, startHarness, type Harness } from './support/harness.js';
import { killAllPrograms, runProgram } from './support/run-program.js';

/**
 * The gateway never decides a statement under lexing rules other than the server's (issue 19,
 * critical 1). With standard_conforming_strings off, `SELECT 'a\'' ; DROP TABLE t; --'` is one
 * SELECT to a parser reading it with the setting on and a SELECT plus a DROP to the server. Every
 * route that changes the setting (or client_encoding) is tried, each followed by that statement:
 * the table must survive and the client must be told clearly why the session ended.
 *
 * The connection's policy is as lax as a policy gets about settings (`dynamicSql: allow`, so the
 * analyser lets SET standard_conforming_strings = off through): what stops the smuggling here is
 * the relay following the server's ParameterStatus reports, whatever route changed the setting.
 */

const SMUGGLE = "SELECT 'a\\'' ; DROP TABLE t; --'";

let h: Harness;
beforeAll(async () => {
  h = await startHarness({
    connection: { policy: 'lax' },
    policies: [{
      name: 'lax',
      version: 1,
      document: { name: 'lax', dynamicSql: 'allow', guardrails: [{ name: 'no-drop', action: 'block', match: { statements: ['DROP'] } }] },
    }],
    setupSql: `CREATE TABLE t (x int); INSERT INTO t VALUES (1);
      -- routes the analyser cannot see through: a view over pg_settings, a function that builds the name
      CREATE VIEW settings_view AS SELECT * FROM pg_settings;
      CREATE FUNCTION flip(a text, b text) RETURNS text LANGUAGE plpgsql AS $$ BEGIN RETURN set_config(a || '_strings', b, false); END $$;
      CREATE FUNCTION recode(e text) RETURNS text LANGUAGE plpgsql AS $$ BEGIN RETURN set_config('client_' || 'encoding', e, false); END $$;`,
  });
});
afterAll(async () => {
  killAllPrograms();
  await h?.stop();
});

async function tableSurvived(): Promise<boolean> {
  return (await h.targetQuery(`select to_regclass('public.t') is not null as ok`)).rows[0].ok as boolean;
}

const psql = async (...commands: string[]) => {
  const args = [h.connectionUri(await h.credential()), '-X', '-A', '-t', '-v', 'ON_ERROR_STOP=1'];
  for (const c of commands) args.push('-c', c);
  return runProgram('psql', args);
};

const SCS_OFF = /FATAL: +terminating connection: standard_conforming_strings = off is not allowed through the gateway/;
const ENCODING = (e: string) => new RegExp(`FATAL: +terminating connection: client_encoding ${e} is not allowed through the gateway: use UTF8`);

const LEXING = /ERROR: +statement blocked by rule "lexing"/;

describe('a setting that changes how the server reads SQL: refused where the analyser sees it, else the session ends (psql)', () => {
  it.each([
    // seen in the text: refused before it reaches the server, whatever dynamicSql says (the rest of the
    // text, a routine body or an EXECUTE string would be read under the new setting before any report)
    ['SET', 'SET standard_conforming_strings = off', LEXING],
    ['SET LOCAL in a transaction', 'BEGIN; SET LOCAL standard_conforming_strings = off', LEXING],
    ['set_config', "SELECT set_config('standard_conforming_strings', 'off', false)", LEXING],
    ['an UPDATE of pg_settings', "UPDATE pg_settings SET setting = 'off' WHERE name = 'standard_conforming_strings'", LEXING],
    ['SET client_encoding', "SET client_encoding = 'BIG5'", LEXING],
    ['set_config of client_encoding', "SELECT set_config('client_encoding', 'GBK', false)", LEXING],
    ['client_encoding by an UPDATE of pg_settings', "UPDATE pg_catalog.pg_settings SET setting = 'SJIS' WHERE name = 'client_encoding'", LEXING],
    // not seen in the text: the server's ParameterStatus report ends the session
    ['an UPDATE of a view over pg_settings', "UPDATE settings_view SET setting = 'off' WHERE name = 'standard_conforming_strings'", SCS_OFF],
    ['a function that builds the setting name', "SELECT flip('standard_conforming', 'off')", SCS_OFF],
    ['client_encoding by a function', "SELECT recode('UHC')", ENCODING('UHC')],
  ])('%s, then the smuggling statement', async (_route, route, message) => {
    const r = await psql(route, SMUGGLE);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(message);
    expect(await tableSurvived()).toBe(true);
  });

  it('the pg driver gets the FATAL as a 0A000 error naming the setting', async () => {
    const c = new pg.Client(h.clientConfig(await h.credential()));
    c.on('error', () => undefined);
    await c.connect();
    const err = await c.query("UPDATE settings_view SET setting = 'off' WHERE name = 'standard_conforming_strings'").then(() => null, (e: pg.DatabaseError) => e);
    expect(err?.code).toBe('0A000');
    expect(err?.severity).toBe('FATAL');
    expect(err?.message).toMatch(/standard_conforming_strings = off is not allowed through the gateway/);
    await expect(c.query(SMUGGLE)).rejects.toThrow();
    await c.end().catch(() => undefined);
    expect(await tableSurvived()).toBe(true);
  });

  it('standard_conforming_strings = on and a safe client_encoding are fine', async () => {
    const r = await psql('SET standard_conforming_strings = on', "SELECT set_config('client_encoding', 'UTF8', false)", "UPDATE pg_settings SET setting = 'on' WHERE name = 'standard_conforming_strings'", 'SHOW standard_conforming_strings');
    expect(r.stderr).toBe('');
    expect(r.stdout.trim().split('\n').at(-1)).toBe('on');
  });
});

/** Authenticates on a raw socket, then writes `pipeline` in one go and returns what came back until the gateway closed (or a ReadyForQuery count). */
async function rawPipeline(pipeline: Buffer[], startupExtra: Record<string, string> = {}, readyWanted = 99): Promise<{ frames: PgFrame[]; closed: boolean }> {
  const token = await h.credential();
  return new Promise((resolve) => {
    const s = netConnect({ host: '127.0.0.1', port: h.gateway.pgPort });
    const framer = new PgFramer({ startup: false, from: 'server' });
    const frames: PgFrame[] = [];
    let ready = 0;
    const done = (closed: boolean) => {
      clearTimeout(t);
      s.destroy();
      resolve({ frames, closed });
    };
    const t = setTimeout(() => done(false), 5000);
    s.on('error', () => undefined);
    s.on('close', () => done(true));
    s.on('data', (d) => {
      framer.push(d);
      for (let f = framer.next(); f; f = framer.next()) {
        frames.push({ ...f, payload: Buffer.from(f.payload) });
        if (f.type === B.Authentication && f.payload.readInt32BE(0) === 3) s.write(encodePassword(token));
        if (f.type === B.ReadyForQuery && ++ready === 1) s.write(Buffer.concat(pipeline));
        else if (f.type === B.ReadyForQuery && ready > readyWanted) done(false);
      }
    });
    s.on('connect', () => s.write(encodeStartupMessage({ user: 'carol', database: h.connectionName, ...startupExtra })));
  });
}

const errorsOf = (frames: PgFrame[]) => frames.filter((f) => f.type === B.ErrorResponse).map((f) => decodeErrorResponse(f.payload));
const rowsOf = (frames: PgFrame[]) => frames.filter((f) => f.type === B.DataRow).map((f) => decodeDataRow(f.payload).map((v) => v?.toString() ?? null));

describe('pipelined behind the change, in the same write (the server reads it before the gateway hears of the change)', () => {
  it('simple protocol: the smuggling Query waits for the server\'s answer, which ends the session; it never runs', async () => {
    const r = await rawPipeline([encodeQuery("UPDATE settings_view SET setting = 'off' WHERE name = 'standard_conforming_strings'"), encodeQuery(SMUGGLE)]);
    expect(r.closed).toBe(true);
    expect(errorsOf(r.frames)).toEqual([expect.objectContaining({ severity: 'FATAL', code: '0A000', message: expect.stringMatching(/standard_conforming_strings = off/) })]);
    expect(await tableSurvived()).toBe(true);
  });

  it('extended protocol in one batch: the smuggling Parse after the Execute is refused (no answer can come before Sync)', async () => {
    const r = await rawPipeline([
      encodeParse({ query: "UPDATE settings_view SET setting = 'off' WHERE name = 'standard_conforming_strings'" }), encodeBind({}), encodeExecute(),
      encodeParse({ query: SMUGGLE }), encodeBind({}), encodeExecute(), encodeSync(),
      encodeQuery('SHOW standard_conforming_strings'),
    ], {}, 2);
    // the refusal aborts the batch's implicit transaction, and with it the change (settings are
    // transactional): the server reports nothing, the session goes on with the setting on
    expect(errorsOf(r.frames)).toEqual([expect.objectContaining({ severity: 'ERROR', code: '42501', message: expect.stringMatching(/rule "lexing".*send Sync before it/) })]);
    expect(rowsOf(r.frames).at(-1)).toEqual(['on']);
    expect(await tableSurvived()).toBe(true);
  });

  it('extended protocol after a Sync: the Parse waits for the answer and the session ends', async () => {
    const r = await rawPipeline([
      encodeParse({ query: "SELECT flip('standard_conforming', 'off')" }), encodeBind({}), encodeExecute(), encodeSync(),
      encodeParse({ query: SMUGGLE }), encodeBind({}), encodeExecute(), encodeSync(),
    ]);
    expect(r.closed).toBe(true);
    expect(errorsOf(r.frames)).toEqual([expect.objectContaining({ severity: 'FATAL', code: '0A000' })]);
    expect(await tableSurvived()).toBe(true);
  });

  it('a harmless pipeline with backslashes and non-ASCII text is only held, never refused', async () => {
    const r = await rawPipeline([encodeQuery('SELECT 1'), encodeQuery("SELECT 'a\\b', 'ü'"), encodeParse({ query: "SELECT 'c\\d'" }), encodeBind({}), encodeExecute(), encodeSync()], {}, 3);
    expect(errorsOf(r.frames)).toEqual([]);
    expect(rowsOf(r.frames)).toEqual([['1'], ['a\\b', 'ü'], ['c\\d']]);
  });
});

describe('settings a session starts with', () => {
  it.each([
    [{ standard_conforming_strings: 'off' }, /standard_conforming_strings = off is not allowed through the gateway/],
    [{ client_encoding: 'SJIS' }, /client_encoding SJIS is not allowed through the gateway: use UTF8/],
  ])('a startup parameter %j is refused before anything reaches the target (22023)', async (param, message) => {
    const r = await rawPipeline([], param);
    expect(r.closed).toBe(true);
    expect(errorsOf(r.frames)).toEqual([expect.objectContaining({ severity: 'FATAL', code: '22023', message: expect.stringMatching(message) })]);
  });

  it('ALTER DATABASE / ALTER ROLE … SET take effect in later sessions straight to the target, never through the gateway: it pins the settings, RESET returns to them', async () => {
    const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
    await admin.connect();
    try {
      await admin.query(`ALTER DATABASE ${h.dbName} SET standard_conforming_strings = off`);
      await admin.query(`ALTER ROLE postgres IN DATABASE ${h.dbName} SET client_encoding = 'SJIS'`);
      // straight to the target, a new session has them
      const direct = await runProgram('psql', [PG_ADMIN_URL.replace(/\/[^/?]*(\?|$)/, `/${h.dbName}$1`), '-XAt', '-c', 'SHOW standard_conforming_strings', '-c', 'SHOW client_encoding']);
      expect(direct.stdout.trim().split('\n')).toEqual(['off', 'SJIS']);
      // through the gateway: the settings it reads SQL by, before and after RESET / DISCARD ALL, and the smuggling statement is one SELECT
      const r = await psql('SHOW standard_conforming_strings', 'SHOW client_encoding', 'RESET ALL', 'RESET standard_conforming_strings', 'DISCARD ALL',
        'SHOW standard_conforming_strings', 'SHOW client_encoding', SMUGGLE);
      expect(r.stderr).toBe('');
      expect(r.stdout.trim().split('\n')).toEqual(['on', 'UTF8', 'RESET', 'RESET', 'DISCARD ALL', 'on', 'UTF8', "a\\' ; DROP TABLE t; --"]);
      expect(await tableSurvived()).toBe(true);
    } finally {
      await admin.query(`ALTER DATABASE ${h.dbName} RESET ALL`);
      await admin.query(`ALTER ROLE postgres IN DATABASE ${h.dbName} RESET ALL`);
      await admin.end();
    }
  });
});
