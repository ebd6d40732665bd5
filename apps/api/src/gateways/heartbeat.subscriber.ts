import { Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import type { Subscription } from '@nats-io/transport-node';
import { heartbeatSchema } from '@portcullis/protocol';
import { NatsService } from '../nats/nats.service.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { GatewaysService } from './gateways.service.js';

/** Listens to `<p>.gateway.heartbeat.>` and keeps the Gateway table current. Bad messages are logged and dropped. */
@Injectable()
export class HeartbeatSubscriber implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(HeartbeatSubscriber.name);
  private sub: Subscription | null = null;
  private readonly seen = new Set<string>();

  constructor(
    private readonly nats: NatsService,
    private readonly gateways: GatewaysService,
    private readonly metrics: MetricsService,
  ) {}

  onApplicationBootstrap(): void {
    const prefix = this.nats.names.heartbeatAll.slice(0, -1); // `<p>.gateway.heartbeat.`
    this.sub = this.nats.nc.subscribe(this.nats.names.heartbeatAll, {
      callback: (err, msg) => {
        if (err) {
          this.logger.warn(`heartbeat subscription error: ${err.message}`);
          return;
        }
        void this.handle(msg.subject, msg.data, prefix);
      },
    });
  }

  async onApplicationShutdown(): Promise<void> {
    this.sub?.unsubscribe();
    this.sub = null;
  }

  private async handle(subject: string, data: Uint8Array, prefix: string): Promise<void> {
    try {
      const parsed = heartbeatSchema.safeParse(JSON.parse(new TextDecoder().decode(data)));
      if (!parsed.success) {
        this.logger.warn(`dropped malformed heartbeat on ${subject}`);
        return;
      }
      const hb = parsed.data;
      // The subject names pool and id; a body that disagrees is not trusted.
      if (subject !== `${prefix}${hb.pool}.${hb.id}`) {
        this.logger.warn(`dropped heartbeat on ${subject}: body names pool ${hb.pool}, gateway ${hb.id}`);
        return;
      }
      await this.gateways.recordHeartbeat(hb);
      if (!this.seen.has(hb.id)) {
        this.seen.add(hb.id);
        this.metrics.gatewaysLive.set(this.seen.size);
      }
    } catch (err) {
      this.logger.warn(`heartbeat on ${subject} not recorded: ${(err as Error).message}`);
    }
  }
}
