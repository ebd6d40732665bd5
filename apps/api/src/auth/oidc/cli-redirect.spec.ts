import { describe, expect, it } from 'vitest';
import { cliRedirectTarget, parseCliRedirect } from './cli-redirect.js';

describe('parseCliRedirect', () => {
  it.each([
    { name: 'userinfo trick pointing elsewhere', raw: 'http://127.0.0.1@evil.test/cb' },
    { name: 'lookalike host', raw: 'http://127.0.0.1.evil.test/cb' },
    { name: 'https to a remote host', raw: 'https://evil.test/cb' },
    { name: 'remote http host', raw: 'http://evil.test:8000/cb' },
    { name: 'https loopback (the CLI listens on plain http)', raw: 'https://127.0.0.1:5000/cb' },
    { name: 'credentials on loopback', raw: 'http://user:pw@127.0.0.1:5000/cb' },
    { name: 'javascript scheme', raw: 'javascript:alert(1)' },
    { name: 'fragment', raw: 'http://127.0.0.1:5000/cb#x' },
    { name: 'relative', raw: '/cb' },
    { name: 'private LAN address', raw: 'http://10.0.0.1:5000/cb' },
    { name: 'not a string', raw: ['http://127.0.0.1/cb', 'http://evil.test'] },
    { name: 'empty', raw: '' },
  ])('rejects $name', ({ raw }) => {
    expect(() => parseCliRedirect(raw)).toThrow(/cli_redirect/);
  });

  it.each([
    'http://127.0.0.1:53123/callback',
    'http://[::1]:53123/callback?state=abc',
    'http://localhost:8000/',
  ])('accepts %s', (raw) => {
    expect(parseCliRedirect(raw)?.href).toBe(new URL(raw).href);
  });

  it('is optional', () => {
    expect(parseCliRedirect(undefined)).toBeUndefined();
  });

  it('keeps the CLI query and adds the token', () => {
    const href = cliRedirectTarget('http://127.0.0.1:5000/cb?state=s1', { access_token: 'a.b.c', token_type: 'Bearer', expires_in: 60 });
    const url = new URL(href);
    expect(Object.fromEntries(url.searchParams)).toEqual({ state: 's1', access_token: 'a.b.c', token_type: 'Bearer', expires_in: '60' });
  });
});
