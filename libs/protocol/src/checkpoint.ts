/**
 * Signed checkpoints of the event chains: the recorder signs them, the api verifies them. Both derive
 * the key pair from the master key, here, so no key is exchanged between them.
 */
import { createHash, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { canonicalJson } from './canonical.js';
import { deriveKey } from './keys.js';

// PKCS#8 wrapping of a raw 32-byte Ed25519 seed (RFC 8410): SEQUENCE { version 0, AlgorithmIdentifier 1.3.101.112, OCTET STRING { OCTET STRING seed } }.
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

export interface CheckpointKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** public JWK, as the recorder serves it on GET /checkpoint-key */
  jwk: { kty: 'OKP'; crv: 'Ed25519'; x: string; kid: string; alg: 'EdDSA'; use: 'sig' };
}

/** The checkpoint signing key: deriveKey(master, 'checkpoint-signing') as an Ed25519 seed. */
export function checkpointKey(masterKey: Buffer): CheckpointKey {
  const seed = deriveKey(masterKey, 'checkpoint-signing');
  const privateKey = createPrivateKey({ key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
  const publicKey = createPublicKey(privateKey);
  const x = publicKey.export({ format: 'jwk' }).x as string;
  const kid = createHash('sha256').update(x).digest('base64url').slice(0, 16);
  return { privateKey, publicKey, jwk: { kty: 'OKP', crv: 'Ed25519', x, kid, alg: 'EdDSA', use: 'sig' } };
}

/** The bytes a checkpoint signature covers: canonicalJson({id, time, heads}), time as ISO 8601. */
export function checkpointPayload(cp: { id: string; time: string; heads: unknown }): Buffer {
  return Buffer.from(canonicalJson({ id: cp.id, time: cp.time, heads: cp.heads }));
}
