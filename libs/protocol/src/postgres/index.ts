// Postgres v3 wire protocol: framing, byte reader/writer, message codes, one decodeX/encodeX per
// message, SCRAM-SHA-256 client. https://www.postgresql.org/docs/current/protocol.html
export {
  FrontendMessageType, BackendMessageType, AuthenticationCode, TransactionStatus, DescribeTarget, FormatCode,
  PROTOCOL_VERSION_3_0, PROTOCOL_VERSION_3_2, SSL_REQUEST_CODE, GSSENC_REQUEST_CODE, CANCEL_REQUEST_CODE,
  MAX_STARTUP_PACKET_LENGTH, PQ_SMALL_MESSAGE_LIMIT, PG_MAX_AUTH_TOKEN_LENGTH,
  DEFAULT_MAX_CLIENT_MESSAGE_LENGTH, DEFAULT_MAX_SERVER_MESSAGE_LENGTH, MAX_CANCEL_KEY_LENGTH,
  type FrontendMessageName, type BackendMessageName, type AuthenticationKind,
} from './codes.js';
export { ProtocolError, ScramError, PROTOCOL_ERROR_CODES, type ProtocolErrorCode } from './errors.js';
export { BufferReader } from './buffer-reader.js';
export { BufferWriter, cstringLength } from './buffer-writer.js';
export { PgFramer, type PgFrame, type PgFramerOptions } from './framer.js';
export {
  decodeStartupMessage, encodeStartupMessage, decodeSSLRequest, encodeSSLRequest, decodeGSSENCRequest, encodeGSSENCRequest,
  decodeCancelRequest, encodeCancelRequest, decodeStartupPacket,
  decodePassword, encodePassword, decodeSASLInitialResponse, encodeSASLInitialResponse, decodeSASLResponse, encodeSASLResponse,
  decodeQuery, encodeQuery, decodeParse, encodeParse, decodeBind, encodeBind, bindParamFormat,
  decodeDescribe, encodeDescribe, decodeClose, encodeClose, decodeExecute, encodeExecute,
  decodeEmpty, encodeSync, encodeFlush, encodeTerminate,
  decodeCopyData, encodeCopyData, encodeCopyDone, decodeCopyFail, encodeCopyFail,
  decodeFunctionCall, encodeFunctionCall, decodeFrontendMessage,
  type StartupMessage, type CancelRequest, type PasswordMessage, type SASLInitialResponse, type SASLResponse,
  type Query, type Parse, type Bind, type Describe, type Close, type DescribeTargetName, type Execute,
  type CopyData, type CopyFail, type FunctionCall, type StartupPacket, type FrontendMessage, type DecodeFrontendOptions,
} from './frontend.js';
export {
  decodeAuthentication, encodeAuthenticationOk, encodeAuthenticationCleartextPassword, encodeAuthenticationMD5Password,
  encodeAuthenticationSASL, encodeAuthenticationSASLContinue, encodeAuthenticationSASLFinal,
  decodeBackendKeyData, encodeBackendKeyData, decodeParameterStatus, encodeParameterStatus,
  decodeReadyForQuery, encodeReadyForQuery, decodeNegotiateProtocolVersion, encodeNegotiateProtocolVersion,
  decodeErrorResponse, encodeErrorResponse, decodeNoticeResponse, encodeNoticeResponse,
  decodeRowDescription, encodeRowDescription, decodeDataRow, encodeDataRow, decodeCommandComplete, encodeCommandComplete,
  decodeParameterDescription, encodeParameterDescription,
  decodeCopyInResponse, encodeCopyInResponse, decodeCopyOutResponse, encodeCopyOutResponse, decodeCopyBothResponse, encodeCopyBothResponse,
  decodeNotificationResponse, encodeNotificationResponse, decodeFunctionCallResponse, encodeFunctionCallResponse,
  encodeEmptyQueryResponse, encodeParseComplete, encodeBindComplete, encodeCloseComplete, encodeNoData, encodePortalSuspended,
  decodeBackendMessage,
  type AuthenticationMessage, type BackendKeyData, type ParameterStatus, type ReadyForQuery, type TransactionStatusChar,
  type PgNotice, type PgNoticeInput, type RowField, type RowDescription, type CommandComplete, type ParameterDescription,
  type CopyResponse, type NotificationResponse, type FunctionCallResponse, type NegotiateProtocolVersion, type BackendMessage,
} from './backend.js';
export { DataRowView, DataRowWriter } from './data-row.js';
export { ScramClient, md5Password, saslPrep, SCRAM_SHA_256, SCRAM_SHA_256_PLUS, type ScramClientOptions, type ScramChannelBinding } from './scram.js';
export { LEXING_SETTINGS, reportedLexingProblem, requestedLexingProblem, lexesAlikeUnderAnySettings } from './lexing-settings.js';
export { DEFAULT_REFUSED_SETTINGS, splitOptions, parseOptions, startupSettings, type StartupSetting, type StartupSettingsResult } from './startup-settings.js';
