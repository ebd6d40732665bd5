import { describe, expect, it } from 'vitest';
import * as be from './backend.js';
import { CANCEL_REQUEST_CODE, DEFAULT_MAX_CLIENT_MESSAGE_LENGTH } from './codes.js';
import { ProtocolError } from './errors.js';
import { PgFramer, type PgFrame, type PgFramerOptions } from './framer.js';
import * as fe from './frontend.js';
import { prng } from './prng.test-support.js';


function drain(f: PgFramer): PgFrame[] {
  const out: PgFrame[] = [];
  for (let m = f.next(); m; m = f.next()) out.push(m);
  return out;
}

function errorOf(fn: () => unknown): ProtocolError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ProtocolError);
    return e as ProtocolError;
  }
  throw new Error('expected a ProtocolError, nothing was thrown');
}

const typed: { name: string; bytes: Buffer }[] = [
  { name: 'Query', bytes: fe.encodeQuery('select * from customers where id = 1') },
  { name: 'Parse', bytes: fe.encodeParse({ name: 's', query: 'select $1', paramTypes: [23] }) },
  { name: 'Bind', bytes: fe.encodeBind({ statement: 's', params: ['1', null] }) },
  { name: 'Sync', bytes: fe.encodeSync() },
  { name: 'SASLInitialResponse', bytes: fe.encodeSASLInitialResponse('SCRAM-SHA-256', 'n,,n=,r=x') },
  { name: 'CopyData', bytes: fe.encodeCopyData(Buffer.alloc(300, 7)) },
  { name: 'AuthenticationSASL', bytes: be.encodeAuthenticationSASL(['SCRAM-SHA-256']) },
  { name: 'RowDescription', bytes: be.encodeRowDescription([{ name: 'a', tableOid: 1, columnAttr: 1, typeOid: 25, typeSize: -1, typeModifier: -1, format: 0 }]) },
  { name: 'DataRow', bytes: be.encodeDataRow(['alice@example.com', null, '4111 1111 1111 1111']) },
  { name: 'ErrorResponse', bytes: be.encodeErrorResponse({ severity: 'ERROR', code: '42P01', message: 'relation "x" does not exist', position: '15' }) },
  { name: 'ReadyForQuery', bytes: be.encodeReadyForQuery('T') },
];

const untyped: { name: string; bytes: Buffer }[] = [
  { name: 'StartupMessage', bytes: fe.encodeStartupMessage({ user: 'alice', database: 'demo', application_name: 'psql' }) },
  { name: 'SSLRequest', bytes: fe.encodeSSLRequest() },
  { name: 'GSSENCRequest', bytes: fe.encodeGSSENCRequest() },
  { name: 'CancelRequest', bytes: fe.encodeCancelRequest(1234, 0xcafebabe) },
];

/** A framer in the mode a message needs; a typed follower proves the framer stays in sync. */
const follower = fe.encodeTerminate();

