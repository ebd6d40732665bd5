import { stringsOf as names } from './parse-tree.js';
import { TYPE_NAMES, canonicalTypeName } from './pg-types.js';

/**
 * Which functions, operators and casts may receive a masked column outside the result — in a WHERE,
 * JOIN ON, HAVING, ORDER BY or a subquery's filter. "Filters are not outputs" holds only for code
 * that has no way out but its return value: a user-defined function can RAISE NOTICE its argument
 * or INSERT it somewhere, `set_config(…, ssn, …)` stores it in a setting anyone reads back,
 * `pg_notify` sends it to a listener, `dblink` to another server, `lo_from_bytea` into a large object.
 *
 * The model is Postgres's own `proleakproof`: only code known not to leak may see the value. That is
 * decided here statically, from the names in the statement, against a list of pg_catalog built-ins
 * that are immutable or stable and write nothing (a failing one's error text is the relay's to
 * withhold: relay-machine.ts scrubs errors of statements that name a masked column). Anything else
 * — a user-defined function, a volatile built-in, an extension's function, an operator or cast that
 * is not one of the built-in ones, a function qualified with another schema — is refused when a
 * masked column reaches it, directly or through an expression.
 *
 * Why static and not a catalog lookup per session: the decision stays a pure, cacheable function of
 * the text (policy-engine.ts caches by text and shape), and a name on this list resolves to the
 * pg_catalog built-in unless something earlier on the search_path shadows it. Shadowing through the
 * gateway is refused instead (a CREATE FUNCTION / OPERATOR / AGGREGATE named like one of these, and
 * CREATE CAST, which can make any comparison call a user function): see shadowsBuiltin.
 */

const SAFE_FUNCTIONS: ReadonlySet<string> = new Set([
  // text
  'lower', 'upper', 'initcap', 'length', 'char_length', 'character_length', 'octet_length', 'bit_length',
  'substr', 'substring', 'left', 'right', 'strpos', 'position', 'trim', 'btrim', 'ltrim', 'rtrim', 'lpad', 'rpad',
  'replace', 'translate', 'reverse', 'repeat', 'split_part', 'starts_with', 'concat', 'concat_ws', 'overlay',
  'ascii', 'chr', 'md5', 'sha224', 'sha256', 'sha384', 'sha512', 'encode', 'decode', 'convert_from', 'convert_to',
  'regexp_replace', 'regexp_match', 'regexp_matches', 'regexp_like', 'regexp_count', 'regexp_instr', 'regexp_substr',
  'regexp_split_to_array', 'similar_to_escape', 'like_escape', 'quote_literal', 'quote_ident', 'quote_nullable',
  'to_hex', 'normalize', 'unistr', 'format', 'string_to_array', 'array_to_string', 'textlen', 'texteq',
  // numbers, dates, formatting
  'abs', 'ceil', 'ceiling', 'floor', 'round', 'trunc', 'mod', 'power', 'sqrt', 'sign', 'div', 'width_bucket',
  'to_char', 'to_number', 'to_date', 'to_timestamp', 'date_trunc', 'date_part', 'extract', 'age', 'make_date',
  'justify_days', 'justify_hours', 'justify_interval', 'isfinite', 'now', 'timezone',
  // json, arrays, text search
  'json_extract_path', 'json_extract_path_text', 'jsonb_extract_path', 'jsonb_extract_path_text', 'json_typeof',
  'jsonb_typeof', 'json_array_length', 'jsonb_array_length', 'jsonb_path_exists', 'jsonb_path_match',
  'array_length', 'array_position', 'array_positions', 'cardinality', 'array_lower', 'array_upper',
  'to_tsvector', 'to_tsquery', 'plainto_tsquery', 'phraseto_tsquery', 'websearch_to_tsquery', 'ts_match_vq',
  // aggregates in HAVING compare, they do not write
  'count', 'sum', 'min', 'max', 'avg', 'bool_and', 'bool_or', 'every',
  // the parser's spelling of SQL-standard syntax (COLLATION FOR, IS NORMALIZED, …)
  'pg_collation_for', 'is_normalized',
]);

