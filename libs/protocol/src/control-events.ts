/**
 * The control-plane event publisher the api and the approvals app share: signs each event with the
 * event key, publishes it on `<p>.events.control` (creating the event stream first when it is
 * missing) and keeps what could not be published in a bounded in-memory queue, retried with the same
 * message id so JetStream drops a duplicate.
 *
 * Like streams.ts it takes the app's JetStream handles by the few methods it calls: the rule lives
 * here, the sockets stay in the apps.
 */
import { randomUUID } from 'node:crypto';
import { signEvent, wireEventSchema, type EventType, type WireEvent } from './events.js';
import { ensureStream, eventStreamSettings, type StreamAdmin } from './streams.js';
import type { NatsNames } from './subjects.js';

export interface ControlEventInput {
  type: EventType;
  /** subject of whoever made the change (`bootstrap` for the bootstrap token, `system` for an app itself) */
  actor: string;
  data: Record<string, unknown>;
}

/** What the publisher calls on a JetStream client (`jetstream(nc)` has it). */
export interface EventPublishClient {
  publish(subject: string, payload: string, opts: { msgID: string }): Promise<unknown>;
}

/** What an app learns about its events (logs, metrics). */
export interface ControlEventHooks {
  published?(event: WireEvent): void;
  /** the publish failed: the event waits in the retry queue */
  queued?(event: WireEvent, err: Error): void;
  /** the retry queue was full: its oldest event is dropped for a new one */
  dropped?(event: WireEvent): void;
}

export interface ControlEventPublisherOptions {
  /** the JetStream client, asked for at each publish (an app may not be connected yet) */
  js(): EventPublishClient;
  /** the JetStream manager that creates the event stream when it is missing */
  manager(): StreamAdmin | Promise<StreamAdmin>;
  names: NatsNames;
  /** deriveKey(master key, 'event-signing') */
  key: Buffer;
  hooks?: ControlEventHooks;
  /** events kept for retry at most (then the oldest is dropped) */
  maxPending?: number;
  retryMs?: number;
}

export const CONTROL_EVENT_MAX_PENDING = 10_000;
export const CONTROL_EVENT_RETRY_MS = 2_000;

export class ControlEventPublisher {
  private streamReady: Promise<void> | null = null;
  private readonly pending: WireEvent[] = [];
  private timer: ReturnType<typeof setInterval> | null = null;

  constructor(private readonly opts: ControlEventPublisherOptions) {}

  /** Starts retrying queued events (every `retryMs`; the timer does not keep the process alive). */
  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.flush(), this.opts.retryMs ?? CONTROL_EVENT_RETRY_MS);
    this.timer.unref();
  }

  /** Stops retrying; returns how many events were never published. */
  close(): number {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    return this.pending.length;
  }

  /** Ensures the event stream exists (once; again after a failure). */
  ensureStream(): Promise<void> {
    this.streamReady ??= Promise.resolve()
      .then(() => this.opts.manager())
      .then((jsm) => ensureStream(jsm, eventStreamSettings(this.opts.names)))
      .catch((err: unknown) => {
        this.streamReady = null;
        throw err;
      });
    return this.streamReady;
  }

  /** Signs and publishes one control-plane event. Never throws for NATS: a failed publish is queued and retried. */
  async record(input: ControlEventInput): Promise<WireEvent> {
    const event = signEvent(
      wireEventSchema.omit({ sig: true }).parse({
        id: randomUUID(),
        sessionId: null,
        seq: 0,
        time: new Date().toISOString(),
        type: input.type,
        identity: input.actor,
        connection: null,
        gateway: null,
        data: input.data,
      }),
      this.opts.key,
    );
    try {
      await this.publish(event);
    } catch (err) {
      this.opts.hooks?.queued?.(event, err as Error);
      this.enqueue(event);
    }
    return event;
  }

  private async publish(event: WireEvent): Promise<void> {
    await this.ensureStream();
    await this.opts.js().publish(this.opts.names.controlEvents, JSON.stringify(event), { msgID: event.id });
    this.opts.hooks?.published?.(event);
  }

  private enqueue(event: WireEvent): void {
    if (this.pending.length >= (this.opts.maxPending ?? CONTROL_EVENT_MAX_PENDING)) {
      const dropped = this.pending.shift();
      if (dropped) this.opts.hooks?.dropped?.(dropped);
    }
    this.pending.push(event);
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
}
