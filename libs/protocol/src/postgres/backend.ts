/**
 * Backend (server → client) messages: encoders (the gateway speaks as a server to its clients) and
 * decoders (it reads what the upstream server sends).
 * Layouts: https://www.postgresql.org/docs/current/protocol-message-formats.html
 */
import { BufferReader } from './buffer-reader.js';
import { BufferWriter, cstringLength } from './buffer-writer.js';
import { AuthenticationCode as A, BackendMessageType as B, MAX_CANCEL_KEY_LENGTH } from './codes.js';
import { DataRowView } from './data-row.js';
import { ProtocolError } from './errors.js';
import { decodeEmpty } from './frontend.js';
import type { PgFrame } from './framer.js';

// ---------------------------------------------------------------------------------------------
// Shapes

export type AuthenticationMessage =
  | { auth: 'Ok' }
  | { auth: 'KerberosV5' }
  | { auth: 'CleartextPassword' }
  | { auth: 'MD5Password'; salt: Buffer }
  | { auth: 'GSS' }
  | { auth: 'GSSContinue'; data: Buffer }
  | { auth: 'SSPI' }
  | { auth: 'SASL'; mechanisms: string[] }
  | { auth: 'SASLContinue'; data: Buffer }
  | { auth: 'SASLFinal'; data: Buffer };

export interface BackendKeyData {
  pid: number;
  /** The first four key bytes as an unsigned int32: the whole key under protocol 3.0. */
  secret: number;
  /** The whole key (4 bytes under 3.0, up to 256 under 3.2). */
  secretKey: Buffer;
}

export interface ParameterStatus {
  name: string;
  value: string;
}

export type TransactionStatusChar = 'I' | 'T' | 'E';

export interface ReadyForQuery {
  /** 'I' idle, 'T' in a transaction block, 'E' in a failed transaction block. */
  status: TransactionStatusChar;
}

/**
 * ErrorResponse / NoticeResponse fields by name. `fields` holds every field by its code letter
 * (S V C M D H P p q W s t c d n F L R, and any the server adds later).
 * https://www.postgresql.org/docs/current/protocol-error-fields.html
 */
export interface PgNotice {
  /** S: localized severity (ERROR, FATAL, PANIC, WARNING, NOTICE, DEBUG, INFO, LOG). */
  severity: string;
  /** V: severity never localized. */
  severityNonLocalized?: string;
  /** C: SQLSTATE. */
  code: string;
  /** M: primary message. */
  message: string;
  detail?: string;
  hint?: string;
  position?: string;
  internalPosition?: string;
  internalQuery?: string;
  where?: string;
  schema?: string;
  table?: string;
  column?: string;
  dataType?: string;
  constraint?: string;
  file?: string;
  line?: string;
  routine?: string;
  fields: Record<string, string>;
}

/** What an encoder needs: S/V/C/M are always written, the rest when given. */
export type PgNoticeInput = Omit<PgNotice, 'fields'> & { fields?: Record<string, string> };

/** Field name ↔ code letter, in the order an encoder writes the optional ones. */
const NOTICE_FIELDS = [
  ['detail', 'D'],
  ['hint', 'H'],
  ['position', 'P'],
  ['internalPosition', 'p'],
  ['internalQuery', 'q'],
  ['where', 'W'],
  ['schema', 's'],
  ['table', 't'],
  ['column', 'c'],
  ['dataType', 'd'],
  ['constraint', 'n'],
  ['file', 'F'],
  ['line', 'L'],
  ['routine', 'R'],
] as const satisfies readonly (readonly [keyof PgNotice, string])[];

export interface RowField {
  name: string;
  /** OID of the table the column comes from, else 0. */
  tableOid: number;
  /** Attribute number of the column in that table, else 0. */
  columnAttr: number;
  typeOid: number;
  /** pg_type.typlen: negative for variable width. */
  typeSize: number;
  /** pg_attribute.atttypmod. */
  typeModifier: number;
  /** 0 text, 1 binary (always 0 in a Describe answer). */
  format: number;
}

