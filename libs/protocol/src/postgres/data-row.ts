/**
 * DataRow in place, for the result-masking hot path: a view that says where each value's bytes are
 * in the payload (no Buffer per value), and a writer that builds an edited copy of a row, copying
 * the bytes of the values it does not replace straight from the input.
 * Layout (https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-DATAROW):
 * 'D', int32 length (self-inclusive), int16 column count, then per column an int32 value length
 * (-1 = NULL, no bytes follow) and that many bytes.
 */
import { BackendMessageType as B } from './codes.js';
import { ProtocolError } from './errors.js';

const EMPTY = Buffer.alloc(0);

/**
 * One DataRow payload read in place: value i is `payload[starts[i], starts[i] + lengths[i])`, or
 * SQL NULL when `lengths[i]` is -1. Same checks and the same ProtocolErrors as decodeDataRow (which
 * is built on it). Meant to be reused row after row: the arrays only grow, and a failed read leaves
 * the previous row's `payload` and `count` in place.
 */
export class DataRowView {
  payload: Buffer = EMPTY;
  count = 0;
  /** offset of value i in `payload` (its int32 length field is the 4 bytes before) */
  starts = new Int32Array(16);
  /** byte length of value i; -1 is SQL NULL */
  lengths = new Int32Array(16);

  read(payload: Buffer): this {
    const end = payload.length;
    if (end < 2) throw new ProtocolError('malformed', 'DataRow: no column count');
    const n = (payload[0] << 8) | payload[1];
    if (n * 4 > end - 2) throw new ProtocolError('malformed', `DataRow: column count ${n} does not fit in ${end - 2} bytes`);
    if (n > this.starts.length) {
      const size = Math.max(n, this.starts.length * 2);
      this.starts = new Int32Array(size);
      this.lengths = new Int32Array(size);
    }
    const starts = this.starts;
    const lengths = this.lengths;
    let pos = 2;
    for (let i = 0; i < n; i++) {
      if (end - pos < 4) throw new ProtocolError('malformed', `DataRow: column ${i} length runs past the end`);
      // big-endian int32; `<< 24` makes it signed
      const len = (payload[pos] << 24) | (payload[pos + 1] << 16) | (payload[pos + 2] << 8) | payload[pos + 3];
      pos += 4;
      if (len !== -1 && (len < 0 || len > end - pos)) {
        throw new ProtocolError('malformed', `DataRow: column ${i} length ${len} is out of range`);
      }
      starts[i] = pos;
      lengths[i] = len;
      if (len > 0) pos += len;
    }
    if (pos !== end) throw new ProtocolError('malformed', `DataRow: ${end - pos} unexpected trailing bytes`);
    this.payload = payload;
    this.count = n;
    return this;
  }

  /** Lets go of the payload (a view kept for the next row should not hold a large frame alive). */
  release(): void {
    this.payload = EMPTY;
    this.count = 0;
  }
}

/** Rows are built in slabs of this size, shared by every writer (see DataRowWriter). */
const SLAB_SIZE = 64 * 1024;
/** Below this many bytes a copy is a JavaScript loop: a native copy costs ~100 ns to call. */
const NATIVE_COPY_ABOVE = 64;

/** The shared slab (made at the first masked row: processes that never mask never pay for it). */
let slab: Buffer | null = null;
/** Everything before this offset of `slab` has been handed out and is never written again. */
let slabUsed = 0;

function copyBytes(src: Uint8Array, from: number, to: number, dst: Uint8Array, at: number): void {
  const n = to - from;
  if (n > NATIVE_COPY_ABOVE) dst.set(src.subarray(from, to), at);
  else for (let k = 0; k < n; k++) dst[at + k] = src[from + k];
}

/**
 * Builds the DataRow that is `row` (a DataRowView) with some of its values replaced, as one frame
 * ready to relay (type byte and length included). Values are replaced in increasing column order;
 * everything between them — the bytes of the values kept, with their length fields — is copied from
 * the input as one block when the next replacement (or finish) comes, so a kept value costs nothing
 * per value, and a row that ends up with no replacement has cost nothing at all.
 *
 *     w.begin(view);
 *     w.setString(2, 'a****@example.com');   // value 2, as UTF-8
 *     const o = w.reserve(4, 19);            // value 4: the caller writes 19 bytes at w.buf[o..]
 *     if (w.started) frame = w.finish();
 *
 * Frames are carved out of 64 KiB slabs shared by all writers (like Buffer.allocUnsafe's pool, but
 * unaligned, so the rows of one result lie back to back and a relay can send them as one run). A slab
 * region is written only while its row is built and never again once finish() handed it out; a row
 * abandoned half way (begin() again, say after a masking error) is simply overwritten. Synchronous
 * use only: a row is begun and finished (or abandoned) without yielding.
 */
export class DataRowWriter {
  /** where the row being built is written; read it after reserve(), which may move the row */
  buf: Buffer = EMPTY;
  private row: DataRowView | null = null;
  /** start of the frame being built in `buf`, -1 before the first replacement */
  private frameStart = -1;
  private pos = 0;
  /** the first input column not yet copied or replaced */
  private next = 0;

  /** Starts an edit of `row` (drops any unfinished one). */
  begin(row: DataRowView): void {
    this.row = row;
    this.frameStart = -1;
    this.next = 0;
  }

