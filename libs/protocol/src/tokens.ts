import { z } from 'zod';

/** `aud` of tokens for the REST api. */
export const API_AUDIENCE = 'portcullis-api';
/** `aud` of gateway credentials (the password a client sends to the gateway). */
export const GATEWAY_AUDIENCE = 'portcullis-gateway';
/** Signing algorithm of every token the api issues (Ed25519). */
export const TOKEN_ALG = 'EdDSA';

export const ROLES = ['admin', 'approver', 'auditor', 'user'] as const;
export type Role = (typeof ROLES)[number];

/** Claims of an api token (besides iss, aud, exp, iat, jti, sub = identity subject). */
export const apiTokenClaimsSchema = z.object({
  typ: z.literal('api'),
  sub: z.string(),
  jti: z.string(),
  /** identity id (uuid) */
  pid: z.string(),
  kind: z.enum(['person', 'agent']),
  groups: z.array(z.string()),
  roles: z.array(z.enum(ROLES)),
});
export type ApiTokenClaims = z.infer<typeof apiTokenClaimsSchema>;

/** Claims of a gateway credential: minutes-long, bound to one connection. */
export const gatewayTokenClaimsSchema = z.object({
  typ: z.literal('gateway'),
  sub: z.string(),
  jti: z.string(),
  pid: z.string(),
  kind: z.enum(['person', 'agent']),
  groups: z.array(z.string()),
  /** connection name this credential is bound to */
  cn: z.string(),
  /** set when the credential rests on a time-boxed access request (its id) rather than group membership */
  grant: z.string().optional(),
  /** when that access request's grant ends (epoch seconds): a session resting on it ends then */
  gexp: z.number().int().optional(),
  /** overrides the connection's approvalMode for this credential (non-interactive agents) */
  amode: z.enum(['wait', 'fail-fast']).optional(),
  /**
   * Proof-of-possession binding (RFC 7800 `cnf`): the key id of an SSH user certificate is a credential
   * bound to the certified key (`ssh-sha256` = its SHA-256 fingerprint as `ssh-keygen -l` prints it,
   * without "SHA256:"). Such a credential is good only with that certificate and key: never as a
   * password or a bearer token, so a leaked certificate file is not a credential.
   */
  cnf: z.object({ 'ssh-sha256': z.string().min(1) }).optional(),
});
export type GatewayTokenClaims = z.infer<typeof gatewayTokenClaimsSchema>;

/**
 * What `POST /v1/connections/{name}/credentials` answers: the api builds it, its OpenAPI document
 * describes it, the CLI reads it.
 */
export const gatewayCredentialSchema = z.object({
  /** the gateway credential (a compact JWS, audience GATEWAY_AUDIENCE): the password a client sends */
  token: z.string(),
  /** ISO 8601 */
  expiresAt: z.string(),
  /** the gateway's public host and port */
  host: z.string(),
  port: z.number().int(),
  /** the connection name, which is the database name a client asks the gateway for */
  database: z.string(),
  /** a ready-to-use connection URI carrying the credential */
  uri: z.string(),
  /** the credential's id (POST /v1/auth/revoke takes it) */
  jti: z.string(),
  /** access-request id when the credential rests on a time-boxed grant rather than group membership */
  grant: z.string().optional(),
});
export type GatewayCredential = z.infer<typeof gatewayCredentialSchema>;