export interface RowDescription {
  fields: RowField[];
}

export interface CommandComplete {
  /** e.g. "SELECT 1", "INSERT 0 3", "UPDATE 7". */
  tag: string;
}

export interface ParameterDescription {
  /** Parameter type OIDs. */
  types: number[];
}

export interface CopyResponse {
  /** Overall format: 0 text, 1 binary. */
  format: number;
  /** Per-column formats (all 0 when `format` is 0). */
  columnFormats: number[];
}

export interface NotificationResponse {
  pid: number;
  channel: string;
  payload: string;
}

export interface FunctionCallResponse {
  result: Buffer | null;
}

export interface NegotiateProtocolVersion {
  /** Newest minor version the server supports for the major the client asked for. */
  newestMinor: number;
  /** Protocol options (_pq_.*) the server did not recognise. */
  unrecognized: string[];
}

/** Every backend message, tagged by `kind`. */
export type BackendMessage =
  | ({ kind: 'Authentication' } & AuthenticationMessage)
  | ({ kind: 'BackendKeyData' } & BackendKeyData)
  | { kind: 'BindComplete' }
  | { kind: 'CloseComplete' }
  | ({ kind: 'CommandComplete' } & CommandComplete)
  | { kind: 'CopyData'; data: Buffer }
  | { kind: 'CopyDone' }
  | ({ kind: 'CopyInResponse' } & CopyResponse)
  | ({ kind: 'CopyOutResponse' } & CopyResponse)
  | ({ kind: 'CopyBothResponse' } & CopyResponse)
  | { kind: 'DataRow'; values: (Buffer | null)[] }
  | { kind: 'EmptyQueryResponse' }
  | ({ kind: 'ErrorResponse' } & PgNotice)
  | ({ kind: 'FunctionCallResponse' } & FunctionCallResponse)
  | ({ kind: 'NegotiateProtocolVersion' } & NegotiateProtocolVersion)
  | { kind: 'NoData' }
  | ({ kind: 'NoticeResponse' } & PgNotice)
  | ({ kind: 'NotificationResponse' } & NotificationResponse)
  | ({ kind: 'ParameterDescription' } & ParameterDescription)
  | ({ kind: 'ParameterStatus' } & ParameterStatus)
  | { kind: 'ParseComplete' }
  | { kind: 'PortalSuspended' }
  | ({ kind: 'ReadyForQuery' } & ReadyForQuery)
  | ({ kind: 'RowDescription' } & RowDescription);

// ---------------------------------------------------------------------------------------------
// Authentication ('R', then an int32 code)

export function decodeAuthentication(payload: Buffer): AuthenticationMessage {
  const r = new BufferReader(payload, 0, 'Authentication');
  const code = r.int32();
  let msg: AuthenticationMessage;
  switch (code) {
    case A.Ok:
      msg = { auth: 'Ok' };
      break;
    case A.KerberosV5:
      msg = { auth: 'KerberosV5' };
      break;
    case A.CleartextPassword:
      msg = { auth: 'CleartextPassword' };
      break;
    case A.MD5Password:
      msg = { auth: 'MD5Password', salt: r.bytes(4) };
      break;
    case A.GSS:
      msg = { auth: 'GSS' };
      break;
    case A.SSPI:
      msg = { auth: 'SSPI' };
      break;
    case A.GSSContinue:
      msg = { auth: 'GSSContinue', data: r.rest() };
      break;
    case A.SASLContinue:
      msg = { auth: 'SASLContinue', data: r.rest() };
      break;
    case A.SASLFinal:
      msg = { auth: 'SASLFinal', data: r.rest() };
      break;
    case A.SASL: {
      // A list of mechanism names, each a cstring, ended by an empty one.
      const mechanisms: string[] = [];
      for (;;) {
        if (r.remaining() === 0) throw new ProtocolError('malformed', 'AuthenticationSASL: mechanism list has no terminator');
        const m = r.cstring();
        if (m === '') break;
        mechanisms.push(m);
      }
      msg = { auth: 'SASL', mechanisms };
      break;
    }
    default:
      throw new ProtocolError('unknown_message', `unknown authentication request code ${code}`);
  }
  r.end();
  return msg;
}

