import type { Request, Response } from 'express';
import { BadRequestError } from '../../common/errors.js';

/**
 * The web console's sign-in: the same OIDC login as the CLI (`GET /v1/auth/login?redirect=/console…`),
 * ending with the api token in an HttpOnly cookie instead of a JSON body or a loopback URL — so the
 * token is never in a URL (logged by proxies and kept in history) and never readable by scripts.
 *
 * CSRF: the cookie is SameSite=Strict, and the api reads it only on requests that carry
 * `X-Portcullis-Console: 1` — a header a cross-site page cannot send without a CORS preflight the api
 * never grants — and whose Origin, when sent, is the api's own. A request without the header is
 * judged by its Authorization header alone, as before.
 */
export const CONSOLE_COOKIE = 'portcullis_console';
export const CONSOLE_HEADER = 'x-portcullis-console';

const CONSOLE_PATH = /^\/console(?:\/[A-Za-z0-9._~\-/]*)?$/;

/** `?redirect=` on /v1/auth/login: a path of the console (nothing else: no open redirect). */
export function parseConsoleRedirect(raw: unknown): string | undefined {
  if (raw === undefined) return undefined;
  if (typeof raw !== 'string' || raw.length > 300 || !CONSOLE_PATH.test(raw) || raw.includes('//') || raw.includes('/..')) {
    throw new BadRequestError('redirect: must be a path under /console', 'invalid_redirect');
  }
  return raw;
}

/** Whether the request came over TLS (directly, or through a proxy express trusts). */
function secure(req: Request): boolean {
  return req.secure;
}

export function setConsoleCookie(req: Request, res: Response, token: string, expiresIn: number): void {
  res.cookie(CONSOLE_COOKIE, token, { httpOnly: true, sameSite: 'strict', secure: secure(req), path: '/', maxAge: Math.max(0, expiresIn) * 1000 });
}

export function clearConsoleCookie(req: Request, res: Response): void {
  res.clearCookie(CONSOLE_COOKIE, { httpOnly: true, sameSite: 'strict', secure: secure(req), path: '/' });
}

function cookieValue(header: string | string[] | undefined, name: string): string | undefined {
  const text = Array.isArray(header) ? header.join('; ') : header;
  if (!text) return undefined;
  for (const part of text.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) {
      const v = part.slice(eq + 1).trim();
      return v || undefined;
    }
  }
  return undefined;
}

/**
 * The console's token from its cookie, when the request is the console's own (see above); else
 * undefined. A request that names itself the console but comes from another origin is refused.
 */
export function consoleToken(headers: Record<string, string | string[] | undefined>): string | undefined {
  if (headers[CONSOLE_HEADER] !== '1') return undefined;
  const token = cookieValue(headers.cookie, CONSOLE_COOKIE);
  if (!token) return undefined;
  const origin = headers.origin;
  if (typeof origin === 'string' && origin !== 'null') {
    const host = headers['x-forwarded-host'] ?? headers.host;
    let same = false;
    try {
      same = new URL(origin).host === host;
    } catch {
      same = false;
    }
    if (!same) return undefined;
  }
  if (typeof origin === 'string' && origin === 'null') return undefined;
  return token;
}
