import pg from 'pg';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { heartbeatSchema, natsNames, type Heartbeat } from '@portcullis/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSessionEvents, startHarness, waitFor, type Harness } from './support/harness.js';
import { startPrivateNats, type PrivateNats } from './support/nats-server.js';

/**
 * NATS going away and coming back, on a private NATS server (the shared one stays up): sessions
 * keep being served on the last config; best-effort connections still take new sessions; a
 * connection that requires recording refuses new sessions — and ends live ones — with a clear
 * error (fail closed); after NATS returns, recording, config changes and heartbeats resume.
 */

let nats: PrivateNats;
let h: Harness;
let watcher: NatsConnection;
const beats: Heartbeat[] = [];
const clients = new Set<pg.Client>();

beforeAll(async () => {
  nats = await startPrivateNats();
  h = await startHarness({ natsUrl: nats.url, connection: { recording: 'best-effort' } });
  const target = h.snapshotInput.connections[0]!;
  await h.putSnapshot({ connections: [target, { ...target, name: 'strict', recording: 'required' }] });
  watcher = await connect({ servers: nats.url, maxReconnectAttempts: -1, reconnectTimeWait: 250 });
  watcher.subscribe(natsNames(h.natsPrefix).heartbeatAll, {
    callback: (err, msg) => {
      if (!err) beats.push(heartbeatSchema.parse(msg.json()));
    },
  });
});
afterAll(async () => {
  for (const c of clients) await Promise.race([c.end().catch(() => undefined), new Promise((r) => setTimeout(r, 500))]);
  await watcher?.close().catch(() => undefined);
  // stop() deletes the harness's streams: NATS must be up for that (a failed test may have left it down)
  await nats?.restart().catch(() => undefined);
  await h?.stop();
  await nats?.stop();
});

async function client(connection = 'target'): Promise<pg.Client> {
  const c = new pg.Client(h.clientConfig(await h.credential({ cn: connection }), connection));
  c.on('error', () => undefined);
  clients.add(c);
  await c.connect();
  return c;
}

const one = async (c: pg.Client): Promise<number> => (await c.query('SELECT 1 AS n')).rows[0].n as number;

describe('heartbeats', () => {
  it('carry the gateway id, pool, version and live sessions', async () => {
    const c = await client();
    try {
      await waitFor(() => beats.some((b) => b.liveSessions >= 1), 5000);
      const b = beats.filter((x) => x.liveSessions >= 1).at(-1)!;
      expect(b).toMatchObject({ id: h.gateway.id, pool: h.pool, version: expect.any(String), configRevision: 2 });
      expect(Date.parse(b.time)).toBeGreaterThan(Date.now() - 5000);
    } finally {
      await c.end();
    }
    const n = beats.length;
    await waitFor(() => beats.length > n && beats.at(-1)!.liveSessions === 0, 5000);
  });
});

describe('NATS goes away', () => {
  it('serves live and new sessions on the last config; required recording fails closed; all recovers', async () => {
    const live = await client();
    const strictLive = await client('strict');
    expect(await one(live)).toBe(1);
    expect(await one(strictLive)).toBe(1);
    const strictEnded = new Promise<Error>((resolve) => strictLive.once('error', resolve));

    await nats.kill();
    const ready = async () => (await (await fetch(`http://127.0.0.1:${h.gateway.httpPort}/readyz`)).json()) as { nats?: boolean };
    await waitFor(async () => (await ready()).nats === false, 5000, 100);

    // the live best-effort session goes on
    expect(await one(live)).toBe(1);

    // a new best-effort session connects at once, verified against the last config, and works
    let t0 = Date.now();
    const fresh = await client();
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(await one(fresh)).toBe(1);

    // a new session on a connection that requires recording is refused, at once and clearly
    t0 = Date.now();
    const refused = await client('strict').then(
      async (c) => {
        await c.end();
        return null;
      },
      (e: pg.DatabaseError) => e,
    );
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(refused?.code).toBe('57P03');
    expect(refused?.message).toBe('session recording is unavailable and this connection requires it; try again later');

    // a live session on the required connection was ended as soon as NATS went away, before it could
    // run anything unrecorded
    const ended = await strictEnded;
    expect(ended.message).toMatch(/session recording is unavailable and this connection requires it; the session was ended/);
    await expect(one(strictLive)).rejects.toThrow();
    expect(await one(live)).toBe(1);

    // NATS comes back: the gateway reconnects and required sessions are accepted again
    await nats.restart();
    await waitFor(async () => (await ready()).nats === true, 10_000, 100);
    const after = await client('strict');
    expect(await one(after)).toBe(1);
    const sessionId = [...h.gateway.sessions].at(-1)!.id;
    const events = await readSessionEvents(h, sessionId, 2);
    expect(events.map((e) => e.type)).toEqual(expect.arrayContaining(['session.start', 'statement']));
    // the best-effort session opened during the outage is served and recorded from now on
    expect(await one(fresh)).toBe(1);
    // config changes apply again (the KV watch came back)
    await h.putSnapshot({ revokedTokenIds: ['some-old-token'] });
    expect(h.gateway.config.current?.revision).toBe(3);
    // heartbeats again, with the new revision and the live sessions
    await waitFor(() => beats.at(-1)?.configRevision === 3, 5000);
    expect(beats.at(-1)!.liveSessions).toBe(3);
    await after.end();
    await fresh.end();
    await live.end();
  }, 40_000);
});
