import { errors as joseErrors, jwtVerify } from 'jose';
import { GATEWAY_AUDIENCE, TOKEN_ALG, gatewayTokenClaimsSchema } from '@portcullis/protocol';
/** Why a credential was refused. `message` is safe to show the client; `reason` is for logs and metrics. */
export class CredentialError extends Error {
    constructor(reason, message, options) {
        super(message, options);
        this.reason = reason;
        this.name = 'CredentialError';
    }
}
const MAX_TOKEN_LENGTH = 16 * 1024;
/**
 * Verifies a gateway credential locally (no call to the api): EdDSA signature against the snapshot's
 * keys, audience, issuer, expiry, claims shape, revocation list, connection binding (cn must be the
 * database name the client asked for) and the caller's right to the connection.
 */
export async function verifyCredential(token, database, config) {
    if (!token || token.length > MAX_TOKEN_LENGTH)
        throw new CredentialError('invalid', 'invalid gateway credential');
    let payload;
    try {
        const r = await jwtVerify(token, config.jwks, {
            audience: GATEWAY_AUDIENCE,
            issuer: config.issuer,
            algorithms: [TOKEN_ALG],
            clockTolerance: 5,
            requiredClaims: ['exp', 'jti'],
        });
        payload = r.payload;
    }
    catch (err) {
        if (err instanceof joseErrors.JWTExpired)
            throw new CredentialError('expired', 'gateway credential has expired', { cause: err });
        throw new CredentialError('invalid', 'invalid gateway credential', { cause: err });
    }
    const parsed = gatewayTokenClaimsSchema.safeParse(payload);
    if (!parsed.success)
        throw new CredentialError('invalid', 'invalid gateway credential');
    const claims = parsed.data;
    if (config.revoked.has(claims.jti))
        throw new CredentialError('revoked', 'gateway credential has been revoked');
    if (claims.cn !== database)
        throw new CredentialError('wrong_connection', 'gateway credential is for another connection');
    const connection = config.connections.get(database);
    if (!connection)
        throw new CredentialError('unknown_connection', `connection "${database}" does not exist`);
    const allowed = claims.grant !== undefined || claims.groups.some((g) => connection.allowedGroups.includes(g));
    if (!allowed)
        throw new CredentialError('not_allowed', `not allowed to use connection "${database}"`);
    return { claims, connection, expiresAt: typeof payload.exp === 'number' ? payload.exp * 1000 : null };
}
//# sourceMappingURL=credential-verifier.js.map