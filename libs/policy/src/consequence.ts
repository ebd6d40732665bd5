import type { ConsequenceCheck, MeasurePlan } from './guardrails.js';
import { parseQualifiedName } from './qualified-name.js';
import { only } from './parse-tree.js';
import { parseSql } from './sql-parser.js';

/**
 * Consequence rules after the gateway measured a write (docs/consequence-approvals.md): which rule the
 * count trips, whether a re-measured count is still what the approver saw, and the query that shows
 * the approver a sample of the rows. Pure: the gateway runs the statements.
 */

/** What one measuring run found: the command tag's count (`tag` plans) or per-table row changes (`stats` plans). */
export interface Measurement {
  /** rows the statement's command tag reports */
  count?: number;
  /** rows inserted + updated + deleted in the run, per table (`schema.name`) */
  perTable?: { table: string; rows: number }[];
}

export interface ConsequenceJudgement {
  /** the rule the count tripped (block before approval, then the first), or null: under every threshold */
  check: ConsequenceCheck | null;
  /** rows the measured write changed (under the rule that tripped; else the largest count any rule saw) */
  rows: number;
  /** the tables it changed rows of (stats plans) or names (tag plans) */
  tables: string[];
}

/** Rows from a command tag that counts them: `DELETE 5`, `UPDATE 5`, `INSERT 0 5`, `MERGE 5`; null otherwise. */
export function rowsOfTag(tag: string): number | null {
  const m = /^(?:DELETE|UPDATE|MERGE|INSERT \d+) (\d+)$/.exec(tag);
  return m ? Number(m[1]) : null;
}

function tableMatches(pattern: { schema: string | null; name: string }, table: string): boolean {
  const t = parseQualifiedName(table);
  return pattern.name === t.name && (pattern.schema === null || t.schema === null || pattern.schema === t.schema);
}

/** Rows a check counts in a measurement. */
export function rowsFor(check: ConsequenceCheck, m: Measurement): number {
  if (m.perTable) {
    let n = 0;
    for (const t of m.perTable) if (!check.tables || check.tables.some((p) => tableMatches(p, t.table))) n += t.rows;
    return n;
  }
  return m.count ?? 0;
}

/** The rule a measurement trips, if any. */
export function judgeConsequence(plan: MeasurePlan, m: Measurement): ConsequenceJudgement {
  let tripped: ConsequenceCheck | null = null;
  let trippedRows = 0;
  let most = 0;
  for (const c of plan.checks) {
    const rows = rowsFor(c, m);
    if (rows > most) most = rows;
    if (rows > c.over && (tripped === null || (c.action === 'block' && tripped.action !== 'block'))) {
      tripped = c;
      trippedRows = rows;
    }
  }
  const tables = m.perTable ? m.perTable.filter((t) => t.rows > 0).map((t) => t.table) : plan.tables;
  return { check: tripped, rows: tripped ? trippedRows : most, tables };
}

/** Whether a re-measured count is close enough to the approved one to run without asking again. */
export function withinTolerance(check: Pick<ConsequenceCheck, 'tolerance'>, approved: number, measured: number): boolean {
  const diff = Math.abs(measured - approved);
  const t = check.tolerance;
  return 'rows' in t ? diff <= t.rows : diff <= (approved * t.percent) / 100;
}

/**
 * Per-table rows inserted, updated and deleted so far in the session's transaction (its open
 * subtransactions included). Run before and after a write, the difference is what it changed, through
 * CTEs, DO blocks, triggers and cascades alike.
 */
export const TRANSACTION_WRITES_SQL =
  "SELECT pg_catalog.quote_ident(schemaname) || '.' || pg_catalog.quote_ident(relname), (n_tup_ins + n_tup_upd + n_tup_del)::text FROM pg_catalog.pg_stat_xact_user_tables WHERE n_tup_ins + n_tup_upd + n_tup_del > 0";

/** Differences of two TRANSACTION_WRITES_SQL results (after − before), tables with no change left out. */
export function writesBetween(before: [string, string][], after: [string, string][]): { table: string; rows: number }[] {
  const was = new Map(before.map(([t, n]) => [t, Number(n)]));
  const out: { table: string; rows: number }[] = [];
  for (const [t, n] of after) {
    const rows = Number(n) - (was.get(t) ?? 0);
    if (rows > 0) out.push({ table: t.replace(/"/g, ''), rows });
  }
  return out;
}

/**
 * A query that runs `sql` (one INSERT, UPDATE or DELETE) and returns the first `limit` rows it
 * changed: `WITH affected AS (<sql> RETURNING *) SELECT * FROM affected LIMIT n` — the write runs
 * whole (a data-modifying CTE always does) but only the sample comes back. The statement's own
 * RETURNING list is kept when it has one. Null when the text is not one such statement (MERGE has
 * no RETURNING before Postgres 17).
 */
export function sampleQuery(sql: string, limit: number): string | null {
  if (limit <= 0) return null;
  let tree: { stmts?: { stmt: unknown; stmt_location?: number; stmt_len?: number }[] };
  try {
    tree = parseSql(sql) as typeof tree;
  } catch {
    return null;
  }
  const stmts = tree.stmts ?? [];
  if (stmts.length !== 1) return null;
  const node = only(stmts[0].stmt);
  if (!node || !['DeleteStmt', 'UpdateStmt', 'InsertStmt'].includes(node[0])) return null;
  const bytes = Buffer.from(sql, 'utf8');
  const start = Number(stmts[0].stmt_location ?? 0);
  const len = Number(stmts[0].stmt_len ?? 0);
  const text = bytes.subarray(start, len > 0 ? start + len : bytes.length).toString('utf8').replace(/;\s*$/, '');
  const clause = node[1].returningClause as { exprs?: unknown[] } | undefined;
  const returning = (Array.isArray(clause?.exprs) && clause.exprs.length > 0) || (Array.isArray(node[1].returningList) && node[1].returningList.length > 0);
  // newlines: a trailing `-- comment` in the text must not swallow what follows
  return `WITH portcullis_affected AS (\n${text}\n${returning ? '' : 'RETURNING *\n'}) SELECT * FROM portcullis_affected LIMIT ${Math.floor(limit)}`;
}
