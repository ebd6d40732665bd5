/**
 * A development OpenID Connect provider (oidc-provider, in-process, plain node:http).
 *
 * It stands in for the company IdP under `pnpm start` and in tests. It is NOT for production:
 * users, passwords and client secrets below are fixed and public.
 *
 * Users (password = the username, e.g. `alice` / `alice`):
 *   alice — groups ['admins'];  bob — ['approvers'];  carol — ['engineers']
 * Claims: sub (= username), preferred_username, name, email, email_verified, groups
 *   (scopes `profile`, `email`, `groups`).
 *
 * Clients:
 *   portcullis-api  confidential (`portcullis-api-secret`), authorization code; redirect URIs from the options
 *                   plus http://127.0.0.1:8080/v1/auth/callback.
 *   demo-agent      confidential (`demo-agent-secret`), client_credentials only. Its access tokens are JWTs
 *                   (RS256) with aud `portcullis` and sub `demo-agent` — a workload identity to exchange at
 *                   POST /v1/auth/token. A `resource=urn:<aud>` parameter asks for another audience.
 *   portcullis-cli  public, authorization code + PKCE on loopback redirects (any port, RFC 8252), device flow.
 */
import { generateKeyPairSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider, { type Configuration, type KoaContextWithOIDC } from 'oidc-provider';

export interface DevUser {
  username: string;
  password: string;
  name: string;
  email: string;
  groups: string[];
}

export const DEV_USERS: readonly DevUser[] = [
  { username: 'alice', password: 'alice', name: 'Alice Admin', email: 'alice@example.test', groups: ['admins'] },
  { username: 'bob', password: 'bob', name: 'Bob Approver', email: 'bob@example.test', groups: ['approvers'] },
  { username: 'carol', password: 'carol', name: 'Carol Engineer', email: 'carol@example.test', groups: ['engineers'] },
];

export const DEV_CLIENTS = {
  api: { clientId: 'portcullis-api', clientSecret: 'portcullis-api-secret' },
  agent: { clientId: 'demo-agent', clientSecret: 'demo-agent-secret' },
  cli: { clientId: 'portcullis-cli' },
} as const;

/** Audience of the demo-agent's JWT access tokens (what the demo trust policy expects). */
export const DEV_AGENT_AUDIENCE = 'portcullis';
const DEFAULT_AGENT_RESOURCE = `urn:${DEV_AGENT_AUDIENCE}`;
const DEFAULT_API_REDIRECT = 'http://127.0.0.1:8080/v1/auth/callback';

export interface DevIdpOptions {
  /** 0 (default) picks a free port. */
  port?: number;
  host?: string;
  /** Extra redirect URIs for the portcullis-api client (e.g. a test api's callback on a random port). */
  redirectUris?: string[];
  /** Access-token lifetime for demo-agent JWTs, seconds (default 600). */
  agentTokenTtl?: number;
}

export interface DevIdp {
  issuer: string;
  port: number;
  close(): Promise<void>;
}

const usersByName = new Map(DEV_USERS.map((u) => [u.username, u]));

function checkPassword(username: string, password: string): DevUser | undefined {
  const user = usersByName.get(username);
  if (!user) return undefined;
  const a = Buffer.from(user.password);
  const b = Buffer.from(password);
  return a.length === b.length && timingSafeEqual(a, b) ? user : undefined;
}

/** The resource indicator `urn:<aud>` yields audience `<aud>`; any other absolute URI is its own audience. */
function audienceFor(resource: string): string {
  return resource.startsWith('urn:') ? resource.slice(4) : resource;
}

function configuration(redirectUris: string[], agentTokenTtl: number): Configuration {
  const signingKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
  return {
    clients: [
      {
        client_id: DEV_CLIENTS.api.clientId,
        client_secret: DEV_CLIENTS.api.clientSecret,
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        redirect_uris: [...new Set([...redirectUris, DEFAULT_API_REDIRECT])],
        // passport-openidconnect (node-oauth) sends the secret in the form body.
        token_endpoint_auth_method: 'client_secret_post',
      },
      {
        client_id: DEV_CLIENTS.agent.clientId,
        client_secret: DEV_CLIENTS.agent.clientSecret,
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: 'client_secret_basic',
      },
      {
        client_id: DEV_CLIENTS.cli.clientId,
        application_type: 'native',
        token_endpoint_auth_method: 'none',
        grant_types: ['authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code'],
        response_types: ['code'],
        // Native loopback redirects match on any port (RFC 8252 §7.3).
        redirect_uris: ['http://127.0.0.1/callback', 'http://[::1]/callback'],
      },
    ],
    jwks: { keys: [{ ...signingKey, kid: 'dev-idp-1', alg: 'RS256', use: 'sig' }] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    claims: {
      openid: ['sub'],
      profile: ['name', 'preferred_username'],
      email: ['email', 'email_verified'],
      groups: ['groups'],
    },
    scopes: ['openid', 'offline_access', 'profile', 'email', 'groups'],
    // Put the requested claims into the ID token too, not only behind userinfo.
    conformIdTokenClaims: false,
    async findAccount(_ctx: KoaContextWithOIDC, sub: string) {
      const user = usersByName.get(sub);
      if (!user) return undefined;
      return {
        accountId: user.username,
        async claims() {
          return {
            sub: user.username,
            preferred_username: user.username,
            name: user.name,
            email: user.email,
            email_verified: true,
            groups: [...user.groups],
          };
        },
      };
    },
    features: {
      devInteractions: { enabled: false }, // ours below check a password
      clientCredentials: { enabled: true },
      deviceFlow: { enabled: true },
      revocation: { enabled: true },
      resourceIndicators: {
        enabled: true,
        // Only client_credentials tokens default to a resource (JWT, aud `portcullis`): user logins keep
        // opaque tokens that work at the userinfo endpoint.
        async defaultResource(ctx: KoaContextWithOIDC, _client, oneOf?: readonly string[]) {
          if (oneOf) return oneOf;
          return ctx.oidc.params?.grant_type === 'client_credentials' ? DEFAULT_AGENT_RESOURCE : undefined;
        },
        async getResourceServerInfo(_ctx: KoaContextWithOIDC, resource: string) {
          return {
            scope: 'api',
            audience: audienceFor(resource),
            accessTokenFormat: 'jwt',
            accessTokenTTL: agentTokenTtl,
            jwt: { sign: { alg: 'RS256' } },
          };
        },
        useGrantedResource: async () => false,
      },
    },
    pkce: { required: (_ctx, client) => client.clientAuthMethod === 'none' },
    ttl: {
      AccessToken: 600,
      AuthorizationCode: 60,
      IdToken: 600,
      DeviceCode: 600,
      Interaction: 600,
      Session: 3600,
      Grant: 3600,
      RefreshToken: 3600,
      ClientCredentials: agentTokenTtl,
    },
    renderError(ctx, out) {
      ctx.type = 'html';
      ctx.body = page('Error', `<pre>${escapeHtml(JSON.stringify(out, null, 2))}</pre>`);
    },
  };
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(title: string, body: string): string {
  return `<!doctype html><html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head>` +
    `<body><h1>Portcullis dev IdP — ${escapeHtml(title)}</h1>${body}</body></html>`;
}

function loginForm(uid: string, error?: string, loginHint?: string): string {
  return page('Sign-in', `${error ? `<p class="error">${escapeHtml(error)}</p>` : ''}
<form method="post" action="/interaction/${escapeHtml(uid)}/login">
  <input required type="text" name="login" placeholder="alice, bob or carol" value="${escapeHtml(loginHint ?? '')}">
  <input required type="password" name="password" placeholder="password (= the username)">
  <button type="submit">Sign-in</button>
</form>
<p>Dev users: alice / alice (admins), bob / bob (approvers), carol / carol (engineers).</p>`);
}

function consentForm(uid: string, clientId: string, scopes: string[]): string {
  return page('Authorize', `<p>${escapeHtml(clientId)} asks for: ${escapeHtml(scopes.join(' ') || '(previous grant)')}</p>
<form method="post" action="/interaction/${escapeHtml(uid)}/confirm"><button type="submit">Continue</button></form>
<form method="post" action="/interaction/${escapeHtml(uid)}/abort"><button type="submit">Cancel</button></form>`);
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > 16 * 1024) throw new Error('form too large');
    chunks.push(chunk as Buffer);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function send(res: ServerResponse, status: number, html: string): void {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(html);
}

/** Our own login/consent pages (oidc-provider's devInteractions accept any login without a password). */
async function handleInteraction(provider: Provider, req: IncomingMessage, res: ServerResponse, path: string[]): Promise<void> {
  const [uid, action] = path;
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) return send(res, 400, page('Error', '<p>interaction mismatch</p>'));
  const { prompt, params } = details;

  if (req.method === 'GET' && !action) {
    if (prompt.name === 'login') {
      return send(res, 200, loginForm(uid, undefined, typeof params.login_hint === 'string' ? params.login_hint : undefined));
    }
    const d = prompt.details as { missingOIDCScope?: string[] };
    return send(res, 200, consentForm(uid, String(params.client_id), d.missingOIDCScope ?? []));
  }
  if (req.method !== 'POST') return send(res, 405, page('Error', '<p>method not allowed</p>'));

  if (action === 'login' && prompt.name === 'login') {
    const form = await readForm(req);
    const user = checkPassword(form.get('login') ?? '', form.get('password') ?? '');
    if (!user) return send(res, 401, loginForm(uid, 'Unknown user or wrong password.', form.get('login') ?? undefined));
    await provider.interactionFinished(req, res, { login: { accountId: user.username } }, { mergeWithLastSubmission: false });
    return;
  }
  if (action === 'confirm' && prompt.name === 'consent') {
    await readForm(req);
    const d = prompt.details as {
      missingOIDCScope?: string[]; missingOIDCClaims?: string[]; missingResourceScopes?: Record<string, string[]>;
    };
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: details.session?.accountId, clientId: String(params.client_id) });
    if (!grant) return send(res, 400, page('Error', '<p>grant not found</p>'));
    if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
    if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(d.missingResourceScopes ?? {})) grant.addResourceScope(indicator, scopes.join(' '));
    const grantId = await grant.save();
    await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    return;
  }
  if (action === 'abort') {
    await provider.interactionFinished(req, res, { error: 'access_denied', error_description: 'End-User aborted interaction' },
      { mergeWithLastSubmission: false });
    return;
  }
  return send(res, 400, page('Error', '<p>unexpected step</p>'));
}

