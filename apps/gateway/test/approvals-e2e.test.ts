import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApprovalsStack, type ApprovalsStack } from '../../../test/support/approvals-stack.js';
import { readSessionEvents, waitFor } from './support/harness.js';
import { testKeyPair } from '../../../test/support/test-keys.js';

let s: ApprovalsStack;

beforeAll(async () => {
  s = await startApprovalsStack({ timeoutSeconds: 30 });
}, 90_000);

afterAll(async () => {
  await s?.stop();
});

function runPsql(uri: string, sql: string): { done: Promise<{ code: number | null; stdout: string; stderr: string }>; stderr: () => string } {
  const p = spawn('psql', [uri, '-X', '-v', 'ON_ERROR_STOP=1', '-c', sql], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  p.stdout.on('data', (b: Buffer) => { stdout += b.toString(); });
  p.stderr.on('data', (b: Buffer) => { stderr += b.toString(); });
  return { done: new Promise((resolve) => p.on('close', (code) => resolve({ code, stdout, stderr }))), stderr: () => stderr };
}

async function until(cond: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('approvals through the gateway', () => {
  it('psql: the statement is held with a notice naming the approval, runs exactly once on approve, and streams its result', async () => {
    const sub = 'carol-psql-' + Date.now();
    const token = await s.credential({ sub });
    const run = runPsql(s.uri(token), 'INSERT INTO log (v) VALUES (42) /*hold*/ RETURNING v');
    const [pending] = await s.waitPending(sub);
    await until(() => run.stderr().includes(pending.id));
    expect(run.stderr()).toMatch(new RegExp(`NOTICE:  approval ${pending.id} required by rule bulk-writes: writes like this need a second pair of eyes\\. Approve with: POST /v1/approvals/${pending.id}/approve`));
    expect((await s.h.targetQuery('SELECT count(*)::int AS n FROM log WHERE v = 42')).rows[0].n).toBe(0);
    const res = await s.decide(pending.id, 'approve', 'fine');
    expect(res.status).toBe(200);
    const out = await run.done;
    expect(out.code).toBe(0);
    expect(out.stdout).toMatch(/\b42\b/);
    expect(out.stdout).toContain('INSERT 0 1');
    expect((await s.h.targetQuery('SELECT count(*)::int AS n FROM log WHERE v = 42')).rows[0].n).toBe(1);
  });

  it('pg driver: deny → 42501 with the approver comment, and the session goes on', async () => {
    const sub = 'carol-deny-' + Date.now();
    const c = await s.pgClient(await s.credential({ sub }));
    try {
      const notices: string[] = [];
      c.on('notice', (n) => notices.push(n.message ?? ''));
      const held = c.query('DELETE FROM items').then(() => null, (e: { code?: string; message: string }) => e);
      const [pending] = await s.waitPending(sub);
      expect((await s.decide(pending.id, 'deny', 'not during business hours')).status).toBe(200);
      const err = await held;
      expect(err?.code).toBe('42501');
      expect(err?.message).toContain(`approval ${pending.id} denied by`);
      expect(err?.message).toContain('not during business hours');
      expect(notices.some((n) => n.includes(pending.id))).toBe(true);
      expect((await c.query('SELECT count(*)::int AS n FROM items')).rows[0].n).toBe(5);
      const row = await s.prisma.approval.findUniqueOrThrow({ where: { id: pending.id } });
      expect(row).toMatchObject({ status: 'denied', comment: 'not during business hours' });
    } finally {
      await c.end();
    }
  });

  it('pg driver, extended protocol: a parameterised statement is held and resumed by approval', async () => {
    const sub = 'carol-ext-' + Date.now();
    const c = await s.pgClient(await s.credential({ sub }));
    try {
      const held = c.query('INSERT INTO log (v) VALUES ($1) /*hold*/ RETURNING v', [77]);
      const [pending] = await s.waitPending(sub);
      const t0 = Date.now();
      expect((await s.decide(pending.id, 'approve')).status).toBe(200);
      const r = await held;
      expect(Date.now() - t0).toBeLessThan(2000);
      expect(r.rows).toEqual([{ v: 77 }]);
      expect((await c.query('SELECT count(*)::int AS n FROM log WHERE v = 77')).rows[0].n).toBe(1);
    } finally {
      await c.end();
    }
  });

  it('only the held session waits: other sessions flow meanwhile', async () => {
    const sub = 'carol-flow-' + Date.now();
    const held = await s.pgClient(await s.credential({ sub }));
    const other = await s.pgClient(await s.credential({ sub: sub + '-other' }));
    try {
      const p = held.query('DELETE FROM items WHERE id = 5');
      const [pending] = await s.waitPending(sub);
      const t0 = Date.now();
      for (let i = 0; i < 20; i++) await other.query('SELECT 1');
      expect(Date.now() - t0).toBeLessThan(2000);
      await s.decide(pending.id, 'approve');
      await p;
      expect((await other.query('SELECT count(*)::int AS n FROM items')).rows[0].n).toBe(4);
    } finally {
      await held.end();
      await other.end();
    }
  });

  it('a client that disconnects while held cancels its approval; a later decision runs nothing', async () => {
    const sub = 'carol-gone-' + Date.now();
    const c = await s.pgClient(await s.credential({ sub }));
    void c.query('INSERT INTO log (v) VALUES (99) /*hold*/').catch(() => undefined);
    const [pending] = await s.waitPending(sub);
    (c as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
    await until(async () => (await s.prisma.approval.findUniqueOrThrow({ where: { id: pending.id } })).status === 'cancelled', 5000);
    const res = await s.decide(pending.id, 'approve');
    expect(res.status).toBe(409);
    expect(res.body.error.message).toContain('already cancelled');
    expect((await s.h.targetQuery('SELECT count(*)::int AS n FROM log WHERE v = 99')).rows[0].n).toBe(0);
  });

  it('two gateways: one decision resumes only the session that holds it', async () => {
    const g2 = await s.addGateway();
    const subA = 'carol-gwa-' + Date.now();
    const subB = 'carol-gwb-' + Date.now();
    const a = await s.pgClient(await s.credential({ sub: subA }), s.h.gateway);
    const b = await s.pgClient(await s.credential({ sub: subB }), g2);
    try {
      let aDone = false;
      const pa = a.query('INSERT INTO log (v) VALUES (501) /*hold*/').then(() => { aDone = true; }, (e: Error) => { aDone = true; return e; });
      const pb = b.query('INSERT INTO log (v) VALUES (502) /*hold*/');
      const [ra] = await s.waitPending(subA);
      const [rb] = await s.waitPending(subB);
      expect((await s.prisma.approval.findUniqueOrThrow({ where: { id: rb.id } })).gateway).toBe(g2.id);
      await s.decide(rb.id, 'approve');
      await pb;
      await new Promise((r) => setTimeout(r, 200));
      expect(aDone).toBe(false);
      expect((await s.h.targetQuery('SELECT v FROM log WHERE v IN (501, 502) ORDER BY v')).rows).toEqual([{ v: 502 }]);
      await s.decide(ra.id, 'approve');
      await pa;
      expect((await s.h.targetQuery('SELECT v FROM log WHERE v IN (501, 502) ORDER BY v')).rows).toEqual([{ v: 501 }, { v: 502 }]);
    } finally {
      await a.end();
      await b.end();
    }
  });

  it('a forged decision on the NATS subject is ignored and counted', async () => {
    const sub = 'carol-forge-' + Date.now();
    const c = await s.pgClient(await s.credential({ sub }));
    try {
      let done = false;
      const p = c.query('INSERT INTO log (v) VALUES (666) /*hold*/').finally(() => { done = true; });
      const [pending] = await s.waitPending(sub);
      const { natsNames } = await import('@portcullis/protocol');
      const { SignJWT, CompactSign } = await import('jose');
      void SignJWT;
      const { privateKey } = testKeyPair('EdDSA');
      const payload = { typ: 'approval-decision', approvalId: pending.id, status: 'approved', decidedBy: 'mallory', comment: null, decidedAt: new Date().toISOString() };
      const forged = await new CompactSign(new TextEncoder().encode(JSON.stringify(payload))).setProtectedHeader({ alg: 'EdDSA', kid: s.key.kid }).sign(privateKey);
      const subject = natsNames(s.h.natsPrefix).approvalDecision(pending.id);
      s.h.nc.publish(subject, JSON.stringify({ jws: forged }));
      s.h.nc.publish(subject, JSON.stringify(payload));
      s.h.nc.publish(subject, 'garbage');
      await s.h.nc.flush();
      await new Promise((r) => setTimeout(r, 300));
      expect(done).toBe(false);
      const metrics = await s.h.gateway.metrics.registry.getSingleMetricAsString('portcullis_gateway_approvals_forged_total');
      expect(metrics).toMatch(/portcullis_gateway_approvals_forged_total [3-9]/);
      await s.decide(pending.id, 'deny', 'forgery test');
      await expect(p).rejects.toMatchObject({ code: '42501' });
      expect((await s.h.targetQuery('SELECT count(*)::int AS n FROM log WHERE v = 666')).rows[0].n).toBe(0);
    } finally {
      await c.end();
    }
  });

  it('fail-fast credential: fails at once with the approval id; after approval the identical statement runs once', async () => {
    const sub = 'agent-ff-' + Date.now();
    const token = await s.credential({ sub, amode: 'fail-fast' });
    const c = await s.pgClient(token);
    try {
      const t0 = Date.now();
      const err = await c.query('INSERT INTO log (v) VALUES (808) /*hold*/').then(() => null, (e: { code?: string; message: string }) => e);
      expect(Date.now() - t0).toBeLessThan(1500);
      expect(err?.code).toBe('42501');
      const id = /approval ([0-9a-f-]{36})/.exec(err!.message)?.[1];
      expect(id).toBeTruthy();
      const [pending] = await s.waitPending(sub);
      expect(pending).toMatchObject({ id, mode: 'one-time' });
      expect((await s.decide(id!, 'approve')).status).toBe(200);
      // identical statement (whitespace aside) runs once
      await c.query('INSERT  INTO log (v)\n VALUES (808) /*hold*/');
      expect((await s.h.targetQuery('SELECT count(*)::int AS n FROM log WHERE v = 808')).rows[0].n).toBe(1);
      expect((await s.prisma.approval.findUniqueOrThrow({ where: { id: id! } })).consumedAt).not.toBeNull();
      // a second run needs a new approval
      const again = await c.query('INSERT INTO log (v) VALUES (808) /*hold*/').then(() => null, (e: { code?: string; message: string }) => e);
      expect(again?.code).toBe('42501');
      expect(again?.message).not.toContain(id!);
      // another statement is not covered by the approval
      const other = await c.query('INSERT INTO log (v) VALUES (809) /*hold*/').then(() => null, (e: { code?: string }) => e);
      expect(other?.code).toBe('42501');
    } finally {
      await c.end();
    }
  });

  it('records approval.requested and approval.decided session events', async () => {
    // events go out in batches every few ms: wait until both kinds are on the stream
    let types = new Set<unknown>();
    await waitFor(async () => {
      types = new Set((await readSessionEvents(s.h, undefined, 1)).map((e) => e.type));
      return types.has('approval.requested') && types.has('approval.decided');
    }, 5000, 50).catch(() => undefined);
    expect(types.has('approval.requested')).toBe(true);
    expect(types.has('approval.decided')).toBe(true);
  });
});
