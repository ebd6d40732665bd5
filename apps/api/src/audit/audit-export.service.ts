import { Injectable } from '@nestjs/common';
import { PrismaClient } from '@portcullis/db';
import { toRecordedEvent, type EventRow } from '@portcullis/protocol';
import { toCef } from './cef.js';
import { decodeCursor, encodeCursor } from './export-cursor.js';
import { toOcsf } from './ocsf.js';
import { withReturnedReference } from './returned-reference.js';
import type { AuditExportQuery, ExportFormat } from './dto/audit-export.dto.js';

export interface ExportPage {
  body: string;
  contentType: string;
  nextCursor: string;
  count: number;
}

const CONTENT_TYPES: Record<ExportFormat, string> = {
  jsonl: 'application/x-ndjson; charset=utf-8',
  ocsf: 'application/x-ndjson; charset=utf-8',
  cef: 'text/plain; charset=utf-8',
};

interface ExportRow extends EventRow {
  txid: bigint;
  position: bigint;
}

/**
 * The SIEM export: every data-plane and control-plane event after a cursor, oldest first.
 *
 * Recorders write concurrently, so positions (drawn from a sequence at insert) do not become
 * visible in position order: a transaction that commits later may hold lower positions than rows a
 * SIEM has already paged past. Each row therefore carries the id of the transaction that wrote it,
 * and the export pages in (txid, position) order only over transactions older than the oldest one
 * still in flight (`pg_snapshot_xmin` of the statement's snapshot): every transaction below that is
 * finished, and any row that becomes visible later belongs to a transaction at or above it, i.e.
 * after the cursor. So no gaps and no duplicates, without any lock on the writers' side. A
 * session's rows keep chain order: its next batch takes the chain lock after the previous one
 * committed, and a transaction id is assigned at its first write, after that lock.
 *
 * The cost: an export does not see rows past a write transaction still open anywhere in the
 * Postgres cluster (they appear once it ends). At-least-once: a client that loses a response
 * re-reads from its last cursor.
 */
@Injectable()
export class AuditExportService {
  constructor(private readonly prisma: PrismaClient) {}

  async page(q: AuditExportQuery): Promise<ExportPage> {
    const after = decodeCursor(q.cursor);
    const rows = await this.prisma.$queryRaw<ExportRow[]>`
      SELECT id::text AS id, "sessionId", seq, time, type, identity, connection, gateway, data, "prevHash", hash, txid, position
      FROM "Event"
      WHERE (txid, position) > (${after.txid}, ${after.position})
        AND txid < (pg_snapshot_xmin(pg_current_snapshot())::text)::bigint
      ORDER BY txid, position
      LIMIT ${q.limit}`;
    const lines = rows.map((row) => {
      const e = toRecordedEvent(row);
      switch (q.format) {
        case 'ocsf':
          return JSON.stringify(toOcsf(withReturnedReference(e), row.position));
        case 'cef':
          return toCef(withReturnedReference(e), row.position);
        default:
          return JSON.stringify(e);
      }
    });
    const last = rows.length ? rows[rows.length - 1] : after;
    return {
      body: lines.length ? `${lines.join('\n')}\n` : '',
      contentType: CONTENT_TYPES[q.format],
      nextCursor: encodeCursor({ txid: last.txid, position: last.position }),
      count: rows.length,
    };
  }
}
