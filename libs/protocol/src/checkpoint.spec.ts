import { randomBytes, sign, verify } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { checkpointKey, checkpointPayload } from './checkpoint.js';

describe('checkpoint key and payload (recorder signs, api verifies)', () => {
  it('one master key gives one key pair, wherever it is derived; another master key another', () => {
    const master = randomBytes(32);
    const a = checkpointKey(master);
    const b = checkpointKey(Buffer.from(master));
    expect(a.jwk).toEqual(b.jwk);
    expect(a.jwk).toMatchObject({ kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA', use: 'sig' });
    expect(a.jwk.kid).toHaveLength(16);
    expect(checkpointKey(randomBytes(32)).jwk.x).not.toBe(a.jwk.x);
  });

  it('the payload is canonical (key order does not matter) and a signature over it verifies with the public key only', () => {
    const key = checkpointKey(randomBytes(32));
    const heads = { s1: { seq: 3, hash: 'h3' }, control: { seq: 9, hash: 'h9' } };
    const p1 = checkpointPayload({ id: 'cp1', time: '2026-12-07T12:00:00.000Z', heads });
    const p2 = checkpointPayload({ time: '2026-12-07T12:00:00.000Z', heads: { control: { hash: 'h9', seq: 9 }, s1: { hash: 'h3', seq: 3 } }, id: 'cp1' });
    expect(p1.equals(p2)).toBe(true);
    expect(p1.toString()).toBe('{"heads":{"control":{"hash":"h9","seq":9},"s1":{"hash":"h3","seq":3}},"id":"cp1","time":"2026-12-07T12:00:00.000Z"}');
    const sig = sign(null, p1, key.privateKey);
    expect(verify(null, p2, key.publicKey, sig)).toBe(true);
    expect(verify(null, checkpointPayload({ id: 'cp1', time: '2026-12-07T12:00:00.000Z', heads: { s1: { seq: 2, hash: 'h2' } } }), key.publicKey, sig)).toBe(false);
  });
});
