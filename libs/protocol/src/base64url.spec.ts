import { describe, expect, it } from 'vitest';
import { Base64UrlError, assertCompactJws, decodeBase64UrlStrict } from './base64url.js';

const jwt = 'eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLWJ5dGVz';

describe('decodeBase64UrlStrict', () => {
  it.each([
    ['padding', 'YWI='],
    ['double padding', 'YQ=='],
    ['a trailing space', 'YWI '],
    ['a leading space', ' YWI'],
    ['a newline inside', 'YW\nI'],
    ['standard base64 +', 'a+b'],
    ['standard base64 /', 'a/b'],
    ['an impossible length', 'YWJjZ'],
    ['non-zero trailing bits (same bytes as YQ)', 'YR'],
    ['non-zero trailing bits (same bytes as YWI)', 'YWJ'],
    ['a NUL', 'YW\u0000I'],
  ])('refuses %s', (_name, text) => {
    expect(() => decodeBase64UrlStrict(text)).toThrow(Base64UrlError);
  });

  it.each([
    ['', ''],
    ['YQ', 'a'],
    ['YWI', 'ab'],
    ['YWJj', 'abc'],
    ['_-8', '\xff\xef'],
  ])('accepts %j', (text, bytes) => {
    expect(decodeBase64UrlStrict(text).toString('latin1')).toBe(bytes);
  });
});

describe('assertCompactJws', () => {
  it.each([
    ['trailing ==', `${jwt}==`],
    ['a trailing space', `${jwt} `],
    ['a trailing newline', `${jwt}\n`],
    ['padding in the payload', jwt.replace('.eyJzdWIiOiJ4In0.', '.eyJzdWIiOiJ4In0=.')],
    ['four parts', `${jwt}.x`],
    ['two parts', jwt.split('.').slice(0, 2).join('.')],
    ['an empty payload', jwt.replace('.eyJzdWIiOiJ4In0.', '..')],
  ])('refuses %s', (_name, token) => {
    expect(() => assertCompactJws(token)).toThrow(Base64UrlError);
  });

  it('accepts a well-formed token', () => {
    expect(() => assertCompactJws(jwt)).not.toThrow();
  });
});
