import { createPrivateKey, createPublicKey, createHash, randomUUID, sign, type KeyObject } from 'node:crypto';
import type { Pool } from 'pg';
import { canonicalJson, CONTROL_CHAIN, deriveKey } from '@portcullis/protocol';
import type { Logger } from 'pino';
import { appendControlEvent, controlHead, lockChains, type ChainHead } from './chain-writer.js';
import type { RecorderMetrics } from './metrics.js';

// PKCS#8 wrapping of a raw 32-byte Ed25519 seed (RFC 8410): SEQUENCE { version 0, AlgorithmIdentifier 1.3.101.112, OCTET STRING { OCTET STRING seed } }.
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

export interface CheckpointKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** public JWK, as served on GET /checkpoint-key */
  jwk: { kty: 'OKP'; crv: 'Ed25519'; x: string; kid: string; alg: 'EdDSA'; use: 'sig' };
}

/**
 * The checkpoint signing key is derived from the master key, so every recorder signs with the same
 * key and the api (which holds the master key too) can verify without a key exchange.
 */
export function checkpointKey(masterKey: Buffer): CheckpointKey {
  const seed = deriveKey(masterKey, 'checkpoint-signing');
  const privateKey = createPrivateKey({ key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
  const publicKey = createPublicKey(privateKey);
  const x = publicKey.export({ format: 'jwk' }).x as string;
  const kid = createHash('sha256').update(x).digest('base64url').slice(0, 16);
  return { privateKey, publicKey, jwk: { kty: 'OKP', crv: 'Ed25519', x, kid, alg: 'EdDSA', use: 'sig' } };
}

export type CheckpointHeads = Record<string, ChainHead>;

/** The bytes a checkpoint signature covers. */
export function checkpointPayload(cp: { id: string; time: string; heads: CheckpointHeads }): Buffer {
  return Buffer.from(canonicalJson({ id: cp.id, time: cp.time, heads: cp.heads }));
}

/**
 * Every interval, signs the heads of the chains this recorder appended to since the last
 * checkpoint, stores them (table Checkpoint) and appends a `checkpoint` control-plane event.
 * A verifier that finds a chain shorter than its last checkpointed head knows the tail was cut.
 */
export class Checkpointer {
  private changed = new Set<string>();
  private running: Promise<string | null> | null = null;

  constructor(
    private readonly pool: Pool,
    private readonly key: CheckpointKey,
    private readonly metrics: RecorderMetrics,
    private readonly logger: Logger,
  ) {}

  noteHeads(heads: Map<string, ChainHead>): void {
    for (const chain of heads.keys()) this.changed.add(chain);
  }

  /** Writes a checkpoint now if any chain changed; returns its id (null when nothing changed). */
  checkpoint(): Promise<string | null> {
    this.running ??= this.write().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async write(): Promise<string | null> {
    if (!this.changed.size) return null;
    const chains = [...this.changed];
    this.changed = new Set();
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      await lockChains(client, [CONTROL_CHAIN]);
      const heads: CheckpointHeads = {};
      const sessions = chains.filter((c) => c !== CONTROL_CHAIN);
      if (sessions.length) {
        const r = await client.query<{ id: string; lastSeq: number; lastHash: string | null }>(
          `SELECT id, "lastSeq", "lastHash" FROM "Session" WHERE id = ANY($1::text[]) AND "lastHash" IS NOT NULL`,
          [sessions],
        );
        for (const row of r.rows) heads[row.id] = { seq: row.lastSeq, hash: row.lastHash! };
      }
      if (chains.includes(CONTROL_CHAIN)) {
        const h = await controlHead(client);
        if (h.seq > 0) heads[CONTROL_CHAIN] = h;
      }
      if (!Object.keys(heads).length) {
        await client.query('ROLLBACK');
        return null;
      }
      const id = randomUUID();
      const time = new Date().toISOString();
      const signature = sign(null, checkpointPayload({ id, time, heads }), this.key.privateKey).toString('base64url');
      await client.query(`INSERT INTO "Checkpoint" (id, time, heads, signature) VALUES ($1, $2, $3::jsonb, $4)`, [id, time, JSON.stringify(heads), signature]);
      await appendControlEvent(client, 'checkpoint', {
        action: 'checkpoint',
        target: 'chains',
        checkpointId: id,
        chains: Object.keys(heads).length,
        heads,
        signature,
        kid: this.key.jwk.kid,
      }, randomUUID(), new Date(time));
      await client.query('COMMIT');
      this.metrics.checkpoints.inc();
      this.logger.debug({ id, chains: Object.keys(heads).length }, 'checkpoint written');
      return id;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      for (const c of chains) this.changed.add(c);
      throw err;
    } finally {
      client.release();
    }
  }
}
