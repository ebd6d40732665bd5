import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { SealError } from './errors.js';
import { decryptAtRest, deriveKey, encryptAtRest, generatePoolKeyPair, openSealed, parseMasterKey, sealForPool } from './keys.js';

describe('parseMasterKey', () => {
  const raw = randomBytes(32);
  it.each([
    { name: 'hex', input: raw.toString('hex'), ok: true },
    { name: 'base64', input: raw.toString('base64'), ok: true },
    { name: 'base64 with whitespace', input: ` ${raw.toString('base64')}\n`, ok: true },
    { name: 'too short', input: randomBytes(16).toString('hex'), ok: false },
    { name: 'empty', input: '', ok: false },
    { name: 'garbage', input: 'not a key at all', ok: false },
  ])('$name', ({ input, ok }) => {
    const key = parseMasterKey(input);
    if (ok) expect(key?.equals(raw)).toBe(true);
    else expect(key).toBeNull();
  });
});

describe('deriveKey', () => {
  it('is deterministic and purpose-bound', () => {
    const m = randomBytes(32);
    expect(deriveKey(m, 'event-signing').equals(deriveKey(m, 'event-signing'))).toBe(true);
    expect(deriveKey(m, 'event-signing').equals(deriveKey(m, 'secrets-at-rest'))).toBe(false);
    expect(deriveKey(m, 'event-signing')).toHaveLength(32);
  });
});

describe('encryption at rest', () => {
  const key = randomBytes(32);
  it('round-trips and hides the plaintext', () => {
    const sealed = encryptAtRest(key, 's3cret-password', 'conn-a');
    expect(sealed).not.toContain('s3cret');
    expect(decryptAtRest(key, sealed, 'conn-a')).toBe('s3cret-password');
  });
  it.each([
    { name: 'wrong key', mutate: (s: string) => ({ s, k: randomBytes(32), aad: 'conn-a' }) },
    { name: 'wrong aad (secret moved to another connection)', mutate: (s: string) => ({ s, k: key, aad: 'conn-b' }) },
    {
      name: 'tampered ciphertext',
      mutate: (s: string) => {
        const b = Buffer.from(s, 'base64url');
        b[b.length - 1] ^= 1;
        return { s: b.toString('base64url'), k: key, aad: 'conn-a' };
      },
    },
  ])('refuses $name', ({ mutate }) => {
    const { s, k, aad } = mutate(encryptAtRest(key, 'pw', 'conn-a'));
    expect(() => decryptAtRest(k, s, aad)).toThrow(SealError);
  });
});

describe('sealing for a pool', () => {
  const pool = generatePoolKeyPair();
  it('only the pool private key opens it, bound to its context', () => {
    const sealed = sealForPool(pool.publicKey, 'hunter2', 'connection:demo');
    expect(JSON.stringify(sealed)).not.toContain('hunter2');
    expect(openSealed(pool.privateKey, sealed, 'connection:demo')).toBe('hunter2');
    expect(() => openSealed(generatePoolKeyPair().privateKey, sealed, 'connection:demo')).toThrow(SealError);
    expect(() => openSealed(pool.privateKey, sealed, 'connection:other')).toThrow(SealError);
  });
  it('uses a fresh ephemeral key each time', () => {
    const a = sealForPool(pool.publicKey, 'x', 'c');
    const b = sealForPool(pool.publicKey, 'x', 'c');
    expect(a.epk).not.toBe(b.epk);
    expect(a.ct).not.toBe(b.ct);
  });
});
