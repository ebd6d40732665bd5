import { randomBytes } from 'node:crypto';
import { Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { exportJWK, generateKeyPair, importJWK, type JWK } from 'jose';
import { PrismaClient, signingMasterKeyId } from '@portcullis/db';
import { decryptAtRest, deriveKey, encryptAtRest, TOKEN_ALG } from '@portcullis/protocol';
import { ApiConfig } from '../config/env.js';

export class SigningKeyError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SigningKeyError';
  }
}

type KeyObjectLike = Awaited<ReturnType<typeof importJWK>>;

export interface ActiveSigningKey {
  kid: string;
  privateKey: KeyObjectLike;
}

export interface PublicJwk extends JWK {
  kty: string;
  kid: string;
}

/**
 * The api's Ed25519 token-signing keys (table SigningKey). A kid is `<master-key id>.<random>`: the master-key id
 * (an HMAC of a fixed label under the at-rest key) ties a key to the master key that can decrypt it, so a service
 * never picks a key it cannot open (and databases shared by several installs or test runs stay apart).
 * Created on first boot under an advisory lock, so concurrent first boots agree on one active key.
 */
@Injectable()
export class SigningKeysService implements OnModuleInit {
  private readonly logger = new Logger(SigningKeysService.name);
  private readonly atRestKey: Buffer;
  /** Identifies the master key; prefix of every kid this api can use. */
  readonly masterKeyId: string;
  private active: ActiveSigningKey | null = null;
  private publicKeys = new Map<string, { jwk: PublicJwk; key: KeyObjectLike }>();
  private lastReload = 0;

  constructor(
    private readonly prisma: PrismaClient,
    config: ApiConfig,
  ) {
    this.atRestKey = deriveKey(config.masterKey, 'signing-key-at-rest');
    // Same derivation as loadActiveSigningKey in @portcullis/db (used by the approvals app).
    this.masterKeyId = signingMasterKeyId(this.atRestKey);
  }

  async onModuleInit(): Promise<void> {
    await this.loadOrCreate();
  }

  get activeKey(): ActiveSigningKey {
    if (!this.active) throw new SigningKeyError('no active signing key loaded');
    return this.active;
  }

  /** Public JWKs of every active key of this master key (what the snapshot carries). */
  publicJwks(): PublicJwk[] {
    return [...this.publicKeys.values()].map((k) => k.jwk);
  }

  /** Verification key by kid; reloads from the DB (at most every 5 s) when a kid is unknown, e.g. after rotation elsewhere. */
  async verificationKey(kid: string): Promise<KeyObjectLike | null> {
    const hit = this.publicKeys.get(kid);
    if (hit) return hit.key;
    if (!kid.startsWith(`${this.masterKeyId}.`) || Date.now() - this.lastReload < 5_000) return null;
    await this.reloadPublicKeys();
    return this.publicKeys.get(kid)?.key ?? null;
  }

  private async loadOrCreate(): Promise<void> {
    const lockName = `portcullis:signing-key:${this.masterKeyId}`;
    const row = await this.prisma.$transaction(async (tx) => {
      await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtext(${lockName}))`;
      const existing = await tx.signingKey.findFirst({
        where: { active: true, kid: { startsWith: `${this.masterKeyId}.` } },
        orderBy: { createdAt: 'desc' },
      });
      if (existing) return existing;
      const kid = `${this.masterKeyId}.${randomBytes(9).toString('base64url')}`;
      const { publicKey, privateKey } = await generateKeyPair(TOKEN_ALG, { extractable: true });
      const publicJwk: PublicJwk = { ...(await exportJWK(publicKey)), kty: 'OKP', kid, alg: TOKEN_ALG, use: 'sig' };
      const privateJwk = { ...(await exportJWK(privateKey)), kid, alg: TOKEN_ALG };
      this.logger.log(`created token-signing key ${kid}`);
      return tx.signingKey.create({
        data: { kid, alg: TOKEN_ALG, publicJwk: publicJwk as object, privateJwkEncrypted: encryptAtRest(this.atRestKey, JSON.stringify(privateJwk), kid), active: true },
      });
    });
    let privateJwk: JWK;
    try {
      privateJwk = JSON.parse(decryptAtRest(this.atRestKey, row.privateJwkEncrypted, row.kid)) as JWK;
    } catch (err) {
      throw new SigningKeyError(`cannot decrypt signing key ${row.kid} with PORTCULLIS_MASTER_KEY`, { cause: err });
    }
    this.active = { kid: row.kid, privateKey: await importJWK(privateJwk, TOKEN_ALG) };
    await this.reloadPublicKeys();
  }

  private async reloadPublicKeys(): Promise<void> {
    this.lastReload = Date.now();
    const rows = await this.prisma.signingKey.findMany({ where: { active: true, kid: { startsWith: `${this.masterKeyId}.` } } });
    const next = new Map<string, { jwk: PublicJwk; key: KeyObjectLike }>();
    for (const row of rows) {
      const jwk = row.publicJwk as unknown as PublicJwk;
      next.set(row.kid, { jwk, key: await importJWK(jwk, TOKEN_ALG) });
    }
    this.publicKeys = next;
  }
}
