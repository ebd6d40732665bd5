import type { RelayEnds, RelayHost, RelaySide, RelayTransport } from './relay-transport.js';

/** While a hook holds the client direction, its bytes are still read (so a disconnect is seen) up to this much. */
const MAX_HELD_BYTES = 1024 * 1024;
/**
 * A message at least this large reserves its whole size from the buffer budget before the rest of it
 * is read. Smaller ones are bounded by the sockets' ordinary backpressure (a read, a write buffer).
 */
const LARGE_MESSAGE_BYTES = 256 * 1024;

/** One direction's large-message reservations (see admit()). */
interface SideHold {
  /** reserved for the message being read now */
  reading: number;
  /** frames relayed from this side when that reservation was made (one more: the message is whole) */
  at: number;
  /** reserved for messages relayed whole and not yet taken by the peer (released when it drains) */
  sent: number;
  /** a request queued at the process budget */
  waiting: (() => void) | null;
  /** stopped for want of the session's own share (read again when its peer drains) */
  blocked: boolean;
}

/**
 * The JavaScript relay: Node reads both sockets, every byte goes through the session's framers and
 * machine, and writes apply backpressure both ways (a socket whose peer's write buffer is full stops
 * being read until it drains) and the buffer budget for large messages.
 */
export class JsRelay implements RelayTransport {
  private readonly holds: Record<RelaySide, SideHold> = {
    client: { reading: 0, at: 0, sent: 0, waiting: null, blocked: false },
    upstream: { reading: 0, at: 0, sent: 0, waiting: null, blocked: false },
  };

  constructor(
    private readonly s: RelayHost,
    private readonly e: RelayEnds,
  ) {}

  start(): void {
    const s = this.s;
    const e = this.e;
    const { client, upstream } = e;
    client.on('data', (chunk: Buffer) => {
      s.bytesIn += chunk.length;
      s.metrics.countBytes('in', chunk.length);
      e.clientFramer.push(chunk);
      if (s.clientBusy && (s.heldBytes += chunk.length) > MAX_HELD_BYTES) s.pause(s.clientPause, client, 'busy');
      s.pumpClient();
      this.admit('client');
    });
    if (e.upstreamReads) {
      // The chunk's memory is reused by the next read unless something still holds it.
      e.upstreamReads.setSink((chunk) => {
        e.upstreamFramer.push(chunk);
        s.pumpUpstream();
        this.admit('upstream');
        // A TLS client's writes never hold it (write() gives them a copy): a TLS write completes
        // asynchronously, so writableLength is non-zero after nearly every one, and keeping the read
        // buffer for it meant a fresh 64 KiB buffer per read (~200 MB/s of garbage at 3k tx/s).
        return e.upstreamFramer.buffered() > 0 || s.upstreamBusy || (!e.clientTls && client.writableLength > 0);
      });
    } else {
      upstream.on('data', (chunk: Buffer) => {
        e.upstreamFramer.push(chunk);
        s.pumpUpstream();
        this.admit('upstream');
      });
    }
    client.on('close', () => s.endSession('client_closed'));
    client.on('end', () => s.endSession('client_closed'));
    upstream.on('close', () => s.upstreamClosed());
    upstream.on('error', (err) => s.log.debug({ err: err.message }, 'upstream socket error'));
    client.on('drain', () => {
      s.unpause(s.upstreamPause, upstream, 'drain');
      this.admit('upstream');
    });
    upstream.on('drain', () => {
      s.unpause(s.clientPause, client, 'drain');
      this.admit('client');
    });
    client.resume();
    upstream.resume();
  }

