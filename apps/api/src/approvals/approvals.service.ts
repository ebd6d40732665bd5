import { Injectable, Logger } from '@nestjs/common';
import { PrismaClient, type ApprovalModel as Approval } from '@portcullis/db';
import { approvalDecidedEventData, approvalDecisionOf } from '@portcullis/protocol';
import { ConflictError, ForbiddenError, NotFoundError } from '../common/errors.js';
import { isUuid } from '../common/ids.js';
import { ControlEventsService } from '../control-events/control-events.service.js';
import { NatsService } from '../nats/nats.service.js';
import { TokensService } from '../auth/tokens.service.js';
import { hasRole, type ApiPrincipal } from '../auth/principal.js';
import type { ApprovalView, ListApprovalsQuery } from './dto/approval.dto.js';

export function toApprovalView(a: Approval): ApprovalView {
  return {
    id: a.id,
    status: a.status as ApprovalView['status'],
    mode: a.mode,
    identity: a.identity,
    connection: a.connection,
    sessionId: a.sessionId,
    gateway: a.gateway,
    statement: a.statement,
    policy: a.policy,
    rule: a.rule,
    reason: a.reason,
    approverGroups: a.approverGroups,
    requestedAt: a.requestedAt.toISOString(),
    expiresAt: a.expiresAt.toISOString(),
    decidedBy: a.decidedBy,
    decidedAt: a.decidedAt?.toISOString() ?? null,
    comment: a.comment,
    consumedAt: a.consumedAt?.toISOString() ?? null,
    webhookStatus: a.webhookStatus,
    consequence: (a.consequence ?? null) as ApprovalView['consequence'],
  };
}

function expiredError(id: string, expiresAt: Date): ConflictError {
  return new ConflictError(`approval ${id} expired at ${expiresAt.toISOString()} before a decision`, 'approval_expired');
}

/** Everyone who may see every approval (others see only their own requests). */
function seesAll(p: ApiPrincipal): boolean {
  return hasRole(p, 'approver', 'auditor');
}

/**
 * Decisions on held statements. Postgres (table Approval, written by the approvals app) is the truth;
 * a decision is one conditional UPDATE (`status = 'pending' AND expiresAt > now()`), so of two concurrent
 * approvers exactly one wins and nothing is decided after it expired. The winner's decision is signed with
 * the api's key and published on NATS for the holding gateway, and audited.
 */
@Injectable()
export class ApprovalsService {
  private readonly logger = new Logger(ApprovalsService.name);

  constructor(
    private readonly prisma: PrismaClient,
    private readonly tokens: TokensService,
    private readonly nats: NatsService,
    private readonly events: ControlEventsService,
  ) {}

  async list(q: ListApprovalsQuery, p: ApiPrincipal): Promise<ApprovalView[]> {
    const rows = await this.prisma.approval.findMany({
      where: {
        ...(q.status ? { status: q.status } : {}),
        ...(q.connection ? { connection: q.connection } : {}),
        ...(seesAll(p) ? {} : { identity: p.subject }),
      },
      orderBy: { requestedAt: 'desc' },
      take: q.limit,
    });
    return rows.map(toApprovalView);
  }

  async get(id: string, p: ApiPrincipal): Promise<ApprovalView> {
    return toApprovalView(await this.loadVisible(id, p));
  }

  async decide(id: string, status: 'approved' | 'denied', comment: string | null, p: ApiPrincipal): Promise<ApprovalView> {
    if (!isUuid(id)) throw new NotFoundError(`approval ${id} does not exist`, 'approval_not_found');
    // Hot path (a session is waiting): one conditional UPDATE that also checks four-eyes and authority;
    // only when it changes nothing is the row read to say why.
    const isAdmin = hasRole(p, 'admin');
    const updated = await this.prisma.$queryRaw<Approval[]>`
      UPDATE "Approval" SET "status" = ${status}, "decidedBy" = ${p.subject}, "decidedAt" = now(), "comment" = ${comment}
      WHERE "id" = ${id}::uuid AND "status" = 'pending' AND "expiresAt" > now()
        AND "identity" <> ${p.subject}
        AND (${isAdmin} OR "approverGroups" && ${p.groups}::text[])
      RETURNING *`;
    const won = updated[0];
    if (!won) throw await this.whyNot(id, p);
    await this.publish(won);
    await this.audit(won, p.subject);
    this.logger.log(`approval ${id} ${status} by ${p.subject}`);
    return toApprovalView(won);
  }

