import { Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import type { Subscription } from '@nats-io/transport-node';
import { PrismaClient, recordApprovalJob } from '@portcullis/db';
import { approvalRequestedSchema, approvalSubjects, deriveKey, verifyApprovalMessage } from '@portcullis/protocol';
import { ApiConfig } from '../config/env.js';
import { NatsService } from '../nats/nats.service.js';

/**
 * Records held statements as pending approvals straight from the gateway's signed `approval-requested`
 * message, so they are listed (and can be decided: the api signs and publishes decisions itself) within
 * a second of the hold even while the approvals app, the queue's worker, is down. The worker, when it
 * runs, finds the row and only adds what is its own (webhooks).
 */
@Injectable()
export class ApprovalIntakeService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(ApprovalIntakeService.name);
  /** gateways sign with the event key (they get it sealed in their snapshot) */
  private readonly gatewayKey: Buffer;
  private sub: Subscription | null = null;

  constructor(
    private readonly prisma: PrismaClient,
    private readonly nats: NatsService,
    private readonly config: ApiConfig,
  ) {
    this.gatewayKey = deriveKey(config.masterKey, 'event-signing');
  }

  onApplicationBootstrap(): void {
    // a queue group: with several api replicas, one of them records each hold
    this.sub = this.nats.nc.subscribe(approvalSubjects(this.config.env.NATS_PREFIX).requested, {
      queue: 'portcullis-api',
      callback: (err, msg) => {
        if (err) return;
        void this.record(msg.data).catch((e: unknown) => this.logger.error(`held statement not recorded: ${(e as Error).message}`));
      },
    });
  }

  onApplicationShutdown(): void {
    this.sub?.unsubscribe();
  }

  private async record(data: Uint8Array): Promise<void> {
    let raw: unknown = null;
    try {
      raw = JSON.parse(Buffer.from(data).toString('utf8'));
    } catch {
      // not JSON: refused below
    }
    const parsed = approvalRequestedSchema.safeParse(raw);
    if (!parsed.success || !verifyApprovalMessage(parsed.data, this.gatewayKey)) {
      this.logger.warn('ignored approval-requested message: bad schema or signature');
      return;
    }
    const { inserted, row } = await recordApprovalJob(this.prisma, parsed.data.job, { webhookStatus: null });
    if (inserted) this.logger.log(`approval ${row.id} requested by ${row.identity} on ${row.connection} (recorded from the gateway)`);
  }
}
