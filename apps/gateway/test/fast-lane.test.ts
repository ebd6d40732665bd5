// The native fast lane (native/fast_lane.c, src/postgres/fast-lane.ts) relays plaintext sessions that
// mask nothing. These tests hold it to the JavaScript relay: the same workload through a gateway
// with the lane and one without gives the same rows, errors and session events; its framing holds
// for messages split across reads and larger than its buffer; a hostile length after the
// handshake is a protocol error for that session only; a disconnect is seen while a statement is held.
import { createHash } from 'node:crypto';
import { connect } from 'node:net';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeBackendMessage, encodeQuery, PgFramer } from '@portcullis/protocol';
import type { Gateway } from '../src/gateway.js';
import { fastLaneUnavailable } from '../src/postgres/fast-lane.js';
import { collect, PgWireClient } from '../../../test/support/pg-wire-client.js';
import { readSessionEvents, startHarness, waitFor, type Harness } from './support/harness.js';

const policy = {
  name: 'lane-policy',
  guardrails: [{ name: 'no-drop', action: 'block', match: { statements: ['DROP'] }, reason: 'no drops here' }],
  dynamicSql: 'block',
  masking: [],
};

let h: Harness;
let plainGateway: Gateway;
beforeAll(async () => {
  h = await startHarness({
    connection: { policy: 'lane-policy' },
    policies: [{ name: 'lane-policy', version: 1, document: policy as never }],
    setupSql: 'CREATE TABLE items (id int primary key, label text not null)',
  });
  plainGateway = await h.startGateway({ GATEWAY_FAST_LANE: 'false' });
});
afterAll(async () => {
  await h?.stop();
});

async function client(gateway: Gateway, app: string): Promise<pg.Client> {
  const c = new pg.Client({ ...h.clientConfig(await h.credential()), port: gateway.pgPort, application_name: app });
  c.on('error', () => undefined);
  await c.connect();
  return c;
}

async function laneSessions(g: Gateway): Promise<number> {
  const m = await g.metrics.fastLaneSessions.get();
  return m.values[0]?.value ?? 0;
}

/** Everything a client sees of a workload that touches each kind of message the lane handles. */
async function workload(c: pg.Client, table: string): Promise<unknown[]> {
  const seen: unknown[] = [];
  const notices: string[] = [];
  c.on('notice', (n) => notices.push(n.message ?? ''));
  const q = async (text: string | pg.QueryConfig, values?: unknown[]): Promise<void> => {
    try {
      const r = await c.query(text as string, values);
      const rs = Array.isArray(r) ? r : [r];
      seen.push(rs.map((x) => ({ command: x.command, rowCount: x.rowCount, rows: x.rows })));
    } catch (e) {
      seen.push({ error: (e as pg.DatabaseError).code, message: (e as Error).message });
    }
  };
  await q(`CREATE TABLE ${table} (id int primary key, body text)`);
  await q('select 1 as a; select 2 as b');
  for (let i = 0; i < 20; i++) await q({ name: 'ins', text: `insert into ${table} values ($1, $2)`, values: [i, `row ${i}`] });
  for (let i = 0; i < 5; i++) await q({ name: 'pick', text: `select * from ${table} where id >= $1 order by id limit 3`, values: [i] });
  await q('select 1 / $1::int as x', [0]); // an error inside an extended batch
  await q(`drop table ${table}`); // refused by the policy: 42501 with the rule's reason
  await q('set application_name = \'renamed\''); // a ParameterStatus
  await q("do $$ begin raise notice 'hello from plpgsql'; end $$");
  await q('begin');
  await q(`update ${table} set body = body || '!' where id < 3`);
  await q('select * from no_such_table');
  await q('rollback');
  // a row far larger than the lane's 64 KiB read buffer, and one value hashed
  const big = await c.query(`select repeat(md5(id::text), 20000) as blob from ${table} where id = 7`);
  seen.push({ bigLength: big.rows[0].blob.length, bigHash: createHash('sha256').update(big.rows[0].blob).digest('hex') });
  // COPY FROM STDIN: CopyData frames from the client pass through the lane
  await new Promise<void>((resolve, reject) => {
    const s = c.query(copyFrom(`COPY ${table} (id, body) FROM STDIN`));
    s.on('finish', resolve);
    s.on('error', reject);
    for (let i = 100; i < 1100; i++) s.write(`${i}\tcopied ${i} ${'y'.repeat(i % 97)}\n`);
    s.end();
  });
  await q(`select count(*)::int as n, sum(length(body))::int as len from ${table}`);
  await q(`drop table if exists never_there_${table}`); // refused as well (DROP)
  seen.push({ notices });
  return seen;
}

/** A session's events, without what differs by nature (ids, times, durations, addresses, names). */
function shape(events: Record<string, unknown>[]): unknown[] {
  return events
    .filter((e) => e.type !== 'session.start')
    .map((e) => {
      const d = { ...(e.data as Record<string, unknown>) };
      delete d.durationMs;
      if (e.type === 'query' || e.type === 'statement') d.sql = String(d.sql).replace(/lane_t_\w+/g, 'T');
      if (e.type === 'session.end') {
        delete d.bytesIn;
        delete d.bytesOut;
      }
      if ((e.type === 'decision' || e.type === 'statement') && typeof d.reason === 'string') d.reason = d.reason.replace(/lane_t_\w+/g, 'T');
      if (d.error) d.error = (d.error as { code: string }).code;
      return { type: e.type, seq: e.seq, ...d };
    });
}

