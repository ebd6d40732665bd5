import type { Gateway, HooksFactory } from '../gateway.js';
import type { SessionInfo } from '../postgres/client-session.js';
import type { SessionHooks } from '../policy/session-hooks.js';
import { ApprovalClient } from './approval-client.js';
import { type ApprovalPolicy } from './approval-hook.js';
/**
 * What a held statement needs from its session besides SessionInfo. The session adds these to the
 * info it hands to the hooks factory; without them approvals stay off for that session (the relay then
 * refuses statements that need approval: fail closed).
 */
export interface ApprovalSessionHandles {
    /** writes one whole protocol frame to the client (the NoticeResponse naming the approval) */
    notify(frame: Buffer): void;
    /** records a session event (approval.requested / approval.decided) */
    emit(type: 'approval.requested' | 'approval.decided', data: Record<string, unknown>): void;
    /** aborted when the session ends (client gone, gateway stopping): cancels a held approval */
    signal: AbortSignal;
}
/** The approval settings of a session's policy (`approval` in the policy document). */
export declare function approvalPolicyOf(info: SessionInfo): ApprovalPolicy;
/** Adds `onApprovalRequired` to a session's hooks. */
export declare function withApprovals(client: ApprovalClient, gateway: Gateway, info: SessionInfo & Partial<ApprovalSessionHandles>, hooks: SessionHooks): SessionHooks;
export interface InstallApprovalsOptions {
    redisUrl?: string;
    /** BullMQ prefix; default env APPROVALS_QUEUE_PREFIX or `bull` */
    queuePrefix?: string;
    graceSeconds?: number;
    /** hooks factory to run first (e.g. a test's own policy); approvals wrap its result */
    inner?: HooksFactory;
}
/**
 * Turns approvals on for a started gateway: one ApprovalClient (BullMQ queue + NATS), and a hooks factory
 * that gives every session `onApprovalRequired`. Returns the client; close it before gateway.stop() so
 * held approvals are cancelled rather than left to expire.
 */
export declare function installApprovals(gateway: Gateway, opts?: InstallApprovalsOptions): Promise<ApprovalClient>;
