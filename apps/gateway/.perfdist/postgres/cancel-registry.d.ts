/** Where a client session's cancels go: its upstream server and the key that server gave us. */
export interface CancelTarget {
    host: string;
    port: number;
    pid: number;
    secret: Buffer;
}
/**
 * The backend keys this gateway hands its clients. Each client session gets a random (pid, secret)
 * of its own; the upstream key never leaves the gateway. A CancelRequest is matched here and
 * forwarded to the upstream session it belongs to.
 */
export declare class CancelRegistry {
    private readonly entries;
    /** Allocates a key for a session. pid is a positive int32 (clients treat it as a process id). */
    register(target: CancelTarget): {
        pid: number;
        secret: Buffer;
    };
    unregister(pid: number): void;
    lookup(pid: number, secret: Buffer): CancelTarget | null;
    get size(): number;
}
/** Sends a CancelRequest to an upstream server (a fresh connection, closed right after, as libpq does). */
export declare function sendUpstreamCancel(target: CancelTarget, timeoutMs?: number): Promise<void>;
