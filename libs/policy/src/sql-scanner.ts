/**
 * A parser-free scanner that turns SQL text into its literal-free *shape*: every numeric literal
 * becomes \u0001, every string literal (standard, E'', B'', X'', N'', U&'', dollar-quoted) becomes
 * \u0002 (behind its prefix letter), comments and whitespace runs become one space (or one newline
 * when the run held a newline: Postgres only concatenates adjacent string literals across a
 * newline). Everything else is copied verbatim.
 *
 * The shape is the key of the literal-insensitive decision cache, so the scanner must agree with
 * the Postgres lexer (scan.l) on where literals start and end. Where it cannot be sure — an
 * unterminated string, comment or identifier, "trailing junk" after a number, a placeholder
 * character in the input — it gives up and returns null: the caller then keys on the exact text.
 * Two rules are deliberate:
 *  - the string after UESCAPE is kept verbatim: it changes how the preceding U&"…" identifier
 *    decodes, so it is code, not data;
 *  - standard_conforming_strings is assumed on (backslash is not an escape in '…'); the analyser
 *    refuses statements that would turn it off.
 */

const NUM = '\u0001';
const STR = '\u0002';

export interface LiteralSpan {
  start: number;
  end: number;
  kind: 'number' | 'string';
}

function isIdentStart(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95 || c >= 128;
}
function isIdentCont(c: number): boolean {
  return isIdentStart(c) || (c >= 48 && c <= 57) || c === 36;
}
function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}
function isSpace(c: number): boolean {
  return c === 32 || c === 9 || c === 10 || c === 13 || c === 12 || c === 11;
}

/** End of a '…' body starting after the opening quote, or -1 when unterminated. */
function endOfQuoted(sql: string, i: number, backslashEscapes: boolean): number {
  const n = sql.length;
  while (i < n) {
    const c = sql.charCodeAt(i);
    if (c === 39) {
      if (i + 1 < n && sql.charCodeAt(i + 1) === 39) { i += 2; continue; }
      return i + 1;
    }
    if (backslashEscapes && c === 92) { i += 2; continue; }
    i++;
  }
  return -1;
}

function digitsWithUnderscores(sql: string, i: number, ok: (c: number) => boolean): number {
  const n = sql.length;
  if (i >= n || !ok(sql.charCodeAt(i))) return -1;
  i++;
  while (i < n) {
    const c = sql.charCodeAt(i);
    if (ok(c)) { i++; continue; }
    if (c === 95 && i + 1 < n && ok(sql.charCodeAt(i + 1))) { i += 2; continue; }
    break;
  }
  return i;
}

const isHex = (c: number) => isDigit(c) || (c >= 97 && c <= 102) || (c >= 65 && c <= 70);
const isOct = (c: number) => c >= 48 && c <= 55;
const isBin = (c: number) => c === 48 || c === 49;

/** End of the number starting at i (a digit, or '.' before a digit), or -1 where Postgres would reject it. */
function endOfNumber(sql: string, i: number): number {
  const n = sql.length;
  const c0 = sql.charCodeAt(i);
  let j: number;
  if (c0 === 48 && i + 2 < n) {
    const p = sql.charCodeAt(i + 1) | 0x20;
    const ok = p === 120 ? isHex : p === 111 ? isOct : p === 98 ? isBin : null;
    if (ok) {
      let k = i + 2;
      if (sql.charCodeAt(k) === 95) k++;
      j = digitsWithUnderscores(sql, k, ok);
      if (j < 0) return -1;
      return j < n && (isIdentCont(sql.charCodeAt(j)) || sql.charCodeAt(j) === 46) ? -1 : j;
    }
  }
  if (c0 === 46) {
    j = digitsWithUnderscores(sql, i + 1, isDigit);
  } else {
    j = digitsWithUnderscores(sql, i, isDigit);
    if (j < n && sql.charCodeAt(j) === 46) {
      // `1..10` is an integer followed by `..` in scan.l
      if (j + 1 < n && sql.charCodeAt(j + 1) === 46) return j;
      j++;
      if (j < n && isDigit(sql.charCodeAt(j))) j = digitsWithUnderscores(sql, j, isDigit);
    }
  }
  if (j < n && (sql.charCodeAt(j) | 0x20) === 101) {
    let k = j + 1;
    const s = sql.charCodeAt(k);
    if (s === 43 || s === 45) k++;
    const e = digitsWithUnderscores(sql, k, isDigit);
    if (e < 0) return -1; // `1e`, `1e+` : realfail in scan.l
    j = e;
  }
  if (j < n) {
    const c = sql.charCodeAt(j);
    if (isIdentCont(c) || c === 46) return -1; // trailing junk, or a dotted run we do not model
  }
  return j;
}

