import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PG_ADMIN_URL, startHarness, waitFor, type Harness } from './support/harness.js';

/**
 * Every gateway user shares one database role upstream, so a way around `no-session-killing` lets
 * one user end everyone's sessions. Each detour below — an operator, a cast, an aggregate bound to
 * pg_terminate_backend / pg_cancel_backend, and ts_rewrite running SQL from text — is refused with
 * 42501 naming the rule, and another user's session, connected through the same gateway, lives on.
 */
const policy = {
  name: 'default',
  guardrails: [
    {
      name: 'no-session-killing', action: 'block', reason: 'Terminating other backends is not allowed through the gateway.',
      match: { functions: ['pg_terminate_backend', 'pg_cancel_backend'] },
    },
  ],
  dynamicSql: 'block',
};

let h: Harness;
let victim: pg.Client;
let victimPid: number;

beforeAll(async () => {
  h = await startHarness({ connection: { policy: 'default' }, policies: [{ name: 'default', version: 1, document: policy }] });
  victim = new pg.Client(h.clientConfig(await h.credential()));
  await victim.connect();
  victimPid = (await victim.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
});
afterAll(async () => {
  await victim?.end().catch(() => undefined);
  await h?.stop();
});

async function attacker(): Promise<pg.Client> {
  const c = new pg.Client(h.clientConfig(await h.credential()));
  await c.connect();
  return c;
}

async function refusal(c: pg.Client, sql: string): Promise<pg.DatabaseError | null> {
  return c.query(sql).then(() => null, (e: pg.DatabaseError) => e);
}

/** The victim answers, and its backend is still there. */
async function expectVictimAlive(): Promise<void> {
  expect((await victim.query<{ n: number }>('SELECT 1 AS n')).rows[0]!.n).toBe(1);
  const { rows } = await h.targetQuery('SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = $1', [victimPid]);
  expect(rows[0].n).toBe(1);
}

/**
 * Without the gateway the detour works: run directly on the target, `sql` (with `$PID`) ends a
 * session of its own. Shows each refused text is a real way to end a session, not a strawman.
 */
async function expectDetourKillsDirectly(sql: string): Promise<void> {
  const direct = new pg.Client({ connectionString: PG_ADMIN_URL.replace(/\/[^/?]*(\?|$)/, `/${h.dbName}$1`) });
  await direct.connect();
  const ended = new Promise<void>((resolve) => direct.on('error', () => resolve()).once('end', () => resolve()));
  const pid = (await direct.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
  await h.targetQuery(sql.replace('$PID', String(pid)));
  await ended;
  // the client sees its socket close a moment before the backend leaves pg_stat_activity
  await waitFor(async () => (await h.targetQuery('SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = $1', [pid])).rows[0].n === 0, 20_000, 50);
}

describe('guardrail detours through the gateway', () => {
  it('an operator over pg_terminate_backend: refused when created, and an existing one is refused when used', async () => {
    const c = await attacker();
    try {
      const create = await refusal(c, `CREATE OPERATOR ### (FUNCTION = pg_terminate_backend, LEFTARG = int, RIGHTARG = bigint)`);
      expect(create?.code).toBe('42501');
      expect(create?.message).toMatch(/no-session-killing/);
      expect((await h.targetQuery(`SELECT count(*)::int AS n FROM pg_operator WHERE oprname = '###'`)).rows[0].n).toBe(0);

      // the same operator made outside the gateway (by a migration, another tool): its use cannot be
      // analysed — the function is not in the text — so it gets the dynamicSql action
      await h.targetQuery('CREATE OPERATOR ### (FUNCTION = pg_terminate_backend, LEFTARG = int, RIGHTARG = bigint)');
      const use = await refusal(c, `SELECT ${victimPid} ### 0::bigint`);
      expect(use?.code).toBe('42501');
      expect(use?.message).toMatch(/dynamicSql/);
      expect(use?.message).toMatch(/operator ### is not a built-in operator/);
      const qualified = await refusal(c, `SELECT ${victimPid} OPERATOR(public.###) 0::bigint`);
      expect(qualified?.code).toBe('42501');
      await expectDetourKillsDirectly('SELECT $PID ### 0::bigint');
      await expectVictimAlive();
      expect((await c.query<{ n: number }>('SELECT 1 AS n')).rows[0]!.n).toBe(1);
    } finally {
      await c.end();
    }
  });

  it('a cast over pg_cancel_backend is refused when created', async () => {
    const c = await attacker();
    try {
      const err = await refusal(c, 'CREATE CAST (int AS bool) WITH FUNCTION pg_cancel_backend(int) AS IMPLICIT');
      expect(err?.code).toBe('42501');
      expect(err?.message).toMatch(/no-session-killing/);
      expect(err?.message).toMatch(/Terminating other backends is not allowed/);
      await expectVictimAlive();
    } finally {
      await c.end();
    }
  });

  it('an aggregate whose state function is pg_terminate_backend is refused when created', async () => {
    const c = await attacker();
    try {
      const err = await refusal(c, 'CREATE AGGREGATE killall(bigint) (SFUNC = pg_terminate_backend, STYPE = int)');
      expect(err?.code).toBe('42501');
      expect(err?.message).toMatch(/no-session-killing/);
      expect((await h.targetQuery(`SELECT count(*)::int AS n FROM pg_proc WHERE proname = 'killall'`)).rows[0].n).toBe(0);
      await expectVictimAlive();
    } finally {
      await c.end();
    }
  });

  it('ts_rewrite running pg_terminate_backend from its query text is refused', async () => {
    const detour = `SELECT ts_rewrite('a'::tsquery, $q$SELECT 'a'::tsquery, 'b'::tsquery WHERE pg_terminate_backend(${victimPid})$q$)`;
    const c = await attacker();
    try {
      const err = await refusal(c, detour);
      expect(err?.code).toBe('42501');
      expect(err?.message).toMatch(/no-session-killing/);
      // the extended protocol (a prepared statement) is decided the same way
      const prepared = await c.query({ text: detour, values: [] }).then(() => null, (e: pg.DatabaseError) => e);
      expect(prepared?.code).toBe('42501');
      await expectVictimAlive();
      await expectDetourKillsDirectly(detour.replace(String(victimPid), '$PID'));
    } finally {
      await c.end();
    }
  });
});
