import { describe, expect, it } from 'vitest';
import { consoleToken, parseConsoleRedirect } from './console-session.js';

describe('console sign-in', () => {
  it.each(['/console', '/console/', '/console/sessions/abc-123', '/console/fleet'])('accepts the console path %s', (p) => {
    expect(parseConsoleRedirect(p)).toBe(p);
  });

  it.each([
    'https://evil.example/console', '//evil.example/console', '/console//evil.example', '/console/../v1/me', '/consoleevil', '/v1/me',
    '/console?x=1', '/console#x', '/console/\\evil', 'javascript:alert(1)', '', ['/console'], `/console/${'a'.repeat(400)}`,
  ])('refuses %j (no open redirect)', (p) => {
    expect(() => parseConsoleRedirect(p)).toThrow(/redirect/);
  });

  const base = { cookie: 'other=1; portcullis_console=tok.en; x=y', host: 'api.test:8080' };
  it.each([
    ['the console header and the cookie', { ...base, 'x-portcullis-console': '1' }, 'tok.en'],
    ['the same origin', { ...base, 'x-portcullis-console': '1', origin: 'http://api.test:8080' }, 'tok.en'],
    ['no console header (a form or image from anywhere)', { ...base }, undefined],
    ['another origin', { ...base, 'x-portcullis-console': '1', origin: 'http://evil.test' }, undefined],
    ['an opaque origin', { ...base, 'x-portcullis-console': '1', origin: 'null' }, undefined],
    ['no cookie', { host: base.host, 'x-portcullis-console': '1' }, undefined],
    ['an empty cookie', { host: base.host, cookie: 'portcullis_console=', 'x-portcullis-console': '1' }, undefined],
  ])('reads the cookie with %s → %s', (_name, headers, token) => {
    expect(consoleToken(headers as Record<string, string>)).toBe(token);
  });
});
