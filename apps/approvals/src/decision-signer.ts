import { SigningKeyStore, type ActiveSigningKey, type PrismaClient } from '@portcullis/db';
import type { ApprovalDecision, ApprovalConsumeResult } from '@portcullis/protocol';
import { CompactSign } from 'jose';

/**
 * Signs what gateways must trust (decisions, one-time consume replies) with the api's active Ed25519 key (@portcullis/db's SigningKeyStore),
 * as a compact JWS whose protected header names the key (`kid`), so gateways verify it against the
 * snapshot's verificationKeys. The key is cached and reloaded every `ttlMs` (key rotation).
 */
export class DecisionSigner {
  private cached: { key: ActiveSigningKey; loadedAt: number } | null = null;
  private readonly store: SigningKeyStore;

  constructor(
    db: PrismaClient,
    masterKey: Buffer,
    private readonly ttlMs = 60_000,
  ) {
    this.store = new SigningKeyStore(db, masterKey);
  }

  async sign(payload: ApprovalDecision | ApprovalConsumeResult): Promise<string> {
    const key = await this.key();
    return new CompactSign(new TextEncoder().encode(JSON.stringify(payload)))
      .setProtectedHeader({ alg: 'EdDSA', kid: key.kid })
      .sign(key.privateKey);
  }

  private async key(): Promise<ActiveSigningKey> {
    if (this.cached && Date.now() - this.cached.loadedAt < this.ttlMs) return this.cached.key;
    const key = await this.store.loadActive();
    this.cached = { key, loadedAt: Date.now() };
    return key;
  }
}
