import type { Socket } from 'node:net';

/**
 * The client's bytes during the startup phase, pulled one batch at a time by the startup driver
 * (client-session.ts), which hands them to the StartupMachine. Not used by the relay.
 */
export class ChunkReader {
  private readonly queue: Buffer[] = [];
  private waiting: { resolve: (b: Buffer) => void; reject: (e: Error) => void; timer: NodeJS.Timeout } | null = null;
  private error: Error | null = null;
  private readonly onData = (chunk: Buffer): void => {
    this.queue.push(chunk);
    if (this.waiting) this.settle(null);
  };
  private readonly onEnd = (): void => this.fail(new Error('connection closed by the client'));
  private readonly onError = (err: Error): void => this.fail(err);

  constructor(private readonly socket: Socket) {
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('close', this.onEnd);
    socket.on('error', this.onError);
    socket.resume();
  }

  /** Every byte read and not yet taken, as one buffer; waits up to `timeoutMs` for some. */
  next(timeoutMs: number): Promise<Buffer> {
    if (this.queue.length > 0) return Promise.resolve(this.take());
    if (this.error) return Promise.reject(this.error);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting = null;
        reject(new Error('timed out waiting for the client'));
      }, timeoutMs);
      this.waiting = { resolve, reject, timer };
    });
  }

  /** Stops reading (pausing the socket unless told not to); returns the bytes read and not yet taken. */
  detach(pause = true): Buffer {
    if (pause) this.socket.pause();
    this.socket.off('data', this.onData);
    this.socket.off('end', this.onEnd);
    this.socket.off('close', this.onEnd);
    this.socket.off('error', this.onError);
    return this.take();
  }

  private take(): Buffer {
    const b = this.queue.length === 1 ? this.queue[0] : Buffer.concat(this.queue);
    this.queue.length = 0;
    return b;
  }

  private fail(err: Error): void {
    this.error ??= err;
    if (this.waiting) this.settle(this.error);
  }

  private settle(err: Error | null): void {
    const w = this.waiting!;
    this.waiting = null;
    clearTimeout(w.timer);
    if (err) w.reject(err);
    else w.resolve(this.take());
  }
}
