import type { RecordedEvent } from '@portcullis/protocol';

/** The decision on a statement or command, as its event recorded it. */
export interface TimelineDecision {
  action: string;
  rule: string | null;
  reason: string | null;
}

/** A held statement's approval, from its approval.requested / approval.decided events. */
export interface TimelineApproval {
  id: string | null;
  status: string;
  requestedAt: string;
  decidedBy: string | null;
  decidedAt: string | null;
  comment: string | null;
}

/** One result of a statement (a simple Query has one; each Execute of a prepared statement one more). */
export interface TimelineResult {
  seq: number;
  tag: string | null;
  rows: number | null;
  durationMs: number | null;
  error: { code: string; message: string } | null;
  masking: { columns: string[]; values: number } | null;
  /** policy recording.results: the rows the client received, as it received them (masked cells marked) */
  returned: unknown[] | null;
}

export type TimelineItem =
  | {
      kind: 'statement';
      seq: number;
      time: string;
      /** the SQL (Postgres) or command line (SSH / Kubernetes `command` events) */
      sql: string | null;
      protocol: string | null;
      decision: TimelineDecision | null;
      approval: TimelineApproval | null;
      results: TimelineResult[];
    }
  | { kind: 'event'; seq: number; time: string; type: string; data: Record<string, unknown> };

const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

function decisionOf(d: Record<string, unknown>): TimelineDecision | null {
  return typeof d.action === 'string' ? { action: d.action, rule: str(d.rule), reason: str(d.reason) } : null;
}

function resultOf(e: RecordedEvent): TimelineResult {
  const d = e.data;
  const err = d.error as { code?: unknown; message?: unknown } | undefined;
  const masking = d.masking as { columns?: unknown; values?: unknown } | undefined;
  return {
    seq: e.seq,
    tag: str(d.tag),
    rows: num(d.rows),
    durationMs: num(d.durationMs),
    error: err && typeof err === 'object' ? { code: String(err.code ?? ''), message: String(err.message ?? '') } : null,
    masking: masking && Array.isArray(masking.columns) ? { columns: masking.columns.map(String), values: Number(masking.values ?? 0) } : null,
    returned: Array.isArray(d.returned) ? d.returned : null,
  };
}

/**
 * A session's events (in seq order) as a replay, one item per statement: its SQL, the decision and
 * rule, the approval (who, when, comment) when it was held, and its results with the rows kept.
 * A `statement` event is all of that in one; `query` starts a statement that the following
 * `decision`, `approval.*` and `result` events belong to. Everything else is an item of its own.
 */
export function buildTimeline(events: RecordedEvent[]): TimelineItem[] {
  const items: TimelineItem[] = [];
  // (assigned in start() too: a cast keeps the compiler from narrowing it to null)
  let current = null as Extract<TimelineItem, { kind: 'statement' }> | null;
  const start = (e: RecordedEvent, sql: string | null): Extract<TimelineItem, { kind: 'statement' }> => {
    current = { kind: 'statement', seq: e.seq, time: e.time, sql, protocol: str(e.data.protocol), decision: null, approval: null, results: [] };
    items.push(current);
    return current;
  };
  for (const e of events) {
    const d = e.data;
    switch (e.type) {
      case 'statement': {
        const s = start(e, str(d.sql));
        s.decision = decisionOf(d);
        s.results.push(resultOf(e));
        current = null;
        break;
      }
      case 'query':
        start(e, str(d.sql));
        break;
      case 'command': {
        const s = start(e, str(d.command) ?? str(d.line) ?? str(d.sql));
        s.protocol = str(d.protocol) ?? str(d.source) ?? 'command';
        s.decision = decisionOf(d);
        break;
      }
      case 'decision':
        if (current) current.decision = decisionOf(d);
        else items.push({ kind: 'event', seq: e.seq, time: e.time, type: e.type, data: d });
        break;
      case 'approval.requested': {
        const s = current ?? start(e, str(d.sql));
        s.approval = { id: str(d.approvalId), status: 'pending', requestedAt: e.time, decidedBy: null, decidedAt: null, comment: null };
        break;
      }
      case 'approval.decided': {
        const s = current ?? start(e, null);
        const a = s.approval ?? { id: str(d.approvalId), status: 'pending', requestedAt: e.time, decidedBy: null, decidedAt: null, comment: null };
        a.status = str(d.status) ?? a.status;
        a.decidedBy = str(d.decidedBy);
        a.decidedAt = e.time;
        a.comment = str(d.comment);
        s.approval = a;
        break;
      }
      case 'result':
        if (current) current.results.push(resultOf(e));
        else items.push({ kind: 'event', seq: e.seq, time: e.time, type: e.type, data: d });
        break;
      case 'terminal':
        // the terminal's bytes are in its recording (recording.cast): only where a stream starts and ends
        if (d.event === 'start' || d.event === 'end') {
          items.push({ kind: 'event', seq: e.seq, time: e.time, type: e.type, data: { stream: d.stream, event: d.event, ...(d.command !== undefined ? { command: d.command } : {}) } });
        }
        break;
      default:
        // session.start/end, file, kube.request...: shown as they are
        items.push({ kind: 'event', seq: e.seq, time: e.time, type: e.type, data: d });
        current = null;
    }
  }
  return items;
}
