import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { controlEvents, startAuthStack, type AuthStack } from './auth-harness.js';
import { cleanup, makeGroup, makePerson, type TestPerson } from './approvals-support.js';

let stack: AuthStack;
let bob: TestPerson;
let carol: TestPerson;
let erin: TestPerson;
let dave: TestPerson;
let conn: string;

beforeAll(async () => {
  stack = await startAuthStack();
  const s = stack.sfx;
  conn = `ar-conn-${s}`;
  await makeGroup(stack.prisma, `ar-approvers-${s}`, ['approver']);
  await makeGroup(stack.prisma, `ar-eng-${s}`, ['user']);
  await makeGroup(stack.prisma, `ar-dba-${s}`, ['user']);
  await makeGroup(stack.prisma, `ar-other-approvers-${s}`, ['approver']);
  // the connection's policy names who approves for it
  await stack.prisma.policy.create({ data: { name: `ar-policy-${s}`, version: 1, document: { name: `ar-policy-${s}`, guardrails: [], approval: { approvers: [`ar-approvers-${s}`] } } } });
  await stack.prisma.connection.create({ data: { name: conn, host: '127.0.0.1', port: 5432, database: 'postgres', username: 'postgres', allowedGroups: [`ar-dba-${s}`], policy: `ar-policy-${s}` } });
  bob = await makePerson(stack, `ar-bob-${s}`, [`ar-approvers-${s}`]);
  dave = await makePerson(stack, `ar-dave-${s}`, [`ar-other-approvers-${s}`]);
  carol = await makePerson(stack, `ar-carol-${s}`, [`ar-eng-${s}`]);
  erin = await makePerson(stack, `ar-erin-${s}`, [`ar-eng-${s}`]);
});

afterAll(async () => {
  if (!stack) return;
  await cleanup(stack.prisma, stack.sfx);
  await stack.prisma.policy.deleteMany({ where: { name: `ar-policy-${stack.sfx}` } });
  await stack.close();
});

