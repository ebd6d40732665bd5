import { createRequire } from 'node:module';

/**
 * The shell parser: mvdan-sh, the JavaScript build of Go's mvdan.cc/sh parser (the one behind shfmt),
 * in its bash variant. Chosen over `bash-parser` (and its fork), which rejects process substitution
 * (`<(…)`) and reads a here-document's body as commands, and over `shell-quote`, which only splits
 * words. mvdan-sh parses here-docs, `$(…)`, backticks, `<(…)`, `[[ ]]`, arithmetic, functions and
 * `case` as bash does; it is synchronous, pure JavaScript (no native code, no WebAssembly).
 *
 * mvdan-sh ships no TypeScript types; the interfaces below describe the parts of its AST that this
 * library reads (names as in mvdan.cc/sh/v3/syntax). Every access goes through shell-analyzer.ts,
 * which checks node types with `NodeType` before reading fields.
 *
 * Bounds: input length and nesting depth are checked before parsing (the parser recurses per
 * nesting level and overflows the stack a few thousand levels down); a parser that failed is
 * replaced, so a failed parse leaves no state behind.
 */

/**
 * The AST, as plain objects: `type` is the Go type name (`CallExpr`, `Word`, `Lit`, …) and the
 * other fields are the exported fields of mvdan.cc/sh/v3/syntax (positions left out). It is copied
 * out of the parser's GopherJS objects in one pass (toPlain below): reading the parser's JavaScript
 * wrappers costs tens of microseconds per property, which made a few thousand words take seconds.
 */
export interface ShNode { type: string }
export interface ShWord extends ShNode { Parts: ShNode[] }
export interface ShLit extends ShNode { Value: string }
export interface ShSglQuoted extends ShNode { Value: string; Dollar: boolean }
export interface ShDblQuoted extends ShNode { Parts: ShNode[]; Dollar: boolean }
export interface ShCmdSubst extends ShNode { Stmts: ShStmt[] }
export interface ShProcSubst extends ShNode { Op: number; Stmts: ShStmt[] }
export interface ShAssign extends ShNode { Naked: boolean; Name: ShLit | null; Value: ShWord | null; Array: ShNode | null; Append: boolean }
export interface ShRedirect extends ShNode { Op: number; N: ShLit | null; Word: ShWord | null; Hdoc: ShWord | null }
export interface ShStmt extends ShNode { Cmd: ShNode | null; Redirs: ShRedirect[]; Negated: boolean; Background: boolean; Coprocess: boolean }
export interface ShFile extends ShNode { Stmts: ShStmt[] }
export interface ShCallExpr extends ShNode { Assigns: ShAssign[]; Args: ShWord[] }
export interface ShBinaryCmd extends ShNode { Op: number; X: ShStmt; Y: ShStmt }
export interface ShBlock extends ShNode { Stmts: ShStmt[] }
export interface ShFuncDecl extends ShNode { Name: ShLit; Body: ShStmt }
export interface ShDeclClause extends ShNode { Variant: ShLit; Args: ShAssign[] }
export interface ShTimeClause extends ShNode { Stmt: ShStmt | null }

/** Calls `fn` on every node below `node` (not `node` itself), depth first; `fn` returning false skips a node's children. */
export function walkShell(node: ShNode, fn: (n: ShNode) => boolean): void {
  const visit = (v: unknown): void => {
    if (Array.isArray(v)) { for (const x of v) visit(x); return; }
    if (v && typeof v === 'object' && typeof (v as ShNode).type === 'string') {
      if (fn(v as ShNode)) children(v as ShNode);
    }
  };
  const children = (n: ShNode): void => {
    for (const k in n) if (k !== 'type') visit((n as unknown as Record<string, unknown>)[k]);
  };
  children(node);
}

// ---- copying the GopherJS objects out (mvdan-sh 0.10.1; pinned: this reads its runtime's layout) ----

interface GoType { kind: number; string: string; elem?: GoType; fields?: GoField[]; nil?: unknown }
interface GoField { name: string; prop: string; exported: boolean; typ: GoType }

