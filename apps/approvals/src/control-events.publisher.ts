import { randomUUID } from 'node:crypto';
import { jetstream, jetstreamManager, type JetStreamClient } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { ensureStream, eventStreamSettings, signEvent, wireEventSchema, type NatsNames, type WireEvent } from '@portcullis/protocol';
import type { Logger } from 'pino';

const MAX_PENDING = 10_000;

/**
 * Publishes the approvals app's audit events (approval.decided for expiries and cancellations) on
 * `<p>.events.control`, signed with the event key; failed publishes are retried with the same id
 * (JetStream dedups by msgID).
 */
export class ControlEventsPublisher {
  private readonly js: JetStreamClient;
  private streamReady: Promise<void> | null = null;
  private readonly pending: WireEvent[] = [];
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly nc: NatsConnection,
    private readonly names: NatsNames,
    private readonly eventKey: Buffer,
    private readonly log: Logger,
  ) {
    this.js = jetstream(nc);
    this.timer = setInterval(() => void this.flush(), 2000);
    this.timer.unref();
  }

  async record(type: 'approval.decided', actor: string, data: Record<string, unknown>): Promise<void> {
    const event = signEvent(
      wireEventSchema.omit({ sig: true }).parse({
        id: randomUUID(), sessionId: null, seq: 0, time: new Date().toISOString(), type, identity: actor, connection: null, gateway: null, data,
      }),
      this.eventKey,
    );
    try {
      await this.publish(event);
    } catch (err) {
      this.log.warn({ err, eventId: event.id }, 'control event not published yet, will retry');
      if (this.pending.length >= MAX_PENDING) this.pending.shift();
      this.pending.push(event);
    }
  }

  close(): void {
    clearInterval(this.timer);
    if (this.pending.length) this.log.error({ pending: this.pending.length }, 'control events not published at shutdown');
  }

  private async flush(): Promise<void> {
    while (this.pending.length) {
      try {
        await this.publish(this.pending[0]);
        this.pending.shift();
      } catch {
        return;
      }
    }
  }

  private async publish(event: WireEvent): Promise<void> {
    await this.ensureStream();
    await this.js.publish(this.names.controlEvents, JSON.stringify(event), { msgID: event.id });
  }

  private ensureStream(): Promise<void> {
    this.streamReady ??= jetstreamManager(this.nc).then((jsm) => ensureStream(jsm, eventStreamSettings(this.names))).catch((err: unknown) => {
      this.streamReady = null;
      throw err;
    });
    return this.streamReady;
  }
}