describe('PgFramer: every split of every message', () => {
  it.each(typed)('$name cut at every byte offset', ({ bytes }) => {
    const whole = Buffer.concat([bytes, follower]);
    for (let cut = 0; cut <= whole.length; cut++) {
      const f = new PgFramer({ startup: false, from: 'server' });
      f.push(whole.subarray(0, cut));
      const early = drain(f);
      f.push(whole.subarray(cut));
      const frames = [...early, ...drain(f)];
      expect(frames.map((m) => m.frame.toString('hex')), `cut at ${cut}`).toEqual([bytes.toString('hex'), follower.toString('hex')]);
      expect(frames[0].type).toBe(bytes[0]);
      expect(frames[0].payload.equals(bytes.subarray(5))).toBe(true);
      expect(f.buffered()).toBe(0);
      f.end();
    }
  });

  it.each(typed)('$name one byte at a time', ({ bytes }) => {
    const f = new PgFramer({ startup: false, from: 'server' });
    const frames: PgFrame[] = [];
    for (let i = 0; i < bytes.length; i++) {
      f.push(bytes.subarray(i, i + 1));
      const got = drain(f);
      if (i < bytes.length - 1) expect(got, `after byte ${i}`).toEqual([]);
      frames.push(...got);
    }
    expect(frames).toHaveLength(1);
    expect(frames[0].frame.equals(bytes)).toBe(true);
    expect(frames[0].payload.equals(bytes.subarray(5))).toBe(true);
  });

  it.each(untyped)('$name (untyped) cut at every byte offset, then what may follow it', ({ bytes, name }) => {
    // SSLRequest / GSSENCRequest may be followed by another untyped packet; the rest switch to typed.
    const again = name === 'SSLRequest' || name === 'GSSENCRequest';
    const expected = again ? [bytes, fe.encodeStartupMessage({ user: 'u' }), follower] : [bytes, follower];
    const whole = Buffer.concat(expected);
    for (let cut = 0; cut <= whole.length; cut++) {
      const f = new PgFramer({ startup: true });
      f.push(whole.subarray(0, cut));
      const early = drain(f);
      f.push(whole.subarray(cut));
      const frames = [...early, ...drain(f)];
      expect(frames.map((m) => m.frame.toString('hex')), `cut at ${cut}`).toEqual(expected.map((b) => b.toString('hex')));
      expect(frames.map((m) => m.type)).toEqual(again ? [0, 0, 0x58] : [0, 0x58]);
      expect(frames[0].payload.equals(bytes.subarray(4))).toBe(true);
      expect(f.awaitingStartup).toBe(false);
    }
  });

  it.each(untyped)('$name (untyped) one byte at a time', ({ bytes }) => {
    const f = new PgFramer({ startup: true });
    const frames: PgFrame[] = [];
    for (let i = 0; i < bytes.length; i++) {
      f.push(bytes.subarray(i, i + 1));
      frames.push(...drain(f));
    }
    expect(frames).toHaveLength(1);
    expect(frames[0].frame.equals(bytes)).toBe(true);
    expect(fe.decodeStartupPacket(frames[0].payload).kind).toBeTypeOf('string');
  });
});

