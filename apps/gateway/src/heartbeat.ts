import type { NatsConnection } from '@nats-io/transport-node';
import { natsNames, type Heartbeat } from '@portcullis/protocol';

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
export function startHeartbeat(nc: NatsConnection, prefix: string, src: HeartbeatSource, intervalMs = 5000): () => void {
  const subject = natsNames(prefix).heartbeat(src.pool, src.id);
  const beat = (): void => {
    const hb: Heartbeat = {
      id: src.id,
      pool: src.pool,
      version: src.version,
      address: src.address,
      liveSessions: src.liveSessions(),
      configRevision: src.configRevision(),
      startedAt: src.startedAt,
      time: new Date().toISOString(),
    };
    try {
      nc.publish(subject, JSON.stringify(hb));
    } catch {
      // disconnected: the next beat will go out after reconnect
    }
  };
  beat();
  const t = setInterval(beat, intervalMs);
  t.unref();
  return () => clearInterval(t);
}
