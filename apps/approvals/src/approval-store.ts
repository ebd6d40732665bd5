import { recordApprovalJob, type ApprovalModel as Approval, type PrismaClient } from '@portcullis/db';
import type { ApprovalJob } from '@portcullis/protocol';

export type FinalStatus = 'approved' | 'denied' | 'expired' | 'cancelled';

/**
 * Postgres is the source of truth for approvals: every state change here is a single conditional
 * statement (`WHERE status = 'pending'`), so concurrent writers (api approvers, expiry loops of several
 * approvals instances, gateway cancellations) never both win, and a redelivered queue job changes nothing.
 */
export class ApprovalStore {
  constructor(
    private readonly db: PrismaClient,
    /** only for isolation of side-by-side test stacks on one database: limit the expiry sweep to these connections */
    private readonly scopeConnectionPrefix: string | null = null,
  ) {}

  /** Inserts the job as a pending approval unless a row with its id exists (the api may have recorded it first). */
  persist(job: ApprovalJob, webhookStatus: string | null, initialStatus: 'pending' | 'cancelled' | 'expired' = 'pending', comment: string | null = null): Promise<{ inserted: boolean; row: Approval }> {
    return recordApprovalJob(this.db, job, { webhookStatus, status: initialStatus, comment });
  }

  async get(id: string): Promise<Approval | null> {
    return this.db.approval.findUnique({ where: { id } });
  }

  /** pending → status; null when it was not pending (already decided, or unknown). */
  async finish(id: string, status: FinalStatus, decidedBy: string | null, comment: string | null): Promise<Approval | null> {
    const rows = await this.db.$queryRaw<Approval[]>`
      UPDATE "Approval" SET "status" = ${status}, "decidedBy" = ${decidedBy}, "comment" = ${comment}, "decidedAt" = now()
      WHERE "id" = ${id}::uuid AND "status" = 'pending'
      RETURNING *`;
    return rows[0] ?? null;
  }

  /** Marks every pending approval past its expiresAt as expired; returns them. */
  async expireDue(limit = 500): Promise<Approval[]> {
    const like = this.scopeConnectionPrefix === null ? '%' : `${this.scopeConnectionPrefix.replace(/[\\%_]/g, '\\$&')}%`;
    return this.db.$queryRaw<Approval[]>`
      UPDATE "Approval" SET "status" = 'expired', "decidedAt" = now(), "comment" = coalesce("comment", 'no decision before the approval timed out')
      WHERE "id" IN (
        SELECT "id" FROM "Approval"
        WHERE "status" = 'pending' AND "expiresAt" <= now() AND "connection" LIKE ${like}
        ORDER BY "expiresAt" LIMIT ${limit}::int
        FOR UPDATE SKIP LOCKED)
      AND "status" = 'pending'
      RETURNING *`;
  }

  /**
   * Atomically consumes the oldest approved, unconsumed one-time approval of (identity, connection, fingerprint)
   * decided within `ttlSeconds`. Returns its id, or null.
   */
  async consumeOneTime(identity: string, connection: string, fingerprint: string, ttlSeconds: number): Promise<string | null> {
    const rows = await this.db.$queryRaw<{ id: string }[]>`
      UPDATE "Approval" SET "consumedAt" = now()
      WHERE "id" = (
        SELECT "id" FROM "Approval"
        WHERE "mode" = 'one-time' AND "status" = 'approved' AND "consumedAt" IS NULL
          AND "identity" = ${identity} AND "connection" = ${connection} AND "fingerprint" = ${fingerprint}
          AND "decidedAt" > now() - make_interval(secs => ${ttlSeconds}::double precision)
        ORDER BY "decidedAt" LIMIT 1
        FOR UPDATE SKIP LOCKED)
      AND "consumedAt" IS NULL
      RETURNING "id"`;
    return rows[0]?.id ?? null;
  }

  async setWebhookStatus(id: string, status: string): Promise<void> {
    await this.db.approval.update({ where: { id }, data: { webhookStatus: status.slice(0, 200) } });
  }

  /** The webhook of the approval's policy, from the policy document in Postgres (`approval.webhook.url`). */
  async policyWebhook(policy: string | null): Promise<string | null> {
    if (!policy) return null;
    const row = await this.db.policy.findUnique({ where: { name: policy }, select: { document: true } });
    const doc = row?.document as { approval?: { webhook?: { url?: unknown } } } | null | undefined;
    const url = doc?.approval?.webhook?.url;
    return typeof url === 'string' && url.length > 0 ? url : null;
  }
}
