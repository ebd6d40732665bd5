import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import copyStreams from 'pg-copy-streams';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSessionEvents, startHarness, waitFor, type Harness } from './support/harness.js';

const policy = {
  name: 'default',
  guardrails: [
    { name: 'no-destructive-ddl', action: 'block', match: { statements: ['DROP', 'TRUNCATE'] }, reason: 'Destructive DDL goes through a migration.' },
    { name: 'bulk-writes', action: 'require_approval', match: { statements: ['DELETE', 'UPDATE'], unbounded: true }, reason: 'Bulk writes need a second pair of eyes.' },
  ],
  dynamicSql: 'block',
  masking: [
    { name: 'emails', columns: ['email'], strategy: 'partial' },
    { name: 'pii', detectors: ['CREDIT_CARD'], strategy: 'redact' },
    { name: 'salaries', columns: ['salary'], strategy: 'partial' },
  ],
};

let h: Harness;
beforeAll(async () => {
  h = await startHarness({
    connection: { policy: 'default' },
    policies: [{ name: 'default', version: 1, document: policy }],
    setupSql: `CREATE TABLE customers (id int primary key, name text, email text, card_number text, salary numeric);
      INSERT INTO customers VALUES (1, 'Ada', 'ada@example.com', '4111 1111 1111 1111', 123456), (2, 'Bob', 'bob@example.org', 'none', 7);
      CREATE TABLE victim (x int);`,
  });
});
afterAll(async () => {
  await h?.stop();
});

async function client(): Promise<pg.Client> {
  const c = new pg.Client(h.clientConfig(await h.credential()));
  await c.connect();
  return c;
}

