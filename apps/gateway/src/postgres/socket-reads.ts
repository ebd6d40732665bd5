import type { Socket } from 'node:net';

/** What one read buffer holds; 64 KiB is libuv's own read size. Only the pages a read touches count in RSS. */
const READ_BUFFER_BYTES = 64 * 1024;

/**
 * Reads of a plain TCP socket into one buffer that is reused from read to read (Node's `onread`
 * option), instead of a fresh Buffer per read pushed through the socket's Readable stream. On the
 * relay's hot path that saves an allocation (and its later sweep), the stream's push machinery and
 * a nextTick per read.
 *
 * The bytes of a read are valid only until the next read of the same socket. A sink that still
 * holds them when it returns (a partial frame kept by a framer, a write the kernel did not take at
 * once, a frame parked behind an asynchronous hook) must return true: the socket then reads into a
 * fresh buffer, and the old one stays with whoever holds it.
 *
 * Until a sink is set (startup and authentication, which read with 'data' listeners), each read is
 * copied and emitted as a 'data' event, as a socket without `onread` would.
 */
export class SocketReads {
  private buffer: Buffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);
  private retained = false;
  /** buffers allocated because a sink held the previous one (a regression check: TLS used to make one per read) */
  freshBuffers = 0;
  /** reads delivered to a sink (so a check can compare fresh buffers with reads) */
  sinkReads = 0;
  private socket: Socket | null = null;
  private sink: ((chunk: Buffer) => boolean) | null = null;

  /** The `onread` option for net.connect. */
  readonly onread = {
    buffer: (): Buffer => this.nextBuffer(),
    // true: keep reading (false would pause the socket)
    callback: (n: number, buf: Uint8Array): boolean => {
      this.deliver(n, buf as Buffer);
      return true;
    },
  };

  /** The socket the reads belong to (for the 'data' events before a sink is set). */
  attach(socket: Socket): void {
    this.socket = socket;
  }

  /** From now on each read goes to `sink`; it returns whether it still holds the chunk's bytes. */
  setSink(sink: (chunk: Buffer) => boolean): void {
    this.sink = sink;
  }

  private deliver(n: number, buf: Buffer): void {
    const chunk = buf.subarray(0, n);
    if (this.sink) {
      this.sinkReads++;
      this.retained = this.sink(chunk);
      return;
    }
    this.socket?.emit('data', Buffer.from(chunk));
  }

  private nextBuffer(): Buffer {
    if (this.retained) {
      this.retained = false;
      this.freshBuffers++;
      this.buffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);
    }
    return this.buffer;
  }
}