async function sessionOf(app: string): Promise<{ id: string; events: Record<string, unknown>[] }> {
  let id = '';
  await waitFor(async () => {
    const all = await readSessionEvents(h, undefined, 1);
    const start = all.find((e) => e.type === 'session.start' && (e.data as { applicationName?: string }).applicationName === app);
    if (!start) return false;
    id = start.sessionId as string;
    return all.some((e) => e.sessionId === id && e.type === 'session.end');
  }, 15_000, 100);
  return { id, events: await readSessionEvents(h, id, 1) };
}

describe('fast lane', () => {
  it('is built on this machine (CI builds it; without it the gateway relays in JavaScript)', () => {
    expect(fastLaneUnavailable()).toBeNull();
  });

  it('gives the same results and the same session events as the JavaScript relay', async () => {
    const before = await laneSessions(h.gateway);
    const viaLane = await client(h.gateway, 'lane-on');
    const viaJs = await client(plainGateway, 'lane-off');
    expect(await laneSessions(h.gateway)).toBe(before + 1);
    expect(await laneSessions(plainGateway)).toBe(0);
    const a = await workload(viaLane, 'lane_t_on');
    const b = await workload(viaJs, 'lane_t_off');
    await viaLane.end();
    await viaJs.end();
    expect(JSON.stringify(a).replace(/lane_t_on/g, 'T')).toBe(JSON.stringify(b).replace(/lane_t_off/g, 'T'));
    // the workload did what it says (not two identical failures)
    expect(a).toContainEqual({ bigLength: 640000, bigHash: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(JSON.stringify(a)).toContain('"error":"42501"');
    expect(JSON.stringify(a)).toContain('"error":"22012"');
    expect(JSON.stringify(a)).toContain('hello from plpgsql');
    const on = await sessionOf('lane-on');
    const off = await sessionOf('lane-off');
    expect(shape(on.events)).toEqual(shape(off.events));
    const results = on.events.filter((e) => e.type === 'result' || e.type === 'statement');
    expect(results.length).toBeGreaterThan(30);
    expect(results.map((e) => (e.data as { tag?: string }).tag)).toContain('COPY 1000');
    // bytes are counted on both paths (not equal: the lane counts what it read, the relay what it wrote)
    const end = on.events.find((e) => e.type === 'session.end')!.data as { bytesIn: number; bytesOut: number };
    expect(end.bytesIn).toBeGreaterThan(50_000);
    expect(end.bytesOut).toBeGreaterThan(640_000);
  });

  it('frames messages split at every byte and pipelined many to a read', async () => {
    const token = await h.credential();
    const wire = await PgWireClient.connect({ host: '127.0.0.1', port: h.gateway.pgPort });
    await wire.startup({ user: 'carol', database: h.connectionName, password: token });
    // 50 queries in one buffer, written a byte at a time: every message straddles reads
    const batch = Buffer.concat(Array.from({ length: 50 }, (_, i) => encodeQuery(`select ${i} as n`)));
    for (let i = 0; i < batch.length; i++) {
      wire.socket.write(batch.subarray(i, i + 1));
      if (i % 64 === 0) await new Promise((r) => setImmediate(r));
    }
    const results: string[] = [];
    for (let i = 0; i < 50; i++) results.push(collect(await wire.until('ReadyForQuery')).rows[0][0]!.toString());
    expect(results).toEqual(Array.from({ length: 50 }, (_, i) => String(i)));
    await wire.close();
  });

  it('a hostile length after the handshake ends that session with 08P01; the others go on', async () => {
    const bystander = await client(h.gateway, 'bystander');
    const token = await h.credential();
    const wire = await PgWireClient.connect({ host: '127.0.0.1', port: h.gateway.pgPort });
    await wire.startup({ user: 'carol', database: h.connectionName, password: token });
    const frames: Buffer[] = [];
    const framer = new PgFramer({ startup: false, from: 'server' });
    const closed = new Promise<void>((resolve) => wire.socket.once('close', () => resolve()));
    wire.socket.removeAllListeners('data');
    wire.socket.on('data', (c: Buffer) => {
      framer.push(c);
      for (let f = framer.next(); f; f = framer.next()) frames.push(f.frame);
    });
    // Sync ('S') may be at most 10000 bytes long; this one claims 2 GiB
    wire.socket.write(Buffer.from([0x53, 0x7f, 0xff, 0xff, 0xf0]));
    await closed;
    const err = frames.map((f) => decodeBackendMessage({ type: f[0], payload: f.subarray(5), frame: f })).find((m) => m.kind === 'ErrorResponse') as { code?: string; message?: string } | undefined;
    expect(err?.code).toBe('08P01');
    expect(err?.message).toMatch(/length .* outside 4\.\.10000/);
    expect((await bystander.query('select 42 as n')).rows[0].n).toBe(42);
    await bystander.end();
  });

  it('sees a client disconnect while it waits on the relay, and keeps serving', async () => {
    const sock = connect({ host: '127.0.0.1', port: h.gateway.pgPort });
    await new Promise((r) => sock.once('connect', r));
    sock.destroy();
    const c = await client(h.gateway, 'after');
    // a long statement, then the client vanishes mid-result: the upstream backend must go away
    const q = c.query('select pg_sleep(0.2), repeat(\'z\', 1000) from generate_series(1, 3)').catch(() => null);
    await new Promise((r) => setTimeout(r, 50));
    (c as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
    await q;
    await waitFor(async () => {
      const r = await h.targetQuery("select count(*)::int as n from pg_stat_activity where query like 'select pg_sleep(0.2)%' and state = 'active'");
      return r.rows[0].n === 0;
    }, 5000, 50);
    const d = await client(h.gateway, 'after-2');
    expect((await d.query('select 7 as n')).rows[0].n).toBe(7);
    await d.end();
  });
});
