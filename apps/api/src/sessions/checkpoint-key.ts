import { createPrivateKey, createPublicKey, verify, type KeyObject } from 'node:crypto';
import { canonicalJson, deriveKey } from '@portcullis/protocol';

// PKCS#8 wrapping of a raw Ed25519 seed (RFC 8410); the recorder derives the same key pair.
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/** Public half of the recorder's checkpoint signing key (deriveKey(master, 'checkpoint-signing') as an Ed25519 seed). */
export function checkpointPublicKey(masterKey: Buffer): KeyObject {
  const seed = deriveKey(masterKey, 'checkpoint-signing');
  return createPublicKey(createPrivateKey({ key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' }));
}

/** Checks a Checkpoint row's signature over canonicalJson({id, time, heads}). */
export function checkpointSignatureValid(key: KeyObject, cp: { id: string; time: Date; heads: unknown; signature: string }): boolean {
  try {
    const payload = Buffer.from(canonicalJson({ id: cp.id, time: cp.time.toISOString(), heads: cp.heads }));
    return verify(null, payload, key, Buffer.from(cp.signature, 'base64url'));
  } catch {
    return false;
  }
}
