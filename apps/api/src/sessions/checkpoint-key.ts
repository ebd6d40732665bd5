import { verify, type KeyObject } from 'node:crypto';
import { checkpointKey, checkpointPayload } from '@portcullis/protocol';

/** Public half of the recorder's checkpoint signing key (libs/protocol's checkpointKey). */
export function checkpointPublicKey(masterKey: Buffer): KeyObject {
  return checkpointKey(masterKey).publicKey;
}

/** Checks a Checkpoint row's signature over checkpointPayload({id, time, heads}). */
export function checkpointSignatureValid(key: KeyObject, cp: { id: string; time: Date; heads: unknown; signature: string }): boolean {
  try {
    return verify(null, checkpointPayload({ id: cp.id, time: cp.time.toISOString(), heads: cp.heads }), key, Buffer.from(cp.signature, 'base64url'));
  } catch {
    return false;
  }
}
