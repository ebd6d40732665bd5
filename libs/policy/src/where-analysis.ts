/**
 * Does a DELETE/UPDATE/MERGE condition bound the rows it touches? A condition is *unbounded* when
 * it is absent, folds to true (`true`, `1=1`, `'t'`, `id = id`, `x OR 1=1`), or does not look at
 * the row at all (`now() > '2020-01-01'`, `$1`, `EXISTS (SELECT 1)`): a row-independent condition
 * hits every row or none, and the gateway cannot tell which. Conditions that fold to false or NULL
 * touch nothing and are bounded.
 *
 * Reading a literal's value is reported through `onLiteral` so the decision cache knows the result
 * depends on literal values (`WHERE 1 = 1` and `WHERE 1 = 2` have the same shape).
 */

type Node = Record<string, unknown>;

/** Classification of an expression: a known constant, row-dependent, or row-independent but unknown. */
type Value =
  | { t: 'bool'; v: boolean }
  | { t: 'null' }
  | { t: 'num'; v: number }
  | { t: 'str'; v: string }
  | { t: 'row' }
  | { t: 'opaque' };

const ROW: Value = { t: 'row' };
const OPAQUE: Value = { t: 'opaque' };
const TRUE: Value = { t: 'bool', v: true };
const FALSE: Value = { t: 'bool', v: false };
const NULL: Value = { t: 'null' };

export interface WhereContext {
  /** names (lower case) by which the target table can be referred to: its name and alias */
  targetNames: ReadonlySet<string>;
  /** PL/pgSQL variables in scope: a ColumnRef naming one is a constant, not a column */
  plVars?: ReadonlySet<string>;
  onLiteral: () => void;
}

function only(node: unknown): [string, Node] | null {
  if (!node || typeof node !== 'object') return null;
  for (const k in node as Node) return [k, (node as Node)[k] as Node];
  return null;
}

function parseBoolText(s: string): boolean | null {
  const t = s.trim().toLowerCase();
  if (!t) return null;
  // Postgres accepts any unique prefix of true/false/yes/no, on/off, 1/0
  if ('true'.startsWith(t) || 'yes'.startsWith(t) || t === 'on' || t === '1') return true;
  if ('false'.startsWith(t) || 'no'.startsWith(t) || t === 'off' || t === 'of' || t === '0') return false;
  return null;
}

function constValue(c: Node, ctx: WhereContext): Value {
  ctx.onLiteral();
  if (c.isnull) return NULL;
  if (c.ival) return { t: 'num', v: Number((c.ival as Node).ival ?? 0) };
  if (c.fval) return { t: 'num', v: Number((c.fval as Node).fval ?? 0) };
  if (c.boolval) return { t: 'bool', v: Boolean((c.boolval as Node).boolval ?? false) };
  if (c.sval) return { t: 'str', v: String((c.sval as Node).sval ?? '') };
  return OPAQUE;
}

function typeNameOf(tc: Node): string {
  const names = ((tc.typeName as Node | undefined)?.names as unknown[] | undefined) ?? [];
  const last = only(names[names.length - 1]);
  return last && last[0] === 'String' ? String(last[1].sval ?? '').toLowerCase() : '';
}

const NUMERIC_TYPES = new Set(['int2', 'int4', 'int8', 'int', 'integer', 'smallint', 'bigint', 'numeric', 'float4', 'float8', 'decimal', 'real']);