describe('PgFramer: streams', () => {
  it.each([1, 2, 3, 4, 5])('a stream of 3000 messages in random chunkings (seed %i)', (seed) => {
    const rnd = prng(seed);
    const msgs: Buffer[] = [];
    for (let i = 0; i < 3000; i++) {
      const r = rnd();
      if (r < 0.5) msgs.push(be.encodeDataRow([String(i), rnd() < 0.2 ? null : 'x'.repeat(Math.floor(rnd() * 200))]));
      else if (r < 0.8) msgs.push(typed[Math.floor(rnd() * typed.length)].bytes);
      else msgs.push(fe.encodeCopyData(Buffer.alloc(Math.floor(rnd() * 5000), i & 0xff)));
    }
    const stream = Buffer.concat(msgs);
    const f = new PgFramer({ startup: false, from: 'server' });
    const got: PgFrame[] = [];
    let pos = 0;
    while (pos < stream.length) {
      const r = rnd();
      const size = r < 0.3 ? 1 + Math.floor(rnd() * 8) : r < 0.9 ? Math.floor(rnd() * 4096) : Math.floor(rnd() * 70000);
      f.push(stream.subarray(pos, pos + size));
      pos += size;
      got.push(...drain(f));
    }
    f.end();
    expect(got).toHaveLength(msgs.length);
    for (let i = 0; i < msgs.length; i++) {
      if (!got[i].frame.equals(msgs[i])) throw new Error(`message ${i} differs`);
      expect(got[i].type).toBe(msgs[i][0]);
    }
  });

  it('a whole message inside one chunk is a view into that chunk (no copy)', () => {
    const chunk = Buffer.concat([fe.encodeQuery('select 1'), fe.encodeSync(), fe.encodeQuery('sel')]);
    const f = new PgFramer({ startup: false, from: 'client' });
    f.push(chunk.subarray(0, chunk.length - 3));
    const [q, s] = drain(f);
    expect(q.frame.buffer).toBe(chunk.buffer);
    expect(q.payload.buffer).toBe(chunk.buffer);
    expect(q.frame.byteOffset).toBe(chunk.byteOffset);
    expect(s.frame.byteOffset).toBe(chunk.byteOffset + q.frame.length);
    expect(f.buffered()).toBe(fe.encodeQuery('sel').length - 3);
  });

  it('a client session: SSLRequest, StartupMessage after "N", then typed messages', () => {
    const f = new PgFramer({ startup: true });
    f.push(Buffer.concat([fe.encodeSSLRequest(), fe.encodeStartupMessage({ user: 'u' }), fe.encodeQuery('select 1'), fe.encodeTerminate()]));
    const frames = drain(f);
    expect(frames.map((m) => m.type)).toEqual([0, 0, 0x51, 0x58]);
    expect(fe.decodeStartupPacket(frames[0].payload)).toEqual({ kind: 'SSLRequest' });
    expect(fe.decodeStartupPacket(frames[1].payload)).toMatchObject({ kind: 'StartupMessage', params: { user: 'u' } });
    expect(f.awaitingStartup).toBe(false);
  });

  it('GSSENCRequest, then SSLRequest, then StartupMessage stay untyped', () => {
    const f = new PgFramer({ startup: true });
    f.push(Buffer.concat([fe.encodeGSSENCRequest(), fe.encodeSSLRequest(), fe.encodeStartupMessage({ user: 'u' })]));
    expect(drain(f).map((m) => fe.decodeStartupPacket(m.payload).kind)).toEqual(['GSSENCRequest', 'SSLRequest', 'StartupMessage']);
    expect(f.awaitingStartup).toBe(false);
  });

  it('takeRemaining hands back bytes after SSLRequest (e.g. a TLS ClientHello) and empties the framer', () => {
    const hello = Buffer.from('160301020001fc0303', 'hex');
    const f = new PgFramer({ startup: true });
    f.push(fe.encodeSSLRequest().subarray(0, 3));
    f.push(Buffer.concat([fe.encodeSSLRequest().subarray(3), hello.subarray(0, 4)]));
    f.push(hello.subarray(4));
    // One frame only: after SSLRequest the caller answers and stops framing until TLS is up.
    expect(f.next()?.type).toBe(0);
    expect(f.buffered()).toBe(hello.length);
    expect(f.takeRemaining().equals(hello)).toBe(true);
    expect(f.buffered()).toBe(0);
    expect(f.takeRemaining().length).toBe(0);
    expect(f.next()).toBeNull();
  });

  it('expectStartup() makes the next message untyped again', () => {
    const f = new PgFramer({ startup: false, from: 'client' });
    f.push(fe.encodeSync());
    expect(f.next()?.type).toBe(0x53);
    f.expectStartup();
    expect(f.awaitingStartup).toBe(true);
    f.push(fe.encodeStartupMessage({ user: 'x' }));
    expect(f.next()?.type).toBe(0);
    expect(f.awaitingStartup).toBe(false);
  });

  it('ignores empty chunks', () => {
    const f = new PgFramer({ startup: false });
    f.push(Buffer.alloc(0));
    expect(f.next()).toBeNull();
    expect(f.buffered()).toBe(0);
  });

  it.each([
    { name: 'no header yet', cut: 3, size: 0 },
    { name: 'header only', cut: 5, size: 1 + 4 + 2 + 4 + 100 },
    { name: 'all but the last byte', cut: 110, size: 111 },
    { name: 'whole', cut: 111, size: 0 },
  ])('incompleteSize: $name', ({ cut, size }) => {
    const row = be.encodeDataRow([Buffer.alloc(100, 1)]);
    expect(row.length).toBe(111);
    const f = new PgFramer({ startup: false });
    f.push(row.subarray(0, cut));
    drain(f);
    expect(f.incompleteSize).toBe(size);
  });
});

