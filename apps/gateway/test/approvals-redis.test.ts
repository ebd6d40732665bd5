import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PrivateRedis } from '../../../test/support/private-redis.js';
import { freePort } from '../../../test/support/free-port.js';
import { startApprovalsStack, type ApprovalsStack } from '../../../test/support/approvals-stack.js';

let s: ApprovalsStack;
let redis: PrivateRedis;

beforeAll(async () => {
  redis = new PrivateRedis(await freePort());
  await redis.start();
  s = await startApprovalsStack({ timeoutSeconds: 30, redisUrl: redis.url });
}, 90_000);

afterAll(async () => {
  await s?.stop();
  await redis?.stop();
});

async function until(cond: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('approvals survive a Redis restart (private redis-server, no persistence)', () => {
  it('an approval already persisted stays decidable; the held session resumes; new approvals work after', async () => {
    const sub = 'carol-redis1-' + Date.now();
    const c = await s.pgClient(await s.credential({ sub }));
    try {
      const held = c.query('INSERT INTO log (v) VALUES (1001) /*hold*/ RETURNING v');
      const [pending] = await s.waitPending(sub);
      await redis.stop();
      await redis.start(); // empty: every queue key is gone
      expect((await s.decide(pending.id, 'approve')).status).toBe(200);
      expect((await held).rows).toEqual([{ v: 1001 }]);
      // the worker and the gateway's queue reconnected
      const again = c.query('INSERT INTO log (v) VALUES (1002) /*hold*/');
      const rows = await s.waitPending(sub);
      expect(rows).toHaveLength(1);
      await s.decide(rows[0].id, 'approve');
      await again;
      expect((await s.h.targetQuery('SELECT v FROM log WHERE v IN (1001, 1002) ORDER BY v')).rows).toEqual([{ v: 1001 }, { v: 1002 }]);
    } finally {
      await c.end();
    }
  });

  it('a job Redis lost before the approvals app took it is enqueued again when Redis is back', async () => {
    const sub = 'carol-redis2-' + Date.now();
    await s.restartApp({ stopOnly: true }); // nobody consumes the queue now
    const c = await s.pgClient(await s.credential({ sub }));
    try {
      const held = c.query('INSERT INTO log (v) VALUES (2001) /*hold*/ RETURNING v');
      await new Promise((r) => setTimeout(r, 300)); // the job sits in Redis (the api has recorded the row already)
      await redis.stop();
      await redis.start(); // the job is lost
      await s.restartApp();
      const [pending] = await s.waitPending(sub); // re-enqueued by the gateway on reconnect, persisted by the app
      const reenq = await s.h.gateway.metrics.registry.getSingleMetricAsString('portcullis_gateway_approvals_reenqueued_total');
      expect(reenq).toMatch(/portcullis_gateway_approvals_reenqueued_total [1-9]/);
      expect((await s.decide(pending.id, 'approve')).status).toBe(200);
      expect((await held).rows).toEqual([{ v: 2001 }]);
    } finally {
      await c.end();
    }
  });

  it('expiry: an undecided approval expires after the policy timeout → 42501, recorded as expired', async () => {
    const policy = s.h.snapshotInput.policies[0];
    const doc = policy.document as { approval: { timeoutSeconds: number } };
    await s.h.putSnapshot({ policies: [{ ...policy, version: policy.version + 1, document: { ...doc, approval: { ...doc.approval, timeoutSeconds: 1 } } }] });
    const sub = 'carol-expire-' + Date.now();
    const c = await s.pgClient(await s.credential({ sub }));
    try {
      const t0 = Date.now();
      const err = await c.query('DELETE FROM items').then(() => null, (e: { code?: string; message: string }) => e);
      const waited = Date.now() - t0;
      expect(err?.code).toBe('42501');
      expect(err?.message).toMatch(/expired/);
      expect(waited).toBeGreaterThanOrEqual(900);
      expect(waited).toBeLessThan(2900); // expired by the approvals app, not the gateway's grace timer
      const id = /approval ([0-9a-f-]{36})/.exec(err!.message)![1];
      await until(async () => (await s.prisma.approval.findUniqueOrThrow({ where: { id } })).status === 'expired');
      const late = await s.decide(id, 'approve');
      expect(late.status).toBe(409);
      expect(late.body.error.code).toBe('approval_expired');
      expect((await c.query('SELECT count(*)::int AS n FROM items')).rows[0].n).toBe(5);
    } finally {
      await c.end();
    }
  });
});
