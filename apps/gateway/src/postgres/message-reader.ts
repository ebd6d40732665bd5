import type { Socket } from 'node:net';
import { PgFramer, type PgFrame } from '@portcullis/protocol';

/**
 * Pull-style reading of whole messages from a socket during short request/response phases
 * (upstream startup and authentication, side lookups). The relay does not use this: it is push-driven.
 */
export class MessageReader {
  private waiting: { resolve: (f: PgFrame) => void; reject: (e: Error) => void } | null = null;
  private error: Error | null = null;
  private readonly onData = (chunk: Buffer): void => {
    this.framer.push(chunk);
    this.pump();
  };
  private readonly onEnd = (): void => this.fail(new Error('connection closed by the server'));
  private readonly onError = (err: Error): void => this.fail(err);

  constructor(
    private socket: Socket,
    readonly framer: PgFramer = new PgFramer({ startup: false, from: 'server' }),
  ) {
    this.attach(socket);
  }

  private attach(socket: Socket): void {
    this.socket = socket;
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('close', this.onEnd);
    socket.on('error', this.onError);
  }

  /** Stops listening (the framer keeps any bytes already read); pauses the socket so nothing is lost. */
  detach(pause = true): void {
    if (pause) this.socket.pause();
    this.socket.off('data', this.onData);
    this.socket.off('end', this.onEnd);
    this.socket.off('close', this.onEnd);
    this.socket.off('error', this.onError);
  }

  /** Re-attaches to another socket (after a TLS upgrade). */
  switchTo(socket: Socket): void {
    this.detach(false);
    this.attach(socket);
    socket.resume();
  }

  private fail(err: Error): void {
    if (!this.error) this.error = err;
    if (this.waiting) {
      const w = this.waiting;
      this.waiting = null;
      w.reject(this.error);
    }
  }

  private pump(): void {
    if (!this.waiting) return;
    let f: PgFrame | null;
    try {
      f = this.framer.next();
    } catch (err) {
      this.fail(err as Error);
      return;
    }
    if (f) {
      const w = this.waiting;
      this.waiting = null;
      w.resolve(f);
    }
  }

  /** The next message; rejects when the connection fails or `timeoutMs` passes. */
  next(timeoutMs = 10_000): Promise<PgFrame> {
    const f = this.framer.next();
    if (f) return Promise.resolve(f);
    if (this.error) return Promise.reject(this.error);
    return new Promise<PgFrame>((resolve, reject) => {
      const t = setTimeout(() => {
        this.waiting = null;
        reject(new Error('timed out waiting for the server'));
      }, timeoutMs);
      this.waiting = {
        resolve: (fr) => {
          clearTimeout(t);
          resolve(fr);
        },
        reject: (e) => {
          clearTimeout(t);
          reject(e);
        },
      };
    });
  }

  /** Reads one raw byte (SSLRequest answer), before any framed message. */
  static readByte(socket: Socket, timeoutMs = 10_000): Promise<{ byte: number; rest: Buffer }> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => finish(new Error('timed out waiting for the server')), timeoutMs);
      const onData = (chunk: Buffer): void => {
        finish(null, { byte: chunk[0], rest: chunk.subarray(1) });
      };
      const onEnd = (): void => finish(new Error('connection closed by the server'));
      const finish = (err: Error | null, v?: { byte: number; rest: Buffer }): void => {
        clearTimeout(t);
        socket.off('data', onData);
        socket.off('end', onEnd);
        socket.off('error', onEnd);
        socket.pause();
        if (err) reject(err);
        else resolve(v!);
      };
      socket.on('data', onData);
      socket.on('end', onEnd);
      socket.on('error', finish);
      socket.resume();
    });
  }
}
