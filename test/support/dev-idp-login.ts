/**
 * Test helpers that script the dev OpenID provider (apps/api/src/dev-idp) with plain fetch — no browser.
 *
 *   loginThroughApi(api, 'alice', 'alice')          → the api's token JSON after the full auth-code flow
 *   loginThroughApi(api, 'alice', 'alice', { cliRedirect: 'http://127.0.0.1:5555/cb' })
 *                                                   → the query the api redirected the CLI's loopback to
 *   clientCredentialsToken(issuer, 'demo-agent', 'demo-agent-secret')  → a JWT (aud `portcullis`)
 *   browserLogin({ startUrl, username, password, stopWhen }) → the generic engine (e.g. for portcullis-cli + PKCE)
 */

export class CookieJar {
  private readonly cookies = new Map<string, Map<string, string>>();

  store(url: string, res: Response): void {
    const origin = new URL(url).origin;
    const jar = this.cookies.get(origin) ?? new Map<string, string>();
    this.cookies.set(origin, jar);
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      if (eq < 1) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attrs.some((a) => {
        const [k, v = ''] = a.trim().split('=');
        if (k.toLowerCase() === 'max-age') return Number(v) <= 0;
        if (k.toLowerCase() === 'expires') return Date.parse(v) <= Date.now();
        return false;
      });
      if (expired || value === '') jar.delete(name);
      else jar.set(name, value);
    }
  }

  header(url: string): string | undefined {
    const jar = this.cookies.get(new URL(url).origin);
    if (!jar || jar.size === 0) return undefined;
    return [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
  }
}

export interface BrowserLoginOptions {
  startUrl: string;
  username: string;
  password: string;
  /** Stop (without fetching) when a redirect goes to a URL for which this returns true. */
  stopWhen?: (url: URL) => boolean;
  jar?: CookieJar;
  maxSteps?: number;
}

export type BrowserLoginResult =
  | { kind: 'stopped'; url: URL }
  | { kind: 'response'; url: URL; status: number; contentType: string; body: string };

export class LoginFlowError extends Error {
  constructor(message: string, readonly status?: number, readonly body?: string) {
    super(message);
    this.name = 'LoginFlowError';
  }
}

function formAction(html: string): string | undefined {
  return /<form[^>]*method="post"[^>]*action="([^"]+)"/i.exec(html)?.[1]?.replace(/&#(\d+);/g, (_m, n: string) => String.fromCharCode(Number(n))).replace(/&amp;/g, '&');
}

/**
 * Follows redirects by hand, keeping cookies per origin; fills the dev IdP's login form and confirms consent.
 * Ends at the first response that is not a redirect and not an IdP form, or where `stopWhen` says.
 */
export async function browserLogin(opts: BrowserLoginOptions): Promise<BrowserLoginResult> {
  const jar = opts.jar ?? new CookieJar();
  let url = new URL(opts.startUrl);
  let init: RequestInit = { method: 'GET' };
  let loginPosted = false;
  for (let step = 0; step < (opts.maxSteps ?? 25); step++) {
    const headers = new Headers(init.headers);
    const cookie = jar.header(url.href);
    if (cookie) headers.set('cookie', cookie);
    const res = await fetch(url, { ...init, headers, redirect: 'manual' });
    jar.store(url.href, res);
    const contentType = res.headers.get('content-type') ?? '';

    if (res.status >= 300 && res.status < 400 && res.headers.get('location')) {
      await res.arrayBuffer();
      const next = new URL(res.headers.get('location')!, url);
      if (opts.stopWhen?.(next)) return { kind: 'stopped', url: next };
      url = next;
      init = { method: 'GET' };
      continue;
    }

    const body = await res.text();
    const action = contentType.includes('text/html') ? formAction(body) : undefined;
    if (action && /name="login"/.test(body)) {
      if (loginPosted) throw new LoginFlowError(`login rejected for ${opts.username}`, res.status, body);
      loginPosted = true;
      url = new URL(action, url);
      init = {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ login: opts.username, password: opts.password }).toString(),
      };
      continue;
    }
    if (action && /\/confirm$/.test(new URL(action, url).pathname)) {
      url = new URL(action, url);
      init = { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: '' };
      continue;
    }
    return { kind: 'response', url, status: res.status, contentType, body };
  }
  throw new LoginFlowError('too many redirects in the login flow');
}

