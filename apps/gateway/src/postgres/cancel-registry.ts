import { randomBytes, timingSafeEqual } from 'node:crypto';
import { connect as netConnect } from 'node:net';
import { encodeCancelRequest } from '@portcullis/protocol';

/** Where a client session's cancels go: its upstream server and the key that server gave us. */
export interface CancelTarget {
  host: string;
  port: number;
  pid: number;
  secret: Buffer;
}

interface Entry {
  secret: Buffer;
  target: CancelTarget;
}

/**
 * The backend keys this gateway hands its clients. Each client session gets a random (pid, secret)
 * of its own; the upstream key never leaves the gateway. A CancelRequest is matched here and
 * forwarded to the upstream session it belongs to.
 */
export class CancelRegistry {
  private readonly entries = new Map<number, Entry>();

  /** Allocates a key for a session. pid is a positive int32 (clients treat it as a process id). */
  register(target: CancelTarget): { pid: number; secret: Buffer } {
    let pid: number;
    do {
      pid = (randomBytes(4).readUInt32BE(0) & 0x7fffffff) || 1;
    } while (this.entries.has(pid));
    const secret = randomBytes(4);
    this.entries.set(pid, { secret, target });
    return { pid, secret };
  }

  unregister(pid: number): void {
    this.entries.delete(pid);
  }

  lookup(pid: number, secret: Buffer): CancelTarget | null {
    const e = this.entries.get(pid);
    if (!e || e.secret.length !== secret.length || !timingSafeEqual(e.secret, secret)) return null;
    return e.target;
  }

  get size(): number {
    return this.entries.size;
  }
}

/** Sends a CancelRequest to an upstream server (a fresh connection, closed right after, as libpq does). */
export function sendUpstreamCancel(target: CancelTarget, timeoutMs = 5000): Promise<void> {
  return new Promise((resolve) => {
    const s = netConnect({ host: target.host, port: target.port });
    const done = (): void => {
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
