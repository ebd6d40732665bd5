import { AckPolicy, DeliverPolicy, StorageType, type JetStreamManager, type ConsumerConfig } from '@nats-io/jetstream';
import type { NatsNames } from '@portcullis/protocol';

const NANOS = 1_000_000_000;
const DUPLICATE_WINDOW_NS = 120 * NANOS;

async function ensureStream(jsm: JetStreamManager, name: string, subjects: string[], duplicateWindowNs?: number): Promise<void> {
  try {
    await jsm.streams.info(name);
    return;
  } catch {
    // missing: create it below
  }
  try {
    await jsm.streams.add({ name, subjects, storage: StorageType.File, ...(duplicateWindowNs ? { duplicate_window: duplicateWindowNs } : {}) });
  } catch (err) {
    // Another app (gateway, api, a second recorder) may have created it in between.
    await jsm.streams.info(name).catch(() => {
      throw err;
    });
  }
}

/** The event stream (same config as the gateway and the api create) and the dead-letter stream. */
export async function ensureStreams(jsm: JetStreamManager, names: NatsNames): Promise<void> {
  await ensureStream(jsm, names.eventStream, [names.eventsAll], DUPLICATE_WINDOW_NS);
  await ensureStream(jsm, names.deadLetterStream, [names.deadLetter], DUPLICATE_WINDOW_NS);
}

export interface ConsumerOptions {
  durable: string;
  ackWaitSeconds: number;
  maxAckPending: number;
}

/** Durable pull consumer with explicit acks; recorders with the same durable name share its work. */
export async function ensureConsumer(jsm: JetStreamManager, stream: string, filter: string, opts: ConsumerOptions): Promise<void> {
  const config: Partial<ConsumerConfig> = {
    durable_name: opts.durable,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    filter_subject: filter,
    ack_wait: opts.ackWaitSeconds * NANOS,
    max_ack_pending: opts.maxAckPending,
    max_deliver: -1,
  };
  try {
    const info = await jsm.consumers.info(stream, opts.durable);
    if (info.config.ack_wait !== config.ack_wait || info.config.max_ack_pending !== config.max_ack_pending) {
      await jsm.consumers.update(stream, opts.durable, { ack_wait: config.ack_wait, max_ack_pending: config.max_ack_pending });
    }
    return;
  } catch {
    // missing: create it below
  }
  try {
    await jsm.consumers.add(stream, config);
  } catch (err) {
    await jsm.consumers.info(stream, opts.durable).catch(() => {
      throw err;
    });
  }
}
