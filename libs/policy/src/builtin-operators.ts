import { only, stringsOf, type ParseNode } from './parse-tree.js';

/**
 * Operators are functions: `a ### b` calls whatever function `CREATE OPERATOR ###` bound, and the
 * parse tree only names the symbol. What the analyser can know statically:
 *  - an operator created through the gateway was checked when it was created (function-bindings.ts:
 *    binding a guarded function is calling it);
 *  - a symbol that no built-in or contrib operator has can only be a user's operator, made by
 *    someone, some time, over some function the text does not show; likewise `OPERATOR(s.op)` with a
 *    schema other than pg_catalog. Such a use cannot be analysed: it gets the `dynamicSql` action.
 *  - a built-in symbol can still name a user's operator for other argument types made outside the
 *    gateway (pg_catalog comes first on the search_path, so not for built-in argument types). Like a
 *    view or trigger that already exists in the target, that object is its own: documented, not seen.
 *
 * BUILTIN_OPERATORS is every operator name in pg_catalog (Postgres 15) and of the contrib extensions
 * (hstore, ltree, pg_trgm, cube, intarray, …); builtin-operators.catalog.spec.ts checks it covers the
 * test server's.
 */
export const BUILTIN_OPERATORS: ReadonlySet<string> = new Set([
  // pg_catalog
  '!!', '!~', '!~*', '!~~', '!~~*', '#', '##', '#-', '#>', '#>>', '%', '&', '&&', '&<', '&<|', '&>', '*', '*<', '*<=',
  '*<>', '*=', '*>', '*>=', '+', '-', '->', '->>', '-|-', '/', '<', '<->', '<<', '<<=', '<<|', '<=', '<>', '<@', '<^',
  '=', '>', '>=', '>>', '>>=', '>^', '?', '?#', '?&', '?-', '?-|', '?|', '?||', '@', '@-@', '@>', '@?', '@@', '@@@', '^',
  '^@', '|', '|&>', '|/', '|>>', '||', '||/', '~', '~*', '~<=~', '~<~', '~=', '~>=~', '~>~', '~~', '~~*',
  // contrib extensions
  '#<#', '#<=#', '#=', '#>#', '#>=#', '%#', '%%', '%>', '%>>', '<#>', '<%', '<->>', '<->>>', '<<%', '<<->', '<<<->',
  '<=>', '<@>', '?<@', '?@', '?@>', '?~', '^<@', '^?', '^@>', '^~', '~>',
]);

/** Why a use of the operator `names` (`[op]` or `[schema, op]`) cannot be analysed; null when it is a built-in one. */
export function unknownOperator(names: string[]): string | null {
  if (names.length === 0) return null;
  const op = names[names.length - 1]!;
  const schema = names.length >= 2 ? names[names.length - 2]!.toLowerCase() : null;
  if (schema !== null && schema !== 'pg_catalog') {
    return `operator ${schema}.${op} is not a built-in operator: the function it runs cannot be analysed`;
  }
  if (!BUILTIN_OPERATORS.has(op)) return `operator ${op} is not a built-in operator: the function it runs cannot be analysed`;
  return null;
}

/** A_Expr kinds whose `name` is an operator (BETWEEN's is a keyword; it expands to built-in comparisons). */
const OPERATOR_EXPRS = new Set([
  'AEXPR_OP', 'AEXPR_OP_ANY', 'AEXPR_OP_ALL', 'AEXPR_DISTINCT', 'AEXPR_NOT_DISTINCT', 'AEXPR_NULLIF', 'AEXPR_IN',
  'AEXPR_LIKE', 'AEXPR_ILIKE', 'AEXPR_SIMILAR',
]);

/**
 * The operators a parse node uses, by name: expressions, `x op ANY (SELECT …)`, `ORDER BY x USING
 * op`, and `EXCLUDE (c WITH op)` constraints (the operator runs on every insert).
 */
export function operatorsOf(type: string, body: ParseNode): string[][] {
  switch (type) {
    case 'A_Expr': return OPERATOR_EXPRS.has(String(body.kind)) ? [stringsOf(body.name)] : [];
    case 'SubLink': return Array.isArray(body.operName) ? [stringsOf(body.operName)] : [];
    case 'SortBy': return Array.isArray(body.useOp) ? [stringsOf(body.useOp)] : [];
    case 'Constraint': {
      const out: string[][] = [];
      for (const pair of (body.exclusions as unknown[]) ?? []) {
        const items = only(pair)?.[1].items as unknown[] | undefined;
        const op = only(items?.[1]);
        if (op && op[0] === 'List') out.push(stringsOf(op[1].items));
      }
      return out;
    }
    default: return [];
  }
}
