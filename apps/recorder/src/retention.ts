import { randomUUID } from 'node:crypto';
import type { Pool } from 'pg';
import { CONTROL_CHAIN } from '@portcullis/protocol';
import type { Logger } from 'pino';
import { appendControlEvent, lockChains } from './chain-writer.js';
import type { RecorderMetrics } from './metrics.js';

const CHUNK = 500;

export interface RetentionResult {
  sessions: number;
  events: number;
}

/**
 * Deletes sessions that ended (or, never ended, started) more than `days` ago, with their events,
 * in chunks; each chunk's deletion is itself a `retention.deleted` control-plane event in the same
 * transaction. Recorders sharing a database take turns through a try-lock.
 */
export class RetentionJob {
  constructor(
    private readonly pool: Pool,
    private readonly days: number,
    private readonly metrics: RecorderMetrics,
    private readonly logger: Logger,
  ) {}

  async run(now = new Date()): Promise<RetentionResult> {
    const total: RetentionResult = { sessions: 0, events: 0 };
    if (this.days <= 0) return total;
    const cutoff = new Date(now.getTime() - this.days * 86_400_000);
    for (;;) {
      const client = await this.pool.connect();
      try {
        await client.query('BEGIN');
        const lock = await client.query<{ ok: boolean }>(`SELECT pg_try_advisory_xact_lock(hashtextextended('portcullis:retention', 0)) AS ok`);
        if (!lock.rows[0].ok) {
          await client.query('ROLLBACK');
          return total;
        }
        const r = await client.query<{ id: string }>(
          `SELECT id FROM "Session" WHERE COALESCE("endedAt", "startedAt") < $1 ORDER BY id LIMIT ${CHUNK}`,
          [cutoff.toISOString()],
        );
        const ids = r.rows.map((x) => x.id);
        if (!ids.length) {
          await client.query('ROLLBACK');
          return total;
        }
        await lockChains(client, [...ids, CONTROL_CHAIN]);
        const ev = await client.query(`DELETE FROM "Event" WHERE chain = ANY($1::text[])`, [ids]);
        await client.query(`DELETE FROM "Session" WHERE id = ANY($1::text[])`, [ids]);
        const events = ev.rowCount ?? 0;
        await appendControlEvent(client, 'retention.deleted', {
          action: 'delete',
          target: 'sessions',
          cutoff: cutoff.toISOString(),
          retentionDays: this.days,
          sessions: ids.length,
          events,
          sessionIds: ids,
        }, randomUUID(), now);
        await client.query('COMMIT');
        total.sessions += ids.length;
        total.events += events;
        this.metrics.retentionSessions.inc(ids.length);
        this.logger.info({ sessions: ids.length, events, cutoff }, 'retention deleted sessions');
        if (ids.length < CHUNK) return total;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      } finally {
        client.release();
      }
    }
  }
}
