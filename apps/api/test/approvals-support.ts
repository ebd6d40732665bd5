/** Shared set-up of approvals-*.test.ts / access-requests-*.test.ts: identities, groups and api tokens in the test DB. */
import { randomBytes, randomUUID } from 'node:crypto';
import type { PrismaClient } from '@portcullis/db';
import type { Role } from '@portcullis/protocol';
import { TokensService } from '../src/auth/tokens.service.js';
import type { AuthStack } from './auth-harness.js';

export interface TestPerson {
  id: string;
  subject: string;
  token: string;
}

export async function makeGroup(prisma: PrismaClient, name: string, roles: Role[]): Promise<string> {
  const g = await prisma.group.create({ data: { name, roles } });
  return g.id;
}

/** An identity in `groups` (names), with an api token issued by the api itself. */
export async function makePerson(stack: AuthStack, subject: string, groups: string[]): Promise<TestPerson> {
  const identity = await stack.prisma.identity.create({ data: { kind: 'person', subject } });
  for (const name of groups) {
    const g = await stack.prisma.group.findUniqueOrThrow({ where: { name } });
    await stack.prisma.groupMember.create({ data: { identityId: identity.id, groupId: g.id } });
  }
  const { access_token } = await stack.app.get(TokensService).issueApiToken(identity.id);
  return { id: identity.id, subject, token: access_token };
}

export function uniq(what: string): string {
  return `${what}-${randomBytes(4).toString('hex')}`;
}

/** A pending approval row as the approvals app writes it. */
export async function makeApproval(prisma: PrismaClient, o: { identity: string; connection: string; approverGroups: string[]; expiresInMs?: number; mode?: string }) {
  const now = Date.now();
  return prisma.approval.create({
    data: {
      id: randomUUID(),
      sessionId: randomUUID(),
      identity: o.identity,
      connection: o.connection,
      gateway: 'gw-test',
      statement: 'DELETE FROM customers',
      fingerprint: 'fp',
      policy: null,
      rule: 'bulk-writes',
      reason: 'unbounded delete',
      approverGroups: o.approverGroups,
      mode: o.mode ?? 'wait',
      requestedAt: new Date(now),
      expiresAt: new Date(now + (o.expiresInMs ?? 300_000)),
    },
  });
}

export async function cleanup(prisma: PrismaClient, sfx: string): Promise<void> {
  await prisma.approval.deleteMany({ where: { connection: { contains: sfx } } });
  await prisma.accessRequest.deleteMany({ where: { connection: { contains: sfx } } });
  await prisma.connection.deleteMany({ where: { name: { contains: sfx } } });
  await prisma.identity.deleteMany({ where: { subject: { contains: sfx } } });
  await prisma.group.deleteMany({ where: { name: { contains: sfx } } });
}
