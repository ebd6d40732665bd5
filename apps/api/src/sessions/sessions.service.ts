import { Injectable } from '@nestjs/common';
import { PrismaClient, type SessionModel } from '@portcullis/db';
import { toRecordedEvent } from '@portcullis/protocol';
import { NotFoundError } from '../common/errors.js';
import type { ListSessionsQuery, SessionEventsQuery, SessionEventsView, SessionView } from './dto/session.dto.js';

export function toSessionView(s: SessionModel): SessionView {
  return {
    id: s.id,
    identity: s.identity,
    connection: s.connection,
    gateway: s.gateway,
    pool: s.pool,
    clientAddr: s.clientAddr,
    startedAt: s.startedAt.toISOString(),
    endedAt: s.endedAt ? s.endedAt.toISOString() : null,
    events: s.events,
    lastSeq: s.lastSeq,
    lastHash: s.lastHash,
  };
}

/** Recorded sessions (written by the recorder; read-only here). */
@Injectable()
export class SessionsService {
  constructor(private readonly prisma: PrismaClient) {}

  async list(q: ListSessionsQuery): Promise<SessionView[]> {
    const rows = await this.prisma.session.findMany({
      where: {
        ...(q.identity ? { identity: q.identity } : {}),
        ...(q.connection ? { connection: q.connection } : {}),
        ...(q.since ? { startedAt: { gte: new Date(q.since) } } : {}),
      },
      orderBy: [{ startedAt: 'desc' }, { id: 'asc' }],
      take: q.limit,
    });
    return rows.map(toSessionView);
  }

  async get(id: string): Promise<SessionView> {
    const s = await this.prisma.session.findUnique({ where: { id } });
    if (!s) throw new NotFoundError(`session ${id} not found`);
    return toSessionView(s);
  }

  /**
   * The replay timeline in seq order: statements, decisions (with rule and reason), masking
   * summaries, approvals, row counts, durations and errors, as recorded. Results carry counts and
   * masking summaries only; the recorder refuses row data.
   */
  async events(id: string, q: SessionEventsQuery): Promise<SessionEventsView> {
    const session = await this.get(id);
    const rows = await this.prisma.event.findMany({ where: { chain: id, seq: { gt: q.after } }, orderBy: { seq: 'asc' }, take: q.limit + 1 });
    const more = rows.length > q.limit;
    const page = more ? rows.slice(0, q.limit) : rows;
    return { session, events: page.map(toRecordedEvent), next: more ? page[page.length - 1].seq : null };
  }
}