export async function startDevIdp(options: DevIdpOptions = {}): Promise<DevIdp> {
  const host = options.host ?? '127.0.0.1';
  let handler: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => { res.statusCode = 503; res.end(); };
  const server = createServer((req, res) => handler(req, res));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => { server.off('error', reject); resolve(); });
  });
  const { port } = server.address() as AddressInfo;
  const issuer = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;

  const provider = new Provider(issuer, configuration(options.redirectUris ?? [], options.agentTokenTtl ?? 600));
  // Errors are answered to the client; keep them off stderr.
  provider.on('server_error', () => undefined);
  const callback = provider.callback();

  handler = (req, res) => {
    const path = new URL(req.url ?? '/', issuer).pathname.split('/').filter(Boolean);
    if (path[0] === 'interaction' && path.length >= 2) {
      handleInteraction(provider, req, res, path.slice(1)).catch((err: unknown) => {
        if (res.headersSent) return res.end();
        const message = err instanceof Error ? err.message : String(err);
        send(res, 400, page('Error', `<p>${escapeHtml(message)}</p>`));
      });
      return;
    }
    callback(req, res);
  };

  return {
    issuer,
    port,
    close: () => new Promise<void>((resolve, reject) => {
      server.close((err) => (err ? reject(err) : resolve()));
      server.closeAllConnections();
    }),
  };
}
