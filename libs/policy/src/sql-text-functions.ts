import { constantString, only, stringsOf } from './parse-tree.js';
import { relationName } from './table-readers.js';

/**
 * Functions that run SQL they are given as text (or build from text): the one list the guardrails
 * (sql-analyzer.ts analyses the SQL inside; a name nobody can resolve statically is dynamic) and
 * masking share; table-readers.ts says which columns a whole-table reader carries. `sql-text-functions.catalog.spec.ts` enumerates the functions of a real Postgres
 * with every available extension installed and fails when one that takes SQL or a table name is
 * neither here nor in its reviewed list.
 *
 * A call's SQL is known statically only when the arguments that carry it are constants; anything
 * else (a column, a parameter, a named argument) makes the call dynamic: the policy's dynamicSql
 * action, fail closed.
 */

type Node = Record<string, unknown>;

/**
 * What a call reads:
 *  - `query`: runs the SQL in some of its arguments (query_to_xml, ts_rewrite, dblink, crosstab, …);
 *  - `table`: reads every column of every row of the table its argument names (table_to_xml); the
 *    read itself is recorded by table-readers.ts, this list only requires the name to be a constant;
 *  - `schema` / `database`: reads every table of a schema / of the database — no list of tables is
 *    known statically, so such a call is always dynamic;
 *  - `cursor`: reads an open cursor whose query was analysed when it was declared (cursor_to_xml).
 */
export type SqlTextReads = 'query' | 'table' | 'schema' | 'database' | 'cursor';

export interface SqlTextFunction {
  /** lower-case function name */
  name: string;
  /**
   * when set the name is generic: calls qualified with another schema do not count. Unqualified
   * calls still do — with the schema on the search_path they are this function.
   */
  schema?: string;
  /** where it comes from: `core` or the extension's name */
  source: string;
  reads: SqlTextReads;
  /**
   * The SQL texts the call runs, given the call's arguments as parse nodes: the texts, `null` when
   * an argument that carries SQL is not a constant. `query` and `table` functions only.
   */
  sql?: (args: unknown[]) => string[] | null;
}

/** The SQL text of argument `i` of a call, each given index; null when one is not a constant string. */
function constants(args: unknown[], indexes: number[]): string[] | null {
  const out: string[] = [];
  for (const i of indexes) {
    if (args[i] === undefined) return null;
    const s = constantString(args[i]);
    if (s === null) return null;
    out.push(s);
  }
  return out;
}

const arg = (i: number) => (args: unknown[]) => constants(args, [i]);

/** dblink(sql), dblink(conn, sql), dblink(conn, sql, fail_on_error): the SQL is the last argument that is not a boolean. */
function lastNonBoolean(args: unknown[]): string[] | null {
  for (let i = args.length - 1; i >= 0; i--) {
    const a = only(args[i]);
    if (!(a && a[0] === 'A_Const' && a[1].boolval !== undefined)) return constants(args, [i]);
  }
  return null;
}

function isIntegerConstant(node: unknown): boolean {
  const e = only(node);
  return e !== null && e[0] === 'A_Const' && e[1].ival !== undefined;
}

/**
 * table_to_xml(tbl regclass, …) reads `tbl` whole. table-readers.ts records the table (and, for
 * masking, every column of it); here a name that is not a constant relation name — an OID, a
 * column, a parameter — makes the call dynamic: a `tables` guardrail could not see which table.
 */
function wholeTable(args: unknown[]): string[] | null {
  const e = only(args[0]);
  const value = e && e[0] === 'TypeCast' && isRegclass(e[1].typeName) ? constantString(e[1].arg) : args[0] === undefined ? null : constantString(args[0]);
  return value !== null && relationName(value) !== null ? [] : null;
}

function isRegclass(typeName: unknown): boolean {
  const names = stringsOf((typeName as Node | undefined)?.names);
  return (names[names.length - 1] ?? '').toLowerCase() === 'regclass';
}

/** crosstab(source_sql), crosstab(source_sql, category_sql), crosstab(source_sql, num_values int). */
function crosstab(args: unknown[]): string[] | null {
  if (args.length === 2 && isIntegerConstant(args[1])) return constants(args, [0]);
  return constants(args, args.length >= 2 ? [0, 1] : [0]);
}

/**
 * connectby(relname, keyid, parent_keyid, [orderby,] start_with, max_depth [, branch_delim]) pastes
 * its name arguments into `SELECT key, parent FROM relname WHERE …` unquoted (tablefunc.c), so the
 * SQL it runs is built here the same way and analysed: whatever was smuggled into a name shows up.
 */
function connectby(args: unknown[]): string[] | null {
  if (args.length < 5) return null;
  const withOrder = args.length === 7 || (args.length === 6 && !isIntegerConstant(args[4]));
  const parts = constants(args, withOrder ? [0, 1, 2, 3, 4] : [0, 1, 2, 3]);
  if (parts === null) return null;
  const [rel, key, parent] = parts;
  const start = parts[withOrder ? 4 : 3];
  const order = withOrder ? ` ORDER BY ${parts[3]}` : '';
  return [`SELECT ${key}, ${parent} FROM ${rel} WHERE ${parent} = '${start.replace(/'/g, "''")}' AND ${key} IS NOT NULL AND ${key} <> ${parent}${order}`];
}

