/**
 * The whole approvals loop for gateway tests: api (REST decisions), approvals app (queue → Postgres,
 * expiry), gateway(s) from the harness with approvals installed. The api's signing key is the one the
 * snapshot carries and the one gateway credentials are signed with here, as in production.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import pg from 'pg';
import { createPrismaClient, loadActiveSigningKey, type ActiveSigningKey, type PrismaClient } from '@portcullis/db';
import { Queue } from 'bullmq';
import { APPROVALS_QUEUE, GATEWAY_AUDIENCE, deriveKey } from '@portcullis/protocol';
import { startApprovalsApp, type ApprovalsApp } from '../../apps/approvals/src/app.js';
import { Recorder } from '../../apps/recorder/src/recorder.js';
import { parseRecorderEnv } from '../../apps/recorder/src/env.js';
import { approvalsEnvSchema } from '../../apps/approvals/src/env.js';
import { startAuthStack, type AuthStack } from '../../apps/api/test/auth-harness.js';
import { TokensService } from '../../apps/api/src/auth/tokens.service.js';
import type { Gateway } from '../../apps/gateway/src/gateway.js';
import type { HooksFactory } from '../../apps/gateway/src/postgres/postgres-module.js';
import type { SessionHooks, StatementInfo, Verdict } from '../../apps/gateway/src/postgres/session-hooks.js';
import type { ApprovalClient } from '../../apps/gateway/src/approvals/approval-client.js';
import { startHarness, type Harness, type HarnessOptions } from '../../apps/gateway/test/support/harness.js';

/** One master key for approvals e2e files, so the api's signing key in the shared test DB is reused. */
export const APPROVALS_TEST_MASTER_KEY = createHash('sha256').update('portcullis approvals tests').digest('hex');

/**
 * The test's policy: statements with the marker comment `hold` (slash-star hold star-slash) or starting
 * with DELETE need approval. (The approvals path is under test here, not the SQL classifier.)
 */
export function holdVerdict(stmt: StatementInfo): Verdict {
  if (/\/\*hold\*\//.test(stmt.sql) || /^\s*delete\b/i.test(stmt.sql)) {
    return { action: 'require_approval', rule: 'bulk-writes', reason: 'writes like this need a second pair of eyes' };
  }
  return { action: 'allow', rule: null, reason: null };
}

export const holdHooks: HooksFactory = (_info, defaults): SessionHooks => ({ ...defaults, onQuery: holdVerdict, onParse: holdVerdict });

export interface ApprovalsStack {
  h: Harness;
  api: AuthStack;
  app: ApprovalsApp;
  /** stops the approvals app (if running) and starts a fresh one */
  restartApp(opts?: { stopOnly?: boolean }): Promise<void>;
  prisma: PrismaClient;
  key: ActiveSigningKey;
  connection: string;
  approverGroup: string;
  queuePrefix: string;
  clients: ApprovalClient[];
  /** an api token of an approver */
  bobToken: string;
  /** a gateway credential for the stack's connection (or `cn`) */
  credential(o?: { sub?: string; amode?: 'wait' | 'fail-fast'; cn?: string }): Promise<string>;
  uri(token: string, gateway?: Gateway): string;
  pgClient(token: string, gateway?: Gateway): Promise<pg.Client>;
  addGateway(): Promise<Gateway>;
  pendingFor(subject: string): Promise<{ id: string; status: string; mode: string }[]>;
  waitPending(subject: string, n?: number): Promise<{ id: string; status: string; mode: string }[]>;
  decide(id: string, action: 'approve' | 'deny', comment?: string, token?: string): Promise<{ status: number; body: any }>;
  /** a real recorder on the stack's NATS prefix and master key (stopped by stop()) */
  startRecorder(): Promise<Recorder>;
  /** an api token of a fresh identity in a fresh auditor group (removed by stop()) */
  auditorToken(): Promise<string>;
  stop(): Promise<void>;
}

