import type { Socket } from 'node:net';
import { type SecureContext } from 'node:tls';
import { type VerifiedCredential } from '../auth/credential-verifier.js';
import type { ActiveConfig, ResolvedPolicy } from '../config/config-store.js';
import { type EventPublisher } from '../events/event-publisher.js';
import type { GatewayMetrics } from '../http/metrics.js';
import type { Logger } from '../logger.js';
import type { SessionHooks } from '../policy/session-hooks.js';
import { type CancelRegistry } from './cancel-registry.js';
import { type UpstreamSession } from './upstream.js';
/** What a session needs from its gateway. */
export interface SessionContext {
    gatewayId: string;
    pool: string;
    logger: Logger;
    metrics: GatewayMetrics;
    config(): ActiveConfig | null;
    tls: SecureContext | null;
    allowPlaintext: boolean;
    cancels: CancelRegistry;
    /** A CancelRequest for a key this gateway does not know: ask the pool's other gateways. */
    relayCancel(pid: number, secret: Buffer): void;
    publisher(): EventPublisher | null;
    /** false while the gateway knows it is cut off from NATS: required recording then refuses at once */
    recordingAvailable?(): boolean;
    hooksFor(s: SessionInfo): SessionHooks;
    onEnd(s: ClientSession): void;
}
/** Who and what a session is, once authenticated. */
export interface SessionInfo {
    sessionId: string;
    credential: VerifiedCredential;
    policy: ResolvedPolicy | null;
    config: ActiveConfig;
    /** Opens another upstream connection with the session's target credentials (side lookups). */
    openSide(): Promise<UpstreamSession>;
    /** For held statements (apps/gateway/src/approvals): a whole frame to the client (a NoticeResponse). */
    notify?(frame: Buffer): void;
    /** For held statements: records approval.requested / approval.decided. */
    emit?(type: 'approval.requested' | 'approval.decided', data: Record<string, unknown>): void;
    /** Aborted when the session ends: a held approval is then cancelled. */
    signal?: AbortSignal;
}
/**
 * One client connection: the startup phase (TLS, authentication by gateway credential, upstream
 * connect, session.start) done here, then the relay: this adapter owns both sockets, batches writes,
 * applies backpressure both ways, and feeds frames to the RelayMachine.
 */
export declare class ClientSession {
    private readonly ctx;
    readonly id: `${string}-${string}-${string}-${string}-${string}`;
    private readonly log;
    private client;
    private upstream;
    private clientFramer;
    private upstreamFramer;
    private machine;
    private recorder;
    private cancelPid;
    private startedAt;
    private ended;
    private bytesIn;
    private bytesOut;
    private readonly clientPause;
    private readonly upstreamPause;
    private clientBusy;
    /** bytes read from the client while clientBusy (see MAX_HELD_BYTES) */
    private heldBytes;
    private readonly aborter;
    private upstreamBusy;
    private clientTls;
    /** set once the relay is running (counted as live) */
    live: boolean;
    constructor(socket: Socket, ctx: SessionContext);
    /** Runs the session to its end; never throws. */
    run(): Promise<void>;
    private startup;
    private startupReader;
    private upgradeClientTls;
    private handleCancel;
    private authenticate;
    private connect;
    private clientKey;
    private hooks;
    private startRelay;
    private outClient;
    private outUpstream;
    private pumping;
    private clientCorked;
    private upstreamCorked;
    private toClient;
    private toUpstream;
    private writeClient;
    private writeUpstream;
    /** Writes what the pump gathered (before anything else is written or a socket is ended). */
    private flushOut;
    private pause;
    private unpause;
    private pumpClient;
    private pumpUpstream;
    private relayFailed;
    private upstreamClosed;
    private recordingFailed;
    private fatal;
    /** Ends the session once: closes both sides, unregisters the cancel key, records session.end. */
    endSession(reason: string, graceful?: boolean, record?: boolean): void;
    /** Gateway shutdown. */
    shutdown(): void;
    get isEnded(): boolean;
    /** Waits for the session's events to be acked. */
    flushEvents(): Promise<void>;
}
