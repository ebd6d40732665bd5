import { Injectable } from '@nestjs/common';
import { PrismaClient, type SessionModel } from '@portcullis/db';
import { CONTROL_CHAIN, toRecordedEvent } from '@portcullis/protocol';
import { NotFoundError } from '../common/errors.js';
import { hasRole, type ApiPrincipal } from '../auth/principal.js';
import { buildTimeline } from './timeline.js';
import type { ListSessionsQuery, SessionDetailQuery, SessionDetailView, SessionEventsQuery, SessionEventsView, SessionView } from './dto/session.dto.js';

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

/** Auditors and admins see every session; anyone else only their own (CONTRACT roles). */
export function seesAllSessions(p: ApiPrincipal): boolean {
  return hasRole(p, 'auditor');
}

/** Event conditions of the `had` filter (on "Event" e of the session's chain). */
const MARK_SQL = {
  block: `e.type IN ('decision', 'statement', 'command') AND e.data->>'action' = 'block'`,
  approval: `e.type = 'approval.requested'`,
  masking: `e.type IN ('result', 'statement') AND e.data ? 'masking'`,
} as const;

/** Recorded sessions (written by the recorder; read-only here). */
@Injectable()
export class SessionsService {
  constructor(private readonly prisma: PrismaClient) {}

  async list(q: ListSessionsQuery, p: ApiPrincipal): Promise<SessionView[]> {
    const where: string[] = [];
    const args: unknown[] = [];
    const arg = (v: unknown): string => `$${args.push(v)}`;
    // someone who sees only their own sessions asking for another identity's gets none, not theirs
    if (!seesAllSessions(p)) where.push(`s.identity = ${arg(p.subject)}`);
    if (q.identity) where.push(`s.identity = ${arg(q.identity)}`);
    if (q.connection) where.push(`s.connection = ${arg(q.connection)}`);
    if (q.since) where.push(`s."startedAt" >= ${arg(new Date(q.since))}`);
    if (q.until) where.push(`s."startedAt" < ${arg(new Date(q.until))}`);
    if (q.protocol) where.push(`coalesce((SELECT c.kind FROM "Connection" c WHERE c.name = s.connection), 'postgres') = ${arg(q.protocol)}`);
    for (const m of q.had ?? []) where.push(`EXISTS (SELECT 1 FROM "Event" e WHERE e.chain = s.id AND ${MARK_SQL[m]})`);
    const sql = `SELECT s.* FROM "Session" s ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY s."startedAt" DESC, s.id ASC LIMIT ${arg(q.limit)}`;
    const rows = await this.prisma.$queryRawUnsafe<SessionModel[]>(sql, ...args);
    return rows.map(toSessionView);
  }

  /**
   * The session if the caller may see it. A session that is not theirs is one that does not exist:
   * the answer is the same 404 either way, so ids of others' sessions cannot be probed.
   */
  async visible(id: string, p: ApiPrincipal): Promise<SessionModel> {
    const s = await this.prisma.session.findUnique({ where: { id } });
    if (!s || (!seesAllSessions(p) && s.identity !== p.subject)) throw new NotFoundError(`session ${id} not found`);
    return s;
  }

  /** A chain the caller may verify: a visible session, or the control plane's (auditors and admins). */
  async visibleChain(id: string, p: ApiPrincipal): Promise<void> {
    if (id === CONTROL_CHAIN) {
      if (!seesAllSessions(p)) throw new NotFoundError(`session ${id} not found`);
      return;
    }
    await this.visible(id, p);
  }

  async get(id: string, p: ApiPrincipal): Promise<SessionView> {
    return toSessionView(await this.visible(id, p));
  }

  /**
   * The session and its replay: per statement the SQL, the decision and rule, the approval (who,
   * when, comment), the result summary and the rows kept by the policy's recording.results.
   */
  async detail(id: string, q: SessionDetailQuery, p: ApiPrincipal): Promise<SessionDetailView> {
    const s = await this.visible(id, p);
    const connection = await this.prisma.connection.findUnique({ where: { name: s.connection }, select: { kind: true } }).catch(() => null);
    const rows = await this.prisma.event.findMany({ where: { chain: id, seq: { gt: q.after } }, orderBy: { seq: 'asc' }, take: q.limit + 1 });
    const more = rows.length > q.limit;
    let timeline = buildTimeline((more ? rows.slice(0, q.limit) : rows).map(toRecordedEvent));
    let next: number | null = null;
    if (more) {
      // the last statement may go on in the next page: it starts the next page instead
      const last = timeline.at(-1);
      if (last && timeline.length > 1) {
        timeline = timeline.slice(0, -1);
        next = last.seq - 1;
      } else {
        next = rows[q.limit - 1].seq;
      }
    }
    return { ...toSessionView(s), protocol: (connection as { kind?: string } | null)?.kind ?? null, timeline, next };
  }

  /**
   * The raw events in seq order: statements, decisions (with rule and reason), masking summaries,
   * approvals, row counts, durations, errors, and the result rows a policy's recording.results kept.
   */
  async events(id: string, q: SessionEventsQuery, p: ApiPrincipal): Promise<SessionEventsView> {
    const session = await this.get(id, p);
    const rows = await this.prisma.event.findMany({ where: { chain: id, seq: { gt: q.after } }, orderBy: { seq: 'asc' }, take: q.limit + 1 });
    const more = rows.length > q.limit;
    const page = more ? rows.slice(0, q.limit) : rows;
    return { session, events: page.map(toRecordedEvent), next: more ? page[page.length - 1].seq : null };
  }
}
