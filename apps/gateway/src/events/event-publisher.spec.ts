import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import {
  canonicalJson, encodeEventBatch, EVENT_BATCH_SIG_HEADER, eventPartition, MAX_EVENT_BATCH_BYTES, natsNames, signEvent, verifyEventBatchBody, verifyEventSignature,
  wireEventSchema,
} from '@portcullis/protocol';
import { DEFAULT_EVENT_FLUSH_MS, EventPublisher, SessionRecorder, ensureEventStream, setEventFlushInterval } from './event-publisher.js';
import { createLogger } from '../logger.js';

const key = Buffer.alloc(32, 7);
const who = { sessionId: 'sess-"1"', identity: 'user:ünï\\code', connection: 'db\nx', gateway: 'gw-1' };

describe('SessionRecorder.canonical', () => {
  it.each([
    { name: 'query with quotes and unicode', type: 'query' as const, data: { sql: "select 'é\"\\' \u2028", protocol: 'simple' } },
    { name: 'result with nested masking and undefined members', type: 'result' as const, data: { tag: 'SELECT 1', rows: 1, durationMs: 0, skip: undefined, masking: { values: 2, columns: ['b', 'a'] } } },
    { name: 'empty data', type: 'session.end' as const, data: {} },
  ])('$name: the batch entry is exactly the canonical JSON of the unsigned wire event', ({ type, data }) => {
    const r = new SessionRecorder(null, who, key, 'best-effort', createLogger('silent', {}), () => undefined);
    const id = '0b6f3d1e-8c4a-4d7e-9f41-2b1c3d4e5f60';
    const time = Date.UTC(2026, 10, 27, 1, 2, 3, 456);
    const json = r.canonical(id, { seq: 3, time, type, data });
    const expected = { id, sessionId: who.sessionId, seq: 3, time: new Date(time).toISOString(), type, identity: who.identity, connection: who.connection, gateway: who.gateway, data };
    expect(json).toBe(canonicalJson(expected));
    expect(wireEventSchema.safeParse(JSON.parse(json)).success).toBe(true);
    // in a batch it verifies as the signed single event would: same bytes under the HMAC
    const { body, sig } = encodeEventBatch([expected], key);
    expect(body).toBe(`[${json}]`);
    expect(verifyEventBatchBody(Buffer.from(body), sig, key)).toBe(true);
    expect(verifyEventSignature(signEvent(JSON.parse(json), key), key)).toBe(true);
  });

  it('without a publisher, required recording fails once and record() rejects', async () => {
    const failures: Error[] = [];
    const r = new SessionRecorder(null, who, key, 'required', createLogger('silent', {}), (e) => failures.push(e));
    await expect(r.record('session.start', {})).rejects.toThrow(/event stream unavailable/);
    r.emit('query', { sql: 'select 1' });
    await r.flush();
    expect(failures).toHaveLength(1);
  });
});

