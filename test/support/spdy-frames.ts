import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import type { Duplex } from 'node:stream';
import { constants as zc, inflateSync } from 'node:zlib';

/**
 * SPDY/3.1 as a kubelet's server side speaks it to kube-apiserver (test support for the stand-in
 * kubelet): the API server upgrades with `Upgrade: SPDY/3.1` and opens one SPDY stream per
 * exec/attach channel (`streamType: error|stdin|stdout|stderr|resize`) or per forwarded
 * connection (`streamType: error|data`, `port`, `requestID`). Written from the SPDY/3.1 draft:
 *
 * - control frame: 1 bit 1, 15 bits version (3), 16 bits type, 8 bits flags, 24 bits length, data;
 * - data frame: 1 bit 0, 31 bits stream id, 8 bits flags (0x01 FIN), 24 bits length, data;
 * - SYN_STREAM (1): stream id, associated id, priority/slot, header block; SYN_REPLY (2): stream
 *   id, header block; RST_STREAM (3); SETTINGS (4); PING (6, echoed); GOAWAY (7); HEADERS (8);
 *   WINDOW_UPDATE (9);
 * - header blocks: a count, then length-prefixed name/value pairs (32-bit lengths), compressed with
 *   ONE zlib stream per direction per connection (sync-flushed at each frame) and a preset
 *   dictionary.
 *
 * The preset dictionary is the SPDY/3 spec's 1,423 bytes. It is not written out here: it is read
 * from the peer's own binary (the kube-apiserver that compresses with it), which also checks it —
 * zlib refuses a dictionary whose Adler-32 differs from the one in the peer's stream header.
 * What the stand-in sends needs no dictionary: its header blocks are zlib "stored" blocks, which
 * any inflater reads (the peer's inflater takes a stream without FDICT).
 *
 * No flow control: the peer (Go's spdystream) sends no WINDOW_UPDATE and waits for none.
 */

const MAX_FRAME = 16 * 1024 * 1024 - 1;
const TYPE = { synStream: 1, synReply: 2, rstStream: 3, settings: 4, ping: 6, goaway: 7, headers: 8, windowUpdate: 9 } as const;
const FLAG_FIN = 0x01;

let dictionary: Buffer | null = null;
/** The SPDY/3 header dictionary, found in the binary of a Go program that speaks SPDY (kube-apiserver, kubectl). */
export function spdyDictionaryFrom(binary: string): Buffer {
  if (dictionary) return dictionary;
  const bin = readFileSync(binary);
  const start = bin.indexOf(Buffer.from('\x00\x00\x00\x07options\x00\x00\x00\x04head\x00\x00\x00\x04post', 'latin1'));
  const tail = Buffer.from('enq=0.', 'latin1');
  const end = start < 0 ? -1 : bin.indexOf(tail, start);
  if (start < 0 || end < 0 || end - start > 4096) throw new Error(`no SPDY/3 header dictionary in ${binary}`);
  dictionary = Buffer.from(bin.subarray(start, end + tail.length));
  return dictionary;
}

export type Headers = Record<string, string>;

export class SpdyStream extends EventEmitter {
  /** the peer closed its side (FIN) */
  remoteClosed = false;
  private localClosed = false;

  constructor(
    readonly id: number,
    readonly headers: Headers,
    private readonly conn: SpdyServerConnection,
  ) {
    super();
  }

  write(data: Buffer | string): void {
    if (this.localClosed) return;
    const b = typeof data === 'string' ? Buffer.from(data) : data;
    for (let at = 0; at < b.length; at += 64 * 1024) this.conn.sendData(this.id, b.subarray(at, at + 64 * 1024), false);
  }

  /** FIN: this side sends no more */
  end(data?: Buffer | string): void {
    if (data !== undefined) this.write(data);
    if (this.localClosed) return;
    this.localClosed = true;
    this.conn.sendData(this.id, Buffer.alloc(0), true);
  }

  /** the peer's data, and its FIN */
  pushed(data: Buffer, fin: boolean): void {
    if (data.length) this.emit('data', data);
    if (fin && !this.remoteClosed) {
      this.remoteClosed = true;
      this.emit('end');
    }
  }
}

/**
 * The server side of one SPDY connection after the 101: every SYN_STREAM is answered with a
 * SYN_REPLY and handed to `onStream`; PINGs are echoed; a GOAWAY or a bad frame ends it.
 */
export class SpdyServerConnection {
  private buf: Buffer = Buffer.alloc(0);
  private readonly streams = new Map<number, SpdyStream>();
  /** every compressed header byte the peer sent so far (one zlib stream), and how much of it was read */
  private inflateIn: Buffer = Buffer.alloc(0);
  private inflatedLen = 0;
  private deflateStarted = false;
  private closed = false;

  constructor(
    private readonly socket: Duplex,
    private readonly dict: Buffer,
    private readonly onStream: (s: SpdyStream) => void,
  ) {
    socket.on('data', (b: Buffer) => {
      try {
        this.push(b);
      } catch (err) {
        this.close(`bad SPDY from the peer: ${(err as Error).message}`);
      }
    });
    socket.on('close', () => this.close('socket closed'));
    socket.on('error', () => undefined);
  }

  close(_why: string): void {
    if (this.closed) return;
    this.closed = true;
    for (const s of this.streams.values()) s.pushed(Buffer.alloc(0), true);
    this.socket.destroy();
  }

