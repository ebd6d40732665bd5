import { z } from 'zod';

/** `had` filter: sessions with at least one blocked statement, held statement, or masked result. */
export const SESSION_MARKS = ['block', 'approval', 'masking'] as const;

export const listSessionsQuerySchema = z.strictObject({
  identity: z.string().max(300).optional(),
  connection: z.string().max(300).optional(),
  /** the connection's type: postgres, ssh, kubernetes */
  protocol: z.string().max(40).optional(),
  /** sessions started at or after this time (ISO 8601) */
  since: z.iso.datetime({ offset: true }).optional(),
  /** sessions started before this time (ISO 8601) */
  until: z.iso.datetime({ offset: true }).optional(),
  /** comma-separated: block, approval, masking — the session had each */
  had: z
    .string()
    .max(100)
    .transform((s, ctx) => {
      const list = s.split(',').map((x) => x.trim()).filter(Boolean);
      for (const x of list) if (!(SESSION_MARKS as readonly string[]).includes(x)) ctx.addIssue({ code: 'custom', message: `unknown mark "${x}" (block, approval, masking)` });
      return list as (typeof SESSION_MARKS)[number][];
    })
    .optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});
export type ListSessionsQuery = z.infer<typeof listSessionsQuerySchema>;

export const sessionEventsQuerySchema = z.strictObject({
  /** events with seq greater than this (paging through long sessions) */
  after: z.coerce.number().int().min(0).default(0),
  limit: z.coerce.number().int().min(1).max(10_000).default(5000),
});
export type SessionEventsQuery = z.infer<typeof sessionEventsQuerySchema>;

export const sessionViewSchema = z.object({
  id: z.string(),
  identity: z.string(),
  connection: z.string(),
  gateway: z.string(),
  pool: z.string().nullable(),
  clientAddr: z.string().nullable(),
  startedAt: z.string(),
  endedAt: z.string().nullable(),
  /** events recorded so far, and the chain head */
  events: z.number(),
  lastSeq: z.number(),
  lastHash: z.string().nullable(),
});
export type SessionView = z.infer<typeof sessionViewSchema>;

export const sessionDetailQuerySchema = z.strictObject({
  /** timeline from events with seq greater than this (paging through long sessions) */
  after: z.coerce.number().int().min(0).default(0),
  limit: z.coerce.number().int().min(1).max(10_000).default(5000),
});
export type SessionDetailQuery = z.infer<typeof sessionDetailQuerySchema>;

const timelineResultSchema = z.object({
  seq: z.number(),
  tag: z.string().nullable(),
  rows: z.number().nullable(),
  durationMs: z.number().nullable(),
  error: z.object({ code: z.string(), message: z.string() }).nullable(),
  masking: z.object({ columns: z.array(z.string()), values: z.number() }).nullable(),
  /** policy recording.results: sets of {columns, rows, masked, truncated?} as the client received them */
  returned: z.array(z.unknown()).nullable(),
});

export const timelineItemSchema = z.union([
  z.object({
    kind: z.literal('statement'),
    seq: z.number(),
    time: z.string(),
    sql: z.string().nullable(),
    protocol: z.string().nullable(),
    decision: z.object({ action: z.string(), rule: z.string().nullable(), reason: z.string().nullable() }).nullable(),
    approval: z
      .object({ id: z.string().nullable(), status: z.string(), requestedAt: z.string(), decidedBy: z.string().nullable(), decidedAt: z.string().nullable(), comment: z.string().nullable() })
      .nullable(),
    results: z.array(timelineResultSchema),
  }),
  z.object({ kind: z.literal('event'), seq: z.number(), time: z.string(), type: z.string(), data: z.record(z.string(), z.unknown()) }),
]);

/** GET /v1/sessions/{id}: the session and its replay, one item per statement. */
export const sessionDetailViewSchema = sessionViewSchema.extend({
  /** the connection's type (postgres, ssh, kubernetes), null when the connection is gone */
  protocol: z.string().nullable(),
  timeline: z.array(timelineItemSchema),
  /** seq to pass as `after` for the rest of the timeline; null when this reached the end */
  next: z.number().nullable(),
});
export type SessionDetailView = z.infer<typeof sessionDetailViewSchema>;

export const recordedEventSchema = z.object({
  id: z.string(),
  sessionId: z.string().nullable(),
  seq: z.number(),
  time: z.string(),
  type: z.string(),
  identity: z.string().nullable(),
  connection: z.string().nullable(),
  gateway: z.string().nullable(),
  data: z.record(z.string(), z.unknown()),
  prevHash: z.string(),
  hash: z.string(),
});

export const sessionEventsViewSchema = z.object({
  session: sessionViewSchema,
  events: z.array(recordedEventSchema),
  /** seq to pass as `after` for the next page; null when this page reached the end */
  next: z.number().nullable(),
});
export type SessionEventsView = z.infer<typeof sessionEventsViewSchema>;

export const verifyViewSchema = z.object({
  valid: z.boolean(),
  /** events checked */
  events: z.number(),
  /** seq of the first event that does not check out (or of the first missing one); null when valid */
  brokenAt: z.number().nullable(),
  reason: z.string().nullable(),
  head: z.object({ seq: z.number(), hash: z.string() }).nullable(),
  checkpoint: z.object({ id: z.string(), time: z.string(), seq: z.number(), hash: z.string(), signatureValid: z.boolean() }).nullable(),
});
export type VerifyView = z.infer<typeof verifyViewSchema>;
