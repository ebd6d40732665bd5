import { type Socket } from 'node:net';
import { type TLSSocket } from 'node:tls';
import { PgFramer } from '@portcullis/protocol';
import type { ResolvedConnection } from '../config/config-store.js';
/** The upstream connection failed. `message` is for logs only: it may name the target's host or user. */
export declare class UpstreamError extends Error {
    /** SQLSTATE the server sent, when it sent one */
    readonly sqlState?: string | undefined;
    constructor(message: string, 
    /** SQLSTATE the server sent, when it sent one */
    sqlState?: string | undefined, options?: {
        cause?: unknown;
    });
}
export interface UpstreamSession {
    socket: Socket | TLSSocket;
    /** Holds any bytes the server sent after its first ReadyForQuery. */
    framer: PgFramer;
    parameters: Map<string, string>;
    backendKey: {
        pid: number;
        secret: Buffer;
    } | null;
    tls: boolean;
}
/**
 * Opens and authenticates a connection to the target with the credentials the gateway holds
 * (trust, cleartext, md5, SCRAM-SHA-256; TLS per the connection's `tls`), up to its first
 * ReadyForQuery. `params` are extra startup parameters passed on from the client (application_name...).
 */
export declare function connectUpstream(conn: ResolvedConnection, params: Record<string, string>, timeoutMs?: number): Promise<UpstreamSession>;
