import { decodeJwt, errors as joseErrors, jwtVerify } from 'jose';
import { GATEWAY_AUDIENCE, TOKEN_ALG, assertCompactJws, credentialAllows, gatewayTokenClaimsSchema, sshKeySha256, type GatewayTokenClaims } from '@portcullis/protocol';
import type { ActiveConfig, ResolvedConnection } from '../config/config-store.js';

/** Why a credential was refused. `message` is safe to show the client; `reason` is for logs and metrics. */
export class CredentialError extends Error {
  constructor(
    readonly reason: 'invalid' | 'expired' | 'revoked' | 'wrong_connection' | 'unknown_connection' | 'not_allowed',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'CredentialError';
  }
}

export interface VerifiedCredential {
  claims: GatewayTokenClaims;
  connection: ResolvedConnection;
  expiresAt: number | null;
}

const MAX_TOKEN_LENGTH = 16 * 1024;

/**
 * Verifies a gateway credential locally (no call to the api): EdDSA signature against the snapshot's
 * keys, audience, issuer, expiry, claims shape, revocation list, connection binding (cn must be the
 * database name the client asked for) and the caller's right to the connection.
 */
/**
 * `proof.sshKeyBlob`: the public key the client proved it holds (an SSH user certificate's key). A
 * credential bound to a key (claim `cnf`) is refused without it: a certificate's key id is never a password.
 */
export async function verifyCredential(token: string, database: string, config: ActiveConfig, proof?: { sshKeyBlob?: Buffer }): Promise<VerifiedCredential> {
  if (!token || token.length > MAX_TOKEN_LENGTH) throw new CredentialError('invalid', 'invalid gateway credential');
  try {
    // one spelling per token: jose would also take `token==` or `token ` (lenient base64url)
    assertCompactJws(token);
  } catch (err) {
    throw new CredentialError('invalid', 'invalid gateway credential', { cause: err });
  }
  let payload: Record<string, unknown>;
  try {
    const r = await jwtVerify(token, config.jwks, {
      audience: GATEWAY_AUDIENCE,
      issuer: config.issuer,
      algorithms: [TOKEN_ALG],
      clockTolerance: 5,
      requiredClaims: ['exp', 'jti'],
    });
    payload = r.payload as Record<string, unknown>;
  } catch (err) {
    if (err instanceof joseErrors.JWTExpired) throw new CredentialError('expired', 'gateway credential has expired', { cause: err });
    throw new CredentialError('invalid', 'invalid gateway credential', { cause: err });
  }
  const parsed = gatewayTokenClaimsSchema.safeParse(payload);
  if (!parsed.success) throw new CredentialError('invalid', 'invalid gateway credential');
  const claims = parsed.data;
  if (claims.cnf && (!proof?.sshKeyBlob || sshKeySha256(proof.sshKeyBlob) !== claims.cnf['ssh-sha256'])) {
    throw new CredentialError('invalid', 'this gateway credential is bound to an SSH key: it works only with its certificate, not as a password or token');
  }
  if (config.revoked.has(claims.jti)) throw new CredentialError('revoked', 'gateway credential has been revoked');
  if (claims.cn !== database) throw new CredentialError('wrong_connection', 'gateway credential is for another connection');
  const connection = config.connections.get(database);
  if (!connection) throw new CredentialError('unknown_connection', `connection "${database}" does not exist`);
  const expiresAt = typeof payload.exp === 'number' ? payload.exp * 1000 : null;
  const access = credentialAllows(claims, connection, { expiresAt, revokedGrants: config.revokedGrants });
  if (!access.allowed) {
    if (access.reason === 'grant_revoked') throw new CredentialError('revoked', `the access grant this credential rests on (access request ${claims.grant}) was revoked`);
    throw new CredentialError('not_allowed', `not allowed to use connection "${database}"`);
  }
  return { claims, connection, expiresAt };
}

/** The caller as the access rule sees it (the rule's own reading of a credential). */
export { accessCallerOf } from '@portcullis/protocol';

/** Who a refused credential claimed to be (its unverified `sub`), for the audit trail only; null when it is no JWT. */
export function claimedSubject(token: string): string | null {
  return claimed(token, 'sub');
}

/** The connection a token names (`cn`), unverified: only to pick what verifyCredential checks it against. */
export function claimedConnection(token: string): string | null {
  return claimed(token, 'cn');
}

function claimed(token: string, claim: 'sub' | 'cn'): string | null {
  if (!token || token.length > MAX_TOKEN_LENGTH) return null;
  try {
    const v = decodeJwt(token)[claim];
    return typeof v === 'string' ? v : null;
  } catch {
    return null;
  }
}