function authMessage(code: number, extra = 0): BufferWriter {
  return BufferWriter.typed(B.Authentication, 9 + extra).int32(code);
}

export function encodeAuthenticationOk(): Buffer {
  return authMessage(A.Ok).finish();
}

export function encodeAuthenticationCleartextPassword(): Buffer {
  return authMessage(A.CleartextPassword).finish();
}

export function encodeAuthenticationMD5Password(salt: Buffer): Buffer {
  if (salt.length !== 4) throw new ProtocolError('invalid_argument', `MD5 salt must be 4 bytes, got ${salt.length}`);
  return authMessage(A.MD5Password, 4).bytes(salt).finish();
}

export function encodeAuthenticationSASL(mechanisms: readonly string[]): Buffer {
  let extra = 1;
  for (const m of mechanisms) {
    if (m === '') throw new ProtocolError('invalid_argument', 'SASL mechanism names must not be empty');
    extra += cstringLength(m);
  }
  const w = authMessage(A.SASL, extra);
  for (const m of mechanisms) w.cstring(m, 'mechanism');
  return w.uint8(0).finish();
}

function toBytes(data: Buffer | string): Buffer {
  return typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
}

export function encodeAuthenticationSASLContinue(data: Buffer | string): Buffer {
  const b = toBytes(data);
  return authMessage(A.SASLContinue, b.length).bytes(b).finish();
}

export function encodeAuthenticationSASLFinal(data: Buffer | string): Buffer {
  const b = toBytes(data);
  return authMessage(A.SASLFinal, b.length).bytes(b).finish();
}

// ---------------------------------------------------------------------------------------------
// Session set-up

export function decodeBackendKeyData(payload: Buffer): BackendKeyData {
  const r = new BufferReader(payload, 0, 'BackendKeyData');
  const pid = r.int32();
  const n = r.remaining();
  if (n < 4 || n > MAX_CANCEL_KEY_LENGTH) throw new ProtocolError('malformed', `BackendKeyData: secret key of ${n} bytes, expected 4..${MAX_CANCEL_KEY_LENGTH}`);
  const secretKey = r.rest();
  return { pid, secret: secretKey.readUInt32BE(0), secretKey };
}

/** `secret` is a 32-bit key (protocol 3.0) or raw key bytes (3.2: 4..256). */
export function encodeBackendKeyData(pid: number, secret: number | Buffer): Buffer {
  const w = BufferWriter.typed(B.BackendKeyData, 13).int32(pid);
  if (typeof secret === 'number') return w.uint32(secret).finish();
  if (secret.length < 4 || secret.length > MAX_CANCEL_KEY_LENGTH) {
    throw new ProtocolError('invalid_argument', `cancel key must be 4..${MAX_CANCEL_KEY_LENGTH} bytes, got ${secret.length}`);
  }
  return w.bytes(secret).finish();
}

export function decodeParameterStatus(payload: Buffer): ParameterStatus {
  const r = new BufferReader(payload, 0, 'ParameterStatus');
  const name = r.cstring();
  const value = r.cstring();
  r.end();
  return { name, value };
}

export function encodeParameterStatus(name: string, value: string): Buffer {
  return BufferWriter.typed(B.ParameterStatus, 5 + cstringLength(name) + cstringLength(value))
    .cstring(name, 'parameter name')
    .cstring(value, 'parameter value')
    .finish();
}

