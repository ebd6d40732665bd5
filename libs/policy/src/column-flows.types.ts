import type { QualifiedName } from './qualified-name.js';

/** A column value let out other than as a plain result column (column-flows.ts finds them). */
export interface ColumnFlow {
  /** lower-cased column name; `*` for every column of `relation` (a whole-row reference or `t.*`) */
  column: string;
  /** the relation the reference names, when it is qualified (alias resolved) or a whole row; null otherwise */
  relation: QualifiedName | null;
  /**
   * expression / copy: the value leaves inside an expression, or is copied into a table, view,
   * variable or routine. rename: not a way out by itself — the column goes on under the name `as`
   * (a subquery's or CTE's alias, an alias column list), and uses of that name count as its uses.
   */
  how: FlowKind;
  as?: string;
  /** read: the function that reads the whole table (table-readers.ts); call: the code that receives it; shadow: the statement */
  via?: string;
}

/**
 * read: a function reads every column of `relation` (table-readers.ts); `*` of ANY_RELATION: of any table.
 * call: passed to a function, operator or cast that may have side effects, filters included.
 * shadow: the statement would make a side-effect-free built-in's name run user code (side-effect-free.ts).
 */
export type FlowKind = 'expression' | 'copy' | 'rename' | 'read' | 'call' | 'shadow';
