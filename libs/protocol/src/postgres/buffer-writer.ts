import { ProtocolError } from './errors.js';

/** Strings up to this many UTF-16 units reserve 3 bytes per unit instead of measuring first. */
const MEASURE_ABOVE = 1024;

/**
 * Builds one message. Encoders pass a capacity close to (or exactly) the final size so a message
 * costs one allocation; the buffer grows by doubling if a guess was short. Values that cannot be
 * put on the wire (a NUL inside a string, an int out of range) are a ProtocolError('invalid_argument'),
 * never a silently corrupted frame.
 */
export class BufferWriter {
  private buf: Buffer;
  private pos = 0;
  private readonly start: number;

  private constructor(capacity: number, type: number | null) {
    this.buf = Buffer.allocUnsafe(Math.max(capacity, 8));
    if (type !== null) {
      this.buf[0] = type;
      this.pos = 5; // type byte + length placeholder
      this.start = 1;
    } else {
      this.pos = 4; // length placeholder
      this.start = 0;
    }
  }

  /** A typed message: type byte, int32 length (self-inclusive), body. */
  static typed(type: number, capacity = 64): BufferWriter {
    return new BufferWriter(capacity, type);
  }

  /** An untyped startup-phase packet: int32 length (self-inclusive), body. */
  static untyped(capacity = 64): BufferWriter {
    return new BufferWriter(capacity, null);
  }

  /** Bytes written so far, header included. */
  get length(): number {
    return this.pos;
  }

  private ensure(n: number): void {
    const need = this.pos + n;
    if (need <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < need) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  uint8(v: number): this {
    checkInt(v, 0, 0xff, 'byte');
    this.ensure(1);
    this.buf[this.pos++] = v;
    return this;
  }

  int16(v: number): this {
    checkInt(v, -0x8000, 0x7fff, 'int16');
    this.ensure(2);
    this.buf.writeInt16BE(v, this.pos);
    this.pos += 2;
    return this;
  }

  /** A 16-bit count (Postgres reads counts as unsigned: up to 65535 parameters). */
  uint16(v: number): this {
    checkInt(v, 0, 0xffff, 'int16 count');
    this.ensure(2);
    this.buf.writeUInt16BE(v, this.pos);
    this.pos += 2;
    return this;
  }

  int32(v: number): this {
    checkInt(v, -0x80000000, 0x7fffffff, 'int32');
    this.ensure(4);
    this.buf.writeInt32BE(v, this.pos);
    this.pos += 4;
    return this;
  }

  /** An unsigned 32-bit value (OIDs, cancel secrets); negative int32 values are taken as their bit pattern. */
  uint32(v: number): this {
    checkInt(v, -0x80000000, 0xffffffff, 'uint32');
    this.ensure(4);
    this.buf.writeUInt32BE(v >>> 0, this.pos);
    this.pos += 4;
    return this;
  }

  /** A NUL-terminated UTF-8 string. A NUL inside it would end the field early: refused. */
  cstring(s: string, field = 'string'): this {
    if (s.indexOf('\0') !== -1) throw new ProtocolError('invalid_argument', `${field} contains a NUL character`);
    this.ensure(s.length > MEASURE_ABOVE ? Buffer.byteLength(s) + 1 : s.length * 3 + 1);
    this.pos += this.buf.write(s, this.pos, 'utf8');
    this.buf[this.pos++] = 0;
    return this;
  }

  /** A UTF-8 string with no terminator (the caller wrote its length). */
  string(s: string): this {
    this.ensure(s.length > MEASURE_ABOVE ? Buffer.byteLength(s) : s.length * 3);
    this.pos += this.buf.write(s, this.pos, 'utf8');
    return this;
  }

  bytes(b: Uint8Array): this {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
    return this;
  }

  /** Fills in the length field and returns the message. */
  finish(): Buffer {
    const len = this.pos - this.start;
    this.buf.writeInt32BE(len, this.start);
    // A generous guess must not pin a large backing store behind a small message.
    if (this.buf.length > 4096 && this.buf.length > this.pos * 2) return Buffer.from(this.buf.subarray(0, this.pos));
    return this.buf.subarray(0, this.pos);
  }
}

function checkInt(v: number, min: number, max: number, what: string): void {
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new ProtocolError('invalid_argument', `${what} value ${String(v)} is out of range ${min}..${max}`);
  }
}

/** Bytes a string takes as a cstring (UTF-8 plus the terminator). */
export function cstringLength(s: string): number {
  return Buffer.byteLength(s) + 1;
}