/** Built-in operator symbols (pg_operator.dat), and the keyword forms the parser leaves as names. */
const SAFE_OPERATORS: ReadonlySet<string> = new Set([
  '=', '<>', '!=', '<', '>', '<=', '>=', '~~', '~~*', '!~~', '!~~*', '~', '~*', '!~', '!~*', '||', '+', '-', '*', '/',
  '%', '^', '@@', '@@@', '@>', '<@', '&&', '?', '?|', '?&', '->', '->>', '#>', '#>>', '^@', '@?', '#-',
  'BETWEEN', 'NOT BETWEEN', 'BETWEEN SYMMETRIC', 'NOT BETWEEN SYMMETRIC',
]);

/** Type names a cast may target without running user code (a domain's CHECK, a user cast, a user type's input). */
const SAFE_TYPES: ReadonlySet<string> = new Set([
  ...TYPE_NAMES.values(),
  'int', 'integer', 'smallint', 'bigint', 'real', 'float', 'decimal', 'boolean', 'character', 'regclass', 'regtype',
  'tsvector', 'tsquery', 'bit', 'varbit',
]);

type Node = Record<string, unknown>;

/** Only pg_catalog (or no schema, which finds pg_catalog first) holds the built-ins. */
function builtinSchema(parts: string[]): boolean {
  return parts.length < 2 || parts[parts.length - 2]!.toLowerCase() === 'pg_catalog';
}

/**
 * The name of the code a node runs on its arguments when that code may have side effects (a
 * function, an operator, a cast); null when it is a side-effect-free built-in or not a call at all.
 */
export function unsafeCall(type: string, n: Node): string | null {
  if (type === 'FuncCall') {
    const parts = names(n.funcname);
    const name = (parts[parts.length - 1] ?? '').toLowerCase();
    return builtinSchema(parts) && SAFE_FUNCTIONS.has(name) ? null : parts.join('.');
  }
  if (type === 'A_Expr') {
    const parts = names(n.name);
    const op = parts[parts.length - 1] ?? '';
    return builtinSchema(parts) && SAFE_OPERATORS.has(op) ? null : `operator ${parts.join('.')}`;
  }
  if (type === 'TypeCast') {
    const parts = names((n.typeName as Node | undefined)?.names);
    const t = canonicalTypeName(parts[parts.length - 1] ?? '');
    return builtinSchema(parts) && SAFE_TYPES.has(t) ? null : `cast to ${parts.join('.')}`;
  }
  return null;
}

/**
 * A statement that would make a name on the safe lists run user code: a function, aggregate or
 * operator of the same name (found before pg_catalog when the search_path puts it first), or a cast
 * (an implicit one runs inside comparisons the text shows as built-in). Its description, or null.
 */
export function shadowsBuiltin(type: string, n: Node): string | null {
  if (type === 'CreateFunctionStmt') {
    const parts = names(n.funcname);
    const name = (parts[parts.length - 1] ?? '').toLowerCase();
    return SAFE_FUNCTIONS.has(name) || SAFE_OPERATORS.has(name) ? `CREATE FUNCTION ${parts.join('.')}` : null;
  }
  if (type === 'DefineStmt') {
    const parts = names(n.defnames);
    const name = parts[parts.length - 1] ?? '';
    if (n.kind === 'OBJECT_OPERATOR' && SAFE_OPERATORS.has(name)) return `CREATE OPERATOR ${parts.join('.')}`;
    if (n.kind === 'OBJECT_AGGREGATE' && SAFE_FUNCTIONS.has(name.toLowerCase())) return `CREATE AGGREGATE ${parts.join('.')}`;
    return null;
  }
  if (type === 'CreateCastStmt' && n.func !== undefined) return 'CREATE CAST';
  return null;
}
