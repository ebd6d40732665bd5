// Policy `recording.results` through the real processes: a gateway (apps/gateway/dist) in front of
// Postgres, a recorder (apps/recorder/dist) chaining its events, psql (simple protocol) and
// node-postgres (extended protocol) as clients. The session record keeps exactly what the client
// received — after masking — up to the policy's rows/bytes, with each masked cell marked and each
// column's rule or detectors named; the chain still verifies.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chainHash, GENESIS_HASH } from '@portcullis/protocol';
import { recorderKeys, startGateway, startRecorder } from '../bench/lib/stack.mjs';

const run = promisify(execFile);
const ADMIN = 'postgresql://postgres@127.0.0.1:5432/postgres';
const RECORDS = process.env.DATABASE_URL!;
const target = `portcullis_results_${randomBytes(4).toString('hex')}`;

const policy = {
  name: 'kept-results',
  guardrails: [],
  masking: [
    { name: 'emails', columns: ['email'], strategy: 'partial' },
    { name: 'pii', detectors: ['US_SSN', 'CREDIT_CARD'], strategy: 'redact' },
  ],
  recording: { results: { rows: 3, bytes: 4096 } },
};

let gw: Awaited<ReturnType<typeof startGateway>>;
let rec: Awaited<ReturnType<typeof startRecorder>>;
const records = new pg.Pool({ connectionString: RECORDS, max: 2 });

type Row = { id: string; sessionId: string; seq: number; time: Date; type: string; identity: string; connection: string; gateway: string; data: Record<string, any>; prevHash: string; hash: string }; // eslint-disable-line @typescript-eslint/no-explicit-any -- event data as stored

