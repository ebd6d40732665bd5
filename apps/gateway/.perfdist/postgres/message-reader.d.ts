import type { Socket } from 'node:net';
import { PgFramer, type PgFrame } from '@portcullis/protocol';
/**
 * Pull-style reading of whole messages from a socket during short request/response phases
 * (upstream startup and authentication, side lookups). The relay does not use this: it is push-driven.
 */
export declare class MessageReader {
    private socket;
    readonly framer: PgFramer;
    private waiting;
    private error;
    private readonly onData;
    private readonly onEnd;
    private readonly onError;
    constructor(socket: Socket, framer?: PgFramer);
    private attach;
    /** Stops listening (the framer keeps any bytes already read); pauses the socket so nothing is lost. */
    detach(pause?: boolean): void;
    /** Re-attaches to another socket (after a TLS upgrade). */
    switchTo(socket: Socket): void;
    private fail;
    private pump;
    /** The next message; rejects when the connection fails or `timeoutMs` passes. */
    next(timeoutMs?: number): Promise<PgFrame>;
    /** Reads one raw byte (SSLRequest answer), before any framed message. */
    static readByte(socket: Socket, timeoutMs?: number): Promise<{
        byte: number;
        rest: Buffer;
    }>;
}
