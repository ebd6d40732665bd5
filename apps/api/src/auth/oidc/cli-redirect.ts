import { BadRequestError } from '../../common/errors.js';

const LOOPBACK_HOSTS = new Set(['127.0.0.1', '[::1]', 'localhost']);

/**
 * `?cli_redirect=` on /v1/auth/login: where the CLI listens for the token (RFC 8252 §7.3 loopback redirect).
 * Only plain-http loopback URLs: anything else would let a crafted login link send the token elsewhere.
 */
export function parseCliRedirect(raw: unknown): URL | undefined {
  if (raw === undefined) return undefined;
  const bad = (why: string) => new BadRequestError(`cli_redirect: ${why}`, 'invalid_cli_redirect');
  if (typeof raw !== 'string' || raw.length === 0 || raw.length > 2048) throw bad('expected one URL');
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw bad('not a URL');
  }
  if (url.protocol !== 'http:') throw bad('must be an http:// loopback URL');
  if (!LOOPBACK_HOSTS.has(url.hostname)) throw bad('host must be 127.0.0.1, [::1] or localhost');
  if (url.username || url.password) throw bad('must not carry credentials');
  if (url.hash) throw bad('must not have a fragment');
  return url;
}

/** The loopback URL with the token response in its query. */
export function cliRedirectTarget(base: string, token: { access_token: string; token_type: string; expires_in: number }): string {
  const url = new URL(base);
  url.searchParams.set('access_token', token.access_token);
  url.searchParams.set('token_type', token.token_type);
  url.searchParams.set('expires_in', String(token.expires_in));
  return url.href;
}
