import { approvalConsequenceSchema } from '@portcullis/protocol';
import { z } from 'zod';
import { APPROVAL_STATUSES } from '@portcullis/protocol';

export const decideApprovalSchema = z.strictObject({
  /** why; shown to the held client on deny */
  comment: z.string().trim().max(2000).nullable().optional(),
});
export type DecideApproval = z.infer<typeof decideApprovalSchema>;

export const listApprovalsQuerySchema = z.strictObject({
  status: z.enum(APPROVAL_STATUSES).optional(),
  connection: z.string().max(200).optional(),
  limit: z.coerce.number().int().min(1).max(500).default(100),
});
export type ListApprovalsQuery = z.infer<typeof listApprovalsQuerySchema>;

export const approvalViewSchema = z.object({
  id: z.string(),
  status: z.enum(APPROVAL_STATUSES),
  mode: z.string(),
  identity: z.string(),
  connection: z.string(),
  sessionId: z.string(),
  gateway: z.string().nullable(),
  statement: z.string(),
  policy: z.string().nullable(),
  rule: z.string(),
  reason: z.string().nullable(),
  approverGroups: z.array(z.string()),
  requestedAt: z.string(),
  expiresAt: z.string(),
  decidedBy: z.string().nullable(),
  decidedAt: z.string().nullable(),
  comment: z.string().nullable(),
  consumedAt: z.string().nullable(),
  webhookStatus: z.string().nullable(),
  consequence: approvalConsequenceSchema.nullable().describe('a write held by a consequence rule: the rows it would change (measured in a savepoint and rolled back), the tables, and a masked sample of the rows'),
});
export type ApprovalView = z.infer<typeof approvalViewSchema>;
