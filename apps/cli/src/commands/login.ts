import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApiClient, ApiRequestError, networkCause } from '../api-client.js';
import { allowOnly, boolFlag, stringFlag, UsageError, type ParsedArgs } from '../args.js';
import { configPath, readConfigFile, resolveConfig, writeConfigFile } from '../config.js';
import { EXIT, println, type CliContext } from '../context.js';

interface TokenResult {
  access_token: string;
  expires_in?: number;
}

interface Me {
  subject?: string;
  kind?: string;
  groups?: string[];
  roles?: string[];
}

const CALLBACK_PAGE = (ok: boolean, text: string): string =>
  `<!doctype html><meta charset="utf-8"><title>Portcullis CLI</title><body style="font-family:sans-serif">` +
  `<h1>${ok ? 'Logged in' : 'Login failed'}</h1><p>${text.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`)}</p></body>`;

/**
 * Browser flow: a loopback server on 127.0.0.1, the api's OIDC login with `cli_redirect` pointing at it;
 * the api redirects back with `?access_token=&expires_in=` once the IdP is done.
 */
async function browserLogin(ctx: CliContext, api: string, opts: { openBrowser: boolean; timeoutMs: number }): Promise<TokenResult> {
  let server: Server | undefined;
  try {
    const result = new Promise<TokenResult>((resolve, reject) => {
      server = createServer((req, res) => {
        const url = new URL(req.url ?? '/', 'http://127.0.0.1');
        if (url.pathname !== '/callback') {
          res.writeHead(404).end();
          return;
        }
        const token = url.searchParams.get('access_token');
        const error = url.searchParams.get('error_description') ?? url.searchParams.get('error');
        res.writeHead(token ? 200 : 400, { 'content-type': 'text/html; charset=utf-8', connection: 'close' });
        res.end(CALLBACK_PAGE(Boolean(token), token ? 'You can close this window and go back to the terminal.' : (error ?? 'no token in the redirect')));
        if (token) resolve({ access_token: token, expires_in: Number(url.searchParams.get('expires_in')) || undefined });
        else reject(new ApiRequestError(`login failed: ${error ?? 'the api redirected back without a token'}`, 400, 'login_failed'));
      });
      server.once('error', reject);
    });
    await new Promise<void>((resolve, reject) => {
      server!.once('error', reject);
      server!.listen(0, '127.0.0.1', () => resolve());
    });
    const { port } = server!.address() as AddressInfo;
    const loginUrl = new URL('/v1/auth/login', `${api}/`);
    loginUrl.searchParams.set('cli_redirect', `http://127.0.0.1:${port}/callback`);
    println(ctx.stderr, 'Open this URL in a browser to log in:');
    println(ctx.stderr, `  ${loginUrl.href}`);
    println(ctx.stderr, 'Waiting for the login to finish… (Ctrl-C to give up)');
    if (opts.openBrowser) ctx.openBrowser(loginUrl.href);

    return await new Promise<TokenResult>((resolve, reject) => {
      const timer = setTimeout(() => reject(new ApiRequestError(`no login within ${Math.round(opts.timeoutMs / 1000)}s`, undefined, 'timeout')), opts.timeoutMs);
      const onAbort = (): void => reject(new ApiRequestError('login cancelled', undefined, 'cancelled'));
      if (ctx.signal.aborted) onAbort();
      else ctx.signal.addEventListener('abort', onAbort, { once: true });
      result.then(resolve, reject).finally(() => {
        clearTimeout(timer);
        ctx.signal.removeEventListener('abort', onAbort);
      });
    });
  } finally {
    server?.closeAllConnections();
    server?.close();
  }
}

