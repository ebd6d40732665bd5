/**
 * Frontend (client → server) messages: a decoder for each (the gateway reads what clients send) and
 * an encoder for each (the gateway is itself a client of the upstream server; tests round-trip).
 * Layouts: https://www.postgresql.org/docs/current/protocol-message-formats.html
 *
 * Decoders take the message body (`PgFrame.payload`), check every count and length against the
 * bytes present, refuse trailing bytes, and return zero-copy views for binary fields.
 */
import { BufferReader } from './buffer-reader.js';
import { BufferWriter, cstringLength } from './buffer-writer.js';
import {
  CANCEL_REQUEST_CODE,
  FrontendMessageType as F,
  GSSENC_REQUEST_CODE,
  MAX_CANCEL_KEY_LENGTH,
  PROTOCOL_VERSION_3_0,
  SSL_REQUEST_CODE,
} from './codes.js';
import { ProtocolError } from './errors.js';
import type { PgFrame } from './framer.js';

// ---------------------------------------------------------------------------------------------
// Shapes

export interface StartupMessage {
  /** major << 16 | minor; always major 3 once decoded. */
  protocolVersion: number;
  /** user, database, application_name, options, client_encoding, _pq_.* ... (a null-prototype object). */
  params: Record<string, string>;
}

export interface CancelRequest {
  pid: number;
  /** The first four key bytes as an unsigned int32: the whole key under protocol 3.0. */
  secret: number;
  /** The whole key as sent (4 bytes under 3.0, up to 256 under 3.2). */
  secretKey: Buffer;
}

export interface PasswordMessage {
  password: string;
}

export interface SASLInitialResponse {
  mechanism: string;
  /** The client-first-message; null when the client sent length -1. */
  data: Buffer | null;
}

export interface SASLResponse {
  data: Buffer;
}

export interface Query {
  sql: string;
}

export interface Parse {
  /** Prepared statement name; '' is the unnamed statement. */
  name: string;
  query: string;
  /** Parameter type OIDs the client pinned (0 = let the server infer). */
  paramTypes: number[];
}

export interface Bind {
  portal: string;
  statement: string;
  /** 0 entries: all text; 1: that format for all; else one per parameter (checked). */
  paramFormats: number[];
  params: (Buffer | null)[];
  resultFormats: number[];
}

export type DescribeTargetName = 'statement' | 'portal';

export interface Describe {
  target: DescribeTargetName;
  name: string;
}

export type Close = Describe;

export interface Execute {
  portal: string;
  /** 0 = no limit. */
  maxRows: number;
}

export interface CopyData {
  data: Buffer;
}

export interface CopyFail {
  message: string;
}

export interface FunctionCall {
  functionOid: number;
  argFormats: number[];
  args: (Buffer | null)[];
  resultFormat: number;
}

export type StartupPacket =
  | ({ kind: 'StartupMessage' } & StartupMessage)
  | { kind: 'SSLRequest' }
  | { kind: 'GSSENCRequest' }
  | ({ kind: 'CancelRequest' } & CancelRequest);

/** Every frontend message, tagged by `kind`. */
export type FrontendMessage =
  | StartupPacket
  | ({ kind: 'Bind' } & Bind)
  | ({ kind: 'Close' } & Close)
  | ({ kind: 'CopyData' } & CopyData)
  | { kind: 'CopyDone' }
  | ({ kind: 'CopyFail' } & CopyFail)
  | ({ kind: 'Describe' } & Describe)
  | ({ kind: 'Execute' } & Execute)
  | { kind: 'Flush' }
  | ({ kind: 'FunctionCall' } & FunctionCall)
  | ({ kind: 'Parse' } & Parse)
  | ({ kind: 'PasswordMessage' } & PasswordMessage)
  | ({ kind: 'SASLInitialResponse' } & SASLInitialResponse)
  | ({ kind: 'SASLResponse' } & SASLResponse)
  /** A 'p' message decoded without saying which kind of authentication is under way. */
  | { kind: 'AuthResponse'; data: Buffer }
  | ({ kind: 'Query' } & Query)
  | { kind: 'Sync' }
  | { kind: 'Terminate' };

// ---------------------------------------------------------------------------------------------
// Startup phase (untyped packets; `payload` starts with the int32 code)

