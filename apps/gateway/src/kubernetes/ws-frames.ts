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

export class WsFrameReader {
  private buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): WsFrame[] {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const out: WsFrame[] = [];
    for (;;) {
      const f = this.next();
      if (!f) break;
      out.push(f);
    }
    return out;
  }

  private next(): WsFrame | null {
    const b = this.buf;
    if (b.length < 2) return null;
    const fin = (b[0]! & 0x80) !== 0;
    if ((b[0]! & 0x70) !== 0) throw new WsProtocolError('reserved WebSocket bits set (no extension was negotiated)');
    const opcode = b[0]! & 0x0f;
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
    const keyAt = at;
    if (masked) at += 4;
    if (b.length < at + len) return null;
    let payload = b.subarray(at, at + len);
    if (masked) {
      const key = b.subarray(keyAt, keyAt + 4);
      const p = Buffer.allocUnsafe(len);
      for (let i = 0; i < len; i++) p[i] = payload[i]! ^ key[i & 3]!;
      payload = p;
    } else payload = Buffer.from(payload);
    const raw = Buffer.from(b.subarray(0, at + len));
    this.buf = b.subarray(at + len);
    return { fin, opcode, payload, raw };
  }
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
