import { z } from 'zod';

export const listSessionsQuerySchema = z.strictObject({
  identity: z.string().max(300).optional(),
  connection: z.string().max(300).optional(),
  /** sessions started at or after this time (ISO 8601) */
  since: z.iso.datetime({ offset: true }).optional(),
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