/** StartupMessage: int32 version, then name\0value\0 pairs, then a final \0. */
export function decodeStartupMessage(payload: Buffer): StartupMessage {
  const r = new BufferReader(payload, 0, 'StartupMessage');
  const protocolVersion = r.int32();
  if (protocolVersion >>> 16 !== 3) {
    throw new ProtocolError('unsupported_protocol', `unsupported frontend protocol ${protocolVersion >>> 16}.${protocolVersion & 0xffff}: the gateway speaks 3.x`);
  }
  const params: Record<string, string> = Object.create(null) as Record<string, string>;
  for (;;) {
    if (r.remaining() === 0) throw new ProtocolError('bad_startup', 'StartupMessage: parameter list has no terminator');
    const key = r.cstring();
    if (key === '') break;
    if (r.remaining() === 0) throw new ProtocolError('bad_startup', `StartupMessage: parameter "${key}" has no value`);
    params[key] = r.cstring();
  }
  if (r.remaining() !== 0) throw new ProtocolError('bad_startup', 'StartupMessage: bytes after the terminator');
  return { protocolVersion, params };
}

export function encodeStartupMessage(params: Record<string, string> | Map<string, string>, protocolVersion = PROTOCOL_VERSION_3_0): Buffer {
  const entries = params instanceof Map ? [...params] : Object.entries(params);
  let size = 4 + 4 + 1;
  for (const [k, v] of entries) {
    if (k === '') throw new ProtocolError('invalid_argument', 'StartupMessage parameter names must not be empty');
    size += cstringLength(k) + cstringLength(v);
  }
  const w = BufferWriter.untyped(size).int32(protocolVersion);
  for (const [k, v] of entries) w.cstring(k, 'parameter name').cstring(v, `parameter ${k}`);
  return w.uint8(0).finish();
}

function decodeCodeOnly(payload: Buffer, code: number, what: string): void {
  const r = new BufferReader(payload, 0, what);
  if (r.int32() !== code) throw new ProtocolError('bad_startup', `${what}: wrong request code`);
  r.end();
}

export function decodeSSLRequest(payload: Buffer): void {
  decodeCodeOnly(payload, SSL_REQUEST_CODE, 'SSLRequest');
}

export function decodeGSSENCRequest(payload: Buffer): void {
  decodeCodeOnly(payload, GSSENC_REQUEST_CODE, 'GSSENCRequest');
}

export function encodeSSLRequest(): Buffer {
  return BufferWriter.untyped(8).int32(SSL_REQUEST_CODE).finish();
}

export function encodeGSSENCRequest(): Buffer {
  return BufferWriter.untyped(8).int32(GSSENC_REQUEST_CODE).finish();
}

export function decodeCancelRequest(payload: Buffer): CancelRequest {
  const r = new BufferReader(payload, 0, 'CancelRequest');
  if (r.int32() !== CANCEL_REQUEST_CODE) throw new ProtocolError('bad_startup', 'CancelRequest: wrong request code');
  const pid = r.int32();
  const n = r.remaining();
  if (n < 4 || n > MAX_CANCEL_KEY_LENGTH) throw new ProtocolError('bad_startup', `CancelRequest: secret key of ${n} bytes, expected 4..${MAX_CANCEL_KEY_LENGTH}`);
  const secretKey = r.rest();
  return { pid, secret: secretKey.readUInt32BE(0), secretKey };
}

/** `secret` is a 32-bit key (protocol 3.0) or the raw key bytes (3.2: 4..256 bytes). */
export function encodeCancelRequest(pid: number, secret: number | Buffer): Buffer {
  const w = BufferWriter.untyped(16).int32(CANCEL_REQUEST_CODE).int32(pid);
  if (typeof secret === 'number') return w.uint32(secret).finish();
  if (secret.length < 4 || secret.length > MAX_CANCEL_KEY_LENGTH) {
    throw new ProtocolError('invalid_argument', `cancel key must be 4..${MAX_CANCEL_KEY_LENGTH} bytes, got ${secret.length}`);
  }
  return w.bytes(secret).finish();
}

/** Any untyped packet, told apart by its code. */
export function decodeStartupPacket(payload: Buffer): StartupPacket {
  if (payload.length < 4) throw new ProtocolError('bad_startup', 'startup packet shorter than its code');
  const code = payload.readInt32BE(0);
  switch (code) {
    case SSL_REQUEST_CODE:
      decodeSSLRequest(payload);
      return { kind: 'SSLRequest' };
    case GSSENC_REQUEST_CODE:
      decodeGSSENCRequest(payload);
      return { kind: 'GSSENCRequest' };
    case CANCEL_REQUEST_CODE:
      return { kind: 'CancelRequest', ...decodeCancelRequest(payload) };
    default:
      return { kind: 'StartupMessage', ...decodeStartupMessage(payload) };
  }
}

