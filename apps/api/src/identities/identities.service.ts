import { Injectable, Logger } from '@nestjs/common';
import { PrismaClient, Prisma, type IdentityModel as Identity } from '@portcullis/db';
import { BadRequestError, ConflictError, NotFoundError } from '../common/errors.js';
import { isUuid } from '../common/ids.js';
import { ControlEventsService } from '../control-events/control-events.service.js';
import { ConfigPublisherService } from '../config-publisher/config-publisher.service.js';
import { TokensService } from '../auth/tokens.service.js';
import type { CreateIdentity, IdentityView, UpdateIdentity } from './dto/identity.dto.js';
import { isUniqueViolation } from '../common/prisma-errors.js';

export interface ExternalIdentityInput {
  kind: 'person' | 'agent';
  subject: string;
  displayName?: string | null;
  email?: string | null;
  issuer: string;
  /** idp: IdP group claim values (matched against Group.name and Group.idpGroups); trust: group names */
  groups: string[];
  source: 'idp' | 'trust';
}

const withMemberships = { memberships: { include: { group: { select: { name: true } } } } } as const;
type IdentityWithMemberships = Prisma.IdentityGetPayload<{ include: typeof withMemberships }>;

/** Groups `before` had and `after` has not (memberships of other sources keep a group). */
function lostGroups(before: IdentityView, after: IdentityView): string[] {
  return before.groups.filter((g) => !after.groups.includes(g));
}

export function toIdentityView(i: IdentityWithMemberships): IdentityView {
  const memberships = i.memberships.map((m) => ({ group: m.group.name, source: m.source })).sort((a, b) => a.group.localeCompare(b.group));
  return {
    id: i.id,
    kind: i.kind,
    subject: i.subject,
    displayName: i.displayName,
    email: i.email,
    issuer: i.issuer,
    disabled: i.disabled,
    groups: memberships.map((m) => m.group),
    memberships,
    createdAt: i.createdAt.toISOString(),
    updatedAt: i.updatedAt.toISOString(),
  };
}

@Injectable()
export class IdentitiesService {
  private readonly logger = new Logger(IdentitiesService.name);

  constructor(
    private readonly prisma: PrismaClient,
    private readonly events: ControlEventsService,
    private readonly publisher: ConfigPublisherService,
    private readonly tokens: TokensService,
  ) {}

  async list(): Promise<IdentityView[]> {
    const rows = await this.prisma.identity.findMany({ include: withMemberships, orderBy: { subject: 'asc' } });
    return rows.map(toIdentityView);
  }

  async get(id: string): Promise<IdentityView> {
    return toIdentityView(await this.find(id));
  }

  async create(input: CreateIdentity, actor: string): Promise<IdentityView> {
    const created = await this.prisma.$transaction(async (tx) => {
      const groups = await this.resolveGroups(tx, input.groups ?? []);
      if (await tx.identity.findUnique({ where: { subject: input.subject }, select: { id: true } })) {
        throw new ConflictError(`identity ${input.subject} already exists`, 'identity_exists');
      }
      return tx.identity.create({
        data: {
          kind: input.kind,
          subject: input.subject,
          displayName: input.displayName ?? null,
          email: input.email ?? null,
          disabled: input.disabled ?? false,
          memberships: { create: groups.map((g) => ({ groupId: g.id, source: 'manual' })) },
        },
        include: withMemberships,
      });
    }).catch((err: unknown) => {
      if (isUniqueViolation(err)) throw new ConflictError(`identity ${input.subject} already exists`, 'identity_exists');
      throw err;
    });
    const view = toIdentityView(created);
    await this.changed(actor, 'create', view.subject, undefined, view);
    return view;
  }

  async update(id: string, patch: UpdateIdentity, actor: string): Promise<IdentityView> {
    const before = toIdentityView(await this.find(id));
    const updated = await this.prisma.$transaction(async (tx) => {
      if (patch.groups) {
        const groups = await this.resolveGroups(tx, patch.groups);
        await this.replaceMemberships(tx, id, groups.map((g) => g.id), 'manual');
      }
      return tx.identity.update({
        where: { id },
        data: { displayName: patch.displayName, email: patch.email, disabled: patch.disabled },
        include: withMemberships,
      });
    });
    const after = toIdentityView(updated);
    const lost = lostGroups(before, after);
    if (lost.length) await this.tokens.revokeOnGroupLoss([id], actor, lost);
    if (patch.disabled && !before.disabled) {
      const n = await this.tokens.revokeAllOf(id, actor);
      this.logger.log(`identity ${after.subject} disabled by ${actor}; ${n} tokens revoked`);
    }
    await this.changed(actor, 'update', after.subject, before, after);
    return after;
  }

