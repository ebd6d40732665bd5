import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jetstreamManager } from '@nats-io/jetstream';
import { CONTROL_CHAIN, type WireEvent } from '@portcullis/protocol';
import { DEAD_LETTER_HEADERS } from '../src/event-consumer.js';
import type { Recorder } from '../src/recorder.js';
import { brokenAt, Harness } from './helpers.js';

describe('recorder: chaining', () => {
  let h: Harness;
  let rec: Recorder;

  beforeAll(async () => {
    h = await new Harness().setup();
    rec = await h.recorder();
  });
  afterAll(async () => {
    await h.teardown();
  });

  it('persists every event of interleaved sessions in seq order with a valid hash chain and a Session row', async () => {
    const a = h.newSession();
    const b = h.newSession();
    const ea = h.sessionEvents(a, 20);
    const eb = h.sessionEvents(b, 20);
    const mixed = ea.flatMap((e, i) => [e, eb[i]]);
    await h.publish(mixed);
    await h.waitFor(() => h.countFor([a, b]), (n) => n === ea.length + eb.length);
    for (const [sid, evs] of [[a, ea], [b, eb]] as const) {
      const rows = await h.eventsOf(sid);
      expect(rows.map((r) => r.id)).toEqual(evs.map((e) => e.id));
      expect(rows.map((r) => r.seq)).toEqual(evs.map((_, i) => i + 1));
      expect(brokenAt(rows)).toBeNull();
      // positions follow the chain
      const positions = rows.map((r) => BigInt(r.position));
      expect([...positions].sort((x, y) => (x < y ? -1 : 1))).toEqual(positions);
      const s = (await h.db.query(`SELECT * FROM "Session" WHERE id = $1`, [sid])).rows[0];
      expect(s).toMatchObject({ identity: 'alice', connection: 'demo', gateway: 'gw-1', clientAddr: '127.0.0.1:5555', pool: 'default', lastSeq: evs.length, events: evs.length });
      expect(s.lastHash).toBe(rows.at(-1).hash);
      expect(s.endedAt).toBeInstanceOf(Date);
    }
  });

  it('stores an event published twice (bypassing JetStream dedup) once', async () => {
    const sid = h.newSession();
    const evs = h.sessionEvents(sid, 2);
    const before = (await rec.metrics.duplicates.get()).values[0]?.value ?? 0;
    await h.publish(evs, { dedup: false });
    await h.waitFor(() => h.countFor([sid]), (n) => n === evs.length);
    await h.publish([evs[0], evs[3], evs[3]], { dedup: false });
    await h.waitFor(async () => (await rec.metrics.duplicates.get()).values[0]?.value ?? 0, (n) => n >= before + 3);
    expect(await h.countFor([sid])).toBe(evs.length);
    expect(brokenAt(await h.eventsOf(sid))).toBeNull();
  });

  it('chains out-of-order arrivals in seq order (waits for the missing predecessor)', async () => {
    const sid = h.newSession();
    const evs = h.sessionEvents(sid, 2); // 8 events
    await h.publish([evs[0], evs[3], evs[2], evs[5]]);
    await new Promise((r) => setTimeout(r, 300));
    expect(await h.countFor([sid])).toBe(1);
    await h.publish([evs[1], evs[4], evs[7], evs[6]]);
    await h.waitFor(() => h.countFor([sid]), (n) => n === evs.length);
    const rows = await h.eventsOf(sid);
    expect(rows.map((r) => r.id)).toEqual(evs.map((e) => e.id));
    expect(brokenAt(rows)).toBeNull();
  });

  it('refuses a second event claiming a seq already taken (seq conflict → dead letter)', async () => {
    const sid = h.newSession();
    const evs = h.sessionEvents(sid, 1);
    await h.publish(evs);
    await h.waitFor(() => h.countFor([sid]), (n) => n === evs.length);
    const impostor = h.sessionEvent(sid, 2, 'query', { sql: 'DROP TABLE x', protocol: 'simple' });
    await h.publish([impostor]);
    await h.waitFor(async () => (await rec.metrics.deadLetters.get()).values.find((v) => v.labels.reason === 'seq-conflict')?.value ?? 0, (n) => n === 1);
    const rows = await h.eventsOf(sid);
    expect(rows.map((r) => r.id)).toEqual(evs.map((e) => e.id));
  });

  it('chains control-plane events on the control-plane chain with recorder-assigned seq', async () => {
    const c1 = h.controlEvent('policy.changed', { action: 'update', target: 'policy:default', before: { v: 1 }, after: { v: 2 } });
    const c2 = h.controlEvent('token.issued', { action: 'create', target: 'token:abc' });
    await h.publish([c1, c2]);
    const rows = await h.waitFor(
      async () => (await h.db.query(`SELECT id::text, seq, "prevHash", hash FROM "Event" WHERE id = ANY($1::uuid[]) ORDER BY seq`, [[c1.id, c2.id]])).rows,
      (r) => r.length === 2,
    );
    expect(rows[0].seq).toBeGreaterThan(0);
    expect(rows[1].seq).toBe(rows[0].seq + 1);
    expect(rows[1].prevHash).toBe(rows[0].hash);
    const all = await h.db.query(`SELECT id::text, seq, type, "prevHash", hash, data, time, identity, connection, gateway, "sessionId" FROM "Event" WHERE chain = $1 ORDER BY seq`, [CONTROL_CHAIN]);
    expect(brokenAt(all.rows)).toBeNull();
  });

  it('parks malformed, unsigned, badly signed and invalid events on the dead-letter subject and keeps going', async () => {
    const sid = h.newSession();
    const good = h.sessionEvents(sid, 1);
    const unsigned = { ...h.sessionEvent(sid, 9, 'query', { sql: 'x' }) } as Record<string, unknown>;
    delete unsigned.sig;
    const badSig = { ...h.sessionEvent(sid, 9, 'query', { sql: 'x' }), sig: 'f'.repeat(64) };
    const tampered = { ...h.sessionEvent(sid, 9, 'query', { sql: 'x' }) };
    tampered.data = { sql: 'y' };
    const notCounts = h.sessionEvent(sid, 9, 'result', { rows: [['4111 1111 1111 1111']] });
    const nul = h.sessionEvent(sid, 9, 'query', { sql: 'a\u0000b' });
    const subject = h.names.sessionEvents(sid);
    await h.publishRaw(subject, '{not json');
    await h.publishRaw(subject, JSON.stringify({ hello: 'world' }));
    await h.publishRaw(subject, JSON.stringify(unsigned));
    await h.publishRaw(subject, JSON.stringify(badSig));
    await h.publishRaw(subject, JSON.stringify(tampered));
    await h.publishRaw(subject, JSON.stringify(notCounts));
    await h.publishRaw(subject, JSON.stringify(nul));
    await h.publishRaw(subject, new Uint8Array([0xff, 0xfe, 0x00]));
    await h.publish(good);
    await h.waitFor(() => h.countFor([sid]), (n) => n === good.length);

    const counts = await h.waitFor(
      async () => Object.fromEntries((await rec.metrics.deadLetters.get()).values.map((v) => [v.labels.reason, v.value])),
      (c) => (c['malformed-json'] ?? 0) >= 2,
    );
    expect(counts).toMatchObject({ 'malformed-json': 2, schema: 1, unsigned: 1, 'bad-signature': 2, 'result-not-counts': 1, 'unsupported-data': 1 });

    const jsm = await jetstreamManager(h.nc);
    const info = await jsm.streams.info(h.names.deadLetterStream);
    expect(info.state.messages).toBeGreaterThanOrEqual(9);
    const dl = await jsm.streams.getMessage(h.names.deadLetterStream, { seq: info.state.first_seq });
    expect(dl?.header.get(DEAD_LETTER_HEADERS.reason)).toBeTruthy();
    expect(dl?.header.get(DEAD_LETTER_HEADERS.subject)).toBeTruthy();
    // nothing is left unacknowledged on the consumer
    await h.waitFor(() => h.ackPending(), (n) => n === 0);
  });

  it('stores batch messages of several sessions, parking a bad batch whole and a bad event inside a good batch alone', async () => {
    const a = h.newSession();
    const b = h.newSession();
    const ea = h.sessionEvents(a, 3);
    const eb = h.sessionEvents(b, 3);
    const mixed: WireEvent[] = [];
    for (let i = 0; i < ea.length; i++) mixed.push(ea[i], eb[i]);
    const before = Object.fromEntries((await rec.metrics.deadLetters.get()).values.map((v) => [v.labels.reason, v.value]));
    // a forged batch (valid events, wrong signature) stores nothing
    const forged = h.sessionEvent(h.newSession(), 1, 'session.start', {});
    await h.publishBatch([forged], { sig: 'a'.repeat(64) });
    // a good batch carrying one inconsistent event (session.start at seq 5) and one off-schema event
    const inconsistent = h.sessionEvent(b, 99, 'session.start', {});
    const offSchema = { ...h.sessionEvent(b, 98, 'query', {}), seq: -1 };
    await h.publishBatch([...mixed.slice(0, 5), inconsistent, offSchema, ...mixed.slice(5, 9)]);
    await h.publishBatch(mixed.slice(9));
    await h.waitFor(() => h.countFor([a, b]), (n) => n === mixed.length);
    for (const sid of [a, b]) {
      const rows = await h.eventsOf(sid);
      expect(rows.map((r) => r.seq)).toEqual(rows.map((_, i) => i + 1));
      expect(brokenAt(rows)).toBeNull();
    }
    const after = await h.waitFor(
      async () => Object.fromEntries((await rec.metrics.deadLetters.get()).values.map((v) => [v.labels.reason, v.value])),
      (c) => (c.inconsistent ?? 0) > (before.inconsistent ?? 0),
    );
    expect((after['bad-signature'] ?? 0) - (before['bad-signature'] ?? 0)).toBe(1);
    expect((after.schema ?? 0) - (before.schema ?? 0)).toBe(1);
    const jsm = await jetstreamManager(h.nc);
    const info = await jsm.streams.info(h.names.deadLetterStream);
    const indexes: string[] = [];
    for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
      const m = await jsm.streams.getMessage(h.names.deadLetterStream, { seq });
      const idx = m?.header.get(DEAD_LETTER_HEADERS.batchIndex);
      if (idx) indexes.push(idx);
    }
    expect(indexes.sort()).toEqual(['5', '6']);
    await h.waitFor(() => h.ackPending(), (n) => n === 0);
  });

  it('serves healthz, readyz, metrics and the checkpoint key', async () => {
    const base = `http://127.0.0.1:${rec.port}`;
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    const ready = await fetch(`${base}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ checks: { postgres: 'ok', nats: 'ok' } });
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toContain('recorder_events_persisted_total');
    expect(metrics).toContain('recorder_dead_letters_total');
    const key = await (await fetch(`${base}/checkpoint-key`)).json();
    expect(key.keys[0]).toMatchObject({ kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA' });
  });
});
