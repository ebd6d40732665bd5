import { describe, expect, it } from 'vitest';
import * as be from './backend.js';
import { BackendMessageType as B } from './codes.js';
import { ProtocolError } from './errors.js';
import { PgFramer, type PgFrame } from './framer.js';

function frameOf(bytes: Buffer): PgFrame {
  const f = new PgFramer({ startup: false, from: 'server' });
  f.push(bytes);
  const frame = f.next();
  expect(frame).not.toBeNull();
  expect(f.next()).toBeNull();
  return frame as PgFrame;
}

const fields = (o: Record<string, string>) => Object.assign(Object.create(null) as Record<string, string>, o);

const rowFields: be.RowField[] = [
  { name: 'id', tableOid: 16384, columnAttr: 1, typeOid: 23, typeSize: 4, typeModifier: -1, format: 0 },
  { name: 'émail', tableOid: 0xfffffff0, columnAttr: 2, typeOid: 1043, typeSize: -1, typeModifier: 259, format: 1 },
  { name: '', tableOid: 0, columnAttr: 0, typeOid: 25, typeSize: -1, typeModifier: -1, format: 0 },
];

interface Row {
  name: string;
  bytes: Buffer;
  type: number;
  decode: (payload: Buffer) => unknown;
  expected: unknown;
  kind: string;
}

const empty = (name: string, type: number, bytes: Buffer): Row => ({ name, bytes, type, decode: () => undefined, expected: undefined, kind: name });

