import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientCredentialsToken } from '../../../test/support/dev-idp-login.js';
import { controlEvents, startAuthStack, startTestIssuer, type AuthStack, type TestIssuer } from './auth-harness.js';

const GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
const JWT_TYPE = 'urn:ietf:params:oauth:token-type:jwt';
const AT_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

let s: AuthStack;
let ci: TestIssuer; // a workload issuer made by the test (discovery + JWKS)
let bare: TestIssuer; // one without discovery: its policy names the jwksUri
let engineers: string;
let demoAgent: string;
let ciAgent: string;

function exchangeForm(subjectToken: string, over: Record<string, string> = {}) {
  return s.api('/v1/auth/token', {
    token: null,
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: GRANT, subject_token: subjectToken, subject_token_type: JWT_TYPE, ...over }).toString(),
  });
}

const identityRows = (subject: string) => s.prisma.identity.count({ where: { subject } });

beforeAll(async () => {
  s = await startAuthStack();
  ci = await startTestIssuer();
  bare = await startTestIssuer({ discovery: false });
  engineers = `engineers-${s.sfx}`;
  demoAgent = `agent:demo-${s.sfx}`;
  ciAgent = `agent:ci-${s.sfx}`;
  expect((await s.api('/v1/groups', { method: 'POST', json: { name: engineers, roles: ['user'] } })).status).toBe(201);
  const policies = [
    // The dev IdP's demo-agent, as `pnpm start` seeds it.
    { name: `demo-${s.sfx}`, issuer: s.idp.issuer, audience: 'portcullis', subjectPattern: 'demo-agent', identity: demoAgent, groups: [engineers] },
    { name: `ci-${s.sfx}`, issuer: ci.issuer, audience: 'portcullis-ci', subjectPattern: 'system:serviceaccount:ci:*', identity: ciAgent, groups: [engineers] },
    { name: `bare-${s.sfx}`, issuer: bare.issuer, audience: 'portcullis-bare', subjectPattern: 'job-*', identity: `agent:bare-${s.sfx}`, groups: [], jwksUri: bare.jwksUri },
    { name: `once-${s.sfx}`, issuer: ci.issuer, audience: 'portcullis-once', subjectPattern: 'once-*', identity: `agent:once-${s.sfx}`, groups: [], singleUse: true },
  ];
  for (const p of policies) expect((await s.api('/v1/trust-policies', { method: 'POST', json: p })).status).toBe(201);
});

afterAll(async () => {
  if (!s) return;
  await s.prisma.trustPolicy.deleteMany({ where: { name: { endsWith: `-${s.sfx}` } } });
  await s.prisma.identity.deleteMany({ where: { subject: { in: [demoAgent, ciAgent, `agent:bare-${s.sfx}`, `agent:once-${s.sfx}`] } } });
  await s.prisma.group.deleteMany({ where: { name: engineers } });
  await ci?.close();
  await bare?.close();
  await s.close();
});

