import { type PgFrame } from '@portcullis/protocol';
import type { SessionHooks } from '../policy/session-hooks.js';
/** Where the relay's output goes. The adapter owns the sockets; the machine only hands it bytes. */
export interface RelayOutput {
    toClient(buf: Buffer): void;
    toUpstream(buf: Buffer): void;
}
/** Session events the machine produces (the adapter signs and publishes them). */
export interface RelayEvents {
    query(data: {
        sql: string;
        protocol: 'simple' | 'extended';
        statement?: string;
        portal?: string;
    }): void;
    decision(data: {
        action: string;
        rule: string | null;
        reason: string | null;
        kinds?: string[];
        cached?: boolean;
    }): void;
    result(data: {
        tag?: string;
        rows: number;
        durationMs: number;
        error?: {
            code: string;
            message: string;
        };
        masking?: {
            columns: string[];
            values: number;
        };
    }): void;
}
export interface RelayCounters {
    decision(action: string): void;
    masked(values: number): void;
}
/** A statement the policy refused, as the client sees it. */
export interface Refusal {
    code: string;
    message: string;
    detail?: string;
    hint?: string;
}
/** Steps of the upstream → client direction (the client direction has no modes of its own). */
export declare const UpstreamStep: {
    /** Messages pass (rows masked when a plan is active). */
    readonly Relay: "relay";
    /** A result was refused: everything but notices is dropped until ReadyForQuery. */
    readonly SkipUntilReady: "skip-until-ready";
};
export type UpstreamStep = (typeof UpstreamStep)[keyof typeof UpstreamStep];
/**
 * The relay phase of one Postgres session as a state machine with no I/O: it takes whole frames
 * from either side and says what to send where (through RelayOutput). Frames pass raw unless policy
 * needs them: Query and Parse are decoded for decisions; RowDescription/DataRow/CopyData only when
 * the session's policy masks results; CommandComplete/ErrorResponse for result events.
 *
 * `fromClient`/`fromUpstream` return a promise only when a hook answered asynchronously; the
 * adapter must not feed that direction again until it settles.
 */
export declare class RelayMachine {
    private readonly hooks;
    private readonly out;
    private readonly events;
    private readonly counters;
    /** what the client sees as session_authorization (never the target's user) */
    private readonly clientUser;
    /** ReadyForQuery status of the upstream session ('I', 'T', 'E'). */
    txStatus: string;
    statements: number;
    step: UpstreamStep;
    /** Sync/Query messages forwarded: the batch the next forwarded message belongs to. */
    private sentBatches;
    /** ReadyForQuery messages received: the batch upstream is answering now. */
    private doneBatches;
    private pending;
    private substitutions;
    private describes;
    /** Portal the client itself described since its last Bind/Execute (no need to inject one). */
    private describedPortal;
    /** Row plan for the rows flowing now, and whether a layout was seen for them at all. */
    private masker;
    private layoutKnown;
    private copyMasker;
    private rows;
    private readonly nonce;
    private markerSeq;
    constructor(hooks: SessionHooks, out: RelayOutput, events: RelayEvents, counters: RelayCounters, 
    /** what the client sees as session_authorization (never the target's user) */
    clientUser: string);
    /** True when no statement is in flight upstream. */
    get idle(): boolean;
    fromClient(f: PgFrame): void | Promise<void>;
    private decide;
    private applyVerdict;
    private forwardStatement;
    private refuse;
    private marker;
    private errorFrame;
    private substituteQuery;
    private substituteParse;
    fromUpstream(f: PgFrame): void | Promise<void>;
    private shiftDescribe;
    private onRowDescription;
    private startMasking;
    private maskRow;
    private noteMasked;
    private onCopyOut;
    /** The result now flowing is withheld: the client gets an error, nothing else until ReadyForQuery. */
    private refuseResult;
    /** The result the upstream is producing now: the oldest pending one of the current batch. */
    private currentResult;
    private completeResult;
    private emitResult;
    private onError;
    private onReady;
}