  /** The error for a decision that changed nothing: unknown, already decided, four-eyes, not an approver, expired. */
  private async whyNot(id: string, p: ApiPrincipal): Promise<Error> {
    // An approval the caller may not see is one that does not exist, whatever its state (as GET says).
    const row = await this.loadVisible(id, p);
    if (row.status !== 'pending') return this.alreadyDecided(row);
    if (row.identity === p.subject) {
      return new ForbiddenError(`approval ${id} was requested by ${p.subject}: nobody decides their own request (four-eyes)`, 'four_eyes');
    }
    if (!hasRole(p, 'admin') && !p.groups.some((g) => row.approverGroups.includes(g))) {
      const groups = row.approverGroups.length ? `a member of [${row.approverGroups.join(', ')}]` : 'an admin (the policy names no approver groups)';
      return new ForbiddenError(`approval ${id} can only be decided by ${groups}`, 'not_an_approver');
    }
    if (row.expiresAt.getTime() <= Date.now()) {
      await this.expire(row);
      return expiredError(id, row.expiresAt);
    }
    // pending, allowed, not expired, yet not updated: another decision won in between
    return this.alreadyDecided(await this.load(id));
  }

  private async expire(row: Approval): Promise<void> {
    const rows = await this.prisma.$queryRaw<Approval[]>`
      UPDATE "Approval" SET "status" = 'expired', "decidedAt" = now(), "comment" = coalesce("comment", 'no decision before the approval timed out')
      WHERE "id" = ${row.id}::uuid AND "status" = 'pending' AND "expiresAt" <= now()
      RETURNING *`;
    if (rows[0]) {
      await this.publish(rows[0]);
      await this.audit(rows[0], 'system');
    }
  }

  private alreadyDecided(row: Approval): ConflictError {
    // still pending after an update that changed nothing: its time ran out meanwhile
    if (row.status === 'expired' || row.status === 'pending') return expiredError(row.id, row.expiresAt);
    const by = row.decidedBy ? ` by ${row.decidedBy}` : '';
    return new ConflictError(`approval ${row.id} is already ${row.status}${by}; a decision is final`, 'approval_already_decided');
  }

  /** The row, if the caller may see it: those who see all, its requester, its approver groups. Else not found. */
  private async loadVisible(id: string, p: ApiPrincipal): Promise<Approval> {
    const row = await this.load(id);
    if (!seesAll(p) && row.identity !== p.subject && !p.groups.some((g) => row.approverGroups.includes(g))) {
      throw new NotFoundError(`approval ${id} does not exist`, 'approval_not_found');
    }
    return row;
  }

  private async load(id: string): Promise<Approval> {
    const row = isUuid(id) ? await this.prisma.approval.findUnique({ where: { id } }) : null;
    if (!row) throw new NotFoundError(`approval ${id} does not exist`, 'approval_not_found');
    return row;
  }

  /** Signed decision to the holding gateway. The row is already final: a failed publish only means the gateway fails closed. */
  private async publish(row: Approval): Promise<void> {
    try {
      const jws = await this.tokens.signJws(approvalDecisionOf(row));
      this.nats.nc.publish(this.nats.names.approvalDecision(row.id), JSON.stringify({ jws }));
    } catch (err) {
      this.logger.error(`approval ${row.id}: decision not published: ${(err as Error).message}`);
    }
  }

  private async audit(row: Approval, actor: string): Promise<void> {
    await this.events.record({
      type: 'approval.decided',
      actor,
      data: { ...approvalDecidedEventData(row), statement: row.statement },
    });
  }
}
