import { randomUUID } from 'node:crypto';
import type { NatsConnection } from '@nats-io/transport-node';
import { DiscardPolicy, jetstream, jetstreamManager, RetentionPolicy, StorageType, type JetStreamClient } from '@nats-io/jetstream';
import { natsNames, signEvent, type WireEvent } from '@portcullis/protocol';
import type { Logger } from '../logger.js';

export type SessionEventType = 'session.start' | 'query' | 'decision' | 'result' | 'approval.requested' | 'approval.decided' | 'session.end';

/** An event could not be persisted on JetStream. */
export class RecordingError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RecordingError';
  }
}

const TWO_MINUTES_NS = 120 * 1_000_000_000;

/** Ensures the event stream exists (idempotent; an existing stream's config is left as it is). */
export async function ensureEventStream(nc: NatsConnection, prefix: string): Promise<void> {
  const names = natsNames(prefix);
  const jsm = await jetstreamManager(nc);
  try {
    await jsm.streams.info(names.eventStream);
    return;
  } catch {
    // not found: create below
  }
  try {
    await jsm.streams.add({
      name: names.eventStream,
      subjects: [names.eventsAll],
      storage: StorageType.File,
      retention: RetentionPolicy.Limits,
      discard: DiscardPolicy.Old,
      duplicate_window: TWO_MINUTES_NS,
    });
  } catch (err) {
    // Another app may have created it meanwhile.
    await jsm.streams.info(names.eventStream).catch(() => {
      throw err;
    });
  }
}

/** Publishes signed session events on JetStream and waits for the ack (msgID = event id: JetStream dedups retries). */
export class EventPublisher {
  private readonly js: JetStreamClient;
  private readonly names;

  constructor(
    nc: NatsConnection,
    prefix: string,
    private readonly logger: Logger,
    private readonly timeoutMs = 5000,
  ) {
    this.js = jetstream(nc, { timeout: timeoutMs });
    this.names = natsNames(prefix);
  }

  async publish(event: WireEvent): Promise<void> {
    const subject = this.names.sessionEvents(event.sessionId ?? 'none');
    const body = JSON.stringify(event);
    let last: unknown;
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        await this.js.publish(subject, body, { msgID: event.id, timeout: this.timeoutMs });
        return;
      } catch (err) {
        last = err;
        const msg = (err as Error).message ?? '';
        // Limits refusals will not heal by retrying.
        if (/maximum|exceeded|limit/i.test(msg)) break;
      }
    }
    throw new RecordingError(`event ${event.type} not persisted: ${(last as Error)?.message ?? 'unknown error'}`, { cause: last });
  }
}

export interface SessionIdentity {
  sessionId: string;
  identity: string;
  connection: string;
  gateway: string;
}

/**
 * One session's event sequence: seq 1..n, signed with the event key. Events are published in
 * order on one NATS connection (JetStream stores them in that order); acks are awaited in the
 * background except where the caller awaits them (session.start).
 * `required`: a failed event makes `onFailure` fire once (the session is then ended).
 */
export class SessionRecorder {
  private seq = 0;
  private failed = false;
  private pending = new Set<Promise<void>>();

  constructor(
    private readonly publisher: EventPublisher | null,
    private readonly who: SessionIdentity,
    private readonly eventKey: Buffer,
    readonly mode: 'required' | 'best-effort',
    private readonly logger: Logger,
    private readonly onFailure: (err: Error) => void,
  ) {}

  /** Publishes an event; the returned promise resolves when it is persisted (or rejects). */
  record(type: SessionEventType, data: Record<string, unknown>): Promise<void> {
    const event = signEvent(
      {
        id: randomUUID(),
        sessionId: this.who.sessionId,
        seq: ++this.seq,
        time: new Date().toISOString(),
        type,
        identity: this.who.identity,
        connection: this.who.connection,
        gateway: this.who.gateway,
        data,
      },
      this.eventKey,
    );
    const p = this.publisher
      ? this.publisher.publish(event)
      : Promise.reject(new RecordingError('event stream unavailable (not connected to NATS)'));
    const tracked = p.then(
      () => undefined,
      (err: Error) => {
        if (this.mode === 'required') {
          if (!this.failed) {
            this.failed = true;
            this.onFailure(err);
          }
        } else {
          this.logger.warn({ err: err.message, type }, 'session event not recorded (best-effort)');
        }
        throw err;
      },
    );
    this.pending.add(tracked);
    void tracked.catch(() => undefined).finally(() => this.pending.delete(tracked));
    return tracked;
  }

  /** Fire and forget (failures go through onFailure/logs). */
  emit(type: SessionEventType, data: Record<string, unknown>): void {
    void this.record(type, data).catch(() => undefined);
  }

  /** Waits for every event published so far. */
  async flush(): Promise<void> {
    await Promise.allSettled([...this.pending]);
  }
}