  goaway(): void {
    if (this.closed) return;
    const last = Math.max(0, ...this.streams.keys());
    const body = Buffer.alloc(8);
    body.writeUInt32BE(last & 0x7fffffff, 0);
    this.socket.write(control(TYPE.goaway, 0, body));
    this.socket.end();
  }

  sendData(id: number, data: Buffer, fin: boolean): void {
    if (this.closed) return;
    const head = Buffer.alloc(8);
    head.writeUInt32BE(id & 0x7fffffff, 0);
    head.writeUInt32BE(((fin ? FLAG_FIN : 0) << 24) | data.length, 4);
    this.socket.write(Buffer.concat([head, data]));
  }

  private push(chunk: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    while (this.buf.length >= 8) {
      const len = this.buf.readUInt32BE(4) & 0xffffff;
      if (len > MAX_FRAME) throw new Error('frame too large');
      if (this.buf.length < 8 + len) return;
      const frame = this.buf.subarray(0, 8 + len);
      this.buf = this.buf.subarray(8 + len);
      this.frame(frame);
    }
  }

  private frame(f: Buffer): void {
    const flags = f[4]!;
    const body = f.subarray(8);
    if ((f[0]! & 0x80) === 0) {
      const id = f.readUInt32BE(0) & 0x7fffffff;
      this.streams.get(id)?.pushed(Buffer.from(body), (flags & FLAG_FIN) !== 0);
      return;
    }
    const version = f.readUInt16BE(0) & 0x7fff;
    if (version !== 3) throw new Error(`SPDY version ${version}`);
    const type = f.readUInt16BE(2);
    if (type === TYPE.synStream) {
      const id = body.readUInt32BE(0) & 0x7fffffff;
      const headers = this.readHeaders(body.subarray(10));
      const s = new SpdyStream(id, headers, this);
      this.streams.set(id, s);
      // the reply first: the peer's CreateStream waits for it before it writes
      const reply = Buffer.alloc(4);
      reply.writeUInt32BE(id, 0);
      this.socket.write(control(TYPE.synReply, 0, Buffer.concat([reply, this.writeHeaders({})])));
      this.onStream(s);
      if (flags & FLAG_FIN) s.pushed(Buffer.alloc(0), true);
    } else if (type === TYPE.headers || type === TYPE.synReply) {
      this.readHeaders(body.subarray(4)); // keeps the shared zlib stream in step
    } else if (type === TYPE.rstStream) {
      const id = body.readUInt32BE(0) & 0x7fffffff;
      this.streams.get(id)?.pushed(Buffer.alloc(0), true);
    } else if (type === TYPE.ping) {
      this.socket.write(control(TYPE.ping, 0, Buffer.from(body)));
    } else if (type === TYPE.goaway) {
      this.close('goaway');
    }
    // SETTINGS and WINDOW_UPDATE: nothing to do without flow control
  }

  /** Inflates the next header block of the peer's one zlib stream (re-reading the stream from its start). */
  private readHeaders(block: Buffer): Headers {
    this.inflateIn = Buffer.concat([this.inflateIn, block]);
    const all = inflateSync(this.inflateIn, { dictionary: this.dict, finishFlush: zc.Z_SYNC_FLUSH });
    const b = all.subarray(this.inflatedLen);
    this.inflatedLen = all.length;
    const headers: Headers = {};
    const n = b.readUInt32BE(0);
    let at = 4;
    for (let i = 0; i < n; i++) {
      const nl = b.readUInt32BE(at);
      const name = b.subarray(at + 4, at + 4 + nl).toString('latin1').toLowerCase();
      at += 4 + nl;
      const vl = b.readUInt32BE(at);
      headers[name] = b.subarray(at + 4, at + 4 + vl).toString('latin1');
      at += 4 + vl;
    }
    return headers;
  }

  /** A header block as zlib stored blocks (a zlib header before the first, no dictionary needed). */
  private writeHeaders(h: Headers): Buffer {
    const parts: Buffer[] = [u32(Object.keys(h).length)];
    for (const [k, v] of Object.entries(h)) parts.push(u32(k.length), Buffer.from(k, 'latin1'), u32(v.length), Buffer.from(v, 'latin1'));
    const raw = Buffer.concat(parts);
    const stored = Buffer.alloc(5);
    stored[0] = 0x00; // BFINAL 0, BTYPE 00, to the byte boundary
    stored.writeUInt16LE(raw.length, 1);
    stored.writeUInt16LE(~raw.length & 0xffff, 3);
    // then an empty stored block, as a sync flush ends: an inflater hands out a stored block's bytes
    // only when the next block begins (Go's flate does), and a frame must be readable on its own
    const out = [stored, raw, Buffer.from([0x00, 0x00, 0x00, 0xff, 0xff])];
    if (!this.deflateStarted) {
      this.deflateStarted = true;
      out.unshift(Buffer.from([0x78, 0x01])); // zlib header: deflate, 32K window, no dictionary
    }
    return Buffer.concat(out);
  }
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n, 0);
  return b;
}

function control(type: number, flags: number, body: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt16BE(0x8000 | 3, 0);
  head.writeUInt16BE(type, 2);
  head.writeUInt32BE((flags << 24) | body.length, 4);
  return Buffer.concat([head, body]);
}
