import { spawn } from 'node:child_process';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startApprovalsStack, type ApprovalsStack } from '../../../test/support/approvals-stack.js';

/**
 * Approval by consequence (issue 20) against real Postgres through the gateway, with psql and the pg
 * driver: writes are measured inside a savepoint and held only when they would change more rows
 * than the rule allows, whatever their text looks like.
 */

let s: ApprovalsStack;
const THRESHOLD = 3;
const ROWS = 10;

beforeAll(async () => {
  s = await startApprovalsStack({
    timeoutSeconds: 30,
    policy: {
      guardrails: [
        { name: 'big-writes', action: 'require_approval', match: { statements: ['DELETE', 'UPDATE', 'MERGE', 'INSERT'], rowsAffectedOver: THRESHOLD }, sampleRows: 2 },
      ],
      dynamicSql: 'block',
      masking: [{ name: 'emails', columns: ['email'], strategy: 'redact' }],
    },
    setupSql: `CREATE TABLE t (id int primary key, v text, email text); CREATE TABLE src (id int primary key);
      CREATE TABLE u (id int primary key, v int, CONSTRAINT u_pos UNIQUE (v) DEFERRABLE INITIALLY DEFERRED);`,
  });
}, 90_000);

afterAll(async () => {
  await s?.stop();
});

beforeEach(async () => {
  await s.h.targetQuery(`TRUNCATE t, src; INSERT INTO t SELECT g, 'v' || g, 'p' || g || '@example.com' FROM generate_series(1, ${ROWS}) g; INSERT INTO src SELECT g FROM generate_series(1, ${ROWS}) g`);
});

const count = async (): Promise<number> => (await s.h.targetQuery('SELECT count(*)::int AS n FROM t')).rows[0].n;

