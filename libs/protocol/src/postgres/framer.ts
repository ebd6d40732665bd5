import {
  CANCEL_REQUEST_CODE,
  DEFAULT_MAX_CLIENT_MESSAGE_LENGTH,
  DEFAULT_MAX_SERVER_MESSAGE_LENGTH,
  FrontendMessageType,
  GSSENC_REQUEST_CODE,
  MAX_CANCEL_KEY_LENGTH,
  MAX_STARTUP_PACKET_LENGTH,
  PG_MAX_AUTH_TOKEN_LENGTH,
  PQ_SMALL_MESSAGE_LIMIT,
  SSL_REQUEST_CODE,
} from './codes.js';
import { ProtocolError } from './errors.js';

/**
 * One whole message. `type` is the type byte, or 0 for an untyped startup-phase packet
 * (StartupMessage, SSLRequest, GSSENCRequest, CancelRequest) whose `payload` then starts with the
 * int32 protocol/request code. `payload` is the body after the header; `frame` is the whole message
 * including its header, ready to relay. Both are views: into the pushed chunk when the message lay
 * inside one chunk, into one fresh buffer when it straddled chunks. They stay valid as long as the
 * caller does not mutate the chunks it pushed.
 */
export interface PgFrame {
  type: number;
  payload: Buffer;
  frame: Buffer;
}

export interface PgFramerOptions {
  /** The first message is an untyped startup packet (a client's side of a fresh connection). */
  startup: boolean;
  /**
   * Who sends the bytes; picks the default caps. Defaults to 'client' when `startup` is true,
   * else 'server'.
   */
  from?: 'client' | 'server';
  /** Cap on a typed message's length field. Default 64 MiB from a client, 1 GiB - 1 from a server. */
  maxMessageLength?: number;
  /** Cap on an untyped startup packet. Default 10000 (Postgres' MAX_STARTUP_PACKET_LENGTH). */
  maxStartupLength?: number;
  /**
   * From a client only: cap on messages that carry no user data (Sync, Flush, Terminate, Execute,
   * Describe, Close, CopyDone, CopyFail), as Postgres does (PQ_SMALL_MESSAGE_LIMIT, default 10000),
   * and on 'p' authentication messages (default 65535, PG_MAX_AUTH_TOKEN_LENGTH).
   */
  maxSmallMessageLength?: number;
  maxAuthMessageLength?: number;
}

const TYPED_HEADER = 5;
const UNTYPED_HEADER = 8; // int32 length + int32 code
const EMPTY = Buffer.alloc(0);

/**
 * A streaming Postgres v3 framer: push chunks as they come off a socket, pull whole messages.
 *
 * Hot path: a message that lies inside one chunk is returned as two views into that chunk, with no
 * copy and no allocation besides the views and the frame object. Only a message that straddles
 * chunks is copied, once, into a buffer of its exact size — and only when all of its bytes have
 * arrived, so a hostile length field never makes us allocate what it claims.
 *
 * Length fields are checked as soon as the header is in; a bad one throws a ProtocolError and the
 * framer stays failed (every later call throws the same error): the caller closes the connection.
 */
export class PgFramer {
  private chunks: Buffer[] = [];
  /** Read position inside chunks[0]. */
  private head = 0;
  private total = 0;
  private untyped: boolean;
  private failure: ProtocolError | null = null;
  /** whole size of the typed message at the head when next() last found it incomplete, else 0 */
  private incomplete = 0;
  private readonly caps: Uint32Array;
  private readonly maxStartup: number;

  constructor(options: PgFramerOptions) {
    this.untyped = options.startup;
    const from = options.from ?? (options.startup ? 'client' : 'server');
    const max = options.maxMessageLength ?? (from === 'client' ? DEFAULT_MAX_CLIENT_MESSAGE_LENGTH : DEFAULT_MAX_SERVER_MESSAGE_LENGTH);
    checkCap(max, 'maxMessageLength');
    this.maxStartup = options.maxStartupLength ?? MAX_STARTUP_PACKET_LENGTH;
    checkCap(this.maxStartup, 'maxStartupLength');
    // One cap per type byte: a table lookup on the hot path instead of a switch.
    this.caps = new Uint32Array(256).fill(max);
    if (from === 'client') {
      const small = Math.min(options.maxSmallMessageLength ?? PQ_SMALL_MESSAGE_LIMIT, max);
      const auth = Math.min(options.maxAuthMessageLength ?? PG_MAX_AUTH_TOKEN_LENGTH, max);
      checkCap(small, 'maxSmallMessageLength');
      checkCap(auth, 'maxAuthMessageLength');
      const t = FrontendMessageType;
      for (const type of [t.Sync, t.Flush, t.Terminate, t.Execute, t.Describe, t.Close, t.CopyDone, t.CopyFail]) this.caps[type] = small;
      this.caps[t.Password] = auth;
    }
  }

  /** True while the next message is expected to be an untyped startup packet. */
  get awaitingStartup(): boolean {
    return this.untyped;
  }

  /** Forces the next message to be read as an untyped startup packet (e.g. after answering SSLRequest with 'N'). */
  expectStartup(): void {
    this.untyped = true;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.total += chunk.length;
  }

  /** The cap on each typed message's length field, by type byte (a copy). */
  lengthCaps(): Uint32Array {
    return this.caps.slice();
  }

  /**
   * The whole size (type byte and length field included) of the typed message next() last found
   * incomplete, 0 when it returned a message or had no header yet: what the caller must hold to
   * receive that message whole (a memory budget reserves it before reading on).
   */
  get incompleteSize(): number {
    return this.incomplete;
  }

