import { Injectable } from '@nestjs/common';
import { PrismaClient } from '@portcullis/db';
import type { ApiPrincipal } from './principal.js';
import type { MeResponse } from './dto/auth.dto.js';

@Injectable()
export class MeService {
  constructor(private readonly prisma: PrismaClient) {}

  async describe(principal: ApiPrincipal): Promise<MeResponse> {
    const identity = principal.identityId
      ? await this.prisma.identity.findUnique({ where: { id: principal.identityId }, select: { displayName: true, email: true } })
      : null;
    return {
      identityId: principal.identityId,
      subject: principal.subject,
      kind: principal.kind,
      displayName: identity?.displayName ?? null,
      email: identity?.email ?? null,
      groups: principal.groups,
      roles: principal.roles,
      tokenId: principal.tokenId,
    };
  }
}