function psql(uri: string, sql: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const p = spawn('psql', [uri, '-X', '-c', sql], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  p.stdout.on('data', (b: Buffer) => { stdout += b.toString(); });
  p.stderr.on('data', (b: Buffer) => { stderr += b.toString(); });
  return new Promise((resolve) => p.on('close', (code) => resolve({ code, stdout, stderr })));
}

// the disguises of issue 20, each over the whole table and bounded to one row
const disguises: [string, string, string][] = [
  ['IS NOT NULL', 'DELETE FROM t WHERE id IS NOT NULL', 'DELETE FROM t WHERE id IS NOT NULL AND id = 1'],
  ['id > 0', 'DELETE FROM t WHERE id > 0', 'DELETE FROM t WHERE id > 9'],
  ["LIKE '%'", "DELETE FROM t WHERE v LIKE '%'", "DELETE FROM t WHERE v LIKE 'v1'"],
  ['IN (SELECT)', 'DELETE FROM t WHERE id IN (SELECT id FROM t)', 'DELETE FROM t WHERE id IN (SELECT id FROM t WHERE id = 2)'],
  ['MERGE … DELETE', 'MERGE INTO t USING src ON t.id = src.id WHEN MATCHED THEN DELETE', 'MERGE INTO t USING src ON t.id = src.id AND src.id = 1 WHEN MATCHED THEN DELETE'],
  ['ON CONFLICT DO UPDATE', "INSERT INTO t SELECT id, 'x' FROM t ON CONFLICT (id) DO UPDATE SET v = 'gone'", "INSERT INTO t VALUES (1, 'x') ON CONFLICT (id) DO UPDATE SET v = 'gone'"],
  ['DO loop of one-row deletes', 'DO $$ BEGIN FOR i IN 1..10 LOOP DELETE FROM t WHERE id = i; END LOOP; END $$', 'DO $$ BEGIN FOR i IN 1..1 LOOP DELETE FROM t WHERE id = i; END LOOP; END $$'],
];

describe('consequence: simple protocol', () => {
  it.each(disguises)('pg driver, %s: held over the threshold, runs at once under it', async (_name, big, small) => {
    const sub = `cq-${Date.now()}-${Math.random().toString(36).slice(2, 6)}`;
    const c = await s.pgClient(await s.credential({ sub }));
    try {
      const r = await c.query(small);
      expect(r.command).toBeTruthy();
      const after = await count();
      expect(after).toBeGreaterThanOrEqual(ROWS - 1);
      const held = c.query(big).then(() => null, (e: { code?: string; message: string }) => e);
      const [pending] = await s.waitPending(sub);
      const row = await s.prisma.approval.findUniqueOrThrow({ where: { id: pending.id } });
      const cq = row.consequence as { rowsAffected: number; threshold: number; tables: string[] };
      expect(cq.rowsAffected).toBeGreaterThan(THRESHOLD);
      expect(cq.threshold).toBe(THRESHOLD);
      // measured, rolled back, held: nothing changed yet
      expect(await count()).toBe(after);
      await s.decide(pending.id, 'deny', 'no');
      const err = await held;
      expect(err?.code).toBe('42501');
      expect(err?.message).toMatch(/would change \d+ rows/);
      expect(await count()).toBe(after);
    } finally {
      await c.end();
    }
  });

  it('psql: the approver sees the count and a masked sample; approved, it runs once', async () => {
    const sub = `cq-psql-${Date.now()}`;
    const run = psql(s.uri(await s.credential({ sub })), 'DELETE FROM t');
    const [pending] = await s.waitPending(sub);
    const view = await s.api.api(`/v1/approvals/${pending.id}`, { token: s.bobToken });
    expect(view.status).toBe(200);
    expect(view.body.consequence).toMatchObject({ rowsAffected: ROWS, threshold: THRESHOLD, rule: 'big-writes', tables: ['t'] });
    expect(view.body.consequence.sample.columns).toEqual(['id', 'v', 'email']);
    expect(view.body.consequence.sample.rows).toHaveLength(2);
    for (const r of view.body.consequence.sample.rows) expect(r[2]).toBe('[REDACTED]');
    expect(await count()).toBe(ROWS);
    expect((await s.decide(pending.id, 'approve')).status).toBe(200);
    const out = await run;
    expect(out.stdout).toContain(`DELETE ${ROWS}`);
    expect(await count()).toBe(0);
  });

  it('an approved write whose count moved is held again', async () => {
    const sub = `cq-moved-${Date.now()}`;
    const c = await s.pgClient(await s.credential({ sub }));
    try {
      const held = c.query('DELETE FROM t WHERE id > 0');
      const [first] = await s.waitPending(sub);
      await s.h.targetQuery('INSERT INTO t VALUES (100, $$late$$, null)');
      expect((await s.decide(first.id, 'approve')).status).toBe(200);
      const [second] = await s.waitPending(sub);
      expect(second.id).not.toBe(first.id);
      const row = await s.prisma.approval.findUniqueOrThrow({ where: { id: second.id } });
      expect(row.consequence).toMatchObject({ rowsAffected: ROWS + 1, previouslyApproved: ROWS });
      expect((await s.decide(second.id, 'approve')).status).toBe(200);
      expect((await held).rowCount).toBe(ROWS + 1);
    } finally {
      await c.end();
    }
  });

  it('inside an explicit transaction: under the threshold it stands, held-then-denied leaves the transaction as any error does', async () => {
    const sub = `cq-tx-${Date.now()}`;
    const c = await s.pgClient(await s.credential({ sub }));
    try {
      await c.query('BEGIN');
      expect((await c.query('DELETE FROM t WHERE id = 1')).rowCount).toBe(1);
      await c.query('SAVEPOINT mine');
      const held = c.query('UPDATE t SET v = $$x$$ WHERE id >= 0').then(() => null, (e: { code?: string }) => e);
      const [p] = await s.waitPending(sub);
      await s.decide(p.id, 'deny');
      expect((await held)?.code).toBe('42501');
      // aborted as after any error; the client's own savepoint and earlier work are intact
      await expect(c.query('SELECT 1')).rejects.toMatchObject({ code: '25P02' });
      await c.query('ROLLBACK TO SAVEPOINT mine');
      expect((await c.query('SELECT count(*)::int AS n FROM t')).rows[0].n).toBe(ROWS - 1);
      expect((await c.query("SELECT count(*)::int AS n FROM t WHERE v = 'x'")).rows[0].n).toBe(0);
      await c.query('COMMIT');
      expect(await count()).toBe(ROWS - 1);
    } finally {
      await c.end();
    }
  });

  it('a measured write that fails reports the real error, in and out of a transaction', async () => {
    const c = await s.pgClient(await s.credential({ sub: `cq-err-${Date.now()}` }));
    try {
      await expect(c.query('INSERT INTO t VALUES (1, $$dup$$)')).rejects.toMatchObject({ code: '23505' });
      // autocommit: the transaction the gateway opened is gone again
      expect((await c.query('SELECT 1 AS one')).rows[0].one).toBe(1);
      // an error at COMMIT (a deferred constraint) is the statement's error too
      await expect(c.query('INSERT INTO u VALUES (1, 1), (2, 1)')).rejects.toMatchObject({ code: '23505' });
      expect((await c.query('SELECT count(*)::int AS n FROM u')).rows[0].n).toBe(0);
      await c.query('BEGIN');
      await expect(c.query('DELETE FROM nosuch WHERE id = 1')).rejects.toMatchObject({ code: '42P01' });
      await expect(c.query('SELECT 1')).rejects.toMatchObject({ code: '25P02' });
      await c.query('ROLLBACK');
      expect((await c.query('SELECT count(*)::int AS n FROM t')).rows[0].n).toBe(ROWS);
    } finally {
      await c.end();
    }
  });

  it('under the threshold the client gets its own RETURNING rows and tag, and the decision event has the count', async () => {
    const c = await s.pgClient(await s.credential({ sub: `cq-ret-${Date.now()}` }));
    try {
      const r0 = await c.query('UPDATE t SET v = $$y$$ WHERE id <= 2 RETURNING id'); expect(r0.rowCount).toBe(2);
      const r = await c.query('UPDATE t SET v = $$y$$ WHERE id <= 2 RETURNING id, email');
      expect(r.command).toBe('UPDATE');
      expect(r.rowCount).toBe(2);
      expect(r.rows.map((x) => x.email)).toEqual(['[REDACTED]', '[REDACTED]']);
      await c.query('BEGIN');
      await c.query('DELETE FROM t WHERE id = 3');
      await c.query('COMMIT');
      expect(await count()).toBe(ROWS - 1);
    } finally {
      await c.end();
    }
  });
});

describe('consequence: extended protocol', () => {
  it('pg driver with parameters: WHERE id <> $1 with -1 is held, with 5 it runs at once; denied, nothing changed', async () => {
    const sub = `cq-ext-${Date.now()}`;
    const c = await s.pgClient(await s.credential({ sub }));
    try {
      const small = await c.query('DELETE FROM t WHERE id = $1', [5]);
      expect(small.rowCount).toBe(1);
      const held = c.query('DELETE FROM t WHERE id <> $1', [-1]).then(() => null, (e: { code?: string; message: string }) => e);
      const [p] = await s.waitPending(sub);
      const row = await s.prisma.approval.findUniqueOrThrow({ where: { id: p.id } });
      expect(row.consequence).toMatchObject({ rowsAffected: ROWS - 1, threshold: THRESHOLD, tables: ['t'] });
      expect(await count()).toBe(ROWS - 1);
      await s.decide(p.id, 'deny');
      const err = await held;
      expect(err?.code).toBe('42501');
      expect(err?.message).toContain(`would change ${ROWS - 1} rows`);
      expect(await count()).toBe(ROWS - 1);
      // the session goes on; a named prepared statement is measured at each execution
      const named = { name: 'del_by_id', text: 'DELETE FROM t WHERE id > $1 RETURNING id' };
      expect((await c.query({ ...named, values: [8] })).rows.map((r) => r.id).sort((a, b) => a - b)).toEqual([9, 10]);
      const again = c.query({ ...named, values: [0] }).then((r) => r.rowCount, (e: { code?: string }) => e);
      const [p2] = await s.waitPending(sub);
      await s.decide(p2.id, 'approve');
      expect(await again).toBe(ROWS - 3);
      expect(await count()).toBe(0);
    } finally {
      await c.end();
    }
  });

  it('pg driver with parameters inside a transaction; a failing measured write reports its error', async () => {
    const c = await s.pgClient(await s.credential({ sub: `cq-ext-tx-${Date.now()}` }));
    try {
      await c.query('BEGIN');
      expect((await c.query('UPDATE t SET v = $1 WHERE id = $2', ['z', 1])).rowCount).toBe(1);
      await expect(c.query('INSERT INTO t VALUES ($1, $2)', [2, 'dup'])).rejects.toMatchObject({ code: '23505' });
      await c.query('ROLLBACK');
      await expect(c.query('INSERT INTO t VALUES ($1, $2)', [3, 'dup'])).rejects.toMatchObject({ code: '23505' });
      expect((await c.query('SELECT count(*)::int AS n FROM t WHERE v = $1', ['z'])).rows[0].n).toBe(0);
      expect((await c.query('INSERT INTO t VALUES ($1, $2) RETURNING id', [11, 'new'])).rows[0].id).toBe(11);
      expect(await count()).toBe(ROWS + 1);
    } finally {
      await c.end();
    }
  });
});
