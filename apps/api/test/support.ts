import { randomBytes } from 'node:crypto';
import type { INestApplication } from '@nestjs/common';
import supertest from 'supertest';
import { PrismaClient } from '@portcullis/db';
import { SigningKeysService } from '../src/auth/signing-keys.service.js';
import { createApiApp } from '../src/app.factory.js';

export interface TestApi {
  app: INestApplication;
  /** supertest against the app's HTTP server (no port needed) */
  http: ReturnType<typeof supertest>;
  prefix: string;
  masterKey: string;
  bootstrapToken: string;
  /** random suffix for names this test creates */
  suffix: string;
  /** `Authorization` header value of the bootstrap admin */
  admin: string;
  get<T>(token: new (...args: never[]) => T): T;
  close(): Promise<void>;
}

/** Boots an isolated api: random NATS prefix (own KV bucket and stream), fresh master key and bootstrap token. */
export async function startTestApi(env: Record<string, string> = {}): Promise<TestApi> {
  const suffix = randomBytes(4).toString('hex');
  const prefix = `t${suffix}${randomBytes(2).toString('hex')}`;
  const masterKey = randomBytes(32).toString('hex');
  const bootstrapToken = randomBytes(24).toString('base64url');
  const app = await createApiApp({
    NATS_PREFIX: prefix,
    PORTCULLIS_MASTER_KEY: masterKey,
    PORTCULLIS_BOOTSTRAP_TOKEN: bootstrapToken,
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'silent',
    ...env,
  });
  return {
    app,
    http: supertest(app.getHttpServer()),
    prefix,
    masterKey,
    bootstrapToken,
    suffix,
    admin: `Bearer ${bootstrapToken}`,
    get: (token) => app.get(token as never),
    close: async () => {
      // Each test api has its own master key, hence its own signing key row: remove it with the app.
      const keyPrefix = `${app.get(SigningKeysService).masterKeyId}.`;
      const prisma = app.get(PrismaClient);
      await prisma.signingKey.deleteMany({ where: { kid: { startsWith: keyPrefix } } }).catch(() => undefined);
      // and its pools' SSH/TLS keys (per master key)
      await prisma.gatewayPoolKeys.deleteMany({ where: { masterKeyId: app.get(SigningKeysService).masterKeyId } }).catch(() => undefined);
      await app.close();
    },
  };
}

/** Retries `fn` until it stops throwing or `timeoutMs` passes (then rethrows its last error). */
export async function eventually<T>(fn: () => Promise<T> | T, timeoutMs = 1_000, stepMs = 25): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() >= deadline) throw err;
      await new Promise((r) => setTimeout(r, stepMs));
    }
  }
}
