import type { ApprovalOutcome, StatementInfo, Verdict } from '../policy/session-hooks.js';
import type { Logger } from '../logger.js';
import { type ApprovalClient } from './approval-client.js';
/**
 * Fingerprint of a statement for one-time approvals: sha256 of the text with runs of whitespace
 * collapsed and the ends trimmed, so a re-run that differs only in layout matches, anything else does not.
 */
export declare function statementFingerprint(sql: string): string;
export interface ApprovalPolicy {
    name: string | null;
    approvers: readonly string[];
    timeoutSeconds: number;
    webhookUrl?: string | null;
}
/** What the hook needs to know about its session. */
export interface ApprovalSessionContext {
    client: ApprovalClient;
    sessionId: string;
    /** identity subject */
    identity: string;
    connection: string;
    gatewayId: string;
    pool: string;
    policy: ApprovalPolicy;
    /** credential `amode` or the connection's approvalMode */
    mode: 'wait' | 'fail-fast';
    /** aborted when the client goes away */
    signal: AbortSignal;
    /** writes bytes to the client (a whole NoticeResponse frame) */
    toClient(frame: Buffer): void;
    /** session events */
    event(type: 'approval.requested', data: {
        approvalId: string;
        sql: string;
        rule: string;
        reason: string | null;
    }): void;
    event(type: 'approval.decided', data: {
        approvalId: string;
        status: string;
        decidedBy: string | null;
        comment: string | null;
    }): void;
    log: Logger;
}
/**
 * The session's `onApprovalRequired`: requests an approval and decides what the relay does with the
 * statement. Wait mode holds (NoticeResponse first, so a person in psql sees the id); fail-fast mode
 * (agents) answers at once with the approval id, and a later identical statement by the same identity
 * runs once when an approved one-time approval exists.
 */
export declare function createApprovalHook(ctx: ApprovalSessionContext): (stmt: StatementInfo, verdict: Verdict) => Promise<ApprovalOutcome>;
