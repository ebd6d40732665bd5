/** A node of libpg-query's JSON parse tree: `{TypeName: {…fields}}`, or a bare struct of fields. */
export type ParseNode = Record<string, unknown>;

/** The one `[type, body]` of a `{Type: body}` node; null for anything else (null, a scalar, an array). */
export function only(node: unknown): [string, ParseNode] | null {
  if (!node || typeof node !== 'object' || Array.isArray(node)) return null;
  for (const k in node as ParseNode) return [k, (node as ParseNode)[k] as ParseNode];
  return null;
}
