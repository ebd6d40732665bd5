import { createHmac, createPrivateKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import { decryptAtRest, deriveKey } from '@portcullis/protocol';
import type { PrismaClient } from './generated/prisma/client.js';

/** The api's active token-signing key, decrypted (Ed25519, alg EdDSA). */
export interface ActiveSigningKey {
  kid: string;
  alg: string;
  /** usable with jose's CompactSign / SignJWT */
  privateKey: KeyObject;
  publicJwk: Record<string, unknown>;
}

/** No active signing key in table SigningKey (the api has not started yet, or every key was retired). */
export class NoSigningKeyError extends Error {
  constructor(message = 'no active signing key in table SigningKey') {
    super(message);
    this.name = 'NoSigningKeyError';
  }
}

/**
 * Identifies a master key without revealing it: every kid the api creates is `<this id>.<random>`, so a service
 * only picks keys it can decrypt (databases shared by several installs or test runs stay apart).
 * Same derivation as the api's SigningKeysService.
 */
export function signingMasterKeyId(atRestKey: Buffer): string {
  return createHmac('sha256', atRestKey).update('portcullis-signing-key-id').digest('hex').slice(0, 16);
}

/**
 * Loads the newest active signing key. Its private JWK is stored as
 * encryptAtRest(deriveKey(master, 'signing-key-at-rest'), JSON(privateJwk), aad = kid),
 * so any app holding the master key and the DB (the approvals app) can sign what gateways verify.
 */
export async function loadActiveSigningKey(db: PrismaClient, masterKey: Buffer): Promise<ActiveSigningKey> {
  const atRestKey = deriveKey(masterKey, 'signing-key-at-rest');
  const prefix = `${signingMasterKeyId(atRestKey)}.`;
  const row = await db.signingKey.findFirst({ where: { active: true, kid: { startsWith: prefix } }, orderBy: { createdAt: 'desc' } });
  if (!row) throw new NoSigningKeyError(`no active signing key for this PORTCULLIS_MASTER_KEY (kid ${prefix}*) in table SigningKey`);
  const jwk = JSON.parse(decryptAtRest(atRestKey, row.privateJwkEncrypted, row.kid)) as JsonWebKey;
  return {
    kid: row.kid,
    alg: row.alg,
    privateKey: createPrivateKey({ key: jwk, format: 'jwk' }),
    publicJwk: row.publicJwk as Record<string, unknown>,
  };
}
