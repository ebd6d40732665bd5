/** A node of libpg-query's JSON parse tree: `{TypeName: {…fields}}`, or a bare struct of fields. */
export type ParseNode = Record<string, unknown>;

/** The one `[type, body]` of a `{Type: body}` node; null for anything else (null, a scalar, an array). */
export function only(node: unknown): [string, ParseNode] | null {
  if (!node || typeof node !== 'object' || Array.isArray(node)) return null;
  for (const k in node as ParseNode) return [k, (node as ParseNode)[k] as ParseNode];
  return null;
}

/** The `sval`s of a list of `String` nodes (a qualified name, a DefElem's list). */
export function stringsOf(list: unknown): string[] {
  if (!Array.isArray(list)) return [];
  const out: string[] = [];
  for (const item of list) {
    const e = only(item);
    if (e && e[0] === 'String') out.push(String(e[1].sval ?? ''));
  }
  return out;
}

/** The value of an expression that is a constant string: 'x', 'x'::text, 'a' || 'b'. */
export function constantString(node: unknown): string | null {
  const e = only(node);
  if (!e) return null;
  const [t, n] = e;
  if (t === 'A_Const') return n.sval !== undefined ? String((n.sval as ParseNode).sval ?? '') : null;
  if (t === 'TypeCast') {
    const names = stringsOf((n.typeName as ParseNode | undefined)?.names);
    const type = (names[names.length - 1] ?? '').toLowerCase();
    return type === 'text' || type === 'varchar' ? constantString(n.arg) : null;
  }
  if (t === 'A_Expr' && n.kind === 'AEXPR_OP' && stringsOf(n.name).join('.') === '||') {
    const l = constantString(n.lexpr);
    const r = l === null ? null : constantString(n.rexpr);
    return l !== null && r !== null ? l + r : null;
  }
  return null;
}
