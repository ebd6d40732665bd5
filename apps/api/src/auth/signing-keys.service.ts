import { Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { importJWK, type JWK } from 'jose';
import { PrismaClient, SigningKeyError, SigningKeyStore, type ActiveSigningKey } from '@portcullis/db';
import { TOKEN_ALG } from '@portcullis/protocol';
import { ApiConfig } from '../config/env.js';

export { SigningKeyError, type ActiveSigningKey } from '@portcullis/db';

type VerificationKey = Awaited<ReturnType<typeof importJWK>>;

export interface PublicJwk extends JWK {
  kty: string;
  kid: string;
}

/**
 * The api's Ed25519 token-signing keys, from @portcullis/db's SigningKeyStore (which the approvals app signs
 * decisions with too): the active key, created on first boot, and the public keys that verify this api's tokens.
 */
@Injectable()
export class SigningKeysService implements OnModuleInit {
  private readonly logger = new Logger(SigningKeysService.name);
  private readonly store: SigningKeyStore;
  /** Identifies the master key; prefix of every kid this api can use. */
  readonly masterKeyId: string;
  private active: ActiveSigningKey | null = null;
  private publicKeys = new Map<string, { jwk: PublicJwk; key: VerificationKey }>();
  private lastReload = 0;

  constructor(prisma: PrismaClient, config: ApiConfig) {
    this.store = new SigningKeyStore(prisma, config.masterKey);
    this.masterKeyId = this.store.masterKeyId;
  }

  async onModuleInit(): Promise<void> {
    this.active = await this.store.loadOrCreate((kid) => this.logger.log(`created token-signing key ${kid}`));
    await this.reloadPublicKeys();
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
  async verificationKey(kid: string): Promise<VerificationKey | null> {
    const hit = this.publicKeys.get(kid);
    if (hit) return hit.key;
    if (!kid.startsWith(`${this.masterKeyId}.`) || Date.now() - this.lastReload < 5_000) return null;
    await this.reloadPublicKeys();
    return this.publicKeys.get(kid)?.key ?? null;
  }

  private async reloadPublicKeys(): Promise<void> {
    this.lastReload = Date.now();
    const next = new Map<string, { jwk: PublicJwk; key: VerificationKey }>();
    for (const { kid, jwk } of await this.store.publicKeys()) next.set(kid, { jwk: jwk as PublicJwk, key: await importJWK(jwk, TOKEN_ALG) });
    this.publicKeys = next;
  }
}
