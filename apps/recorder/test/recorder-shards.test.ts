import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EVENT_PARTITIONS, eventPartition, type WireEvent } from '@portcullis/protocol';
import { brokenAt, Harness } from './helpers.js';

/** `sessions` sessions of `statements` statement events each, interleaved as a gateway's flushes interleave them. */
/** At least `sessions` sessions, covering every event partition. */
function workload(h: Harness, sessions: number, statements: number): { ids: string[]; events: WireEvent[] } {
  // Random ids miss a partition now and then: draw on until every partition has a session.
  const ids: string[] = [];
  while (ids.length < sessions || new Set(ids.map(eventPartition)).size < EVENT_PARTITIONS) ids.push(h.newSession());
  const perSession = ids.map((id) => h.statementSession(id, statements));
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

const value = async (m: { get(): Promise<{ values: { value: number }[] }> }) => (await m.get()).values[0]?.value ?? 0;

describe('recorder shards: partitions of one stream', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await new Harness().setup();
    h.batchEvents = 25; // gateway batch messages, one partition each
  });
  afterEach(async () => {
    await h.stopRecorders();
  });
  afterAll(async () => {
    await h.teardown();
  });

  it('two recorders (shards 0/2 and 1/2) share the stream: each chains its own partitions, every chain verifies, nothing lost or duplicated', async () => {
    const { ids, events } = workload(h, 60, 25);
    const owners = new Set(ids.map((id) => eventPartition(id) % 2));
    expect(owners).toEqual(new Set([0, 1]));
    const [a, b] = await Promise.all([h.recorder({ RECORDER_SHARD: '0/2', RECORDER_BATCH: '200' }), h.recorder({ RECORDER_SHARD: '1/2', RECORDER_BATCH: '200' })]);
    // a control-plane event goes to shard 0 only
    const control = h.controlEvent('policy.changed', { action: 'update', target: 'policy:shards' });
    await Promise.all([h.publish(events), h.publish([control])]);
    await h.waitFor(() => h.countFor(ids), (n) => n === events.length, 30_000);
    await assertExactlyOnce(h, ids, events);
    await h.waitFor(async () => (await h.db.query(`SELECT 1 FROM "Event" WHERE id = $1`, [control.id])).rowCount, (n) => n === 1);
    // each recorder stored exactly the sessions of its partitions: no session was split between them
    const perShard = [0, 1].map((s) => events.filter((e) => eventPartition(e.sessionId!) % 2 === s).length);
    expect(await value(a.metrics.persisted)).toBe(perShard[0]! + 1);
    expect(await value(b.metrics.persisted)).toBe(perShard[1]!);
    // so no event ever waited for a predecessor held by the other recorder
    expect(await value(a.metrics.deferred)).toBe(0);
    expect(await value(b.metrics.deferred)).toBe(0);
    await h.waitFor(() => h.ackPending(), (n) => n === 0);
  });

  it('a shard killed mid-run (no acks, no commit) and restarted loses and duplicates nothing, while the other shard keeps going', async () => {
    const { ids, events } = workload(h, 30, 30);
    const a = await h.recorder({ RECORDER_SHARD: '0/2', RECORDER_BATCH: '40' });
    await h.recorder({ RECORDER_SHARD: '1/2', RECORDER_BATCH: '40' });
    const publishing = h.publish(events);
    await h.waitFor(async () => value(a.metrics.persisted), (n) => n > 50);
    await a.kill();
    await publishing;
    const mine = new Set(ids.filter((id) => eventPartition(id) % 2 === 1));
    const theirs = events.filter((e) => mine.has(e.sessionId!));
    // shard 1's sessions are complete without shard 0
    await h.waitFor(() => h.countFor([...mine]), (n) => n === theirs.length, 20_000);
    await h.recorder({ RECORDER_SHARD: '0/2', RECORDER_BATCH: '40' });
    await h.waitFor(() => h.countFor(ids), (n) => n === events.length, 30_000);
    // redeliveries of what the killed recorder committed but never acked are skipped as duplicates
    await new Promise((r) => setTimeout(r, 2500));
    await assertExactlyOnce(h, ids, events);
    await h.waitFor(() => h.ackPending(), (n) => n === 0);
  });

  it('one recorder (shard 0/1) owns every partition', async () => {
    const { ids, events } = workload(h, 16, 5);
    expect(new Set(ids.map(eventPartition)).size).toBe(EVENT_PARTITIONS);
    await h.recorder();
    await h.publish(events);
    await h.waitFor(() => h.countFor(ids), (n) => n === events.length, 20_000);
    await assertExactlyOnce(h, ids, events);
  });

  it.each(['2/2', '0/0', 'one', '1'])('refuses RECORDER_SHARD=%s', (shard) => {
    expect(() => h.env({ RECORDER_SHARD: shard })).toThrow(/RECORDER_SHARD/);
  });
});