// reflect.Kind numbers, which GopherJS uses for its types
const K_INTERFACE = 20;
const K_PTR = 22;
const K_SLICE = 23;
const K_STRING = 24;
const K_STRUCT = 25;
const SKIPPED_FIELDS = new Set(['Comments', 'Last']);

class LayoutError extends Error {}

function goString(s: string): string {
  // GopherJS keeps Go strings as one JavaScript character per UTF-8 byte
  // eslint-disable-next-line no-control-regex
  return /^[\x00-\x7f]*$/.test(s) ? s : Buffer.from(s, 'latin1').toString('utf8');
}

function plainValue(v: unknown, t: GoType): unknown {
  switch (t.kind) {
    case K_PTR:
      if (v === null || v === undefined || v === t.nil) return null;
      return plainStruct(v as Record<string, unknown>, t);
    case K_INTERFACE: {
      const ctor = (v as { constructor?: GoType } | null)?.constructor;
      if (!v || !ctor || typeof ctor.string !== 'string' || ctor.kind !== K_PTR) return null;
      return plainValue(v, ctor);
    }
    case K_SLICE: {
      const sl = v as { $array: unknown[]; $offset: number; $length: number } | null;
      if (!sl || !sl.$array) return [];
      const out: unknown[] = [];
      for (let i = 0; i < sl.$length; i++) out.push(plainValue(sl.$array[sl.$offset + i], t.elem!));
      return out;
    }
    case K_STRING: return goString(String(v));
    case K_STRUCT: return undefined;
    default: return typeof v === 'number' || typeof v === 'boolean' ? v : undefined;
  }
}

function plainStruct(obj: Record<string, unknown>, ptr: GoType): ShNode {
  const st = ptr.elem;
  if (!st || st.kind !== K_STRUCT || !Array.isArray(st.fields)) throw new LayoutError(`unexpected parser type layout: ${ptr.string}`);
  const node: Record<string, unknown> = { type: ptr.string.replace(/^\*syntax\./, '') };
  for (const f of st.fields) {
    if (!f.exported || SKIPPED_FIELDS.has(f.name) || f.typ.kind === K_STRUCT) continue;
    node[f.name] = plainValue(obj[f.prop], f.typ);
  }
  return node as unknown as ShNode;
}

function toPlain(wrapper: unknown): ShFile {
  const inner = (wrapper as { __internal_object__?: { constructor?: GoType } } | null)?.__internal_object__;
  const ctor = inner?.constructor;
  if (!inner || !ctor || ctor.string !== '*syntax.File') throw new LayoutError('unexpected parser result layout');
  return plainStruct(inner as unknown as Record<string, unknown>, ctor) as ShFile;
}

interface SyntaxModule {
  NewParser(...opts: unknown[]): { Parse(src: string, name: string): unknown };
  IsIncomplete(err: unknown): boolean;
  KeepComments(on: boolean): unknown;
  Variant(lang: unknown): unknown;
  LangBash: unknown;
}

let syntaxModule: SyntaxModule | null = null;
/** One parser, reused (creating one costs more than parsing a line); dropped after any failure. */
let parser: ReturnType<SyntaxModule['NewParser']> | null = null;

/** The mvdan-sh syntax module, loaded on first use (about 1.5 MB of JavaScript). */
export function shellSyntax(): SyntaxModule {
  if (!syntaxModule) {
    const require = createRequire(import.meta.url);
    syntaxModule = (require('mvdan-sh') as { syntax: SyntaxModule }).syntax;
  }
  return syntaxModule;
}

/**
 * Parsing costs about 30 µs per statement on a loaded 2-core machine: 16 KiB bounds one text to a
 * few hundred milliseconds at worst (a policy's maxCommandBytes may raise it).
 */
export const DEFAULT_MAX_COMMAND_BYTES = 16 * 1024;
/** Nesting levels a line may have before it is refused unparsed (brackets, quotes, substitutions). */
export const DEFAULT_MAX_SHELL_DEPTH = 64;

