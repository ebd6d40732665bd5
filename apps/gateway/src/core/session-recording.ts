import { SessionRecorder, type EventPublisher } from '../events/event-publisher.js';
import type { GatewayMetrics } from '../http/metrics.js';
import type { Logger } from '../logger.js';
import { AccessRefused } from './access.js';
import type { SessionGrant } from './session-core.types.js';

export interface RecordingDeps {
  gatewayId: string;
  pool: string;
  metrics: GatewayMetrics;
  publisher(): EventPublisher | null;
  /** false while the gateway knows it is cut off from NATS */
  recordingAvailable(): boolean;
}

/**
 * Opens a session's event sequence and records session.start (SessionCore.startRecording). A
 * connection that requires recording waits for the ack, and is refused when it fails (fail closed);
 * a best-effort one does not wait (with NATS down every connect would hang for the publish timeouts):
 * its events stay in order since they go out on one connection.
 */
export async function startRecording(
  deps: RecordingDeps,
  sessionId: string,
  grant: SessionGrant,
  data: Record<string, unknown>,
  onRecordingFailed: (err: Error) => void,
  log: Logger,
): Promise<SessionRecorder> {
  const { claims, connection, policy, config } = grant;
  const recorder = new SessionRecorder(
    deps.publisher(),
    { sessionId, identity: claims.sub, connection: connection.name, gateway: deps.gatewayId },
    config.eventKey,
    connection.recording,
    log,
    onRecordingFailed,
  );
  const start = {
    ...data,
    pool: deps.pool,
    policy: policy?.name ?? null,
    policyVersion: policy?.version ?? null,
    subject: claims.sub,
    groups: claims.groups,
    tokenId: claims.jti,
  };
  if (connection.recording !== 'required') {
    recorder.emit('session.start', start);
    return recorder;
  }
  try {
    // known to be cut off from NATS: refused now rather than after the publish timeouts
    if (!deps.recordingAvailable()) throw new Error('not connected to NATS');
    await recorder.record('session.start', start);
  } catch (err) {
    deps.metrics.errors.inc({ kind: 'recording' });
    log.warn({ err: (err as Error).message }, 'session.start not recorded; session refused');
    throw new AccessRefused('recording_unavailable', 'session recording is unavailable and this connection requires it; try again later', { cause: err });
  }
  return recorder;
}
