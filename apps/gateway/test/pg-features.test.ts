import { pipeline } from 'node:stream/promises';
import { Readable, Writable } from 'node:stream';
import pg from 'pg';
import copyStreams from 'pg-copy-streams';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSessionEvents, startHarness, waitFor, type Harness } from './support/harness.js';
import { startPgCluster, type PgCluster } from '../../../test/support/pg-cluster.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ setupSql: 'CREATE TABLE rows_in (id int, body text);' });
});
afterAll(async () => {
  await h?.stop();
});

async function client(hh: Harness = h, db?: string): Promise<pg.Client> {
  const c = new pg.Client(hh.clientConfig(await hh.credential(), db));
  await c.connect();
  return c;
}

describe('relay features', () => {
  it('COPY FROM STDIN and COPY TO STDOUT', async () => {
    const c = await client();
    try {
      const lines = Array.from({ length: 5000 }, (_, i) => `${i}\tline ${i}\n`).join('');
      await pipeline(Readable.from([lines]), c.query(copyStreams.from('COPY rows_in FROM STDIN')));
      expect((await c.query('select count(*)::int n from rows_in')).rows[0].n).toBe(5000);
      const chunks: Buffer[] = [];
      await pipeline(
        c.query(copyStreams.to('COPY (select * from rows_in order by id) TO STDOUT')),
        new Writable({ write(chunk, _e, cb) { chunks.push(chunk); cb(); } }),
      );
      expect(Buffer.concat(chunks).toString()).toBe(lines);
    } finally {
      await c.end();
    }
  });

  it('LISTEN/NOTIFY, NOTICE and parameter status pass through', async () => {
    const a = await client();
    const b = await client();
    try {
      await a.query('LISTEN chan');
      const got = new Promise<pg.Notification>((resolve) => a.once('notification', resolve));
      await b.query(`NOTIFY chan, 'hello'`);
      expect((await got).payload).toBe('hello');
      const notice = new Promise<{ message?: string }>((resolve) => a.once('notice', resolve));
      await a.query(`DO $$ BEGIN RAISE NOTICE 'careful'; END $$`);
      expect((await notice).message).toBe('careful');
      await a.query(`SET application_name = 'renamed'`);
      expect((await a.query('show application_name')).rows[0].application_name).toBe('renamed');
    } finally {
      await a.end();
      await b.end();
    }
  });

  it('cancel: pg_sleep(10) is cancelled quickly through the gateway key, and via another gateway of the pool', async () => {
    const c = await client();
    try {
      const t0 = Date.now();
      const q = new pg.Query('select pg_sleep(10)');
      const cancelled = new Promise<pg.DatabaseError>((resolve) => q.on('error', (e: Error) => resolve(e as pg.DatabaseError)));
      void c.query(q as unknown as string);
      await new Promise((r) => setTimeout(r, 300));
      // pg's own cancel: a new connection to the gateway carrying the backend key the gateway gave
      const canceller = new pg.Client(h.clientConfig('x'));
      (canceller as unknown as { cancel(c: pg.Client, q: unknown): void }).cancel(c, q);
      const err = await cancelled;
      expect(err?.code).toBe('57014');
      expect(Date.now() - t0).toBeLessThan(5000);
      // the session goes on
      expect((await c.query('select 1 as n')).rows[0].n).toBe(1);

      // a second gateway of the pool receives the cancel and relays it over NATS
      const g2 = await h.startGateway();
      const processID = (c as unknown as { processID: number }).processID;
      const secretKey = (c as unknown as { secretKey: number }).secretKey;
      const q2 = c.query('select pg_sleep(10)').then(() => null, (e: pg.DatabaseError) => e);
      await new Promise((r) => setTimeout(r, 300));
      const { encodeCancelRequest } = await import('@portcullis/protocol');
      const net = await import('node:net');
      await new Promise<void>((resolve) => {
        const s = net.connect({ host: '127.0.0.1', port: g2.pgPort }, () => s.end(encodeCancelRequest(processID, secretKey >>> 0)));
        s.on('close', () => resolve());
        s.on('error', () => resolve());
      });
      const t1 = Date.now();
      expect((await q2)?.code).toBe('57014');
      expect(Date.now() - t1).toBeLessThan(5000);
    } finally {
      await c.end();
    }
  });

  it('session events arrive on JetStream in order, signed', async () => {
    const c = await client();
    await c.query('select 1 as n');
    await c.end();
    await waitFor(() => h.gateway.liveSessions === 0);
    // events go out in batches every few ms: wait for this session's last one
    let mine: Record<string, unknown>[] = [];
    await waitFor(async () => {
      const events = await readSessionEvents(h, undefined, 5);
      const sessions = [...new Set(events.map((e) => e.sessionId as string))];
      mine = events.filter((e) => e.sessionId === sessions.at(-1));
      return mine.at(-1)?.type === 'session.end';
    }, 5000, 50);
    // a simple-protocol statement is one event: its query, decision and result together
    expect(mine.map((e) => e.type)).toEqual(['session.start', 'statement', 'session.end']);
    expect(mine.map((e) => e.seq)).toEqual([1, 2, 3]);
    expect(mine[1].data).toMatchObject({ sql: 'select 1 as n', protocol: 'simple', action: 'allow', tag: 'SELECT 1', rows: 1 });
    expect(mine[0].connection).toBe(h.connectionName);
    expect(mine[0].identity).toBe('user:carol');
    // signed per batch message: readSessionEvents verified every batch's HMAC with the event key
    expect(mine.every((e) => e.sig === undefined)).toBe(true);
    // the gateway counts what JetStream acknowledged: every event of this gateway on the stream, in fewer messages
    let fromThisGateway = 0;
    let persisted = 0;
    let messages = 0;
    await waitFor(async () => {
      fromThisGateway = (await readSessionEvents(h, undefined, 5)).filter((e) => e.gateway === h.gateway.id).length;
      const metrics = await h.gateway.metrics.registry.metrics();
      persisted = Number(/portcullis_gateway_events_total\{result="persisted"\} (\d+)/.exec(metrics)?.[1] ?? 0);
      messages = Number(/portcullis_gateway_event_messages_total (\d+)/.exec(metrics)?.[1] ?? 0);
      return persisted === fromThisGateway;
    }, 5000, 50).catch(() => undefined);
    expect(persisted).toBe(fromThisGateway);
    expect(messages).toBeGreaterThanOrEqual(1);
    expect(messages).toBeLessThanOrEqual(persisted);
  });
});

