import { generateKeyPairSync, type KeyObject } from 'node:crypto';

/**
 * A signing key pair for a test, made synchronously. jose's generateKeyPair is asynchronous (a key
 * generation job on the thread pool), and on Node 20 a CI worker hung for good when V8 collected such a
 * finished job while the same key was being exported as a JWK: the main thread waited on a mutex it
 * held itself (KeyGenJob's destructor under KeyObjectHandle::ExportJWK, seen with gdb). That worker's
 * open api transaction then held a pool row every later test waited on. Node's synchronous generation
 * makes no such job. jose signs with and exports these KeyObjects as it does CryptoKeys.
 */
export function testKeyPair(alg: 'EdDSA' | 'ES256'): { publicKey: KeyObject; privateKey: KeyObject } {
  return alg === 'EdDSA' ? generateKeyPairSync('ed25519') : generateKeyPairSync('ec', { namedCurve: 'P-256' });
}
