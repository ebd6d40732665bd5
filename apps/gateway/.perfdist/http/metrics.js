import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
/** Prometheus metrics of one gateway (own registry: several gateways can live in one test process). */
export class GatewayMetrics {
    /** Bytes relayed (cheap: see pendingBytes). */
    countBytes(direction, n) {
        this.pendingBytes[direction] += n;
    }
    /** One policy decision (cheap: see pendingBytes). */
    countDecision(action) {
        this.pendingDecisions.set(action, (this.pendingDecisions.get(action) ?? 0) + 1);
    }
    flushHotCounts() {
        for (const d of ['in', 'out']) {
            if (this.pendingBytes[d] > 0)
                this.bytes.inc({ direction: d }, this.pendingBytes[d]);
            this.pendingBytes[d] = 0;
        }
        for (const [action, n] of this.pendingDecisions)
            this.decisions.inc({ action }, n);
        this.pendingDecisions.clear();
    }
    constructor(defaults = false) {
        this.registry = new Registry();
        this.liveSessions = new Gauge({ name: 'portcullis_gateway_live_sessions', help: 'Client sessions currently open', registers: [this.registry] });
        this.sessions = new Counter({
            name: 'portcullis_gateway_sessions_total',
            help: 'Client sessions by outcome (ok = authenticated and connected upstream)',
            labelNames: ['outcome'],
            registers: [this.registry],
        });
        /**
         * Hot-path counts (per chunk, per statement) add to plain numbers and reach the counters when
         * they are scraped: a labelled prom-client inc() hashes its labels on every call.
         */
        this.pendingBytes = { in: 0, out: 0 };
        this.pendingDecisions = new Map();
        this.bytes = new Counter({
            name: 'portcullis_gateway_bytes_total',
            help: 'Bytes relayed, by direction',
            labelNames: ['direction'],
            registers: [this.registry],
            collect: () => this.flushHotCounts(),
        });
        this.decisions = new Counter({
            name: 'portcullis_gateway_decisions_total',
            help: 'Policy decisions by action',
            labelNames: ['action'],
            registers: [this.registry],
            collect: () => this.flushHotCounts(),
        });
        this.errors = new Counter({
            name: 'portcullis_gateway_errors_total',
            help: 'Errors by kind (protocol, auth, upstream, recording, internal)',
            labelNames: ['kind'],
            registers: [this.registry],
        });
        this.maskedValues = new Counter({ name: 'portcullis_gateway_masked_values_total', help: 'Values rewritten by masking', registers: [this.registry] });
        this.upstreamConnect = new Histogram({
            name: 'portcullis_gateway_upstream_connect_seconds',
            help: 'Time to open and authenticate an upstream connection',
            buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
            registers: [this.registry],
        });
        this.configRevision = new Gauge({ name: 'portcullis_gateway_config_revision', help: 'Revision of the config snapshot in use (0 = none)', registers: [this.registry] });
        if (defaults)
            collectDefaultMetrics({ register: this.registry });
    }
}
//# sourceMappingURL=metrics.js.map