  /** True once a value was replaced: finish() then gives the new frame. */
  get started(): boolean {
    return this.frameStart >= 0;
  }

  setNull(i: number): void {
    this.open(i, 4);
    this.lengthField(-1);
  }

  /** Value i becomes the UTF-8 bytes of `s`. */
  setString(i: number, s: string): void {
    const n = s.length;
    let ascii = n <= NATIVE_COPY_ABOVE;
    if (ascii) for (let k = 0; k < n; k++) if (s.charCodeAt(k) > 127) { ascii = false; break; }
    if (ascii) {
      const at = this.reserve(i, n);
      const buf = this.buf;
      for (let k = 0; k < n; k++) buf[at + k] = s.charCodeAt(k);
      return;
    }
    const len = Buffer.byteLength(s, 'utf8');
    const at = this.reserve(i, len);
    this.buf.write(s, at, len, 'utf8');
  }

  /** Value i becomes `src[start, end)`. */
  setBytes(i: number, src: Uint8Array, start: number, end: number): void {
    const at = this.reserve(i, end - start);
    copyBytes(src, start, end, this.buf, at);
  }

  /** Value i becomes `len` bytes the caller writes at `buf[returned offset ...]` before anything else. */
  reserve(i: number, len: number): number {
    if (len > 0x7fffffff - 4) throw new ProtocolError('invalid_argument', 'DataRow: value larger than 2 GiB');
    this.open(i, 4 + len);
    this.lengthField(len);
    const at = this.pos;
    this.pos += len;
    return at;
  }

  /** The new frame (a view of the slab); call only when `started`. */
  finish(): Buffer {
    const row = this.row!;
    if (this.frameStart < 0) throw new ProtocolError('invalid_argument', 'DataRow: finish() without a replaced value');
    // the values after the last replacement, as they came
    const from = this.next < row.count ? row.starts[this.next] - 4 : row.payload.length;
    this.copyInput(from, row.payload.length);
    const start = this.frameStart;
    const size = this.pos - start - 1;
    if (size > 0x7fffffff) throw new ProtocolError('invalid_argument', 'DataRow: row larger than 2 GiB');
    const buf = this.buf;
    // typed arrays drop writes past their end: a row longer than its buffer would go out corrupt
    if (this.pos > buf.length) throw new Error('DataRowWriter: a row overran its buffer');
    buf[start + 1] = size >>> 24;
    buf[start + 2] = (size >>> 16) & 0xff;
    buf[start + 3] = (size >>> 8) & 0xff;
    buf[start + 4] = size & 0xff;
    const frame = buf.subarray(start, this.pos);
    if (buf === slab) slabUsed = this.pos;
    else this.buf = EMPTY; // a large row's own buffer: the frame holds it, the writer need not
    this.frameStart = -1;
    this.row = null;
    return frame;
  }

  /** Moves to value i (copying the values kept before it) with room for `extra` more bytes (its length field included). */
  private open(i: number, extra: number): void {
    const row = this.row;
    if (row === null || i < this.next || i >= row.count) {
      throw new ProtocolError('invalid_argument', `DataRow: value ${i} replaced out of order or past the ${row?.count ?? 0} columns`);
    }
    // the kept values run from the length field of the first one not copied yet to that of value i
    const from = row.starts[this.next] - 4;
    const kept = row.starts[i] - 4 - from;
    if (this.frameStart < 0) {
      // the first replacement: the frame starts here, header first (type, length later, count)
      this.buf = slab ??= Buffer.allocUnsafeSlow(SLAB_SIZE);
      this.frameStart = this.pos = slabUsed;
      this.ensure(7 + kept + extra);
      const buf = this.buf;
      const start = this.frameStart;
      buf[start] = B.DataRow;
      buf[start + 5] = row.payload[0];
      buf[start + 6] = row.payload[1];
      this.pos = start + 7;
    } else {
      this.ensure(kept + extra);
    }
    this.copyInput(from, from + kept);
    this.next = i + 1;
  }

  private copyInput(from: number, to: number): void {
    if (to <= from) return;
    this.ensure(to - from);
    copyBytes(this.row!.payload, from, to, this.buf, this.pos);
    this.pos += to - from;
  }

  private lengthField(v: number): void {
    const buf = this.buf;
    const p = this.pos;
    buf[p] = v >>> 24;
    buf[p + 1] = (v >>> 16) & 0xff;
    buf[p + 2] = (v >>> 8) & 0xff;
    buf[p + 3] = v & 0xff;
    this.pos = p + 4;
  }

  /** Room for `n` more bytes: a full slab makes the row move to a fresh one (or to its own buffer when large). */
  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const built = this.pos - this.frameStart;
    const need = built + n;
    // a row bigger than a quarter slab gets a buffer of its own, with room to grow
    const fresh = need > SLAB_SIZE / 4 ? Buffer.allocUnsafeSlow(Math.max(need * 2, SLAB_SIZE)) : Buffer.allocUnsafeSlow(SLAB_SIZE);
    copyBytes(this.buf, this.frameStart, this.pos, fresh, 0);
    if (need <= SLAB_SIZE / 4) {
      // the old slab's tail is dropped: it held only this unfinished row
      slab = fresh;
      slabUsed = 0;
    }
    this.buf = fresh;
    this.frameStart = 0;
    this.pos = built;
  }
}
