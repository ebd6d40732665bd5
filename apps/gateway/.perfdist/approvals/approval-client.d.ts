import type { NatsConnection } from '@nats-io/transport-node';
import { Registry } from 'prom-client';
import { type ApprovalDecision, type ApprovalJob } from '@portcullis/protocol';
import type { Logger } from '../logger.js';
/** The approval could not be requested (Redis or NATS unreachable, no event key yet): fail closed. */
export declare class ApprovalUnavailableError extends Error {
    constructor(message: string, options?: {
        cause?: unknown;
    });
}
export interface ApprovalClientOptions {
    nc: NatsConnection;
    natsPrefix: string;
    redisUrl: string;
    /** BullMQ key prefix (env APPROVALS_QUEUE_PREFIX, default `bull`) */
    queuePrefix?: string;
    /** the snapshot's verificationKeys (read on every use) */
    verificationKeys: () => readonly Record<string, unknown>[];
    /** the event key from the snapshot: HMAC of cancel/consume messages (null while there is no config) */
    gatewayKey: () => Buffer | null;
    log: Logger;
    registry?: Registry;
    /** how long past the policy's timeoutSeconds the gateway waits before it fails closed (default 5 s) */
    graceSeconds?: number;
    enqueueTimeoutMs?: number;
    consumeTimeoutMs?: number;
}
/**
 * The gateway's side of approvals. `requestAndWait` holds one statement: it subscribes to the decision
 * subject first (so a fast decision cannot slip past), enqueues the job, and resolves with the first
 * decision that verifies against the snapshot's keys — anything else on the subject is logged, counted
 * and ignored. Abort (client gone) cancels the approval; no decision by timeoutSeconds + grace fails
 * closed as expired.
 *
 * Redis restarts: the approvals app persists each job in Postgres as soon as it takes it. A job that
 * Redis lost before that (restart without persistence) is re-enqueued here whenever the Redis
 * connection becomes ready again, for every approval still held or recently failed fast; the approvals
 * app's persist is idempotent by approval id, and for an already decided approval it republishes the
 * decision, which also covers a decision this gateway missed.
 */
export declare class ApprovalClient {
    private readonly o;
    private readonly names;
    private readonly subjects;
    private readonly verifier;
    private readonly redis;
    private readonly queue;
    private readonly inflight;
    private readonly metrics;
    private readyOnce;
    private closed;
    constructor(o: ApprovalClientOptions);
    /** Waits for Redis (bounded); the client also works when Redis comes up later. */
    start(timeoutMs?: number): Promise<void>;
    /** Holds until a verified decision, an abort (→ cancelled) or timeoutSeconds + grace (→ expired). */
    requestAndWait(job: ApprovalJob, opts?: {
        signal?: AbortSignal;
    }): Promise<ApprovalDecision>;
    /** Fail-fast mode: enqueue a one-time approval and return at once. */
    requestOneTime(job: ApprovalJob): Promise<void>;
    /**
     * Consumes an approved one-time approval of this identity for the identical statement (same fingerprint).
     * Returns its id, or null (none, or the approvals app did not answer: fail closed).
     */
    consumeOneTime(q: {
        identity: string;
        connection: string;
        fingerprint: string;
    }): Promise<string | null>;
    /** Stops: every held approval is cancelled (its session goes with this gateway). */
    close(): Promise<void>;
    private enqueue;
    private reenqueue;
    /** Tells the approvals app (signed) that this approval's statement will not run here. */
    private cancel;
    private synthetic;
}
