import { createCipheriv, createDecipheriv, createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, hkdfSync, randomBytes, type KeyObject } from 'node:crypto';
import { z } from 'zod';
import { SealError } from './errors.js';

/**
 * PORTCULLIS_MASTER_KEY: 32 bytes, as 64 hex characters or base64/base64url.
 * Returns null when the text is not such a key.
 */
export function parseMasterKey(text: string): Buffer | null {
  const t = text.trim();
  if (/^[0-9a-fA-F]{64}$/.test(t)) return Buffer.from(t, 'hex');
  const b = Buffer.from(t, 'base64');
  return b.length === 32 ? b : null;
}

/** Derives a purpose-bound 32-byte key from the master key (HKDF-SHA256). */
export function deriveKey(masterKey: Buffer, purpose: 'secrets-at-rest' | 'event-signing' | 'masking-hmac' | 'webhook' | 'signing-key-at-rest' | 'checkpoint-signing'): Buffer {
  return Buffer.from(hkdfSync('sha256', masterKey, Buffer.from('portcullis'), Buffer.from(purpose), 32));
}

/** AES-256-GCM; output base64url of iv(12) | tag(16) | ciphertext. For secrets at rest. */
export function encryptAtRest(key: Buffer, plaintext: string, aad = ''): string {
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', key, iv);
  c.setAAD(Buffer.from(aad));
  const ct = Buffer.concat([c.update(plaintext, 'utf8'), c.final()]);
  return Buffer.concat([iv, c.getAuthTag(), ct]).toString('base64url');
}

export function decryptAtRest(key: Buffer, sealed: string, aad = ''): string {
  try {
    const buf = Buffer.from(sealed, 'base64url');
    const d = createDecipheriv('aes-256-gcm', key, buf.subarray(0, 12));
    d.setAAD(Buffer.from(aad));
    d.setAuthTag(buf.subarray(12, 28));
    return Buffer.concat([d.update(buf.subarray(28)), d.final()]).toString('utf8');
  } catch (err) {
    throw new SealError('cannot decrypt secret: wrong key or tampered ciphertext', { cause: err });
  }
}

/** A secret sealed for a gateway pool: X25519 ECDH with an ephemeral key, HKDF, AES-256-GCM. */
export const sealedSecretSchema = z.object({
  alg: z.literal('X25519-HKDF-SHA256-A256GCM'),
  epk: z.string(),
  iv: z.string(),
  ct: z.string(),
  tag: z.string(),
});
export type SealedSecret = z.infer<typeof sealedSecretSchema>;

export interface PoolKeyPair {
  /** raw 32-byte X25519 public key, base64url (what the api stores in GatewayPool.publicKey) */
  publicKey: string;
  /** PKCS#8 DER, base64url (what the gateway gets as GATEWAY_POOL_KEY) */
  privateKey: string;
}

export function generatePoolKeyPair(): PoolKeyPair {
  const { publicKey, privateKey } = generateKeyPairSync('x25519');
  return {
    publicKey: rawX25519(publicKey).toString('base64url'),
    privateKey: privateKey.export({ format: 'der', type: 'pkcs8' }).toString('base64url'),
  };
}

function rawX25519(pub: KeyObject): Buffer {
  return Buffer.from(pub.export({ format: 'jwk' }).x as string, 'base64url');
}

function publicFromRaw(raw: string): KeyObject {
  return createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: raw }, format: 'jwk' });
}

function kdf(shared: Buffer, epk: string, context: string): Buffer {
  return Buffer.from(hkdfSync('sha256', shared, Buffer.from(epk), Buffer.from(`portcullis-seal:${context}`), 32));
}

/** Seals `plaintext` so only the holder of the pool's private key opens it. `context` binds it (e.g. the connection name). */
export function sealForPool(poolPublicKey: string, plaintext: string, context: string): SealedSecret {
  const eph = generateKeyPairSync('x25519');
  const epk = rawX25519(eph.publicKey).toString('base64url');
  const shared = diffieHellman({ privateKey: eph.privateKey, publicKey: publicFromRaw(poolPublicKey) });
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', kdf(shared, epk, context), iv);
  c.setAAD(Buffer.from(context));
  const ct = Buffer.concat([c.update(plaintext, 'utf8'), c.final()]);
  return { alg: 'X25519-HKDF-SHA256-A256GCM', epk, iv: iv.toString('base64url'), ct: ct.toString('base64url'), tag: c.getAuthTag().toString('base64url') };
}

export function openSealed(poolPrivateKey: string, sealed: SealedSecret, context: string): string {
  try {
    const priv = createPrivateKey({ key: Buffer.from(poolPrivateKey, 'base64url'), format: 'der', type: 'pkcs8' });
    const shared = diffieHellman({ privateKey: priv, publicKey: publicFromRaw(sealed.epk) });
    const d = createDecipheriv('aes-256-gcm', kdf(shared, sealed.epk, context), Buffer.from(sealed.iv, 'base64url'));
    d.setAAD(Buffer.from(context));
    d.setAuthTag(Buffer.from(sealed.tag, 'base64url'));
    return Buffer.concat([d.update(Buffer.from(sealed.ct, 'base64url')), d.final()]).toString('utf8');
  } catch (err) {
    throw new SealError(`cannot open sealed secret for ${context}: wrong pool key or tampered data`, { cause: err });
  }
}