export interface ApiLoginResult {
  access_token: string;
  token_type: string;
  expires_in: number;
  identity?: Record<string, unknown>;
  [key: string]: unknown;
}

/**
 * The browser auth-code flow through the api: GET /v1/auth/login → IdP → login form → consent →
 * /v1/auth/callback → the api's token JSON. With `cliRedirect`, /login gets `?cli_redirect=` and the
 * result is the query of the api's final redirect to that loopback URL (not fetched).
 */
export async function loginThroughApi(
  apiBaseUrl: string,
  username: string,
  password: string,
  opts: { cliRedirect?: string } = {},
): Promise<ApiLoginResult> {
  const start = new URL('/v1/auth/login', apiBaseUrl);
  if (opts.cliRedirect) start.searchParams.set('cli_redirect', opts.cliRedirect);
  const cli = opts.cliRedirect ? new URL(opts.cliRedirect) : undefined;
  const result = await browserLogin({
    startUrl: start.href,
    username,
    password,
    stopWhen: cli ? (u) => u.origin === cli.origin && u.pathname === cli.pathname : undefined,
  });
  if (result.kind === 'stopped') {
    const q = Object.fromEntries(result.url.searchParams);
    if (!q.access_token) throw new LoginFlowError(`cli redirect without a token: ${result.url.href}`);
    return { ...q, access_token: q.access_token, token_type: q.token_type ?? 'Bearer', expires_in: Number(q.expires_in) };
  }
  if (result.status !== 200 || !result.contentType.includes('application/json')) {
    throw new LoginFlowError(`login through the api ended with ${result.status} at ${result.url.pathname}: ${result.body.slice(0, 500)}`,
      result.status, result.body);
  }
  return JSON.parse(result.body) as ApiLoginResult;
}

async function discover(issuer: string): Promise<Record<string, unknown>> {
  const res = await fetch(new URL('.well-known/openid-configuration', issuer.endsWith('/') ? issuer : `${issuer}/`));
  if (!res.ok) throw new LoginFlowError(`discovery failed: ${res.status}`, res.status);
  return (await res.json()) as Record<string, unknown>;
}

/**
 * A workload token from the IdP by client_credentials. `audience` (default: the IdP's default, `portcullis`)
 * is sent as resource indicator `urn:<audience>` unless it already is a URI.
 */
export async function clientCredentialsToken(issuer: string, clientId: string, secret: string, audience?: string): Promise<string> {
  const meta = await discover(issuer);
  const body = new URLSearchParams({ grant_type: 'client_credentials' });
  if (audience) body.set('resource', audience.includes(':') ? audience : `urn:${audience}`);
  const res = await fetch(String(meta.token_endpoint), {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(secret)}`).toString('base64')}`,
    },
    body,
  });
  const json = (await res.json()) as { access_token?: string; error?: string; error_description?: string };
  if (!res.ok || !json.access_token) {
    throw new LoginFlowError(`client_credentials failed: ${json.error ?? res.status} ${json.error_description ?? ''}`, res.status);
  }
  return json.access_token;
}

/**
 * The demo agent's workload token (client_credentials at the dev IdP) exchanged at the api for a Portcullis
 * api token of its own (RFC 8693 token exchange): identity agent:demo, group engineers. Its own: revoking
 * it takes no other test's token along.
 */
export async function demoAgentApiToken(issuer: string, api: string): Promise<string> {
  const workloadJwt = await clientCredentialsToken(issuer, 'demo-agent', 'demo-agent-secret', 'portcullis');
  const res = await fetch(`${api}/v1/auth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange', subject_token: workloadJwt, subject_token_type: 'urn:ietf:params:oauth:token-type:jwt' }),
  });
  const json = (await res.json()) as { access_token?: string };
  if (res.status !== 200 || !json.access_token) throw new LoginFlowError(`token exchange failed: ${res.status} ${JSON.stringify(json)}`, res.status);
  return json.access_token;
}
