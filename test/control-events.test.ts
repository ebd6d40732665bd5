/**
 * libs/protocol's ControlEventPublisher (the api's and the approvals app's control-plane events) on a
 * real NATS: it creates the event stream, signs what it publishes, and keeps what a closed connection
 * could not take until a live one publishes it under the same message id (JetStream dedups).
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { ControlEventPublisher, natsNames, verifyEventSignature, type NatsNames, type WireEvent } from '@portcullis/protocol';

const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
const key = randomBytes(32);
let nc: NatsConnection;
let jsm: JetStreamManager;
const created: string[] = [];

function fresh(): NatsNames {
  const names = natsNames(`ctl${randomBytes(5).toString('hex')}`);
  created.push(names.eventStream);
  return names;
}

async function storedEvents(names: NatsNames): Promise<WireEvent[]> {
  const info = await jsm.streams.info(names.eventStream);
  const out: WireEvent[] = [];
  for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
    const m = await jsm.streams.getMessage(names.eventStream, { seq });
    if (m) out.push(m.json<WireEvent>());
  }
  return out;
}

beforeAll(async () => {
  nc = await connect({ servers: NATS_URL });
  jsm = await jetstreamManager(nc);
});

afterAll(async () => {
  for (const s of created) await jsm.streams.delete(s).catch(() => undefined);
  await nc?.close();
});

describe('ControlEventPublisher', () => {
  it('creates the event stream and publishes signed control events on <p>.events.control', async () => {
    const names = fresh();
    const seen: string[] = [];
    const p = new ControlEventPublisher({ js: () => jetstream(nc), manager: () => jetstreamManager(nc), names, key, hooks: { published: (e) => seen.push(e.id) } });
    const event = await p.record({ type: 'policy.changed', actor: 'alice', data: { action: 'update', target: 'default' } });
    expect(event).toMatchObject({ sessionId: null, seq: 0, type: 'policy.changed', identity: 'alice', connection: null, gateway: null });
    expect(verifyEventSignature(event, key)).toBe(true);
    expect(seen).toEqual([event.id]);
    const stored = await storedEvents(names);
    expect(stored).toEqual([event]);
    expect(p.close()).toBe(0);
  });

  it('queues what a closed connection could not take and publishes it once with the same id; a full queue drops the oldest', async () => {
    const names = fresh();
    await new ControlEventPublisher({ js: () => jetstream(nc), manager: () => jsm, names, key }).ensureStream();
    const down = await connect({ servers: NATS_URL });
    await down.close();
    let js: JetStreamClient = jetstream(down);
    const queued: string[] = [];
    const dropped: string[] = [];
    const p = new ControlEventPublisher({
      js: () => js, manager: () => jsm, names, key, maxPending: 2, retryMs: 50,
      hooks: { queued: (e) => queued.push(e.id), dropped: (e) => dropped.push(e.id) },
    });
    const events = [];
    for (const target of ['a', 'b', 'c']) events.push(await p.record({ type: 'identity.changed', actor: 'system', data: { action: 'update', target } }));
    expect(queued).toEqual(events.map((e) => e.id));
    expect(dropped).toEqual([events[0].id]);
    js = jetstream(nc);
    p.start();
    await expect.poll(async () => (await storedEvents(names)).map((e) => e.id), { timeout: 20_000, interval: 100 }).toEqual([events[1].id, events[2].id]);
    expect(p.close()).toBe(0);
  });
});
