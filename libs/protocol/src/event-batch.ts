import { createHmac, timingSafeEqual, type KeyObject } from 'node:crypto';
import { canonicalJson } from './canonical.js';
import type { WireEvent } from './events.js';

/**
 * Several events in one JetStream message: the gateway's normal form. One publish, one stored
 * message and one ack carry many events (nats-server's work per stored message is ~5× that of the
 * event inside it, and a per-event ack was most of the gateway's recording cost).
 *
 * - Body: a JSON array of wire events **without** `sig`, in publication order (events of one
 *   session in seq order; several sessions may share a batch).
 * - Header `Portcullis-Batch-Sig`: HMAC-SHA256 (lowercase hex) over the body bytes exactly as
 *   sent, keyed with the event key (the same key that signs single events). One HMAC covers every
 *   event of the batch, so the events themselves carry no `sig`.
 * - `Nats-Msg-Id`: unique per batch (a retry of the same batch reuses it; JetStream dedups).
 *
 * A message without the header is a single signed event (what the api and approvals publish).
 * The recorder acknowledges a batch message only once every event in it is stored (or parked).
 */
export const EVENT_BATCH_SIG_HEADER = 'Portcullis-Batch-Sig';
/** Publishers keep a batch body under this (NATS' default max_payload is 1 MiB). */
export const MAX_EVENT_BATCH_BYTES = 512 * 1024;
/** Consumers refuse batches with more events than this. */
export const MAX_EVENT_BATCH_EVENTS = 4096;

export type UnsignedWireEvent = Omit<WireEvent, 'sig'>;

/** HMAC-SHA256 hex of a batch body. */
export function signEventBatchBody(body: string | Uint8Array, key: Buffer | KeyObject): string {
  return createHmac('sha256', key).update(body).digest('hex');
}

/** Checks a batch body against its `Portcullis-Batch-Sig` header value (constant time). */
export function verifyEventBatchBody(body: Uint8Array, sig: string | undefined, key: Buffer | KeyObject): boolean {
  if (!sig || sig.length !== 64 || !/^[0-9a-f]{64}$/.test(sig)) return false;
  const want = createHmac('sha256', key).update(body).digest();
  return timingSafeEqual(want, Buffer.from(sig, 'hex'));
}

/**
 * Builds a batch message from events (each serialised as canonical JSON). Publishers on a hot path
 * may assemble the body themselves; it only has to be a JSON array of unsigned wire events.
 */
export function encodeEventBatch(events: readonly UnsignedWireEvent[], key: Buffer | KeyObject): { body: string; sig: string } {
  const body = `[${events.map((e) => canonicalJson(e)).join(',')}]`;
  return { body, sig: signEventBatchBody(body, key) };
}