const rows: Row[] = [
  { name: 'AuthenticationOk', bytes: be.encodeAuthenticationOk(), type: B.Authentication, decode: be.decodeAuthentication, expected: { auth: 'Ok' }, kind: 'Authentication' },
  { name: 'AuthenticationCleartextPassword', bytes: be.encodeAuthenticationCleartextPassword(), type: B.Authentication, decode: be.decodeAuthentication, expected: { auth: 'CleartextPassword' }, kind: 'Authentication' },
  {
    name: 'AuthenticationMD5Password',
    bytes: be.encodeAuthenticationMD5Password(Buffer.from([1, 2, 3, 4])),
    type: B.Authentication,
    decode: be.decodeAuthentication,
    expected: { auth: 'MD5Password', salt: Buffer.from([1, 2, 3, 4]) },
    kind: 'Authentication',
  },
  {
    name: 'AuthenticationSASL',
    bytes: be.encodeAuthenticationSASL(['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256']),
    type: B.Authentication,
    decode: be.decodeAuthentication,
    expected: { auth: 'SASL', mechanisms: ['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256'] },
    kind: 'Authentication',
  },
  {
    name: 'AuthenticationSASLContinue',
    bytes: be.encodeAuthenticationSASLContinue('r=abc,s=c2FsdA==,i=4096'),
    type: B.Authentication,
    decode: be.decodeAuthentication,
    expected: { auth: 'SASLContinue', data: Buffer.from('r=abc,s=c2FsdA==,i=4096') },
    kind: 'Authentication',
  },
  {
    name: 'AuthenticationSASLFinal',
    bytes: be.encodeAuthenticationSASLFinal(Buffer.from('v=xyz')),
    type: B.Authentication,
    decode: be.decodeAuthentication,
    expected: { auth: 'SASLFinal', data: Buffer.from('v=xyz') },
    kind: 'Authentication',
  },
  {
    name: 'BackendKeyData 3.0',
    bytes: be.encodeBackendKeyData(31337, 0x80000001),
    type: B.BackendKeyData,
    decode: be.decodeBackendKeyData,
    expected: { pid: 31337, secret: 0x80000001, secretKey: Buffer.from('80000001', 'hex') },
    kind: 'BackendKeyData',
  },
  {
    name: 'BackendKeyData 3.2 (32-byte key)',
    bytes: be.encodeBackendKeyData(5, Buffer.alloc(32, 1)),
    type: B.BackendKeyData,
    decode: be.decodeBackendKeyData,
    expected: { pid: 5, secret: 0x01010101, secretKey: Buffer.alloc(32, 1) },
    kind: 'BackendKeyData',
  },
  { name: 'ParameterStatus', bytes: be.encodeParameterStatus('server_version', '15.8'), type: B.ParameterStatus, decode: be.decodeParameterStatus, expected: { name: 'server_version', value: '15.8' }, kind: 'ParameterStatus' },
  { name: 'ReadyForQuery idle', bytes: be.encodeReadyForQuery(), type: B.ReadyForQuery, decode: be.decodeReadyForQuery, expected: { status: 'I' }, kind: 'ReadyForQuery' },
  { name: 'ReadyForQuery failed tx', bytes: be.encodeReadyForQuery('E'), type: B.ReadyForQuery, decode: be.decodeReadyForQuery, expected: { status: 'E' }, kind: 'ReadyForQuery' },
  {
    name: 'ErrorResponse with detail and hint',
    bytes: be.encodeErrorResponse({ severity: 'ERROR', code: '42501', message: 'blocked by rule "no-drop"', detail: 'DROP is not allowed', hint: 'ask an admin' }),
    type: B.ErrorResponse,
    decode: be.decodeErrorResponse,
    expected: {
      severity: 'ERROR',
      severityNonLocalized: 'ERROR',
      code: '42501',
      message: 'blocked by rule "no-drop"',
      detail: 'DROP is not allowed',
      hint: 'ask an admin',
      fields: fields({ S: 'ERROR', V: 'ERROR', C: '42501', M: 'blocked by rule "no-drop"', D: 'DROP is not allowed', H: 'ask an admin' }),
    },
    kind: 'ErrorResponse',
  },
  {
    name: 'ErrorResponse with localized severity and extra fields',
    bytes: be.encodeErrorResponse({ severity: 'FEHLER', severityNonLocalized: 'ERROR', code: '23505', message: 'dup', table: 't', constraint: 't_pkey', fields: { Z: 'future' } }),
    type: B.ErrorResponse,
    decode: be.decodeErrorResponse,
    expected: {
      severity: 'FEHLER',
      severityNonLocalized: 'ERROR',
      code: '23505',
      message: 'dup',
      table: 't',
      constraint: 't_pkey',
      fields: fields({ S: 'FEHLER', V: 'ERROR', C: '23505', M: 'dup', t: 't', n: 't_pkey', Z: 'future' }),
    },
    kind: 'ErrorResponse',
  },
  {
    name: 'NoticeResponse',
    bytes: be.encodeNoticeResponse({ severity: 'NOTICE', code: '00000', message: 'approval apr_123 pending' }),
    type: B.NoticeResponse,
    decode: be.decodeNoticeResponse,
    expected: { severity: 'NOTICE', severityNonLocalized: 'NOTICE', code: '00000', message: 'approval apr_123 pending', fields: fields({ S: 'NOTICE', V: 'NOTICE', C: '00000', M: 'approval apr_123 pending' }) },
    kind: 'NoticeResponse',
  },
  { name: 'RowDescription', bytes: be.encodeRowDescription(rowFields), type: B.RowDescription, decode: be.decodeRowDescription, expected: { fields: rowFields }, kind: 'RowDescription' },
  { name: 'RowDescription (no columns)', bytes: be.encodeRowDescription([]), type: B.RowDescription, decode: be.decodeRowDescription, expected: { fields: [] }, kind: 'RowDescription' },
  {
    name: 'DataRow with text, NULL, empty, binary and multibyte',
    bytes: be.encodeDataRow(['42', null, '', Buffer.from([0, 255]), 'ünï€😀']),
    type: B.DataRow,
    decode: be.decodeDataRow,
    expected: [Buffer.from('42'), null, Buffer.alloc(0), Buffer.from([0, 255]), Buffer.from('ünï€😀')],
    kind: 'DataRow',
  },
  { name: 'DataRow (no columns)', bytes: be.encodeDataRow([]), type: B.DataRow, decode: be.decodeDataRow, expected: [], kind: 'DataRow' },
  { name: 'CommandComplete', bytes: be.encodeCommandComplete('INSERT 0 3'), type: B.CommandComplete, decode: be.decodeCommandComplete, expected: { tag: 'INSERT 0 3' }, kind: 'CommandComplete' },
  { name: 'ParameterDescription', bytes: be.encodeParameterDescription([23, 25, 0xffffffff]), type: B.ParameterDescription, decode: be.decodeParameterDescription, expected: { types: [23, 25, 0xffffffff] }, kind: 'ParameterDescription' },
  { name: 'CopyInResponse', bytes: be.encodeCopyInResponse({ format: 0, columnFormats: [0, 0] }), type: B.CopyInResponse, decode: be.decodeCopyInResponse, expected: { format: 0, columnFormats: [0, 0] }, kind: 'CopyInResponse' },
  { name: 'CopyOutResponse', bytes: be.encodeCopyOutResponse({ format: 1, columnFormats: [1] }), type: B.CopyOutResponse, decode: be.decodeCopyOutResponse, expected: { format: 1, columnFormats: [1] }, kind: 'CopyOutResponse' },
  { name: 'CopyBothResponse', bytes: be.encodeCopyBothResponse({ format: 0, columnFormats: [] }), type: B.CopyBothResponse, decode: be.decodeCopyBothResponse, expected: { format: 0, columnFormats: [] }, kind: 'CopyBothResponse' },
  {
    name: 'NotificationResponse',
    bytes: be.encodeNotificationResponse({ pid: 99, channel: 'jobs', payload: '{"id":1}' }),
    type: B.NotificationResponse,
    decode: be.decodeNotificationResponse,
    expected: { pid: 99, channel: 'jobs', payload: '{"id":1}' },
    kind: 'NotificationResponse',
  },
  { name: 'FunctionCallResponse', bytes: be.encodeFunctionCallResponse(Buffer.from([1])), type: B.FunctionCallResponse, decode: be.decodeFunctionCallResponse, expected: { result: Buffer.from([1]) }, kind: 'FunctionCallResponse' },
  { name: 'FunctionCallResponse NULL', bytes: be.encodeFunctionCallResponse(null), type: B.FunctionCallResponse, decode: be.decodeFunctionCallResponse, expected: { result: null }, kind: 'FunctionCallResponse' },
  {
    name: 'NegotiateProtocolVersion',
    bytes: be.encodeNegotiateProtocolVersion(0, ['_pq_.foo']),
    type: B.NegotiateProtocolVersion,
    decode: be.decodeNegotiateProtocolVersion,
    expected: { newestMinor: 0, unrecognized: ['_pq_.foo'] },
    kind: 'NegotiateProtocolVersion',
  },
  empty('EmptyQueryResponse', B.EmptyQueryResponse, be.encodeEmptyQueryResponse()),
  empty('ParseComplete', B.ParseComplete, be.encodeParseComplete()),
  empty('BindComplete', B.BindComplete, be.encodeBindComplete()),
  empty('CloseComplete', B.CloseComplete, be.encodeCloseComplete()),
  empty('NoData', B.NoData, be.encodeNoData()),
  empty('PortalSuspended', B.PortalSuspended, be.encodePortalSuspended()),
];