/** Why a text was not parsed or did not parse. */
export type ShellParseFailure =
  | { kind: 'too-large'; bytes: number; limit: number }
  | { kind: 'too-complex'; depth: number; limit: number; message?: string }
  | { kind: 'syntax'; message: string; incomplete: boolean }
  | { kind: 'fault'; message: string };

/**
 * An estimate (from above, for real input) of the nesting depth the parser recurses through:
 * brackets, braces, `$(`, double quotes and backticks outside single quotes open a level, their
 * closers close it (a quote closing unwinds brackets left open inside it). Command separators
 * (`;`, `&`, `|`, newlines) count too, one level per SEPARATORS_PER_LEVEL: a pipeline or `&&` chain
 * is a nested tree to the parser, and every statement costs parse time.
 */
export function shellNestingDepth(src: string): number {
  const stack: number[] = [];
  let max = 0;
  let separators = 0;
  let single = false;
  for (let i = 0; i < src.length; i++) {
    const c = src.charCodeAt(i);
    if (single) { if (c === 39) single = false; continue; }
    switch (c) {
      case 92: i++; break; // backslash
      case 39: single = true; break;
      case 40: case 123: case 91: stack.push(c); break; // ( { [
      case 41: case 125: case 93: // ) } ]
        if (stack.length && stack[stack.length - 1] !== 34 && stack[stack.length - 1] !== 96) stack.pop();
        break;
      case 59: case 38: case 124: case 10: separators++; break; // ; & | newline
      case 34: case 96: { // " `
        const at = stack.lastIndexOf(c);
        if (at >= 0) stack.length = at;
        else stack.push(c);
        break;
      }
      default: break;
    }
    if (stack.length > max) max = stack.length;
  }
  return Math.max(max, Math.ceil(separators / SEPARATORS_PER_LEVEL));
}

/** With the default depth of 64: at most 1,024 command separators in one text. */
const SEPARATORS_PER_LEVEL = 16;

/** Parses bash source, or says why not. Never throws. */
export function parseShell(src: string, maxBytes = DEFAULT_MAX_COMMAND_BYTES, maxDepth = DEFAULT_MAX_SHELL_DEPTH): ShFile | ShellParseFailure {
  if (src.length > maxBytes || (src.length * 3 > maxBytes && Buffer.byteLength(src, 'utf8') > maxBytes)) {
    return { kind: 'too-large', bytes: Buffer.byteLength(src, 'utf8'), limit: maxBytes };
  }
  const depth = shellNestingDepth(src);
  if (depth > maxDepth) return { kind: 'too-complex', depth, limit: maxDepth };
  let sx: SyntaxModule;
  try {
    sx = shellSyntax();
  } catch (err) {
    return { kind: 'fault', message: `shell parser unavailable: ${(err as Error).message}` };
  }
  let result: unknown;
  try {
    parser ??= sx.NewParser(sx.KeepComments(false), sx.Variant(sx.LangBash));
    result = parser.Parse(src, '');
  } catch (err) {
    // a parser that threw is not trusted with the next text (a stack overflow may leave it half-way)
    parser = null;
    if (err instanceof RangeError || !(err && typeof err === 'object' && 'Error' in err)) {
      return { kind: 'fault', message: err instanceof Error ? err.message : String(err) };
    }
    const e = err as { Error(): string };
    let incomplete = false;
    try { incomplete = sx.IsIncomplete(err); } catch { /* not a parse error */ }
    return { kind: 'syntax', message: String(e.Error()), incomplete };
  }
  try {
    return toPlain(result);
  } catch (err) {
    return { kind: 'fault', message: err instanceof LayoutError ? err.message : `copying the parse tree failed: ${(err as Error).message}` };
  }
}

export function isParseFailure(x: ShFile | ShellParseFailure): x is ShellParseFailure {
  return typeof (x as ShellParseFailure).kind === 'string';
}
