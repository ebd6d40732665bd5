import { type NatsConnection } from '@nats-io/transport-node';
import { ConfigStore } from './config/config-store.js';
import type { GatewayEnv } from './env.js';
import { GatewayMetrics } from './http/metrics.js';
import { type Logger } from './logger.js';
import { type SessionHooks } from './policy/session-hooks.js';
import { CancelRegistry } from './postgres/cancel-registry.js';
import { ClientSession, type SessionInfo } from './postgres/client-session.js';
export declare const GATEWAY_VERSION = "0.1.0";
/**
 * Lets another component (the approvals engineer's) replace or wrap the policy hooks of each
 * session: receives the session and the default hooks, returns the hooks to use.
 */
export type HooksFactory = (session: SessionInfo, defaults: SessionHooks, gateway: Gateway) => SessionHooks;
export interface GatewayOptions {
    env: GatewayEnv;
    logger?: Logger;
    hooks?: HooksFactory;
    /** heartbeat interval (ms) */
    heartbeatMs?: number;
}
/** One gateway worker: the Postgres listener, its config watch, events, cancels, health and metrics. */
export declare class Gateway {
    readonly env: GatewayEnv;
    readonly logger: Logger;
    readonly metrics: GatewayMetrics;
    readonly cancels: CancelRegistry;
    readonly sessions: Set<ClientSession>;
    config: ConfigStore;
    nc: NatsConnection | null;
    private publisher;
    private pgServer;
    private httpServer;
    private tls;
    private policyLib;
    private stopHeartbeat;
    private cancelSub;
    private hooksFactory;
    private readonly startedAt;
    pgPort: number;
    httpPort: number;
    constructor(opts: GatewayOptions);
    private readonly heartbeatMs;
    get liveSessions(): number;
    get id(): string;
    /** Installs a hooks factory after start (the approvals integration). */
    setHooksFactory(f: HooksFactory | null): void;
    start(): Promise<void>;
    private ensureStream;
    /** false between a NATS disconnect and the reconnect: sessions that require recording are refused at once */
    private natsConnected;
    private watchNatsStatus;
    private subscribeCancels;
    private relayCancel;
    private loadTls;
    private accept;
    private hooksFor;
    stop(): Promise<void>;
}
