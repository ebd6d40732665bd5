import { z } from 'zod';
import { sealedSecretSchema } from './keys.js';
import { signCompactJws, SignatureError, verifyCompactJws, type JwsKeyCache, type JwsSigningKey } from './jws.js';

export const connectionConfigSchema = z.object({
  name: z.string(),
  kind: z.enum(['postgres']).default('postgres'),
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
});
export type ConnectionConfig = z.infer<typeof connectionConfigSchema>;

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
  /** ids (jti) of revoked tokens that have not expired yet */
  revokedTokenIds: z.array(z.string()),
  /** HMAC key for event signatures, sealed for the pool with context `event-key` */
  eventKey: sealedSecretSchema,
  /** HMAC key for the `hash` masking strategy (stable per tenant), sealed with context `masking-key` */
  maskingKey: sealedSecretSchema,
  connections: z.array(connectionConfigSchema),
  /** policy documents as stored (validated by @portcullis/policy where used) */
  policies: z.array(z.object({ name: z.string(), version: z.number().int(), document: z.unknown() })),
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
