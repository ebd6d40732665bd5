import { randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import copyStreams from 'pg-copy-streams';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, waitFor, type Harness } from './support/harness.js';

/**
 * The `pg` driver (node-postgres) through the gateway: named prepared statements reused many times,
 * types that carry awkward bytes, a 100k-row COPY both ways, its cancel, transactions with errors,
 * and a Pool of 10 clients. Each on a connection with no policy and one under a policy (whose
 * engine decides every statement and, with masking rules, rewrites rows).
 */

const policy = {
  name: 'default',
  guardrails: [{ name: 'no-destructive-ddl', action: 'block', match: { statements: ['DROP', 'TRUNCATE'] } }],
  dynamicSql: 'block',
  masking: [{ name: 'secrets', columns: ['secret'], strategy: 'redact' }],
};

let h: Harness;
beforeAll(async () => {
  h = await startHarness({
    policies: [{ name: 'default', version: 1, document: policy }],
    setupSql: `CREATE TABLE kv (k int primary key, v text, secret text);
      INSERT INTO kv SELECT g, 'value ' || g, 'hush ' || g FROM generate_series(1, 500) g;
      CREATE TABLE bulk (id int, name text, score float8, at timestamptz);
      CREATE TABLE typed (id int primary key, b bytea, j json, jb jsonb, ia int[], ta text[], ts timestamp, tstz timestamptz, n numeric, u uuid, iv interval, d date);`,
  });
  const target = h.snapshotInput.connections[0]!;
  await h.putSnapshot({ connections: [target, { ...target, name: 'guarded', policy: 'default' }] });
});
afterAll(async () => {
  await h?.stop();
});

async function client(connection = 'target'): Promise<pg.Client> {
  const c = new pg.Client(h.clientConfig(await h.credential({ cn: connection }), connection));
  await c.connect();
  return c;
}

