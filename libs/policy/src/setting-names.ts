import { only, stringsOf, type ParseNode } from './parse-tree.js';

/**
 * pg_settings is a view whose UPDATE rule runs set_config(name, setting, false) for each row, and
 * `set_config(name, …) FROM pg_settings WHERE name = '…'` (what pg_dump sends first) calls it with
 * the names of the rows read. Either sets exactly the settings the rows are named after: known
 * when the WHERE pins `name` to literals. These helpers read that from the parse tree.
 */

/** The pg_settings view, unqualified (pg_catalog is searched first) or as pg_catalog.pg_settings. */
export function isPgSettings(relation: unknown): boolean {
  if (!relation || typeof relation !== 'object') return false;
  const r = relation as ParseNode;
  return r.relname === 'pg_settings' && (r.schemaname === undefined || r.schemaname === 'pg_catalog');
}

/** The names a FROM/UPDATE target may be referred to by: its alias, else its name. */
export function relationNames(relation: ParseNode): Set<string> {
  const alias = (relation.alias as ParseNode | undefined)?.aliasname;
  return new Set([typeof alias === 'string' ? alias : String(relation.relname)]);
}

/**
 * The `FROM pg_settings` of a SELECT whose FROM is that view alone: the names it may be called by
 * there and the setting names its WHERE allows (null: any). Null when the FROM is anything else.
 */
export function pgSettingsScope(select: ParseNode): { relation: Set<string>; names: string[] | null } | null {
  const from = select.fromClause as unknown[] | undefined;
  if (!from || from.length !== 1) return null;
  const e = only(from[0]);
  if (!e || e[0] !== 'RangeVar' || !isPgSettings(e[1])) return null;
  const relation = relationNames(e[1]);
  return { relation, names: fixedNames(select.whereClause, relation) };
}

/** True for a reference to the `name` column: `name`, or `<relation>.name` for one of `relation`. */
export function isNameColumn(node: unknown, relation: ReadonlySet<string>): boolean {
  const e = only(node);
  if (!e || e[0] !== 'ColumnRef') return false;
  const raw = (e[1].fields as unknown[]) ?? [];
  const fields = stringsOf(raw);
  if (fields.length !== raw.length) return false; // `*` (A_Star) is not a name
  if (fields.length === 1) return fields[0] === 'name';
  return fields.length === 2 && fields[1] === 'name' && relation.has(fields[0]);
}

function literal(node: unknown): string | null {
  const e = only(node);
  return e && e[0] === 'A_Const' && e[1].sval !== undefined ? String((e[1].sval as ParseNode).sval ?? '') : null;
}

function literals(items: unknown): string[] | null {
  if (!Array.isArray(items)) return null;
  const out: string[] = [];
  for (const i of items) {
    const v = literal(i);
    if (v === null) return null;
    out.push(v);
  }
  return out;
}

/** `=`, spelt plainly or as OPERATOR(pg_catalog.=). */
function isEquals(name: unknown): boolean {
  const parts = stringsOf(name);
  return parts[parts.length - 1] === '=' && (parts.length === 1 || (parts.length === 2 && parts[0] === 'pg_catalog'));
}

/**
 * The values `where` allows the `name` column to take, or null when it does not pin them to
 * literals: `name = 'x'`, `name IN ('x', 'y')`, `name = ANY (ARRAY['x'])`, an AND with one such
 * condition, an OR of them.
 */
export function fixedNames(where: unknown, relation: ReadonlySet<string>): string[] | null {
  const e = only(where);
  if (!e) return null;
  const [t, n] = e;
  if (t === 'BoolExpr') {
    const parts = ((n.args as unknown[]) ?? []).map((a) => fixedNames(a, relation));
    // every row meets each conjunct: one that pins the name is enough
    if (n.boolop === 'AND_EXPR') return parts.find((p) => p !== null) ?? null;
    if (n.boolop === 'OR_EXPR') return parts.every((p) => p !== null) ? [...new Set(parts.flat() as string[])] : null;
    return null;
  }
  if (t !== 'A_Expr' || !isEquals(n.name)) return null;
  if (n.kind === 'AEXPR_OP') {
    const l = isNameColumn(n.lexpr, relation) ? literal(n.rexpr) : isNameColumn(n.rexpr, relation) ? literal(n.lexpr) : null;
    return l === null ? null : [l];
  }
  if (!isNameColumn(n.lexpr, relation)) return null;
  if (n.kind === 'AEXPR_IN') {
    const list = only(n.rexpr);
    return list && list[0] === 'List' ? literals(list[1].items) : literals(n.rexpr);
  }
  if (n.kind === 'AEXPR_OP_ANY') {
    const arr = only(n.rexpr);
    return arr && arr[0] === 'A_ArrayExpr' ? literals(arr[1].elements) : null;
  }
  return null;
}