  /** Bytes held that no returned frame covers yet. */
  buffered(): number {
    return this.total;
  }

  /**
   * Hands back every byte not yet framed and empties the framer (after a TLS upgrade the caller may
   * need them; note a client must not send anything after SSLRequest before the handshake).
   */
  takeRemaining(): Buffer {
    const out = this.total === 0 ? EMPTY : this.take(this.total);
    this.chunks = [];
    this.head = 0;
    this.total = 0;
    return out;
  }

  /** The peer closed its side: any partial message left is a ProtocolError('truncated'). */
  end(): void {
    if (this.failure) throw this.failure;
    if (this.total > 0) {
      throw this.fail(new ProtocolError('truncated', `connection closed in the middle of a message (${this.total} bytes left over)`));
    }
  }

  /** The next whole message, or null until more bytes arrive. */
  next(): PgFrame | null {
    if (this.failure) throw this.failure;
    if (this.untyped) return this.nextUntyped();
    this.incomplete = 0;
    if (this.total < TYPED_HEADER) return null;
    const chunk = this.chunks[0];
    const off = this.head;
    let type: number;
    let len: number;
    if (chunk.length - off >= TYPED_HEADER) {
      type = chunk[off];
      len = chunk.readInt32BE(off + 1);
    } else {
      type = this.peekByte(0);
      len = this.peekInt32(1);
    }
    if (len < 4 || len > this.caps[type]) {
      throw this.fail(new ProtocolError('length_out_of_range', `message type 0x${type.toString(16).padStart(2, '0')} has length ${len}, outside 4..${this.caps[type]}`));
    }
    const size = len + 1;
    if (this.total < size) {
      this.incomplete = size;
      return null;
    }
    if (chunk.length - off >= size) {
      const end = off + size;
      const frame = chunk.subarray(off, end);
      const payload = chunk.subarray(off + TYPED_HEADER, end);
      this.total -= size;
      if (end === chunk.length) {
        this.chunks.shift();
        this.head = 0;
      } else {
        this.head = end;
      }
      return { type, payload, frame };
    }
    const frame = this.take(size);
    return { type, payload: frame.subarray(TYPED_HEADER), frame };
  }

  private nextUntyped(): PgFrame | null {
    if (this.total < 4) return null;
    const len = this.peekInt32(0);
    if (len < UNTYPED_HEADER || len > this.maxStartup) {
      throw this.fail(new ProtocolError('length_out_of_range', `startup packet has length ${len}, outside ${UNTYPED_HEADER}..${this.maxStartup}`));
    }
    if (this.total < UNTYPED_HEADER) return null;
    const code = this.peekInt32(4);
    let again = false;
    if (code === SSL_REQUEST_CODE || code === GSSENC_REQUEST_CODE) {
      if (len !== 8) throw this.fail(new ProtocolError('bad_startup', `${code === SSL_REQUEST_CODE ? 'SSLRequest' : 'GSSENCRequest'} has length ${len}, expected 8`));
      again = true; // the client may follow up with another untyped packet (after 'N', or inside TLS)
    } else if (code === CANCEL_REQUEST_CODE) {
      if (len < 16 || len > 12 + MAX_CANCEL_KEY_LENGTH) throw this.fail(new ProtocolError('bad_startup', `CancelRequest has length ${len}, expected 16..${12 + MAX_CANCEL_KEY_LENGTH}`));
    } else if (code >>> 16 !== 3) {
      throw this.fail(new ProtocolError('unsupported_protocol', `unsupported frontend protocol ${code >>> 16}.${code & 0xffff}: the gateway speaks 3.x`));
    } else if (len < 9) {
      throw this.fail(new ProtocolError('bad_startup', `StartupMessage has length ${len}, too short for its terminator`));
    }
    if (this.total < len) return null;
    const frame = this.take(len);
    this.untyped = again;
    return { type: 0, payload: frame.subarray(4), frame };
  }

  private fail(err: ProtocolError): ProtocolError {
    this.failure = err;
    return err;
  }

  /** Removes the next `n` bytes (n <= total): a view if they lie in one chunk, else one copy. */
  private take(n: number): Buffer {
    const first = this.chunks[0];
    const off = this.head;
    this.total -= n;
    if (first.length - off >= n) {
      const out = first.subarray(off, off + n);
      if (off + n === first.length) {
        this.chunks.shift();
        this.head = 0;
      } else {
        this.head = off + n;
      }
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const c = this.chunks[0];
      const avail = c.length - this.head;
      const want = n - filled;
      if (avail <= want) {
        c.copy(out, filled, this.head);
        filled += avail;
        this.chunks.shift();
        this.head = 0;
      } else {
        c.copy(out, filled, this.head, this.head + want);
        this.head += want;
        filled += want;
      }
    }
    return out;
  }

  /** The byte `i` positions after the read position (i < total). */
  private peekByte(i: number): number {
    let idx = this.head + i;
    for (const c of this.chunks) {
      if (idx < c.length) return c[idx];
      idx -= c.length;
    }
    throw new ProtocolError('truncated', 'peek past buffered bytes');
  }

  private peekInt32(i: number): number {
    const c = this.chunks[0];
    const at = this.head + i;
    if (c.length - at >= 4) return c.readInt32BE(at);
    return ((this.peekByte(i) << 24) | (this.peekByte(i + 1) << 16) | (this.peekByte(i + 2) << 8) | this.peekByte(i + 3)) | 0;
  }
}

function checkCap(v: number, name: string): void {
  if (!Number.isInteger(v) || v < 4 || v > 0x7fffffff) {
    throw new ProtocolError('invalid_argument', `${name} must be an integer in 4..2147483647, got ${String(v)}`);
  }
}