describe('access requests', () => {
  it('a user asks, an approver grants, the credentials route honours it until it ends', async () => {
    const denied = await stack.api(`/v1/connections/${conn}/credentials`, { method: 'POST', token: carol.token, json: {} });
    expect(denied.status).toBe(403);

    const req = await stack.api('/v1/access-requests', { method: 'POST', token: carol.token, json: { connection: conn, durationSeconds: 600, reason: 'incident 42' } });
    expect(req.status).toBe(201);
    expect(req.body).toMatchObject({ identity: carol.subject, connection: conn, status: 'pending', active: false, durationSeconds: 600 });
    const id = req.body.id as string;

    // four-eyes
    const own = await stack.api(`/v1/access-requests/${id}/approve`, { method: 'POST', token: carol.token, json: {} });
    expect(own.status).toBe(403);
    expect(own.body.error.code).toBe('four_eyes');
    // a plain user who did not ask may not see it: deciding answers 404 as GET does
    const other = await stack.api(`/v1/access-requests/${id}/approve`, { method: 'POST', token: erin.token, json: {} });
    expect(other.status).toBe(404);
    expect(other.body.error.code).toBe('access_request_not_found');
    // an approver, but not one the connection's policy names
    const elsewhere = await stack.api(`/v1/access-requests/${id}/approve`, { method: 'POST', token: dave.token, json: {} });
    expect(elsewhere.status).toBe(403);
    expect(elsewhere.body.error).toMatchObject({ code: 'not_an_approver', message: expect.stringContaining(`connection "${conn}"`) });

    // approvers see it pending; the requester sees their own, others nothing
    expect((await stack.api(`/v1/access-requests?status=pending&connection=${conn}`, { token: bob.token })).body.map((r: { id: string }) => r.id)).toContain(id);
    expect((await stack.api(`/v1/access-requests?connection=${conn}`, { token: erin.token })).body).toEqual([]);
    expect((await stack.api(`/v1/access-requests/${id}`, { token: carol.token })).status).toBe(200);

    const before = Date.now();
    const ok = await stack.api(`/v1/access-requests/${id}/approve`, { method: 'POST', token: bob.token, json: { comment: 'for the incident' } });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ status: 'approved', active: true, decidedBy: bob.subject, comment: 'for the incident' });
    const until = new Date(ok.body.grantedUntil as string).getTime();
    expect(until).toBeGreaterThanOrEqual(before + 600_000 - 1000);
    expect(until).toBeLessThanOrEqual(Date.now() + 600_000 + 1000);

    const cred = await stack.api(`/v1/connections/${conn}/credentials`, { method: 'POST', token: carol.token, json: {} });
    expect([200, 201]).toContain(cred.status);
    expect(cred.body.grant).toBe(id);
    expect(new Date(cred.body.expiresAt as string).getTime()).toBeLessThanOrEqual(until);

    const again = await stack.api(`/v1/access-requests/${id}/deny`, { method: 'POST', token: bob.token, json: {} });
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('access_request_already_decided');
    // someone who may not see it learns nothing about its state or decider: the same 404 as GET and a missing id
    for (const route of ['', '/approve', '/deny']) {
      const r = await stack.api(`/v1/access-requests/${id}${route}`, route ? { method: 'POST', token: erin.token, json: {} } : { token: erin.token });
      expect(r.status).toBe(404);
      expect(r.body.error).toMatchObject({ code: 'access_request_not_found', message: `access request ${id} does not exist` });
      expect(JSON.stringify(r.body)).not.toContain(bob.subject);
    }

    // the grant ends: the credentials route refuses again
    await stack.prisma.accessRequest.update({ where: { id }, data: { grantedUntil: new Date(Date.now() - 1000) } });
    expect((await stack.api(`/v1/connections/${conn}/credentials`, { method: 'POST', token: carol.token, json: {} })).status).toBe(403);
    expect((await stack.api(`/v1/access-requests/${id}`, { token: carol.token })).body).toMatchObject({ status: 'expired', active: false });

    const events = await controlEvents(stack);
    const mine = events.filter((e) => e.type === 'access-request.changed' && e.data.target === id).map((e) => e.data.action);
    expect(mine).toEqual(['request', 'approve']);
  });

  it('deny, and bad input', async () => {
    const req = await stack.api('/v1/access-requests', { method: 'POST', token: erin.token, json: { connection: conn, durationSeconds: 120, reason: 'curious' } });
    expect(req.status).toBe(201);
    const no = await stack.api(`/v1/access-requests/${req.body.id}/deny`, { method: 'POST', token: bob.token, json: { comment: 'no need' } });
    expect(no.status).toBe(200);
    expect(no.body).toMatchObject({ status: 'denied', grantedUntil: null, comment: 'no need' });
    expect((await stack.api(`/v1/connections/${conn}/credentials`, { method: 'POST', token: erin.token, json: {} })).status).toBe(403);

    const tooLong = await stack.api('/v1/access-requests', { method: 'POST', token: erin.token, json: { connection: conn, durationSeconds: 9 * 3600, reason: 'x' } });
    expect(tooLong.status).toBe(400);
    expect(tooLong.body.error.message).toContain('durationSeconds');
    const noReason = await stack.api('/v1/access-requests', { method: 'POST', token: erin.token, json: { connection: conn, durationSeconds: 120 } });
    expect(noReason.status).toBe(400);
    expect(noReason.body.error.message).toContain('reason');
    const unknownConn = await stack.api('/v1/access-requests', { method: 'POST', token: erin.token, json: { connection: `nope-${stack.sfx}`, durationSeconds: 120, reason: 'x' } });
    expect(unknownConn.status).toBe(404);
    const unknown = await stack.api('/v1/access-requests/00000000-0000-4000-8000-000000000000/approve', { method: 'POST', token: bob.token, json: {} });
    expect(unknown.status).toBe(404);
  });

  it('a request nobody decided within a day can no longer be granted', async () => {
    const req = await stack.api('/v1/access-requests', { method: 'POST', token: erin.token, json: { connection: conn, durationSeconds: 120, reason: 'old' } });
    await stack.prisma.accessRequest.update({ where: { id: req.body.id }, data: { createdAt: new Date(Date.now() - 25 * 3600 * 1000) } });
    const res = await stack.api(`/v1/access-requests/${req.body.id}/approve`, { method: 'POST', token: bob.token, json: {} });
    expect(res.status).toBe(409);
    expect(res.body.error.code).toBe('access_request_expired');
  });

  it('concurrent grants: exactly one wins', async () => {
    const req = await stack.api('/v1/access-requests', { method: 'POST', token: erin.token, json: { connection: conn, durationSeconds: 120, reason: 'race' } });
    const tries = await Promise.all(Array.from({ length: 5 }, () => stack.api(`/v1/access-requests/${req.body.id}/approve`, { method: 'POST', token: bob.token, json: {} })));
    expect(tries.filter((r) => r.status === 200)).toHaveLength(1);
    expect(tries.filter((r) => r.status === 409)).toHaveLength(4);
  });

  it('revoke: an approver ends a running grant early (reason kept, event recorded); not running → 409, twice → 409, outsiders → 404, the requester and other approvers → 403', async () => {
    const req = await stack.api('/v1/access-requests', { method: 'POST', token: carol.token, json: { connection: conn, durationSeconds: 600, reason: 'incident 43' } });
    const id = req.body.id as string;
    const pending = await stack.api(`/v1/access-requests/${id}/revoke`, { method: 'POST', token: bob.token, json: {} });
    expect(pending.status).toBe(409);
    expect(pending.body.error).toMatchObject({ code: 'access_request_not_active', message: expect.stringContaining('is pending') });
    expect((await stack.api(`/v1/access-requests/${id}/approve`, { method: 'POST', token: bob.token, json: {} })).status).toBe(200);
    expect((await stack.api(`/v1/connections/${conn}/credentials`, { method: 'POST', token: carol.token, json: {} })).body.grant).toBe(id);

    const outsider = await stack.api(`/v1/access-requests/${id}/revoke`, { method: 'POST', token: erin.token, json: {} });
    expect(outsider.status).toBe(404);
    expect(outsider.body.error).toMatchObject({ code: 'access_request_not_found', message: `access request ${id} does not exist` });
    const own = await stack.api(`/v1/access-requests/${id}/revoke`, { method: 'POST', token: carol.token, json: {} });
    expect(own.status).toBe(403);
    expect(own.body.error.code).toBe('not_an_approver');
    expect((await stack.api(`/v1/access-requests/${id}/revoke`, { method: 'POST', token: dave.token, json: {} })).status).toBe(403);
    const badBody = await stack.api(`/v1/access-requests/${id}/revoke`, { method: 'POST', token: bob.token, json: { reason: 'x', extra: 1 } });
    expect(badBody.status).toBe(400);

    const ok = await stack.api(`/v1/access-requests/${id}/revoke`, { method: 'POST', token: bob.token, json: { reason: 'incident closed' } });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ status: 'revoked', active: false, revokedBy: bob.subject, revokeReason: 'incident closed' });
    expect(new Date(ok.body.revokedAt as string).getTime()).toBeLessThan(new Date(ok.body.grantedUntil as string).getTime());
    // no new credential rests on it
    const refused = await stack.api(`/v1/connections/${conn}/credentials`, { method: 'POST', token: carol.token, json: {} });
    expect(refused.status).toBe(403);
    const twice = await stack.api(`/v1/access-requests/${id}/revoke`, { method: 'POST', token: bob.token, json: {} });
    expect(twice.status).toBe(409);
    expect(twice.body.error).toMatchObject({ code: 'access_request_already_revoked', message: expect.stringContaining(`already revoked by ${bob.subject}`) });
    // a revoked request is decided for good
    expect((await stack.api(`/v1/access-requests/${id}/approve`, { method: 'POST', token: bob.token, json: {} })).status).toBe(409);
    expect((await stack.api(`/v1/access-requests?status=revoked&connection=${conn}`, { token: bob.token })).body.map((r: { id: string }) => r.id)).toEqual([id]);
    expect((await stack.api(`/v1/access-requests?status=approved&connection=${conn}`, { token: bob.token })).body.map((r: { id: string }) => r.id)).not.toContain(id);

    const events = await controlEvents(stack);
    const mine = events.filter((e) => e.type === 'access-request.changed' && e.data.target === id);
    expect(mine.map((e) => e.data.action)).toEqual(['request', 'approve', 'revoke']);
    expect(mine[2]).toMatchObject({ identity: bob.subject, data: { after: { status: 'revoked', reason: 'incident closed', identity: carol.subject, connection: conn } } });
  });

  it('concurrent revocations: exactly one wins', async () => {
    const req = await stack.api('/v1/access-requests', { method: 'POST', token: erin.token, json: { connection: conn, durationSeconds: 120, reason: 'race' } });
    await stack.api(`/v1/access-requests/${req.body.id}/approve`, { method: 'POST', token: bob.token, json: {} });
    const tries = await Promise.all(Array.from({ length: 5 }, () => stack.api(`/v1/access-requests/${req.body.id}/revoke`, { method: 'POST', token: bob.token, json: {} })));
    expect(tries.filter((r) => r.status === 200)).toHaveLength(1);
    expect(tries.filter((r) => r.status === 409)).toHaveLength(4);
  });
});
