import { StatementTooComplexError } from './errors.js';
import { sqlShape } from './sql-scanner.js';

/**
 * A linear pre-parse bound on how deep a statement's parse tree can be.
 *
 * libpg-query's WebAssembly parser writes its tree out recursively: a tree deeper than about 9,600
 * levels (a `1+1+…` chain of that many terms, `NOT NOT …`, `x::t::t…`, nested subqueries past
 * ~2,500 levels) overflows the stack, and the instance that overflowed leaks memory and soon faults
 * for every later statement (sql-parser.ts replaces it; this guard keeps it from happening). So
 * before a text reaches the parser, this pass estimates an upper bound of its tree depth from its
 * tokens and refuses it (StatementTooComplexError → SQLSTATE 54001) past `DEFAULT_MAX_DEPTH`.
 *
 * The estimate, per group (a `(`…`)`, `[`…`]` or `CASE`…`END`): its parts separated by list
 * separators (`,`, AND, OR, WHEN, THEN, ELSE — lists the parser keeps flat, so ten thousand IN
 * items or OR arms add no depth) each count their operators (each may add one level: a left-deep
 * `a+b+c` chain nests one level per operator) plus the deepest group inside the part; the group is
 * the deepest part, plus its chained set operations and joins (left-deep too, and not reset by
 * commas), plus the levels the group itself makes: SUBQUERY_WEIGHT for a subquery (SubLink,
 * SelectStmt, target list, ResTarget; measured: the parser fails at ~2,500 nested subqueries against
 * ~9,600 chained operators) and CASE, GROUP_WEIGHT for any other group (a function's argument list,
 * ARRAY[…], a row, plain parentheses). Counting every operator
 * of a part, wherever the group stands in it, keeps this an upper bound (`(((…)))+1+1` is as deep
 * as its sum). COLLATE counts twice (it costs the parser ~1.8 levels of stack).
 *
 * Literals and comments are not code: the pass reads the literal-free shape (sql-scanner.ts, which
 * agrees with the Postgres lexer). Where the scanner declines (an unterminated literal, a number
 * with trailing junk), the raw text is read with every character counted as code, which can only
 * overestimate.
 */

/**
 * Estimated depth no statement may go past. Measured (Node 20, default stack): the WebAssembly
 * parser overflows at ~9,600 levels of binary operators and ~5,400 of COLLATE; the analyser's own
 * recursive walks of the tree (sql-analyzer.ts, column-flows.ts: 2–3 JavaScript frames per level)
 * give up at ~1,000–1,300 levels, and that is the bound that matters. 500 leaves half of that.
 * Real SQL stays below: ORM queries and psql's catalog queries nest a few dozen levels, pg_dump's
 * view definitions parenthesise every operator (a 240-term sum is ~480); long IN and VALUES lists,
 * CASE arms and AND/OR chains are flat and cost nothing.
 */
export const DEFAULT_MAX_DEPTH = 500;
/** What a group adds by itself (see above). */
export const GROUP_WEIGHT = 1;
export const SUBQUERY_WEIGHT = 4;
/** Words that start a subquery when they open a parenthesised group. */
const SUBQUERY_WORDS = new Set(['select', 'values', 'with', 'table']);

/** Keywords that make an expression node over their operand(s), like an operator does. */
const OPERATOR_WORDS = new Map([
  ['not', 1], ['is', 1], ['isnull', 1], ['notnull', 1], ['like', 1], ['ilike', 1], ['similar', 1], ['between', 1], ['in', 1],
  ['collate', 2], ['at', 1], ['overlaps', 1], ['operator', 1],
]);
/** Keywords that chain left-deep across commas: set operations and joins. */
const CHAIN_WORDS = new Set(['union', 'intersect', 'except', 'join']);
/** Keywords that separate siblings of a flat list. */
const SEPARATOR_WORDS = new Set(['and', 'or', 'when', 'then', 'else']);

interface Group {
  /** 'p' for ( or [, 'c' for CASE */
  kind: 'p' | 'c';
  /** what the group itself adds */
  weight: number;
  /** no token seen in it yet */
  fresh: boolean;
  /** the deepest finished part */
  best: number;
  /** operators of the current part */
  ops: number;
  /** the deepest group inside the current part */
  child: number;
  /** set operations and joins of the group */
  chain: number;
}

const newGroup = (kind: 'p' | 'c'): Group => ({ kind, weight: kind === 'c' ? SUBQUERY_WEIGHT : GROUP_WEIGHT, fresh: true, best: 0, ops: 0, child: 0, chain: 0 });
const depthOf = (g: Group): number => g.chain + Math.max(g.best, g.ops + g.child);

