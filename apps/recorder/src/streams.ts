import { AckPolicy, DeliverPolicy, type JetStreamManager, type ConsumerConfig } from '@nats-io/jetstream';
import { deadLetterStreamSettings, ensureStream, eventStreamSettings, type NatsNames } from '@portcullis/protocol';

const NANOS = 1_000_000_000;

/** The event stream and the dead-letter stream. */
export async function ensureStreams(jsm: JetStreamManager, names: NatsNames): Promise<void> {
  await ensureStream(jsm, eventStreamSettings(names));
  await ensureStream(jsm, deadLetterStreamSettings(names));
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
