import { z } from 'zod';
import { groupName, resourceName } from '../../common/names.js';

const host = z.string().min(1).max(253).regex(/^[A-Za-z0-9._:\-[\]%]+$/, 'expected a hostname or IP address');
const pgIdent = z.string().min(1).max(63);
const password = z.string().min(1).max(1024);
const tls = z.enum(['disable', 'prefer', 'require', 'verify-full']);
const recording = z.enum(['required', 'best-effort']);
const approvalMode = z.enum(['wait', 'fail-fast']);

const sshHostKey = z.string().trim().max(16_384).regex(/^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/]+={0,2}( .*)?$/, 'expected an OpenSSH public host key line such as "ssh-ed25519 AAAA…" (ssh-keyscan prints them)');
const pem = (what: string, marker: RegExp) => z.string().max(64 * 1024).regex(marker, `expected ${what} in PEM form`);
const certPem = pem('a certificate', /-----BEGIN CERTIFICATE-----[\s\S]+-----END CERTIFICATE-----/);
const keyPem = pem('a private key', /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]+-----END [A-Z ]*PRIVATE KEY-----/);
const kubeServer = z.url({ protocol: /^https$/, error: 'expected the API server URL, https://host:port' }).max(2048);

/** ssh target credential: a password, or a private key (OpenSSH/PEM) with an optional passphrase. Write-only. */
export const sshSecretSchema = z.union([
  z.strictObject({ password: z.string().min(1).max(1024) }),
  z.strictObject({ privateKey: keyPem, passphrase: z.string().max(1024).optional() }),
], { error: 'expected {"password": "..."} or {"privateKey": "<OpenSSH or PEM private key>", "passphrase"?: "..."}' });
/** kubernetes credential the gateway uses: a bearer token, or a client certificate and key. Write-only. */
export const kubernetesSecretSchema = z.union([
  z.strictObject({ token: z.string().min(1).max(16_384) }),
  z.strictObject({ clientCert: certPem, clientKey: keyPem }),
], { error: 'expected {"token": "..."} or {"clientCert": "<PEM>", "clientKey": "<PEM>"}' });

const common = {
  name: resourceName,
  /** gateway pool that serves this connection; must have a registered key (PUT /v1/gateway-pools/{pool}) */
  pool: resourceName.default('default'),
  allowedGroups: z.array(groupName).max(200).default([]),
  policy: resourceName.nullable().optional(),
  recording: recording.default('required'),
  approvalMode: approvalMode.default('wait'),
};

const createPostgres = z.strictObject({
  type: z.literal('postgres'),
  ...common,
  host,
  port: z.number().int().min(1).max(65535).default(5432),
  database: pgIdent,
  username: pgIdent,
  /** write-only: stored encrypted, sealed for the pool in snapshots, never returned */
  password: password.nullable().optional(),
  tls: tls.default('disable'),
});
const createSsh = z.strictObject({
  type: z.literal('ssh'),
  ...common,
  host,
  port: z.number().int().min(1).max(65535).default(22),
  /** the login user on the target */
  username: z.string().min(1).max(64).regex(/^[A-Za-z0-9._][A-Za-z0-9._-]*\$?$/, 'expected a unix user name'),
  /** write-only: stored encrypted, sealed for the pool in snapshots, never returned */
  secret: sshSecretSchema,
  /** the target's public host keys, pinned: the gateway refuses a target presenting another key */
  hostKeys: z.array(sshHostKey).min(1, 'pin at least one host key (ssh-keyscan -p PORT HOST prints them)').max(20),
});
const createKubernetes = z.strictObject({
  type: z.literal('kubernetes'),
  ...common,
  /** the API server, https://host:port */
  server: kubeServer,
  /** the API server's CA (PEM), pinned */
  caPem: certPem,
  /** write-only: the credential the gateway uses, stored encrypted, sealed for the pool, never returned */
  secret: kubernetesSecretSchema,
  /** send Impersonate-User/Group with the caller's identity and groups, so the cluster's RBAC and audit see the caller */
  impersonate: z.boolean().default(false),
});

/**
 * `type` says the kind of target (`kind` is accepted as its alias; absent = postgres). Each type has its
 * own required fields: unknown or foreign fields are refused with their name.
 */
function typeAlias(v: unknown): unknown {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return v;
  const { kind, ...rest } = v as Record<string, unknown>;
  if (kind !== undefined && rest.type !== undefined && kind !== rest.type) return { ...rest, kind, type: rest.type };
  return { ...rest, type: rest.type ?? kind ?? 'postgres' };
}
export const createConnectionSchema = z.preprocess(typeAlias, z.discriminatedUnion('type', [createPostgres, createSsh, createKubernetes], {
  error: (iss) => (iss.code === 'invalid_union' ? 'type: expected "postgres", "ssh" or "kubernetes"' : undefined),
}));
export type CreateConnection = z.infer<typeof createConnectionSchema>;

/** Every field any type may change; the service refuses those the connection's type does not have. */
export const updateConnectionSchema = z.strictObject({
  pool: resourceName.optional(),
  host: host.optional(),
  port: z.number().int().min(1).max(65535).optional(),
  database: pgIdent.optional(),
  username: pgIdent.optional(),
  /** postgres: a string sets the password, null removes it */
  password: password.nullable().optional(),
  tls: tls.optional(),
  /** ssh/kubernetes: replaces the credential (checked against the connection's type) */
  secret: z.record(z.string(), z.unknown()).optional(),
  hostKeys: z.array(sshHostKey).min(1).max(20).optional(),
  server: kubeServer.optional(),
  caPem: certPem.optional(),
  impersonate: z.boolean().optional(),
  allowedGroups: z.array(groupName).max(200).optional(),
  policy: resourceName.nullable().optional(),
  recording: recording.optional(),
  approvalMode: approvalMode.optional(),
});
export type UpdateConnection = z.infer<typeof updateConnectionSchema>;

/** Fields of updateConnectionSchema per type (the rest are common). */
export const TYPE_FIELDS: Record<'postgres' | 'ssh' | 'kubernetes', readonly string[]> = {
  postgres: ['host', 'port', 'database', 'username', 'password', 'tls'],
  ssh: ['host', 'port', 'username', 'secret', 'hostKeys'],
  kubernetes: ['server', 'caPem', 'secret', 'impersonate'],
};

export const credentialsBodySchema = z.strictObject({
  /** `fail-fast`: statements needing approval fail at once instead of waiting (non-interactive agents) */
  mode: approvalMode.optional(),
});
export type CredentialsBody = z.infer<typeof credentialsBodySchema>;

export const connectionViewSchema = z.object({
  id: z.string(),
  name: z.string(),
  /** postgres | ssh | kubernetes */
  type: z.string(),
  /** the same as `type` (older clients read it) */
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
  /** ssh: the pinned host keys */
  hostKeys: z.array(z.string()).optional(),
  /** kubernetes: API server, its CA, impersonation */
  server: z.string().optional(),
  caPem: z.string().optional(),
  impersonate: z.boolean().optional(),
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
  type: z.string(),
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
