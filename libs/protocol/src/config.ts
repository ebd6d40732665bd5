import { z } from 'zod';
import { sealedSecretSchema } from './keys.js';
import { signCompactJws, SignatureError, verifyCompactJws, type JwsKeyCache, type JwsSigningKey } from './jws.js';

export const CONNECTION_KINDS = ['postgres', 'ssh', 'kubernetes'] as const;
export type ConnectionKind = (typeof CONNECTION_KINDS)[number];

/** Seal context of a connection's target secret (every kind): `connection:<name>`. */
export const connectionSecretContext = (name: string): string => `connection:${name}`;
/** Seal context of the pool's SSH host key in the snapshot. */
export const SSH_HOST_KEY_CONTEXT = 'ssh-host-key';
/** Seal context of the pool's gateway TLS private key (Kubernetes listener) in the snapshot. */
export const GATEWAY_TLS_KEY_CONTEXT = 'gateway-tls-key';

/** An OpenSSH public key line: `<type> <base64> [comment]` (comment ignored when compared). */
export const sshPublicKeyLineSchema = z.string().trim().regex(/^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com|rsa-sha2-(256|512)) [A-Za-z0-9+/]+={0,2}( .*)?$/, 'an OpenSSH public key line such as "ssh-ed25519 AAAA…"');

/** ssh connections: the target's pinned host keys (non-empty; a mismatch is refused). */
export const sshConnectionFieldsSchema = z.object({ hostKeys: z.array(sshPublicKeyLineSchema).min(1) });
/** kubernetes connections: the API server URL, its pinned CA and whether the gateway impersonates the caller. */
export const kubernetesConnectionFieldsSchema = z.object({
  server: z.url({ protocol: /^https$/ }),
  caPem: z.string().includes('-----BEGIN CERTIFICATE-----'),
  impersonate: z.boolean().default(false),
});

/**
 * A connection as gateways see it. One flat shape for every kind so the Postgres path is unchanged:
 * - postgres: host, port, database, username, secret = sealed password, tls.
 * - ssh: host, port (22), username = login user on the target, secret = sealed JSON (sshTargetSecretSchema),
 *   `ssh.hostKeys` pinned. `database` is '' and `tls` 'disable' (unused).
 * - kubernetes: `kubernetes.{server, caPem, impersonate}`, secret = sealed JSON (kubernetesTargetSecretSchema);
 *   host/port are the server's (for logs), `database`/`username` ''.
 * Use isSshConnection / isKubernetesConnection to narrow.
 */
export const connectionConfigSchema = z.object({
  name: z.string(),
  kind: z.enum(CONNECTION_KINDS).default('postgres'),
  host: z.string(),
  port: z.number().int(),
  database: z.string(),
  username: z.string(),
  /** sealed for the pool with context `connection:<name>`; null = no password (trust upstream) */
  secret: sealedSecretSchema.nullable(),
  tls: z.enum(['disable', 'prefer', 'require', 'verify-full']),
  allowedGroups: z.array(z.string()),
  policy: z.string().nullable(),
  recording: z.enum(['required', 'best-effort']),
  approvalMode: z.enum(['wait', 'fail-fast']),
  ssh: sshConnectionFieldsSchema.optional(),
  kubernetes: kubernetesConnectionFieldsSchema.optional(),
}).superRefine((c, ctx) => {
  if (c.kind === 'ssh' && !c.ssh) ctx.addIssue({ code: 'custom', path: ['ssh'], message: 'an ssh connection needs ssh.hostKeys' });
  if (c.kind === 'kubernetes' && !c.kubernetes) ctx.addIssue({ code: 'custom', path: ['kubernetes'], message: 'a kubernetes connection needs kubernetes.server and caPem' });
  if (c.kind !== 'postgres' && c.secret === null) ctx.addIssue({ code: 'custom', path: ['secret'], message: `a ${c.kind} connection needs a secret` });
});
export type ConnectionConfig = z.infer<typeof connectionConfigSchema>;
export type SshConnectionConfig = ConnectionConfig & { kind: 'ssh'; ssh: z.infer<typeof sshConnectionFieldsSchema> };
export type KubernetesConnectionConfig = ConnectionConfig & { kind: 'kubernetes'; kubernetes: z.infer<typeof kubernetesConnectionFieldsSchema> };
export const isSshConnection = <T extends ConnectionConfig>(c: T): c is T & SshConnectionConfig => c.kind === 'ssh' && !!c.ssh;
export const isKubernetesConnection = <T extends ConnectionConfig>(c: T): c is T & KubernetesConnectionConfig => c.kind === 'kubernetes' && !!c.kubernetes;

/** Plaintext (JSON) of an ssh connection's sealed secret: a password, or a private key (OpenSSH/PEM) with an optional passphrase. */
export const sshTargetSecretSchema = z.union([
  z.strictObject({ password: z.string().min(1) }),
  z.strictObject({ privateKey: z.string().includes('PRIVATE KEY-----'), passphrase: z.string().optional() }),
]);
export type SshTargetSecret = z.infer<typeof sshTargetSecretSchema>;

/** Plaintext (JSON) of a kubernetes connection's sealed secret: a bearer token, or a client certificate and key (PEM). */
export const kubernetesTargetSecretSchema = z.union([
  z.strictObject({ token: z.string().min(1) }),
  z.strictObject({ clientCert: z.string().includes('-----BEGIN CERTIFICATE-----'), clientKey: z.string().includes('PRIVATE KEY-----') }),
]);
export type KubernetesTargetSecret = z.infer<typeof kubernetesTargetSecretSchema>;