describe.each(['target', 'guarded'])('pg driver (connection %s)', (connection) => {
  it('a named prepared statement reused 500 times, and an unnamed one with changing types', async () => {
    const c = await client(connection);
    try {
      for (let i = 1; i <= 500; i++) {
        const r = await c.query({ name: 'get-kv', text: 'SELECT k, v, secret FROM kv WHERE k = $1', values: [i] });
        expect(r.rows).toHaveLength(1);
        expect(r.rows[0].v).toBe(`value ${i}`);
        if (connection === 'guarded') expect(r.rows[0].secret).not.toContain('hush');
        else expect(r.rows[0].secret).toBe(`hush ${i}`);
      }
      // pipelined: many queries in flight on one connection
      const all = await Promise.all(Array.from({ length: 100 }, (_, i) => c.query({ name: 'get-kv', text: 'SELECT k, v, secret FROM kv WHERE k = $1', values: [i + 1] })));
      expect(all.map((r) => r.rows[0].k)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
      const r = await c.query('SELECT $1::int + $2::int AS s, $3::text AS t', [40, 2, 'x']);
      expect(r.rows[0]).toEqual({ s: 42, t: 'x' });
    } finally {
      await c.end();
    }
  });

  it('bytea, json, arrays, timestamps, numeric, uuid round-trip (text and binary results)', async () => {
    const c = await client(connection);
    try {
      const bytes = Buffer.concat([Buffer.from([0, 1, 2, 0x5c, 0x27, 0x0a, 0xff]), randomBytes(64 * 1024)]);
      const doc = { a: [1, 'two', null, { d: 'e"f\\g' }], nested: { 'ü': true } };
      const id = connection === 'target' ? 1 : 2;
      await c.query(
        'INSERT INTO typed VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)',
        [id, bytes, JSON.stringify(doc), doc, [1, null, -3], ['a,b', 'c"d', null, '{e}', ''], '2024-02-29 23:59:59.123456', new Date('2024-03-01T12:34:56.789Z'), '12345678901234567890.123456789', '6ba7b810-9dad-11d1-80b4-00c04fd430c8', '1 day 02:03:04', '1999-12-31'],
      );
      const r = await c.query('SELECT * FROM typed WHERE id = $1', [id]);
      const row = r.rows[0];
      expect(Buffer.compare(row.b, bytes)).toBe(0);
      expect(row.j).toEqual(doc);
      expect(row.jb).toEqual(doc);
      expect(row.ia).toEqual([1, null, -3]);
      expect(row.ta).toEqual(['a,b', 'c"d', null, '{e}', '']);
      expect(row.tstz.toISOString()).toBe('2024-03-01T12:34:56.789Z');
      expect(row.n).toBe('12345678901234567890.123456789');
      expect(row.u).toBe('6ba7b810-9dad-11d1-80b4-00c04fd430c8');
      expect((await c.query(`SELECT ts::text, iv::text, d::text FROM typed WHERE id = $1`, [id])).rows[0]).toEqual({ ts: '2024-02-29 23:59:59.123456', iv: '1 day 02:03:04', d: '1999-12-31' });
      // results in binary format (pg asks for them per query)
      // (pg-types has no binary parser for bytea: its length stands in for it; and pg sends
      // parameters as binary too in this mode, so the query takes none)
      const bin = await c.query({ text: `SELECT id, length(b) AS len, tstz, n, ia FROM typed WHERE id = ${id}`, binary: true });
      expect(bin.rows[0].id).toBe(id);
      expect(bin.rows[0].len).toBe(bytes.length);
      expect((bin.rows[0].tstz as Date).toISOString()).toBe('2024-03-01T12:34:56.789Z');
      expect(bin.rows[0].n).toBe('12345678901234567890.123456789');
      expect(bin.rows[0].ia).toEqual([1, null, -3]);
    } finally {
      await c.end();
    }
  });

  it('COPY FROM STDIN of 100k rows and COPY TO STDOUT read back', async () => {
    const c = await client(connection);
    const table = `bulk_${connection}`;
    await h.targetQuery(`CREATE TABLE IF NOT EXISTS ${table} (LIKE bulk)`);
    try {
      const N = 100_000;
      const lineOf = (i: number) => `${i}\tname ${i} \\t tab\t${i / 8}\t2024-01-01 00:00:00+00\n`;
      function* lines(): Generator<string> {
        let chunk = '';
        for (let i = 0; i < N; i++) {
          chunk += lineOf(i);
          if (chunk.length > 64 * 1024) {
            yield chunk;
            chunk = '';
          }
        }
        if (chunk) yield chunk;
      }
      const t0 = Date.now();
      await pipeline(Readable.from(lines()), c.query(copyStreams.from(`COPY ${table} FROM STDIN`)));
      expect((await c.query(`select count(*)::int n, sum(score) s from ${table}`)).rows[0]).toEqual({ n: N, s: (N * (N - 1)) / 2 / 8 });
      let text = '';
      await pipeline(
        c.query(copyStreams.to(`COPY (SELECT * FROM ${table} ORDER BY id) TO STDOUT`)),
        new Writable({ write(chunk: Buffer, _e, cb) { text += chunk.toString('utf8'); cb(); } }),
      );
      const back = text.split('\n');
      expect(back).toHaveLength(N + 1);
      expect(back[0]).toBe('0\tname 0 \\t tab\t0\t2024-01-01 00:00:00+00');
      expect(back[N - 1]).toBe(`${N - 1}\tname ${N - 1} \\t tab\t${(N - 1) / 8}\t2024-01-01 00:00:00+00`);
      expect(Date.now() - t0).toBeLessThan(20_000);
    } finally {
      await c.end();
    }
  });

  it("pg's cancel stops pg_sleep; the connection goes on", async () => {
    const c = await client(connection);
    try {
      const t0 = Date.now();
      const q = new pg.Query('SELECT pg_sleep(20)');
      const failed = new Promise<pg.DatabaseError>((resolve) => q.on('error', (e: Error) => resolve(e as pg.DatabaseError)));
      void c.query(q as unknown as string);
      await new Promise((r) => setTimeout(r, 300));
      // node-postgres's cancel: a new connection to the same host/port carrying the BackendKeyData the gateway gave
      (new pg.Client(h.clientConfig('unused', connection)) as unknown as { cancel(c: pg.Client, q: unknown): void }).cancel(c, q);
      const err = await failed;
      expect(err.code).toBe('57014');
      expect(Date.now() - t0).toBeLessThan(5000);
      expect((await c.query('SELECT 2 AS n')).rows[0].n).toBe(2);
      // statement_timeout, the server-side cancel, behaves the same
      await c.query(`SET statement_timeout = '200ms'`);
      await expect(c.query('SELECT pg_sleep(5)')).rejects.toMatchObject({ code: '57014' });
      await c.query('RESET statement_timeout');
    } finally {
      await c.end();
    }
  });

  it('a transaction with an error, a savepoint, and ROLLBACK', async () => {
    const c = await client(connection);
    const table = `tx_${connection}`;
    await h.targetQuery(`CREATE TABLE IF NOT EXISTS ${table} (n int primary key)`);
    try {
      await c.query('BEGIN');
      await c.query(`INSERT INTO ${table} VALUES (1)`);
      await c.query('SAVEPOINT s1');
      await expect(c.query(`INSERT INTO ${table} VALUES (1)`)).rejects.toMatchObject({ code: '23505' });
      await expect(c.query('SELECT 1')).rejects.toMatchObject({ code: '25P02' });
      await c.query('ROLLBACK TO SAVEPOINT s1');
      await c.query(`INSERT INTO ${table} VALUES (2)`);
      await c.query('COMMIT');
      expect((await c.query(`SELECT array_agg(n ORDER BY n) a FROM ${table}`)).rows[0].a).toEqual([1, 2]);

      await c.query('BEGIN');
      await c.query(`INSERT INTO ${table} VALUES (3)`);
      await expect(c.query('SELECT 1/0')).rejects.toMatchObject({ code: '22012' });
      const rb = await c.query('ROLLBACK');
      expect(rb.command).toBe('ROLLBACK');
      expect((await c.query(`SELECT count(*)::int n FROM ${table}`)).rows[0].n).toBe(2);
      // an error in the extended protocol inside a transaction, then COMMIT turns into ROLLBACK
      await c.query('BEGIN');
      await expect(c.query(`INSERT INTO ${table} VALUES ($1)`, ['not a number'])).rejects.toMatchObject({ code: '22P02' });
      const commit = await c.query('COMMIT');
      expect(commit.command).toBe('ROLLBACK');
    } finally {
      await c.end();
    }
  });

  it('pg.Pool with 10 clients runs 200 queries', async () => {
    const token = await h.credential({ cn: connection });
    const pool = new pg.Pool({ ...h.clientConfig(token, connection), max: 10 });
    try {
      const results = await Promise.all(
        Array.from({ length: 200 }, (_, i) =>
          pool.query(i % 2 ? 'SELECT k, v FROM kv WHERE k = $1' : 'SELECT k, v FROM kv WHERE k = ' + ((i % 500) + 1), i % 2 ? [(i % 500) + 1] : undefined),
        ),
      );
      results.forEach((r, i) => expect(r.rows[0]).toEqual({ k: (i % 500) + 1, v: `value ${(i % 500) + 1}` }));
      expect(pool.totalCount).toBe(10);
      // the gateway counted them as live sessions
      expect(h.gateway.liveSessions).toBeGreaterThanOrEqual(10);
    } finally {
      await pool.end();
      // the pool's clients have sent Terminate: let the gateway count them out before it stops, or its
      // shutdown FATAL reaches a client that has no listener any more
      await waitFor(() => h.gateway.liveSessions === 0, 20_000, 20);
    }
  });
});
