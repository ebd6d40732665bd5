import { createHmac, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { compactVerify, importJWK, type JWK } from 'jose';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPrismaClient } from '@portcullis/db';
import {
  APPROVALS_QUEUE, approvalDecisionSchema, approvalSubjects, deriveKey, natsNames, signApprovalMessage,
  type ApprovalCancel, type ApprovalJob,
} from '@portcullis/protocol';
import { startApprovalsApp, type ApprovalsApp } from '../src/app.js';
import type { ApprovalsEnv } from '../src/env.js';
import { makeJob, masterKeyHex, randomPrefix, seedSigningKey, testEnv, waitFor } from './support/stack.js';

const db = createPrismaClient(process.env.DATABASE_URL);
const master = masterKeyHex();
const conn = randomPrefix('conn-');
let env: ApprovalsEnv;
let app: ApprovalsApp;
let nc: NatsConnection;
let queue: Queue;
let publicJwk: JWK & { kid: string };
let hook: { server: Server; url: string; hits: { body: string; sig: string | undefined }[]; status: number };

async function verifyDecision(data: Uint8Array) {
  const { jws } = JSON.parse(new TextDecoder().decode(data)) as { jws: string };
  const { payload } = await compactVerify(jws, await importJWK(publicJwk, 'EdDSA'));
  return approvalDecisionSchema.parse(JSON.parse(new TextDecoder().decode(payload)));
}

function nextDecision(id: string, timeoutMs = 5000) {
  const sub = nc.subscribe(natsNames(env.NATS_PREFIX).approvalDecision(id), { max: 1, timeout: timeoutMs });
  return (async () => {
    for await (const m of sub) return verifyDecision(m.data);
    throw new Error('no decision');
  })();
}

function cancelMessage(job: ApprovalJob, reason: ApprovalCancel['reason'], key = deriveKey(env.PORTCULLIS_MASTER_KEY, 'event-signing')): string {
  return JSON.stringify(signApprovalMessage<ApprovalCancel>({ typ: 'approval-cancel', job, reason, at: new Date().toISOString() }, key));
}

beforeAll(async () => {
  ({ publicJwk } = await seedSigningKey(db, master));
  hook = { server: createServer(), url: '', hits: [], status: 200 };
  hook.server.on('request', (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      hook.hits.push({ body: Buffer.concat(chunks).toString('utf8'), sig: req.headers['x-portcullis-signature'] as string | undefined });
      res.writeHead(hook.status).end();
    });
  });
  await new Promise<void>((r) => hook.server.listen(0, '127.0.0.1', () => r()));
  hook.url = `http://127.0.0.1:${(hook.server.address() as AddressInfo).port}/hook`;
  env = testEnv({ PORTCULLIS_MASTER_KEY: master, APPROVALS_WEBHOOK_ATTEMPTS: '3' });
  app = await startApprovalsApp(env, { scopeConnectionPrefix: conn, webhookBackoffMs: 20 });
  nc = await connect({ servers: env.NATS_URL });
  queue = new Queue(APPROVALS_QUEUE, { connection: new Redis(env.REDIS_URL, { maxRetriesPerRequest: null }), prefix: env.APPROVALS_QUEUE_PREFIX });
  await queue.waitUntilReady();
});

afterAll(async () => {
  await queue?.obliterate({ force: true }).catch(() => undefined);
  await queue?.close();
  await app?.stop();
  await nc?.close();
  hook?.server.close();
  await db.approval.deleteMany({ where: { connection: { startsWith: conn } } });
  if (publicJwk) await db.signingKey.delete({ where: { kid: publicJwk.kid } });
  await db.$disconnect();
});