describe('PgFramer: hostile input', () => {
  it.each([
    { name: 'typed length 3', opts: { startup: false }, bytes: Buffer.from('5100000003', 'hex'), code: 'length_out_of_range' },
    { name: 'typed length 0', opts: { startup: false }, bytes: Buffer.from('4400000000', 'hex'), code: 'length_out_of_range' },
    { name: 'typed length -1', opts: { startup: false }, bytes: Buffer.from('44ffffffff', 'hex'), code: 'length_out_of_range' },
    { name: 'typed length 2^31-1 from a client', opts: { startup: false, from: 'client' }, bytes: Buffer.from('517fffffff', 'hex'), code: 'length_out_of_range' },
    { name: 'typed length 2^31-1 from a server', opts: { startup: false, from: 'server' }, bytes: Buffer.from('447fffffff', 'hex'), code: 'length_out_of_range' },
    { name: 'client Query just over 64 MiB', opts: { startup: false, from: 'client' }, bytes: Buffer.from('5104000001', 'hex'), code: 'length_out_of_range' },
    { name: 'client Sync of 20000 bytes (small-message cap)', opts: { startup: false, from: 'client' }, bytes: Buffer.from('5300004e20', 'hex'), code: 'length_out_of_range' },
    { name: "client 'p' of 70000 bytes (auth cap)", opts: { startup: false, from: 'client' }, bytes: Buffer.from('7000011170', 'hex'), code: 'length_out_of_range' },
    { name: 'custom cap 1000, Query of 1001', opts: { startup: false, maxMessageLength: 1000 }, bytes: Buffer.from('51000003e9', 'hex'), code: 'length_out_of_range' },
    { name: 'startup length 7', opts: { startup: true }, bytes: Buffer.from('00000007', 'hex'), code: 'length_out_of_range' },
    { name: 'startup length 2^31-1', opts: { startup: true }, bytes: Buffer.from('7fffffff', 'hex'), code: 'length_out_of_range' },
    { name: 'startup packet of 10001 bytes', opts: { startup: true }, bytes: Buffer.from('0000271100030000', 'hex'), code: 'length_out_of_range' },
    { name: 'TLS ClientHello where a startup packet belongs', opts: { startup: true }, bytes: Buffer.from('160301020001fc03', 'hex'), code: 'length_out_of_range' },
    { name: 'startup protocol 2.0', opts: { startup: true }, bytes: Buffer.concat([Buffer.from('0000001000020000', 'hex'), Buffer.from('user\0u\0\0\0')]), code: 'unsupported_protocol' },
    { name: 'startup protocol 1234.5681 (unknown request code)', opts: { startup: true }, bytes: Buffer.from('0000001004d21631', 'hex'), code: 'unsupported_protocol' },
    { name: 'startup protocol 4.0', opts: { startup: true }, bytes: Buffer.from('0000001000040000', 'hex'), code: 'unsupported_protocol' },
    { name: 'SSLRequest of length 12', opts: { startup: true }, bytes: Buffer.from('0000000c04d2162f00000000', 'hex'), code: 'bad_startup' },
    { name: 'protocol 1234.5678 (the CancelRequest code) with a 300-byte body', opts: { startup: true }, bytes: Buffer.from('0000012c04d2162e', 'hex'), code: 'bad_startup' },
    { name: 'StartupMessage of length 8 (no room for the terminator)', opts: { startup: true }, bytes: Buffer.from('0000000800030000', 'hex'), code: 'bad_startup' },
  ] satisfies { name: string; opts: PgFramerOptions; bytes: Buffer; code: string }[])('$name → $code, as soon as the header is in', ({ opts, bytes, code }) => {
    const f = new PgFramer(opts);
    f.push(bytes);
    const err = errorOf(() => f.next());
    expect(err.code).toBe(code);
    // The framer stays failed: the connection must be closed.
    expect(errorOf(() => f.next())).toBe(err);
    expect(errorOf(() => f.end())).toBe(err);
  });

  it('a 10000-byte startup packet is accepted (the cap is inclusive)', () => {
    const user = 'u'.repeat(10000 - 4 - 4 - 5 - 1 - 1);
    const bytes = fe.encodeStartupMessage({ user });
    expect(bytes.length).toBe(10000);
    const f = new PgFramer({ startup: true });
    f.push(bytes);
    expect(fe.decodeStartupMessage((f.next() as PgFrame).payload).params.user).toBe(user);
  });

  it('a 1234.5678 packet of 16 bytes is what it is: a CancelRequest', () => {
    const f = new PgFramer({ startup: true });
    f.push(Buffer.from('0000001004d2162e0000002a00000007', 'hex'));
    const frame = f.next() as PgFrame;
    expect(frame.payload.readInt32BE(0)).toBe(CANCEL_REQUEST_CODE);
    expect(fe.decodeStartupPacket(frame.payload)).toMatchObject({ kind: 'CancelRequest', pid: 42, secret: 7 });
  });

  it('does not allocate what a length field claims before the bytes arrive', () => {
    // The largest cap allowed, so the claimed 2 GiB is "legal" and the framer has to wait for it.
    const f = new PgFramer({ startup: false, maxMessageLength: 0x7fffffff });
    const before = process.memoryUsage().arrayBuffers;
    f.push(Buffer.from('447fffffff', 'hex'));
    expect(f.next()).toBeNull();
    const chunk = Buffer.alloc(64 * 1024, 1);
    for (let i = 0; i < 16; i++) {
      f.push(chunk); // the same 64 KiB chunk 16 times: 1 MiB claimed as buffered, 64 KiB real
      expect(f.next()).toBeNull();
    }
    expect(f.buffered()).toBe(5 + 16 * chunk.length);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(8 * 1024 * 1024);
    expect(errorOf(() => f.end()).code).toBe('truncated');
  });

  it('a truncated frame is null until the caller declares EOF, then truncated', () => {
    const bytes = fe.encodeQuery('select 1');
    for (let cut = 1; cut < bytes.length; cut++) {
      const f = new PgFramer({ startup: false });
      f.push(bytes.subarray(0, cut));
      expect(f.next()).toBeNull();
      expect(f.next()).toBeNull();
      const err = errorOf(() => f.end());
      expect(err.code).toBe('truncated');
      expect(errorOf(() => f.next())).toBe(err);
    }
    const ok = new PgFramer({ startup: false });
    ok.end(); // nothing buffered: a clean close
  });

  it.each([11, 12, 13, 14, 15, 16, 17, 18])('random bytes never crash or hang, only ProtocolError (seed %i)', (seed) => {
    const rnd = prng(seed);
    for (let round = 0; round < 300; round++) {
      const opts: PgFramerOptions = rnd() < 0.5 ? { startup: true } : { startup: false, from: rnd() < 0.5 ? 'client' : 'server' };
      const f = new PgFramer(opts);
      const len = Math.floor(rnd() * 200);
      const bytes = Buffer.alloc(len);
      for (let i = 0; i < len; i++) bytes[i] = Math.floor(rnd() * 256);
      // Make small plausible lengths common so the decoders see bodies, not just refused headers.
      if (len > 5 && rnd() < 0.5) bytes.writeInt32BE(Math.floor(rnd() * len), opts.startup ? 0 : 1);
      try {
        let n = 0;
        for (let pos = 0; pos < len; pos += 7) {
          f.push(bytes.subarray(pos, pos + 7));
          for (let m = f.next(); m; m = f.next()) {
            expect(++n).toBeLessThan(100);
            // Decoding garbage is a ProtocolError too, never a RangeError.
            try {
              if (opts.startup || m.type === 0) fe.decodeFrontendMessage(m);
              else if (opts.from === 'client') fe.decodeFrontendMessage(m, { auth: 'sasl-initial' });
              else be.decodeBackendMessage(m);
            } catch (e) {
              if (!(e instanceof ProtocolError)) throw e;
            }
          }
        }
        f.end();
      } catch (e) {
        if (!(e instanceof ProtocolError)) throw e;
      }
    }
  });

  it('refuses nonsensical caps', () => {
    expect(errorOf(() => new PgFramer({ startup: false, maxMessageLength: 3 })).code).toBe('invalid_argument');
    expect(errorOf(() => new PgFramer({ startup: false, maxMessageLength: 2 ** 31 })).code).toBe('invalid_argument');
    expect(errorOf(() => new PgFramer({ startup: true, maxStartupLength: 1.5 })).code).toBe('invalid_argument');
  });

  it('accepts a large Query from a client under the 64 MiB default', () => {
    const sql = 'select ' + "'x'".repeat(400_000);
    const bytes = fe.encodeQuery(sql);
    const f = new PgFramer({ startup: false, from: 'client' });
    for (let pos = 0; pos < bytes.length; pos += 65536) f.push(bytes.subarray(pos, pos + 65536));
    const m = f.next() as PgFrame;
    expect(fe.decodeQuery(m.payload).sql).toBe(sql);
    expect(DEFAULT_MAX_CLIENT_MESSAGE_LENGTH).toBe(64 * 1024 * 1024);
  });
});

describe('PgFramer: many messages across chunk boundaries', () => {
  // Throughput is a benchmark's business (bench/), not a timed test's: here only that every message
  // of a long stream comes out whole when 64 KiB chunks cut through messages.
  it('frames 500,000 small messages fed as 64 KiB chunks', () => {
    const row = be.encodeDataRow(['1', 'alice', 'alice@example.com', '555-0100']);
    const stream = Buffer.concat(new Array<Buffer>(20_000).fill(row));
    const chunks: Buffer[] = [];
    for (let pos = 0; pos < stream.length; pos += 65536) chunks.push(stream.subarray(pos, pos + 65536));
    const f = new PgFramer({ startup: false, from: 'server' });
    let n = 0;
    let wrong = 0;
    for (let pass = 0; pass < 25; pass++) {
      for (const c of chunks) {
        f.push(c);
        for (let m = f.next(); m; m = f.next()) {
          n++;
          if ((m as PgFrame).payload.length !== row.length - 5) wrong++;
        }
      }
    }
    expect(n).toBe(500_000);
    expect(wrong).toBe(0);
  });
});