describe('backend messages: encode → frame → decode', () => {
  it.each(rows)('$name', (row) => {
    const frame = frameOf(row.bytes);
    expect(frame.type).toBe(row.type);
    expect(frame.frame.equals(row.bytes)).toBe(true);
    expect(row.decode(frame.payload)).toEqual(row.expected);
    const msg = be.decodeBackendMessage(frame);
    expect(msg.kind).toBe(row.kind);
    if (row.kind === 'DataRow') expect(msg).toEqual({ kind: 'DataRow', values: row.expected });
    else if (row.expected !== undefined) expect(msg).toEqual({ kind: row.kind, ...(row.expected as object) });
  });

  it('DataRow decode returns views into the payload, not copies', () => {
    const bytes = be.encodeDataRow(['abc', 'de']);
    const values = be.decodeDataRow(bytes.subarray(5));
    expect(values[0]?.buffer).toBe(bytes.buffer);
    bytes[5 + 2 + 4] = 0x78; // overwrite 'a' in place
    expect(values[0]?.toString()).toBe('xbc');
  });

  it('DataRow encode makes exactly one allocation of the exact size', () => {
    const bytes = be.encodeDataRow(['ü', null, Buffer.from('xy')]);
    expect(bytes.length).toBe(1 + 4 + 2 + (4 + 2) + 4 + (4 + 2));
    expect(bytes.readInt32BE(1)).toBe(bytes.length - 1);
  });

  it('ErrorResponse always carries S, V, C and M, in that order', () => {
    const bytes = be.encodeErrorResponse({ severity: 'FATAL', code: '28P01', message: 'password authentication failed' });
    expect(bytes.subarray(5).toString('latin1')).toBe('SFATAL\0VFATAL\0C28P01\0Mpassword authentication failed\0\0');
  });
});

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

