import { Injectable } from '@nestjs/common';
import { PrismaClient, Prisma, type AccessRequestModel as AccessRequest } from '@portcullis/db';
import { BadRequestError, ConflictError, ForbiddenError, NotFoundError } from '../common/errors.js';
import { isUuid } from '../common/ids.js';
import { ControlEventsService } from '../control-events/control-events.service.js';
import { ConfigPublisherService } from '../config-publisher/config-publisher.service.js';
import { hasRole, type ApiPrincipal } from '../auth/principal.js';
import type { AccessRequestView, CreateAccessRequest, ListAccessRequestsQuery } from './dto/access-request.dto.js';

/** A request nobody decided within this long can no longer be granted. */
export const PENDING_TTL_MS = 24 * 3600 * 1000;

function effectiveStatus(r: AccessRequest, now = Date.now()): AccessRequestView['status'] {
  if (r.status === 'approved' && r.grantedUntil && r.grantedUntil.getTime() <= now) return 'expired';
  if (r.status === 'pending' && r.createdAt.getTime() + PENDING_TTL_MS <= now) return 'expired';
  return r.status as AccessRequestView['status'];
}

export function toAccessRequestView(r: AccessRequest): AccessRequestView {
  const status = effectiveStatus(r);
  return {
    id: r.id,
    identity: r.identity,
    connection: r.connection,
    reason: r.reason,
    durationSeconds: r.durationSeconds,
    status,
    active: status === 'approved',
    decidedBy: r.decidedBy,
    decidedAt: r.decidedAt?.toISOString() ?? null,
    comment: r.comment,
    grantedUntil: r.grantedUntil?.toISOString() ?? null,
    revokedBy: r.revokedBy,
    revokedAt: r.revokedAt?.toISOString() ?? null,
    revokeReason: r.revokeReason,
    createdAt: r.createdAt.toISOString(),
  };
}

/**
 * Time-boxed access: an identity asks for a connection its groups do not allow, for a while and a reason;
 * an approver (never the requester) grants it, and the credentials route honours an approved request until
 * grantedUntil (= decision time + durationSeconds), unless an approver revokes it earlier. Every step is
 * an audit event.
 */
