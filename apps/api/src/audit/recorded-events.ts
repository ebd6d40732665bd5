import { chainHash, type RecordedEvent } from '@portcullis/protocol';
import type { EventModel } from '@portcullis/db';

/**
 * A stored Event row as the recorder hashed it and as every reader shows it: the wire event
 * without `sig`, time in millisecond ISO form (timestamptz(3)), plus prevHash and hash.
 * Kept equal to apps/recorder/src/recorded-event.ts (the recorder writes, the api verifies;
 * sessions-verify.test.ts runs one against the other).
 */
export function toRecordedEvent(row: Pick<EventModel, 'id' | 'sessionId' | 'seq' | 'time' | 'type' | 'identity' | 'connection' | 'gateway' | 'data' | 'prevHash' | 'hash'>): RecordedEvent {
  return {
    id: row.id,
    sessionId: row.sessionId,
    seq: row.seq,
    time: row.time.toISOString(),
    type: row.type,
    identity: row.identity,
    connection: row.connection,
    gateway: row.gateway,
    data: (row.data ?? {}) as Record<string, unknown>,
    prevHash: row.prevHash,
    hash: row.hash,
  };
}

/** Recomputes a recorded event's hash from its content and prevHash. */
export function recomputeHash(e: RecordedEvent): string {
  return chainHash(e.prevHash, e as unknown as Record<string, unknown>);
}