describe('EventPublisher batches (real NATS JetStream)', () => {
  const prefix = `pubspec${randomBytes(4).toString('hex')}`;
  const names = natsNames(prefix);
  let nc: NatsConnection;

  beforeAll(async () => {
    nc = await connect({ servers: process.env.NATS_URL ?? 'nats://127.0.0.1:4222' });
    await ensureEventStream(nc, prefix);
  });
  afterAll(async () => {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.delete(names.eventStream).catch(() => undefined);
    await nc.close();
  });

  it('one flush of many sessions goes out as signed batch messages under the size cap, every event acked, in seq order', async () => {
    const publisher = new EventPublisher(nc, prefix, createLogger('silent', {}), 5000, 'gw.1 test');
    const failures: Error[] = [];
    const recorders = [0, 1, 2].map((i) => new SessionRecorder(publisher, { ...who, sessionId: `sess-${i}` }, key, 'required', createLogger('silent', {}), (e) => failures.push(e)));
    // ~1.5 MB of events in one flush: more than one batch must be made
    const sql = `select '${'x'.repeat(700)} é ✓ 😀'`;
    for (let n = 0; n < 700; n++) for (const r of recorders) r.emit('query', { sql, protocol: 'simple', n });
    await Promise.all(recorders.map((r) => r.record('result', { rows: 0 })));
    await Promise.all(recorders.map((r) => r.flush()));
    expect(failures).toEqual([]);
    publisher.close();

    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info(names.eventStream);
    expect(info.state.messages).toBeGreaterThanOrEqual(3);
    const bySession = new Map<string, number[]>();
    for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
      const m = await jsm.streams.getMessage(names.eventStream, { seq });
      expect(m.subject.endsWith('.gw_1_test')).toBe(true);
      expect(m.data.length).toBeLessThanOrEqual(MAX_EVENT_BATCH_BYTES);
      expect(verifyEventBatchBody(m.data, m.header.get(EVENT_BATCH_SIG_HEADER), key)).toBe(true);
      for (const e of m.json<Array<Record<string, unknown>>>()) {
        // a batch carries the sessions of one partition, on that partition's subject
        expect(m.subject).toBe(names.gatewayEvents('gw.1 test', eventPartition(e.sessionId as string)));
        if (e.type === 'query') expect((e.data as { sql: string }).sql).toBe(sql);
        expect(wireEventSchema.safeParse(e).success).toBe(true);
        const seqs = bySession.get(e.sessionId as string) ?? [];
        seqs.push(e.seq as number);
        bySession.set(e.sessionId as string, seqs);
      }
    }
    for (const i of [0, 1, 2]) expect(bySession.get(`sess-${i}`)).toEqual(Array.from({ length: 701 }, (_, k) => k + 1));
  });

  it('the events of every session of a partition flushed together share one message', async () => {
    const jsm = await jetstreamManager(nc);
    const before = (await jsm.streams.info(names.eventStream)).state.messages;
    const publisher = new EventPublisher(nc, prefix, createLogger('silent', {}), 5000, 'gw-3');
    // each session holds its own copy of the key bytes, as sessions of one snapshot do
    const recorders = [0, 1, 2, 3, 4].map((i) => new SessionRecorder(publisher, { ...who, sessionId: `one-${i}` }, Buffer.from(key), 'required', createLogger('silent', {}), () => undefined));
    for (const r of recorders) r.emit('query', { sql: 'select 1', protocol: 'simple' });
    await Promise.all(recorders.map((r) => r.record('result', { rows: 1 })));
    publisher.close();
    const info = await jsm.streams.info(names.eventStream);
    const partitions = new Set(recorders.map((_, i) => eventPartition(`one-${i}`)));
    expect(partitions.size).toBeLessThan(recorders.length);
    expect(info.state.messages - before).toBe(partitions.size);
    let events = 0;
    for (let seq = before + 1; seq <= info.state.last_seq; seq++) events += (await jsm.streams.getMessage(names.eventStream, { seq })).json<unknown[]>().length;
    expect(events).toBe(10);
  });

  it('fire-and-forget events wait for the flush interval and then go out as one message', async () => {
    const jsm = await jetstreamManager(nc);
    const before = (await jsm.streams.info(names.eventStream)).state.messages;
    const publisher = new EventPublisher(nc, prefix, createLogger('silent', {}), 5000, 'gw-4');
    const r = new SessionRecorder(publisher, { ...who, sessionId: 'interval' }, key, 'required', createLogger('silent', {}), () => undefined);
    setEventFlushInterval(150);
    try {
      const start = Date.now();
      for (let i = 0; i < 20; i++) r.emit('query', { sql: `select ${i}`, protocol: 'simple' });
      await new Promise((res) => setTimeout(res, 60));
      // nothing is published before the interval has passed
      expect((await jsm.streams.info(names.eventStream)).state.messages).toBe(before);
      await r.flush();
      expect(Date.now() - start).toBeGreaterThanOrEqual(140);
      const info = await jsm.streams.info(names.eventStream);
      expect(info.state.messages - before).toBe(1);
      expect((await jsm.streams.getMessage(names.eventStream, { seq: info.state.last_seq })).json<unknown[]>()).toHaveLength(20);
    } finally {
      setEventFlushInterval(DEFAULT_EVENT_FLUSH_MS);
      publisher.close();
    }
  });

  it.each([0, -1, 1.5, 1001, Number.NaN])('refuses a flush interval of %s ms', (ms) => {
    expect(() => setEventFlushInterval(ms)).toThrow(/1\.\.1000 ms/);
  });

  it('a batch the stream refuses fails every required session in it (fail closed)', async () => {
    const publisher = new EventPublisher(nc, `${prefix}none`, createLogger('silent', {}), 1000, 'gw-2');
    const failures: Error[] = [];
    const r = new SessionRecorder(publisher, who, key, 'required', createLogger('silent', {}), (e) => failures.push(e));
    await expect(r.record('session.start', {})).rejects.toThrow(/not persisted/);
    expect(failures).toHaveLength(1);
    publisher.close();
  });
});
