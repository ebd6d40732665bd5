import { describe, expect, it } from 'vitest';
import { FrontendMessageType as F, PROTOCOL_VERSION_3_0, PROTOCOL_VERSION_3_2 } from './codes.js';
import { ProtocolError } from './errors.js';
import { PgFramer, type PgFrame } from './framer.js';
import * as fe from './frontend.js';

/** Frames one encoded message the way the gateway would see it from a client. */
function frameOf(bytes: Buffer, startup = false): PgFrame {
  const f = new PgFramer({ startup, from: 'client' });
  f.push(bytes);
  const frame = f.next();
  expect(frame).not.toBeNull();
  expect(f.next()).toBeNull();
  expect(f.buffered()).toBe(0);
  return frame as PgFrame;
}

const params = (o: Record<string, string>) => Object.assign(Object.create(null) as Record<string, string>, o);

interface Row {
  name: string;
  bytes: Buffer;
  startup?: boolean;
  type: number;
  decode: (payload: Buffer) => unknown;
  expected: unknown;
  kind: string;
  auth?: fe.DecodeFrontendOptions['auth'];
}

const rows: Row[] = [
  {
    name: 'StartupMessage with unicode and empty values',
    bytes: fe.encodeStartupMessage({ user: 'ålice', database: 'demo', application_name: '', options: '-c search_path=x' }),
    startup: true,
    type: 0,
    decode: fe.decodeStartupMessage,
    expected: { protocolVersion: PROTOCOL_VERSION_3_0, params: params({ user: 'ålice', database: 'demo', application_name: '', options: '-c search_path=x' }) },
    kind: 'StartupMessage',
  },
  {
    name: 'StartupMessage 3.2 from a Map, no params',
    bytes: fe.encodeStartupMessage(new Map(), PROTOCOL_VERSION_3_2),
    startup: true,
    type: 0,
    decode: fe.decodeStartupMessage,
    expected: { protocolVersion: PROTOCOL_VERSION_3_2, params: params({}) },
    kind: 'StartupMessage',
  },
  { name: 'SSLRequest', bytes: fe.encodeSSLRequest(), startup: true, type: 0, decode: fe.decodeSSLRequest, expected: undefined, kind: 'SSLRequest' },
  { name: 'GSSENCRequest', bytes: fe.encodeGSSENCRequest(), startup: true, type: 0, decode: fe.decodeGSSENCRequest, expected: undefined, kind: 'GSSENCRequest' },
  {
    name: 'CancelRequest 3.0 (secret above 2^31)',
    bytes: fe.encodeCancelRequest(4242, 0xdeadbeef),
    startup: true,
    type: 0,
    decode: fe.decodeCancelRequest,
    expected: { pid: 4242, secret: 0xdeadbeef, secretKey: Buffer.from('deadbeef', 'hex') },
    kind: 'CancelRequest',
  },
  {
    name: 'CancelRequest 3.2 with a 32-byte key',
    bytes: fe.encodeCancelRequest(7, Buffer.alloc(32, 0xab)),
    startup: true,
    type: 0,
    decode: fe.decodeCancelRequest,
    expected: { pid: 7, secret: 0xabababab, secretKey: Buffer.alloc(32, 0xab) },
    kind: 'CancelRequest',
  },
  { name: 'PasswordMessage', bytes: fe.encodePassword('s3cr€t'), type: F.Password, decode: fe.decodePassword, expected: { password: 's3cr€t' }, kind: 'PasswordMessage', auth: 'password' },
  {
    name: 'SASLInitialResponse',
    bytes: fe.encodeSASLInitialResponse('SCRAM-SHA-256', 'n,,n=,r=abc'),
    type: F.Password,
    decode: fe.decodeSASLInitialResponse,
    expected: { mechanism: 'SCRAM-SHA-256', data: Buffer.from('n,,n=,r=abc') },
    kind: 'SASLInitialResponse',
    auth: 'sasl-initial',
  },
  {
    name: 'SASLInitialResponse without data (-1)',
    bytes: fe.encodeSASLInitialResponse('X', null),
    type: F.Password,
    decode: fe.decodeSASLInitialResponse,
    expected: { mechanism: 'X', data: null },
    kind: 'SASLInitialResponse',
    auth: 'sasl-initial',
  },
  { name: 'SASLResponse', bytes: fe.encodeSASLResponse(Buffer.from([0, 1, 2])), type: F.Password, decode: fe.decodeSASLResponse, expected: { data: Buffer.from([0, 1, 2]) }, kind: 'SASLResponse', auth: 'sasl' },
  { name: "'p' without auth context", bytes: fe.encodeSASLResponse('xyz'), type: F.Password, decode: fe.decodeSASLResponse, expected: { data: Buffer.from('xyz') }, kind: 'AuthResponse' },
  { name: 'Query', bytes: fe.encodeQuery("select 'ü', $$;$$; select 2"), type: F.Query, decode: fe.decodeQuery, expected: { sql: "select 'ü', $$;$$; select 2" }, kind: 'Query' },
  { name: 'Query (empty)', bytes: fe.encodeQuery(''), type: F.Query, decode: fe.decodeQuery, expected: { sql: '' }, kind: 'Query' },
  { name: 'Query (long, measured)', bytes: fe.encodeQuery('select ' + 'x'.repeat(5000)), type: F.Query, decode: fe.decodeQuery, expected: { sql: 'select ' + 'x'.repeat(5000) }, kind: 'Query' },
  {
    name: 'Parse with OIDs above 2^31',
    bytes: fe.encodeParse({ name: 's1', query: 'select $1::int, $2', paramTypes: [23, 0, 0xfffffff0] }),
    type: F.Parse,
    decode: fe.decodeParse,
    expected: { name: 's1', query: 'select $1::int, $2', paramTypes: [23, 0, 0xfffffff0] },
    kind: 'Parse',
  },
  { name: 'Parse unnamed, no types', bytes: fe.encodeParse({ query: 'select 1' }), type: F.Parse, decode: fe.decodeParse, expected: { name: '', query: 'select 1', paramTypes: [] }, kind: 'Parse' },
  {
    name: 'Bind with NULL, empty, text and binary params',
    bytes: fe.encodeBind({ portal: 'p', statement: 's1', paramFormats: [0, 1, 0, 0, 0], params: ['42', Buffer.from([0, 0, 0, 7]), null, '', 'ü€😀'], resultFormats: [1] }),
    type: F.Bind,
    decode: fe.decodeBind,
    expected: { portal: 'p', statement: 's1', paramFormats: [0, 1, 0, 0, 0], params: [Buffer.from('42'), Buffer.from([0, 0, 0, 7]), null, Buffer.alloc(0), Buffer.from('ü€😀')], resultFormats: [1] },
    kind: 'Bind',
  },
  { name: 'Bind (all defaults)', bytes: fe.encodeBind({}), type: F.Bind, decode: fe.decodeBind, expected: { portal: '', statement: '', paramFormats: [], params: [], resultFormats: [] }, kind: 'Bind' },
  { name: 'Describe statement', bytes: fe.encodeDescribe('statement', 's1'), type: F.Describe, decode: fe.decodeDescribe, expected: { target: 'statement', name: 's1' }, kind: 'Describe' },
  { name: 'Describe portal', bytes: fe.encodeDescribe('portal'), type: F.Describe, decode: fe.decodeDescribe, expected: { target: 'portal', name: '' }, kind: 'Describe' },
  { name: 'Execute', bytes: fe.encodeExecute('p', 100), type: F.Execute, decode: fe.decodeExecute, expected: { portal: 'p', maxRows: 100 }, kind: 'Execute' },
  { name: 'Close', bytes: fe.encodeClose('statement', 'sX'), type: F.Close, decode: fe.decodeClose, expected: { target: 'statement', name: 'sX' }, kind: 'Close' },
  { name: 'Sync', bytes: fe.encodeSync(), type: F.Sync, decode: (p) => fe.decodeEmpty(p, 'Sync'), expected: undefined, kind: 'Sync' },
  { name: 'Flush', bytes: fe.encodeFlush(), type: F.Flush, decode: (p) => fe.decodeEmpty(p, 'Flush'), expected: undefined, kind: 'Flush' },
  { name: 'Terminate', bytes: fe.encodeTerminate(), type: F.Terminate, decode: (p) => fe.decodeEmpty(p, 'Terminate'), expected: undefined, kind: 'Terminate' },
  { name: 'CopyData', bytes: fe.encodeCopyData('1\tx\n'), type: F.CopyData, decode: fe.decodeCopyData, expected: { data: Buffer.from('1\tx\n') }, kind: 'CopyData' },
  { name: 'CopyDone', bytes: fe.encodeCopyDone(), type: F.CopyDone, decode: (p) => fe.decodeEmpty(p, 'CopyDone'), expected: undefined, kind: 'CopyDone' },
  { name: 'CopyFail', bytes: fe.encodeCopyFail('client gave up'), type: F.CopyFail, decode: fe.decodeCopyFail, expected: { message: 'client gave up' }, kind: 'CopyFail' },
  {
    name: 'FunctionCall',
    bytes: fe.encodeFunctionCall({ functionOid: 952, argFormats: [1], args: [Buffer.from([0, 0, 0, 1]), null], resultFormat: 1 }),
    type: F.FunctionCall,
    decode: fe.decodeFunctionCall,
    expected: { functionOid: 952, argFormats: [1], args: [Buffer.from([0, 0, 0, 1]), null], resultFormat: 1 },
    kind: 'FunctionCall',
  },
];

