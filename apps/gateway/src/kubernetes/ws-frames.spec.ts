import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { WS_OP, WsFrameReader, WsProtocolError, channelFrame, encodeWsFrame, type WsFrame } from './ws-frames.js';

const digest = (b: Buffer): string => `${b.length}:${createHash('sha256').update(b).digest('hex').slice(0, 16)}`;
const seen = (frames: WsFrame[]): { fin: boolean; opcode: number; payload: string; raw: string }[] =>
  frames.map((f) => ({ fin: f.fin, opcode: f.opcode, payload: digest(f.payload), raw: digest(f.raw) }));

/** frames of each length form (7-bit, 16-bit, 64-bit), masked (client → server) and not, a fragment, a control frame */
function sample(): Buffer {
  const fragment = encodeWsFrame(WS_OP.text, Buffer.from('part'), false);
  fragment[0] = fragment[0]! & 0x7f; // fin clear
  return Buffer.concat([
    channelFrame(0, 'ls -l\r', true),
    channelFrame(1, Buffer.alloc(300, 0x61), false),
    encodeWsFrame(WS_OP.binary, Buffer.alloc(70_000, 0x62), true),
    fragment,
    encodeWsFrame(WS_OP.ping, Buffer.alloc(0), true),
    channelFrame(2, '', false),
  ]);
}

describe('WsFrameReader', () => {
  afterEach(() => vi.restoreAllMocks());

  it('reads the same frames however the bytes are split: whole, cut at every offset, one byte at a time', () => {
    const bytes = sample();
    const whole = seen(new WsFrameReader().push(bytes));
    const frames = new WsFrameReader().push(bytes);
    expect(frames.map((f) => [f.opcode, f.fin, f.payload.length])).toEqual([[2, true, 7], [2, true, 301], [2, true, 70_000], [1, false, 4], [9, true, 0], [2, true, 1]]);
    expect(Buffer.concat(frames.map((f) => f.raw)).equals(bytes)).toBe(true);
    expect(frames[0]!.payload.toString()).toBe('\x00ls -l\r');
    // every cut near the small frames' headers and payloads, and a stride through the large one
    for (let cut = 0; cut <= bytes.length; cut += cut < 400 || cut > bytes.length - 400 ? 1 : 997) {
      const r = new WsFrameReader();
      expect(seen([...r.push(bytes.subarray(0, cut)), ...r.push(bytes.subarray(cut))]), `cut at ${cut}`).toEqual(whole);
    }
    const r = new WsFrameReader();
    const bytewise: WsFrame[] = [];
    for (let i = 0; i < bytes.length; i++) bytewise.push(...r.push(bytes.subarray(i, i + 1)));
    expect(seen(bytewise)).toEqual(whole);
  });

  // the reader joined what it held with every chunk: a 16 MiB frame sent in TLS-record pieces was copied about
  // 1,000 times (some 8 GiB of copying; 16 s of a blocked event loop, for every user of the gateway)
  it('a large frame arriving in small pieces is joined once, not once per piece', () => {
    const frame = encodeWsFrame(WS_OP.binary, Buffer.alloc(16 * 1024 * 1024 - 16, 0x63), true);
    const concat = vi.spyOn(Buffer, 'concat');
    const r = new WsFrameReader();
    const frames: WsFrame[] = [];
    for (let i = 0; i < frame.length; i += 16 * 1024) frames.push(...r.push(frame.subarray(i, i + 16 * 1024)));
    const copied = concat.mock.calls.reduce((n, [list]) => n + list.reduce((m, b) => m + b.length, 0), 0);
    expect(frames).toHaveLength(1);
    expect(frames[0]!.payload.length).toBe(16 * 1024 * 1024 - 16);
    expect(frames[0]!.payload.every((b) => b === 0x63)).toBe(true);
    expect(copied).toBeLessThanOrEqual(frame.length + 64);
  });

  it('refuses what cannot be a frame here: reserved bits, a length over 16 MiB (from its header, before the bytes)', () => {
    expect(() => new WsFrameReader().push(Buffer.from([0xc2, 0x00]))).toThrow(WsProtocolError);
    const huge = Buffer.alloc(10);
    huge[0] = 0x82;
    huge[1] = 127;
    huge.writeBigUInt64BE(2n ** 40n, 2);
    expect(() => new WsFrameReader().push(huge)).toThrow('WebSocket frame too large');
    const r = new WsFrameReader();
    expect(r.push(huge.subarray(0, 5))).toEqual([]);
    expect(() => r.push(huge.subarray(5))).toThrow('WebSocket frame too large');
  });
});