export function decodeReadyForQuery(payload: Buffer): ReadyForQuery {
  const r = new BufferReader(payload, 0, 'ReadyForQuery');
  const s = r.uint8();
  r.end();
  if (s !== 0x49 && s !== 0x54 && s !== 0x45) throw new ProtocolError('malformed', `ReadyForQuery: unknown transaction status 0x${s.toString(16)}`);
  return { status: String.fromCharCode(s) as TransactionStatusChar };
}

export function encodeReadyForQuery(status: TransactionStatusChar = 'I'): Buffer {
  if (status !== 'I' && status !== 'T' && status !== 'E') throw new ProtocolError('invalid_argument', `transaction status must be I, T or E, got ${String(status)}`);
  return BufferWriter.typed(B.ReadyForQuery, 6).uint8(status.charCodeAt(0)).finish();
}

export function decodeNegotiateProtocolVersion(payload: Buffer): NegotiateProtocolVersion {
  const r = new BufferReader(payload, 0, 'NegotiateProtocolVersion');
  const newestMinor = r.int32();
  const n = r.int32();
  if (n < 0) throw new ProtocolError('malformed', `NegotiateProtocolVersion: negative option count ${n}`);
  r.checkCount(n, 1, 'option');
  const unrecognized: string[] = [];
  for (let i = 0; i < n; i++) unrecognized.push(r.cstring());
  r.end();
  return { newestMinor, unrecognized };
}

export function encodeNegotiateProtocolVersion(newestMinor: number, unrecognized: readonly string[] = []): Buffer {
  const w = BufferWriter.typed(B.NegotiateProtocolVersion, 13 + unrecognized.reduce((n, s) => n + cstringLength(s), 0))
    .int32(newestMinor)
    .int32(unrecognized.length);
  for (const o of unrecognized) w.cstring(o, 'option name');
  return w.finish();
}

// ---------------------------------------------------------------------------------------------
// ErrorResponse / NoticeResponse: (code letter, cstring) pairs ended by a zero byte.

function decodeNoticeFields(payload: Buffer, what: string): PgNotice {
  const r = new BufferReader(payload, 0, what);
  const fields: Record<string, string> = Object.create(null) as Record<string, string>;
  for (;;) {
    const letter = r.uint8();
    if (letter === 0) break;
    fields[String.fromCharCode(letter)] = r.cstring();
  }
  r.end();
  const out: PgNotice = {
    severity: fields.S ?? fields.V ?? '',
    code: fields.C ?? '',
    message: fields.M ?? '',
    fields,
  };
  if (fields.V !== undefined) out.severityNonLocalized = fields.V;
  for (const [key, letter] of NOTICE_FIELDS) {
    const v = fields[letter];
    if (v !== undefined) out[key] = v;
  }
  return out;
}

function encodeNoticeFields(type: number, n: PgNoticeInput, what: string): Buffer {
  if (!/^[0-9A-Z]{5}$/.test(n.code)) throw new ProtocolError('invalid_argument', `${what}: SQLSTATE must be 5 characters of 0-9A-Z, got ${JSON.stringify(n.code)}`);
  const pairs: [string, string][] = [
    ['S', n.severity],
    ['V', n.severityNonLocalized ?? n.severity],
    ['C', n.code],
    ['M', n.message],
  ];
  for (const [key, letter] of NOTICE_FIELDS) {
    const v = n[key];
    if (v !== undefined) pairs.push([letter, v]);
  }
  if (n.fields) {
    const seen = new Set(pairs.map((p) => p[0]));
    for (const [letter, v] of Object.entries(n.fields)) {
      if (letter.length !== 1 || letter === '\0' || letter.charCodeAt(0) > 0x7f) throw new ProtocolError('invalid_argument', `${what}: field code ${JSON.stringify(letter)} is not one ASCII letter`);
      if (!seen.has(letter)) pairs.push([letter, v]);
    }
  }
  let size = 6;
  for (const [, v] of pairs) size += 1 + cstringLength(v);
  const w = BufferWriter.typed(type, size);
  for (const [letter, v] of pairs) w.uint8(letter.charCodeAt(0)).cstring(v, `${what} field ${letter}`);
  return w.uint8(0).finish();
}

