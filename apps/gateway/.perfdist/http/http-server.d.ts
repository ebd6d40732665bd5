import { type Server } from 'node:http';
import type { GatewayMetrics } from './metrics.js';
export interface HealthSource {
    /** readyz: a config snapshot has been received */
    ready(): {
        ready: boolean;
        detail: Record<string, unknown>;
    };
}
/** healthz (alive), readyz (config received), metrics (Prometheus text). */
export declare function createHttpServer(metrics: GatewayMetrics, health: HealthSource): Server;
export declare function listen(server: Server, port: number, host: string): Promise<number>;
