import {
  canonicalJsonFast, CONTROL_CHAIN, CONTROL_EVENT_TYPES, EVENT_TYPES, MAX_EVENT_BATCH_EVENTS, SESSION_EVENT_TYPES, verifyEventBatchBody, wireEventSchema,
  type WireEvent,
} from '@portcullis/protocol';
import { verifySignatureFast } from './event-signature.js';

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

export type Rejected = { ok: false; reason: DeadLetterReason; detail: string };
export type Decoded = { ok: true; event: WireEvent; canonicalData: string } | Rejected;

/**
 * A message from the stream: a single signed event, or a batch (libs/protocol event-batch.ts).
 * A message that fails as a whole (bad JSON, bad batch signature) is `ok: false` and parked whole;
 * in a batch whose signature holds, each event is judged on its own (`events[i]`).
 */
export type DecodedMessage = { ok: true; batch: boolean; events: Decoded[] } | Rejected;

const SESSION_TYPES: ReadonlySet<string> = new Set(SESSION_EVENT_TYPES);
const CONTROL_TYPES: ReadonlySet<string> = new Set(CONTROL_EVENT_TYPES);
const ALL_TYPES: ReadonlySet<string> = new Set(EVENT_TYPES);

function textOf(payload: Uint8Array): string {
  return Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('utf8');
}

/** Decodes one message: `batchSig` is its Portcullis-Batch-Sig header (undefined for a single event). */
export function decodeMessage(payload: Uint8Array, batchSig: string | undefined, eventKey: Buffer): DecodedMessage {
  if (batchSig === undefined) return { ok: true, batch: false, events: [decodeEvent(payload, eventKey)] };
  if (!verifyEventBatchBody(payload, batchSig, eventKey)) return { ok: false, reason: 'bad-signature', detail: 'batch signature does not match the event key' };
  let raw: unknown;
  try {
    raw = JSON.parse(textOf(payload));
  } catch (err) {
    return { ok: false, reason: 'malformed-json', detail: (err as Error).message };
  }
  if (!Array.isArray(raw)) return { ok: false, reason: 'schema', detail: '(root): a batch is a JSON array of events' };
  if (raw.length === 0 || raw.length > MAX_EVENT_BATCH_EVENTS) return { ok: false, reason: 'schema', detail: `(root): a batch holds 1..${MAX_EVENT_BATCH_EVENTS} events, not ${raw.length}` };
  const events: Decoded[] = new Array(raw.length);
  for (let i = 0; i < raw.length; i++) {
    const v = validate(raw[i]);
    if (!v.ok) {
      events[i] = v;
      continue;
    }
    // The batch signature covers the event; a `sig` inside a batch is ignored (and not stored).
    const event = v.event;
    delete event.sig;
    events[i] = checkInvariants(event, canonicalJsonFast(event.data));
  }
  return { ok: true, batch: true, events };
}

/**
 * Validates one single-event message: JSON, the wire schema, the HMAC signature, and the
 * invariants the chain writer relies on. Anything failing here is parked, never retried.
 */
export function decodeEvent(payload: Uint8Array, eventKey: Buffer): Decoded {
  let raw: unknown;
  try {
    raw = JSON.parse(textOf(payload));
  } catch (err) {
    return { ok: false, reason: 'malformed-json', detail: (err as Error).message };
  }
  const v = validate(raw);
  if (!v.ok) return v;
  const event = v.event;
  if (!event.sig) return { ok: false, reason: 'unsigned', detail: 'no sig' };
  const canonicalData = canonicalJsonFast(event.data);
  if (!verifySignatureFast(event, canonicalData, eventKey)) return { ok: false, reason: 'bad-signature', detail: 'sig does not match the event key' };
  return checkInvariants(event, canonicalData);
}

