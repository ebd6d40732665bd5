import { randomBytes, timingSafeEqual } from 'node:crypto';
import { connect as netConnect } from 'node:net';
import { encodeCancelRequest } from '@portcullis/protocol';
/**
 * The backend keys this gateway hands its clients. Each client session gets a random (pid, secret)
 * of its own; the upstream key never leaves the gateway. A CancelRequest is matched here and
 * forwarded to the upstream session it belongs to.
 */
export class CancelRegistry {
    constructor() {
        this.entries = new Map();
    }
    /** Allocates a key for a session. pid is a positive int32 (clients treat it as a process id). */
    register(target) {
        let pid;
        do {
            pid = (randomBytes(4).readUInt32BE(0) & 0x7fffffff) || 1;
        } while (this.entries.has(pid));
        const secret = randomBytes(4);
        this.entries.set(pid, { secret, target });
        return { pid, secret };
    }
    unregister(pid) {
        this.entries.delete(pid);
    }
    lookup(pid, secret) {
        const e = this.entries.get(pid);
        if (!e || e.secret.length !== secret.length || !timingSafeEqual(e.secret, secret))
            return null;
        return e.target;
    }
    get size() {
        return this.entries.size;
    }
}
/** Sends a CancelRequest to an upstream server (a fresh connection, closed right after, as libpq does). */
export function sendUpstreamCancel(target, timeoutMs = 5000) {
    return new Promise((resolve) => {
        const s = netConnect({ host: target.host, port: target.port });
        const done = () => {
            clearTimeout(t);
            s.destroy();
            resolve();
        };
        const t = setTimeout(done, timeoutMs);
        s.once('connect', () => {
            s.end(encodeCancelRequest(target.pid, target.secret));
        });
        s.once('close', done);
        s.once('error', done);
    });
}
//# sourceMappingURL=cancel-registry.js.map