  write(side: RelaySide, b: Buffer): void {
    const s = this.s;
    const e = this.e;
    if (side === 'client') {
      // TLS: the cleartext gets its own copy (see the upstream sink in start()) — a copy of what is
      // written, usually a few hundred bytes and at most one read, instead of a new 64 KiB read buffer
      // per read. (A buffer the session has just concatenated is copied once more here.)
      if (!e.client.write(e.clientTls ? Buffer.from(b) : b) && !s.upstreamPause.has('drain')) s.pause(s.upstreamPause, e.upstream, 'drain');
      return;
    }
    if (!e.upstream.write(b) && !s.clientPause.has('drain')) s.pause(s.clientPause, e.client, 'drain');
  }

  writeMany(side: RelaySide, parts: readonly Buffer[]): void {
    const socket = side === 'client' ? this.e.client : this.e.upstream;
    socket.cork();
    for (const p of parts) this.write(side, p);
    if (!socket.destroyed) socket.uncork();
  }

  pumped(): void {
    // Node reads on by itself; backpressure is applied as bytes are written (write())
  }

  fatal(): boolean {
    return false;
  }

  terminateUpstream(frame: Buffer): void {
    this.e.upstream.write(frame);
  }

  ending(): void {
    this.releaseBuffers();
  }

  close(): void {
    // the sockets are the session's to close
  }

  /**
   * Memory for large messages (core/buffer-budget.ts), after each read and drain: a message relayed
   * whole is held until the peer's socket has taken it; a large message still arriving is reserved
   * whole from the session's share and the process budget before its side is read on, and that side
   * stops being read until both can hold it. Never dropped, only delayed. A message larger than a
   * session's whole share could never be relayed: the session ends (54000).
   */
  private admit(side: RelaySide): void {
    const s = this.s;
    const e = this.e;
    const budget = s.buffers;
    if (!budget || s.isEnded) return;
    const h = this.holds[side];
    const source = side === 'client' ? e.client : e.upstream;
    const peer = side === 'client' ? e.upstream : e.client;
    const paused = side === 'client' ? s.clientPause : s.upstreamPause;
    if (h.reading > 0 && s.framed[side] !== h.at) {
      h.sent += h.reading;
      h.reading = 0;
    }
    if (h.sent > 0 && peer.writableLength === 0) {
      budget.process.release(h.sent);
      h.sent = 0;
    }
    const framer = side === 'client' ? e.clientFramer : e.upstreamFramer;
    const want = framer.incompleteSize;
    if (h.blocked && want < LARGE_MESSAGE_BYTES) {
      h.blocked = false;
      s.unpause(paused, source, 'budget');
    }
    if (want < LARGE_MESSAGE_BYTES || h.reading > 0 || h.waiting) return;
    if (want > budget.sessionBytes) {
      s.terminate('54000', `a message of ${want} bytes exceeds the gateway's limit of ${budget.sessionBytes} bytes per session`, 'message_too_large');
      return;
    }
    const other = this.holds[side === 'client' ? 'upstream' : 'client'];
    if (h.sent + other.reading + other.sent + want > budget.sessionBytes) {
      // the session's own earlier messages must reach their peers first
      if (!h.blocked) {
        h.blocked = true;
        s.metrics.bufferWaits.inc({ budget: 'session' });
        s.pause(paused, source, 'budget');
      }
      return;
    }
    if (h.blocked) {
      h.blocked = false;
      s.unpause(paused, source, 'budget');
    }
    h.at = s.framed[side];
    const grant = (): void => {
      h.waiting = null;
      h.reading = want;
      s.unpause(paused, source, 'budget');
    };
    if (budget.process.reserve(want, () => grant())) {
      h.reading = want;
      return;
    }
    h.waiting = grant;
    s.metrics.bufferWaits.inc({ budget: 'process' });
    s.pause(paused, source, 'budget');
  }

  /** Gives back what the session held of the buffer budget (it ended). */
  private releaseBuffers(): void {
    const budget = this.s.buffers;
    if (!budget) return;
    for (const h of Object.values(this.holds)) {
      if (h.waiting) budget.process.cancel(h.waiting);
      budget.process.release(h.reading + h.sent);
      h.waiting = null;
      h.reading = h.sent = 0;
    }
  }
}
