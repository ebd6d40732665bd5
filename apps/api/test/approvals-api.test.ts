import { compactVerify, importJWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { approvalDecisionSchema } from '@portcullis/protocol';
import { NatsService } from '../src/nats/nats.service.js';
import { TokensService } from '../src/auth/tokens.service.js';
import { controlEvents, startAuthStack, type AuthStack } from './auth-harness.js';
import { cleanup, makeApproval, makeGroup, makePerson, type TestPerson } from './approvals-support.js';

let stack: AuthStack;
let approvers: string;
let bob: TestPerson;
let bob2: TestPerson;
let carol: TestPerson;
let dave: TestPerson;
let conn: string;

async function nextDecision(id: string) {
  const nats = stack.app.get(NatsService);
  const sub = nats.nc.subscribe(nats.names.approvalDecision(id), { max: 1, timeout: 5000 });
  await nats.nc.flush();
  return (async () => {
    for await (const m of sub) {
      const { jws } = m.json<{ jws: string }>();
      const keys = stack.app.get(TokensService).publicJwks();
      const { payload, protectedHeader } = await compactVerify(jws, async (h) => importJWK(keys.find((k) => k.kid === h.kid)!, 'EdDSA'));
      expect(protectedHeader.alg).toBe('EdDSA');
      return approvalDecisionSchema.parse(JSON.parse(new TextDecoder().decode(payload)));
    }
    throw new Error('no decision');
  })();
}

beforeAll(async () => {
  stack = await startAuthStack();
  const s = stack.sfx;
  approvers = `apr-approvers-${s}`;
  conn = `apr-conn-${s}`;
  await makeGroup(stack.prisma, approvers, ['approver']);
  await makeGroup(stack.prisma, `apr-eng-${s}`, ['user']);
  bob = await makePerson(stack, `apr-bob-${s}`, [approvers]);
  bob2 = await makePerson(stack, `apr-bob2-${s}`, [approvers]);
  carol = await makePerson(stack, `apr-carol-${s}`, [approvers, `apr-eng-${s}`]);
  dave = await makePerson(stack, `apr-dave-${s}`, [`apr-eng-${s}`]);
});

afterAll(async () => {
  if (!stack) return;
  await cleanup(stack.prisma, stack.sfx);
  await stack.close();
});

describe('approvals api', () => {
  it('lists pending approvals for approvers and shows one by id', async () => {
    const a = await makeApproval(stack.prisma, { identity: carol.subject, connection: conn, approverGroups: [approvers] });
    const list = await stack.api(`/v1/approvals?status=pending&connection=${conn}`, { token: bob.token });
    expect(list.status).toBe(200);
    expect(list.body.map((x: { id: string }) => x.id)).toContain(a.id);
    expect(list.body.every((x: { status: string }) => x.status === 'pending')).toBe(true);
    const one = await stack.api(`/v1/approvals/${a.id}`, { token: bob.token });
    expect(one.status).toBe(200);
    expect(one.body).toMatchObject({ id: a.id, status: 'pending', identity: carol.subject, statement: 'DELETE FROM customers', rule: 'bulk-writes' });
    // dave is neither approver nor requester: sees nothing
    expect((await stack.api(`/v1/approvals?connection=${conn}`, { token: dave.token })).body).toEqual([]);
    expect((await stack.api(`/v1/approvals/${a.id}`, { token: dave.token })).status).toBe(404);
    // the requester sees their own
    expect((await stack.api(`/v1/approvals/${a.id}`, { token: carol.token })).status).toBe(200);
    expect((await stack.api('/v1/approvals?status=bogus', { token: bob.token })).status).toBe(400);
  });

  it('approve: publishes a signed decision on NATS and audits it; the decision is final', async () => {
    const a = await makeApproval(stack.prisma, { identity: carol.subject, connection: conn, approverGroups: [approvers] });
    const decided = nextDecision(a.id);
    const res = await stack.api(`/v1/approvals/${a.id}/approve`, { method: 'POST', token: bob.token, json: { comment: 'ok, go' } });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: 'approved', decidedBy: bob.subject, comment: 'ok, go' });
    expect(await decided).toMatchObject({ approvalId: a.id, status: 'approved', decidedBy: bob.subject, comment: 'ok, go' });
    const again = await stack.api(`/v1/approvals/${a.id}/deny`, { method: 'POST', token: bob2.token, json: {} });
    expect(again.status).toBe(409);
    expect(again.body.error).toMatchObject({ code: 'approval_already_decided' });
    expect(again.body.error.message).toContain(`already approved by ${bob.subject}`);
    const events = await controlEvents(stack);
    expect(events.find((e) => e.type === 'approval.decided' && e.data.target === a.id)).toMatchObject({ identity: bob.subject, data: { status: 'approved' } });
  });

  it('deny carries the comment to the gateway', async () => {
    const a = await makeApproval(stack.prisma, { identity: carol.subject, connection: conn, approverGroups: [approvers] });
    const decided = nextDecision(a.id);
    const res = await stack.api(`/v1/approvals/${a.id}/deny`, { method: 'POST', token: bob.token, json: { comment: 'not on a Friday' } });
    expect(res.status).toBe(200);
    expect(await decided).toMatchObject({ status: 'denied', comment: 'not on a Friday', decidedBy: bob.subject });
  });

  it('four-eyes: the requester may not decide, even as a member of the approver group', async () => {
    const a = await makeApproval(stack.prisma, { identity: carol.subject, connection: conn, approverGroups: [approvers] });
    const res = await stack.api(`/v1/approvals/${a.id}/approve`, { method: 'POST', token: carol.token, json: {} });
    expect(res.status).toBe(403);
    expect(res.body.error.code).toBe('four_eyes');
    expect(res.body.error.message).toMatch(/nobody decides their own request/);
    expect((await stack.prisma.approval.findUniqueOrThrow({ where: { id: a.id } })).status).toBe('pending');
  });

  it('only members of the approver groups (or admins) decide', async () => {
    const a = await makeApproval(stack.prisma, { identity: carol.subject, connection: conn, approverGroups: [approvers] });
    // dave may not see it (GET answers 404), so deciding it answers the same: nothing about who may, or its state
    expect((await stack.api(`/v1/approvals/${a.id}`, { token: dave.token })).status).toBe(404);
    for (const verb of ['approve', 'deny']) {
      const res = await stack.api(`/v1/approvals/${a.id}/${verb}`, { method: 'POST', token: dave.token, json: {} });
      expect(res.status).toBe(404);
      expect(res.body.error).toEqual({ code: 'approval_not_found', message: `approval ${a.id} does not exist` });
    }
    expect((await stack.api(`/v1/approvals/${a.id}/approve`, { method: 'POST', token: bob.token, json: {} })).status).toBe(200);
    const decided = await stack.api(`/v1/approvals/${a.id}/deny`, { method: 'POST', token: dave.token, json: {} });
    expect(decided.status).toBe(404); // not 409 "already approved by bob"
    expect(JSON.stringify(decided.body)).not.toContain(bob.subject);
    // an approver of another group is not enough either
    const b = await makeApproval(stack.prisma, { identity: carol.subject, connection: conn, approverGroups: ['some-other-group'] });
    expect((await stack.api(`/v1/approvals/${b.id}/approve`, { method: 'POST', token: bob.token, json: {} })).status).toBe(403);
    // admin (bootstrap) may
    expect((await stack.api(`/v1/approvals/${b.id}/approve`, { method: 'POST', json: {} })).status).toBe(200);
  });

  it('unknown approval → 404; bad body → 400', async () => {
    const r1 = await stack.api('/v1/approvals/00000000-0000-4000-8000-000000000000/approve', { method: 'POST', token: bob.token, json: {} });
    expect(r1.status).toBe(404);
    expect(r1.body.error.code).toBe('approval_not_found');
    expect((await stack.api('/v1/approvals/not-a-uuid/deny', { method: 'POST', token: bob.token, json: {} })).status).toBe(404);
    const a = await makeApproval(stack.prisma, { identity: carol.subject, connection: conn, approverGroups: [approvers] });
    const r2 = await stack.api(`/v1/approvals/${a.id}/approve`, { method: 'POST', token: bob.token, json: { comment: 5, extra: true } });
    expect(r2.status).toBe(400);
  });

  it('an expired approval cannot be decided: 409 with the reason, and it is recorded as expired', async () => {
    const a = await makeApproval(stack.prisma, { identity: carol.subject, connection: conn, approverGroups: [approvers], expiresInMs: -1000 });
    const decided = nextDecision(a.id);
    const res = await stack.api(`/v1/approvals/${a.id}/approve`, { method: 'POST', token: bob.token, json: {} });
    expect(res.status).toBe(409);
    expect(res.body.error.code).toBe('approval_expired');
    expect(res.body.error.message).toMatch(/expired at/);
    expect(await decided).toMatchObject({ status: 'expired' });
    expect((await stack.prisma.approval.findUniqueOrThrow({ where: { id: a.id } })).status).toBe('expired');
    const again = await stack.api(`/v1/approvals/${a.id}/approve`, { method: 'POST', token: bob.token, json: {} });
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('approval_expired');
  });

  it('concurrent decisions: exactly one wins', async () => {
    const a = await makeApproval(stack.prisma, { identity: carol.subject, connection: conn, approverGroups: [approvers] });
    const tries = await Promise.all(
      [bob, bob2, bob, bob2, bob, bob2].map((p, i) => stack.api(`/v1/approvals/${a.id}/${i % 2 ? 'deny' : 'approve'}`, { method: 'POST', token: p.token, json: { comment: `try ${i}` } })),
    );
    expect(tries.filter((r) => r.status === 200)).toHaveLength(1);
    expect(tries.filter((r) => r.status === 409)).toHaveLength(5);
    const row = await stack.prisma.approval.findUniqueOrThrow({ where: { id: a.id } });
    const winner = tries.find((r) => r.status === 200)!.body;
    expect(row.status).toBe(winner.status);
    expect(row.comment).toBe(winner.comment);
  });
});