describe('POST /v1/auth/token (RFC 8693) — refusals', () => {
  // These run first: none of them may create the agent identity of the policy they aim at.
  it('refuses a token from an issuer no policy trusts', async () => {
    const stranger = await startTestIssuer();
    try {
      const r = await exchangeForm(await stranger.sign({ sub: 'system:serviceaccount:ci:x', aud: 'portcullis-ci' }));
      expect(r.status).toBe(400);
      expect(r.body.error).toMatchObject({ code: 'invalid_grant', message: expect.stringMatching(/not trusted/) });
    } finally {
      await stranger.close();
    }
  });

  it('refuses a forged signature (trusted iss and kid, another key)', async () => {
    const r = await exchangeForm(await ci.sign({ sub: 'system:serviceaccount:ci:x', aud: 'portcullis-ci' }, { key: await ci.otherKey() }));
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ code: 'invalid_grant', message: expect.stringMatching(/signature/) });
  });

  it('refuses a key the issuer does not publish (unknown kid)', async () => {
    const r = await exchangeForm(await ci.sign({ sub: 'system:serviceaccount:ci:x', aud: 'portcullis-ci' }, { key: await ci.otherKey(), kid: 'made-up' }));
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('invalid_grant');
  });

  it('refuses a shared-secret (HS256) token claiming a trusted issuer', async () => {
    const key = new TextEncoder().encode('x'.repeat(32)) as unknown as CryptoKey;
    const r = await exchangeForm(await ci.sign({ sub: 'system:serviceaccount:ci:x', aud: 'portcullis-ci' }, { key, alg: 'HS256' }));
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('invalid_grant');
  });

  it('refuses an expired token', async () => {
    const now = Math.floor(Date.now() / 1000);
    const r = await exchangeForm(await ci.sign({ sub: 'system:serviceaccount:ci:x', aud: 'portcullis-ci', iat: now - 600, exp: now - 120 }));
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ code: 'invalid_grant', message: expect.stringMatching(/expired/) });
  });

  it('refuses a wrong audience', async () => {
    const r = await exchangeForm(await ci.sign({ sub: 'system:serviceaccount:ci:x', aud: 'some-other-service' }));
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ code: 'invalid_grant', message: expect.stringMatching(/audience/) });
    // which audiences would do is not told to an unauthenticated caller
    expect(r.body.error.message).not.toMatch(/portcullis/);
  });

  it('refuses a dev IdP token minted for another audience', async () => {
    const token = await clientCredentialsToken(s.idp.issuer, 'demo-agent', 'demo-agent-secret', 'elsewhere');
    const r = await exchangeForm(token);
    expect(r.status).toBe(400);
    expect(r.body.error.message).toMatch(/audience/);
  });

  it('refuses a subject the pattern does not match', async () => {
    const r = await exchangeForm(await ci.sign({ sub: 'system:serviceaccount:prod:deployer', aud: 'portcullis-ci' }));
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ code: 'invalid_grant', message: expect.stringMatching(/subject/) });
  });

  it.each([
    { name: 'no subject_token', body: { grant_type: GRANT, subject_token_type: JWT_TYPE }, code: 'invalid_request', field: /subject_token/ },
    { name: 'wrong grant_type', body: { grant_type: 'client_credentials', subject_token: 'a.b.c', subject_token_type: JWT_TYPE }, code: 'unsupported_grant_type', field: /grant_type/ },
    { name: 'unsupported subject_token_type', body: { grant_type: GRANT, subject_token: 'a.b.c', subject_token_type: 'urn:ietf:params:oauth:token-type:saml2' }, code: 'invalid_request', field: /subject_token_type/ },
    { name: 'not a JWT', body: { grant_type: GRANT, subject_token: 'not-a-jwt', subject_token_type: JWT_TYPE }, code: 'invalid_grant', field: /JWT/ },
    { name: 'delegation (actor_token)', body: { grant_type: GRANT, subject_token: 'a.b.c', subject_token_type: JWT_TYPE, actor_token: 'x', actor_token_type: JWT_TYPE }, code: 'invalid_request', field: /actor_token/ },
    { name: 'array for a field', body: { grant_type: GRANT, subject_token: ['a', 'b'], subject_token_type: JWT_TYPE }, code: 'invalid_request', field: /subject_token/ },
  ])('refuses a malformed request: $name', async ({ body, code, field }) => {
    const r = await s.api('/v1/auth/token', { token: null, method: 'POST', json: body });
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe(code);
    expect(r.body.error.message).toMatch(field);
  });

  it('refuses malformed JSON', async () => {
    const r = await s.api('/v1/auth/token', { token: null, method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"grant_type":' });
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBeTruthy();
  });

  it('created no identity and no token for any refused exchange', async () => {
    expect(await identityRows(ciAgent)).toBe(0);
    expect(await identityRows(demoAgent)).toBe(0);
  });
});