@Injectable()
export class AccessRequestsService {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly events: ControlEventsService,
    private readonly publisher: ConfigPublisherService,
  ) {}

  async create(body: CreateAccessRequest, p: ApiPrincipal): Promise<AccessRequestView> {
    if (!p.identityId) throw new BadRequestError('the bootstrap token is no identity: sign in as a person or agent to request access', 'no_identity');
    const connection = await this.prisma.connection.findUnique({ where: { name: body.connection }, select: { name: true } });
    if (!connection) throw new NotFoundError(`connection "${body.connection}" does not exist`, 'connection_not_found');
    const row = await this.prisma.accessRequest.create({
      data: { identity: p.subject, connection: connection.name, reason: body.reason, durationSeconds: body.durationSeconds },
    });
    await this.events.record({
      type: 'access-request.changed',
      actor: p.subject,
      data: { action: 'request', target: row.id, after: { connection: row.connection, durationSeconds: row.durationSeconds, reason: row.reason } },
    });
    return toAccessRequestView(row);
  }

  async list(q: ListAccessRequestsQuery, p: ApiPrincipal): Promise<AccessRequestView[]> {
    const now = new Date();
    const pendingCutoff = new Date(now.getTime() - PENDING_TTL_MS);
    // status filters follow the effective status (a finished grant lists as expired)
    const byStatus: Record<AccessRequestView['status'], Prisma.AccessRequestWhereInput> = {
      pending: { status: 'pending', createdAt: { gt: pendingCutoff } },
      approved: { status: 'approved', grantedUntil: { gt: now } },
      denied: { status: 'denied' },
      revoked: { status: 'revoked' },
      expired: { OR: [{ status: 'expired' }, { status: 'approved', grantedUntil: { lte: now } }, { status: 'pending', createdAt: { lte: pendingCutoff } }] },
    };
    const rows = await this.prisma.accessRequest.findMany({
      where: {
        AND: [
          q.status ? byStatus[q.status] : {},
          q.connection ? { connection: q.connection } : {},
          hasRole(p, 'approver', 'auditor') ? {} : { identity: p.subject },
        ],
      },
      orderBy: { createdAt: 'desc' },
      take: q.limit,
    });
    return rows.map(toAccessRequestView);
  }

  async get(id: string, p: ApiPrincipal): Promise<AccessRequestView> {
    return toAccessRequestView(await this.loadVisible(id, p));
  }

  async decide(id: string, status: 'approved' | 'denied', comment: string | null, p: ApiPrincipal): Promise<AccessRequestView> {
    // a request the caller may not see answers 404 as GET does, whatever its state (no 409 naming its decider)
    const row = await this.loadVisible(id, p);
    const current = effectiveStatus(row);
    if (current !== 'pending') {
      const by = row.decidedBy ? ` by ${row.decidedBy}` : '';
      throw new ConflictError(
        current === 'expired' && row.status === 'pending'
          ? `access request ${id} expired: nobody decided it within 24 hours`
          : `access request ${id} is already ${current}${by}; a decision is final`,
        current === 'expired' ? 'access_request_expired' : 'access_request_already_decided',
      );
    }
    if (row.identity === p.subject) {
      throw new ForbiddenError(`access request ${id} was made by ${p.subject}: nobody decides their own request (four-eyes)`, 'four_eyes');
    }
    if (!(await this.mayDecide(row, p))) {
      throw new ForbiddenError(`access request ${id} can only be decided by an admin or a member of the approver groups of connection "${row.connection}"'s policy`, 'not_an_approver');
    }
    const pendingCutoff = new Date(Date.now() - PENDING_TTL_MS);
    const decidedAt = new Date();
    const grantedUntil = status === 'approved' ? new Date(decidedAt.getTime() + row.durationSeconds * 1000) : null;
    const { count } = await this.prisma.accessRequest.updateMany({
      where: { id, status: 'pending', createdAt: { gt: pendingCutoff } },
      data: { status, decidedBy: p.subject, decidedAt, comment, grantedUntil },
    });
    const after = await this.load(id);
    if (count !== 1) {
      throw new ConflictError(`access request ${id} is already ${effectiveStatus(after)}${after.decidedBy ? ` by ${after.decidedBy}` : ''}; a decision is final`, 'access_request_already_decided');
    }
    await this.events.record({
      type: 'access-request.changed',
      actor: p.subject,
      data: { action: status === 'approved' ? 'approve' : 'deny', target: id, after: { identity: after.identity, connection: after.connection, status, grantedUntil: grantedUntil?.toISOString() ?? null, comment } },
    });
    return toAccessRequestView(after);
  }

  /**
   * Ends an approved, still running grant now (who may: as for approve). The request becomes `revoked`;
   * the config snapshot lists it until its grant would have ended (`revokedGrants`), so gateways refuse
   * the credentials minted under it (claim `grant`) — SSH certificates and kubeconfig tokens included —
   * and end the sessions resting on it at once, as at the grant's natural end. No new credential is
   * issued under it (the credentials route takes approved requests only).
   */
  async revoke(id: string, reason: string | null, p: ApiPrincipal): Promise<AccessRequestView> {
    // 404 for a request the caller may not see, as for every other verb
    const row = await this.loadVisible(id, p);
    if (effectiveStatus(row) !== 'approved') throw this.notActive(row);
    if (!(await this.mayDecide(row, p))) {
      throw new ForbiddenError(`access request ${id} can only be revoked by an admin or a member of the approver groups of connection "${row.connection}"'s policy`, 'not_an_approver');
    }
    const revokedAt = new Date();
    // One transaction: the request's conditional update (of two concurrent revocations, or a revocation
    // racing the grant's end, one wins) and the revocation of every unexpired credential minted under it.
    // The update's row lock orders it against issuance, which inserts a credential under a share lock on
    // the request: a credential is either seen here or never minted.
    const credentials = await this.prisma.$transaction(async (tx) => {
      const { count } = await tx.accessRequest.updateMany({
        where: { id, status: 'approved', grantedUntil: { gt: revokedAt } },
        data: { status: 'revoked', revokedBy: p.subject, revokedAt, revokeReason: reason },
      });
      if (count !== 1) return null;
      const rows = await tx.token.findMany({
        where: { grantId: id, revokedAt: null, expiresAt: { gt: revokedAt } },
        select: { id: true, kind: true, connection: true, identity: { select: { subject: true } } },
        orderBy: { issuedAt: 'asc' },
      });
      if (rows.length) await tx.token.updateMany({ where: { id: { in: rows.map((r) => r.id) }, revokedAt: null }, data: { revokedAt, revokedBy: p.subject } });
      return rows;
    });
    const after = await this.load(id);
    if (!credentials) throw this.notActive(after);
    // the snapshot with the grant in revokedGrants: gateways refuse its credentials and end its sessions as soon as it lands
    this.publisher.requestPublish();
    await this.events.record({
      type: 'access-request.changed',
      actor: p.subject,
      data: {
        action: 'revoke', target: id,
        before: { status: 'approved', grantedUntil: row.grantedUntil?.toISOString() ?? null },
        after: { identity: after.identity, connection: after.connection, status: 'revoked', revokedAt: revokedAt.toISOString(), reason, credentials: credentials.map((c) => c.id) },
      },
    });
    // one token.revoked per credential that died with the grant, as for every other way a credential is revoked
    for (const c of credentials) {
      await this.events.record({
        type: 'token.revoked',
        actor: p.subject,
        data: {
          action: 'revoke', target: c.id, before: { revokedAt: null },
          after: { kind: c.kind, identity: c.identity.subject, connection: c.connection, revokedAt: revokedAt.toISOString(), reason: 'grant_revoked', grant: id, revokeReason: reason },
        },
      });
    }
    return toAccessRequestView(after);
  }

  /** 409 for a revocation of a request whose grant is not running (pending, denied, over or revoked already). */
  private notActive(row: AccessRequest): ConflictError {
    const status = effectiveStatus(row);
    const why = status === 'revoked'
      ? `was already revoked${row.revokedBy ? ` by ${row.revokedBy}` : ''}${row.revokedAt ? ` at ${row.revokedAt.toISOString()}` : ''}`
      : status === 'expired' && row.status === 'approved'
        ? `has no running grant: it ended at ${row.grantedUntil?.toISOString()}`
        : `is ${status}, not an approved grant`;
    return new ConflictError(`access request ${row.id} ${why}; only an approved grant that is still running can be revoked`, status === 'revoked' ? 'access_request_already_revoked' : 'access_request_not_active');
  }

  /**
   * Admins; otherwise only members of the approver groups the connection's policy names — the approver
   * role alone does not make someone an approver of every connection.
   */
  private async mayDecide(row: AccessRequest, p: ApiPrincipal): Promise<boolean> {
    if (hasRole(p, 'admin')) return true;
    const connection = await this.prisma.connection.findUnique({ where: { name: row.connection }, select: { policy: true } });
    if (!connection?.policy) return false;
    const policy = await this.prisma.policy.findUnique({ where: { name: connection.policy }, select: { document: true } });
    const approvers = (policy?.document as { approval?: { approvers?: unknown } } | null)?.approval?.approvers;
    return Array.isArray(approvers) && p.groups.some((g) => approvers.includes(g));
  }

  /** The request, when the caller may see it (approvers, auditors, its requester); otherwise 404 like a missing one. */
  private async loadVisible(id: string, p: ApiPrincipal): Promise<AccessRequest> {
    const row = await this.load(id);
    if (!hasRole(p, 'approver', 'auditor') && row.identity !== p.subject) throw new NotFoundError(`access request ${id} does not exist`, 'access_request_not_found');
    return row;
  }

  private async load(id: string): Promise<AccessRequest> {
    const row = isUuid(id) ? await this.prisma.accessRequest.findUnique({ where: { id } }) : null;
    if (!row) throw new NotFoundError(`access request ${id} does not exist`, 'access_request_not_found');
    return row;
  }
}