/**
 * The literal-free shape of `sql`, or null when the scanner cannot vouch for it.
 * `spans`, when given, receives the literal spans (for tests against the real lexer).
 */
export function sqlShape(sql: string, spans?: LiteralSpan[]): string | null {
  const n = sql.length;
  let out = '';
  let copyFrom = 0;
  let i = 0;
  let keepNextString = false;
  // Leading whitespace and comments are dropped; inner runs collapse; trailing ones are dropped.
  let pendingSpace = '';
  let atStart = true;

  const flush = (to: number) => {
    if (to > copyFrom) {
      if (pendingSpace) { if (!atStart) out += pendingSpace; pendingSpace = ''; }
      out += sql.slice(copyFrom, to);
      atStart = false;
    }
  };
  const emit = (s: string) => {
    if (pendingSpace) { if (!atStart) out += pendingSpace; pendingSpace = ''; }
    out += s;
    atStart = false;
  };
  /**
   * A string literal ending at `end` (the caller moves `i` there): replaced by the placeholder, or skipped
   * whole when it is the UESCAPE character of a preceding U&'…'. `i` stays out of this closure: the
   * loop index is hot and must stay a register, not a context slot.
   */
  const stringLiteral = (flushTo: number, spanStart: number, end: number) => {
    if (keepNextString) { keepNextString = false; return; }
    flush(flushTo);
    spans?.push({ start: spanStart, end, kind: 'string' });
    emit(STR);
    copyFrom = end;
  };

  while (i < n) {
    const c = sql.charCodeAt(i);
    // whitespace and comments
    if (isSpace(c) || (c === 45 && sql.charCodeAt(i + 1) === 45) || (c === 47 && sql.charCodeAt(i + 1) === 42)) {
      flush(i);
      let newline = false;
      while (i < n) {
        const d = sql.charCodeAt(i);
        if (isSpace(d)) {
          if (d === 10 || d === 13) newline = true;
          i++;
        } else if (d === 45 && sql.charCodeAt(i + 1) === 45) {
          i += 2;
          while (i < n && sql.charCodeAt(i) !== 10 && sql.charCodeAt(i) !== 13) i++;
        } else if (d === 47 && sql.charCodeAt(i + 1) === 42) {
          // block comments nest in Postgres
          let depth = 1;
          i += 2;
          while (i < n && depth > 0) {
            const e = sql.charCodeAt(i);
            if (e === 42 && sql.charCodeAt(i + 1) === 47) { depth--; i += 2; }
            else if (e === 47 && sql.charCodeAt(i + 1) === 42) { depth++; i += 2; }
            else { if (e === 10 || e === 13) newline = true; i++; }
          }
          if (depth > 0) return null;
        } else break;
      }
      if (pendingSpace !== '\n') pendingSpace = newline ? '\n' : ' ';
      copyFrom = i;
      continue;
    }
    if (c === 1 || c === 2) return null; // our placeholders must not occur in the input
    if (isIdentStart(c)) {
      const start = i;
      i++;
      while (i < n && isIdentCont(sql.charCodeAt(i))) i++;
      const len = i - start;
      const next = sql.charCodeAt(i);
      if (len === 1 && next === 39) {
        const p = c | 0x20;
        if (p === 101 || p === 98 || p === 120 || p === 110) {
          // E'…' (backslash escapes), B'…', X'…', N'…'
          const end = endOfQuoted(sql, i + 1, p === 101);
          if (end < 0) return null;
          // N'…' lexes as the keyword NATIONAL CHARACTER then a plain string; the others are one token
          stringLiteral(start + 1, p === 110 ? start + 1 : start, end);
          i = end;
          continue;
        }
      }
      if (len === 1 && (c | 0x20) === 117 && next === 38) {
        const q = sql.charCodeAt(i + 1);
        if (q === 39) {
          const end = endOfQuoted(sql, i + 2, false);
          if (end < 0) return null;
          stringLiteral(start + 2, start, end);
          i = end;
          continue;
        }
        if (q === 34) {
          const end = sql.indexOf('"', i + 2);
          if (end < 0) return null;
          i = end + 1;
          while (sql.charCodeAt(i) === 34) { const e2 = sql.indexOf('"', i + 1); if (e2 < 0) return null; i = e2 + 1; }
          keepNextString = false;
          continue;
        }
      }
      keepNextString = len === 7 && sql.slice(start, i).toLowerCase() === 'uescape';
      continue;
    }
    if (c === 39) {
      const end = endOfQuoted(sql, i + 1, false);
      if (end < 0) return null;
      stringLiteral(i, i, end);
      i = end;
      continue;
    }
    if (c === 34) {
      // quoted identifier: code, copied verbatim ("" is an escaped quote)
      let j = i + 1;
      for (;;) {
        const e = sql.indexOf('"', j);
        if (e < 0) return null;
        if (sql.charCodeAt(e + 1) === 34) { j = e + 2; continue; }
        i = e + 1;
        break;
      }
      keepNextString = false;
      continue;
    }
    if (c === 36) {
      const d = sql.charCodeAt(i + 1);
      if (isDigit(d)) {
        // $n parameter: code
        let j = i + 1;
        while (j < n && isDigit(sql.charCodeAt(j))) j++;
        if (j < n && isIdentCont(sql.charCodeAt(j))) return null;
        i = j;
        keepNextString = false;
        continue;
      }
      // $tag$ … $tag$ (tag: identifier without $, or empty)
      let j = i + 1;
      if (j < n && isIdentStart(sql.charCodeAt(j))) {
        j++;
        while (j < n && isIdentCont(sql.charCodeAt(j)) && sql.charCodeAt(j) !== 36) j++;
      }
      if (sql.charCodeAt(j) === 36) {
        const tag = sql.slice(i, j + 1);
        const close = sql.indexOf(tag, j + 1);
        if (close < 0) return null;
        const end = close + tag.length;
        stringLiteral(i, i, end);
        i = end;
        continue;
      }
      i++;
      continue;
    }
    if (isDigit(c) || (c === 46 && isDigit(sql.charCodeAt(i + 1)))) {
      const end = endOfNumber(sql, i);
      if (end < 0) return null;
      flush(i);
      spans?.push({ start: i, end, kind: 'number' });
      emit(NUM);
      i = end;
      copyFrom = i;
      keepNextString = false;
      continue;
    }
    // `..` is its own token in scan.l (DOT_DOT) and changes how a following number lexes: give up
    if (c === 46 && sql.charCodeAt(i + 1) === 46) return null;
    // operators and punctuation: code
    keepNextString = false;
    i++;
  }
  flush(n);
  return out;
}

/**
 * True when the server could read `sql` differently with standard_conforming_strings off: a
 * backslash inside a standard '…' (or N'…', U&'…') string literal, where it is an escape only when the
 * setting is off. E'…' and dollar-quoted strings read alike either way. Text the scanner cannot vouch
 * for counts when it has a backslash at all (fail closed).
 */
export function dependsOnStandardStrings(sql: string): boolean {
  if (!sql.includes('\\')) return false;
  const spans: LiteralSpan[] = [];
  if (sqlShape(sql, spans) === null) return true;
  for (const sp of spans) {
    if (sp.kind !== 'string') continue;
    const first = sql.charCodeAt(sp.start) | 0x20;
    // E'…' / B'…' / X'…' and $tag$…$tag$ keep their meaning; '…', N'…' (span from its quote) and U&'…' do not
    if (first === 101 || first === 98 || first === 120 || sql.charCodeAt(sp.start) === 36) continue;
    if (sql.slice(sp.start, sp.end).includes('\\')) return true;
  }
  return false;
}
