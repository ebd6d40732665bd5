import { Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { ControlEventPublisher, deriveKey, type EventType, type WireEvent } from '@portcullis/protocol';
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

/**
 * Publishes signed control-plane audit events on JetStream (`<p>.events.control`); the recorder persists them.
 * A publish that fails (NATS down) is kept in memory and retried with the same id, so JetStream dedups it
 * (libs/protocol's ControlEventPublisher, which the approvals app publishes with too).
 */
@Injectable()
export class ControlEventsService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(ControlEventsService.name);
  private readonly publisher: ControlEventPublisher;

  constructor(config: ApiConfig, nats: NatsService, metrics: MetricsService) {
    this.publisher = new ControlEventPublisher({
      js: () => nats.js,
      manager: () => nats.manager,
      names: nats.names,
      key: deriveKey(config.masterKey, 'event-signing'),
      hooks: {
        published: (event) => metrics.controlEvents.inc({ type: event.type, result: 'published' }),
        queued: (event, err) => this.logger.warn(`control event ${event.id} (${event.type}) not published yet, will retry: ${err.message}`),
        dropped: (event) => {
          metrics.controlEvents.inc({ type: event.type, result: 'dropped' });
          this.logger.error(`control event ${event.id} dropped: retry queue full`);
        },
      },
    });
  }

  async onApplicationBootstrap(): Promise<void> {
    await this.ensureStream();
    this.publisher.start();
  }

  onApplicationShutdown(): void {
    const pending = this.publisher.close();
    if (pending) this.logger.error(`${pending} control events not published at shutdown`);
  }

  /** Ensures the event stream exists (idempotent; whoever publishes first creates it). */
  ensureStream(): Promise<void> {
    return this.publisher.ensureStream();
  }

  /** Records one control-plane change. Never throws: a failed publish is queued and retried. */
  async record(input: ControlEventInput): Promise<WireEvent> {
    return this.publisher.record({ type: input.type, actor: input.actor, data: stripSecrets(input.data) as Record<string, unknown> });
  }
}