// ---------------------------------------------------------------------------------------------
// Authentication responses: all 'p', told apart only by what the server asked for.

/** PasswordMessage: the cleartext or md5-hashed password as one cstring filling the body. */
export function decodePassword(payload: Buffer): PasswordMessage {
  const r = new BufferReader(payload, 0, 'PasswordMessage');
  const password = r.cstring();
  r.end();
  return { password };
}

export function encodePassword(password: string): Buffer {
  return BufferWriter.typed(F.Password, 5 + cstringLength(password)).cstring(password, 'password').finish();
}

/** SASLInitialResponse: mechanism cstring, int32 length (-1: none), client-first-message. */
export function decodeSASLInitialResponse(payload: Buffer): SASLInitialResponse {
  const r = new BufferReader(payload, 0, 'SASLInitialResponse');
  const mechanism = r.cstring();
  const data = r.nullableBytes();
  r.end();
  return { mechanism, data };
}

export function encodeSASLInitialResponse(mechanism: string, data: Buffer | string | null): Buffer {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  const w = BufferWriter.typed(F.Password, 5 + cstringLength(mechanism) + 4 + (bytes?.length ?? 0)).cstring(mechanism, 'mechanism');
  if (bytes === null) return w.int32(-1).finish();
  return w.int32(bytes.length).bytes(bytes).finish();
}

/** SASLResponse: the whole body is mechanism data. */
export function decodeSASLResponse(payload: Buffer): SASLResponse {
  return { data: payload };
}

export function encodeSASLResponse(data: Buffer | string): Buffer {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  return BufferWriter.typed(F.Password, 5 + bytes.length).bytes(bytes).finish();
}

// ---------------------------------------------------------------------------------------------
// Simple and extended query

export function decodeQuery(payload: Buffer): Query {
  const r = new BufferReader(payload, 0, 'Query');
  const sql = r.cstring();
  r.end();
  return { sql };
}

export function encodeQuery(sql: string): Buffer {
  const cap = sql.length > 1024 ? 5 + cstringLength(sql) : 6 + sql.length * 3;
  return BufferWriter.typed(F.Query, cap).cstring(sql, 'query').finish();
}

export function decodeParse(payload: Buffer): Parse {
  const r = new BufferReader(payload, 0, 'Parse');
  const name = r.cstring();
  const query = r.cstring();
  const n = r.checkCount(r.uint16(), 4, 'parameter type');
  const paramTypes = new Array<number>(n);
  for (let i = 0; i < n; i++) paramTypes[i] = r.uint32();
  r.end();
  return { name, query, paramTypes };
}

export function encodeParse(msg: { name?: string; query: string; paramTypes?: readonly number[] }): Buffer {
  const name = msg.name ?? '';
  const types = msg.paramTypes ?? [];
  const w = BufferWriter.typed(F.Parse, 5 + cstringLength(name) + cstringLength(msg.query) + 2 + 4 * types.length)
    .cstring(name, 'statement name')
    .cstring(msg.query, 'query')
    .uint16(types.length);
  for (const t of types) w.uint32(t);
  return w.finish();
}

function readFormats(r: BufferReader, what: string): number[] {
  const n = r.checkCount(r.uint16(), 2, what);
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) out[i] = r.int16();
  return out;
}

function readValues(r: BufferReader, what: string): (Buffer | null)[] {
  const n = r.checkCount(r.uint16(), 4, what);
  const out = new Array<Buffer | null>(n);
  for (let i = 0; i < n; i++) out[i] = r.nullableBytes();
  return out;
}

function checkFormatCount(formats: number, values: number, what: string, code: 'malformed' | 'invalid_argument' = 'malformed'): void {
  if (formats > 1 && formats !== values) {
    throw new ProtocolError(code, `${what}: ${formats} parameter formats for ${values} parameters`);
  }
}

export function decodeBind(payload: Buffer): Bind {
  const r = new BufferReader(payload, 0, 'Bind');
  const portal = r.cstring();
  const statement = r.cstring();
  const paramFormats = readFormats(r, 'parameter format');
  const params = readValues(r, 'parameter');
  checkFormatCount(paramFormats.length, params.length, 'Bind');
  const resultFormats = readFormats(r, 'result format');
  r.end();
  return { portal, statement, paramFormats, params, resultFormats };
}