export async function startApprovalsStack(o: {
  timeoutSeconds?: number; redisUrl?: string; harness?: Pick<HarnessOptions, 'sshPolicy' | 'tls'>;
  /** the policy's guardrails, masking …: with it, the gateway's own policy hooks decide (not holdHooks) */
  policy?: Record<string, unknown>;
  setupSql?: string;
} = {}): Promise<ApprovalsStack> {
  const sfx = randomBytes(4).toString('hex');
  const connection = `apprconn_${sfx}`;
  const approverGroup = `appr-approvers-${sfx}`;
  const queuePrefix = `bq${sfx}`;
  const policy = { name: `appr-${sfx}`, guardrails: [], ...o.policy, approval: { approvers: [approverGroup], timeoutSeconds: o.timeoutSeconds ?? 60 } };
  const h = await startHarness({
    ...o.harness,
    // approvals are built with each gateway of the harness; the test's policy holds statements
    ...(o.policy ? {} : { hooks: holdHooks }),
    approvals: { queuePrefix, graceSeconds: 2, ...(o.redisUrl ? { redisUrl: o.redisUrl } : {}) },
    connection: { name: connection, policy: policy.name, allowedGroups: ['engineers'] },
    policies: [{ name: policy.name, version: 1, document: policy }],
    // the event key an api with this master key verifies gateway messages with, as in production
    eventKeyHex: deriveKey(Buffer.from(APPROVALS_TEST_MASTER_KEY, 'hex'), 'event-signing').toString('hex'),
    setupSql: o.setupSql ?? 'CREATE TABLE items (id int primary key, note text); INSERT INTO items SELECT g, $$n$$ || g FROM generate_series(1, 5) g; CREATE TABLE log (id serial primary key, v int);',
  });
  const api = await startAuthStack({ NATS_PREFIX: h.natsPrefix, PORTCULLIS_MASTER_KEY: APPROVALS_TEST_MASTER_KEY });
  const prisma = createPrismaClient(process.env.DATABASE_URL);
  const key = await loadActiveSigningKey(prisma, Buffer.from(APPROVALS_TEST_MASTER_KEY, 'hex'));
  // the snapshot verifies with the api's key (same object the harness puts in every snapshot)
  for (const k of Object.keys(h.publicJwk)) delete (h.publicJwk as Record<string, unknown>)[k];
  Object.assign(h.publicJwk, key.publicJwk);
  await h.putSnapshot();

  const startApp = () =>
    startApprovalsApp(
      approvalsEnvSchema.parse({
        DATABASE_URL: process.env.DATABASE_URL,
        NATS_PREFIX: h.natsPrefix,
        PORTCULLIS_MASTER_KEY: APPROVALS_TEST_MASTER_KEY,
        APPROVALS_QUEUE_PREFIX: queuePrefix,
        APPROVALS_HTTP_PORT: '0',
        APPROVALS_HTTP_HOST: '127.0.0.1',
        APPROVALS_EXPIRY_INTERVAL_MS: '200',
        ...(o.redisUrl ? { REDIS_URL: o.redisUrl } : {}),
        LOG_LEVEL: process.env.LOG_LEVEL ?? 'silent',
      }),
      { scopeConnectionPrefix: connection },
    );
  const app = await startApp();

  await prisma.group.create({ data: { name: approverGroup, roles: ['approver'] } });
  const bob = await prisma.identity.create({ data: { kind: 'person', subject: `appr-bob-${sfx}`, memberships: { create: { group: { connect: { name: approverGroup } } } } } });
  const bobToken = (await api.app.get(TokensService).issueApiToken(bob.id)).access_token;

  const clients: ApprovalClient[] = [];
  const recorders: Recorder[] = [];
  const auditorGroups: string[] = [];
  const install = (g: Gateway) => {
    if (!g.approvals) throw new Error('the harness gateway has no approvals client');
    clients.push(g.approvals);
  };
  install(h.gateway);

  const stack: ApprovalsStack = {
    h, api, app, prisma, key, connection, approverGroup, queuePrefix, clients, bobToken,
    async credential(c = {}) {
      const jwt = new SignJWT({ typ: 'gateway', pid: randomUUID(), kind: 'person', groups: ['engineers'], cn: c.cn ?? connection, ...(c.amode ? { amode: c.amode } : {}) })
        .setProtectedHeader({ alg: 'EdDSA', kid: key.kid })
        .setIssuedAt()
        .setIssuer('portcullis')
        .setAudience(GATEWAY_AUDIENCE)
        .setSubject(c.sub ?? `carol-${sfx}`)
        .setJti(randomUUID())
        .setExpirationTime('10m');
      return jwt.sign(key.privateKey);
    },
    uri: (token, g = h.gateway) => `postgresql://carol:${encodeURIComponent(token)}@127.0.0.1:${g.pgPort}/${connection}?sslmode=disable`,
    async pgClient(token, g = h.gateway) {
      const c = new pg.Client({ host: '127.0.0.1', port: g.pgPort, user: 'carol', password: token, database: connection, ssl: false });
      c.on('error', () => undefined);
      await c.connect();
      return c;
    },
    async restartApp(ro = {}) {
      await stack.app.stop();
      if (!ro.stopOnly) stack.app = await startApp();
    },
    async addGateway() {
      const g = await h.startGateway();
      install(g);
      return g;
    },
    async pendingFor(subject) {
      return prisma.approval.findMany({ where: { connection, identity: subject, status: 'pending' }, orderBy: { requestedAt: 'asc' }, select: { id: true, status: true, mode: true } });
    },
    async waitPending(subject, n = 1) {
      const end = Date.now() + 10_000;
      for (;;) {
        const rows = await stack.pendingFor(subject);
        if (rows.length >= n) return rows;
        if (Date.now() > end) throw new Error(`no ${n} pending approvals for ${subject}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    decide: (id, action, comment, token = bobToken) => api.api(`/v1/approvals/${id}/${action}`, { method: 'POST', token, json: comment === undefined ? {} : { comment } }),
    async startRecorder() {
      const r = new Recorder(parseRecorderEnv({
        DATABASE_URL: process.env.DATABASE_URL, NATS_PREFIX: h.natsPrefix, PORTCULLIS_MASTER_KEY: APPROVALS_TEST_MASTER_KEY,
        RECORDER_HTTP_PORT: '0', RECORDER_HTTP_HOST: '127.0.0.1', RECORDER_ACK_WAIT_SECONDS: '5', CHECKPOINT_SECONDS: '3600', LOG_LEVEL: process.env.LOG_LEVEL ?? 'silent',
      }), { http: false });
      await r.start();
      recorders.push(r);
      return r;
    },
    async auditorToken() {
      const name = `auditors-${sfx}-${auditorGroups.length}`;
      await prisma.group.create({ data: { name, roles: ['auditor'] } });
      auditorGroups.push(name);
      const who = await prisma.identity.create({ data: { kind: 'person', subject: `auditor-${sfx}-${auditorGroups.length}`, memberships: { create: { group: { connect: { name } } } } } });
      return (await api.app.get(TokensService).issueApiToken(who.id)).access_token;
    },
    async stop() {
      for (const r of recorders) await r.stop().catch(() => undefined);
      for (const c of clients) await c.close().catch(() => undefined);
      const q = new Queue(APPROVALS_QUEUE, { connection: { url: o.redisUrl ?? 'redis://127.0.0.1:6379', maxRetriesPerRequest: null }, prefix: queuePrefix });
      await q.obliterate({ force: true }).catch(() => undefined);
      await q.close().catch(() => undefined);
      await stack.app.stop().catch(() => undefined);
      await prisma.approval.deleteMany({ where: { connection } });
      await prisma.identity.deleteMany({ where: { subject: { contains: sfx } } });
      await prisma.group.deleteMany({ where: { name: { in: [approverGroup, ...auditorGroups] } } });
      await prisma.$disconnect();
      await api.close().catch(() => undefined);
      await h.stop();
    },
  };
  return stack;
}
