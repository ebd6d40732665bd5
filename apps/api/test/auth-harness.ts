/**
 * Shared set-up of the auth-*.test.ts files: the dev IdP in-process on a free port and the api (createApiApp)
 * on another, wired to each other, with a random NATS prefix and random group/policy names. Not a test itself.
 */
import { createHash, randomBytes, type KeyObject } from 'node:crypto';
import type { INestApplication } from '@nestjs/common';
import { createPrismaClient, type PrismaClient } from '@portcullis/db';
import { createApiApp } from '../src/app.factory.js';
import { NatsService } from '../src/nats/nats.service.js';
import { startDevIdp, type DevIdp } from '../src/dev-idp/dev-idp.js';
import { freePort } from '../../../test/support/free-port.js';
export { freePort };

export interface AuthStack {
  idp: DevIdp;
  app: INestApplication;
  apiUrl: string;
  bootstrapToken: string;
  prisma: PrismaClient;
  /** random suffix for names this test file creates */
  sfx: string;
  /** fetch against the api; `token` defaults to the bootstrap token, `null` sends none */
  api(path: string, init?: RequestInit & { token?: string | null; json?: unknown }): Promise<{ status: number; body: any }>;
  close(): Promise<void>;
}


// One fixed master key for these files: the api's signing key in the shared test DB is reused, not piled up.
const MASTER_KEY = createHash('sha256').update('portcullis auth tests').digest('hex');

export async function startAuthStack(env: Record<string, string> = {}): Promise<AuthStack> {
  const sfx = randomBytes(4).toString('hex');
  const apiPort = await freePort();
  const callback = `http://127.0.0.1:${apiPort}/v1/auth/callback`;
  const idp = await startDevIdp({ port: 0, redirectUris: [callback] });
  const bootstrapToken = `bt-${randomBytes(24).toString('hex')}`;
  const app = await createApiApp({
    DATABASE_URL: process.env.DATABASE_URL!,
    PORTCULLIS_MASTER_KEY: MASTER_KEY,
    PORTCULLIS_BOOTSTRAP_TOKEN: bootstrapToken,
    NATS_PREFIX: `auth${sfx}`,
    API_PORT: String(apiPort),
    OIDC_ISSUER_URL: idp.issuer,
    OIDC_CLIENT_ID: 'portcullis-api',
    OIDC_CLIENT_SECRET: 'portcullis-api-secret',
    OIDC_REDIRECT_URI: callback,
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'silent',
    ...env,
  });
  await app.listen(apiPort, '127.0.0.1');
  const apiUrl = `http://127.0.0.1:${apiPort}`;
  const prisma = createPrismaClient(process.env.DATABASE_URL);

  const api: AuthStack['api'] = async (path, init = {}) => {
    const { token = bootstrapToken, json, ...rest } = init;
    const headers = new Headers(rest.headers);
    if (token) headers.set('authorization', `Bearer ${token}`);
    if (json !== undefined) headers.set('content-type', 'application/json');
    const res = await fetch(`${apiUrl}${path}`, { ...rest, headers, body: json !== undefined ? JSON.stringify(json) : rest.body, redirect: 'manual' });
    const text = await res.text();
    let body: unknown = text;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      /* not JSON */
    }
    return { status: res.status, body };
  };

  return {
    idp, app, apiUrl, bootstrapToken, prisma, sfx, api,
    async close() {
      const nats = app.get(NatsService);
      for (const stream of [nats.names.eventStream, `KV_${nats.names.configBucket}`]) {
        await nats.manager.streams.delete(stream).catch(() => undefined);
      }
      await app.close();
      await idp.close();
      await prisma.$disconnect();
    },
  };
}

export interface TestIssuer {
  issuer: string;
  jwksUri: string;
  /** Signs with the issuer's key (or `key`, to forge); defaults: iss = issuer, iat = now, exp = now + 300. */
  sign(claims: Record<string, unknown>, opts?: { key?: KeyObject; kid?: string; alg?: string }): Promise<string>;
  /** A key pair the issuer does not publish. */
  otherKey(): Promise<KeyObject>;
  close(): Promise<void>;
}

/** A minimal workload issuer (discovery + JWKS) with a key the test made, like a Kubernetes or CI OIDC issuer. */
export async function startTestIssuer(opts: { discovery?: boolean } = {}): Promise<TestIssuer> {
  const { exportJWK, SignJWT } = await import('jose');
  const { testKeyPair } = await import('../../../test/support/test-keys.js');
  const { createServer: createHttpServer } = await import('node:http');
  const { publicKey, privateKey } = testKeyPair('ES256');
  const kid = `k-${randomBytes(4).toString('hex')}`;
  const jwk = { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' };
  let issuer = '';
  const server = createHttpServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (path === '/.well-known/openid-configuration' && opts.discovery !== false) {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ issuer, jwks_uri: `${issuer}/jwks` }));
    } else if (path === '/jwks') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] }));
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  issuer = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  return {
    issuer,
    jwksUri: `${issuer}/jwks`,
    async sign(claims, o = {}) {
      const now = Math.floor(Date.now() / 1000);
      return new SignJWT({ iat: now, exp: now + 300, iss: issuer, ...claims })
        .setProtectedHeader({ alg: o.alg ?? 'ES256', kid: o.kid ?? kid, typ: 'JWT' })
        .sign(o.key ?? privateKey);
    },
    async otherKey() {
      return testKeyPair('ES256').privateKey;
    },
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}

/** Control-plane events the api published on this stack's JetStream stream so far. */
export async function controlEvents(stack: AuthStack): Promise<Array<{ type: string; identity: string | null; data: Record<string, any> }>> {
  const nats = stack.app.get(NatsService);
  const info = await nats.manager.streams.info(nats.names.eventStream);
  const out: Array<{ type: string; identity: string | null; data: Record<string, any> }> = [];
  for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
    const msg = await nats.manager.streams.getMessage(nats.names.eventStream, { seq }).catch(() => null);
    if (msg) out.push(msg.json());
  }
  return out;
}