  /**
   * Deletes an identity. Token rows go with it (cascade), and with them the record of revocations that
   * gateways rely on — so an identity with unexpired tokens is refused: disable it first (which revokes them).
   */
  async remove(id: string, actor: string): Promise<void> {
    const before = toIdentityView(await this.find(id));
    const live = await this.prisma.token.findFirst({ where: { identityId: id, expiresAt: { gt: new Date() } }, orderBy: { expiresAt: 'desc' } });
    if (live) {
      throw new ConflictError(
        `identity ${before.subject} has unexpired tokens (the last expires at ${live.expiresAt.toISOString()}); ` +
          `disable it with PATCH /v1/identities/${id} {"disabled": true}, which revokes them, and delete it after that time`,
        'identity_has_tokens',
      );
    }
    await this.prisma.identity.delete({ where: { id } });
    await this.changed(actor, 'delete', before.subject, before, undefined);
  }

  /**
   * Creates or refreshes an identity vouched for by an IdP login or a trusted workload token, and replaces its
   * memberships of that source. Unknown group names are ignored (groups are created by admins, never by logins).
   */
  async upsertExternal(input: ExternalIdentityInput): Promise<Identity> {
    const run = () =>
      this.prisma.$transaction(async (tx) => {
        const existing = await tx.identity.findUnique({ where: { subject: input.subject }, include: withMemberships });
        if (existing && existing.kind !== input.kind) {
          throw new ConflictError(`identity ${input.subject} exists as a ${existing.kind}, not a ${input.kind}`, 'identity_kind_mismatch');
        }
        const wanted = input.groups.filter((g) => typeof g === 'string' && g.length > 0);
        const groups = wanted.length
          ? await tx.group.findMany({
              where: input.source === 'idp' ? { OR: [{ name: { in: wanted } }, { idpGroups: { hasSome: wanted } }] } : { name: { in: wanted } },
              select: { id: true, name: true },
            })
          : [];
        const row = existing
          ? await tx.identity.update({
              where: { id: existing.id },
              data: {
                issuer: input.issuer,
                ...(input.displayName !== undefined ? { displayName: input.displayName } : {}),
                ...(input.email !== undefined ? { email: input.email } : {}),
              },
            })
          : await tx.identity.create({
              data: { kind: input.kind, subject: input.subject, displayName: input.displayName ?? null, email: input.email ?? null, issuer: input.issuer },
            });
        await this.replaceMemberships(tx, row.id, groups.map((g) => g.id), input.source);
        const after = await tx.identity.findUniqueOrThrow({ where: { id: row.id }, include: withMemberships });
        return { row, before: existing ? toIdentityView(existing) : undefined, after: toIdentityView(after) };
      });
    let result: Awaited<ReturnType<typeof run>>;
    try {
      result = await run();
    } catch (err) {
      // Two first logins of the same subject at once: the loser retries and finds the row.
      if (isUniqueViolation(err)) result = await run();
      else throw err;
    }
    const { before, after } = result;
    const lost = before ? lostGroups(before, after) : [];
    if (lost.length) await this.tokens.revokeOnGroupLoss([after.id], `${input.source}:${input.issuer}`, lost);
    const significant = (v?: IdentityView) => v && JSON.stringify([v.displayName, v.email, v.issuer, v.disabled, v.memberships]);
    if (significant(before) !== significant(after)) {
      await this.changed(`${input.source}:${input.issuer}`, before ? 'update' : 'create', after.subject, before, after);
    }
    return result.row;
  }

  private async find(id: string): Promise<IdentityWithMemberships> {
    const row = isUuid(id) ? await this.prisma.identity.findUnique({ where: { id }, include: withMemberships }) : null;
    if (!row) throw new NotFoundError(`identity ${id} does not exist`, 'identity_not_found');
    return row;
  }

  private async resolveGroups(tx: Prisma.TransactionClient, names: string[]): Promise<{ id: string; name: string }[]> {
    const unique = [...new Set(names)];
    const groups = await tx.group.findMany({ where: { name: { in: unique } }, select: { id: true, name: true } });
    const missing = unique.filter((n) => !groups.some((g) => g.name === n));
    if (missing.length) throw new BadRequestError(`groups: unknown group ${missing.map((m) => `"${m}"`).join(', ')} (create it with POST /v1/groups)`, 'unknown_group');
    return groups;
  }

  /** Memberships of `source` become exactly `groupIds`; memberships from other sources are left alone. */
  private async replaceMemberships(tx: Prisma.TransactionClient, identityId: string, groupIds: string[], source: string): Promise<void> {
    await tx.groupMember.deleteMany({ where: { identityId, source, groupId: { notIn: groupIds } } });
    const existing = await tx.groupMember.findMany({ where: { identityId, groupId: { in: groupIds } }, select: { groupId: true } });
    const toAdd = groupIds.filter((g) => !existing.some((e) => e.groupId === g));
    if (toAdd.length) await tx.groupMember.createMany({ data: toAdd.map((groupId) => ({ identityId, groupId, source })), skipDuplicates: true });
  }

  private async changed(actor: string, action: string, target: string, before?: IdentityView, after?: IdentityView): Promise<void> {
    this.publisher.requestPublish();
    await this.events.record({ type: 'identity.changed', actor, data: { action, target, before, after } });
  }
}
