import { Injectable } from '@nestjs/common';
import { PrismaClient, Prisma } from '@portcullis/db';
import { BadRequestError, ConflictError, NotFoundError } from '../common/errors.js';
import { ControlEventsService } from '../control-events/control-events.service.js';
import { ConfigPublisherService } from '../config-publisher/config-publisher.service.js';
import { TokensService } from '../auth/tokens.service.js';
import type { CreateGroup, GroupView, SetMembers, UpdateGroup } from './dto/group.dto.js';
import { isUniqueViolation } from '../common/prisma-errors.js';

const withMembers = { members: { include: { identity: { select: { subject: true, kind: true } } } } } as const;
type GroupWithMembers = Prisma.GroupGetPayload<{ include: typeof withMembers }>;

function toView(g: GroupWithMembers): GroupView {
  return {
    id: g.id,
    name: g.name,
    description: g.description,
    roles: g.roles,
    idpGroups: g.idpGroups,
    members: g.members.map((m) => ({ subject: m.identity.subject, kind: m.identity.kind, source: m.source })).sort((a, b) => a.subject.localeCompare(b.subject)),
    createdAt: g.createdAt.toISOString(),
    updatedAt: g.updatedAt.toISOString(),
  };
}

@Injectable()
export class GroupsService {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly events: ControlEventsService,
    private readonly publisher: ConfigPublisherService,
    private readonly tokens: TokensService,
  ) {}

  async list(): Promise<GroupView[]> {
    return (await this.prisma.group.findMany({ include: withMembers, orderBy: { name: 'asc' } })).map(toView);
  }

  async get(name: string): Promise<GroupView> {
    return toView(await this.find(name));
  }

  async create(input: CreateGroup, actor: string): Promise<GroupView> {
    let row: GroupWithMembers;
    try {
      row = await this.prisma.group.create({
        data: { name: input.name, description: input.description ?? null, roles: [...new Set(input.roles ?? ['user'])], idpGroups: input.idpGroups ?? [] },
        include: withMembers,
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw new ConflictError(`group "${input.name}" already exists`, 'group_exists');
      throw err;
    }
    const view = toView(row);
    await this.changed(actor, 'create', view.name, undefined, view);
    return view;
  }

  async update(name: string, patch: UpdateGroup, actor: string): Promise<GroupView> {
    const before = toView(await this.find(name));
    const row = await this.prisma.group.update({
      where: { name },
      data: { description: patch.description, roles: patch.roles ? [...new Set(patch.roles)] : undefined, idpGroups: patch.idpGroups },
      include: withMembers,
    });
    const after = toView(row);
    await this.changed(actor, 'update', name, before, after);
    return after;
  }

  async setMembers(name: string, input: SetMembers, actor: string): Promise<GroupView> {
    const before = toView(await this.find(name));
    const subjects = [...new Set(input.members)];
    const row = await this.prisma.$transaction(async (tx) => {
      const group = await tx.group.findUnique({ where: { name }, select: { id: true } });
      if (!group) throw new NotFoundError(`group "${name}" does not exist`, 'group_not_found');
      const identities = await tx.identity.findMany({ where: { subject: { in: subjects } }, select: { id: true, subject: true } });
      const missing = subjects.filter((s) => !identities.some((i) => i.subject === s));
      if (missing.length) throw new BadRequestError(`members: unknown identity ${missing.map((m) => `"${m}"`).join(', ')} (create it with POST /v1/identities)`, 'unknown_identity');
      const ids = identities.map((i) => i.id);
      const leaving = await tx.groupMember.findMany({ where: { groupId: group.id, source: 'manual', identityId: { notIn: ids } }, select: { identityId: true } });
      await tx.groupMember.deleteMany({ where: { groupId: group.id, source: 'manual', identityId: { notIn: ids } } });
      await tx.groupMember.createMany({ data: ids.map((identityId) => ({ identityId, groupId: group.id, source: 'manual' })), skipDuplicates: true });
      const stays = await tx.groupMember.findMany({ where: { groupId: group.id }, select: { identityId: true } });
      // a member who is still in it through another source (idp, trust) did not lose it
      const lost = leaving.map((m) => m.identityId).filter((id) => !stays.some((m) => m.identityId === id));
      return { group: await tx.group.findUniqueOrThrow({ where: { id: group.id }, include: withMembers }), lost };
    });
    const after = toView(row.group);
    await this.tokens.revokeOnGroupLoss(row.lost, actor, [name]);
    await this.changed(actor, 'set-members', name, before, after);
    return after;
  }

  async remove(name: string, actor: string): Promise<void> {
    const found = await this.find(name);
    const before = toView(found);
    await this.prisma.group.delete({ where: { name } });
    await this.tokens.revokeOnGroupLoss([...new Set(found.members.map((m) => m.identityId))], actor, [name]);
    await this.changed(actor, 'delete', name, before, undefined);
  }

  private async find(name: string): Promise<GroupWithMembers> {
    const row = await this.prisma.group.findUnique({ where: { name }, include: withMembers });
    if (!row) throw new NotFoundError(`group "${name}" does not exist`, 'group_not_found');
    return row;
  }

  private async changed(actor: string, action: string, target: string, before?: GroupView, after?: GroupView): Promise<void> {
    this.publisher.requestPublish();
    await this.events.record({ type: 'group.changed', actor, data: { action, target, before, after } });
  }
}
