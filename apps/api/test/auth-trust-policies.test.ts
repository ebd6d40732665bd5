import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientCredentialsToken } from '../../../test/support/dev-idp-login.js';
import { controlEvents, startAuthStack, type AuthStack } from './auth-harness.js';

let s: AuthStack;
let engineers: string;
let agentToken: string;

const policy = (over: Record<string, unknown> = {}) => ({
  name: `tp-${s.sfx}`,
  issuer: 'https://token.actions.githubusercontent.com',
  audience: 'portcullis',
  subjectPattern: 'repo:acme/app:*',
  identity: `agent:gha-${s.sfx}`,
  groups: [engineers],
  ...over,
});

beforeAll(async () => {
  s = await startAuthStack();
  engineers = `engineers-${s.sfx}`;
  expect((await s.api('/v1/groups', { method: 'POST', json: { name: engineers, roles: ['user'] } })).status).toBe(201);
  // A non-admin caller: the dev IdP's demo-agent through its own trust policy.
  expect((await s.api('/v1/trust-policies', {
    method: 'POST',
    json: { name: `demo-${s.sfx}`, issuer: s.idp.issuer, audience: 'portcullis', subjectPattern: 'demo-agent', identity: `agent:demo-${s.sfx}`, groups: [engineers] },
  })).status).toBe(201);
  const workload = await clientCredentialsToken(s.idp.issuer, 'demo-agent', 'demo-agent-secret');
  const r = await s.api('/v1/auth/token', {
    token: null, method: 'POST',
    json: { grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange', subject_token: workload, subject_token_type: 'urn:ietf:params:oauth:token-type:jwt' },
  });
  expect(r.status).toBe(200);
  agentToken = r.body.access_token;
});

afterAll(async () => {
  if (!s) return;
  await s.prisma.trustPolicy.deleteMany({ where: { name: { endsWith: `-${s.sfx}` } } });
  await s.prisma.identity.deleteMany({ where: { subject: `agent:demo-${s.sfx}` } });
  await s.prisma.group.deleteMany({ where: { name: engineers } });
  await s.close();
});

describe('/v1/trust-policies', () => {
  it('creates, lists and reads a policy (admin), with an audit event', async () => {
    const created = await s.api('/v1/trust-policies', { method: 'POST', json: policy() });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ ...policy(), jwksUri: null, id: expect.any(String) });

    const list = await s.api('/v1/trust-policies');
    expect(list.status).toBe(200);
    expect(list.body.map((p: { name: string }) => p.name)).toContain(`tp-${s.sfx}`);
    expect((await s.api(`/v1/trust-policies/tp-${s.sfx}`)).body.identity).toBe(`agent:gha-${s.sfx}`);

    const events = await controlEvents(s);
    expect(events).toContainEqual(expect.objectContaining({
      type: 'trust-policy.changed', identity: 'bootstrap', data: expect.objectContaining({ action: 'create', target: `tp-${s.sfx}` }),
    }));
  });

  it('refuses a duplicate name with 409', async () => {
    const r = await s.api('/v1/trust-policies', { method: 'POST', json: policy() });
    expect(r.status).toBe(409);
  });

  it.each([
    { name: 'missing group', over: () => ({ name: `g-${s.sfx}`, groups: [engineers, `nope-${s.sfx}`] }), field: () => new RegExp(`nope-${s.sfx}`) },
    { name: 'identity not an agent', over: () => ({ name: `i-${s.sfx}`, identity: 'alice' }), field: () => /identity/ },
    { name: 'issuer not a URL', over: () => ({ name: `u-${s.sfx}`, issuer: 'not a url' }), field: () => /issuer/ },
    { name: 'unknown field', over: () => ({ name: `f-${s.sfx}`, secret: 'x' }), field: () => /secret/ },
    { name: 'missing audience', over: () => ({ name: `a-${s.sfx}`, audience: undefined }), field: () => /audience/ },
    { name: 'jwksUri not http(s)', over: () => ({ name: `j-${s.sfx}`, jwksUri: 'file:///etc/passwd' }), field: () => /jwksUri/ },
  ])('refuses $name with 400 naming the field', async ({ over, field }) => {
    const r = await s.api('/v1/trust-policies', { method: 'POST', json: policy(over()) });
    expect(r.status).toBe(400);
    expect(r.body.error.message).toMatch(field());
  });

  it('accepts an issuer that is not a URL when jwksUri is given (legacy Kubernetes tokens)', async () => {
    const r = await s.api('/v1/trust-policies', {
      method: 'POST',
      json: policy({ name: `k8s-${s.sfx}`, issuer: 'kubernetes/serviceaccount', jwksUri: 'https://kube.example.test/openid/v1/jwks' }),
    });
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ issuer: 'kubernetes/serviceaccount', jwksUri: 'https://kube.example.test/openid/v1/jwks' });
  });

  it('is for admins only', async () => {
    expect((await s.api('/v1/trust-policies', { token: null })).status).toBe(401);
    expect((await s.api('/v1/trust-policies', { token: agentToken })).status).toBe(403);
    expect((await s.api('/v1/trust-policies', { token: agentToken, method: 'POST', json: policy({ name: `x-${s.sfx}` }) })).status).toBe(403);
  });

  it('deletes a policy, with an audit event', async () => {
    expect((await s.api(`/v1/trust-policies/tp-${s.sfx}`, { method: 'DELETE' })).status).toBe(204);
    expect((await s.api(`/v1/trust-policies/tp-${s.sfx}`)).status).toBe(404);
    const events = await controlEvents(s);
    expect(events.some((e) => e.type === 'trust-policy.changed' && e.data.action === 'delete')).toBe(true);
  });
});