/** Per pool: the gateway's SSH host key and the CA whose user certificates it accepts. */
export const poolSshConfigSchema = z.object({
  /** OpenSSH-format Ed25519 private key, sealed with context SSH_HOST_KEY_CONTEXT */
  hostKey: sealedSecretSchema,
  /** `ssh-ed25519 AAAA…` public key of the CA the api signs user certificates with */
  userCaPublicKey: sshPublicKeyLineSchema,
  /**
   * `ssh-ed25519-cert-v01@openssh.com …`: a host certificate for hostKey, signed by the pool's host CA
   * (the `@cert-authority` line of GET /v1/connections/{name}/ssh-known-hosts), for gateways that present one
   */
  hostCertificate: z.string().optional(),
});
export type PoolSshConfig = z.infer<typeof poolSshConfigSchema>;

/** Per pool: the gateway's TLS certificate for the Kubernetes HTTPS listener, signed by the pool CA kubeconfigs pin. */
export const poolTlsConfigSchema = z.object({
  caPem: z.string(),
  certPem: z.string(),
  /** PKCS#8 PEM private key of certPem, sealed with context GATEWAY_TLS_KEY_CONTEXT */
  key: sealedSecretSchema,
});
export type PoolTlsConfig = z.infer<typeof poolTlsConfigSchema>;

/** Public JWK of a token-signing key (Ed25519: kty OKP, crv Ed25519). */
export const publicJwkSchema = z.looseObject({ kty: z.string(), kid: z.string(), alg: z.string().optional() });

/**
 * The config snapshot the api writes to the KV bucket (natsNames().configBucket) at key `pool.<pool>`
 * whenever identities, connections, policies or keys change. Gateways watch it.
 */
export const configSnapshotSchema = z.object({
  revision: z.number().int().min(1),
  pool: z.string(),
  generatedAt: z.iso.datetime({ offset: true }),
  /** `iss` of every token the api signs */
  issuer: z.string(),
  /** keys that verify api tokens, gateway credentials and signed approval decisions */
  verificationKeys: z.array(publicJwkSchema).min(1),
  /** ids (jti) of revoked tokens that have not expired yet (kept a few minutes past their expiry: clock tolerance and skew) */
  revokedTokenIds: z.array(z.string()),
  /**
   * ids of access requests revoked before their grant's end, until that end: credentials minted under
   * one (claim `grant`) are refused and the sessions resting on one end (optional so older snapshots
   * parse; the api always fills it)
   */
  revokedGrants: z.array(z.string()).optional(),
  /** HMAC key for event signatures, sealed for the pool with context `event-key` */
  eventKey: sealedSecretSchema,
  /** HMAC key for the `hash` masking strategy (stable per tenant), sealed with context `masking-key` */
  maskingKey: sealedSecretSchema,
  connections: z.array(connectionConfigSchema),
  /** policy documents as stored (validated by @portcullis/policy where used) */
  policies: z.array(z.object({ name: z.string(), version: z.number().int(), document: z.unknown() })),
  /** the pool's SSH host key and user CA (optional so older snapshots parse; the api always fills it) */
  ssh: poolSshConfigSchema.optional(),
  /** the pool's gateway TLS certificate for the Kubernetes listener (optional likewise) */
  tls: poolTlsConfigSchema.optional(),
});
export type ConfigSnapshot = z.infer<typeof configSnapshotSchema>;

/** JWS `typ` of a config snapshot: a decision or token signed by the same key is never taken for one. */
export const CONFIG_SNAPSHOT_TYP = 'portcullis-config+jws';

/**
 * What the KV entry holds: `{"jws": "<compact JWS of the snapshot JSON>"}`, signed (EdDSA) with the api's
 * token-signing key. Gateways verify it against keys given at deploy time (GATEWAY_CONFIG_PUBLIC_KEY),
 * never against keys the snapshot itself carries: whoever can write to NATS cannot sign.
 */
export const signedConfigSnapshotSchema = z.strictObject({ jws: z.string().min(1) });

export function signConfigSnapshot(snapshot: ConfigSnapshot, key: JwsSigningKey): string {
  return JSON.stringify({ jws: signCompactJws(JSON.stringify(snapshot), key, CONFIG_SNAPSHOT_TYP) });
}

/**
 * Verifies a KV entry's bytes and returns the snapshot JSON it signs (not yet schema-checked).
 * Throws SignatureError for anything unsigned, forged or tampered with.
 */
export function verifyConfigSnapshot(value: string | Uint8Array, trustedKeys: readonly object[], cache?: JwsKeyCache): unknown {
  let envelope: unknown;
  try {
    envelope = JSON.parse(typeof value === 'string' ? value : Buffer.from(value).toString('utf8'));
  } catch {
    throw new SignatureError('config entry is not JSON');
  }
  const r = signedConfigSnapshotSchema.safeParse(envelope);
  if (!r.success) throw new SignatureError('config entry is not a signed snapshot {"jws": "..."}');
  const payload = verifyCompactJws(r.data.jws, trustedKeys, CONFIG_SNAPSHOT_TYP, cache);
  try {
    return JSON.parse(payload.toString('utf8')) as unknown;
  } catch {
    throw new SignatureError('signed snapshot is not JSON');
  }
}

/** Heartbeat a gateway publishes every few seconds on natsNames().heartbeat(pool, id). */
export const heartbeatSchema = z.object({
  id: z.string(),
  pool: z.string(),
  version: z.string(),
  address: z.string().nullable().optional(),
  liveSessions: z.number().int().min(0),
  configRevision: z.number().int().nullable(),
  startedAt: z.iso.datetime({ offset: true }),
  time: z.iso.datetime({ offset: true }),
});
export type Heartbeat = z.infer<typeof heartbeatSchema>;
