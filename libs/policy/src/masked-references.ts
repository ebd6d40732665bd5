/**
 * What a statement names, for deciding whether its error and notice texts may carry a masked value.
 * Postgres puts values into messages — `invalid input syntax for type integer: "123-45-6789"` from
 * `ssn::int`, `Key (email)=(ada@example.com) already exists`, a `RAISE NOTICE` of an argument — so a
 * statement that reads or writes a masked column gets its error and notice texts withheld by the
 * gateway (relay-machine.ts; server-messages.ts builds the replacement).
 *
 * "Names" is deliberately wide: every identifier in the parse tree (column references, column lists,
 * index and constraint columns, ALTER TABLE … ALTER COLUMN, aliases, function names), string literals
 * excepted; and a statement that takes whole rows without naming columns (`*`, INSERT without a column
 * list, COPY of a whole table, and a write that hands existing rows to triggers and errors: UPDATE, DELETE,
 * MERGE, INSERT … ON CONFLICT) touches every column of its tables. Withholding an error text too many
 * is a worse message; one too few is a leak.
 */
export interface StatementNames {
  /** lower-cased identifiers */
  identifiers: Set<string>;
  /** whether it takes whole rows of its tables without naming their columns */
  wholeRows: boolean;
}

type Node = Record<string, unknown>;

const MAX_DEPTH = 4000;

/** Adds the names of one parse tree (a statement) to `into`. */
export function collectNames(tree: unknown, into: StatementNames): void {
  walk(tree, into, 0);
}

function walk(v: unknown, into: StatementNames, depth: number): void {
  // past the depth the analyser itself fails closed; counting the statement as touching is the safe side
  if (depth > MAX_DEPTH) {
    into.wholeRows = true;
    return;
  }
  if (v === null || typeof v !== 'object') return;
  if (Array.isArray(v)) {
    for (const x of v) walk(x, into, depth + 1);
    return;
  }
  for (const key in v as Node) {
    const child = (v as Node)[key];
    if (typeof child === 'string') {
      into.identifiers.add(child.toLowerCase());
      continue;
    }
    if (child === null || typeof child !== 'object') continue;
    // a string literal is a value, not a name
    if (key === 'A_Const') continue;
    if (key === 'A_Star') into.wholeRows = true;
    else if (key === 'InsertStmt' && (!Array.isArray((child as Node).cols) || (child as Node).onConflictClause !== undefined)) into.wholeRows = true;
    // an UPDATE / DELETE / MERGE (and INSERT … ON CONFLICT) hands whole existing rows to the table's
    // triggers and rules (OLD, NEW) and to errors ("Failing row contains (…)") without naming a column
    else if (key === 'UpdateStmt' || key === 'DeleteStmt' || key === 'MergeStmt') into.wholeRows = true;
    else if (key === 'CopyStmt' && (child as Node).query === undefined && !Array.isArray((child as Node).attlist)) into.wholeRows = true;
    walk(child, into, depth + 1);
  }
}
