import { z } from 'zod';

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
