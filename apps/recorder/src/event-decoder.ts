import { CONTROL_CHAIN, CONTROL_EVENT_TYPES, SESSION_EVENT_TYPES, wireEventSchema, type WireEvent } from '@portcullis/protocol';
import { canonicalJsonFast, verifySignatureFast } from './recorded-event.js';

export type DeadLetterReason =
  | 'malformed-json'
  | 'schema'
  | 'unsigned'
  | 'bad-signature'
  | 'inconsistent'
  | 'unsupported-data'
  | 'result-not-counts'
  | 'seq-conflict'
  | 'id-conflict'
  | 'db-rejected';

export type Decoded = { ok: true; event: WireEvent; canonicalData: string } | { ok: false; reason: DeadLetterReason; detail: string };

const SESSION_TYPES: ReadonlySet<string> = new Set(SESSION_EVENT_TYPES);
const CONTROL_TYPES: ReadonlySet<string> = new Set(CONTROL_EVENT_TYPES);

/**
 * Validates one message from the stream: JSON, the wire schema, the HMAC signature, and the
 * invariants the chain writer relies on. Anything failing here is parked, never retried.
 */
export function decodeEvent(payload: Uint8Array, eventKey: Buffer): Decoded {
  const text = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('utf8');
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    return { ok: false, reason: 'malformed-json', detail: (err as Error).message };
  }
  const r = wireEventSchema.safeParse(raw);
  if (!r.success) {
    return { ok: false, reason: 'schema', detail: r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ') };
  }
  const event = r.data;
  if (!event.sig) return { ok: false, reason: 'unsigned', detail: 'no sig' };
  const canonicalData = canonicalJsonFast(event.data);
  if (!verifySignatureFast(event, canonicalData, eventKey)) return { ok: false, reason: 'bad-signature', detail: 'sig does not match the event key' };

  if (event.sessionId === null) {
    if (event.seq !== 0) return { ok: false, reason: 'inconsistent', detail: 'control-plane events carry seq 0' };
    if (!CONTROL_TYPES.has(event.type)) return { ok: false, reason: 'inconsistent', detail: `${event.type} is not a control-plane type` };
  } else {
    if (event.seq < 1) return { ok: false, reason: 'inconsistent', detail: 'session events carry seq >= 1' };
    if (event.sessionId === CONTROL_CHAIN) return { ok: false, reason: 'inconsistent', detail: `session id ${CONTROL_CHAIN} is reserved` };
    if (!SESSION_TYPES.has(event.type)) return { ok: false, reason: 'inconsistent', detail: `${event.type} is not a session type` };
    if (event.type === 'session.start' && event.seq !== 1) return { ok: false, reason: 'inconsistent', detail: 'session.start must be seq 1' };
  }
  // Results are recorded as counts (and masked samples), never as row data.
  if (event.type === 'result' && 'rows' in event.data && typeof event.data.rows !== 'number') {
    return { ok: false, reason: 'result-not-counts', detail: 'result.rows must be a count' };
  }
  // Postgres jsonb cannot hold U+0000; refuse it here rather than fail a whole batch.
  if (text.includes('\\u0000')) return { ok: false, reason: 'unsupported-data', detail: 'NUL character in event' };
  return { ok: true, event, canonicalData };
}
