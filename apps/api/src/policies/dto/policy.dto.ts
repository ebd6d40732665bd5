import { z } from 'zod';

export const evaluateBodySchema = z.strictObject({
  /** the command to classify (SQL); nothing is executed */
  command: z.string().min(1).max(1_048_576),
  /** result column names to explain the masking plan for */
  columns: z.array(z.string().min(1).max(200)).max(1000).optional(),
});
export type EvaluateBody = z.infer<typeof evaluateBodySchema>;

export const policyViewSchema = z.object({
  name: z.string(),
  version: z.number().int(),
  document: z.unknown(),
  createdAt: z.string(),
  updatedAt: z.string(),
});
export type PolicyView = z.infer<typeof policyViewSchema>;

export const policyVersionViewSchema = z.object({
  version: z.number().int(),
  createdBy: z.string().nullable(),
  createdAt: z.string(),
  document: z.unknown(),
});
export type PolicyVersionView = z.infer<typeof policyVersionViewSchema>;

export const evaluateResponseSchema = z.object({
  decision: z.object({ action: z.string(), rule: z.string().nullable(), reason: z.string().nullable() }).loose(),
  masking: z.unknown(),
});

/**
 * Documented shape of a policy document (validated by @portcullis/policy's parsePolicyDocument).
 * health.test.ts fails when policyDocumentSchema gains a top-level field this does not document.
 */
export const policyDocumentDocSchema = z.object({
  name: z.string(),
  description: z.string().optional().describe('free text'),
  guardrails: z.array(z.object({ name: z.string(), action: z.enum(['allow', 'block', 'require_approval']), match: z.record(z.string(), z.unknown()), reason: z.string().optional() }).loose()).optional(),
  dynamicSql: z.enum(['allow', 'block', 'require_approval']).optional().describe('action for SQL that cannot be analysed; default block'),
  masking: z.array(z.record(z.string(), z.unknown())).optional(),
  detectors: z
    .array(z.object({ name: z.string().regex(/^[A-Za-z][A-Za-z0-9_]*$/), pattern: z.string(), flags: z.string().regex(/^[imsu]*$/).optional() }))
    .optional()
    .describe('custom content detectors that masking rules may name besides the built-in ones'),
  approval: z.object({ approvers: z.array(z.string()), timeoutSeconds: z.number().int(), webhook: z.object({ url: z.string() }).optional() }).loose().optional(),
  maxStatementBytes: z.number().int().min(64).max(64 * 1024 * 1024).optional().describe('statements larger than this are refused (42501, rule statement-too-large); default 1 MiB'),
  recording: z.object({ results: z.unknown().optional() }).loose().optional().describe('recording.results: "off" (counts only, the default) or {rows, bytes}: the first rows/bytes of each result, as the client received them, in the session record'),
  refusedSettings: z.array(z.string()).optional().describe('settings a client may not give at startup (parameters or options); the session is refused with 42501; default ["role", "session_authorization"]'),
  kubernetes: z.object({ secrets: z.enum(['redact', 'allow']).optional() }).optional().describe('Kubernetes responses: secrets "redact" (default: Secret data/stringData values never leave the gateway) or "allow"; Kubernetes guardrails are match.kubernetes {verbs, groups, resources, subresources, namespaces, names, nonResourceURLs} (globs)'),
}).loose();
