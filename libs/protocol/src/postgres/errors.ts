import { PortcullisError } from '../errors.js';

/**
 * Why a Postgres wire message was refused. Stable strings: the gateway maps them to SQLSTATEs
 * (08P01 protocol_violation for most) and to session-end reasons.
 */
export const PROTOCOL_ERROR_CODES = [
  /** A length field is below its minimum or above its cap (garbage or a hostile peer). */
  'length_out_of_range',
  /** An untyped startup packet is malformed (wrong length for its code, bad layout). */
  'bad_startup',
  /** The stream ended (or a message ended) before a whole message / field was read. */
  'truncated',
  /** A startup packet asks for a protocol version other than 3.x, or an unknown request code. */
  'unsupported_protocol',
  /** A message's body does not match its layout (bad count, missing terminator, trailing bytes). */
  'malformed',
  /** A type byte (or authentication code) that is not part of the protocol. */
  'unknown_message',
  /** An encoder was given a value it cannot put on the wire (NUL inside a string, out-of-range int). */
  'invalid_argument',
] as const;
export type ProtocolErrorCode = (typeof PROTOCOL_ERROR_CODES)[number];

/** A frame or message on a Postgres connection was refused; the connection should be closed. */
export class ProtocolError extends PortcullisError {
  constructor(
    readonly code: ProtocolErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** SCRAM-SHA-256 exchange failed (bad server message, wrong server signature, server-reported error). */
export class ScramError extends PortcullisError {
  constructor(
    readonly code: 'bad_state' | 'bad_server_message' | 'server_error' | 'server_signature_mismatch',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
