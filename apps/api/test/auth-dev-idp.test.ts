import { createHash, randomBytes } from 'node:crypto';
import { createRemoteJWKSet, decodeJwt, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDevIdp, type DevIdp } from '../src/dev-idp/dev-idp.js';
import { browserLogin, clientCredentialsToken, LoginFlowError } from '../../../test/support/dev-idp-login.js';

let idp: DevIdp;
let meta: Record<string, string>;

beforeAll(async () => {
  idp = await startDevIdp({ port: 0 });
  meta = (await (await fetch(`${idp.issuer}/.well-known/openid-configuration`)).json()) as Record<string, string>;
});
afterAll(async () => {
  await idp?.close();
});

function pkce(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

describe('dev OpenID provider', () => {
  it('serves discovery for its issuer on a free port', () => {
    expect(meta.issuer).toBe(idp.issuer);
    expect(idp.port).toBeGreaterThan(0);
    expect(meta.grant_types_supported).toEqual(expect.arrayContaining(['authorization_code', 'client_credentials']));
    expect(meta.device_authorization_endpoint).toBeTruthy();
  });

  it('gives demo-agent a signed JWT access token: aud portcullis, sub demo-agent', async () => {
    const token = await clientCredentialsToken(idp.issuer, 'demo-agent', 'demo-agent-secret');
    const { payload, protectedHeader } = await jwtVerify(token, createRemoteJWKSet(new URL(meta.jwks_uri)), {
      issuer: idp.issuer,
      audience: 'portcullis',
    });
    expect(protectedHeader.alg).toBe('RS256');
    expect(payload.sub).toBe('demo-agent');
    expect(payload.exp! - payload.iat!).toBeLessThanOrEqual(600);
  });

  it('issues another audience on request and refuses a wrong client secret', async () => {
    const token = await clientCredentialsToken(idp.issuer, 'demo-agent', 'demo-agent-secret', 'elsewhere');
    expect(decodeJwt(token).aud).toBe('elsewhere');
    await expect(clientCredentialsToken(idp.issuer, 'demo-agent', 'wrong')).rejects.toThrow(/invalid_client/);
  });

  it('runs the CLI auth-code + PKCE flow on any loopback port, with groups in the ID token and userinfo', async () => {
    const { verifier, challenge } = pkce();
    const redirectUri = 'http://127.0.0.1:54321/callback';
    const authorize = new URL(meta.authorization_endpoint);
    authorize.search = new URLSearchParams({
      client_id: 'portcullis-cli', response_type: 'code', redirect_uri: redirectUri, scope: 'openid profile email groups',
      code_challenge: challenge, code_challenge_method: 'S256', state: 'st-1',
    }).toString();
    const result = await browserLogin({
      startUrl: authorize.href, username: 'bob', password: 'bob', stopWhen: (u) => u.origin === 'http://127.0.0.1:54321',
    });
    expect(result.kind).toBe('stopped');
    const back = (result as { url: URL }).url;
    expect(back.searchParams.get('state')).toBe('st-1');
    const code = back.searchParams.get('code');
    expect(code).toBeTruthy();

    const res = await fetch(meta.token_endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'authorization_code', code: code!, redirect_uri: redirectUri, client_id: 'portcullis-cli', code_verifier: verifier }),
    });
    const tokens = (await res.json()) as { id_token: string; access_token: string };
    expect(res.status).toBe(200);
    const claims = decodeJwt(tokens.id_token);
    expect(claims).toMatchObject({ sub: 'bob', preferred_username: 'bob', groups: ['approvers'], email: 'bob@example.test' });
    const info = await (await fetch(meta.userinfo_endpoint, { headers: { authorization: `Bearer ${tokens.access_token}` } })).json();
    expect(info).toMatchObject({ sub: 'bob', groups: ['approvers'] });
  });

  it('refuses a wrong password', async () => {
    const { challenge } = pkce();
    const authorize = new URL(meta.authorization_endpoint);
    authorize.search = new URLSearchParams({
      client_id: 'portcullis-cli', response_type: 'code', redirect_uri: 'http://127.0.0.1:5000/callback', scope: 'openid',
      code_challenge: challenge, code_challenge_method: 'S256',
    }).toString();
    await expect(browserLogin({ startUrl: authorize.href, username: 'alice', password: 'bob', stopWhen: () => false }))
      .rejects.toBeInstanceOf(LoginFlowError);
  });

  it('starts the device flow for the CLI', async () => {
    const res = await fetch(meta.device_authorization_endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ client_id: 'portcullis-cli', scope: 'openid' }),
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ device_code: expect.any(String), user_code: expect.any(String) });
  });
});