function isWordStart(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95 || c >= 128;
}
function isWordPart(c: number): boolean {
  return isWordStart(c) || (c >= 48 && c <= 57) || c === 36;
}
function isSpace(c: number): boolean {
  return c === 32 || c === 9 || c === 10 || c === 13 || c === 12 || c === 11;
}
/** Operator characters (scan.l `op_chars`). */
function isOpChar(c: number): boolean {
  // ~ ! @ # ^ & | ` ? + - * / % < > =
  return c === 126 || c === 33 || c === 64 || c === 35 || c === 94 || c === 38 || c === 124 || c === 96 || c === 63
    || c === 43 || c === 45 || c === 42 || c === 47 || c === 37 || c === 60 || c === 62 || c === 61;
}
/** Characters that keep scan.l from splitting trailing + and - off an operator. */
function isNonMathOpChar(c: number): boolean {
  return c === 126 || c === 33 || c === 64 || c === 35 || c === 94 || c === 38 || c === 124 || c === 96 || c === 63 || c === 37;
}
const isPlusMinus = (c: number) => c === 43 || c === 45;

/**
 * How many operator tokens scan.l makes of the operator characters `text[start, end)`: one, except
 * that a run of only `+-*\/<>=` ending in + or - loses its trailing + and - (`1+-+-1` is
 * `1 + - + - 1`, one unary level each).
 */
export function operatorTokens(text: string, start: number, end: number): number {
  const n = end - start;
  if (n <= 1 || !isPlusMinus(text.charCodeAt(end - 1))) return 1;
  for (let i = start; i < end - 1; i++) if (isNonMathOpChar(text.charCodeAt(i))) return 1;
  let k = end - 1;
  while (k > start && isPlusMinus(text.charCodeAt(k))) k--;
  const first = isPlusMinus(text.charCodeAt(k)) ? start + 1 : k + 1;
  return 1 + (end - first);
}

/** The estimated parse-tree depth of the deepest statement of `sql` (see above). Linear time. */
export function statementDepth(sql: string): number {
  const text = sqlShape(sql) ?? sql;
  const n = text.length;
  let stack: Group[] = [newGroup('p')];
  let top = stack[0];
  let deepest = 0;
  let afterEnd = false;

  const separate = () => {
    const d = top.ops + top.child;
    if (d > top.best) top.best = d;
    top.ops = 0;
    top.child = 0;
  };
  const close = () => {
    const g = stack.pop()!;
    top = stack[stack.length - 1];
    const d = g.weight + depthOf(g);
    if (d > top.child) top.child = d;
  };
  const endStatement = () => {
    while (stack.length > 1) close();
    const d = depthOf(top);
    if (d > deepest) deepest = d;
    stack = [newGroup('p')];
    top = stack[0];
  };

  let i = 0;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (isWordStart(c)) {
      const start = i;
      i++;
      while (i < n && isWordPart(text.charCodeAt(i))) i++;
      const wasEnd = afterEnd;
      const first = top.fresh;
      afterEnd = false;
      top.fresh = false;
      if (i - start > 9) continue;
      const word = text.slice(start, i).toLowerCase();
      const op = OPERATOR_WORDS.get(word);
      if (op !== undefined) top.ops += op;
      else if (first && top.kind === 'p' && SUBQUERY_WORDS.has(word)) top.weight = SUBQUERY_WEIGHT;
      else if (SEPARATOR_WORDS.has(word)) separate();
      else if (CHAIN_WORDS.has(word)) top.chain++;
      else if (word === 'case') {
        // `END CASE` ends a PL/pgSQL CASE statement, it does not start one
        if (!wasEnd) { stack.push((top = newGroup('c'))); }
      } else if (word === 'end') {
        if (top.kind === 'c') close();
        afterEnd = true;
      }
      continue;
    }
    afterEnd = false;
    if (!isSpace(c)) top.fresh = false;
    if (c === 34) {
      // quoted identifier (the shape keeps them): an operand
      const e = text.indexOf('"', i + 1);
      i = e < 0 ? n : e + 1;
      continue;
    }
    if (isOpChar(c)) {
      const start = i;
      i++;
      while (i < n && isOpChar(text.charCodeAt(i))) i++;
      top.ops += operatorTokens(text, start, i);
      continue;
    }
    i++;
    switch (c) {
      case 40: // (
      case 91: // [
        stack.push((top = newGroup('p')));
        break;
      case 41: // )
      case 93: // ]
        // an unclosed CASE inside is a syntax error; close it with its group
        while (stack.length > 1 && top.kind === 'c') close();
        if (stack.length > 1) close();
        break;
      case 44: // ,
        separate();
        break;
      case 59: // ;
        endStatement();
        break;
      case 58: // :: is a cast, one level per cast
        if (text.charCodeAt(i) === 58) { top.ops++; i++; }
        break;
      default:
        break;
    }
  }
  endStatement();
  return deepest;
}

/** Throws StatementTooComplexError when `sql` could nest deeper than `limit` (see above). */
export function assertNotTooComplex(sql: string, limit: number = DEFAULT_MAX_DEPTH): void {
  const depth = statementDepth(sql);
  if (depth > limit) throw new StatementTooComplexError(depth, limit);
}
