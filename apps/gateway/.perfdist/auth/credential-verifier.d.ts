import { type GatewayTokenClaims } from '@portcullis/protocol';
import type { ActiveConfig, ResolvedConnection } from '../config/config-store.js';
/** Why a credential was refused. `message` is safe to show the client; `reason` is for logs and metrics. */
export declare class CredentialError extends Error {
    readonly reason: 'invalid' | 'expired' | 'revoked' | 'wrong_connection' | 'unknown_connection' | 'not_allowed';
    constructor(reason: 'invalid' | 'expired' | 'revoked' | 'wrong_connection' | 'unknown_connection' | 'not_allowed', message: string, options?: {
        cause?: unknown;
    });
}
export interface VerifiedCredential {
    claims: GatewayTokenClaims;
    connection: ResolvedConnection;
    expiresAt: number | null;
}
/**
 * Verifies a gateway credential locally (no call to the api): EdDSA signature against the snapshot's
 * keys, audience, issuer, expiry, claims shape, revocation list, connection binding (cn must be the
 * database name the client asked for) and the caller's right to the connection.
 */
export declare function verifyCredential(token: string, database: string, config: ActiveConfig): Promise<VerifiedCredential>;