describe('POST /v1/auth/token (RFC 8693) — exchanges', () => {
  it('exchanges the dev IdP demo-agent client_credentials JWT (form) for an api token of the agent identity', async () => {
    const workload = await clientCredentialsToken(s.idp.issuer, 'demo-agent', 'demo-agent-secret');
    const r = await exchangeForm(workload);
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ access_token: expect.any(String), issued_token_type: AT_TYPE, token_type: 'Bearer', expires_in: expect.any(Number) });
    expect(r.body.access_token).not.toBe(workload);

    const me = await s.api('/v1/me', { token: r.body.access_token });
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ subject: demoAgent, kind: 'agent', groups: [engineers], roles: ['user'] });

    const events = await controlEvents(s);
    expect(events.some((e) => e.type === 'token.issued' && e.identity === demoAgent)).toBe(true);
    const row = await s.prisma.identity.findUnique({ where: { subject: demoAgent } });
    expect(row).toMatchObject({ kind: 'agent', issuer: s.idp.issuer });
  });

  it('takes tokens in one spelling only: a subject token or api token with trailing == or a space is refused', async () => {
    const workload = await clientCredentialsToken(s.idp.issuer, 'demo-agent', 'demo-agent-secret');
    for (const respelled of [`${workload}==`, `${workload} `, workload.replace('.', '=.')]) {
      const r = await exchangeForm(respelled);
      expect(r.status).toBe(400);
      expect(r.body.error.code).toBe('invalid_grant');
    }
    const token = (await exchangeForm(workload)).body.access_token as string;
    expect((await s.api('/v1/me', { token })).status).toBe(200);
    for (const respelled of [`${token}==`, `${token}=`, token.replace('.', '=.')]) {
      const me = await s.api('/v1/me', { token: respelled });
      expect(me.status).toBe(401);
      expect(me.body.error.code).toBe('invalid_token');
    }
  });

  it('a single-use trust policy exchanges each subject token once (by iss + jti) and refuses tokens without jti', async () => {
    const once = await ci.sign({ sub: 'once-1', aud: 'portcullis-once', jti: `j-${s.sfx}` });
    expect((await exchangeForm(once)).status).toBe(200);
    const replay = await exchangeForm(once);
    expect(replay.status).toBe(400);
    expect(replay.body.error).toMatchObject({ code: 'invalid_grant', message: expect.stringMatching(/already exchanged/) });
    const noJti = await exchangeForm(await ci.sign({ sub: 'once-1', aud: 'portcullis-once' }));
    expect(noJti.status).toBe(400);
    expect(noJti.body.error.message).toMatch(/no jti/);
    expect((await exchangeForm(await ci.sign({ sub: 'once-1', aud: 'portcullis-once', jti: `j2-${s.sfx}` }))).status).toBe(200);
    // policies without the flag keep accepting a token more than once (until it expires)
    const ciToken = await ci.sign({ sub: 'system:serviceaccount:ci:runner', aud: 'portcullis-ci', jti: `j-${s.sfx}` });
    expect((await exchangeForm(ciToken)).status).toBe(200);
    expect((await exchangeForm(ciToken)).status).toBe(200);
    expect((await s.api('/v1/trust-policies', {})).body.find((p: { name: string }) => p.name === `once-${s.sfx}`).singleUse).toBe(true);
  });

  it('accepts JSON and subject_token_type access_token; a second exchange reuses the identity', async () => {
    const workload = await clientCredentialsToken(s.idp.issuer, 'demo-agent', 'demo-agent-secret');
    const r = await s.api('/v1/auth/token', {
      token: null, method: 'POST', json: { grant_type: GRANT, subject_token: workload, subject_token_type: AT_TYPE },
    });
    expect(r.status).toBe(200);
    expect(await identityRows(demoAgent)).toBe(1);
  });

  it('exchanges a token of a test-made issuer whose subject matches the glob', async () => {
    const r = await exchangeForm(await ci.sign({ sub: 'system:serviceaccount:ci:deployer', aud: ['other', 'portcullis-ci'] }));
    expect(r.status).toBe(200);
    const me = await s.api('/v1/me', { token: r.body.access_token });
    expect(me.body).toMatchObject({ subject: ciAgent, kind: 'agent', groups: [engineers] });
  });

  it('uses the policy jwksUri for an issuer without discovery', async () => {
    const r = await exchangeForm(await bare.sign({ sub: 'job-42', aud: 'portcullis-bare' }));
    expect(r.status).toBe(200);
    const me = await s.api('/v1/me', { token: r.body.access_token });
    expect(me.body).toMatchObject({ subject: `agent:bare-${s.sfx}`, kind: 'agent', groups: [] });
  });
});
