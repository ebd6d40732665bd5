import { describe, expect, it } from 'vitest';
import { stripSecrets } from './redact.js';

describe('stripSecrets', () => {
  it.each([
    { name: 'password at the top', input: { password: 'p', host: 'h' }, out: { host: 'h' } },
    { name: 'nested ciphertext', input: { after: { secretCiphertext: 'c', hasSecret: true } }, out: { after: { hasSecret: true } } },
    { name: 'tokens in arrays', input: { list: [{ token: 't', jti: 'j' }] }, out: { list: [{ jti: 'j' }] } },
    { name: 'case-insensitive', input: { Password: 'p', CLIENT_SECRET: 's', Authorization: 'Bearer x' }, out: {} },
    { name: 'private keys', input: { privateJwk: {}, privateKey: 'k', publicKey: 'pk' }, out: { publicKey: 'pk' } },
    { name: 'dates become ISO strings', input: { at: new Date(0) }, out: { at: '1970-01-01T00:00:00.000Z' } },
    { name: 'undefined members dropped', input: { a: undefined, b: null }, out: { b: null } },
  ])('$name', ({ input, out }) => {
    expect(stripSecrets(input)).toEqual(out);
  });

  it('keeps secret-looking values under innocent keys (only keys are judged)', () => {
    expect(stripSecrets({ tokenId: 'abc', secretChanged: true })).toEqual({ tokenId: 'abc', secretChanged: true });
  });
});
