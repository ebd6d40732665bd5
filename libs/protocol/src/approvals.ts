import { createHmac, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { canonicalJson } from './canonical.js';

/** What a measured write would change (gateway consequence.ts): kept on the approval and shown to approvers. */
export const approvalConsequenceSchema = z.object({
  rowsAffected: z.number().int().min(0),
  threshold: z.number().int().min(0).nullable(),
  rule: z.string().nullable(),
  tables: z.array(z.string()).max(1000),
  sample: z.object({
    columns: z.array(z.string()).max(1600),
    rows: z.array(z.array(z.string().nullable())).max(1000),
    note: z.string().optional(),
  }).nullable(),
  previouslyApproved: z.number().int().min(0).optional(),
});
export type ApprovalConsequence = z.infer<typeof approvalConsequenceSchema>;

/** Job data on the BullMQ `approvals` queue (gateway → approvals app). The approval id is chosen by the gateway. */
export const approvalJobSchema = z.object({
  approvalId: z.uuid(),
  sessionId: z.string(),
  identity: z.string(),
  connection: z.string(),
  gateway: z.string(),
  pool: z.string(),
  statement: z.string(),
  fingerprint: z.string().nullable(),
  policy: z.string().nullable(),
  rule: z.string(),
  reason: z.string().nullable(),
  approverGroups: z.array(z.string()),
  timeoutSeconds: z.number().int().positive(),
  /** wait: the session holds; one-time: failed fast, the identity may re-run it once after approval */
  mode: z.enum(['wait', 'one-time']),
  webhook: z.object({ url: z.string(), secretRef: z.string().optional() }).nullable().optional(),
  requestedAt: z.iso.datetime({ offset: true }),
  /** a write held by a consequence rule: what it would change, measured in a savepoint (masked sample) */
  consequence: approvalConsequenceSchema.nullable().optional(),
});


export type ApprovalJob = z.infer<typeof approvalJobSchema>;

export const APPROVAL_STATUSES = ['pending', 'approved', 'denied', 'expired', 'cancelled'] as const;

/**
 * Payload of a decision. On NATS (natsNames().approvalDecision(id)) the message body is
 * JSON `{"jws": "<compact JWS of this payload>"}`, signed EdDSA with the api's token-signing key
 * (verification keys are in the config snapshot). Gateways ignore (and log) anything unsigned.
 */
export const approvalDecisionSchema = z.object({
  typ: z.literal('approval-decision'),
  approvalId: z.string(),
  status: z.enum(['approved', 'denied', 'expired', 'cancelled']),
  decidedBy: z.string().nullable(),
  comment: z.string().nullable(),
  decidedAt: z.iso.datetime({ offset: true }),
});
export type ApprovalDecision = z.infer<typeof approvalDecisionSchema>;

/** The columns of an Approval row (libs/db) that a decision and its audit event are made from. */
export interface DecidedApprovalRow {
  id: string;
  status: string;
  decidedBy: string | null;
  decidedAt: Date | null;
  comment: string | null;
  identity: string;
  connection: string;
  sessionId: string;
  rule: string;
}

/**
 * The decision payload for a row that is no longer pending, ready to sign. The api (an approver's decision)
 * and the approvals app (expiry, cancel, re-announce) both publish it, so gateways see one shape.
 */
export function approvalDecisionOf(row: DecidedApprovalRow): ApprovalDecision {
  return {
    typ: 'approval-decision',
    approvalId: row.id,
    status: row.status as ApprovalDecision['status'],
    decidedBy: row.decidedBy,
    comment: row.comment,
    decidedAt: (row.decidedAt ?? new Date()).toISOString(),
  };
}

/** Data of the `approval.decided` control event for a row that is no longer pending. */
export function approvalDecidedEventData(row: DecidedApprovalRow): { action: string; target: string; [key: string]: unknown } {
  return {
    action: row.status, target: row.id, approvalId: row.id, status: row.status, decidedBy: row.decidedBy, comment: row.comment,
    identity: row.identity, connection: row.connection, sessionId: row.sessionId, rule: row.rule,
  };
}

/**
 * Core NATS subjects of the approvals app besides the decisions in subjects.ts:
 * - `cancel`: a gateway tells the approvals app an approval's session is gone (body `approvalCancelSchema`).
 * - `consume`: request/reply; a gateway asks whether an approved, unconsumed one-time approval matches
 *   (identity, connection, fingerprint) and consumes it atomically (body `approvalConsumeRequestSchema`,
 *   reply `{"jws": ...}` of `approvalConsumeResultSchema`).
 */
export function approvalSubjects(prefix = 'portcullis'): { cancel: string; consume: string; requested: string } {
  return { cancel: `${prefix}.approvals.cancel`, consume: `${prefix}.approvals.consume`, requested: `${prefix}.approvals.requested` };
}

/**
 * Gateway → api: a statement is held for `job` (sent once the job is queued). The api records the pending
 * approval from it at once, so approvers see it within a second even while the approvals app (the
 * queue's worker) is down; the worker later finds the row and changes nothing. HMAC-signed like
 * approvalCancelSchema.
 */
export const approvalRequestedSchema = z.object({
  typ: z.literal('approval-requested'),
  job: approvalJobSchema,
  sig: z.string().optional(),
});
export type ApprovalRequested = z.infer<typeof approvalRequestedSchema>;

/**
 * Gateway → approvals: the session that held `job` is gone. Carries the whole job so the approvals app can
 * record it even when the queue never delivered it (cancel raced the worker, or Redis lost the job).
 * `sig` = HMAC-SHA256 hex over canonicalJson(message without sig) with the event key (gateways get it sealed).
 */
export const approvalCancelSchema = z.object({
  typ: z.literal('approval-cancel'),
  job: approvalJobSchema,
  /** client-disconnected / gateway-shutdown → cancelled; gateway-timeout → expired */
  reason: z.enum(['client-disconnected', 'gateway-shutdown', 'gateway-timeout', 'enqueue-failed']),
  at: z.iso.datetime({ offset: true }),
  sig: z.string().optional(),
});
export type ApprovalCancel = z.infer<typeof approvalCancelSchema>;

/** Gateway → approvals (request): consume a one-time approval. HMAC-signed like approvalCancelSchema. */
export const approvalConsumeRequestSchema = z.object({
  typ: z.literal('approval-consume'),
  identity: z.string(),
  connection: z.string(),
  fingerprint: z.string(),
  /** echoed in the signed reply so a reply cannot be replayed */
  nonce: z.string().min(16),
  sig: z.string().optional(),
});
export type ApprovalConsumeRequest = z.infer<typeof approvalConsumeRequestSchema>;

/** Approvals → gateway (reply, JWS-signed with the api's key): the consumed approval's id, or null. */
export const approvalConsumeResultSchema = z.object({
  typ: z.literal('approval-consumed'),
  nonce: z.string(),
  approvalId: z.string().nullable(),
});
export type ApprovalConsumeResult = z.infer<typeof approvalConsumeResultSchema>;

/** Adds `sig` = HMAC-SHA256 (hex) over canonicalJson(message without sig) — for gateway → approvals messages. */
export function signApprovalMessage<T extends { sig?: string }>(message: T, key: Buffer): T {
  const { sig: _drop, ...rest } = message;
  return { ...message, sig: createHmac('sha256', key).update(canonicalJson(rest)).digest('hex') };
}

export function verifyApprovalMessage(message: { sig?: string }, key: Buffer): boolean {
  if (!message.sig || !/^[0-9a-f]{64}$/.test(message.sig)) return false;
  const { sig, ...rest } = message;
  const want = createHmac('sha256', key).update(canonicalJson(rest)).digest();
  return timingSafeEqual(want, Buffer.from(sig, 'hex'));
}
