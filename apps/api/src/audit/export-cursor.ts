import { BadRequestError } from '../common/errors.js';

/**
 * Where an export page ended: the (txid, position) of the last event delivered. Events are exported in
 * (txid, position) order: txid is the id of the transaction that stored the row, position its place
 * in that transaction's insert (AuditExportService).
 */
export interface ExportCursor {
  txid: bigint;
  position: bigint;
}

const MAX_BIGINT = 9_223_372_036_854_775_807n;

/**
 * The export cursor is opaque to clients: base64url of `v2:<txid>:<position>`. No cursor = from the
 * beginning. A `v1:<position>` cursor (before txids were stored) resumes at (0, position): rows
 * stored before the txid column have txid 0, so nothing after it is skipped (rows stored later with
 * a lower position come again: at-least-once, as after a lost response).
 */
export function encodeCursor(c: ExportCursor): string {
  return Buffer.from(`v2:${c.txid.toString()}:${c.position.toString()}`).toString('base64url');
}

export function decodeCursor(cursor: string | undefined): ExportCursor {
  if (cursor === undefined || cursor === '') return { txid: 0n, position: 0n };
  if (!/^[A-Za-z0-9_-]{1,96}$/.test(cursor)) throw invalid();
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  const n = '(0|[1-9][0-9]{0,18})';
  const v2 = new RegExp(`^v2:${n}:${n}$`).exec(text);
  const v1 = v2 ? null : new RegExp(`^v1:${n}$`).exec(text);
  if (!v2 && !v1) throw invalid();
  const c = v2 ? { txid: BigInt(v2[1]), position: BigInt(v2[2]) } : { txid: 0n, position: BigInt(v1![1]) };
  if (c.txid > MAX_BIGINT || c.position > MAX_BIGINT) throw new BadRequestError('cursor: out of range', 'invalid_cursor');
  return c;
}

function invalid(): BadRequestError {
  return new BadRequestError('cursor: not a cursor returned by this api', 'invalid_cursor');
}
