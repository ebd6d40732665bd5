import { hash as oneShotHash } from 'node:crypto';
import { chainHash } from './canonical.js';
import type { RecordedEvent } from './events.js';

/**
 * The stored form of an event, exactly as it is hashed: the wire event without `sig`, with the
 * chain position (`seq`; for control-plane events the recorder-assigned one), `time` normalised to
 * the millisecond ISO form Postgres keeps (timestamptz(3)) and a lowercase id, plus `prevHash`.
 * The recorder builds it to write a row; the api rebuilds it from the row (toRecordedEvent) to
 * show and verify it: the same canonical JSON, hence the same hash.
 */
export interface ChainedEvent {
  id: string;
  sessionId: string | null;
  seq: number;
  time: string;
  type: string;
  identity: string | null;
  connection: string | null;
  gateway: string | null;
  data: Record<string, unknown>;
  prevHash: string;
}

/** Already in the form toISOString() gives (the usual case): parsing it back costs ~2.5 µs an event. */
const ISO_MS_UTC = /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:[0-5]\d\.\d{3}Z$/;

/** An event's time in the form it is hashed and stored: toISOString() of the instant. */
export function normaliseTime(time: string | Date): string {
  if (typeof time === 'string' && ISO_MS_UTC.test(time) && (time.charCodeAt(8) < 0x32 || time.charCodeAt(8) === 0x32 && time.charCodeAt(9) <= 0x38)) {
    // days 01-28 exist in every month; other days take the exact path (Date rolls 02-30 over)
    return time;
  }
  return (time instanceof Date ? time : new Date(time)).toISOString();
}

/** The chain hash of a stored event (its `hash` member, if any, is not hashed). */
export function chainedEventHash(event: ChainedEvent): string {
  return chainHash(event.prevHash, event as unknown as Record<string, unknown>);
}

const J = JSON.stringify;

/**
 * chainedEventHash() without re-serialising `data`: the canonical JSON of a ChainedEvent assembled
 * by hand (keys in canonicalJson's sorted order) around the event's already-canonical `data`. Every
 * other member is a string, null or an integer, where canonicalJson is JSON.stringify.
 * recorded-event.spec.ts holds it equal to chainedEventHash.
 */
export function chainedEventHashFast(e: Omit<ChainedEvent, 'data'>, canonicalData: string): string {
  const body = `{"connection":${J(e.connection)},"data":${canonicalData},"gateway":${J(e.gateway)},"id":${J(e.id)},"identity":${J(e.identity)},"prevHash":${J(e.prevHash)},"seq":${e.seq},"sessionId":${J(e.sessionId)},"time":${J(e.time)},"type":${J(e.type)}}`;
  return oneShotHash('sha256', e.prevHash + body, 'hex');
}

/** A stored event row (the columns the hash covers, as the database returns them). */
export interface EventRow {
  id: string;
  sessionId: string | null;
  seq: number;
  time: Date;
  type: string;
  identity: string | null;
  connection: string | null;
  gateway: string | null;
  data: unknown;
  prevHash: string;
  hash: string;
}

/** A stored row as every reader shows it and as its hash is recomputed. */
export function toRecordedEvent(row: EventRow): RecordedEvent {
  return {
    id: row.id,
    sessionId: row.sessionId,
    seq: row.seq,
    time: normaliseTime(row.time),
    type: row.type,
    identity: row.identity,
    connection: row.connection,
    gateway: row.gateway,
    data: (row.data ?? {}) as Record<string, unknown>,
    prevHash: row.prevHash,
    hash: row.hash,
  };
}
