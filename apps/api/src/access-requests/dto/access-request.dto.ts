import { z } from 'zod';

/** Longest grant one request may ask for. */
export const MAX_ACCESS_SECONDS = 8 * 3600;

export const createAccessRequestSchema = z.strictObject({
  connection: z.string().trim().min(1).max(200),
  durationSeconds: z.number().int().min(60).max(MAX_ACCESS_SECONDS),
  reason: z.string().trim().min(1).max(2000),
});
export type CreateAccessRequest = z.infer<typeof createAccessRequestSchema>;

export const decideAccessRequestSchema = z.strictObject({
  comment: z.string().trim().max(2000).nullable().optional(),
});
export type DecideAccessRequest = z.infer<typeof decideAccessRequestSchema>;

export const revokeAccessRequestSchema = z.strictObject({
  /** why the grant ends early (kept with the request and in the audit event) */
  reason: z.string().trim().max(2000).nullable().optional(),
});
export type RevokeAccessRequest = z.infer<typeof revokeAccessRequestSchema>;

export const ACCESS_REQUEST_STATUSES = ['pending', 'approved', 'denied', 'expired', 'revoked'] as const;

export const listAccessRequestsQuerySchema = z.strictObject({
  status: z.enum(ACCESS_REQUEST_STATUSES).optional(),
  connection: z.string().max(200).optional(),
  limit: z.coerce.number().int().min(1).max(500).default(100),
});
export type ListAccessRequestsQuery = z.infer<typeof listAccessRequestsQuerySchema>;

export const accessRequestViewSchema = z.object({
  id: z.string(),
  identity: z.string(),
  connection: z.string(),
  reason: z.string(),
  durationSeconds: z.number(),
  /**
   * `expired`: a grant whose time ran out, or a request nobody decided within a day; `revoked`: an
   * approved grant an approver or admin ended early (POST /v1/access-requests/{id}/revoke)
   */
  status: z.enum(ACCESS_REQUEST_STATUSES),
  /** true while the grant lets the identity get credentials */
  active: z.boolean(),
  decidedBy: z.string().nullable(),
  decidedAt: z.string().nullable(),
  comment: z.string().nullable(),
  grantedUntil: z.string().nullable(),
  /** who ended the grant early, when, and why (null unless `revoked`) */
  revokedBy: z.string().nullable(),
  revokedAt: z.string().nullable(),
  revokeReason: z.string().nullable(),
  createdAt: z.string(),
});
export type AccessRequestView = z.infer<typeof accessRequestViewSchema>;
