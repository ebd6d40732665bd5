import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export function createApprovalsMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'portcullis_approvals_' });
  return {
    registry,
    jobs: new Counter({ name: 'portcullis_approvals_jobs_total', help: 'queue jobs processed, by outcome', labelNames: ['outcome'], registers: [registry] }),
    transitions: new Counter({ name: 'portcullis_approvals_transitions_total', help: 'approval status changes made by this app', labelNames: ['status'], registers: [registry] }),
    webhooks: new Counter({ name: 'portcullis_approvals_webhooks_total', help: 'webhook deliveries, by outcome', labelNames: ['outcome'], registers: [registry] }),
    rejected: new Counter({ name: 'portcullis_approvals_rejected_messages_total', help: 'NATS messages dropped: bad schema or signature', labelNames: ['subject'], registers: [registry] }),
    consumed: new Counter({ name: 'portcullis_approvals_one_time_total', help: 'one-time approval lookups, by result', labelNames: ['result'], registers: [registry] }),
    persistSeconds: new Histogram({ name: 'portcullis_approvals_persist_seconds', help: 'enqueue-to-persist latency', buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5], registers: [registry] }),
  };
}
export type ApprovalsMetrics = ReturnType<typeof createApprovalsMetrics>;
