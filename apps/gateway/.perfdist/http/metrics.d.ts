import { Counter, Gauge, Histogram, Registry } from 'prom-client';
/** Prometheus metrics of one gateway (own registry: several gateways can live in one test process). */
export declare class GatewayMetrics {
    readonly registry: Registry<"text/plain; version=0.0.4; charset=utf-8">;
    readonly liveSessions: Gauge<string>;
    readonly sessions: Counter<"outcome">;
    /**
     * Hot-path counts (per chunk, per statement) add to plain numbers and reach the counters when
     * they are scraped: a labelled prom-client inc() hashes its labels on every call.
     */
    private readonly pendingBytes;
    private readonly pendingDecisions;
    readonly bytes: Counter<"direction">;
    readonly decisions: Counter<"action">;
    /** Bytes relayed (cheap: see pendingBytes). */
    countBytes(direction: 'in' | 'out', n: number): void;
    /** One policy decision (cheap: see pendingBytes). */
    countDecision(action: string): void;
    private flushHotCounts;
    readonly errors: Counter<"kind">;
    readonly maskedValues: Counter<string>;
    readonly upstreamConnect: Histogram<string>;
    readonly configRevision: Gauge<string>;
    constructor(defaults?: boolean);
}
