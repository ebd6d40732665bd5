import type { ColumnFlow } from './column-flows.types.js';
import { only } from './parse-tree.js';
import type { QualifiedName } from './qualified-name.js';

/**
 * Functions that read a whole table, or every table, and hand the values back in a form the
 * server cannot trace to a column (an XML document, a text report, raw page bytes, a decoded WAL
 * record). For masking they are whole-row reads: `table_to_xml('customers', …)` carries every column
 * of customers, masked ones included; a function that may read any table (a cursor's, a schema's,
 * the database's, a server file that may be table storage, logical decoding of every change) carries
 * every masked column there is.
 *
 * Functions that run SQL given as text (query_to_xml, ts_stat, ts_rewrite, crosstab, dblink…) are
 * not here: the analyser parses their constant SQL like any other statement (sql-analyzer.ts).
 */

/** The marker relation of a read that may reach any table: it matches every masked column. */
export const ANY_RELATION: QualifiedName = Object.freeze({ schema: null, name: '*' }) as QualifiedName;

/** Functions that read every column of the table their argument names (argument index, parameter name). */
const READS_TABLE_ARGUMENT: Record<string, { index: number; param: string }> = {
  table_to_xml: { index: 0, param: 'tbl' },
  table_to_xmlschema: { index: 0, param: 'tbl' },
  table_to_xml_and_xmlschema: { index: 0, param: 'tbl' },
  // tablefunc: the tree of a table's rows, keyed by columns it names
  connectby: { index: 0, param: 'relname' },
  // dblink: SQL text built from a local row's values
  dblink_build_sql_insert: { index: 0, param: 'relname' },
  dblink_build_sql_update: { index: 0, param: 'relname' },
  // pageinspect: the raw bytes of a table's pages
  get_raw_page: { index: 0, param: 'relname' },
};

/** Functions that may read any table. */
const READS_ANY_TABLE = new Set([
  // a cursor's query was another statement's; a schema or database is every table in it
  'cursor_to_xml', 'cursor_to_xmlschema',
  'schema_to_xml', 'schema_to_xmlschema', 'schema_to_xml_and_xmlschema',
  'database_to_xml', 'database_to_xmlschema', 'database_to_xml_and_xmlschema',
  // server files (a table's storage is one) and large objects made from them
  'pg_read_file', 'pg_read_binary_file', 'lo_import',
  // logical decoding: every row any transaction changed, in the plugin's text
  'pg_logical_slot_get_changes', 'pg_logical_slot_peek_changes',
  'pg_logical_slot_get_binary_changes', 'pg_logical_slot_peek_binary_changes',
  // pageinspect over pages taken some other way
  'heap_page_items', 'heap_page_item_attrs', 'tuple_data_split',
]);

/**
 * Catalogs that hold sample values of every analysed column of every table (ANALYZE keeps the most
 * common values and histogram bounds, extended statistics whole MCV rows): a read of one is a read of
 * every column of any table. Names match in any schema (fail closed).
 */
const STATISTICS_RELATIONS: ReadonlySet<string> = new Set([
  'pg_statistic', 'pg_statistic_ext_data', 'pg_stats', 'pg_stats_ext', 'pg_stats_ext_exprs',
]);

/** The whole-table reads of a relation named in FROM (a statistics catalog), as column flows. */
export function relationReads(name: QualifiedName): ColumnFlow[] {
  return STATISTICS_RELATIONS.has(name.name) ? [{ column: '*', relation: ANY_RELATION, how: 'read', via: name.name }] : [];
}

/**
 * The whole-table reads of one function call, as column flows (`*` of the table, or of ANY_RELATION
 * when the table is not a constant name), and the table it names when it does. Empty for any other
 * function. Names match in any schema: a user's function of the same name is treated alike (fail closed).
 */
export function tableReads(name: QualifiedName, args: unknown[]): { flows: ColumnFlow[]; table: QualifiedName | null } {
  const fn = name.name;
  if (READS_ANY_TABLE.has(fn)) return { flows: [{ column: '*', relation: ANY_RELATION, how: 'read', via: fn }], table: null };
  const at = READS_TABLE_ARGUMENT[fn];
  if (!at) return { flows: [], table: null };
  const arg = argument(args, at.index, at.param);
  const text = arg === undefined ? null : constantName(arg);
  const table = text === null ? null : relationName(text);
  return { flows: [{ column: '*', relation: table ?? ANY_RELATION, how: 'read', via: fn }], table };
}

/** The argument at `index`, or the one named `param` (`tbl => 'x'`); undefined when it is not there. */
function argument(args: unknown[], index: number, param: string): unknown {
  for (const a of args) {
    const e = only(a);
    if (e?.[0] === 'NamedArgExpr' && String(e[1].name ?? '').toLowerCase() === param) return e[1].arg;
  }
  const positional = args[index];
  return only(positional)?.[0] === 'NamedArgExpr' ? undefined : positional;
}

/** A string constant, also cast (`'customers'::regclass`); null for anything computed. */
function constantName(node: unknown): string | null {
  const e = only(node);
  if (!e) return null;
  if (e[0] === 'A_Const') {
    const s = (e[1].sval as Record<string, unknown> | undefined)?.sval;
    return typeof s === 'string' ? s : null;
  }
  if (e[0] === 'TypeCast') return constantName(e[1].arg);
  return null;
}

/**
 * A relation name as regclass reads it: dot-separated identifiers, unquoted ones lower-cased,
 * `"…"` kept as written. null when it does not read as a name (the read then counts for any table).
 */
export function relationName(text: string): QualifiedName | null {
  const parts: string[] = [];
  let i = 0;
  const s = text.trim();
  while (i <= s.length) {
    let part = '';
    if (s[i] === '"') {
      i++;
      for (;;) {
        if (i >= s.length) return null;
        if (s[i] === '"') {
          if (s[i + 1] === '"') { part += '"'; i += 2; continue; }
          i++;
          break;
        }
        part += s[i++];
      }
    } else {
      const m = /^[^".\s]+/.exec(s.slice(i));
      if (!m) return null;
      part = m[0].toLowerCase();
      i += m[0].length;
    }
    parts.push(part);
    while (s[i] === ' ') i++;
    if (i >= s.length) break;
    if (s[i] !== '.') return null;
    i++;
    while (s[i] === ' ') i++;
  }
  if (parts.length === 0 || parts.length > 3) return null;
  return { schema: parts.length >= 2 ? parts[parts.length - 2]! : null, name: parts[parts.length - 1]! };
}
