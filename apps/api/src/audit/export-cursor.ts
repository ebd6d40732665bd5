import { BadRequestError } from '../common/errors.js';

/**
 * The export cursor is opaque to clients: base64url of `v1:<position>`, the Event.position of the
 * last event delivered. No cursor = from the beginning.
 */
export function encodeCursor(position: bigint): string {
  return Buffer.from(`v1:${position.toString()}`).toString('base64url');
}

export function decodeCursor(cursor: string | undefined): bigint {
  if (cursor === undefined || cursor === '') return 0n;
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(cursor)) throw new BadRequestError('cursor: not a cursor returned by this api', 'invalid_cursor');
  const m = /^v1:(0|[1-9][0-9]{0,18})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!m) throw new BadRequestError('cursor: not a cursor returned by this api', 'invalid_cursor');
  const p = BigInt(m[1]);
  if (p > 9_223_372_036_854_775_807n) throw new BadRequestError('cursor: out of range', 'invalid_cursor');
  return p;
}