/** The format (0 text, 1 binary) of parameter `i` of a Bind, after the 0/1/n rule. */
export function bindParamFormat(bind: Pick<Bind, 'paramFormats'>, i: number): number {
  const f = bind.paramFormats;
  return f.length === 0 ? 0 : f.length === 1 ? f[0] : (f[i] ?? 0);
}

type WireValue = Buffer | string | null;

function valuesSize(values: readonly WireValue[]): number {
  let size = 0;
  for (const v of values) size += 4 + (v === null ? 0 : typeof v === 'string' ? Buffer.byteLength(v) : v.length);
  return size;
}

function writeValues(w: BufferWriter, values: readonly WireValue[]): void {
  w.uint16(values.length);
  for (const v of values) {
    if (v === null) {
      w.int32(-1);
    } else if (typeof v === 'string') {
      w.int32(Buffer.byteLength(v)).string(v);
    } else {
      w.int32(v.length).bytes(v);
    }
  }
}

export function encodeBind(msg: {
  portal?: string;
  statement?: string;
  paramFormats?: readonly number[];
  params?: readonly WireValue[];
  resultFormats?: readonly number[];
}): Buffer {
  const portal = msg.portal ?? '';
  const statement = msg.statement ?? '';
  const pf = msg.paramFormats ?? [];
  const params = msg.params ?? [];
  const rf = msg.resultFormats ?? [];
  checkFormatCount(pf.length, params.length, 'Bind', 'invalid_argument');
  const w = BufferWriter.typed(
    F.Bind,
    5 + cstringLength(portal) + cstringLength(statement) + 2 + 2 * pf.length + 2 + valuesSize(params) + 2 + 2 * rf.length,
  )
    .cstring(portal, 'portal name')
    .cstring(statement, 'statement name')
    .uint16(pf.length);
  for (const f of pf) w.int16(f);
  writeValues(w, params);
  w.uint16(rf.length);
  for (const f of rf) w.int16(f);
  return w.finish();
}

function decodeTargetNamed(payload: Buffer, what: string): Describe {
  const r = new BufferReader(payload, 0, what);
  const t = r.uint8();
  if (t !== 0x53 && t !== 0x50) throw new ProtocolError('malformed', `${what}: target byte 0x${t.toString(16)} is neither 'S' nor 'P'`);
  const name = r.cstring();
  r.end();
  return { target: t === 0x53 ? 'statement' : 'portal', name };
}

function encodeTargetNamed(type: number, target: DescribeTargetName, name: string): Buffer {
  return BufferWriter.typed(type, 6 + cstringLength(name))
    .uint8(target === 'statement' ? 0x53 : 0x50)
    .cstring(name, 'name')
    .finish();
}

export function decodeDescribe(payload: Buffer): Describe {
  return decodeTargetNamed(payload, 'Describe');
}

export function encodeDescribe(target: DescribeTargetName, name = ''): Buffer {
  return encodeTargetNamed(F.Describe, target, name);
}

export function decodeClose(payload: Buffer): Close {
  return decodeTargetNamed(payload, 'Close');
}

export function encodeClose(target: DescribeTargetName, name = ''): Buffer {
  return encodeTargetNamed(F.Close, target, name);
}

export function decodeExecute(payload: Buffer): Execute {
  const r = new BufferReader(payload, 0, 'Execute');
  const portal = r.cstring();
  const maxRows = r.int32();
  r.end();
  return { portal, maxRows };
}

export function encodeExecute(portal = '', maxRows = 0): Buffer {
  return BufferWriter.typed(F.Execute, 9 + cstringLength(portal)).cstring(portal, 'portal name').int32(maxRows).finish();
}

function emptyMessage(type: number): Buffer {
  const b = Buffer.allocUnsafe(5);
  b[0] = type;
  b.writeInt32BE(4, 1);
  return b;
}

/** Sync, Flush, Terminate and CopyDone carry no body; anything there is malformed. */
export function decodeEmpty(payload: Buffer, what: string): void {
  if (payload.length !== 0) throw new ProtocolError('malformed', `${what}: ${payload.length} unexpected body bytes`);
}

export function encodeSync(): Buffer {
  return emptyMessage(F.Sync);
}

export function encodeFlush(): Buffer {
  return emptyMessage(F.Flush);
}

export function encodeTerminate(): Buffer {
  return emptyMessage(F.Terminate);
}

// ---------------------------------------------------------------------------------------------
// COPY (CopyData and CopyDone have the same type byte and layout in both directions)