async function admin(sql: string, db = ADMIN): Promise<void> {
  const c = new pg.Client({ connectionString: db });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

async function sessionEvents(app: string): Promise<Row[]> {
  const end = Date.now() + 30_000;
  for (;;) {
    const r = await records.query<Row>(
      `SELECT e.id::text, e."sessionId", e.seq, e.time, e.type, e.identity, e.connection, e.gateway, e.data, e."prevHash", e.hash
         FROM "Event" e JOIN "Session" s ON s.id = e.chain
        WHERE s.gateway = $1 AND s."endedAt" IS NOT NULL AND s.id IN (SELECT chain FROM "Event" WHERE type = 'session.start' AND data->>'applicationName' = $2)
        ORDER BY e.seq`, [gw.gatewayId, app]);
    if (r.rows.length && r.rows.at(-1)!.type === 'session.end') return r.rows;
    if (Date.now() > end) throw new Error(`session ${app} not recorded`);
    await new Promise((res) => setTimeout(res, 100));
  }
}

function verifies(chain: Row[]): boolean {
  let prev = GENESIS_HASH;
  for (const e of chain) {
    const { hash, ...rest } = e;
    if (e.prevHash !== prev || chainHash(prev, { ...rest, time: e.time.toISOString() }) !== hash) return false;
    prev = hash;
  }
  return true;
}

beforeAll(async () => {
  await admin(`CREATE DATABASE ${target}`);
  await admin(`CREATE TABLE customers (id int PRIMARY KEY, name text, email text, notes text, photo bytea);
    INSERT INTO customers VALUES
      (1, 'Ann', 'ann@example.test', 'SSN 123-45-6789 on file', '\\x00ff'),
      (2, 'Ben', 'ben@example.test', 'no notes', NULL),
      (3, 'Cy', 'cy@example.test', 'card 4111 1111 1111 1111', NULL),
      (4, 'Di', 'di@example.test', 'fine', NULL);`, `postgresql://postgres@127.0.0.1:5432/${target}`);
  const keys = await recorderKeys();
  gw = await startGateway({ target: { port: 5432, database: target }, policy, eventKeyHex: keys.eventKeyHex });
  rec = await startRecorder({ prefix: gw.prefix, databaseUrl: RECORDS, masterKeyHex: keys.masterKeyHex });
}, 60_000);

afterAll(async () => {
  await rec?.stop().catch(() => undefined);
  await gw?.stop();
  await admin(`DROP DATABASE IF EXISTS ${target} WITH (FORCE)`).catch(() => undefined);
  await records.end();
}, 60_000);

describe('recording.results: what the client received, in the session record', () => {
  it('psql: the first rows as the client saw them, masked cells marked, columns name their rule or detectors; limits per statement', async () => {
    const env = { ...process.env, PGPASSWORD: gw.credential(), PGAPPNAME: 'kept-psql', PGSSLMODE: 'disable' };
    const { stdout } = await run('psql', ['-h', '127.0.0.1', '-p', String(gw.port), '-U', 'bench', '-d', 'bench', '-X', '-A', '-t', '-F', '|',
      '-c', 'SELECT id, name, email, notes FROM customers ORDER BY id',
      '-c', 'SELECT g FROM generate_series(1, 10) g',
      '-c', "SELECT repeat('x', 3000) AS big FROM generate_series(1, 3)",
      '-c', 'SELECT photo FROM customers WHERE id = 1',
    ], { env });
    const lines = stdout.trim().split('\n');
    expect(lines[0].split('|').slice(0, 2)).toEqual(['1', 'Ann']);
    expect(lines[0]).not.toContain('ann@example.test');
    expect(lines[0].split('|')[3]).toBe('SSN [REDACTED] on file');
    const events = await sessionEvents('kept-psql');
    const statements = events.filter((e) => e.type === 'statement');
    expect(statements).toHaveLength(4);

    // 1: masked rows, exactly as psql printed them, the first 3 of 4
    const [customers] = statements[0].data.returned;
    expect(customers.columns.map((c: { name: string }) => c.name)).toEqual(['id', 'name', 'email', 'notes']);
    expect(customers.columns[2].masking).toEqual({ by: 'rule', rule: 'emails', strategy: 'partial' });
    expect(customers.columns[3].masking.by).toBe('detectors');
    expect(customers.columns[3].masking.detectors.map((d: { detector: string }) => d.detector).sort()).toEqual(['CREDIT_CARD', 'US_SSN']);
    expect(customers.columns[0].masking).toBeUndefined();
    expect(customers.rows).toEqual(lines.slice(0, 3).map((l) => l.split('|')));
    expect(customers.rows[0][3]).toBe('SSN [REDACTED] on file');
    expect(customers.rows.flat().join(' ')).not.toMatch(/ann@example|123-45-6789|4111 1111/);
    // the email of every row and the notes with an SSN / card number were masked; 'no notes' was not
    expect(customers.masked).toEqual([[2, 3], [2], [2, 3]]);
    expect(customers.truncated).toBe(true);
    expect(statements[0].data.rows).toBe(4);

    // 2: the row limit
    expect(statements[1].data.returned[0].rows).toEqual([['1'], ['2'], ['3']]);
    expect(statements[1].data.returned[0].truncated).toBe(true);
    // 3: the byte limit (4096): one 3000-byte row fits, the second does not
    expect(statements[2].data.returned[0].rows).toHaveLength(1);
    expect(statements[2].data.returned[0].truncated).toBe(true);
    // 4: bytea as text is what psql got (\x00ff)
    expect(statements[3].data.returned[0].rows).toEqual([['\\x00ff']]);
    expect(verifies(events)).toBe(true);
  }, 60_000);

  it('node-postgres (extended protocol, binary-free): the kept rows of each Execute; a refused or empty result keeps none', async () => {
    const c = new pg.Client({ host: '127.0.0.1', port: gw.port, user: 'bench', password: gw.credential(), database: 'bench', ssl: false, application_name: 'kept-pg' });
    await c.connect();
    const r = await c.query('SELECT id, email FROM customers WHERE id = $1', [2]);
    await c.query('SELECT id FROM customers WHERE id = $1', [99]);
    await c.end();
    expect(r.rows[0].email).not.toBe('ben@example.test');
    const events = await sessionEvents('kept-pg');
    const results = events.filter((e) => e.type === 'result' || e.type === 'statement');
    const kept = results.find((e) => e.data.returned);
    expect(kept!.data.returned[0].rows).toEqual([['2', r.rows[0].email]]);
    expect(kept!.data.returned[0].masked).toEqual([[1]]);
    expect(kept!.data.returned[0].truncated).toBeUndefined();
    expect(results.filter((e) => e.data.returned)).toHaveLength(1);
    expect(verifies(events)).toBe(true);
  }, 60_000);
});