function cast(v: Value, type: string): Value {
  if (v.t === 'row' || v.t === 'opaque' || v.t === 'null') return v;
  if (type === 'bool' || type === 'boolean') {
    if (v.t === 'bool') return v;
    if (v.t === 'str') { const b = parseBoolText(v.v); return b === null ? OPAQUE : { t: 'bool', v: b }; }
    if (v.t === 'num') return { t: 'bool', v: v.v !== 0 };
  }
  if (NUMERIC_TYPES.has(type)) {
    if (v.t === 'num') return v;
    if (v.t === 'str' && /^\s*[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?\s*$/i.test(v.v)) return { t: 'num', v: Number(v.v) };
  }
  if (type === 'text' || type === 'varchar') {
    if (v.t === 'str') return v;
  }
  return OPAQUE;
}

/** Whether the subtree holds a column reference that could be the target row's. */
function refersToRow(node: unknown, ctx: WhereContext, inSubquery: boolean): boolean {
  if (!node || typeof node !== 'object') return false;
  if (Array.isArray(node)) return node.some((n) => refersToRow(n, ctx, inSubquery));
  for (const k in node as Node) {
    const v = (node as Node)[k];
    if (k === 'ColumnRef') {
      if (isPlVar(v as Node, ctx)) continue;
      if (!inSubquery) return true;
      // in a subquery, an unqualified name may be correlated with the target; a name qualified by
      // another table is not
      const fields = ((v as Node).fields as unknown[]) ?? [];
      if (fields.length < 2) return true;
      const q = only(fields[fields.length - 2]);
      if (!q || q[0] !== 'String' || ctx.targetNames.has(String(q[1].sval).toLowerCase())) return true;
      continue;
    }
    if (k === 'CurrentOfExpr') return true;
    if (refersToRow(v, ctx, inSubquery || k === 'SubLink')) return true;
  }
  return false;
}

function isPlVar(colref: Node, ctx: WhereContext): boolean {
  if (!ctx.plVars || ctx.plVars.size === 0) return false;
  const first = only(((colref.fields as unknown[]) ?? [])[0]);
  return !!first && first[0] === 'String' && ctx.plVars.has(String(first[1].sval).toLowerCase());
}

/** Structural equality ignoring source positions; reports a literal read when it compares constants. */
function sameExpr(a: unknown, b: unknown, ctx: WhereContext): boolean {
  if (a === b) return true;
  if (typeof a !== typeof b || !a || !b || typeof a !== 'object') return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    return a.every((x, i) => sameExpr(x, b[i], ctx));
  }
  const ka = Object.keys(a as Node).filter((k) => k !== 'location');
  const kb = Object.keys(b as Node).filter((k) => k !== 'location');
  if (ka.length !== kb.length) return false;
  for (const k of ka) {
    if (k === 'A_Const' || k === 'FuncCall' || k === 'SubLink') {
      if (k === 'A_Const') ctx.onLiteral();
      // volatile calls and subqueries are never "the same value twice"
      if (k !== 'A_Const') return false;
    }
    if (!sameExpr((a as Node)[k], (b as Node)[k], ctx)) return false;
  }
  return true;
}

function compare(op: string, l: Value, r: Value): Value {
  if (l.t === 'null' || r.t === 'null') return NULL;
  // an unknown-typed string literal is coerced to the other side's type
  if (l.t === 'str' && r.t === 'num') l = cast(l, 'numeric');
  if (r.t === 'str' && l.t === 'num') r = cast(r, 'numeric');
  if (l.t === 'str' && r.t === 'bool') l = cast(l, 'bool');
  if (r.t === 'str' && l.t === 'bool') r = cast(r, 'bool');
  if (l.t !== r.t || l.t === 'opaque' || l.t === 'row' || r.t === 'opaque' || r.t === 'row') return OPAQUE;
  const a = (l as { v: number | string | boolean }).v;
  const b = (r as { v: number | string | boolean }).v;
  switch (op) {
    case '=': return a === b ? TRUE : FALSE;
    case '<>': case '!=': return a !== b ? TRUE : FALSE;
  }
  if (l.t === 'str') return OPAQUE; // ordering of strings depends on the collation
  switch (op) {
    case '<': return a < b ? TRUE : FALSE;
    case '>': return a > b ? TRUE : FALSE;
    case '<=': return a <= b ? TRUE : FALSE;
    case '>=': return a >= b ? TRUE : FALSE;
  }
  return OPAQUE;
}

function opName(expr: Node): string {
  const names = (expr.name as unknown[]) ?? [];
  const last = only(names[names.length - 1]);
  return last && last[0] === 'String' ? String(last[1].sval) : '';
}

function truthy(v: Value): Value {
  if (v.t === 'str' || v.t === 'num') return cast(v, 'bool');
  return v;
}