describe('backend decoders refuse malformed bodies', () => {
  it.each([
    { name: 'Authentication with unknown code 99', decode: be.decodeAuthentication, payload: hex('00000063'), code: 'unknown_message' },
    { name: 'AuthenticationMD5Password with a 2-byte salt', decode: be.decodeAuthentication, payload: hex('00000005 0102'), code: 'malformed' },
    { name: 'AuthenticationOk with trailing bytes', decode: be.decodeAuthentication, payload: hex('00000000 00'), code: 'malformed' },
    { name: 'AuthenticationSASL without list terminator', decode: be.decodeAuthentication, payload: Buffer.concat([hex('0000000a'), Buffer.from('SCRAM-SHA-256\0')]), code: 'malformed' },
    { name: 'DataRow column count past the end', decode: be.decodeDataRow, payload: hex('0005 00000001 41'), code: 'malformed' },
    { name: 'DataRow value length past the end', decode: be.decodeDataRow, payload: hex('0001 7fffffff 41'), code: 'malformed' },
    { name: 'DataRow value length -2', decode: be.decodeDataRow, payload: hex('0001 fffffffe'), code: 'malformed' },
    { name: 'DataRow trailing bytes', decode: be.decodeDataRow, payload: hex('0001 ffffffff 00'), code: 'malformed' },
    { name: 'DataRow empty body', decode: be.decodeDataRow, payload: hex(''), code: 'malformed' },
    { name: 'RowDescription field count past the end', decode: be.decodeRowDescription, payload: hex('0100 00'), code: 'malformed' },
    { name: 'RowDescription truncated field', decode: be.decodeRowDescription, payload: Buffer.concat([hex('0001'), Buffer.from('id\0'), hex('00000000 0001 00000017 0004')]), code: 'malformed' },
    { name: 'ReadyForQuery status X', decode: be.decodeReadyForQuery, payload: Buffer.from('X'), code: 'malformed' },
    { name: 'ErrorResponse without terminator', decode: be.decodeErrorResponse, payload: Buffer.from('SERROR\0'), code: 'malformed' },
    { name: 'ErrorResponse field without NUL', decode: be.decodeErrorResponse, payload: Buffer.from('SERROR'), code: 'malformed' },
    { name: 'BackendKeyData with a 3-byte key', decode: be.decodeBackendKeyData, payload: hex('00000001 010203'), code: 'malformed' },
    { name: 'ParameterDescription count past the end', decode: be.decodeParameterDescription, payload: hex('0002 00000017'), code: 'malformed' },
    { name: 'NegotiateProtocolVersion negative count', decode: be.decodeNegotiateProtocolVersion, payload: hex('00000000 ffffffff'), code: 'malformed' },
    { name: 'CommandComplete without NUL', decode: be.decodeCommandComplete, payload: Buffer.from('SELECT 1'), code: 'malformed' },
    { name: 'NotificationResponse missing payload', decode: be.decodeNotificationResponse, payload: Buffer.concat([hex('00000001'), Buffer.from('ch\0')]), code: 'malformed' },
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

  it('decodeBackendMessage refuses unknown types and bodies on empty messages', () => {
    expect(() => be.decodeBackendMessage({ type: 0x21, payload: Buffer.alloc(0), frame: hex('2100000004') })).toThrow(expect.objectContaining({ code: 'unknown_message' }));
    expect(() => be.decodeBackendMessage({ type: B.NoData, payload: hex('00'), frame: hex('6e0000000500') })).toThrow(expect.objectContaining({ code: 'malformed' }));
  });
});

describe('backend encoders refuse what cannot go on the wire', () => {
  it.each([
    { name: 'bad SQLSTATE', encode: () => be.encodeErrorResponse({ severity: 'ERROR', code: '4250', message: 'x' }) },
    { name: 'NUL in an error message', encode: () => be.encodeErrorResponse({ severity: 'ERROR', code: '42501', message: 'a\0b' }) },
    { name: 'two-letter field code', encode: () => be.encodeNoticeResponse({ severity: 'NOTICE', code: '00000', message: 'x', fields: { ZZ: 'y' } }) },
    { name: '3-byte md5 salt', encode: () => be.encodeAuthenticationMD5Password(Buffer.alloc(3)) },
    { name: 'empty SASL mechanism', encode: () => be.encodeAuthenticationSASL(['']) },
    { name: 'bad transaction status', encode: () => be.encodeReadyForQuery('Q' as 'I') },
    { name: 'typeSize out of int16', encode: () => be.encodeRowDescription([{ ...rowFields[0], typeSize: 40000 }]) },
    { name: 'DataRow with 65536 columns', encode: () => be.encodeDataRow(new Array<null>(65536).fill(null)) },
  ])('$name', ({ encode }) => {
    expect(encode).toThrow(expect.objectContaining({ name: 'ProtocolError', code: 'invalid_argument' }));
  });
});
