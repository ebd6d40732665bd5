import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { CONFIG_SNAPSHOT_TYP, signConfigSnapshot, verifyConfigSnapshot, type ConfigSnapshot } from './config.js';
import { parseTrustedKeys, signCompactJws, SignatureError, verifyCompactJws } from './jws.js';

function ed25519(kid: string) {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  return { kid, privateKey, jwk: { ...publicKey.export({ format: 'jwk' }), kid, alg: 'EdDSA' } as Record<string, unknown> };
}

const api = ed25519('api-1');
const next = ed25519('api-2');
const forger = ed25519('api-1'); // same kid, other key: the kid alone must not be trusted

const snapshot = { revision: 3, pool: 'default', policies: [{ name: 'default', version: 1, document: { dynamicSql: 'block' } }] } as unknown as ConfigSnapshot;
const good = signConfigSnapshot(snapshot, api);

function tamper(value: string, at: (jws: string) => string): string {
  return JSON.stringify({ jws: at((JSON.parse(value) as { jws: string }).jws) });
}

describe('verifyConfigSnapshot', () => {
  it.each([
    { name: 'signed by a key of the forger with a trusted kid', value: signConfigSnapshot(snapshot, forger), error: 'signature does not verify' },
    { name: 'signed by an unknown kid', value: signConfigSnapshot(snapshot, ed25519('other')), error: 'not trusted (kid other)' },
    { name: 'the bare snapshot, unsigned', value: JSON.stringify(snapshot), error: 'not a signed snapshot' },
    { name: 'an envelope with extra members', value: JSON.stringify({ jws: JSON.parse(good).jws, snapshot }), error: 'not a signed snapshot' },
    { name: 'not JSON', value: 'jws', error: 'not JSON' },
    {
      name: 'one byte of a policy changed',
      value: tamper(good, (j) => {
        const [h, p, s] = j.split('.');
        const json = Buffer.from(p, 'base64url').toString().replace('"block"', '"allow"');
        return `${h}.${Buffer.from(json).toString('base64url')}.${s}`;
      }),
      error: 'signature does not verify',
    },
    {
      name: 'one bit of the signature flipped',
      value: tamper(good, (j) => {
        const [h, p, s] = j.split('.');
        const sig = Buffer.from(s, 'base64url');
        sig[10] ^= 1;
        return `${h}.${p}.${sig.toString('base64url')}`;
      }),
      error: 'signature does not verify',
    },
    {
      // the same signature bytes spelled with other trailing bits: Node's decoder reads them alike
      name: 'the signature spelled a second way',
      value: tamper(good, (j) => j.slice(0, -1) + String.fromCharCode(j.charCodeAt(j.length - 1) + 1)),
      error: 'non-canonical',
    },
    { name: 'alg none', value: tamper(good, (j) => `${Buffer.from(JSON.stringify({ alg: 'none', kid: 'api-1', typ: CONFIG_SNAPSHOT_TYP })).toString('base64url')}.${j.split('.')[1]}.`), error: 'unexpected alg none' },
    { name: 'an approval decision signed by the api (wrong typ)', value: JSON.stringify({ jws: signCompactJws(JSON.stringify(snapshot), api, 'JWT') }), error: 'typ is JWT' },
    { name: 'two dots too many', value: tamper(good, (j) => `${j}.x`), error: 'not a compact JWS' },
  ])('refuses $name', ({ value, error }) => {
    expect(() => verifyConfigSnapshot(value, [api.jwk])).toThrow(SignatureError);
    expect(() => verifyConfigSnapshot(value, [api.jwk])).toThrow(error);
  });

  it('accepts what the api signed, with any key of a rotation list', () => {
    expect(verifyConfigSnapshot(good, [api.jwk])).toEqual(snapshot);
    expect(verifyConfigSnapshot(good, [next.jwk, api.jwk])).toEqual(snapshot);
    expect(verifyConfigSnapshot(signConfigSnapshot(snapshot, next), [next.jwk, api.jwk])).toEqual(snapshot);
    expect(() => verifyConfigSnapshot(good, [next.jwk])).toThrow(SignatureError);
  });

  it('does not reuse a cached key once the trusted list changed under the same kid', () => {
    const cache = new Map();
    expect(verifyCompactJws(JSON.parse(good).jws, [api.jwk], CONFIG_SNAPSHOT_TYP, cache)).toBeInstanceOf(Buffer);
    expect(() => verifyCompactJws(JSON.parse(good).jws, [forger.jwk], CONFIG_SNAPSHOT_TYP, cache)).toThrow('does not verify');
  });
});

describe('parseTrustedKeys', () => {
  const { d: _d, ...pub } = { ...api.jwk, d: undefined };
  it.each([
    { name: 'one JWK', text: JSON.stringify(pub), kids: ['api-1'] },
    { name: 'an array', text: JSON.stringify([pub, next.jwk]), kids: ['api-1', 'api-2'] },
    { name: 'a JWK set', text: JSON.stringify({ keys: [next.jwk] }), kids: ['api-2'] },
  ])('reads $name', ({ text, kids }) => {
    expect(parseTrustedKeys(text).map((k) => k.kid)).toEqual(kids);
  });

  it.each([
    { name: 'not JSON', text: 'abc', error: 'not JSON' },
    { name: 'an empty set', text: '{"keys": []}', error: 'no keys' },
    { name: 'a key without kid', text: JSON.stringify({ ...pub, kid: undefined }), error: 'key 0' },
    { name: 'an RSA key', text: JSON.stringify({ kty: 'RSA', n: 'x', e: 'AQAB', kid: 'r' }), error: 'key 0' },
    { name: 'a private key', text: JSON.stringify({ ...generateKeyPairSync('ed25519').privateKey.export({ format: 'jwk' }), kid: 'p' }), error: 'is a private key' },
  ])('refuses $name', ({ text, error }) => {
    expect(() => parseTrustedKeys(text)).toThrow(error);
  });
});
