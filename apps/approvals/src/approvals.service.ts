import type { ApprovalModel as Approval } from '@portcullis/db';
import type { NatsConnection, Msg } from '@nats-io/transport-node';
import {
  approvalCancelSchema, approvalConsumeRequestSchema, approvalDecidedEventData, approvalDecisionOf, approvalJobSchema, verifyApprovalMessage,
  type ApprovalJob, type ControlEventPublisher, type NatsNames,
} from '@portcullis/protocol';
import type { Logger } from 'pino';
import type { ApprovalStore, FinalStatus } from './approval-store.js';
import type { DecisionSigner } from './decision-signer.js';
import type { ApprovalsMetrics } from './metrics.js';
import { sendWebhook, type WebhookOptions } from './webhook.sender.js';

export interface ApprovalsServiceDeps {
  store: ApprovalStore;
  signer: DecisionSigner;
  nc: NatsConnection;
  names: NatsNames;
  events: ControlEventPublisher;
  metrics: ApprovalsMetrics;
  log: Logger;
  /** HMAC key gateways sign cancel/consume messages with (the event key) */
  gatewayKey: Buffer;
  webhook: WebhookOptions;
  oneTimeTtlSeconds: number;
}

const CANCEL_STATUS = {
  'client-disconnected': ['cancelled', 'client disconnected while the statement was held'],
  'gateway-shutdown': ['cancelled', 'gateway shut down while the statement was held'],
  'enqueue-failed': ['cancelled', 'the gateway could not queue the approval'],
  'gateway-timeout': ['expired', 'no decision before the approval timed out'],
} as const satisfies Record<string, [FinalStatus, string]>;

/** The approvals workflow: queue jobs in, Postgres rows as the truth, signed decisions out. */
export class ApprovalsService {
  constructor(private readonly d: ApprovalsServiceDeps) {}

  /** BullMQ processor. Idempotent: a redelivered job finds its row and changes nothing. */
  async processJob(data: unknown): Promise<{ approvalId: string; inserted: boolean }> {
    const parsed = approvalJobSchema.safeParse(data);
    if (!parsed.success) {
      this.d.metrics.jobs.inc({ outcome: 'invalid' });
      this.d.log.warn({ issues: parsed.error.issues }, 'invalid approval job dropped');
      return { approvalId: '', inserted: false };
    }
    const job = parsed.data;
    const webhookUrl = (await this.d.store.policyWebhook(job.policy)) ?? job.webhook?.url ?? null;
    const { inserted, row } = await this.d.store.persist(job, webhookUrl ? 'pending' : 'none');
    this.d.metrics.jobs.inc({ outcome: inserted ? 'persisted' : 'duplicate' });
    if (inserted) {
      this.d.metrics.persistSeconds.observe(Math.max(0, Date.now() - new Date(job.requestedAt).getTime()) / 1000);
      this.d.log.info({ approvalId: row.id, identity: row.identity, connection: row.connection, rule: row.rule, mode: row.mode }, 'approval requested');
    } else if (row.status !== 'pending') {
      // A gateway re-enqueued (e.g. after a Redis restart) an approval that was decided meanwhile: it may have
      // missed the decision, so say it again.
      await this.publishDecision(row);
    }
    if (webhookUrl && row.status === 'pending' && (row.webhookStatus === 'pending' || row.webhookStatus === null)) {
      await this.deliverWebhook(webhookUrl, row);
    }
    return { approvalId: row.id, inserted };
  }

  private async deliverWebhook(url: string, row: Approval): Promise<void> {
    const outcome = await sendWebhook(url, row, this.d.webhook, this.d.log);
    this.d.metrics.webhooks.inc({ outcome: outcome.ok ? 'delivered' : 'failed' });
    const status = outcome.ok ? `delivered (${outcome.status}, attempt ${outcome.attempts})` : `failed: ${outcome.error} after ${outcome.attempts} attempts`;
    await this.d.store.setWebhookStatus(row.id, status);
    if (!outcome.ok) this.d.log.error({ approvalId: row.id, url, error: outcome.error }, 'approval webhook gave up');
  }

  /** Gateway says the held session is gone (or it stopped waiting). */
  async handleCancel(msg: Msg): Promise<void> {
    const body = this.parseSigned(msg, approvalCancelSchema, 'cancel');
    if (!body) return;
    const [status, comment] = CANCEL_STATUS[body.reason];
    const row = await this.finishFromGateway(body.job, status, comment);
    if (row) this.d.log.info({ approvalId: row.id, status, reason: body.reason }, 'approval closed by gateway');
  }

  /** Records `status` for a job that may never have reached the queue; publishes when the row changed. */
  private async finishFromGateway(job: ApprovalJob, status: FinalStatus, comment: string): Promise<Approval | null> {
    const created = await this.d.store.persist(job, 'none', status === 'expired' ? 'expired' : 'cancelled', comment);
    const row = created.inserted ? created.row : await this.d.store.finish(job.approvalId, status, null, comment);
    if (!row) return null;
    await this.announce(row, `gateway:${job.gateway}`);
    return row;
  }

  /** One-time approvals: atomically consume a matching approved approval and answer with a signed result. */
  async handleConsume(msg: Msg): Promise<void> {
    const body = this.parseSigned(msg, approvalConsumeRequestSchema, 'consume');
    if (!body || !msg.reply) return;
    const approvalId = await this.d.store.consumeOneTime(body.identity, body.connection, body.fingerprint, this.d.oneTimeTtlSeconds);
    this.d.metrics.consumed.inc({ result: approvalId ? 'consumed' : 'none' });
    if (approvalId) this.d.log.info({ approvalId, identity: body.identity, connection: body.connection }, 'one-time approval consumed');
    const jws = await this.d.signer.sign({ typ: 'approval-consumed', nonce: body.nonce, approvalId });
    msg.respond(JSON.stringify({ jws }));
  }

  /** One sweep of the expiry loop: pending approvals past expiresAt become expired (Postgres clock, not Redis timers). */
  async expireDue(): Promise<number> {
    const rows = await this.d.store.expireDue();
    for (const row of rows) {
      this.d.log.info({ approvalId: row.id }, 'approval expired');
      await this.announce(row, 'system:approvals');
    }
    return rows.length;
  }

  private async announce(row: Approval, actor: string): Promise<void> {
    this.d.metrics.transitions.inc({ status: row.status });
    await this.publishDecision(row);
    await this.d.events.record({ type: 'approval.decided', actor, data: approvalDecidedEventData(row) });
  }

  async publishDecision(row: Approval): Promise<void> {
    if (row.status === 'pending') return;
    try {
      const jws = await this.d.signer.sign(approvalDecisionOf(row));
      this.d.nc.publish(this.d.names.approvalDecision(row.id), JSON.stringify({ jws }));
    } catch (err) {
      // The row is the truth; a gateway that misses this fails closed at its own timeout.
      this.d.log.error({ err, approvalId: row.id }, 'could not publish approval decision');
    }
  }

  private parseSigned<T extends { sig?: string }>(msg: Msg, schema: { safeParse(v: unknown): { success: true; data: T } | { success: false } }, what: string): T | null {
    let raw: unknown;
    try {
      raw = msg.json();
    } catch {
      raw = null;
    }
    const r = schema.safeParse(raw);
    if (!r.success || !verifyApprovalMessage(r.data, this.d.gatewayKey)) {
      this.d.metrics.rejected.inc({ subject: what });
      this.d.log.warn({ subject: msg.subject }, `ignored ${what} message: bad schema or signature`);
      return null;
    }
    return r.data;
  }
}