export function decodeErrorResponse(payload: Buffer): PgNotice {
  return decodeNoticeFields(payload, 'ErrorResponse');
}

/** Always writes S, V, C and M (V = severity unless `severityNonLocalized` is given). */
export function encodeErrorResponse(error: PgNoticeInput): Buffer {
  return encodeNoticeFields(B.ErrorResponse, error, 'ErrorResponse');
}

export function decodeNoticeResponse(payload: Buffer): PgNotice {
  return decodeNoticeFields(payload, 'NoticeResponse');
}

export function encodeNoticeResponse(notice: PgNoticeInput): Buffer {
  return encodeNoticeFields(B.NoticeResponse, notice, 'NoticeResponse');
}

// ---------------------------------------------------------------------------------------------
// Results

export function decodeRowDescription(payload: Buffer): RowDescription {
  const r = new BufferReader(payload, 0, 'RowDescription');
  // Each field is at least 19 bytes: an empty name's terminator + 18 bytes of ints.
  const n = r.checkCount(r.uint16(), 19, 'field');
  const fields = new Array<RowField>(n);
  for (let i = 0; i < n; i++) {
    fields[i] = {
      name: r.cstring(),
      tableOid: r.uint32(),
      columnAttr: r.int16(),
      typeOid: r.uint32(),
      typeSize: r.int16(),
      typeModifier: r.int32(),
      format: r.int16(),
    };
  }
  r.end();
  return { fields };
}

export function encodeRowDescription(fields: readonly RowField[]): Buffer {
  let size = 7;
  for (const f of fields) size += cstringLength(f.name) + 18;
  const w = BufferWriter.typed(B.RowDescription, size).uint16(fields.length);
  for (const f of fields) {
    w.cstring(f.name, 'column name').uint32(f.tableOid).int16(f.columnAttr).uint32(f.typeOid).int16(f.typeSize).int32(f.typeModifier).int16(f.format);
  }
  return w.finish();
}

/**
 * DataRow: int16 column count, then per column an int32 length (-1 = NULL) and the bytes.
 * Values are zero-copy views into the payload. The checks are DataRowView's; the masking hot path
 * uses a DataRowView directly (offsets, no Buffer per value).
 */
export function decodeDataRow(payload: Buffer): (Buffer | null)[] {
  const row = decodeView.read(payload);
  const n = row.count;
  const values = new Array<Buffer | null>(n);
  for (let i = 0; i < n; i++) {
    const len = row.lengths[i];
    values[i] = len < 0 ? null : payload.subarray(row.starts[i], row.starts[i] + len);
  }
  row.release();
  return values;
}

const decodeView = new DataRowView();

/** One exact-size allocation: lengths are computed first, strings written as UTF-8 in place. */
export function encodeDataRow(values: readonly (Buffer | string | null)[]): Buffer {
  const n = values.length;
  if (n > 0xffff) throw new ProtocolError('invalid_argument', `DataRow: ${n} columns is more than 65535`);
  let size = 7 + 4 * n;
  for (let i = 0; i < n; i++) {
    const v = values[i];
    if (v !== null) size += typeof v === 'string' ? Buffer.byteLength(v) : v.length;
  }
  if (size > 0x7fffffff) throw new ProtocolError('invalid_argument', 'DataRow: row larger than 2 GiB');
  const buf = Buffer.allocUnsafe(size);
  buf[0] = B.DataRow;
  buf.writeInt32BE(size - 1, 1);
  buf.writeUInt16BE(n, 5);
  let pos = 7;
  for (let i = 0; i < n; i++) {
    const v = values[i];
    if (v === null) {
      buf.writeInt32BE(-1, pos);
      pos += 4;
    } else if (typeof v === 'string') {
      const len = buf.write(v, pos + 4, 'utf8');
      buf.writeInt32BE(len, pos);
      pos += 4 + len;
    } else {
      buf.writeInt32BE(v.length, pos);
      buf.set(v, pos + 4);
      pos += 4 + v.length;
    }
  }
  return buf;
}

