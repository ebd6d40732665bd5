import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { createPrismaClient } from './client.js';

// If schema.prisma and prisma/migrations drift apart, writing or reading some column fails here:
// every model is written with every field set and read back through the generated client.
const db = createPrismaClient();
const cleanups: (() => Promise<unknown>)[] = [];
// The test database is shared with every other test file: leave nothing behind (a pool row with a
// fake key, say, would be published by any api booted later).
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  await db.$disconnect();
});
const u = () => randomUUID();
const now = new Date('2026-01-02T03:04:05.678Z');

describe('schema.prisma matches the migrated database', () => {
  it('round-trips every model with every field', async () => {
    const tag = u().slice(0, 8);
    const identity = await db.identity.create({
      data: { kind: 'agent', subject: `agent:drift-${tag}`, displayName: 'D', email: 'd@x.test', issuer: 'https://issuer', disabled: true },
    });
    const group = await db.group.create({ data: { name: `g-${tag}`, description: 'x', roles: ['admin', 'user'], idpGroups: ['eng'] } });
    await db.groupMember.create({ data: { identityId: identity.id, groupId: group.id, source: 'idp' } });
    const back = await db.identity.findUniqueOrThrow({ where: { id: identity.id }, include: { memberships: { include: { group: true } } } });
    expect(back.memberships[0].group.roles).toEqual(['admin', 'user']);
    expect(back.kind).toBe('agent');

    const tp = await db.trustPolicy.create({
      data: { name: `tp-${tag}`, issuer: 'i', audience: 'a', subjectPattern: 's*', jwksUri: 'https://j', identity: 'agent:x', groups: ['g'], singleUse: true },
    });
    expect((await db.trustPolicy.findUniqueOrThrow({ where: { id: tp.id } })).groups).toEqual(['g']);
    const used = await db.exchangedSubjectToken.create({ data: { id: `x-${tag}`, trustPolicy: tp.name, expiresAt: now } });
    cleanups.push(() => db.exchangedSubjectToken.delete({ where: { id: used.id } }));
    expect((await db.exchangedSubjectToken.findUniqueOrThrow({ where: { id: used.id } })).expiresAt).toEqual(now);

    const conn = await db.connection.create({
      data: { name: `c-${tag}`, kind: 'postgres', pool: 'p', host: 'h', port: 1, database: 'd', username: 'u', secretCiphertext: 'x', tls: 'require', allowedGroups: ['g'], policy: 'default', recording: 'best-effort', approvalMode: 'fail-fast', sshHostKeys: ['ssh-ed25519 AAAA'], kubeServer: 'https://k:6443', kubeCaPem: 'pem', kubeImpersonate: true },
    });
    expect((await db.connection.findUniqueOrThrow({ where: { name: conn.name } }))).toMatchObject({ approvalMode: 'fail-fast', sshHostKeys: ['ssh-ed25519 AAAA'], kubeImpersonate: true, kubeServer: 'https://k:6443', kubeCaPem: 'pem' });
    const poolKeys = await db.gatewayPoolKeys.create({
      data: {
        pool: `pool-${tag}`, masterKeyId: 'm', sshHostKeyEncrypted: 'a', sshHostPublicKey: 'b', sshUserCaEncrypted: 'c', sshUserCaPublicKey: 'd', sshHostCaEncrypted: 'e',
        sshHostCaPublicKey: 'f', tlsCaPem: 'g', tlsCaKeyEncrypted: 'h', tlsCertPem: 'i', tlsKeyEncrypted: 'j', tlsHosts: ['localhost'],
      },
    });
    cleanups.push(() => db.gatewayPoolKeys.delete({ where: { pool_masterKeyId: { pool: poolKeys.pool, masterKeyId: 'm' } } }));
    expect((await db.gatewayPoolKeys.findUniqueOrThrow({ where: { pool_masterKeyId: { pool: poolKeys.pool, masterKeyId: 'm' } } })).tlsHosts).toEqual(['localhost']);

    const policy = await db.policy.create({ data: { name: `p-${tag}`, version: 2, document: { a: [1, { b: true }] } } });
    await db.policyVersion.create({ data: { policyId: policy.id, version: 2, document: { a: 1 }, createdBy: 'me' } });
    expect((await db.policy.findUniqueOrThrow({ where: { id: policy.id }, include: { versions: true } })).versions).toHaveLength(1);

    await db.gatewayPool.create({ data: { name: `pool-${tag}`, publicKey: 'k', revision: 3 } });
    cleanups.push(
      () => db.identity.delete({ where: { id: identity.id } }),
      () => db.group.delete({ where: { id: group.id } }),
      () => db.trustPolicy.delete({ where: { id: tp.id } }),
      () => db.connection.delete({ where: { id: conn.id } }),
      () => db.policy.delete({ where: { id: policy.id } }),
      () => db.gatewayPool.delete({ where: { name: `pool-${tag}` } }),
      () => db.gateway.delete({ where: { id: `gw-${tag}` } }),
      () => db.signingKey.delete({ where: { kid: `k-${tag}` } }),
      () => db.session.delete({ where: { id: `s-${tag}` } }),
      () => db.event.deleteMany({ where: { chain: `s-${tag}` } }),
    );
    await db.gateway.create({ data: { id: `gw-${tag}`, pool: 'p', version: '1', address: 'a', liveSessions: 2, configRevision: 3, startedAt: now, lastHeartbeat: now } });
    expect((await db.gateway.findUniqueOrThrow({ where: { id: `gw-${tag}` } })).lastHeartbeat.toISOString()).toBe(now.toISOString());

    await db.token.create({ data: { id: `t-${tag}`, identityId: identity.id, kind: 'gateway', audience: 'a', connection: 'c', expiresAt: now, revokedAt: now, revokedBy: 'x', parentId: `p-${tag}` } });
    await db.signingKey.create({ data: { kid: `k-${tag}`, alg: 'EdDSA', publicJwk: { kty: 'OKP' }, privateJwkEncrypted: 'x', active: false } });
    const ar = await db.accessRequest.create({ data: { identity: 'i', connection: 'c', reason: 'r', durationSeconds: 60, status: 'approved', decidedBy: 'b', decidedAt: now, comment: 'c', grantedUntil: now, revokedBy: 'r', revokedAt: now, revokeReason: 'why' } });
    const ap = await db.approval.create({
      data: { sessionId: 's', identity: 'i', connection: 'c', gateway: 'g', statement: 'DELETE', fingerprint: 'f', policy: 'p', rule: 'r', reason: 'why', approverGroups: ['approvers'], status: 'pending', mode: 'one-time', expiresAt: now, decidedBy: 'b', decidedAt: now, comment: 'ok', consumedAt: now, webhookStatus: '200' },
    });
    cleanups.push(() => db.accessRequest.delete({ where: { id: ar.id } }), () => db.approval.delete({ where: { id: ap.id } }));
    expect((await db.approval.findUniqueOrThrow({ where: { id: ap.id } })).approverGroups).toEqual(['approvers']);

    await db.session.create({ data: { id: `s-${tag}`, identity: 'i', connection: 'c', gateway: 'g', pool: 'p', clientAddr: '127.0.0.1', startedAt: now, endedAt: now, lastSeq: 3, lastHash: 'h', events: 3 } });
    const ev = await db.event.create({
      data: { id: u(), chain: `s-${tag}`, sessionId: `s-${tag}`, seq: 1, time: now, type: 'query', identity: 'i', connection: 'c', gateway: 'g', data: { sql: 'select 1' }, prevHash: '0', hash: '1' },
    });
    expect(typeof ev.position).toBe('bigint');
    const cp = await db.checkpoint.create({ data: { heads: { a: 'b' }, signature: 's' } });
    cleanups.push(() => db.checkpoint.delete({ where: { id: cp.id } }));
  });
});
