import { createHmac, createPrivateKey, generateKeyPairSync, randomBytes, type JsonWebKey, type KeyObject } from 'node:crypto';
import { decryptAtRest, deriveKey, encryptAtRest, TOKEN_ALG } from '@portcullis/protocol';
import type { PrismaClient } from './generated/prisma/client.js';
import type { SigningKeyModel } from './generated/prisma/models.js';

/** The api's active token-signing key, decrypted (Ed25519, alg EdDSA). */
export interface ActiveSigningKey {
  kid: string;
  alg: string;
  /** usable with jose's CompactSign / SignJWT and libs/protocol's signCompactJws */
  privateKey: KeyObject;
  publicJwk: Record<string, unknown>;
}

/** A public JWK as table SigningKey stores it (what gateways verify with). */
export interface SigningPublicJwk {
  kty: string;
  kid: string;
  [k: string]: unknown;
}

/** A signing key cannot be used (e.g. it does not decrypt with this master key). */
export class SigningKeyError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SigningKeyError';
  }
}

/** No active signing key in table SigningKey (the api has not started yet, or every key was retired). */
export class NoSigningKeyError extends SigningKeyError {
  constructor(message = 'no active signing key in table SigningKey') {
    super(message);
    this.name = 'NoSigningKeyError';
  }
}

/**
 * Identifies a master key without revealing it: every kid the api creates is `<this id>.<random>`, so a service
 * only picks keys it can decrypt (databases shared by several installs or test runs stay apart).
 */
export function signingMasterKeyId(atRestKey: Buffer): string {
  return createHmac('sha256', atRestKey).update('portcullis-signing-key-id').digest('hex').slice(0, 16);
}

/**
 * The Ed25519 token-signing keys of one master key (table SigningKey). A private JWK is stored as
 * encryptAtRest(deriveKey(master, 'signing-key-at-rest'), JSON(privateJwk), aad = kid), so any app holding the
 * master key and the DB can sign what gateways verify: the api (tokens, snapshots), the approvals app
 * (decisions). Only the api creates a key (loadOrCreate, on first boot).
 */
export class SigningKeyStore {
  private readonly atRestKey: Buffer;
  /** Identifies the master key; prefix of every kid this store can use. */
  readonly masterKeyId: string;

  constructor(
    private readonly db: PrismaClient,
    masterKey: Buffer,
  ) {
    this.atRestKey = deriveKey(masterKey, 'signing-key-at-rest');
    this.masterKeyId = signingMasterKeyId(this.atRestKey);
  }

  private get ownKeys(): { active: true; kid: { startsWith: string } } {
    return { active: true, kid: { startsWith: `${this.masterKeyId}.` } };
  }

  /** The newest active key; NoSigningKeyError when there is none. */
  async loadActive(): Promise<ActiveSigningKey> {
    const row = await this.db.signingKey.findFirst({ where: this.ownKeys, orderBy: { createdAt: 'desc' } });
    if (!row) throw new NoSigningKeyError(`no active signing key for this PORTCULLIS_MASTER_KEY (kid ${this.masterKeyId}.*) in table SigningKey`);
    return this.open(row);
  }

  /**
   * The newest active key, created when there is none. Under an advisory lock per master key, so concurrent
   * first boots agree on one active key. `created` is told the kid of a key it made.
   */
  async loadOrCreate(created?: (kid: string) => void): Promise<ActiveSigningKey> {
    const lockName = `portcullis:signing-key:${this.masterKeyId}`;
    const row = await this.db.$transaction(async (tx) => {
      await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtext(${lockName}))`;
      const existing = await tx.signingKey.findFirst({ where: this.ownKeys, orderBy: { createdAt: 'desc' } });
      if (existing) return existing;
      const kid = `${this.masterKeyId}.${randomBytes(9).toString('base64url')}`;
      const { publicKey, privateKey } = generateKeyPairSync('ed25519');
      const publicJwk = { ...publicKey.export({ format: 'jwk' }), kty: 'OKP', kid, alg: TOKEN_ALG, use: 'sig' };
      const privateJwk = { ...privateKey.export({ format: 'jwk' }), kid, alg: TOKEN_ALG };
      created?.(kid);
      return tx.signingKey.create({
        data: { kid, alg: TOKEN_ALG, publicJwk, privateJwkEncrypted: encryptAtRest(this.atRestKey, JSON.stringify(privateJwk), kid), active: true },
      });
    });
    return this.open(row);
  }

  /** Every active key of this master key by kid, with its public JWK (what the snapshot carries). */
  async publicKeys(): Promise<{ kid: string; jwk: SigningPublicJwk }[]> {
    const rows = await this.db.signingKey.findMany({ where: this.ownKeys });
    return rows.map((row) => ({ kid: row.kid, jwk: row.publicJwk as unknown as SigningPublicJwk }));
  }

  private open(row: SigningKeyModel): ActiveSigningKey {
    let jwk: JsonWebKey;
    try {
      jwk = JSON.parse(decryptAtRest(this.atRestKey, row.privateJwkEncrypted, row.kid)) as JsonWebKey;
    } catch (err) {
      throw new SigningKeyError(`cannot decrypt signing key ${row.kid} with PORTCULLIS_MASTER_KEY`, { cause: err });
    }
    return {
      kid: row.kid,
      alg: row.alg,
      privateKey: createPrivateKey({ key: jwk, format: 'jwk' }),
      publicJwk: row.publicJwk as Record<string, unknown>,
    };
  }
}

/** The newest active signing key of this master key (see SigningKeyStore). */
export function loadActiveSigningKey(db: PrismaClient, masterKey: Buffer): Promise<ActiveSigningKey> {
  return new SigningKeyStore(db, masterKey).loadActive();
}
