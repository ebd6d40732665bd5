import type { RecordedEvent } from '@portcullis/protocol';

/**
 * OCSF and CEF carry a reference to the rows a statement returned (policy recording.results), not
 * the rows: a SIEM indexes every field it gets, and result data does not belong in it. The reference
 * names the event (id, hash: the chain proves the rows) and where the api serves it; the JSONL
 * export and GET /v1/sessions/{id} carry the rows themselves.
 */
export function withReturnedReference(e: RecordedEvent): RecordedEvent {
  const returned = e.data.returned;
  if (returned === undefined) return e;
  const { returned: _rows, ...data } = e.data;
  void _rows;
  const sets = Array.isArray(returned) ? returned : [];
  const rows = sets.reduce((n: number, s) => n + (Array.isArray((s as { rows?: unknown }).rows) ? (s as { rows: unknown[] }).rows.length : 0), 0);
  return {
    ...e,
    data: {
      ...data,
      returned: {
        ref: e.sessionId ? `/v1/sessions/${encodeURIComponent(e.sessionId)}/events?after=${e.seq - 1}&limit=1` : null,
        eventId: e.id,
        hash: e.hash,
        sets: sets.length,
        rows,
      },
    },
  };
}
