import { randomBytes } from 'node:crypto';

/**
 * RFC 6455 frames, as far as the gateway needs them on exec/attach streams: read frames as they come
 * (any split of the bytes), keep each frame's original bytes so an untouched frame goes on as it was,
 * and write new ones (client → server masked, server → client not, §5.3).
 *
 * Kubernetes' channel protocols (`v4.channel.k8s.io`, `v5.channel.k8s.io`) put the stream number in
 * the first byte of each binary message: 0 stdin, 1 stdout, 2 stderr, 3 error (the exit Status),
 * 4 resize (`{"Width":…,"Height":…}`), and with v5, 255 close (the next byte names the stream closed).
 */
export interface WsFrame {
  fin: boolean;
  opcode: number;
  /** unmasked payload */
  payload: Buffer;
  /** the frame as it came over the wire */
  raw: Buffer;
}

export const WS_OP = { continuation: 0, text: 1, binary: 2, close: 8, ping: 9, pong: 10 } as const;
export const CHANNEL = { stdin: 0, stdout: 1, stderr: 2, error: 3, resize: 4, close: 255 } as const;

export class WsProtocolError extends Error {}

/** Largest frame accepted (exec traffic is small frames; a huge length is garbage or an attack). */
const MAX_FRAME = 16 * 1024 * 1024;

/**
 * Frames out of a byte stream, however it was split. The chunks of an incomplete frame are kept as they
 * came and joined once, when the frame is whole: joining the held bytes with each chunk (as before)
 * copied a large frame over and over — a client announcing a 16 MiB frame and sending it in TLS-record
 * pieces cost about 1,000 copies of up to 16 MiB, the event loop of the whole gateway blocked for
 * seconds (16 s measured) per frame.
 */
export class WsFrameReader {
  private parts: Buffer[] = [];
  private have = 0;
  /** the whole length of the frame at the head (header, key, payload); 0 while its header is incomplete */
  private need = 0;

  push(chunk: Buffer): WsFrame[] {
    if (chunk.length) {
      this.parts.push(chunk);
      this.have += chunk.length;
    }
    const out: WsFrame[] = [];
    for (;;) {
      if (this.need === 0) {
        const need = frameLength(this.peek(14));
        if (need === null) break;
        this.need = need;
      }
      if (this.have < this.need) break;
      out.push(decodeFrame(this.take(this.need)));
      this.need = 0;
    }
    return out;
  }

  /** The first `n` bytes held (fewer when fewer came), joining only the chunks they span. */
  private peek(n: number): Buffer {
    const first = this.parts[0];
    if (!first || first.length >= n || this.parts.length === 1) return first ?? Buffer.alloc(0);
    const span: Buffer[] = [];
    let got = 0;
    for (const p of this.parts) {
      span.push(p);
      got += p.length;
      if (got >= n) break;
    }
    return Buffer.concat(span, Math.min(got, n));
  }

  /** The first `n` bytes, out of the held chunks (at most one join). */
  private take(n: number): Buffer {
    const span: Buffer[] = [];
    let got = 0;
    while (got < n) {
      const p = this.parts[0]!;
      if (got + p.length <= n) {
        span.push(p);
        got += p.length;
        this.parts.shift();
      } else {
        span.push(p.subarray(0, n - got));
        this.parts[0] = p.subarray(n - got);
        got = n;
      }
    }
    this.have -= n;
    return span.length === 1 ? span[0]! : Buffer.concat(span, n);
  }
}

/** The whole length of the frame whose first bytes `b` are, or null while its header has not all come. */
function frameLength(b: Buffer): number | null {
  if (b.length < 2) return null;
  if ((b[0]! & 0x70) !== 0) throw new WsProtocolError('reserved WebSocket bits set (no extension was negotiated)');
  const masked = (b[1]! & 0x80) !== 0;
  let len = b[1]! & 0x7f;
  let at = 2;
  if (len === 126) {
    if (b.length < 4) return null;
    len = b.readUInt16BE(2);
    at = 4;
  } else if (len === 127) {
    if (b.length < 10) return null;
    const big = b.readBigUInt64BE(2);
    if (big > BigInt(MAX_FRAME)) throw new WsProtocolError('WebSocket frame too large');
    len = Number(big);
    at = 10;
  }
  if (len > MAX_FRAME) throw new WsProtocolError('WebSocket frame too large');
  return at + (masked ? 4 : 0) + len;
}

/** One whole frame's bytes (frameLength of them). */
function decodeFrame(b: Buffer): WsFrame {
  const fin = (b[0]! & 0x80) !== 0;
  const opcode = b[0]! & 0x0f;
  const masked = (b[1]! & 0x80) !== 0;
  const len7 = b[1]! & 0x7f;
  const at = len7 === 126 ? 4 : len7 === 127 ? 10 : 2;
  const from = at + (masked ? 4 : 0);
  const len = b.length - from;
  let payload: Buffer;
  if (masked) {
    const key = b.subarray(at, at + 4);
    payload = Buffer.allocUnsafe(len);
    for (let i = 0; i < len; i++) payload[i] = b[from + i]! ^ key[i & 3]!;
  } else payload = Buffer.from(b.subarray(from));
  // the frame's own bytes: never a view of a chunk that later frames (or the socket's pool) share
  return { fin, opcode, payload, raw: Buffer.from(b) };
}

/** One whole frame; `mask` for client → server (a fresh random key, as RFC 6455 requires). */
export function encodeWsFrame(opcode: number, payload: Buffer, mask: boolean): Buffer {
  const len = payload.length;
  const headLen = (len < 126 ? 2 : len < 65536 ? 4 : 10) + (mask ? 4 : 0);
  const out = Buffer.allocUnsafe(headLen + len);
  out[0] = 0x80 | opcode;
  let at: number;
  if (len < 126) {
    out[1] = len;
    at = 2;
  } else if (len < 65536) {
    out[1] = 126;
    out.writeUInt16BE(len, 2);
    at = 4;
  } else {
    out[1] = 127;
    out.writeBigUInt64BE(BigInt(len), 2);
    at = 10;
  }
  if (mask) {
    out[1]! |= 0x80;
    const key = randomBytes(4);
    key.copy(out, at);
    at += 4;
    for (let i = 0; i < len; i++) out[at + i] = payload[i]! ^ key[i & 3]!;
  } else payload.copy(out, at);
  return out;
}

/** A channel message: the stream byte, then the data. */
export function channelFrame(channel: number, data: Buffer | string, mask: boolean): Buffer {
  const body = typeof data === 'string' ? Buffer.from(data) : data;
  return encodeWsFrame(WS_OP.binary, Buffer.concat([Buffer.from([channel]), body]), mask);
}
