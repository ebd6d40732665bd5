import { z } from 'zod';
import { groupName, resourceName } from '../../common/names.js';

const host = z.string().min(1).max(253).regex(/^[A-Za-z0-9._:\-[\]%]+$/, 'expected a hostname or IP address');
const pgIdent = z.string().min(1).max(63);
const password = z.string().min(1).max(1024);
const tls = z.enum(['disable', 'prefer', 'require', 'verify-full']);
const recording = z.enum(['required', 'best-effort']);
const approvalMode = z.enum(['wait', 'fail-fast']);

export const createConnectionSchema = z.strictObject({
  name: resourceName,
  kind: z.literal('postgres').default('postgres'),
  /** gateway pool that serves this connection; must have a registered key (PUT /v1/gateway-pools/{pool}) */
  pool: resourceName.default('default'),
  host,
  port: z.number().int().min(1).max(65535).default(5432),
  database: pgIdent,
  username: pgIdent,
  /** write-only: stored encrypted, sealed for the pool in snapshots, never returned */
  password: password.nullable().optional(),
  tls: tls.default('disable'),
  allowedGroups: z.array(groupName).max(200).default([]),
  policy: resourceName.nullable().optional(),
  recording: recording.default('required'),
  approvalMode: approvalMode.default('wait'),
});
export type CreateConnection = z.infer<typeof createConnectionSchema>;

export const updateConnectionSchema = z.strictObject({
  pool: resourceName.optional(),
  host: host.optional(),
  port: z.number().int().min(1).max(65535).optional(),
  database: pgIdent.optional(),
  username: pgIdent.optional(),
  /** a string sets the secret, null removes it */
  password: password.nullable().optional(),
  tls: tls.optional(),
  allowedGroups: z.array(groupName).max(200).optional(),
  policy: resourceName.nullable().optional(),
  recording: recording.optional(),
  approvalMode: approvalMode.optional(),
});
export type UpdateConnection = z.infer<typeof updateConnectionSchema>;

export const credentialsBodySchema = z.strictObject({
  /** `fail-fast`: statements needing approval fail at once instead of waiting (non-interactive agents) */
  mode: approvalMode.optional(),
});
export type CredentialsBody = z.infer<typeof credentialsBodySchema>;

export const connectionViewSchema = z.object({
  id: z.string(),
  name: z.string(),
  kind: z.string(),
  pool: z.string(),
  host: z.string(),
  port: z.number().int(),
  database: z.string(),
  username: z.string(),
  hasSecret: z.boolean(),
  tls: z.string(),
  allowedGroups: z.array(z.string()),
  policy: z.string().nullable(),
  recording: z.string(),
  approvalMode: z.string(),
  /**
   * `broken`: left out of its pool's config snapshot (sessions to it are refused; the pool's other
   * connections work), e.g. its secret was stored under another master key. PATCH it to repair it.
   */
  status: z.enum(['ok', 'broken']),
  brokenReason: z.string().nullable(),
  brokenSince: z.string().nullable(),
  createdAt: z.string(),
  updatedAt: z.string(),
});
export type ConnectionView = z.infer<typeof connectionViewSchema>;

/** What a non-admin sees: enough to connect through the gateway, nothing about the target. */
export const connectionUserViewSchema = z.object({
  name: z.string(),
  kind: z.string(),
  pool: z.string(),
  policy: z.string().nullable(),
  recording: z.string(),
  approvalMode: z.string(),
  /** why the caller may use it: a group, or a time-boxed access grant */
  access: z.enum(['group', 'grant']),
});
export type ConnectionUserView = z.infer<typeof connectionUserViewSchema>;

/** The credential response: one schema in @portcullis/protocol, which the CLI reads with too. */
export { gatewayCredentialSchema as credentialSchema } from '@portcullis/protocol';
