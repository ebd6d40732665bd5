import { z } from 'zod';
import { FILE_OPERATIONS } from '@portcullis/protocol';

export const evaluateBodySchema = z
  .strictObject({
    /** the command to classify: SQL (postgres) or a shell command line (ssh, kubernetes exec); nothing is executed */
    command: z.string().min(1).max(1_048_576).optional(),
    /** which guardrails decide: `postgres` (SQL, the default), `ssh` or `kubernetes` (shell command guardrails) */
    protocol: z.enum(['postgres', 'ssh', 'kubernetes']).default('postgres'),
    /** shell commands: the working directory relative paths start from, when known */
    cwd: z.string().min(1).max(4096).optional(),
    /** shell commands: decide as an interactive shell line (history expansion cannot be analysed) */
    interactive: z.boolean().optional(),
    /** an SFTP/SCP file operation to decide instead of a command */
    file: z
      .strictObject({
        operation: z.enum(FILE_OPERATIONS),
        path: z.string().min(1).max(4096),
        /** rename: the new path; symlink: the link's target */
        target: z.string().min(1).max(4096).optional(),
      })
      .optional(),
    /** result column names to explain the masking plan for (SQL) */
    columns: z.array(z.string().min(1).max(200)).max(1000).optional(),
  })
  .refine((b) => b.command !== undefined || b.file !== undefined, { path: ['command'], message: 'command (or file) is required' });
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
  dynamicCommand: z.enum(['allow', 'block', 'require_approval']).optional().describe('action for shell commands that cannot be analysed (eval of built text, a command name from a variable, source, unparsable); default block'),
  interactive: z
    .object({ unreliableLine: z.enum(['require_approval', 'block', 'allow_and_flag']).optional() })
    .optional()
    .describe('interactive shells: what happens to a line the gateway could not reconstruct from the keystrokes (history recall, tab completion); default require_approval'),
  maxCommandBytes: z.number().int().min(64).max(16 * 1024 * 1024).optional().describe('shell commands larger than this are refused (rule command-too-large); default 16 KiB'),
  masking: z.array(z.record(z.string(), z.unknown())).optional(),
  detectors: z
    .array(z.object({ name: z.string().regex(/^[A-Za-z][A-Za-z0-9_]*$/), pattern: z.string(), flags: z.string().regex(/^[imsu]*$/).optional() }))
    .optional()
    .describe('custom content detectors that masking rules may name besides the built-in ones'),
  approval: z.object({ approvers: z.array(z.string()), timeoutSeconds: z.number().int(), webhook: z.object({ url: z.string() }).optional() }).loose().optional(),
  maxStatementBytes: z.number().int().min(64).max(64 * 1024 * 1024).optional().describe('statements larger than this are refused (42501, rule statement-too-large); default 1 MiB'),
  recording: z.object({ results: z.unknown().optional() }).loose().optional().describe('recording.results: "off" (counts only, the default) or {rows, bytes}: the first rows/bytes of each result, as the client received them, in the session record'),
  refusedSettings: z.array(z.string()).optional().describe('settings a client may not give at startup (parameters or options); the session is refused with 42501; default ["role", "session_authorization"]'),
  ssh: z
    .object({
      env: z.object({ allow: z.array(z.string()) }).optional(),
      forwarding: z.object({ local: z.array(z.string()).optional(), remote: z.array(z.string()).optional() }).optional(),
    })
    .optional()
    .describe('SSH sessions: env.allow names and globs of the environment variables a client may set (default LANG, LC_*, LANGUAGE, TZ; a glob never matches LD_*, BASH_ENV, PATH and the like); forwarding.local / forwarding.remote: host:port patterns the target may connect to (ssh -L/-W) or listen on (ssh -R); none by default'),
  kubernetes: z.object({ secrets: z.enum(['redact', 'allow']).optional() }).optional().describe('Kubernetes responses: secrets "redact" (default: Secret data/stringData values never leave the gateway) or "allow"; Kubernetes guardrails are match.kubernetes {verbs, groups, resources, subresources, namespaces, names, nonResourceURLs} (globs)'),
}).loose();
