import { Injectable } from '@nestjs/common';
import type { KeyObject } from 'node:crypto';
import { PrismaClient } from '@portcullis/db';
import { chainedEventHash, CONTROL_CHAIN, GENESIS_HASH, toRecordedEvent } from '@portcullis/protocol';
import { ApiConfig } from '../config/env.js';
import { NotFoundError } from '../common/errors.js';
import { checkpointPublicKey, checkpointSignatureValid } from './checkpoint-key.js';
import type { VerifyView } from './dto/session.dto.js';

const PAGE = 5000;

/**
 * Recomputes a hash chain (a session's, or `control-plane`) from the stored rows:
 * every prevHash links to the previous hash, every hash matches the content; the stored head
 * (Session.lastSeq/lastHash) and the newest signed checkpoint covering the chain must be reached,
 * so a cut-off tail is reported too (brokenAt = the first missing seq).
 */
@Injectable()
export class ChainVerifierService {
  private readonly checkpointKey: KeyObject;

  constructor(
    private readonly prisma: PrismaClient,
    config: ApiConfig,
  ) {
    this.checkpointKey = checkpointPublicKey(config.masterKey);
  }

  async verify(chain: string): Promise<VerifyView> {
    let head: { seq: number; hash: string } | null = null;
    if (chain !== CONTROL_CHAIN) {
      const s = await this.prisma.session.findUnique({ where: { id: chain }, select: { lastSeq: true, lastHash: true } });
      if (!s) throw new NotFoundError(`session ${chain} not found`);
      head = s.lastHash ? { seq: s.lastSeq, hash: s.lastHash } : null;
    }

    let events = 0;
    let prev = GENESIS_HASH;
    let lastSeq = 0;
    let brokenAt: number | null = null;
    let reason: string | null = null;
    const hashAt = new Map<number, string>();
    const cp = await this.latestCheckpoint(chain);

    outer: for (let after = -1; ; ) {
      const rows = await this.prisma.event.findMany({ where: { chain, seq: { gt: after } }, orderBy: { seq: 'asc' }, take: PAGE });
      for (const row of rows) {
        events++;
        const e = toRecordedEvent(row);
        if (e.prevHash !== prev) {
          brokenAt = e.seq;
          reason = 'prevHash does not link to the previous event (an event was removed or reordered)';
          break outer;
        }
        if (chainedEventHash(e) !== e.hash) {
          brokenAt = e.seq;
          reason = 'hash does not match the event content (the event was modified)';
          break outer;
        }
        prev = e.hash;
        lastSeq = e.seq;
        if (cp && e.seq === cp.seq) hashAt.set(e.seq, e.hash);
      }
      if (rows.length < PAGE) break;
      after = rows[rows.length - 1].seq;
    }

    if (brokenAt === null && head && (head.seq !== lastSeq || head.hash !== prev)) {
      brokenAt = head.seq > lastSeq ? lastSeq + 1 : lastSeq;
      reason = head.seq > lastSeq ? `events after seq ${lastSeq} are missing (session head is ${head.seq})` : 'session head does not match the last event';
    }
    if (cp && !cp.signatureValid) {
      if (brokenAt === null) reason = 'the newest checkpoint for this chain has an invalid signature';
    } else if (brokenAt === null && cp) {
      if (cp.seq > lastSeq) {
        brokenAt = lastSeq + 1;
        reason = `events after seq ${lastSeq} are missing (signed checkpoint ${cp.id} has the head at ${cp.seq})`;
      } else if (hashAt.get(cp.seq) !== cp.hash) {
        brokenAt = cp.seq;
        reason = `event ${cp.seq} differs from signed checkpoint ${cp.id}`;
      }
    }
    const valid = brokenAt === null && (!cp || cp.signatureValid);
    return {
      valid,
      events,
      brokenAt,
      reason,
      head: lastSeq ? { seq: lastSeq, hash: prev } : null,
      checkpoint: cp,
    };
  }

  /** The signed checkpoint with the highest head for this chain. */
  private async latestCheckpoint(chain: string): Promise<VerifyView['checkpoint']> {
    const rows = await this.prisma.$queryRaw<Array<{ id: string; time: Date; heads: unknown; signature: string }>>`
      SELECT id::text AS id, time, heads, signature FROM "Checkpoint"
       WHERE heads ? ${chain}
       ORDER BY (heads -> ${chain} ->> 'seq')::int DESC, time DESC
       LIMIT 1`;
    const row = rows[0];
    if (!row) return null;
    const h = (row.heads as Record<string, { seq: number; hash: string }>)[chain];
    return { id: row.id, time: row.time.toISOString(), seq: h.seq, hash: h.hash, signatureValid: checkpointSignatureValid(this.checkpointKey, row) };
  }
}
