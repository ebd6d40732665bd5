import { randomUUID } from 'node:crypto';
import { Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { deriveKey, ensureStream, eventStreamSettings, signEvent, wireEventSchema, type EventType, type WireEvent } from '@portcullis/protocol';
import { ApiConfig } from '../config/env.js';
import { NatsService } from '../nats/nats.service.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { stripSecrets } from './redact.js';

export interface ControlEventInput {
  type: EventType;
  /** subject of whoever made the change (`bootstrap` for the bootstrap token, `system` for the api itself) */
  actor: string;
  data: { action: string; target: string; before?: unknown; after?: unknown; [k: string]: unknown };
}

const MAX_PENDING = 10_000;
const RETRY_MS = 2_000;

/**
 * Publishes signed control-plane audit events on JetStream (`<p>.events.control`); the recorder persists them.
 * A publish that fails (NATS down) is kept in memory and retried with the same id, so JetStream dedups it.
 */
@Injectable()
export class ControlEventsService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(ControlEventsService.name);
  private readonly key: Buffer;
  private streamReady: Promise<void> | null = null;
  private readonly pending: WireEvent[] = [];
  private retryTimer: NodeJS.Timeout | null = null;

  constructor(
    config: ApiConfig,
    private readonly nats: NatsService,
    private readonly metrics: MetricsService,
  ) {
    this.key = deriveKey(config.masterKey, 'event-signing');
  }

  async onApplicationBootstrap(): Promise<void> {
    await this.ensureStream();
    this.retryTimer = setInterval(() => void this.flushPending(), RETRY_MS);
    this.retryTimer.unref();
  }

  onApplicationShutdown(): void {
    if (this.retryTimer) clearInterval(this.retryTimer);
    if (this.pending.length) this.logger.error(`${this.pending.length} control events not published at shutdown`);
  }

  /** Ensures the event stream exists (idempotent; whoever publishes first creates it). */
  ensureStream(): Promise<void> {
    this.streamReady ??= ensureStream(this.nats.manager, eventStreamSettings(this.nats.names)).catch((err: unknown) => {
      this.streamReady = null;
      throw err;
    });
    return this.streamReady;
  }

  /** Records one control-plane change. Never throws: a failed publish is queued and retried. */
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
        data: stripSecrets(input.data) as Record<string, unknown>,
      }),
      this.key,
    );
    try {
      await this.publish(event);
    } catch (err) {
      this.logger.warn(`control event ${event.id} (${event.type}) not published yet, will retry: ${(err as Error).message}`);
      this.enqueue(event);
    }
    return event;
  }

  private async publish(event: WireEvent): Promise<void> {
    await this.ensureStream();
    await this.nats.js.publish(this.nats.names.controlEvents, JSON.stringify(event), { msgID: event.id });
    this.metrics.controlEvents.inc({ type: event.type, result: 'published' });
  }

  private enqueue(event: WireEvent): void {
    if (this.pending.length >= MAX_PENDING) {
      const dropped = this.pending.shift();
      this.metrics.controlEvents.inc({ type: dropped?.type ?? 'unknown', result: 'dropped' });
      this.logger.error(`control event ${dropped?.id} dropped: retry queue full`);
    }
    this.pending.push(event);
  }

  private async flushPending(): Promise<void> {
    while (this.pending.length) {
      const event = this.pending[0];
      try {
        await this.publish(event);
        this.pending.shift();
      } catch {
        return;
      }
    }
  }
}