function evalExpr(node: unknown, ctx: WhereContext): Value {
  const e = only(node);
  if (!e) return OPAQUE;
  const [type, n] = e;
  switch (type) {
    case 'A_Const': return constValue(n, ctx);
    case 'TypeCast': {
      const inner = evalExpr(n.arg, ctx);
      return cast(inner, typeNameOf(n));
    }
    case 'ColumnRef': return isPlVar(n, ctx) ? OPAQUE : ROW;
    case 'CurrentOfExpr': return ROW;
    case 'ParamRef': return OPAQUE;
    case 'BoolExpr': {
      const args = ((n.args as unknown[]) ?? []).map((a) => truthy(evalExpr(a, ctx)));
      if (n.boolop === 'NOT_EXPR') {
        const a = args[0] ?? OPAQUE;
        return a.t === 'bool' ? { t: 'bool', v: !a.v } : a.t === 'null' ? NULL : a.t === 'row' ? ROW : OPAQUE;
      }
      if (n.boolop === 'AND_EXPR') {
        if (args.some((a) => a.t === 'bool' && !a.v)) return FALSE;
        if (args.some((a) => a.t === 'null')) return NULL;
        if (args.some((a) => a.t === 'row')) return ROW;
        if (args.every((a) => a.t === 'bool')) return TRUE;
        return OPAQUE;
      }
      // OR: any true disjunct selects every row; a row-independent unknown one may do so
      if (args.some((a) => a.t === 'bool' && a.v)) return TRUE;
      if (args.some((a) => a.t === 'opaque' || a.t === 'str' || a.t === 'num')) return OPAQUE;
      if (args.some((a) => a.t === 'row')) return ROW;
      return args.some((a) => a.t === 'null') ? NULL : FALSE;
    }
    case 'A_Expr': {
      const kind = n.kind;
      const op = opName(n);
      // Decide row-dependence before reading any literal, so `id = 5` does not depend on the 5.
      if (refersToRow(n.lexpr, ctx, false) || refersToRow(n.rexpr, ctx, false)) {
        // `x = x`, `x >= x`, `x IS NOT DISTINCT FROM x` hold for every row (every non-null one for =)
        const tautologyOp = (kind === 'AEXPR_OP' && (op === '=' || op === '<=' || op === '>=')) || kind === 'AEXPR_NOT_DISTINCT';
        if (tautologyOp && n.lexpr !== undefined && n.rexpr !== undefined && sameExpr(n.lexpr, n.rexpr, ctx)) return TRUE;
        return ROW;
      }
      if (kind === 'AEXPR_OP' && n.lexpr !== undefined && n.rexpr !== undefined) {
        return compare(op, evalExpr(n.lexpr, ctx), evalExpr(n.rexpr, ctx));
      }
      return OPAQUE;
    }
    case 'NullTest': {
      const a = evalExpr(n.arg, ctx);
      if (a.t === 'row' || a.t === 'opaque') return a;
      const isNull = a.t === 'null';
      return { t: 'bool', v: n.nulltesttype === 'IS_NULL' ? isNull : !isNull };
    }
    case 'BooleanTest': {
      const a = truthy(evalExpr(n.arg, ctx));
      if (a.t === 'row' || a.t === 'opaque') return a;
      const v = a.t === 'bool' ? a.v : null;
      switch (n.booltesttype) {
        case 'IS_TRUE': return { t: 'bool', v: v === true };
        case 'IS_NOT_TRUE': return { t: 'bool', v: v !== true };
        case 'IS_FALSE': return { t: 'bool', v: v === false };
        case 'IS_NOT_FALSE': return { t: 'bool', v: v !== false };
        case 'IS_UNKNOWN': return { t: 'bool', v: v === null };
        case 'IS_NOT_UNKNOWN': return { t: 'bool', v: v !== null };
      }
      return OPAQUE;
    }
    default:
      // function calls, CASE, COALESCE, subqueries, …: row-dependent if they look at the row
      return refersToRow(node, ctx, false) ? ROW : OPAQUE;
  }
}

/** Whether a WHERE (or MERGE ON) condition leaves the statement unbounded. */
export function isUnbounded(where: unknown, ctx: WhereContext): boolean {
  if (where === undefined || where === null) return true;
  const v = truthy(evalExpr(where, ctx));
  return (v.t === 'bool' && v.v) || v.t === 'opaque';
}