/** client_credentials at the IdP, then RFC 8693 token exchange at the api: how an agent logs in. */
async function clientCredentialsLogin(api: string, o: { issuer: string; clientId: string; clientSecret: string; audience?: string }): Promise<TokenResult> {
  const issuer = o.issuer.replace(/\/+$/, '');
  let discovery: { token_endpoint?: string };
  try {
    const res = await fetch(`${issuer}/.well-known/openid-configuration`, { signal: AbortSignal.timeout(15_000) });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    discovery = (await res.json()) as { token_endpoint?: string };
  } catch (err) {
    throw new ApiRequestError(`cannot read the OpenID configuration of ${issuer} (${networkCause(err)})`, undefined, 'discovery_failed', { cause: err });
  }
  if (!discovery.token_endpoint) throw new ApiRequestError(`${issuer} publishes no token_endpoint`, undefined, 'discovery_failed');
  const form = new URLSearchParams({ grant_type: 'client_credentials' });
  if (o.audience) form.set('resource', o.audience.includes(':') ? o.audience : `urn:${o.audience}`);
  const basic = Buffer.from(`${encodeURIComponent(o.clientId)}:${encodeURIComponent(o.clientSecret)}`).toString('base64');
  const tokenRes = await fetch(discovery.token_endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${basic}`, accept: 'application/json' },
    body: form.toString(),
    signal: AbortSignal.timeout(15_000),
  }).catch((err: unknown) => {
    throw new ApiRequestError(`cannot reach ${discovery.token_endpoint} (${networkCause(err)})`, undefined, 'unreachable', { cause: err });
  });
  const tokenBody = (await tokenRes.json().catch(() => ({}))) as { access_token?: string; error?: string; error_description?: string };
  if (!tokenRes.ok || !tokenBody.access_token) {
    throw new ApiRequestError(`the IdP refused client_credentials for ${o.clientId}: ${tokenBody.error ?? `HTTP ${tokenRes.status}`}${tokenBody.error_description ? ` (${tokenBody.error_description})` : ''}`, tokenRes.status, tokenBody.error);
  }
  const exchange = new ApiClient(api, undefined);
  const res = await exchange.raw('POST', '/v1/auth/token', {
    auth: false,
    form: new URLSearchParams({
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      subject_token: tokenBody.access_token,
      subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
    }),
  });
  const out = JSON.parse(res.text) as TokenResult;
  if (!out.access_token) throw new ApiRequestError('the api answered the token exchange without an access_token', res.status, 'bad_response');
  return out;
}

export async function login(ctx: CliContext, args: ParsedArgs): Promise<number> {
  allowOnly(args, ['token', 'api', 'client-credentials', 'issuer', 'client-id', 'client-secret', 'audience', 'no-browser', 'timeout']);
  const path = configPath(ctx.env);
  const api = (stringFlag(args, 'api') ?? resolveConfig(ctx.env).api).replace(/\/+$/, '');
  let result: TokenResult;
  const given = stringFlag(args, 'token');
  if (given) {
    result = { access_token: given };
  } else if (boolFlag(args, 'client-credentials')) {
    const issuer = stringFlag(args, 'issuer');
    const clientId = stringFlag(args, 'client-id');
    const clientSecret = stringFlag(args, 'client-secret') ?? ctx.env.PORTCULLIS_CLIENT_SECRET;
    const missing = [!issuer && '--issuer', !clientId && '--client-id', !clientSecret && '--client-secret'].filter(Boolean);
    if (missing.length > 0) throw new UsageError(`login --client-credentials needs ${missing.join(', ')}`);
    result = await clientCredentialsLogin(api, { issuer: issuer!, clientId: clientId!, clientSecret: clientSecret!, audience: stringFlag(args, 'audience') });
  } else {
    const timeout = Number(stringFlag(args, 'timeout') ?? 300);
    if (!Number.isFinite(timeout) || timeout <= 0) throw new UsageError('--timeout: seconds, a positive number');
    result = await browserLogin(ctx, api, { openBrowser: !boolFlag(args, 'no-browser'), timeoutMs: timeout * 1000 });
  }

  // Who is this? Also proves the token works before we keep it.
  const me = await new ApiClient(api, result.access_token).json<Me>('GET', '/v1/me');
  const expiresAt = result.expires_in ? new Date(Date.now() + result.expires_in * 1000).toISOString() : undefined;
  writeConfigFile(path, { ...readConfigFile(path), api, token: result.access_token, expiresAt, subject: me?.subject });
  const groups = me?.groups?.length ? ` (groups ${me.groups.join(', ')}; roles ${(me.roles ?? []).join(', ') || 'none'})` : '';
  println(ctx.stdout, `Logged in to ${api} as ${me?.subject ?? 'unknown'}${groups}${expiresAt ? `, until ${expiresAt}` : ''}.`);
  return EXIT.ok;
}

export async function logout(ctx: CliContext, args: ParsedArgs): Promise<number> {
  allowOnly(args, []);
  const path = configPath(ctx.env);
  const { token: _token, expiresAt: _e, subject: _s, ...rest } = readConfigFile(path);
  writeConfigFile(path, rest);
  println(ctx.stdout, 'Logged out (the token is forgotten here; it expires on its own).');
  return EXIT.ok;
}

export async function whoami(ctx: CliContext, args: ParsedArgs): Promise<number> {
  allowOnly(args, ['json']);
  const c = resolveConfig(ctx.env);
  if (!c.token) {
    println(ctx.stderr, 'portcullis: not logged in: run `portcullis login`');
    return EXIT.auth;
  }
  const me = await new ApiClient(c.api, c.token).json<Me & Record<string, unknown>>('GET', '/v1/me');
  if (boolFlag(args, 'json')) println(ctx.stdout, JSON.stringify(me, null, 2));
  else println(ctx.stdout, `${me.subject} (${me.kind ?? '?'}) at ${c.api}; groups: ${(me.groups ?? []).join(', ') || 'none'}; roles: ${(me.roles ?? []).join(', ') || 'none'}`);
  return EXIT.ok;
}
