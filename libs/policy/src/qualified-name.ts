/**
 * Names a policy writes (`tables`, `functions`, masking `columns`) and names a caller resolved
 * (`schema.table` of a result column), split into lower-cased parts. The SQL analyser lower-cases
 * every name it reads from the parse tree, quoted or not, so policy names compare case-insensitively
 * and are lower-cased here the same way.
 *
 * Postgres rules for the rest (https://www.postgresql.org/docs/current/sql-syntax-lexical.html#SQL-SYNTAX-IDENTIFIERS):
 * - `.` separates parts, except inside double quotes;
 * - inside double quotes everything is part of the name, white space and dots included, and `""` is
 *   one `"`;
 * - white space outside quotes only separates tokens: around a part (`public . users`) it is not part
 *   of any name.
 * White space inside an unquoted part (`my table`) does not make a name in Postgres; it is kept as
 * written, so the part names the quoted identifier `"my table"` (a rule then applies to the only
 * relation it could mean, rather than to `mytable`, another relation).
 */

/** A name as the policy compares it: lower-cased, schema null when the text did not qualify it. */
export interface QualifiedName {
  schema: string | null;
  name: string;
}

const isSpace = (c: string): boolean => c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f' || c === '\v';

/** `a.b.c` → its parts, lower-cased (see above); never empty: `''` → `['']`. */
export function splitQualifiedName(text: string): string[] {
  const parts: string[] = [];
  let cur = '';
  /** cur's length without the unquoted white space at its end */
  let kept = 0;
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') { cur += '"'; i++; } else quoted = false;
      } else cur += c;
      kept = cur.length;
    } else if (c === '"') {
      quoted = true;
    } else if (c === '.') {
      parts.push(cur.slice(0, kept).toLowerCase());
      cur = '';
      kept = 0;
    } else if (isSpace(c)) {
      if (cur.length > 0) cur += c; // leading white space of a part is dropped, trailing cut at its end
    } else {
      cur += c;
      kept = cur.length;
    }
  }
  parts.push(cur.slice(0, kept).toLowerCase());
  return parts;
}

/** The last two parts of a dotted name as schema and name (`db.schema.name` → schema, name). */
export function parseQualifiedName(text: string): QualifiedName {
  const parts = splitQualifiedName(text);
  return { schema: parts.length >= 2 ? parts[parts.length - 2] : null, name: parts[parts.length - 1] };
}
