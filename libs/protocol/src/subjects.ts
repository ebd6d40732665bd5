/**
 * NATS names every app agrees on. A `prefix` (default `portcullis`) lets tests run isolated
 * side by side on one NATS server; production uses the default.
 */
export const DEFAULT_NATS_PREFIX = 'portcullis';

export interface NatsNames {
  /** JetStream KV bucket holding one config snapshot per pool, key = `pool.<pool>`. */
  configBucket: string;
  configKey(pool: string): string;
  /** Core NATS: gateways publish heartbeats here (api subscribes to `heartbeatAll`). */
  heartbeat(pool: string, gatewayId: string): string;
  heartbeatAll: string;
  /** JetStream stream for session and control-plane events. */
  eventStream: string;
  /** Subject of one session's events (gateway publishes). */
  sessionEvents(sessionId: string): string;
  /** Subject of the event batches one gateway publishes (events of many sessions; see event-batch.ts). */
  gatewayEvents(gatewayId: string): string;
  /** Subject of control-plane audit events (api publishes). */
  controlEvents: string;
  /** Wildcard covering every event subject of the stream. */
  eventsAll: string;
  /** Malformed/unsigned events are parked here by the recorder (also in the stream? no: plain JetStream stream `deadLetterStream`). */
  deadLetter: string;
  deadLetterStream: string;
  /** Core NATS: signed approval decisions (api/approvals publish, gateways subscribe). */
  approvalDecision(approvalId: string): string;
  approvalDecisionsAll: string;
  /** Core NATS: cancel requests relayed between gateways of a pool. */
  cancel(pool: string): string;
}

export function natsNames(prefix: string = DEFAULT_NATS_PREFIX): NatsNames {
  const p = prefix;
  const streamBase = p.toUpperCase().replace(/[^A-Z0-9_-]/g, '_');
  return {
    configBucket: `${p}-config`,
    configKey: (pool) => `pool.${pool}`,
    heartbeat: (pool, id) => `${p}.gateway.heartbeat.${pool}.${id}`,
    heartbeatAll: `${p}.gateway.heartbeat.>`,
    eventStream: `${streamBase}_EVENTS`,
    sessionEvents: (sessionId) => `${p}.events.session.${sessionId}`,
    // A subject token may not hold '.', '*', '>' or whitespace: anything but [A-Za-z0-9_-] becomes '_'.
    gatewayEvents: (id) => `${p}.events.gateway.${id.replace(/[^A-Za-z0-9_-]/g, '_') || '_'}`,
    controlEvents: `${p}.events.control`,
    eventsAll: `${p}.events.>`,
    deadLetter: `${p}.deadletter.events`,
    deadLetterStream: `${streamBase}_DEADLETTER`,
    approvalDecision: (id) => `${p}.approvals.decided.${id}`,
    approvalDecisionsAll: `${p}.approvals.decided.>`,
    cancel: (pool) => `${p}.gateway.cancel.${pool}`,
  };
}

/** BullMQ queue name for held statements. */
export const APPROVALS_QUEUE = 'approvals';
