import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { WireEvent } from '@portcullis/protocol';
import { brokenAt, Harness } from './helpers.js';

/** Publishes `sessions` sessions of `statements` statements each, interleaved, in chunks, with a pause hook. */
function workload(h: Harness, sessions: number, statements: number): { ids: string[]; events: WireEvent[] } {
  const ids = Array.from({ length: sessions }, () => h.newSession());
  const perSession = ids.map((id) => h.sessionEvents(id, statements));
  const events: WireEvent[] = [];
  for (let i = 0; i < perSession[0].length; i++) for (const evs of perSession) events.push(evs[i]);
  return { ids, events };
}

async function assertExactlyOnce(h: Harness, ids: string[], events: WireEvent[]): Promise<void> {
  const r = await h.db.query<{ id: string }>(`SELECT id::text FROM "Event" WHERE chain = ANY($1::text[])`, [ids]);
  expect(r.rows.length).toBe(events.length);
  expect(new Set(r.rows.map((x) => x.id))).toEqual(new Set(events.map((e) => e.id)));
  for (const id of ids) {
    const rows = await h.eventsOf(id);
    expect(rows.map((x) => x.seq)).toEqual(rows.map((_, i) => i + 1));
    expect(brokenAt(rows)).toBeNull();
  }
}

// Once with one event per message (api, approvals), once with batch messages (the gateway).
// Waits are for correctness (every event stored once), with room for a loaded CI host: a batch a
// killed or slow recorder held is redelivered only after the consumer's ack wait.
describe.each([
  { mode: 'single events', batchEvents: 0 },
  { mode: 'gateway batches', batchEvents: 7 },
])('recorder: crashes, restarts and concurrency ($mode)', { timeout: 120_000 }, ({ batchEvents }) => {
  let h: Harness;

  beforeAll(async () => {
    h = await new Harness().setup();
    h.batchEvents = batchEvents;
  });
  afterEach(async () => {
    await h.stopRecorders();
  });
  afterAll(async () => {
    await h.teardown();
  });

  it('loses and duplicates nothing when stopped gracefully mid-stream and restarted', async () => {
    const { ids, events } = workload(h, 20, 30); // 20 × 92 events
    const rec = await h.recorder({ RECORDER_BATCH: '50' });
    const half = Math.floor(events.length / 2);
    const publishing = h.publish(events.slice(0, half));
    await h.waitFor(() => h.countFor(ids), (n) => n > 100);
    await rec.stop();
    await publishing;
    await h.publish(events.slice(half));
    const stoppedAt = await h.countFor(ids);
    expect(stoppedAt).toBeLessThan(events.length);
    await h.recorder({ RECORDER_BATCH: '50' });
    await h.waitFor(() => h.countFor(ids), (n) => n === events.length);
    await assertExactlyOnce(h, ids, events);
  });

  it('loses and duplicates nothing when killed (no acks, no commit) and restarted', async () => {
    const { ids, events } = workload(h, 10, 30);
    const rec = await h.recorder({ RECORDER_BATCH: '40' });
    const publishing = h.publish(events);
    await h.waitFor(() => h.countFor(ids), (n) => n > 50);
    await rec.kill();
    await publishing;
    await h.recorder({ RECORDER_BATCH: '40' });
    await h.waitFor(() => h.countFor(ids), (n) => n === events.length, 60_000);
    // redeliveries of what the killed recorder committed but never acked are skipped as duplicates
    await new Promise((r) => setTimeout(r, 2500));
    await assertExactlyOnce(h, ids, events);
    await h.waitFor(() => h.ackPending(), (n) => n === 0);
  });

  it('two recorders on one durable consumer store every event exactly once with unforked chains', async () => {
    const { ids, events } = workload(h, 30, 20);
    const [r1, r2] = await Promise.all([h.recorder({ RECORDER_BATCH: '25' }), h.recorder({ RECORDER_BATCH: '25' })]);
    await h.publish(events);
    await h.waitFor(() => h.countFor(ids), (n) => n === events.length, 60_000);
    await assertExactlyOnce(h, ids, events);
    const p1 = (await r1.metrics.persisted.get()).values[0]?.value ?? 0;
    const p2 = (await r2.metrics.persisted.get()).values[0]?.value ?? 0;
    expect(p1 + p2).toBeGreaterThanOrEqual(events.length);
    expect(p1).toBeGreaterThan(0);
    expect(p2).toBeGreaterThan(0);
  });

  it('two recorders on separate durable consumers (both see every event) still store each once', async () => {
    const { ids, events } = workload(h, 10, 10);
    await Promise.all([h.recorder({ RECORDER_CONSUMER: 'mirror-a' }), h.recorder({ RECORDER_CONSUMER: 'mirror-b' })]);
    await h.publish(events);
    await h.waitFor(() => h.countFor(ids), (n) => n === events.length, 60_000);
    await new Promise((r) => setTimeout(r, 500));
    await assertExactlyOnce(h, ids, events);
  });

  it('chains across a missing seq once the gap timeout passes', async () => {
    const rec = await h.recorder({ RECORDER_CONSUMER: 'gap', RECORDER_GAP_SECONDS: '0.5' });
    const sid = h.newSession();
    const evs = h.sessionEvents(sid, 1);
    await h.publish([evs[0], evs[2], evs[3], evs[4]]);
    await h.waitFor(() => h.countFor([sid]), (n) => n === 4);
    const rows = await h.eventsOf(sid);
    expect(rows.map((r) => r.seq)).toEqual([1, 3, 4, 5]);
    expect(brokenAt(rows)).toBeNull();
    expect((await rec.metrics.gaps.get()).values[0]?.value).toBe(1);
  });
});
