import { randomBytes, randomUUID } from 'node:crypto';
import { exportJWK, type JWK } from 'jose';
import { testKeyPair } from '../../../../test/support/test-keys.js';
import { signingMasterKeyId, type PrismaClient } from '@portcullis/db';
import { deriveKey, encryptAtRest, type ApprovalJob } from '@portcullis/protocol';
import { approvalsEnvSchema, type ApprovalsEnv } from '../../src/env.js';
import { freePort } from '../../../../test/support/free-port.js';
export { freePort };

export function randomPrefix(what = 't'): string {
  return `${what}${randomBytes(5).toString('hex')}`;
}

export function testEnv(overrides: Partial<Record<keyof ApprovalsEnv, string>> & { PORTCULLIS_MASTER_KEY: string }): ApprovalsEnv {
  return approvalsEnvSchema.parse({
    DATABASE_URL: process.env.DATABASE_URL,
    NATS_PREFIX: randomPrefix('ap'),
    APPROVALS_QUEUE_PREFIX: randomPrefix('bq'),
    APPROVALS_HTTP_PORT: '0',
    APPROVALS_HTTP_HOST: '127.0.0.1',
    APPROVALS_EXPIRY_INTERVAL_MS: '200',
    APPROVALS_WEBHOOK_TIMEOUT_MS: '2000',
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'silent',
    ...overrides,
  });
}

/** Writes a signing key exactly as the api's SigningKeysService does (kid = <master key id>.<random>). */
export async function seedSigningKey(db: PrismaClient, masterKeyHex: string): Promise<{ kid: string; publicJwk: JWK & { kid: string } }> {
  const atRest = deriveKey(Buffer.from(masterKeyHex, 'hex'), 'signing-key-at-rest');
  const kid = `${signingMasterKeyId(atRest)}.${randomBytes(9).toString('base64url')}`;
  const { publicKey, privateKey } = testKeyPair('EdDSA');
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg: 'EdDSA', use: 'sig' };
  const privateJwk = { ...(await exportJWK(privateKey)), kid, alg: 'EdDSA' };
  await db.signingKey.create({ data: { kid, alg: 'EdDSA', publicJwk, privateJwkEncrypted: encryptAtRest(atRest, JSON.stringify(privateJwk), kid), active: true } });
  return { kid, publicJwk };
}

export function makeJob(connection: string, over: Partial<ApprovalJob> = {}): ApprovalJob {
  return {
    approvalId: randomUUID(),
    sessionId: randomUUID(),
    identity: `carol-${randomBytes(3).toString('hex')}`,
    connection,
    gateway: 'gw-test',
    pool: 'default',
    statement: 'DELETE FROM customers',
    fingerprint: 'fp-' + randomBytes(4).toString('hex'),
    policy: null,
    rule: 'bulk-writes',
    reason: 'unbounded DELETE needs a second pair of eyes',
    approverGroups: ['approvers'],
    timeoutSeconds: 300,
    mode: 'wait',
    webhook: null,
    requestedAt: new Date().toISOString(),
    ...over,
  };
}


export async function waitFor<T>(fn: () => Promise<T | null | undefined | false>, timeoutMs = 10_000, stepMs = 25): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error('waitFor timed out');
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

export function masterKeyHex(): string {
  return randomBytes(32).toString('hex');
}