describe('policy enforcement', () => {
  it('a blocked DROP gets 42501 with the rule name and reason; the session goes on; nothing ran', async () => {
    const c = await client();
    try {
      const err = await c.query('DROP TABLE victim').then(() => null, (e: pg.DatabaseError) => e);
      expect(err?.code).toBe('42501');
      expect(err?.message).toMatch(/no-destructive-ddl/);
      expect(err?.message).toMatch(/Destructive DDL goes through a migration/);
      expect((await c.query('select 1 as n')).rows[0].n).toBe(1);
      // a multi-statement query is one decision: the most restrictive
      const err2 = await c.query('select 1; drop table victim').then(() => null, (e: pg.DatabaseError) => e);
      expect(err2?.code).toBe('42501');
      // inside a transaction block the refusal aborts it, as a Postgres error would
      await c.query('BEGIN');
      await expect(c.query('TRUNCATE victim')).rejects.toThrow(/no-destructive-ddl/);
      await expect(c.query('select 1')).rejects.toThrow(/current transaction is aborted/);
      await c.query('ROLLBACK');
      expect((await h.targetQuery(`select to_regclass('victim') is not null as ok`)).rows[0].ok).toBe(true);
    } finally {
      await c.end();
    }
  });

  it('require_approval without an approvals hook is refused with a clear message', async () => {
    const c = await client();
    try {
      const err = await c.query('DELETE FROM customers').then(() => null, (e: pg.DatabaseError) => e);
      expect(err?.code).toBe('42501');
      expect(err?.message).toMatch(/requires approval by rule "bulk-writes"/);
      expect((await h.targetQuery('select count(*)::int n from customers')).rows[0].n).toBe(2);
    } finally {
      await c.end();
    }
  });

  it('extended protocol: a blocked Parse in a pipelined batch errors at its place; the rest is skipped until Sync', async () => {
    const c = await client();
    try {
      // pg sends Parse/Bind/Describe/Execute/Sync per query; three in flight at once
      const results = await Promise.allSettled([
        c.query('select $1::int as a', [1]),
        c.query({ text: 'drop table victim', values: [] , name: 'dropper' }),
        c.query('select $1::int as b', [3]),
      ]);
      expect(results[0].status).toBe('fulfilled');
      expect(results[1].status).toBe('rejected');
      expect(((results[1] as PromiseRejectedResult).reason as pg.DatabaseError).code).toBe('42501');
      expect(results[2].status).toBe('fulfilled');
      expect((results[2] as PromiseFulfilledResult<pg.QueryResult>).value.rows[0].b).toBe(3);
    } finally {
      await c.end();
    }
  });

  it('one batch with a blocked statement in the middle: earlier results arrive, the error comes at the blocked Parse, later messages are skipped until Sync', async () => {
    const { PgWireClient } = await import('../../../test/support/pg-wire-client.js');
    const p = await import('@portcullis/protocol');
    const w = await PgWireClient.connect({ host: '127.0.0.1', port: h.gateway.pgPort });
    try {
      w.send(p.encodeStartupMessage({ user: 'carol', database: h.connectionName }));
      w.send(p.encodePassword(await h.credential()));
      for (let m = await w.next(); m.frame[0] !== p.BackendMessageType.ReadyForQuery; m = await w.next());
      w.send(Buffer.concat([
        p.encodeParse({ name: 's1', query: 'select 1 as one' }), p.encodeBind({ portal: '', statement: 's1' }), p.encodeExecute(''),
        p.encodeParse({ name: 's2', query: 'drop table victim' }), p.encodeBind({ portal: '', statement: 's2' }), p.encodeExecute(''),
        p.encodeParse({ name: 's3', query: 'select 3' }), p.encodeBind({ portal: '', statement: 's3' }), p.encodeExecute(''),
        p.encodeSync(),
      ]));
      const types: string[] = [];
      for (;;) {
        const m = await w.next();
        const type = m.frame[0];
        types.push(String.fromCharCode(type));
        if (type === p.BackendMessageType.ErrorResponse) expect(p.decodeErrorResponse(m.frame.subarray(5)).code).toBe('42501');
        if (type === p.BackendMessageType.ReadyForQuery) break;
      }
      // ParseComplete, BindComplete, DataRow, CommandComplete (s1), ErrorResponse (s2's Parse), ReadyForQuery
      expect(types.join('')).toBe('12DCEZ');
    } finally {
      w.close?.();
    }
  });

  it('masking rewrites emails and card numbers in DataRow (simple and extended) and in COPY TO STDOUT', async () => {
    const c = await client();
    try {
      const simple = await c.query('select id, email, card_number from customers order by id');
      expect(simple.rows[0].email).not.toBe('ada@example.com');
      expect(simple.rows[0].email).toMatch(/@example\.com$/);
      expect(simple.rows[0].card_number).not.toMatch(/4111 1111 1111 1111/);
      expect(simple.rows[1].card_number).toBe('none');
      const ext = await c.query('select email, card_number from customers where id = $1', [1]);
      expect(ext.rows[0].email).toBe(simple.rows[0].email);
      expect(ext.rows[0].card_number).toBe(simple.rows[0].card_number);
      const chunks: Buffer[] = [];
      await pipeline(
        c.query(copyStreams.to('COPY customers TO STDOUT')),
        new Writable({ write(chunk, _e, cb) { chunks.push(chunk); cb(); } }),
      );
      const text = Buffer.concat(chunks).toString();
      expect(text).not.toMatch(/ada@example\.com/);
      expect(text).not.toMatch(/4111 1111 1111 1111/);
      expect(text).toMatch(/Ada/);
      // CSV with a header: the header as Postgres wrote it, the covered columns masked, the rest exact
      const csv: Buffer[] = [];
      await pipeline(
        c.query(copyStreams.to('COPY (SELECT * FROM customers ORDER BY id) TO STDOUT WITH (FORMAT csv, HEADER)')),
        new Writable({ write(chunk, _e, cb) { csv.push(chunk); cb(); } }),
      );
      expect(Buffer.concat(csv).toString()).toBe('id,name,email,card_number,salary\n1,Ada,a**@example.com,[REDACTED],**3456\n2,Bob,b**@example.org,none,*\n');
    } finally {
      await c.end();
    }
  });

  it('a binary-format result of a masked column is refused, never passed through', async () => {
    const c = await client();
    try {
      // binary text is still masked (same bytes as text)…
      const bin = await c.query({ text: 'select email from customers where id = $1', values: [1], binary: true } as pg.QueryConfig);
      expect(String(bin.rows[0].email)).not.toMatch(/ada@example/);
      // …but a covered numeric column in binary cannot be: the statement fails
      const err = await c.query({ text: 'select salary from customers where id = $1', values: [1], binary: true } as pg.QueryConfig).then(() => null, (e: pg.DatabaseError) => e);
      expect(err?.code).toBe('42501');
      expect(err?.message).toMatch(/masking policy/);
      expect((await c.query('select salary from customers where id = 1')).rows[0].salary).not.toBe('123456');
      const ok = await c.query('select 1 as n');
      expect(ok.rows[0].n).toBe(1);
    } finally {
      await c.end();
    }
  });

  it('decisions and masking actions are session events', async () => {
    const c = await client();
    // this session (the last one opened): the previous test's session can publish its end after this one's
    const mine = [...h.gateway.sessions].at(-1)!.id;
    await c.query('select email from customers where id = 1');
    await c.query('drop table victim').catch(() => undefined);
    await c.end();
    await waitFor(() => h.gateway.liveSessions === 0);
    // session.end is published after the session is counted out: wait for it to land
    let last: Record<string, unknown>[] = [];
    await waitFor(async () => (last = await readSessionEvents(h, mine, 1)).at(-1)?.type === 'session.end', 5000, 100);
    // one `statement` event per simple-protocol statement (query, decision and result together); a
    // statement still running after a second (a loaded host) has its query and decision sent early
    expect(last[0]!.type).toBe('session.start');
    expect(last.at(-1)!.type).toBe('session.end');
    const data = last.filter((e) => e.type !== 'session.start' && e.type !== 'session.end').map((e) => e.data as Record<string, unknown>);
    const statements = last.filter((e) => e.type === 'statement');
    if (statements.length === last.length - 2) {
      expect(statements[0]!.data).toMatchObject({ sql: 'select email from customers where id = 1', action: 'allow', rows: 1, masking: { columns: ['email'], values: 1 } });
      expect(statements[1]!.data).toMatchObject({ sql: 'drop table victim', action: 'block', rule: 'no-destructive-ddl', error: { code: '42501' } });
    }
    expect(data).toContainEqual(expect.objectContaining({ sql: 'select email from customers where id = 1' }));
    expect(data).toContainEqual(expect.objectContaining({ masking: { columns: ['email'], values: 1 } }));
    expect(data).toContainEqual(expect.objectContaining({ action: 'block', rule: 'no-destructive-ddl' }));
    expect(data.filter((d) => d.sql === 'drop table victim').length).toBeGreaterThan(0);
  });
});
