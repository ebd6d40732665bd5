// Recording through the real processes: a gateway (apps/gateway/dist) in front of Postgres, recorder
// processes (apps/recorder/dist) chaining its events, node-postgres clients running statements, and a
// recorder killed with SIGKILL mid-run and started again. Every statement that reached the target is
// in the record exactly once, and every chain verifies.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chainHash, GENESIS_HASH } from '@portcullis/protocol';
// the benchmarks' process helpers (plain JavaScript, no app sources): a gateway fed a config snapshot over NATS KV, recorder processes
import { recorderKeys, startGateway, startRecorder } from '../bench/lib/stack.mjs';

const ADMIN = 'postgresql://postgres@127.0.0.1:5432/postgres';
const RECORDS = process.env.DATABASE_URL!;
const target = `portcullis_rec_e2e_${randomBytes(4).toString('hex')}`;

type Recorder = Awaited<ReturnType<typeof startRecorder>>;
let gw: Awaited<ReturnType<typeof startGateway>>;
let keys: { masterKeyHex: string; eventKeyHex: string };
const recorders: Recorder[] = [];
const records = new pg.Pool({ connectionString: RECORDS, max: 2 });

async function admin(sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: ADMIN });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

async function recorder(shard: string): Promise<Recorder> {
  const r = await startRecorder({ prefix: gw.prefix, databaseUrl: RECORDS, masterKeyHex: keys.masterKeyHex, shard, env: { RECORDER_ACK_WAIT_SECONDS: '2' } });
  recorders.push(r);
  return r;
}

async function client(app: string): Promise<pg.Client> {
  const c = new pg.Client({ host: '127.0.0.1', port: gw.port, user: 'bench', password: gw.credential(), database: 'bench', ssl: false, application_name: app });
  await c.connect();
  return c;
}

async function waitFor<T>(fn: () => Promise<T>, ok: (v: T) => boolean, timeoutMs: number): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (ok(v)) return v;
    if (Date.now() > end) throw new Error(`timed out; last ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(async () => {
  await admin(`CREATE DATABASE ${target}`);
  const c = new pg.Client({ connectionString: `postgresql://postgres@127.0.0.1:5432/${target}` });
  await c.connect();
  await c.query('CREATE TABLE t (id int PRIMARY KEY, client text NOT NULL)');
  await c.end();
  keys = await recorderKeys();
  gw = await startGateway({ target: { port: 5432, database: target }, policy: null, eventKeyHex: keys.eventKeyHex });
}, 60_000);

afterAll(async () => {
  await Promise.all(recorders.map((r) => r.stop().catch(() => undefined)));
  await gw?.stop();
  await admin(`DROP DATABASE IF EXISTS ${target} WITH (FORCE)`).catch(() => undefined);
  await records.end();
}, 60_000);

describe('recording with real gateway and recorder processes', () => {
  it('two recorder shards, one killed mid-run and restarted: every statement that reached the target is recorded once, every chain verifies', async () => {
    await recorder('0/2');
    let shard1 = await recorder('1/2');
    const clients = await Promise.all(Array.from({ length: 6 }, (_, i) => client(`rec-e2e-${i}`)));
    const sessions = new Set<string>();
    // each client inserts its own ids with the simple protocol (one `statement` event each)
    const per = 150;
    let done = 0;
    const work = clients.map(async (c, i) => {
      for (let k = 0; k < per; k++) {
        await c.query(`INSERT INTO t VALUES (${i * per + k}, 'c${i}')`);
        done++;
      }
    });
    // a statement still running a second after its decision: its query and decision go out on their own
    // (4 s, so the one-second timer fires before it ends even on a loaded host)
    const slow = await client('rec-e2e-slow');
    const sleeping = slow.query('SELECT pg_sleep(4)');
    await waitFor(async () => done, (n) => n > 200, 30_000);
    await shard1.kill();
    await new Promise((r) => setTimeout(r, 500));
    shard1 = await recorder('1/2');
    await Promise.all(work);
    await sleeping;
    await Promise.all([...clients, slow].map((c) => c.end()));

    // the sessions of this gateway, each ended
    await waitFor(async () => (await records.query(`SELECT count(*)::int AS n FROM "Session" WHERE gateway = $1 AND "endedAt" IS NOT NULL`, [gw.gatewayId])).rows[0].n, (n) => n === 7, 60_000);
    for (const row of (await records.query<{ id: string }>(`SELECT id FROM "Session" WHERE gateway = $1`, [gw.gatewayId])).rows) sessions.add(row.id);

    // every row in the target was inserted by a statement in the record, exactly once
    const inTarget = new pg.Client({ connectionString: `postgresql://postgres@127.0.0.1:5432/${target}` });
    await inTarget.connect();
    const ids = (await inTarget.query<{ id: number }>('SELECT id FROM t ORDER BY id')).rows.map((r) => r.id);
    await inTarget.end();
    expect(ids).toHaveLength(6 * per);
    const events = (await records.query<{ id: string; sessionId: string; seq: number; time: Date; type: string; identity: string; connection: string; gateway: string; data: Record<string, unknown>; prevHash: string; hash: string }>(
      `SELECT id::text, "sessionId", seq, time, type, identity, connection, gateway, data, "prevHash", hash FROM "Event" WHERE chain = ANY($1::text[]) ORDER BY chain, seq`, [[...sessions]])).rows;
    const inserts = events.filter((e) => e.type === 'statement' && String(e.data.sql).startsWith('INSERT INTO t VALUES'));
    const recordedIds = inserts.map((e) => Number(/VALUES \((\d+),/.exec(String(e.data.sql))![1])).sort((a, b) => a - b);
    expect(recordedIds).toEqual(ids);
    expect(inserts.every((e) => e.data.action === 'allow' && e.data.tag === 'INSERT 0 1' && e.data.rows === 1)).toBe(true);
    // no other copy of them (as separate query events) either
    expect(events.filter((e) => e.type === 'query' && String(e.data.sql).startsWith('INSERT'))).toEqual([]);

    // the slow statement: query and decision when it had run a second, then its result
    const slowSession = events.find((e) => e.type === 'session.start' && e.data.applicationName === 'rec-e2e-slow')!.sessionId;
    const slowOnes = events.filter((e) => e.sessionId === slowSession && !e.type.startsWith('session.'));
    expect(slowOnes.map((e) => e.type)).toEqual(['query', 'decision', 'result']);
    expect(slowOnes[0].data.sql).toBe('SELECT pg_sleep(4)');
    // recorded with the time it was decided, not the time it was released
    expect(slowOnes[1].time.getTime()).toBe(slowOnes[0].time.getTime());

    // every chain verifies
    const bySession = new Map<string, typeof events>();
    for (const e of events) bySession.set(e.sessionId, [...(bySession.get(e.sessionId) ?? []), e]);
    expect(bySession.size).toBe(7);
    for (const chain of bySession.values()) {
      let prev = GENESIS_HASH;
      expect(chain.map((e) => e.seq)).toEqual(chain.map((_, i) => i + 1));
      for (const e of chain) {
        const { hash, ...rest } = e;
        expect(e.prevHash).toBe(prev);
        expect(chainHash(prev, { ...rest, time: e.time.toISOString() })).toBe(hash);
        prev = hash;
      }
      expect(chain[0].type).toBe('session.start');
      expect(chain.at(-1)!.type).toBe('session.end');
    }
  }, 120_000);
});
