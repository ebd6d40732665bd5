import { createHash } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { PrismaClient, type TrustPolicyModel as TrustPolicy } from '@portcullis/db';
import { BadRequestError, ConflictError, NotFoundError } from '../common/errors.js';
import { ControlEventsService } from '../control-events/control-events.service.js';
import type { CreateTrustPolicyDto, TrustPolicyView } from './dto/trust-policy.dto.js';
import { isUniqueViolation } from '../common/prisma-errors.js';

export function toView(p: TrustPolicy): TrustPolicyView {
  return {
    id: p.id,
    name: p.name,
    issuer: p.issuer,
    audience: p.audience,
    subjectPattern: p.subjectPattern,
    jwksUri: p.jwksUri,
    identity: p.identity,
    groups: p.groups,
    singleUse: p.singleUse,
    createdAt: p.createdAt.toISOString(),
    updatedAt: p.updatedAt.toISOString(),
  };
}

@Injectable()
export class TrustPoliciesService {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly events: ControlEventsService,
  ) {}

  async list(): Promise<TrustPolicyView[]> {
    const rows = await this.prisma.trustPolicy.findMany({ orderBy: { name: 'asc' } });
    return rows.map(toView);
  }

  async get(name: string): Promise<TrustPolicyView> {
    const row = await this.prisma.trustPolicy.findUnique({ where: { name } });
    if (!row) throw new NotFoundError(`trust policy "${name}" not found`);
    return toView(row);
  }

  /** Policies that trust this exact issuer, by name (the token exchange picks among them). */
  findByIssuer(issuer: string): Promise<TrustPolicy[]> {
    return this.prisma.trustPolicy.findMany({ where: { issuer }, orderBy: { name: 'asc' } });
  }

  /**
   * Marks a subject token of a single-use policy as exchanged; false when it already was (a replay).
   * The row lives until the token could no longer be accepted anyway (`acceptedUntil`), then goes.
   */
  async claimSubjectToken(policy: TrustPolicy, issuer: string, jti: string, acceptedUntil: Date): Promise<boolean> {
    const id = createHash('sha256').update(`${issuer}\u0000${jti}`).digest('hex');
    await this.prisma.exchangedSubjectToken.deleteMany({ where: { expiresAt: { lt: new Date() } } });
    try {
      await this.prisma.exchangedSubjectToken.create({ data: { id, trustPolicy: policy.name, expiresAt: acceptedUntil } });
      return true;
    } catch (err) {
      if (isUniqueViolation(err)) return false;
      throw err;
    }
  }

  async create(dto: CreateTrustPolicyDto, actor: string): Promise<TrustPolicyView> {
    await this.assertGroupsExist(dto.groups);
    let row: TrustPolicy;
    try {
      row = await this.prisma.trustPolicy.create({
        data: {
          name: dto.name,
          issuer: dto.issuer,
          audience: dto.audience,
          subjectPattern: dto.subjectPattern,
          jwksUri: dto.jwksUri ?? null,
          identity: dto.identity,
          groups: dto.groups,
          singleUse: dto.singleUse,
        },
      });
    } catch (err) {
      if (isUniqueViolation(err)) {
        throw new ConflictError(`trust policy "${dto.name}" already exists`);
      }
      throw err;
    }
    const view = toView(row);
    await this.events.record({ type: 'trust-policy.changed', actor, data: { action: 'create', target: row.name, after: view } });
    return view;
  }

  async remove(name: string, actor: string): Promise<void> {
    const row = await this.prisma.trustPolicy.findUnique({ where: { name } });
    if (!row) throw new NotFoundError(`trust policy "${name}" not found`);
    await this.prisma.trustPolicy.delete({ where: { id: row.id } });
    await this.events.record({ type: 'trust-policy.changed', actor, data: { action: 'delete', target: name, before: toView(row) } });
  }

  private async assertGroupsExist(groups: string[]): Promise<void> {
    if (groups.length === 0) return;
    const found = await this.prisma.group.findMany({ where: { name: { in: groups } }, select: { name: true } });
    const have = new Set(found.map((g) => g.name));
    const missing = groups.filter((g) => !have.has(g));
    if (missing.length) {
      throw new BadRequestError(`groups: no such group ${missing.map((g) => `"${g}"`).join(', ')}`, 'validation_failed');
    }
  }
}
