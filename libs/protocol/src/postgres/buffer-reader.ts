import { ProtocolError } from './errors.js';

/**
 * Reads the fields of one message body. Every read is bounds-checked: running past the end is a
 * ProtocolError('malformed'), never a RangeError or a read of the next message's bytes.
 * `bytes()` returns zero-copy views into the underlying buffer.
 */
export class BufferReader {
  private pos: number;

  constructor(
    private readonly buf: Buffer,
    offset = 0,
    /** Names the message in error texts. */
    private readonly what = 'message',
  ) {
    this.pos = offset;
  }

  get offset(): number {
    return this.pos;
  }

  remaining(): number {
    return this.buf.length - this.pos;
  }

  private need(n: number, field: string): void {
    if (this.buf.length - this.pos < n) {
      throw new ProtocolError('malformed', `${this.what}: ${field} runs past the end of the message (${n} bytes needed, ${this.buf.length - this.pos} left)`);
    }
  }

  uint8(): number {
    this.need(1, 'byte');
    return this.buf[this.pos++];
  }

  int16(): number {
    this.need(2, 'int16');
    const v = this.buf.readInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  uint16(): number {
    this.need(2, 'int16');
    const v = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  int32(): number {
    this.need(4, 'int32');
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  uint32(): number {
    this.need(4, 'int32');
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  /** A NUL-terminated UTF-8 string (the terminator is consumed, not returned). */
  cstring(): string {
    const end = this.buf.indexOf(0, this.pos);
    if (end === -1) throw new ProtocolError('malformed', `${this.what}: string has no NUL terminator`);
    const s = this.buf.toString('utf8', this.pos, end);
    this.pos = end + 1;
    return s;
  }

  /** A NUL-terminated string as raw bytes (zero-copy view, terminator consumed). */
  cstringBytes(): Buffer {
    const end = this.buf.indexOf(0, this.pos);
    if (end === -1) throw new ProtocolError('malformed', `${this.what}: string has no NUL terminator`);
    const b = this.buf.subarray(this.pos, end);
    this.pos = end + 1;
    return b;
  }

  /** `n` bytes as a zero-copy view. */
  bytes(n: number): Buffer {
    if (n < 0) throw new ProtocolError('malformed', `${this.what}: negative length ${n}`);
    this.need(n, `${n}-byte field`);
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }

  /** Everything left, as a zero-copy view. */
  rest(): Buffer {
    const b = this.buf.subarray(this.pos);
    this.pos = this.buf.length;
    return b;
  }

  /** An int32 length then that many bytes; -1 is SQL NULL. */
  nullableBytes(): Buffer | null {
    const len = this.int32();
    if (len === -1) return null;
    if (len < 0) throw new ProtocolError('malformed', `${this.what}: value length ${len} is negative`);
    return this.bytes(len);
  }

  /**
   * A count that announces `count` items of at least `minItemSize` bytes each. Checked against the
   * bytes left before the caller allocates anything for them.
   */
  checkCount(count: number, minItemSize: number, field: string): number {
    if (count * minItemSize > this.buf.length - this.pos) {
      throw new ProtocolError('malformed', `${this.what}: ${field} count ${count} does not fit in the ${this.buf.length - this.pos} bytes left`);
    }
    return count;
  }

  /** Postgres' pq_getmsgend: a message with bytes left over is malformed. */
  end(): void {
    if (this.pos !== this.buf.length) {
      throw new ProtocolError('malformed', `${this.what}: ${this.buf.length - this.pos} unexpected trailing bytes`);
    }
  }
}
