/**
 * Type bytes and magic numbers of the Postgres v3 wire protocol.
 * https://www.postgresql.org/docs/current/protocol-message-formats.html
 *
 * Frontend (client → server) and backend (server → client) bytes overlap ('D' is Describe one way
 * and DataRow the other), so they live in two objects.
 */

/** Type byte of each frontend message. 'p' covers PasswordMessage, SASLInitialResponse, SASLResponse and GSSResponse. */
export const FrontendMessageType = {
  Bind: 0x42, // 'B'
  Close: 0x43, // 'C'
  CopyData: 0x64, // 'd'
  CopyDone: 0x63, // 'c'
  CopyFail: 0x66, // 'f'
  Describe: 0x44, // 'D'
  Execute: 0x45, // 'E'
  Flush: 0x48, // 'H'
  FunctionCall: 0x46, // 'F'
  Parse: 0x50, // 'P'
  Password: 0x70, // 'p'
  Query: 0x51, // 'Q'
  Sync: 0x53, // 'S'
  Terminate: 0x58, // 'X'
} as const;
export type FrontendMessageName = keyof typeof FrontendMessageType;
export type FrontendMessageType = (typeof FrontendMessageType)[FrontendMessageName];

/** Type byte of each backend message. */
export const BackendMessageType = {
  Authentication: 0x52, // 'R'
  BackendKeyData: 0x4b, // 'K'
  BindComplete: 0x32, // '2'
  CloseComplete: 0x33, // '3'
  CommandComplete: 0x43, // 'C'
  CopyData: 0x64, // 'd'
  CopyDone: 0x63, // 'c'
  CopyInResponse: 0x47, // 'G'
  CopyOutResponse: 0x48, // 'H'
  CopyBothResponse: 0x57, // 'W'
  DataRow: 0x44, // 'D'
  EmptyQueryResponse: 0x49, // 'I'
  ErrorResponse: 0x45, // 'E'
  FunctionCallResponse: 0x56, // 'V'
  NegotiateProtocolVersion: 0x76, // 'v'
  NoData: 0x6e, // 'n'
  NoticeResponse: 0x4e, // 'N'
  NotificationResponse: 0x41, // 'A'
  ParameterDescription: 0x74, // 't'
  ParameterStatus: 0x53, // 'S'
  ParseComplete: 0x31, // '1'
  PortalSuspended: 0x73, // 's'
  ReadyForQuery: 0x5a, // 'Z'
  RowDescription: 0x54, // 'T'
} as const;
export type BackendMessageName = keyof typeof BackendMessageType;
export type BackendMessageType = (typeof BackendMessageType)[BackendMessageName];

/** The int32 after 'R' in an Authentication message. */
export const AuthenticationCode = {
  Ok: 0,
  KerberosV5: 2,
  CleartextPassword: 3,
  MD5Password: 5,
  GSS: 7,
  GSSContinue: 8,
  SSPI: 9,
  SASL: 10,
  SASLContinue: 11,
  SASLFinal: 12,
} as const;
export type AuthenticationKind = keyof typeof AuthenticationCode;
export type AuthenticationCode = (typeof AuthenticationCode)[AuthenticationKind];

/** Transaction status byte of ReadyForQuery. */
export const TransactionStatus = {
  Idle: 0x49, // 'I'
  InTransaction: 0x54, // 'T'
  Failed: 0x45, // 'E'
} as const;
export type TransactionStatus = (typeof TransactionStatus)[keyof typeof TransactionStatus];

/** Describe / Close target: a prepared statement or a portal. */
export const DescribeTarget = { Statement: 0x53 /* 'S' */, Portal: 0x50 /* 'P' */ } as const;

/** Value format codes (Bind, RowDescription, Copy*Response). */
export const FormatCode = { Text: 0, Binary: 1 } as const;
export type FormatCode = (typeof FormatCode)[keyof typeof FormatCode];

/** Protocol 3.0 as sent in a StartupMessage: major 3 << 16 | minor 0. */
export const PROTOCOL_VERSION_3_0 = 196608;
/** Protocol 3.2 (PostgreSQL 18): variable-length cancel keys. */
export const PROTOCOL_VERSION_3_2 = 196610;
/** SSLRequest code: 1234 << 16 | 5679. */
export const SSL_REQUEST_CODE = 80877103;
/** GSSENCRequest code: 1234 << 16 | 5680. */
export const GSSENC_REQUEST_CODE = 80877104;
/** CancelRequest code: 1234 << 16 | 5678. */
export const CANCEL_REQUEST_CODE = 80877102;

/** Postgres' own cap on a startup packet (MAX_STARTUP_PACKET_LENGTH). */
export const MAX_STARTUP_PACKET_LENGTH = 10_000;
/** Postgres' cap on frontend messages that carry no user data (PQ_SMALL_MESSAGE_LIMIT): Sync, Execute, Describe... */
export const PQ_SMALL_MESSAGE_LIMIT = 10_000;
/** Postgres' cap on an authentication token ('p' messages during authentication, PG_MAX_AUTH_TOKEN_LENGTH). */
export const PG_MAX_AUTH_TOKEN_LENGTH = 65_535;
/** Default cap on a typed message from a client (Query, Parse, Bind, CopyData...). */
export const DEFAULT_MAX_CLIENT_MESSAGE_LENGTH = 64 * 1024 * 1024;
/** Default cap on a typed message from a server: Postgres' own MaxAllocSize (1 GiB - 1). */
export const DEFAULT_MAX_SERVER_MESSAGE_LENGTH = 1024 * 1024 * 1024 - 1;
/** Cancel keys are 4 bytes in protocol 3.0 and 4..256 bytes in 3.2. */
export const MAX_CANCEL_KEY_LENGTH = 256;
