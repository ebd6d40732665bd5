import { createHmac, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { canonicalJson } from './canonical.js';

/**
 * `statement` is one statement's query, decision and result in one event (its data is the union of
 * theirs: no member names collide). The gateway records a statement that way when it completes or
 * is refused; a statement still running after a second, held for approval, or cut off by the end of
 * its session is recorded as separate `query` and `decision` events first, then its `result`.
 */
export const SESSION_EVENT_TYPES = [
  'session.start', 'query', 'decision', 'result', 'statement', 'approval.requested', 'approval.decided', 'session.end',
  'terminal', 'command', 'file', 'forward', 'kube.request',
] as const;
export const CONTROL_EVENT_TYPES = [
  'policy.changed', 'connection.changed', 'identity.changed', 'group.changed', 'trust-policy.changed',
  'token.issued', 'token.revoked', 'access-request.changed', 'approval.decided', 'retention.deleted', 'checkpoint', 'auth.failed',
] as const;
export const EVENT_TYPES = [...new Set([...SESSION_EVENT_TYPES, ...CONTROL_EVENT_TYPES])] as [string, ...string[]];
export type EventType = (typeof SESSION_EVENT_TYPES)[number] | (typeof CONTROL_EVENT_TYPES)[number];

/**
 * `terminal` event data: one step of a terminal stream (SSH shell/exec, kubectl exec/attach), what the
 * client saw after masking. `stream` is unique within the session; `t` is seconds since the stream's
 * `start`. `o`/`i` carry UTF-8 text in `data`, `r` carries "COLSxROWS". `start` may carry the terminal
 * size and the command. The api turns a stream into asciicast v2 (GET /v1/sessions/{id}/recording.cast).
 */
export const TERMINAL_STREAM_EVENTS = ['start', 'o', 'i', 'r', 'end'] as const;
export const terminalEventDataSchema = z.object({
  stream: z.string().min(1).max(200),
  event: z.enum(TERMINAL_STREAM_EVENTS),
  t: z.number().min(0).max(1e9),
  data: z.string().optional(),
  width: z.number().int().min(1).max(10_000).optional(),
  height: z.number().int().min(1).max(10_000).optional(),
  command: z.string().optional(),
}).superRefine((d, ctx) => {
  if ((d.event === 'o' || d.event === 'i' || d.event === 'r') && d.data === undefined) ctx.addIssue({ code: 'custom', path: ['data'], message: `a terminal "${d.event}" event carries data` });
  if (d.event === 'r' && d.data !== undefined && !/^\d{1,5}x\d{1,5}$/.test(d.data)) ctx.addIssue({ code: 'custom', path: ['data'], message: 'a terminal "r" event carries "COLSxROWS"' });
});
export type TerminalEventData = z.infer<typeof terminalEventDataSchema>;

/** Chain name of control-plane events (session events chain on their sessionId). */
export const CONTROL_CHAIN = 'control-plane';

/**
 * An event as published on JetStream (before the recorder chains it).
 * - Session events: `sessionId` set, `seq` 1..n assigned by the gateway that owns the session.
 * - Control-plane events: `sessionId` null, `seq` 0; the recorder assigns the chain position.
 * `sig` = HMAC-SHA256 (hex) over the canonical JSON of the event without `sig`, keyed with the
 * event key (deriveKey(masterKey, 'event-signing'); gateways get it sealed in their snapshot).
 */
export const wireEventSchema = z.object({
  id: z.uuid(),
  sessionId: z.string().min(1).max(200).nullable(),
  seq: z.number().int().min(0),
  time: z.iso.datetime({ offset: true }),
  type: z.enum(EVENT_TYPES),
  identity: z.string().nullable(),
  connection: z.string().nullable(),
  gateway: z.string().nullable(),
  data: z.record(z.string(), z.unknown()),
  sig: z.string().optional(),
});
export type WireEvent = z.infer<typeof wireEventSchema>;

/** An event as stored and exported: the wire event (without sig) plus its place in the hash chain. */
export interface RecordedEvent extends Omit<WireEvent, 'sig'> {
  prevHash: string;
  hash: string;
}

export function signEvent(event: Omit<WireEvent, 'sig'>, key: Buffer): WireEvent {
  const sig = createHmac('sha256', key).update(canonicalJson(event)).digest('hex');
  return { ...event, sig };
}

export function verifyEventSignature(event: WireEvent, key: Buffer): boolean {
  if (!event.sig || !/^[0-9a-f]{64}$/.test(event.sig)) return false;
  const { sig, ...rest } = event;
  const want = createHmac('sha256', key).update(canonicalJson(rest)).digest();
  return timingSafeEqual(want, Buffer.from(sig, 'hex'));
}