describe('recording required and unavailable', () => {
  it('a session whose session.start cannot be persisted is refused', async () => {
    const h2 = await startHarness({
      createStream: async (nc, name, subjects) => {
        const { jetstreamManager, DiscardPolicy } = await import('@nats-io/jetstream');
        const jsm = await jetstreamManager(nc);
        await jsm.streams.add({ name, subjects: [subjects], max_msgs: 1, discard: DiscardPolicy.New });
        // fill it: every later publish is refused
        const { jetstream } = await import('@nats-io/jetstream');
        await jetstream(nc).publish(subjects.replace('>', 'filler'), 'x');
      },
    });
    try {
      const c = new pg.Client(h2.clientConfig(await h2.credential()));
      const err = await c.connect().then(() => null, (e: pg.DatabaseError) => e);
      expect(err?.code).toBe('57P03');
      expect(err?.message).toMatch(/recording is unavailable/);
      // best-effort connections still work
      await h2.putSnapshot({ connections: [{ ...h2.snapshotInput.connections[0], recording: 'best-effort' }] });
      const ok = new pg.Client(h2.clientConfig(await h2.credential()));
      await ok.connect();
      expect((await ok.query('select 1 as n')).rows[0].n).toBe(1);
      await ok.end();
    } finally {
      await h2.stop();
    }
  });
});

describe('upstream authentication', () => {
  let cluster: PgCluster;
  beforeAll(async () => {
    cluster = await startPgCluster({
      hba: ['host all scram_user 127.0.0.1/32 scram-sha-256', 'host all md5_user 127.0.0.1/32 md5', 'host all clear_user 127.0.0.1/32 password'],
      roles: [
        { name: 'scram_user', password: 'scram-secret' },
        { name: 'md5_user', password: 'md5-secret', passwordEncryption: 'md5' },
        { name: 'clear_user', password: 'clear-secret' },
      ],
      databases: [{ name: 'app', owner: 'scram_user' }],
    });
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  it('SCRAM-SHA-256, md5 and cleartext upstream; the client never sees the target user', async () => {
    const base = { kind: 'postgres' as const, host: cluster.host, port: cluster.port, database: 'app', tls: 'disable' as const, allowedGroups: ['engineers'], policy: null, recording: 'best-effort' as const, approvalMode: 'wait' as const };
    await h.putSnapshot({
      connections: [
        h.snapshotInput.connections[0],
        { ...base, name: 'scram', username: 'scram_user', password: 'scram-secret' },
        { ...base, name: 'md5', username: 'md5_user', password: 'md5-secret' },
        { ...base, name: 'clear', username: 'clear_user', password: 'clear-secret' },
        { ...base, name: 'wrongpw', username: 'scram_user', password: 'nope' },
      ],
    });
    for (const [name, user] of [['scram', 'scram_user'], ['md5', 'md5_user'], ['clear', 'clear_user']] as const) {
      const c = new pg.Client(h.clientConfig(await h.credential({ cn: name }), name));
      await c.connect();
      expect((await c.query('select current_user as u')).rows[0].u).toBe(user);
      expect((c as unknown as { processID: number }).processID).toBeGreaterThan(0);
      await c.end();
    }
    const bad = new pg.Client(h.clientConfig(await h.credential({ cn: 'wrongpw' }), 'wrongpw'));
    const err = await bad.connect().then(() => null, (e: pg.DatabaseError) => e);
    expect(err?.code).toBe('08001');
    expect(err?.message).not.toMatch(/scram_user|127\.0\.0\.1|password authentication/);
  });
});