export function decodeCommandComplete(payload: Buffer): CommandComplete {
  const r = new BufferReader(payload, 0, 'CommandComplete');
  const tag = r.cstring();
  r.end();
  return { tag };
}

export function encodeCommandComplete(tag: string): Buffer {
  return BufferWriter.typed(B.CommandComplete, 5 + cstringLength(tag)).cstring(tag, 'command tag').finish();
}

export function decodeParameterDescription(payload: Buffer): ParameterDescription {
  const r = new BufferReader(payload, 0, 'ParameterDescription');
  const n = r.checkCount(r.uint16(), 4, 'parameter');
  const types = new Array<number>(n);
  for (let i = 0; i < n; i++) types[i] = r.uint32();
  r.end();
  return { types };
}

export function encodeParameterDescription(types: readonly number[]): Buffer {
  const w = BufferWriter.typed(B.ParameterDescription, 7 + 4 * types.length).uint16(types.length);
  for (const t of types) w.uint32(t);
  return w.finish();
}

function decodeCopyResponse(payload: Buffer, what: string): CopyResponse {
  const r = new BufferReader(payload, 0, what);
  const format = r.uint8();
  const n = r.checkCount(r.uint16(), 2, 'column format');
  const columnFormats = new Array<number>(n);
  for (let i = 0; i < n; i++) columnFormats[i] = r.int16();
  r.end();
  return { format, columnFormats };
}

function encodeCopyResponse(type: number, msg: CopyResponse): Buffer {
  const w = BufferWriter.typed(type, 8 + 2 * msg.columnFormats.length).uint8(msg.format).uint16(msg.columnFormats.length);
  for (const f of msg.columnFormats) w.int16(f);
  return w.finish();
}

export const decodeCopyInResponse = (payload: Buffer): CopyResponse => decodeCopyResponse(payload, 'CopyInResponse');
export const decodeCopyOutResponse = (payload: Buffer): CopyResponse => decodeCopyResponse(payload, 'CopyOutResponse');
export const decodeCopyBothResponse = (payload: Buffer): CopyResponse => decodeCopyResponse(payload, 'CopyBothResponse');
export const encodeCopyInResponse = (msg: CopyResponse): Buffer => encodeCopyResponse(B.CopyInResponse, msg);
export const encodeCopyOutResponse = (msg: CopyResponse): Buffer => encodeCopyResponse(B.CopyOutResponse, msg);
export const encodeCopyBothResponse = (msg: CopyResponse): Buffer => encodeCopyResponse(B.CopyBothResponse, msg);

export function decodeNotificationResponse(payload: Buffer): NotificationResponse {
  const r = new BufferReader(payload, 0, 'NotificationResponse');
  const pid = r.int32();
  const channel = r.cstring();
  const body = r.cstring();
  r.end();
  return { pid, channel, payload: body };
}

export function encodeNotificationResponse(msg: NotificationResponse): Buffer {
  return BufferWriter.typed(B.NotificationResponse, 9 + cstringLength(msg.channel) + cstringLength(msg.payload))
    .int32(msg.pid)
    .cstring(msg.channel, 'channel')
    .cstring(msg.payload, 'payload')
    .finish();
}

export function decodeFunctionCallResponse(payload: Buffer): FunctionCallResponse {
  const r = new BufferReader(payload, 0, 'FunctionCallResponse');
  const result = r.nullableBytes();
  r.end();
  return { result };
}

export function encodeFunctionCallResponse(result: Buffer | null): Buffer {
  const w = BufferWriter.typed(B.FunctionCallResponse, 9 + (result?.length ?? 0));
  return (result === null ? w.int32(-1) : w.int32(result.length).bytes(result)).finish();
}

