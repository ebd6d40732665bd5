import { randomBytes, sign, verify, createPublicKey } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { deriveKey, encryptAtRest } from '@portcullis/protocol';
import { createPrismaClient } from './client.js';
import { NoSigningKeyError, SigningKeyError, SigningKeyStore, loadActiveSigningKey, signingMasterKeyId } from './signing-keys.js';

// Real Postgres (the migrated test database, shared: every kid here starts with a fresh master key's id).
const db = createPrismaClient();
const prefixes: string[] = [];
afterAll(async () => {
  for (const p of prefixes) await db.signingKey.deleteMany({ where: { kid: { startsWith: p } } }).catch(() => undefined);
  await db.$disconnect();
});

function freshStore(): { store: SigningKeyStore; master: Buffer } {
  const master = randomBytes(32);
  const store = new SigningKeyStore(db, master);
  prefixes.push(`${store.masterKeyId}.`);
  return { store, master };
}

describe('SigningKeyStore', () => {
  it('concurrent first loads agree on one active key, which signs what its public JWK verifies', async () => {
    const { store, master } = freshStore();
    const created: string[] = [];
    const keys = await Promise.all(Array.from({ length: 4 }, () => new SigningKeyStore(db, master).loadOrCreate((kid) => created.push(kid))));
    expect(new Set(keys.map((k) => k.kid)).size).toBe(1);
    expect(created).toEqual([keys[0].kid]);
    expect(keys[0].kid.startsWith(`${signingMasterKeyId(deriveKey(master, 'signing-key-at-rest'))}.`)).toBe(true);
    const active = await store.loadActive();
    expect(active.kid).toBe(keys[0].kid);
    expect(await loadActiveSigningKey(db, master)).toMatchObject({ kid: keys[0].kid, alg: 'EdDSA' });
    const [pub] = await store.publicKeys();
    expect(pub.kid).toBe(active.kid);
    expect(pub.jwk).toMatchObject({ kty: 'OKP', crv: 'Ed25519', kid: active.kid, alg: 'EdDSA', use: 'sig' });
    expect(pub.jwk).not.toHaveProperty('d');
    const msg = Buffer.from('decision');
    expect(verify(null, msg, createPublicKey({ key: pub.jwk as never, format: 'jwk' }), sign(null, msg, active.privateKey))).toBe(true);
  });

  it('another master key sees none of them; a key it cannot decrypt is a SigningKeyError naming the kid', async () => {
    const { store } = freshStore();
    await store.loadOrCreate();
    const other = freshStore().store;
    await expect(other.loadActive()).rejects.toBeInstanceOf(NoSigningKeyError);
    expect(await other.publicKeys()).toEqual([]);
    // a row with this store's prefix, sealed under another key
    const kid = `${store.masterKeyId}.forged`;
    await db.signingKey.create({ data: { kid, alg: 'EdDSA', publicJwk: { kty: 'OKP', kid }, privateJwkEncrypted: encryptAtRest(randomBytes(32), '{}', kid), active: true } });
    const err = await store.loadActive().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SigningKeyError);
    expect((err as Error).message).toBe(`cannot decrypt signing key ${kid} with PORTCULLIS_MASTER_KEY`);
  });
});
