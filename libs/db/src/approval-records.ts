import type { ApprovalJob } from '@portcullis/protocol';
import type { PrismaClient } from './generated/prisma/client.js';
import type { ApprovalModel as Approval } from './generated/prisma/models.js';

/**
 * Records a held statement (an approval job) as an Approval row unless a row with its id exists. Both
 * writers use this: the approvals app (from the queue) and the api (from the gateway's signed
 * `approval-requested` message, so approvers see a held statement at once even while the approvals
 * app is down). Whoever comes second changes nothing.
 */
export async function recordApprovalJob(
  db: PrismaClient,
  job: ApprovalJob,
  o: { webhookStatus: string | null; status?: 'pending' | 'cancelled' | 'expired'; comment?: string | null } = { webhookStatus: null },
): Promise<{ inserted: boolean; row: Approval }> {
  const status = o.status ?? 'pending';
  const requestedAt = new Date(job.requestedAt);
  const { count } = await db.approval.createMany({
    skipDuplicates: true,
    data: [{
      id: job.approvalId,
      sessionId: job.sessionId,
      identity: job.identity,
      connection: job.connection,
      gateway: job.gateway,
      statement: job.statement,
      fingerprint: job.fingerprint,
      policy: job.policy,
      rule: job.rule,
      reason: job.reason,
      approverGroups: job.approverGroups,
      status,
      mode: job.mode,
      requestedAt,
      expiresAt: new Date(requestedAt.getTime() + job.timeoutSeconds * 1000),
      webhookStatus: o.webhookStatus,
      ...(job.consequence ? { consequence: job.consequence } : {}),
      ...(status === 'pending' ? {} : { decidedAt: new Date(), comment: o.comment ?? null }),
    }],
  });
  const row = await db.approval.findUniqueOrThrow({ where: { id: job.approvalId } });
  return { inserted: count === 1, row };
}
