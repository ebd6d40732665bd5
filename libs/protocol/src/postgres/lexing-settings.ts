/**
 * The server settings under which the gateway's SQL parser (libs/policy) reads a statement exactly as Postgres does.
 * It reads SQL as UTF-8 text with standard_conforming_strings on. Two settings change how
 * the server cuts the same bytes into tokens:
 *
 *  - standard_conforming_strings = off makes a backslash an escape in '…' literals, so
 *    `SELECT 'a\'; DROP TABLE t; --'` is one SELECT to the parser and a SELECT plus a DROP to the
 *    server;
 *  - a client-only encoding (SJIS, BIG5, GBK, UHC, GB18030, JOHAB) lets the second byte of a
 *    multibyte character be the byte of a backslash, so a backslash the parser sees is not one to
 *    the server. (Postgres refuses these as server encodings for this very reason.) Every encoding
 *    Postgres allows as a server encoding keeps bytes below 0x80 as themselves: the tokens are the
 *    same whatever the non-ASCII bytes stand for.
 *
 * Postgres reports both settings in ParameterStatus at startup and whenever they change, by any
 * route; the gateway checks every report with `reportedLexingProblem`.
 */

/** The reported settings that decide how the server lexes a statement. */
export const LEXING_SETTINGS: ReadonlySet<string> = new Set(['standard_conforming_strings', 'client_encoding']);

/**
 * Encodings Postgres accepts as server encodings, spelt as ParameterStatus reports them
 * (pg_enc2name_tbl): the ones whose bytes below 0x80 are always ASCII. An allowlist, so a name
 * not known here fails closed.
 */
const ASCII_SAFE_ENCODINGS: ReadonlySet<string> = new Set([
  'SQL_ASCII', 'UTF8', 'EUC_JP', 'EUC_CN', 'EUC_KR', 'EUC_TW', 'EUC_JIS_2004', 'MULE_INTERNAL',
  'LATIN1', 'LATIN2', 'LATIN3', 'LATIN4', 'LATIN5', 'LATIN6', 'LATIN7', 'LATIN8', 'LATIN9', 'LATIN10',
  'WIN1250', 'WIN1251', 'WIN1252', 'WIN1253', 'WIN1254', 'WIN1255', 'WIN1256', 'WIN1257', 'WIN1258',
  'WIN866', 'WIN874', 'KOI8R', 'KOI8U', 'ISO_8859_5', 'ISO_8859_6', 'ISO_8859_7', 'ISO_8859_8',
]);

/**
 * Client-only encodings and their aliases (pg_encname_tbl), upper case, letters and digits only:
 * what a client may ask for. The server answers with the canonical name, which is then checked
 * against the allowlist above; this list only refuses the request before it reaches the server.
 */
const UNSAFE_CLIENT_ENCODINGS: ReadonlySet<string> = new Set([
  'SJIS', 'SHIFTJIS', 'SHIFTJIS2004', 'MSKANJI', 'WIN932', 'CP932', 'BIG5', 'WIN950', 'CP950', 'GBK', 'WIN936', 'CP936',
  'UHC', 'WIN949', 'CP949', 'GB18030', 'JOHAB',
]);

function scsProblem(value: string): string {
  return `standard_conforming_strings = ${value} is not allowed through the gateway: keep it on (off makes backslashes escapes in string literals, so the gateway would read statements differently from the server)`;
}

function encodingProblem(value: string): string {
  return `client_encoding ${value} is not allowed through the gateway: use UTF8 (a multibyte character of ${value} can hide a quote or backslash, so the gateway would read statements differently from the server)`;
}

/**
 * Why the server's reported value of `name` (a ParameterStatus) is one the gateway cannot read
 * statements under, or null when it can (or the setting does not affect lexing).
 */
export function reportedLexingProblem(name: string, value: string): string | null {
  if (name === 'standard_conforming_strings') return value === 'on' ? null : scsProblem(value);
  if (name === 'client_encoding') return ASCII_SAFE_ENCODINGS.has(value) ? null : encodingProblem(value);
  return null;
}

/**
 * Why a value a client asks for (a startup parameter, `-c` in options) would make the server lex
 * differently, or null. Names compare case-insensitively, as Postgres's do.
 */
export function requestedLexingProblem(name: string, value: string): string | null {
  const n = name.toLowerCase();
  if (n === 'standard_conforming_strings') return isTrue(value) ? null : scsProblem(value);
  if (n === 'client_encoding') return UNSAFE_CLIENT_ENCODINGS.has(value.toUpperCase().replace(/[^A-Z0-9]/g, '')) ? encodingProblem(value) : null;
  return null;
}

/** Postgres's parse_bool for true: on, or a prefix of true / yes, or 1. Anything else is not "on". */
function isTrue(value: string): boolean {
  const v = value.trim().toLowerCase();
  if (v === 'on' || v === '1') return true;
  return v.length > 0 && ('true'.startsWith(v) || 'yes'.startsWith(v));
}

/**
 * True when `sql` is cut into the same tokens under every setting above: ASCII only (every
 * ASCII-compatible encoding reads it alike) and without a backslash (the only character
 * standard_conforming_strings changes). A statement sent before the server has confirmed its
 * settings (pipelined behind one that may change them) can be decided at once only if this holds.
 */
export function lexesAlikeUnderAnySettings(sql: string): boolean {
  for (let i = 0; i < sql.length; i++) {
    const c = sql.charCodeAt(i);
    if (c > 0x7f || c === 0x5c) return false;
  }
  return true;
}
