import { Injectable } from '@nestjs/common';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** One registry per app instance (tests run several apps in one process; the global registry would clash). */
@Injectable()
export class MetricsService {
  readonly registry = new Registry();
  readonly httpRequests = new Counter({
    name: 'portcullis_api_http_requests_total',
    help: 'HTTP requests by method, route and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [this.registry],
  });
  readonly httpDuration = new Histogram({
    name: 'portcullis_api_http_request_duration_seconds',
    help: 'HTTP request duration by method and route',
    labelNames: ['method', 'route'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  readonly controlEvents = new Counter({
    name: 'portcullis_api_control_events_total',
    help: 'Control-plane audit events by type and result (published, dropped)',
    labelNames: ['type', 'result'] as const,
    registers: [this.registry],
  });
  readonly snapshotsPublished = new Counter({
    name: 'portcullis_api_config_snapshots_total',
    help: 'Config snapshots written to the KV bucket, by pool and result',
    labelNames: ['pool', 'result'] as const,
    registers: [this.registry],
  });
  readonly connectionsBroken = new Gauge({
    name: 'portcullis_api_connections_broken',
    help: 'Connections left out of their pool\'s config snapshot (secret cannot be decrypted, invalid config), by pool',
    labelNames: ['pool'] as const,
    registers: [this.registry],
  });
  readonly tokensIssued = new Counter({
    name: 'portcullis_api_tokens_issued_total',
    help: 'Tokens issued by kind (api, gateway)',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  readonly gatewaysLive = new Gauge({
    name: 'portcullis_api_gateways_seen',
    help: 'Gateways that sent a heartbeat since this api started',
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'portcullis_api_' });
  }

  metricsText(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
