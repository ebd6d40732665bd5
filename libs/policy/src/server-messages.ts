import { maskText, type MaskingOptions } from './masking/index.js';
import type { PolicyDocument } from './policy-document.js';

/**
 * ErrorResponse and NoticeResponse texts leave through masking too. Postgres writes values into
 * them: a failing cast quotes its input in the message, a unique violation's detail is
 * `Key (email)=(…) already exists`, RAISE puts anything anywhere, CONTEXT and internal queries quote
 * SQL with its values. Fields by their code letter
 * (https://www.postgresql.org/docs/current/protocol-error-fields.html).
 *
 * - A statement that reads or writes a masked column (`maskedRule`, from the policy decision): the
 *   message becomes a generic text naming the SQLSTATE; detail, hint, context and the internal query
 *   are withheld.
 * - Every message: the policy's content detectors run over every text field that is left.
 *
 * Kept as they are, so clients go on behaving: severity, SQLSTATE, position, and the object-name
 * fields (schema, table, column, data type, constraint) and source location, which carry names,
 * never values.
 */

/** Fields whose text may quote values. */
const VALUE_FIELDS = ['M', 'D', 'H', 'W', 'q'] as const;
/** Withheld whole when the statement touches a masked column (p: a position inside the withheld query). */
const WITHHELD_FIELDS = ['D', 'H', 'W', 'q', 'p'] as const;

/**
 * The fields of one ErrorResponse / NoticeResponse as the client may see them; null when nothing
 * changes (the message passes as it came).
 */
export function scrubServerMessage(
  fields: Readonly<Record<string, string>>,
  doc: PolicyDocument,
  opts: MaskingOptions,
  maskedRule: string | null,
): Record<string, string> | null {
  let out: Record<string, string> | null = null;
  if (maskedRule !== null) {
    out = { ...fields };
    for (const f of WITHHELD_FIELDS) delete out[f];
    const code = fields.C ?? 'XX000';
    const what = (fields.V ?? fields.S) === 'NOTICE' || (fields.V ?? fields.S) === 'WARNING' || (fields.V ?? fields.S) === 'INFO' ? 'message' : 'error';
    out.M = `${what} text withheld (SQLSTATE ${code}): the statement reads or writes a column masked by rule "${maskedRule}"`;
    return out;
  }
  for (const f of VALUE_FIELDS) {
    const v = fields[f];
    if (v === undefined || v === '') continue;
    const m = maskText(v, doc, opts);
    if (m.findings.length === 0) continue;
    out ??= { ...fields };
    out[f] = m.value;
  }
  return out;
}
