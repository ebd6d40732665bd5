import { type NatsConnection } from '@nats-io/transport-node';
import { type WireEvent } from '@portcullis/protocol';
import type { Logger } from '../logger.js';
export type SessionEventType = 'session.start' | 'query' | 'decision' | 'result' | 'approval.requested' | 'approval.decided' | 'session.end';
/** An event could not be persisted on JetStream. */
export declare class RecordingError extends Error {
    constructor(message: string, options?: {
        cause?: unknown;
    });
}
/** Ensures the event stream exists (idempotent; an existing stream's config is left as it is). */
export declare function ensureEventStream(nc: NatsConnection, prefix: string): Promise<void>;
/**
 * Publishes session events on JetStream, pipelined: each event is one core-NATS publish with a
 * reply subject on one shared inbox subscription, and JetStream's PubAck (or error) comes back on it.
 * Nothing is awaited per event and no per-event timer, promise or stack-capturing error is made
 * (nats.js `js.publish` is a full request per event: a RequestError + TimeoutError for async stack
 * traces, a timer, a promise chain — that was most of the gateway's CPU per statement). Acks are
 * matched by token; one sweep timer fails or retries (same msgID: JetStream dedups) what is overdue.
 * Publishes on one connection reach the stream in the order they were made.
 */
export declare class EventPublisher {
    private readonly nc;
    private readonly logger;
    private readonly timeoutMs;
    private readonly names;
    private readonly inbox;
    private readonly inFlight;
    private nextToken;
    private pendingBytes;
    private sweepTimer;
    private sub;
    private readonly msgHeaders;
    constructor(nc: NatsConnection, prefix: string, logger: Logger, timeoutMs?: number);
    /** Subject of one session's events. */
    subjectFor(sessionId: string | null): string;
    /** Publishes one signed event and resolves when JetStream has it. */
    publish(event: WireEvent): Promise<void>;
    /**
     * Publishes an already serialised event; `done` is called once: null when persisted, else a
     * RecordingError. Never throws.
     */
    send(subject: string, body: string, msgId: string, type: string, done: (err: Error | null) => void): void;
    /** Fails everything still awaiting an ack (gateway stopping). */
    close(): void;
    private transmit;
    private subscribe;
    private retryOrFail;
    private settle;
    private sweep;
}
export interface SessionIdentity {
    sessionId: string;
    identity: string;
    connection: string;
    gateway: string;
}
interface QueuedEvent {
    recorder: SessionRecorder;
    seq: number;
    time: number;
    type: SessionEventType;
    data: Record<string, unknown>;
    done: ((err: Error | null) => void) | null;
}
/**
 * One session's event sequence: seq 1..n, signed with the event key. Events are published in
 * order on one NATS connection (JetStream stores them in that order); acks come back in the
 * background except where the caller awaits them (session.start).
 * `required`: a failed event makes `onFailure` fire once (the session is then ended).
 */
export declare class SessionRecorder {
    private readonly publisher;
    private readonly who;
    private readonly eventKey;
    readonly mode: 'required' | 'best-effort';
    private readonly logger;
    private readonly onFailure;
    private seq;
    private failed;
    private outstanding;
    private waiters;
    private readonly subject;
    /** canonical JSON of the members that are the same in every event of the session */
    private readonly fixedHead;
    private readonly fixedIds;
    private readonly hmacKey;
    constructor(publisher: EventPublisher | null, who: SessionIdentity, eventKey: Buffer, mode: 'required' | 'best-effort', logger: Logger, onFailure: (err: Error) => void);
    /** Publishes an event; the returned promise resolves when it is persisted (or rejects). */
    record(type: SessionEventType, data: Record<string, unknown>): Promise<void>;
    /** Fire and forget (failures go through onFailure/logs). */
    emit(type: SessionEventType, data: Record<string, unknown>): void;
    /** Waits for every event emitted so far to be acked or failed. */
    flush(): Promise<void>;
    private enqueue;
    /** @internal called by the queue drain */
    publishQueued(e: QueuedEvent): void;
    /**
     * The signed wire event as JSON: the canonical JSON of the event without `sig` (what the HMAC
     * covers, protocol `signEvent`) with `sig` appended. Built by hand for the fixed members; `data`
     * goes through canonicalJson.
     */
    serialise(id: string, e: Pick<QueuedEvent, 'seq' | 'time' | 'type' | 'data'>): {
        body: string;
        sig: string;
    };
    private settled;
}
export {};
