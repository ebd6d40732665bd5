import { randomUUID, sign } from 'node:crypto';
import type { Pool } from 'pg';
import { checkpointPayload, CONTROL_CHAIN, type CheckpointKey } from '@portcullis/protocol';
import type { Logger } from 'pino';
import { appendControlEvent, controlHead, lockChains, type ChainHead } from './chain-writer.js';
import type { RecorderMetrics } from './metrics.js';

// the key and the signed bytes are libs/protocol's (the api verifies with the same)
export { checkpointKey, checkpointPayload, type CheckpointKey } from '@portcullis/protocol';

export type CheckpointHeads = Record<string, ChainHead>;

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