export function decodeCopyData(payload: Buffer): CopyData {
  return { data: payload };
}

export function encodeCopyData(data: Buffer | string): Buffer {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  return BufferWriter.typed(F.CopyData, 5 + bytes.length).bytes(bytes).finish();
}

export function encodeCopyDone(): Buffer {
  return emptyMessage(F.CopyDone);
}

export function decodeCopyFail(payload: Buffer): CopyFail {
  const r = new BufferReader(payload, 0, 'CopyFail');
  const message = r.cstring();
  r.end();
  return { message };
}

export function encodeCopyFail(message: string): Buffer {
  return BufferWriter.typed(F.CopyFail, 5 + cstringLength(message)).cstring(message, 'message').finish();
}

// ---------------------------------------------------------------------------------------------
// FunctionCall (the fast-path interface, still used by large-object clients)

export function decodeFunctionCall(payload: Buffer): FunctionCall {
  const r = new BufferReader(payload, 0, 'FunctionCall');
  const functionOid = r.uint32();
  const argFormats = readFormats(r, 'argument format');
  const args = readValues(r, 'argument');
  checkFormatCount(argFormats.length, args.length, 'FunctionCall');
  const resultFormat = r.int16();
  r.end();
  return { functionOid, argFormats, args, resultFormat };
}

export function encodeFunctionCall(msg: { functionOid: number; argFormats?: readonly number[]; args?: readonly WireValue[]; resultFormat?: number }): Buffer {
  const af = msg.argFormats ?? [];
  const args = msg.args ?? [];
  checkFormatCount(af.length, args.length, 'FunctionCall', 'invalid_argument');
  const w = BufferWriter.typed(F.FunctionCall, 5 + 4 + 2 + 2 * af.length + 2 + valuesSize(args) + 2).uint32(msg.functionOid).uint16(af.length);
  for (const f of af) w.int16(f);
  writeValues(w, args);
  return w.int16(msg.resultFormat ?? 0).finish();
}

// ---------------------------------------------------------------------------------------------
// Dispatch

export interface DecodeFrontendOptions {
  /**
   * What a 'p' message is: it depends on the authentication request the server sent
   * (CleartextPassword/MD5Password → 'password', SASL → 'sasl-initial', SASLContinue → 'sasl').
   * Without it a 'p' decodes as { kind: 'AuthResponse', data }.
   */
  auth?: 'password' | 'sasl-initial' | 'sasl';
}

/** Decodes any frame a client sends; an unknown type byte is a ProtocolError('unknown_message'). */
export function decodeFrontendMessage(frame: PgFrame, options: DecodeFrontendOptions = {}): FrontendMessage {
  const p = frame.payload;
  switch (frame.type) {
    case 0:
      return decodeStartupPacket(p);
    case F.Bind:
      return { kind: 'Bind', ...decodeBind(p) };
    case F.Close:
      return { kind: 'Close', ...decodeClose(p) };
    case F.CopyData:
      return { kind: 'CopyData', data: p };
    case F.CopyDone:
      decodeEmpty(p, 'CopyDone');
      return { kind: 'CopyDone' };
    case F.CopyFail:
      return { kind: 'CopyFail', ...decodeCopyFail(p) };
    case F.Describe:
      return { kind: 'Describe', ...decodeDescribe(p) };
    case F.Execute:
      return { kind: 'Execute', ...decodeExecute(p) };
    case F.Flush:
      decodeEmpty(p, 'Flush');
      return { kind: 'Flush' };
    case F.FunctionCall:
      return { kind: 'FunctionCall', ...decodeFunctionCall(p) };
    case F.Parse:
      return { kind: 'Parse', ...decodeParse(p) };
    case F.Password:
      switch (options.auth) {
        case 'password':
          return { kind: 'PasswordMessage', ...decodePassword(p) };
        case 'sasl-initial':
          return { kind: 'SASLInitialResponse', ...decodeSASLInitialResponse(p) };
        case 'sasl':
          return { kind: 'SASLResponse', data: p };
        default:
          return { kind: 'AuthResponse', data: p };
      }
    case F.Query:
      return { kind: 'Query', ...decodeQuery(p) };
    case F.Sync:
      decodeEmpty(p, 'Sync');
      return { kind: 'Sync' };
    case F.Terminate:
      decodeEmpty(p, 'Terminate');
      return { kind: 'Terminate' };
    default:
      throw new ProtocolError('unknown_message', `unknown frontend message type 0x${frame.type.toString(16).padStart(2, '0')}`);
  }
}
