import { chainHash } from '@portcullis/protocol';

/**
 * The stored form of an event, exactly as it is hashed: the wire event without `sig`, with the
 * chain position (`seq`; for control-plane events the recorder-assigned one), `time` normalised to
 * the millisecond ISO form Postgres keeps (timestamptz(3)) and a lowercase id, plus `prevHash`.
 * A verifier rebuilding this object from a row gets the same canonical JSON, hence the same hash.
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

export function normaliseTime(time: string | Date): string {
  return (time instanceof Date ? time : new Date(time)).toISOString();
}

export function hashOf(event: ChainedEvent): string {
  return chainHash(event.prevHash, event as unknown as Record<string, unknown>);
}