describe('approvals app', () => {
  it('persists a queued job as a pending approval, idempotently', async () => {
    const job = makeJob(conn, { timeoutSeconds: 120 });
    await queue.add('approval', job, { jobId: job.approvalId });
    const row = await waitFor(() => db.approval.findUnique({ where: { id: job.approvalId } }));
    expect(row).toMatchObject({ status: 'pending', identity: job.identity, statement: job.statement, rule: 'bulk-writes', mode: 'wait', webhookStatus: 'none' });
    expect(row.expiresAt.getTime() - new Date(job.requestedAt).getTime()).toBe(120_000);
    // the queue may redeliver; the row is not touched
    const again = await app.service.processJob(job);
    expect(again).toEqual({ approvalId: job.approvalId, inserted: false });
    const after = await db.approval.findUniqueOrThrow({ where: { id: job.approvalId } });
    expect(after).toEqual(row);
  });

  it('drops an invalid job without a row', async () => {
    const res = await app.service.processJob({ approvalId: 'nope' });
    expect(res.inserted).toBe(false);
  });

  it('sends the webhook with an HMAC signature the receiver can verify', async () => {
    hook.hits.length = 0;
    hook.status = 200;
    const job = makeJob(conn, { webhook: { url: hook.url } });
    await queue.add('approval', job, { jobId: job.approvalId });
    const row = await waitFor(async () => {
      const r = await db.approval.findUnique({ where: { id: job.approvalId } });
      return r?.webhookStatus?.startsWith('delivered') ? r : null;
    });
    expect(row.webhookStatus).toMatch(/^delivered \(200/);
    expect(hook.hits).toHaveLength(1);
    const { body, sig } = hook.hits[0];
    const want = `sha256=${createHmac('sha256', deriveKey(Buffer.from(master, 'hex'), 'webhook')).update(body).digest('hex')}`;
    expect(sig).toBe(want);
    const parsed = JSON.parse(body) as { type: string; approval: { id: string; statement: string }; links: { approve: string } };
    expect(parsed.type).toBe('approval.requested');
    expect(parsed.approval).toMatchObject({ id: job.approvalId, statement: job.statement });
    expect(parsed.links.approve).toMatch(new RegExp(`/v1/approvals/${job.approvalId}/approve$`));
  });

  it('takes the webhook from the policy document in Postgres, retries, and records a failure', async () => {
    hook.hits.length = 0;
    hook.status = 503;
    const policy = randomPrefix('pol-');
    await db.policy.create({ data: { name: policy, document: { name: policy, guardrails: [], approval: { approvers: ['approvers'], timeoutSeconds: 60, webhook: { url: hook.url } } } } });
    try {
      const job = makeJob(conn, { policy });
      await queue.add('approval', job, { jobId: job.approvalId });
      const row = await waitFor(async () => {
        const r = await db.approval.findUnique({ where: { id: job.approvalId } });
        return r?.webhookStatus?.startsWith('failed') ? r : null;
      });
      expect(row.webhookStatus).toBe('failed: http 503 after 3 attempts');
      expect(hook.hits).toHaveLength(3);
      expect(row.status).toBe('pending');
    } finally {
      hook.status = 200;
      await db.policy.delete({ where: { name: policy } });
    }
  });

  it('expires an undecided approval after its timeout and publishes a signed expired decision', async () => {
    const job = makeJob(conn, { timeoutSeconds: 1 });
    const decided = nextDecision(job.approvalId);
    await nc.flush();
    await queue.add('approval', job, { jobId: job.approvalId });
    const d = await decided;
    expect(d).toMatchObject({ approvalId: job.approvalId, status: 'expired', decidedBy: null });
    const row = await db.approval.findUniqueOrThrow({ where: { id: job.approvalId } });
    expect(row.status).toBe('expired');
    expect(row.decidedAt!.getTime()).toBeGreaterThanOrEqual(row.expiresAt.getTime());
  });

  it('records a signed cancel from the gateway as cancelled, and ignores a forged one', async () => {
    const job = makeJob(conn);
    await queue.add('approval', job, { jobId: job.approvalId });
    await waitFor(() => db.approval.findUnique({ where: { id: job.approvalId } }));
    // forged: signed with the wrong key
    nc.publish(approvalSubjects(env.NATS_PREFIX).cancel, cancelMessage(job, 'client-disconnected', randomBytes(32)));
    // unsigned garbage
    nc.publish(approvalSubjects(env.NATS_PREFIX).cancel, JSON.stringify({ typ: 'approval-cancel', job, reason: 'client-disconnected', at: new Date().toISOString() }));
    await nc.flush();
    await new Promise((r) => setTimeout(r, 300));
    expect((await db.approval.findUniqueOrThrow({ where: { id: job.approvalId } })).status).toBe('pending');
    expect(await app.metrics.rejected.get().then((m) => m.values.find((v) => v.labels.subject === 'cancel')?.value)).toBeGreaterThanOrEqual(2);

    const decided = nextDecision(job.approvalId);
    await nc.flush();
    nc.publish(approvalSubjects(env.NATS_PREFIX).cancel, cancelMessage(job, 'client-disconnected'));
    expect(await decided).toMatchObject({ status: 'cancelled' });
    const row = await db.approval.findUniqueOrThrow({ where: { id: job.approvalId } });
    expect(row).toMatchObject({ status: 'cancelled', comment: 'client disconnected while the statement was held' });
  });

  it('a cancel that overtakes the queue job is recorded, and the late job does not reopen it', async () => {
    const job = makeJob(conn);
    nc.publish(approvalSubjects(env.NATS_PREFIX).cancel, cancelMessage(job, 'client-disconnected'));
    const row = await waitFor(() => db.approval.findUnique({ where: { id: job.approvalId } }));
    expect(row.status).toBe('cancelled');
    await app.service.processJob(job);
    expect((await db.approval.findUniqueOrThrow({ where: { id: job.approvalId } })).status).toBe('cancelled');
  });

  it('consumes an approved one-time approval exactly once, with a signed reply', async () => {
    const job = makeJob(conn, { mode: 'one-time' });
    await app.service.processJob(job);
    const subjects = approvalSubjects(env.NATS_PREFIX);
    const key = deriveKey(env.PORTCULLIS_MASTER_KEY, 'event-signing');
    const ask = async () => {
      const nonce = randomBytes(12).toString('hex');
      const req = signApprovalMessage({ typ: 'approval-consume' as const, identity: job.identity, connection: job.connection, fingerprint: job.fingerprint!, nonce }, key);
      const m = await nc.request(subjects.consume, JSON.stringify(req), { timeout: 3000 });
      const { jws } = m.json<{ jws: string }>();
      const { payload } = await compactVerify(jws, await importJWK(publicJwk, 'EdDSA'));
      const body = JSON.parse(new TextDecoder().decode(payload)) as { nonce: string; approvalId: string | null };
      expect(body.nonce).toBe(nonce);
      return body.approvalId;
    };
    expect(await ask()).toBeNull(); // still pending
    await db.approval.update({ where: { id: job.approvalId }, data: { status: 'approved', decidedBy: 'bob', decidedAt: new Date() } });
    const results = await Promise.all([ask(), ask(), ask()]);
    expect(results.filter((r) => r === job.approvalId)).toHaveLength(1);
    expect(await ask()).toBeNull();
  });

  it('answers healthz, readyz and metrics', async () => {
    const base = `http://127.0.0.1:${app.port}`;
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    const ready = await fetch(`${base}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ checks: { database: 'ok', redis: 'ok', nats: 'ok' } });
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toContain('portcullis_approvals_jobs_total');
  });
});
