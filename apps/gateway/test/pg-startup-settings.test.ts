import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from './support/harness.js';
import { killAllPrograms, runProgram } from './support/run-program.js';

/**
 * Startup settings reach the target (issue 18 §3): node-postgres's statement_timeout, options and
 * search_path, psql's PGOPTIONS. A setting the policy refuses (role, session_authorization by
 * default) or one the gateway's parser could not follow refuses the session with a clear error —
 * never dropped in silence.
 */

let h: Harness;
beforeAll(async () => {
  h = await startHarness({
    setupSql: 'CREATE SCHEMA other; CREATE TABLE other.marker (v text); INSERT INTO other.marker VALUES (\'found in other\');',
    connections: [],
  });
  const target = h.snapshotInput.connections[0]!;
  await h.putSnapshot({
    connections: [target, { ...target, name: 'strict', policy: 'strict' }],
    policies: [{ name: 'strict', version: 1, document: { name: 'strict', dynamicSql: 'allow', refusedSettings: ['work_mem', 'role'] } }],
  });
});
afterAll(async () => {
  killAllPrograms();
  await h?.stop();
});

async function pgClient(extra: pg.ClientConfig, db?: string): Promise<pg.Client> {
  const c = new pg.Client({ ...h.clientConfig(await h.credential(db ? { cn: db } : {}), db), ...extra });
  c.on('error', () => undefined);
  await c.connect();
  return c;
}

const show = async (c: pg.Client, name: string) => (await c.query(`SHOW ${name}`)).rows[0][name];

describe('node-postgres', () => {
  it('statement_timeout cancels a statement that runs longer (57014)', async () => {
    const c = await pgClient({ statement_timeout: 300 });
    try {
      expect(await show(c, 'statement_timeout')).toBe('300ms');
      const t0 = Date.now();
      const err = await c.query('SELECT pg_sleep(5)').then(() => null, (e: pg.DatabaseError) => e);
      expect(err?.code).toBe('57014');
      expect(Date.now() - t0).toBeLessThan(3000);
    } finally {
      await c.end();
    }
  });

  it('options (-c and --name, escaped spaces), idle_in_transaction_session_timeout, lock_timeout and application_name', async () => {
    const c = await pgClient({
      options: '-c search_path=other,public -c default_transaction_isolation=repeatable\\ read --lock-timeout=1234',
      idle_in_transaction_session_timeout: 4321,
      application_name: 'startup-settings-test',
    });
    try {
      expect(await show(c, 'search_path')).toBe('other,public');
      expect(await show(c, 'default_transaction_isolation')).toBe('repeatable read');
      expect(await show(c, 'lock_timeout')).toBe('1234ms');
      expect(await show(c, 'idle_in_transaction_session_timeout')).toBe('4321ms');
      expect(await show(c, 'application_name')).toBe('startup-settings-test');
      expect((await c.query('SELECT v FROM marker')).rows).toEqual([{ v: 'found in other' }]);
    } finally {
      await c.end();
    }
  });

  it('a setting the policy refuses ends the connect with 42501 naming it', async () => {
    const err = await pgClient({ options: '-c work_mem=64MB' }, 'strict').then((c) => c.end().then(() => null), (e: pg.DatabaseError) => e);
    expect(err?.code).toBe('42501');
    expect(err?.message).toMatch(/setting work_mem is refused by the connection's policy/);
    // the same policy lets other settings through
    const c = await pgClient({ options: '-c statement_timeout=1s' }, 'strict');
    expect(await show(c, 'statement_timeout')).toBe('1s');
    await c.end();
  });
});

describe('psql with PGOPTIONS', () => {
  const psql = async (options: string, sql: string) =>
    runProgram('psql', [h.connectionUri(await h.credential()), '-XAtc', sql], { env: { PGOPTIONS: options } });

  it('settings reach the target', async () => {
    const r = await psql('-c statement_timeout=250 -c search_path=other --work-mem=5MB', 'SHOW statement_timeout; SHOW search_path; SHOW work_mem');
    expect(r.stderr).toBe('');
    expect(r.stdout.trim().split('\n')).toEqual(['250ms', 'other', '5MB']);
  });

  it.each([
    ['-c role=postgres', /FATAL: +setting role is refused by the connection's policy/],
    ['-c session_authorization=postgres', /FATAL: +setting session_authorization is refused/],
    ['-c standard_conforming_strings=off', /FATAL: +standard_conforming_strings = off is not allowed through the gateway/],
    ['-c client_encoding=BIG5', /FATAL: +client_encoding BIG5 is not allowed through the gateway: use UTF8/],
    ['-B 1000', /FATAL: +options may carry only -c name=value and --name=value/],
    ['-c no_such_setting_at_all=1', /FATAL: +the target refused a setting of this session: unrecognized configuration parameter "no_such_setting_at_all"/],
  ])('%s is refused with a clear FATAL', async (options, message) => {
    const r = await psql(options, 'SELECT 1');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(message);
  });
});

describe('psycopg2 with options=', () => {
  // Debian's python3-psycopg2 (installed by .ci/run): libpq sends `options` as one startup parameter.
  const SCRIPT = String.raw`
import sys, psycopg2, psycopg2.extensions
conn = psycopg2.connect(sys.argv[1], options='-c statement_timeout=200 -c search_path=other')
conn.autocommit = True
out = {}
with conn.cursor() as c:
    c.execute('SHOW statement_timeout'); out['timeout'] = c.fetchone()[0]
    c.execute('SELECT v FROM marker'); out['marker'] = c.fetchone()[0]
    try:
        c.execute('SELECT pg_sleep(5)')
        out['sleep'] = 'ran'
    except psycopg2.extensions.QueryCanceledError:
        out['sleep'] = 'cancelled'
print(repr(out))
`;

  it('statement_timeout and search_path from options reach the target', async () => {
    const r = await runProgram('/usr/bin/python3', ['-c', SCRIPT, h.connectionUri(await h.credential())], { timeoutMs: 30_000 });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout.trim().replace(/'/g, '"'))).toEqual({ timeout: '200ms', marker: 'found in other', sleep: 'cancelled' });
  });
});
