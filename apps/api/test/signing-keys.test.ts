import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { PrismaClient, loadActiveSigningKey } from '@portcullis/db';
import { parseMasterKey } from '@portcullis/protocol';
import { compactVerify, importJWK } from 'jose';
import { createApiApp } from '../src/app.factory.js';
import { SigningKeysService } from '../src/auth/signing-keys.service.js';
import { TokensService } from '../src/auth/tokens.service.js';

describe('signing keys', () => {
  it('concurrent first boots with one master key agree on one active key; a later boot loads it', async () => {
    const env = { PORTCULLIS_MASTER_KEY: randomBytes(32).toString('hex'), NATS_PREFIX: `k${randomBytes(4).toString('hex')}` };
    const [a, b] = await Promise.all([createApiApp(env), createApiApp(env)]);
    const c = await createApiApp(env);
    try {
      const keys = [a, b, c].map((app) => app.get(SigningKeysService));
      expect(new Set(keys.map((k) => k.activeKey.kid)).size).toBe(1);
      const prisma = a.get(PrismaClient);
      expect(await prisma.signingKey.count({ where: { kid: { startsWith: `${keys[0].masterKeyId}.` }, active: true } })).toBe(1);
      // Other apps (approvals) load the same key through @portcullis/db.
      const loaded = await loadActiveSigningKey(prisma, parseMasterKey(env.PORTCULLIS_MASTER_KEY)!);
      expect(loaded.kid).toBe(keys[0].activeKey.kid);
      // signJws: compact EdDSA JWS verifiable with the published key.
      const jws = await a.get(TokensService).signJws({ typ: 'approval-decision', approvalId: 'x' });
      const jwk = a.get(TokensService).publicJwks().find((k) => k.kid === loaded.kid)!;
      const { payload, protectedHeader } = await compactVerify(jws, await importJWK(jwk, 'EdDSA'));
      expect(protectedHeader).toMatchObject({ alg: 'EdDSA', kid: loaded.kid });
      expect(JSON.parse(new TextDecoder().decode(payload))).toEqual({ typ: 'approval-decision', approvalId: 'x' });
      await prisma.signingKey.deleteMany({ where: { kid: { startsWith: `${keys[0].masterKeyId}.` } } });
    } finally {
      await Promise.all([a.close(), b.close(), c.close()]);
    }
  });

  it('a different master key never picks up another key', async () => {
    const a = await createApiApp({ PORTCULLIS_MASTER_KEY: randomBytes(32).toString('hex'), NATS_PREFIX: `k${randomBytes(4).toString('hex')}` });
    const b = await createApiApp({ PORTCULLIS_MASTER_KEY: randomBytes(32).toString('hex'), NATS_PREFIX: `k${randomBytes(4).toString('hex')}` });
    try {
      const [ka, kb] = [a.get(SigningKeysService), b.get(SigningKeysService)];
      expect(ka.activeKey.kid).not.toBe(kb.activeKey.kid);
      expect(kb.publicJwks().map((k) => k.kid)).not.toContain(ka.activeKey.kid);
      const prisma = a.get(PrismaClient);
      await prisma.signingKey.deleteMany({ where: { kid: { in: [ka.activeKey.kid, kb.activeKey.kid] } } });
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});
