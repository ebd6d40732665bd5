import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { PrismaClient } from '@portcullis/db';
import { deriveKey, encryptAtRest, generatePoolKeyPair, natsNames, openSealed, wireEventSchema, type WireEvent } from '@portcullis/protocol';
import { ConfigPublisherService } from '../src/config-publisher/config-publisher.service.js';
import { eventually, startTestApi, type TestApi } from './support.js';

/**
 * One connection whose secret this api cannot decrypt (stored by another checkout with another master key,
 * in the same database) must not take its pool down: it is left out of the snapshot and marked broken, the
 * others are published. Real Postgres and NATS.
 */
describe('a connection that cannot be published', () => {
  let api: TestApi;
  let prisma: PrismaClient;
  let nc: NatsConnection;
  const events: WireEvent[] = [];
  const pool = generatePoolKeyPair();
  let s: string;
  let poolName: string;
  let good: string;
  let peer: string;

  beforeAll(async () => {
    api = await startTestApi();
    s = api.suffix;
    poolName = `bp-${s}`;
    good = `good-${s}`;
    peer = `peer-${s}`;
    prisma = api.get(PrismaClient);
    nc = await connect({ servers: process.env.NATS_URL ?? 'nats://127.0.0.1:4222' });
    const names = natsNames(api.prefix);
    const messages = await (await jetstream(nc).consumers.get(names.eventStream, { filter_subjects: names.controlEvents })).consume();
    void (async () => {
      for await (const m of messages) events.push(wireEventSchema.parse(m.json()));
    })();
    expect((await api.http.put(`/v1/gateway-pools/${poolName}`).set('Authorization', api.admin).send({ publicKey: pool.publicKey })).status).toBe(201);
    for (const name of [good, peer]) {
      const r = await api.http.post('/v1/connections').set('Authorization', api.admin)
        .send({ name, pool: poolName, host: '10.0.0.1', database: 'app', username: 'app', password: `pw-${name}` });
      expect(r.status).toBe(201);
    }
  });

  afterAll(async () => {
    await prisma?.connection.deleteMany({ where: { pool: poolName } });
    await prisma?.gatewayPool.deleteMany({ where: { name: poolName } });
    await nc?.close();
    await api?.close();
  });

  const publisher = () => api.get(ConfigPublisherService);

  it('leaves it out and marks it broken; the pool\'s other connections are still published', async () => {
    // What a second checkout (its own .portcullis/master-key) writes into the shared database.
    const otherKey = deriveKey(randomBytes(32), 'secrets-at-rest');
    await prisma.connection.update({ where: { name: peer }, data: { secretCiphertext: encryptAtRest(otherKey, 'their-password', peer) } });
    await publisher().publishNow();

    const snap = (await publisher().current(poolName))!;
    expect(snap.connections.map((c) => c.name)).toEqual([good]);
    expect(openSealed(pool.privateKey, snap.connections[0]!.secret!, `connection:${good}`)).toBe(`pw-${good}`);

    const view = await api.http.get(`/v1/connections/${peer}`).set('Authorization', api.admin);
    expect(view.status).toBe(200);
    expect(view.body).toMatchObject({ status: 'broken', brokenReason: expect.stringContaining('cannot be decrypted with this PORTCULLIS_MASTER_KEY'), brokenSince: expect.any(String) });
    expect((await api.http.get(`/v1/connections/${good}`).set('Authorization', api.admin)).body).toMatchObject({ status: 'ok', brokenReason: null });

    const metrics = await api.http.get('/metrics');
    expect(metrics.text).toContain(`portcullis_api_connections_broken{pool="${poolName}"} 1`);
    const broke = await eventually(() => {
      const e = events.find((x) => x.type === 'connection.changed' && x.data.action === 'broken' && x.data.target === peer);
      if (!e) throw new Error('no connection.changed broken event yet');
      return e;
    }, 3_000);
    expect(broke.identity).toBe('system');
    expect(broke.data.reason).toContain('another one');
  });

  it('reports it once, not on every publish round', async () => {
    await publisher().publishNow();
    await publisher().publishNow();
    await new Promise((r) => setTimeout(r, 300));
    expect(events.filter((x) => x.data.action === 'broken' && x.data.target === peer)).toHaveLength(1);
  });

  it('is repaired by setting its secret again: back in the snapshot, status ok', async () => {
    const r = await api.http.patch(`/v1/connections/${peer}`).set('Authorization', api.admin).send({ password: 'new-password' });
    expect(r.status).toBe(200);
    await publisher().publishNow();
    const snap = (await publisher().current(poolName))!;
    expect(snap.connections.map((c) => c.name)).toEqual([good, peer]);
    expect((await api.http.get(`/v1/connections/${peer}`).set('Authorization', api.admin)).body).toMatchObject({ status: 'ok', brokenReason: null, brokenSince: null });
    expect((await api.http.get('/metrics')).text).toContain(`portcullis_api_connections_broken{pool="${poolName}"} 0`);
    await eventually(() => {
      if (!events.some((x) => x.data.action === 'repaired' && x.data.target === peer)) throw new Error('no repaired event yet');
    }, 3_000);
  });
});
