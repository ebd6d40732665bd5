/**
 * The streams and the config bucket, created by libs/protocol's ensureStream/ensureBucket on a real
 * NATS: every app gets the same configuration whichever starts first, and an existing one is kept.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jetstreamManager, type JetStreamManager, type StreamConfig } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import {
  CONFIG_BUCKET_SETTINGS, deadLetterStreamSettings, ensureBucket, ensureStream, eventStreamSettings, natsNames,
  type NatsNames, type StreamSettings,
} from '@portcullis/protocol';
import { ensureEventStream } from '../apps/gateway/src/events/event-publisher.js';
import { ensureStreams } from '../apps/recorder/src/streams.js';

const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
let nc: NatsConnection;
let jsm: JetStreamManager;
const created: string[] = [];

function fresh(prefix = `strm${randomBytes(5).toString('hex')}`): NatsNames {
  const names = natsNames(prefix);
  created.push(names.eventStream, names.deadLetterStream, `KV_${names.configBucket}`);
  return names;
}

function pick(c: StreamConfig, s: StreamSettings): Partial<StreamConfig> {
  return Object.fromEntries(Object.keys(s).map((k) => [k, c[k as keyof StreamConfig]]));
}

beforeAll(async () => {
  nc = await connect({ servers: NATS_URL });
  jsm = await jetstreamManager(nc);
});

afterAll(async () => {
  for (const s of created) await jsm.streams.delete(s).catch(() => undefined);
  await nc?.close();
});

describe('ensureStream', () => {
  it.each([
    { name: 'event stream', settings: eventStreamSettings },
    { name: 'dead-letter stream', settings: deadLetterStreamSettings },
  ])('$name: created with the settings; ten racing callers all succeed', async ({ settings }) => {
    const s = settings(fresh());
    await Promise.all(Array.from({ length: 10 }, () => ensureStream(jsm, s)));
    expect(pick((await jsm.streams.info(s.name)).config, s)).toEqual(s);
  });

  it('leaves an existing stream as it is (an operator may have tuned it)', async () => {
    const s = eventStreamSettings(fresh());
    await ensureStream(jsm, { ...s, duplicate_window: 30 * 1e9 });
    await ensureStream(jsm, s);
    expect((await jsm.streams.info(s.name)).config.duplicate_window).toBe(30 * 1e9);
  });

  it('the gateway and the recorder create the same event stream as the lib says', async () => {
    const gwPrefix = `strm${randomBytes(5).toString('hex')}`;
    const [gw, rec] = [fresh(gwPrefix), fresh()];
    await ensureEventStream(nc, gwPrefix);
    await ensureStreams(jsm, rec);
    expect(pick((await jsm.streams.info(gw.eventStream)).config, eventStreamSettings(gw))).toEqual(eventStreamSettings(gw));
    expect(pick((await jsm.streams.info(rec.eventStream)).config, eventStreamSettings(rec))).toEqual(eventStreamSettings(rec));
    expect(pick((await jsm.streams.info(rec.deadLetterStream)).config, deadLetterStreamSettings(rec))).toEqual(deadLetterStreamSettings(rec));
  });
});

describe('ensureBucket', () => {
  it('creates the config bucket with the one history; a second app opens the same bucket', async () => {
    const { configBucket } = fresh();
    const other = await connect({ servers: NATS_URL });
    try {
      const [a, b] = await Promise.all([ensureBucket(new Kvm(nc), configBucket), ensureBucket(new Kvm(other), configBucket)]);
      expect((await a.status()).history).toBe(CONFIG_BUCKET_SETTINGS.history);
      await a.put('pool.default', 'v1');
      expect(new TextDecoder().decode((await b.get('pool.default'))!.value)).toBe('v1');
    } finally {
      await other.close();
    }
  });

  it('keeps an existing bucket', async () => {
    const { configBucket } = fresh();
    await new Kvm(nc).create(configBucket, { history: 1 });
    const kv = await ensureBucket(new Kvm(nc), configBucket);
    expect((await kv.status()).history).toBe(1);
  });
});