function emptyMessage(type: number): Buffer {
  const b = Buffer.allocUnsafe(5);
  b[0] = type;
  b.writeInt32BE(4, 1);
  return b;
}

export const encodeEmptyQueryResponse = (): Buffer => emptyMessage(B.EmptyQueryResponse);
export const encodeParseComplete = (): Buffer => emptyMessage(B.ParseComplete);
export const encodeBindComplete = (): Buffer => emptyMessage(B.BindComplete);
export const encodeCloseComplete = (): Buffer => emptyMessage(B.CloseComplete);
export const encodeNoData = (): Buffer => emptyMessage(B.NoData);
export const encodePortalSuspended = (): Buffer => emptyMessage(B.PortalSuspended);

// ---------------------------------------------------------------------------------------------
// Dispatch

/** Decodes any frame a server sends; an unknown type byte is a ProtocolError('unknown_message'). */
export function decodeBackendMessage(frame: PgFrame): BackendMessage {
  const p = frame.payload;
  switch (frame.type) {
    case B.Authentication:
      return { kind: 'Authentication', ...decodeAuthentication(p) };
    case B.BackendKeyData:
      return { kind: 'BackendKeyData', ...decodeBackendKeyData(p) };
    case B.BindComplete:
      decodeEmpty(p, 'BindComplete');
      return { kind: 'BindComplete' };
    case B.CloseComplete:
      decodeEmpty(p, 'CloseComplete');
      return { kind: 'CloseComplete' };
    case B.CommandComplete:
      return { kind: 'CommandComplete', ...decodeCommandComplete(p) };
    case B.CopyData:
      return { kind: 'CopyData', data: p };
    case B.CopyDone:
      decodeEmpty(p, 'CopyDone');
      return { kind: 'CopyDone' };
    case B.CopyInResponse:
      return { kind: 'CopyInResponse', ...decodeCopyInResponse(p) };
    case B.CopyOutResponse:
      return { kind: 'CopyOutResponse', ...decodeCopyOutResponse(p) };
    case B.CopyBothResponse:
      return { kind: 'CopyBothResponse', ...decodeCopyBothResponse(p) };
    case B.DataRow:
      return { kind: 'DataRow', values: decodeDataRow(p) };
    case B.EmptyQueryResponse:
      decodeEmpty(p, 'EmptyQueryResponse');
      return { kind: 'EmptyQueryResponse' };
    case B.ErrorResponse:
      return { kind: 'ErrorResponse', ...decodeErrorResponse(p) };
    case B.FunctionCallResponse:
      return { kind: 'FunctionCallResponse', ...decodeFunctionCallResponse(p) };
    case B.NegotiateProtocolVersion:
      return { kind: 'NegotiateProtocolVersion', ...decodeNegotiateProtocolVersion(p) };
    case B.NoData:
      decodeEmpty(p, 'NoData');
      return { kind: 'NoData' };
    case B.NoticeResponse:
      return { kind: 'NoticeResponse', ...decodeNoticeResponse(p) };
    case B.NotificationResponse:
      return { kind: 'NotificationResponse', ...decodeNotificationResponse(p) };
    case B.ParameterDescription:
      return { kind: 'ParameterDescription', ...decodeParameterDescription(p) };
    case B.ParameterStatus:
      return { kind: 'ParameterStatus', ...decodeParameterStatus(p) };
    case B.ParseComplete:
      decodeEmpty(p, 'ParseComplete');
      return { kind: 'ParseComplete' };
    case B.PortalSuspended:
      decodeEmpty(p, 'PortalSuspended');
      return { kind: 'PortalSuspended' };
    case B.ReadyForQuery:
      return { kind: 'ReadyForQuery', ...decodeReadyForQuery(p) };
    case B.RowDescription:
      return { kind: 'RowDescription', ...decodeRowDescription(p) };
    default:
      throw new ProtocolError('unknown_message', `unknown backend message type 0x${frame.type.toString(16).padStart(2, '0')}`);
  }
}