/** xpath_table(key, document, relation, xpaths, criteria) runs `SELECT key, document FROM relation WHERE criteria` (xml2). */
function xpathTable(args: unknown[]): string[] | null {
  const p = constants(args, [0, 1, 2, 4]);
  return p === null ? null : [`SELECT ${p[0]}, ${p[1]} FROM ${p[2]} WHERE ${p[3]}`];
}

const fn = (name: string, source: string, reads: SqlTextReads, sql?: SqlTextFunction['sql'], schema?: string): SqlTextFunction =>
  ({ name, source, reads, sql, ...(schema ? { schema } : {}) });

export const SQL_TEXT_FUNCTIONS: readonly SqlTextFunction[] = Object.freeze([
  // core (src/backend/utils/adt/xml.c, tsvector_op.c, tsquery_rewrite.c)
  fn('query_to_xml', 'core', 'query', arg(0)),
  fn('query_to_xmlschema', 'core', 'query', arg(0)),
  fn('query_to_xml_and_xmlschema', 'core', 'query', arg(0)),
  fn('ts_stat', 'core', 'query', arg(0)),
  // ts_rewrite(query tsquery, select text) runs `select`; the 3-argument form takes tsqueries only
  fn('ts_rewrite', 'core', 'query', (args) => (args.length === 2 ? constants(args, [1]) : [])),
  fn('table_to_xml', 'core', 'table', wholeTable),
  fn('table_to_xmlschema', 'core', 'table', wholeTable),
  fn('table_to_xml_and_xmlschema', 'core', 'table', wholeTable),
  fn('schema_to_xml', 'core', 'schema'),
  fn('schema_to_xmlschema', 'core', 'schema'),
  fn('schema_to_xml_and_xmlschema', 'core', 'schema'),
  fn('database_to_xml', 'core', 'database'),
  fn('database_to_xmlschema', 'core', 'database'),
  fn('database_to_xml_and_xmlschema', 'core', 'database'),
  fn('cursor_to_xml', 'core', 'cursor'),
  fn('cursor_to_xmlschema', 'core', 'cursor'),
  // contrib: dblink can connect back to this very database, so what it runs counts like local SQL
  fn('dblink', 'dblink', 'query', lastNonBoolean),
  fn('dblink_exec', 'dblink', 'query', lastNonBoolean),
  fn('dblink_open', 'dblink', 'query', lastNonBoolean),
  fn('dblink_send_query', 'dblink', 'query', lastNonBoolean),
  fn('crosstab', 'tablefunc', 'query', crosstab),
  fn('crosstab2', 'tablefunc', 'query', arg(0)),
  fn('crosstab3', 'tablefunc', 'query', arg(0)),
  fn('crosstab4', 'tablefunc', 'query', arg(0)),
  fn('connectby', 'tablefunc', 'query', connectby),
  fn('xpath_table', 'xml2', 'query', xpathTable),
  // well-known third-party extensions
  fn('pg_background_launch', 'pg_background', 'query', arg(0)),
  fn('query_export_to_s3', 'aws_s3', 'query', arg(0)),
  fn('replicate_ddl_command', 'pglogical', 'query', arg(0)),
  fn('run_command_on_workers', 'citus', 'query', arg(0)),
  fn('run_command_on_all_nodes', 'citus', 'query', arg(0)),
  fn('run_command_on_coordinator', 'citus', 'query', arg(0)),
  // pg_cron's names are generic: `other.schedule(…)` is not it. schedule(name, cron, sql) / schedule(cron, sql)
  fn('schedule', 'pg_cron', 'query', lastNonBoolean, 'cron'),
  fn('schedule_in_database', 'pg_cron', 'query', arg(2), 'cron'),
  fn('alter_job', 'pg_cron', 'query', arg(2), 'cron'),
]);

const BY_NAME = new Map<string, SqlTextFunction[]>();
for (const f of SQL_TEXT_FUNCTIONS) BY_NAME.set(f.name, [...(BY_NAME.get(f.name) ?? []), f]);

/** The list entry a call to `schema.name` (schema null when unqualified) is, if any. */
export function sqlTextFunction(name: { schema: string | null; name: string }): SqlTextFunction | undefined {
  return BY_NAME.get(name.name)?.find((f) => f.schema === undefined || name.schema === null || f.schema === name.schema);
}

/** What one call of a listed function runs: SQL texts to analyse, or why it cannot be analysed. */
export type SqlTextCall = { sql: string[] } | { dynamic: string };

/** The SQL a call of `f` with these arguments runs (see SqlTextFunction). */
export function sqlOfCall(f: SqlTextFunction, args: unknown[]): SqlTextCall {
  if (f.reads === 'schema' || f.reads === 'database') {
    return { dynamic: `${f.name} reads every table of a ${f.reads}, which cannot be analysed` };
  }
  if (f.reads === 'cursor') return { sql: [] };
  if (args.some((a) => only(a)?.[0] === 'NamedArgExpr')) {
    return { dynamic: `SQL passed to ${f.name} by named argument cannot be analysed` };
  }
  const sql = f.sql?.(args) ?? null;
  if (sql === null) return { dynamic: `SQL passed to ${f.name} is built at run time and cannot be analysed` };
  return { sql };
}
