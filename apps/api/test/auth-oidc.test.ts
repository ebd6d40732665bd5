import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LoginFlowError, loginThroughApi } from '../../../test/support/dev-idp-login.js';
import { controlEvents, startAuthStack, type AuthStack } from './auth-harness.js';

let s: AuthStack;
let admins: string;
let engineers: string;
let createdApprovers = false;

beforeAll(async () => {
  s = await startAuthStack();
  admins = `admins-${s.sfx}`;
  engineers = `engineers-${s.sfx}`;
  expect((await s.api('/v1/groups', { method: 'POST', json: { name: admins, roles: ['admin'], idpGroups: ['admins'] } })).status).toBe(201);
  expect((await s.api('/v1/groups', { method: 'POST', json: { name: engineers, roles: ['user'], idpGroups: ['engineers'] } })).status).toBe(201);
  // A group whose *name* equals the IdP's claim value maps too (shared name: create it unless it exists).
  const r = await s.api('/v1/groups', { method: 'POST', json: { name: 'approvers', roles: ['approver'] } });
  createdApprovers = r.status === 201;
});

afterAll(async () => {
  if (!s) return;
  await s.prisma.group.deleteMany({ where: { name: { in: [admins, engineers, ...(createdApprovers ? ['approvers'] : [])] } } });
  await s.close();
});

describe('OIDC login (GET /v1/auth/login → IdP → GET /v1/auth/callback)', () => {
  it('alice logs in through the auth-code flow and gets an api token with her IdP groups mapped', async () => {
    const login = await loginThroughApi(s.apiUrl, 'alice', 'alice');
    expect(login).toMatchObject({ token_type: 'Bearer', access_token: expect.any(String), expires_in: expect.any(Number) });
    expect(login.identity).toMatchObject({ subject: 'alice', kind: 'person', email: 'alice@example.test', displayName: 'Alice Admin', issuer: s.idp.issuer });
    expect(login.identity?.groups).toContain(admins);

    const me = await s.api('/v1/me', { token: login.access_token });
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ subject: 'alice', kind: 'person' });
    expect(me.body.groups).toContain(admins);
    expect(me.body.groups).not.toContain(engineers);
    expect(me.body.roles).toContain('admin');
    // The role is real: an admin-only route answers.
    expect((await s.api('/v1/trust-policies', { token: login.access_token })).status).toBe(200);

    const events = await controlEvents(s);
    expect(events.some((e) => e.type === 'token.issued' && e.identity === 'alice')).toBe(true);
  });

  it('carol maps to engineers only, and is no admin', async () => {
    const login = await loginThroughApi(s.apiUrl, 'carol', 'carol');
    const me = await s.api('/v1/me', { token: login.access_token });
    expect(me.body.groups).toContain(engineers);
    expect(me.body.groups).not.toContain(admins);
    expect(me.body.roles).not.toContain('admin');
    expect((await s.api('/v1/trust-policies', { token: login.access_token })).status).toBe(403);
  });

  it('maps a claim value onto a group of the same name', async () => {
    const login = await loginThroughApi(s.apiUrl, 'bob', 'bob');
    const me = await s.api('/v1/me', { token: login.access_token });
    expect(me.body.groups).toContain('approvers');
    expect(me.body.roles).toContain('approver');
  });

  it('refuses a wrong password at the IdP', async () => {
    await expect(loginThroughApi(s.apiUrl, 'alice', 'not-her-password')).rejects.toBeInstanceOf(LoginFlowError);
  });

  it('sends the token to a loopback cli_redirect, keeping the CLI query', async () => {
    const cli = 'http://127.0.0.1:47123/callback?state=cli-state';
    const result = await loginThroughApi(s.apiUrl, 'alice', 'alice', { cliRedirect: cli });
    expect(result).toMatchObject({ state: 'cli-state', token_type: 'Bearer', access_token: expect.any(String) });
    expect(result.expires_in).toBeGreaterThan(0);
    const me = await s.api('/v1/me', { token: result.access_token });
    expect(me.body.subject).toBe('alice');
  });

  it.each([
    'http://evil.test:8000/callback',
    'https://127.0.0.1.evil.test/cb',
    'http://127.0.0.1@evil.test/cb',
    'javascript:alert(1)',
  ])('refuses cli_redirect %s with 400 before going to the IdP', async (target) => {
    const r = await s.api(`/v1/auth/login?cli_redirect=${encodeURIComponent(target)}`, { token: null });
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('invalid_cli_redirect');
  });

  it('starts the login with a redirect to the IdP, state and nonce set', async () => {
    const r = await fetch(`${s.apiUrl}/v1/auth/login`, { redirect: 'manual' });
    expect(r.status).toBe(302);
    const to = new URL(r.headers.get('location')!);
    expect(to.origin).toBe(s.idp.issuer);
    expect(to.searchParams.get('client_id')).toBe('portcullis-api');
    expect(to.searchParams.get('state')).toBeTruthy();
    expect(to.searchParams.get('nonce')).toBeTruthy();
    expect(r.headers.get('set-cookie')).toMatch(/portcullis\.login=.*HttpOnly/i);
  });

  it('refuses a callback without a login in progress, or without a code', async () => {
    const forged = await s.api('/v1/auth/callback?code=abc&state=xyz', { token: null });
    expect(forged.status).toBe(401);
    expect(forged.body.error.code).toBe('oidc_login_failed');
    const empty = await s.api('/v1/auth/callback', { token: null });
    expect(empty.status).toBe(400);
  });

  it('reports an IdP refusal as a failed login', async () => {
    const r = await s.api('/v1/auth/callback?error=access_denied&error_description=nope', { token: null });
    expect(r.status).toBe(401);
    expect(r.body.error).toMatchObject({ code: 'oidc_login_failed' });
  });
});

describe('OIDC not configured', () => {
  it('answers 503 oidc_not_configured with a clear message', async () => {
    const bare = await startAuthStack({ OIDC_ISSUER_URL: '', OIDC_CLIENT_ID: '', OIDC_CLIENT_SECRET: '', OIDC_REDIRECT_URI: '' });
    try {
      const r = await bare.api('/v1/auth/login', { token: null });
      expect(r.status).toBe(503);
      expect(r.body.error.code).toBe('oidc_not_configured');
      expect(r.body.error.message).toMatch(/OIDC_ISSUER_URL/);
    } finally {
      await bare.close();
    }
  });
});
