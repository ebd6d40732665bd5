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
  /** Subject of one session's events, in the session's partition (tools and tests publish single events). */
  sessionEvents(sessionId: string): string;
  /**
   * Subject of the event batches one gateway publishes for one partition (events of the sessions
   * of that partition; see event-batch.ts and eventPartition()).
   */
  gatewayEvents(gatewayId: string, partition?: number): string;
  /** Every session-event subject of one partition (a recorder's consumer filter). */
  partitionEvents(partition: number): string;
  /** Session-event subjects of publishers that predate partitions (recorder shard 0 still consumes them). */
  unpartitionedEvents: { gateways: string; sessions: string };
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

/**
 * Session events are published on one of EVENT_PARTITIONS subject partitions, chosen by a hash of
 * the session id, so N recorders can each own some partitions (a durable consumer per partition)
 * and every session's chain is written by one of them. The partition is routing only: a recorder
 * chains whatever it receives correctly, so a session seen on two partitions (a mis-set publisher)
 * is slower, never wrong. Changing the number re-homes live sessions: every publisher and recorder
 * must agree on it.
 */
export const EVENT_PARTITIONS = 4;

/** FNV-1a (32-bit) of the session id's UTF-16 code units, modulo EVENT_PARTITIONS. */
export function eventPartition(sessionId: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < sessionId.length; i++) h = Math.imul(h ^ sessionId.charCodeAt(i), 0x01000193);
  return (h >>> 0) % EVENT_PARTITIONS;
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
    sessionEvents: (sessionId) => `${p}.events.p${eventPartition(sessionId)}.session.${sessionId}`,
    // A subject token may not hold '.', '*', '>' or whitespace: anything but [A-Za-z0-9_-] becomes '_'.
    gatewayEvents: (id, partition = 0) => `${p}.events.p${partition}.gateway.${id.replace(/[^A-Za-z0-9_-]/g, '_') || '_'}`,
    partitionEvents: (partition) => `${p}.events.p${partition}.>`,
    unpartitionedEvents: { gateways: `${p}.events.gateway.>`, sessions: `${p}.events.session.>` },
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
