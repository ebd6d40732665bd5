import { Injectable } from '@nestjs/common';
import { PrismaClient } from '@portcullis/db';
import { toRecordedEvent } from '@portcullis/protocol';
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

/**
 * The SIEM export: every data-plane and control-plane event after a cursor, oldest first.
 * Paging by Event.position is gap-free because the recorder holds one advisory lock from drawing
 * positions to COMMIT (apps/recorder chain-writer `appendRows`): a row with a higher position is
 * never visible before every lower one is. At-least-once: a client that loses a response re-reads
 * from its last cursor.
 */
@Injectable()
export class AuditExportService {
  constructor(private readonly prisma: PrismaClient) {}

  async page(q: AuditExportQuery): Promise<ExportPage> {
    const after = decodeCursor(q.cursor);
    const rows = await this.prisma.event.findMany({
      where: { position: { gt: after } },
      orderBy: { position: 'asc' },
      take: q.limit,
    });
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
    const last = rows.length ? rows[rows.length - 1].position : after;
    return {
      body: lines.length ? `${lines.join('\n')}\n` : '',
      contentType: CONTENT_TYPES[q.format],
      nextCursor: encodeCursor(last),
      count: rows.length,
    };
  }
}
