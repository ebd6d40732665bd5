import type { NatsConnection } from '@nats-io/transport-node';
export interface HeartbeatSource {
    id: string;
    pool: string;
    version: string;
    address: string | null;
    startedAt: string;
    liveSessions(): number;
    configRevision(): number | null;
}
/** Publishes a Heartbeat on core NATS every `intervalMs` (and once at start). Lost beats are fine. */
export declare function startHeartbeat(nc: NatsConnection, prefix: string, src: HeartbeatSource, intervalMs?: number): () => void;