describe('frontend messages: encode → frame → decode', () => {
  it.each(rows)('$name', (row) => {
    const frame = frameOf(row.bytes, row.startup);
    expect(frame.type).toBe(row.type);
    expect(frame.frame.equals(row.bytes)).toBe(true);
    expect(row.decode(frame.payload)).toEqual(row.expected);
    const msg = fe.decodeFrontendMessage(frame, { auth: row.auth });
    expect(msg.kind).toBe(row.kind);
    if (row.expected !== undefined && row.kind !== 'AuthResponse') expect(msg).toEqual({ kind: row.kind, ...(row.expected as object) });
  });

  it('matches the documented bytes of a Query and a StartupMessage', () => {
    expect(fe.encodeQuery('select 1').toString('hex')).toBe('51' + '0000000d' + Buffer.from('select 1\0').toString('hex'));
    expect(fe.encodeStartupMessage({ user: 'u' }).toString('hex')).toBe('00000010' + '00030000' + Buffer.from('user\0u\0\0').toString('hex'));
    expect(fe.encodeSSLRequest().toString('hex')).toBe('0000000804d2162f');
    expect(fe.encodeSync().toString('hex')).toBe('5300000004');
  });

  it('bindParamFormat applies the 0 / 1 / n rule', () => {
    expect(fe.bindParamFormat({ paramFormats: [] }, 3)).toBe(0);
    expect(fe.bindParamFormat({ paramFormats: [1] }, 3)).toBe(1);
    expect(fe.bindParamFormat({ paramFormats: [0, 1] }, 1)).toBe(1);
  });
});

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const cs = (s: string) => Buffer.from(s + '\0');