function checkInvariants(event: WireEvent, canonicalData: string): Decoded {
  if (event.sessionId === null) {
    if (event.seq !== 0) return { ok: false, reason: 'inconsistent', detail: 'control-plane events carry seq 0' };
    if (!CONTROL_TYPES.has(event.type)) return { ok: false, reason: 'inconsistent', detail: `${event.type} is not a control-plane type` };
  } else {
    if (event.seq < 1) return { ok: false, reason: 'inconsistent', detail: 'session events carry seq >= 1' };
    if (event.sessionId === CONTROL_CHAIN) return { ok: false, reason: 'inconsistent', detail: `session id ${CONTROL_CHAIN} is reserved` };
    if (!SESSION_TYPES.has(event.type)) return { ok: false, reason: 'inconsistent', detail: `${event.type} is not a session type` };
    if (event.type === 'session.start' && event.seq !== 1) return { ok: false, reason: 'inconsistent', detail: 'session.start must be seq 1' };
  }
  // `rows` is a count; the rows a policy keeps (recording.results) travel as `returned`, after masking.
  if ((event.type === 'result' || event.type === 'statement') && 'rows' in event.data && typeof event.data.rows !== 'number') {
    return { ok: false, reason: 'result-not-counts', detail: `${event.type}.rows must be a count` };
  }
  // Postgres jsonb cannot hold U+0000; refuse it here rather than fail a whole batch.
  if (canonicalData.includes('\\u0000') || hasNul(event)) return { ok: false, reason: 'unsupported-data', detail: 'NUL character in event' };
  return { ok: true, event, canonicalData };
}

function hasNul(e: WireEvent): boolean {
  for (const s of [e.id, e.sessionId, e.time, e.identity, e.connection, e.gateway, e.sig]) if (s && s.includes('\u0000')) return true;
  return false;
}

/*
 * The wire schema, checked by hand for what publishers actually send; anything the fast check is
 * not sure of goes to the zod schema, which decides (and words the error). The fast check only
 * accepts values the schema accepts — validate.spec.ts holds the two equal on a table of inputs.
 */
const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[1-8][0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}$/;
/** toISOString() form with a day that exists in every month (01–28). */
const ISO_MS_UTC = /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|1\d|2[0-8])T([01]\d|2[0-3]):[0-5]\d:[0-5]\d\.\d{3}Z$/;
const MEMBERS = new Set(['id', 'sessionId', 'seq', 'time', 'type', 'identity', 'connection', 'gateway', 'data', 'sig']);

function nullableString(v: unknown): boolean {
  return v === null || typeof v === 'string';
}

function fastWireEvent(raw: unknown): WireEvent | null {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return null;
  const r = raw as Record<string, unknown>;
  for (const k in r) if (!MEMBERS.has(k)) return null;
  const { id, sessionId, seq, time, type, identity, connection, gateway, data, sig } = r;
  if (typeof id !== 'string' || !UUID.test(id)) return null;
  if (sessionId !== null && (typeof sessionId !== 'string' || sessionId.length < 1 || sessionId.length > 200)) return null;
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 0) return null;
  if (typeof time !== 'string' || !ISO_MS_UTC.test(time)) return null;
  if (typeof type !== 'string' || !ALL_TYPES.has(type)) return null;
  if (!nullableString(identity) || !nullableString(connection) || !nullableString(gateway)) return null;
  if (typeof data !== 'object' || data === null || Array.isArray(data) || Object.getPrototypeOf(data) !== Object.prototype) return null;
  // zod's record drops an own `__proto__` key: let it decide those
  if (Object.hasOwn(data, '__proto__')) return null;
  if (sig !== undefined && typeof sig !== 'string') return null;
  const e = { id, sessionId, seq, time, type, identity, connection, gateway, data } as WireEvent;
  if (sig !== undefined) e.sig = sig as string;
  return e;
}

/** The wire schema: the fast check, else zod. */
export function validate(raw: unknown): { ok: true; event: WireEvent } | Rejected {
  const fast = fastWireEvent(raw);
  if (fast) return { ok: true, event: fast };
  const r = wireEventSchema.safeParse(raw);
  if (!r.success) {
    return { ok: false, reason: 'schema', detail: r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ') };
  }
  return { ok: true, event: r.data };
}
