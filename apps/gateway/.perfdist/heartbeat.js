import { natsNames } from '@portcullis/protocol';
/** Publishes a Heartbeat on core NATS every `intervalMs` (and once at start). Lost beats are fine. */
export function startHeartbeat(nc, prefix, src, intervalMs = 5000) {
    const subject = natsNames(prefix).heartbeat(src.pool, src.id);
    const beat = () => {
        const hb = {
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
        }
        catch {
            // disconnected: the next beat will go out after reconnect
        }
    };
    beat();
    const t = setInterval(beat, intervalMs);
    t.unref();
    return () => clearInterval(t);
}
//# sourceMappingURL=heartbeat.js.map