describe('frontend decoders refuse malformed bodies with a typed ProtocolError', () => {
  it.each([
    { name: 'Query without terminator', decode: fe.decodeQuery, payload: Buffer.from('select 1'), code: 'malformed' },
    { name: 'Query with trailing bytes', decode: fe.decodeQuery, payload: Buffer.concat([cs('select 1'), Buffer.from('x')]), code: 'malformed' },
    { name: 'Password with trailing bytes', decode: fe.decodePassword, payload: Buffer.concat([cs('pw'), cs('more')]), code: 'malformed' },
    { name: 'Parse with a type count past the end', decode: fe.decodeParse, payload: Buffer.concat([cs(''), cs('q'), hex('ffff 00000017')]), code: 'malformed' },
    { name: 'Bind with a value length past the end', decode: fe.decodeBind, payload: Buffer.concat([cs(''), cs(''), hex('0000 0001 7fffffff 00'), hex('0000')]), code: 'malformed' },
    { name: 'Bind with a negative value length other than -1', decode: fe.decodeBind, payload: Buffer.concat([cs(''), cs(''), hex('0000 0001 fffffffe'), hex('0000')]), code: 'malformed' },
    { name: 'Bind with 2 formats for 3 params', decode: fe.decodeBind, payload: Buffer.concat([cs(''), cs(''), hex('0002 0000 0000 0003 ffffffff ffffffff ffffffff 0000')]), code: 'malformed' },
    { name: 'Bind missing result formats', decode: fe.decodeBind, payload: Buffer.concat([cs(''), cs(''), hex('0000 0000')]), code: 'malformed' },
    { name: 'Describe with target X', decode: fe.decodeDescribe, payload: Buffer.concat([Buffer.from('X'), cs('s')]), code: 'malformed' },
    { name: 'Close with no body', decode: fe.decodeClose, payload: Buffer.alloc(0), code: 'malformed' },
    { name: 'Execute with a short int', decode: fe.decodeExecute, payload: Buffer.concat([cs(''), hex('0000')]), code: 'malformed' },
    { name: 'SASLInitialResponse data length past the end', decode: fe.decodeSASLInitialResponse, payload: Buffer.concat([cs('SCRAM-SHA-256'), hex('00000010 6e2c2c')]), code: 'malformed' },
    { name: 'FunctionCall without result format', decode: fe.decodeFunctionCall, payload: hex('000003b8 0000 0000'), code: 'malformed' },
    { name: 'StartupMessage 2.0', decode: fe.decodeStartupMessage, payload: Buffer.concat([hex('00020000'), cs('user'), cs('u'), hex('00')]), code: 'unsupported_protocol' },
    { name: 'StartupMessage 1234.5678', decode: fe.decodeStartupMessage, payload: Buffer.concat([hex('04d2162e'), cs('user'), cs('u'), hex('00')]), code: 'unsupported_protocol' },
    { name: 'StartupMessage without final terminator', decode: fe.decodeStartupMessage, payload: Buffer.concat([hex('00030000'), cs('user'), cs('u')]), code: 'bad_startup' },
    { name: 'StartupMessage with a name and no value', decode: fe.decodeStartupMessage, payload: Buffer.concat([hex('00030000'), cs('user')]), code: 'bad_startup' },
    { name: 'StartupMessage with bytes after the terminator', decode: fe.decodeStartupMessage, payload: Buffer.concat([hex('00030000'), cs('user'), cs('u'), hex('00 41')]), code: 'bad_startup' },
    { name: 'CancelRequest with a 2-byte key', decode: fe.decodeCancelRequest, payload: hex('04d2162e 00000001 abcd'), code: 'bad_startup' },
    { name: 'CancelRequest with the SSL code', decode: fe.decodeCancelRequest, payload: hex('04d2162f 00000001 abcdabcd'), code: 'bad_startup' },
    { name: 'SSLRequest with a body', decode: fe.decodeSSLRequest, payload: hex('04d2162f 00'), code: 'malformed' },
    { name: 'Sync with a body', decode: (p: Buffer) => fe.decodeEmpty(p, 'Sync'), payload: hex('00'), code: 'malformed' },
  ])('$name → $code', ({ decode, payload, code }) => {
    let err: unknown;
    try {
      decode(payload);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ProtocolError);
    expect((err as ProtocolError).code).toBe(code);
  });

  it('refuses an unknown type byte', () => {
    expect(() => fe.decodeFrontendMessage({ type: 0x7a, payload: Buffer.alloc(0), frame: hex('7a00000004') })).toThrow(
      expect.objectContaining({ code: 'unknown_message' }),
    );
  });
});

describe('frontend encoders refuse what cannot go on the wire', () => {
  it.each([
    { name: 'NUL inside a query', encode: () => fe.encodeQuery('select 1\0; drop table x') },
    { name: 'NUL inside a startup value', encode: () => fe.encodeStartupMessage({ user: 'a\0b' }) },
    { name: 'empty startup parameter name', encode: () => fe.encodeStartupMessage({ '': 'x' }) },
    { name: 'OID out of range', encode: () => fe.encodeParse({ query: 'x', paramTypes: [2 ** 32] }) },
    { name: 'format out of int16', encode: () => fe.encodeBind({ resultFormats: [70000] }) },
    { name: 'formats not matching params', encode: () => fe.encodeBind({ paramFormats: [0, 1], params: ['a', 'b', 'c'] }) },
    { name: 'non-integer maxRows', encode: () => fe.encodeExecute('', 1.5) },
    { name: '2-byte cancel key', encode: () => fe.encodeCancelRequest(1, Buffer.alloc(2)) },
  ])('$name', ({ encode }) => {
    expect(encode).toThrow(expect.objectContaining({ name: 'ProtocolError', code: 'invalid_argument' }));
  });
});
