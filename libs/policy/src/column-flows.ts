import { SqlAnalysisError } from './errors.js';
import { only } from './parse-tree.js';
import { shadowsBuiltin, unsafeCall } from './side-effect-free.js';
import type { QualifiedName } from './qualified-name.js';
import type { ColumnFlow, FlowKind } from './column-flows.types.js';
import { ANY_RELATION } from './table-readers.js';

/**
 * Where a statement lets column values out other than as plain columns of its result.
 *
 * The gateway masks a result by its RowDescription: a column a masking rule names is masked when the
 * server says the output column *is* that table column. An expression over it (`upper(ssn)`,
 * `ssn || ''`, `ssn::text`, `max(ssn)`, `row_to_json(c)`) is a new column the server cannot trace
 * back, and a copy (`INSERT … SELECT ssn`, `CREATE TABLE AS`, `UPDATE … SET note = ssn`, a view, a
 * function body) moves the value somewhere it can be read under another name later. This walker
 * lists every column reference in such places; the policy refuses the statement when one of them
 * names a masked column (guardrails.ts decide). Filters (WHERE, JOIN ON, HAVING, ORDER BY, EXISTS/IN
 * subqueries) are not listed as such: masking hides values in results, it cannot stop inference by
 * filtering — but a filter that hands the value to code with side effects (a user-defined function,
 * set_config, pg_notify, …) lets it out: every reference in such a call's arguments is listed,
 * wherever the call is (`call`, side-effect-free.ts).
 */
// (the types live in column-flows.types.ts: table-readers.ts uses them too)
export type { ColumnFlow, FlowKind } from './column-flows.types.js';

type Node = Record<string, unknown>;

/**
 * How the target list of a SELECT is treated:
 * - top: the result the client gets; a bare column is traced by the server (RowDescription), fine
 * - inner: a subquery in FROM or a CTE; a bare column keeps its name, unless it is renamed
 * - strict: every reference counts (a copy, a value subquery, a renamed subquery, a routine body)
 * - filter: EXISTS / IN / ANY subqueries: nothing is let out
 */
type Ctx = 'top' | 'inner' | 'strict' | 'filter';

/**
 * The arms of a UNION / INTERSECT / EXCEPT: the server traces none of its result columns (tableOid 0)
 * and names them after the leftmost arm, so an alias there or any column of another arm would
 * reach the client under a name no rule knows.
 */
type Arm = 'left' | 'other' | null;

function list(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

const MAX_DEPTH = 4000;

/** Past MAX_DEPTH the walk stops with an error (the analysis then fails closed), never with a shorter list. */
function tooDeep(depth: number): boolean {
  if (depth > MAX_DEPTH) throw new SqlAnalysisError('statement nested too deeply to trace its columns');
  return false;
}

/**
 * What a FROM item name stands for, when a whole row of it (`t`, `t.*`) is let out: a table's
 * every column; the columns a subquery or CTE exposes (its result columns that are plain references);
 * a function's result (computed: its arguments are checked where they are); or, for a join, its sides.
 */
type FromItem =
  | { kind: 'table'; rel: QualifiedName }
  | { kind: 'query'; select: unknown }
  | { kind: 'function' }
  | { kind: 'join'; items: unknown[] };

class FlowFinder {
  readonly flows: ColumnFlow[] = [];
  /** FROM item names in the statement (alias, or a table's own name) */
  private readonly names = new Map<string, FromItem>();
  /** the FROM clause of each SELECT being walked, innermost last: what an unqualified `*` expands to */
  private readonly scopes: unknown[][] = [];

  constructor(root: unknown) {
    this.collectNames(root, 0);
  }

  private collectNames(v: unknown, depth: number): void {
    if (v === null || typeof v !== 'object' || tooDeep(depth)) return;
    if (Array.isArray(v)) {
      for (const x of v) this.collectNames(x, depth + 1);
      return;
    }
    for (const key in v as Node) {
      const child = (v as Node)[key] as Node;
      if (child === null || typeof child !== 'object') continue;
      const alias = (child.alias as Node | undefined)?.aliasname;
      const name = typeof alias === 'string' ? alias.toLowerCase() : null;
      if (key === 'RangeVar' || (key === 'relation' && typeof child.relname === 'string')) {
        const rel = tableOf(child);
        this.names.set(name ?? rel.name, { kind: 'table', rel });
      } else if (key === 'RangeSubselect' && name) this.names.set(name, { kind: 'query', select: child.subquery });
      else if (key === 'RangeFunction' && name) this.names.set(name, { kind: 'function' });
      else if (key === 'JoinExpr' && name) this.names.set(name, { kind: 'join', items: [child.larg, child.rarg] });
      else if (key === 'CommonTableExpr' && typeof child.ctename === 'string') this.names.set(child.ctename.toLowerCase(), { kind: 'query', select: child.ctequery });
      this.collectNames(child, depth + 1);
    }
  }

  private add(column: string, relation: QualifiedName | null, how: FlowKind, as?: string): void {
    const f: ColumnFlow = as === undefined ? { column, relation, how } : { column, relation, how, as };
    if (how === 'call' && this.via !== undefined) f.via = this.via;
    this.flows.push(f);
  }

  /** the call whose arguments `calls` is listing */
  private via: string | undefined;

  /**
   * Every call in the statement that may have side effects, wherever it is (filters included): the
   * references in its arguments reach it. Statements that would let a built-in's name run user code.
   */
  calls(v: unknown, depth: number): void {
    if (v === null || typeof v !== 'object' || tooDeep(depth)) return;
    if (Array.isArray(v)) {
      for (const x of v) this.calls(x, depth + 1);
      return;
    }
    for (const key in v as Node) {
      const child = (v as Node)[key] as Node;
      if (child === null || typeof child !== 'object') continue;
      if (!Array.isArray(child)) {
        // CALL's FuncCall comes unwrapped
        const type = key === 'funccall' ? 'FuncCall' : key;
        const shadow = shadowsBuiltin(type, child);
        if (shadow) this.flows.push({ column: '*', relation: ANY_RELATION, how: 'shadow', via: shadow });
        const call = unsafeCall(type, child);
        if (call !== null) {
          const saved = this.via;
          this.via = call;
          try {
            this.expression(type === 'FuncCall' ? child.args : type === 'A_Expr' ? [child.lexpr, child.rexpr] : child.arg, 'call', depth + 1);
          } finally {
            this.via = saved;
          }
        }
      }
      this.calls(child, depth + 1);
    }
  }

  /** `a.b.c` → the table a column reference is qualified with (alias resolved), or null. */
  private qualifier(parts: string[]): QualifiedName | null {
    if (parts.length < 2) return null;
    const q = parts[parts.length - 2]!;
    if (parts.length === 2) {
      const item = this.names.get(q);
      if (item) return item.kind === 'table' ? item.rel : null;
      // not a FROM item of the statement: a trigger's or rule's NEW / OLD, a PL/pgSQL row variable, a
      // table named without FROM (an error in Postgres) — a row of any table
      return ANY_RELATION;
    }
    return { schema: parts.length >= 3 ? parts[parts.length - 3]! : null, name: q };
  }

  /** A ColumnRef: its lower-cased parts, and whether it ends in `*`. */
  private columnRef(ref: Node): { parts: string[]; star: boolean } {
    const parts: string[] = [];
    let star = false;
    for (const f of list(ref.fields)) {
      const e = only(f);
      if (e?.[0] === 'String') parts.push(String(e[1].sval ?? '').toLowerCase());
      else if (e?.[0] === 'A_Star') star = true;
    }
    return { parts, star };
  }

  /** A reference that carries a value out: a column, a whole row (`t`, `t.*`, `*`). */
  private reference(ref: Node, how: FlowKind): void {
    const { parts, star } = this.columnRef(ref);
    if (star) {
      if (parts.length) this.wholeRow(this.names.get(parts[parts.length - 1]!), how, 0);
      else for (const item of this.scopes[this.scopes.length - 1] ?? []) this.fromItemRow(item, how, 0);
    } else if (parts.length === 1 && this.names.has(parts[0]!)) {
      // `SELECT c FROM customers c`: the whole row (a column of that name would win in Postgres: counted too)
      this.wholeRow(this.names.get(parts[0]!), how, 0);
      this.add(parts[0]!, null, how);
    } else if (parts.length === 1 && (parts[0] === 'new' || parts[0] === 'old')) {
      // a trigger's or rule's row, of whatever table it is attached to
      this.add('*', ANY_RELATION, how);
      this.add(parts[0]!, null, how);
    } else if (parts.length) {
      this.add(parts[parts.length - 1]!, this.qualifier(parts), how);
    }
  }

  /** Every column a whole row of `item` carries (unknown item: any column). */
  private wholeRow(item: FromItem | undefined, how: FlowKind, depth: number): void {
    if (depth > 32) return this.add('*', null, how);
    if (!item) return this.add('*', null, how);
    switch (item.kind) {
      case 'table':
        return this.add('*', item.rel, how);
      case 'function':
        return;
      case 'join':
        for (const i of item.items) this.fromItemRow(i, how, depth + 1);
        return;
      case 'query':
        this.exposed(item.select, how, depth + 1);
    }
  }

  /** The whole row of one FROM clause entry. */
  private fromItemRow(node: unknown, how: FlowKind, depth: number): void {
    const e = only(node);
    if (!e) return;
    const [type, n] = e;
    if (type === 'RangeVar') this.add('*', tableOf(n), how);
    else if (type === 'RangeSubselect') this.exposed(n.subquery, how, depth + 1);
    else if (type === 'JoinExpr') for (const i of [n.larg, n.rarg]) this.fromItemRow(i, how, depth + 1);
    else if (type === 'RangeTableSample') this.fromItemRow(n.relation, how, depth + 1);
    else if (type !== 'RangeFunction') this.add('*', null, how);
  }

  /** The columns a subquery or CTE lets its reader see as plain references (its expressions are checked where they are). */
  private exposed(select: unknown, how: FlowKind, depth: number): void {
    const e = only(select);
    if (!e || depth > 32) return this.add('*', null, how);
    const s = e[1];
    if (e[0] !== 'SelectStmt') {
      // a data-modifying CTE: its RETURNING list
      for (const t of list((s.returningClause as Node | undefined)?.exprs ?? s.returningList)) this.exposedTarget(t, s, how, depth);
      return;
    }
    if (s.op && s.op !== 'SETOP_NONE') {
      for (const arm of [s.larg, s.rarg]) if (arm) this.exposed({ SelectStmt: arm }, how, depth + 1);
      return;
    }
    for (const t of list(s.targetList)) this.exposedTarget(t, s, how, depth);
  }

  private exposedTarget(t: unknown, s: Node, how: FlowKind, depth: number): void {
    const val = only((only(t)?.[1] as Node | undefined)?.val);
    if (val?.[0] !== 'ColumnRef') return;
    const { parts, star } = this.columnRef(val[1]);
    if (star && parts.length === 0) for (const item of list(s.fromClause)) this.fromItemRow(item, how, depth + 1);
    else if (star || (parts.length === 1 && this.names.has(parts[0]!))) this.wholeRow(this.names.get(parts[parts.length - 1]!), how, depth + 1);
    else this.add(parts[parts.length - 1]!, this.qualifier(parts), how);
  }

  /** Every reference inside an expression whose value is let out. */
  private expression(v: unknown, how: FlowKind, depth: number): void {
    if (v === null || typeof v !== 'object' || tooDeep(depth)) return;
    if (Array.isArray(v)) {
      for (const x of v) this.expression(x, how, depth + 1);
      return;
    }
    for (const key in v as Node) {
      const child = (v as Node)[key] as Node;
      if (child === null || typeof child !== 'object') continue;
      if (key === 'ColumnRef') this.reference(child, how);
      else if (key === 'SubLink') {
        this.expression(child.testexpr, how, depth + 1);
        const t = String(child.subLinkType ?? '');
        if (t !== 'EXISTS_SUBLINK' && t !== 'ANY_SUBLINK' && t !== 'ALL_SUBLINK') this.select(child.subselect, 'strict', how, depth + 1);
      } else if (key === 'SelectStmt') this.select(v, 'strict', how, depth + 1);
      else this.expression(child, how, depth + 1);
    }
  }

  /** A statement, as the top level of a text (or, `strict`, inside a routine body or another string). */
  statement(stmt: unknown, ctx: 'top' | 'strict', depth = 0): void {
    const e = only(stmt);
    if (!e || tooDeep(depth)) return;
    const [type, s] = e;
    const how: FlowKind = ctx === 'strict' ? 'copy' : 'expression';
    switch (type) {
      case 'SelectStmt':
        this.select(stmt, ctx, how, depth + 1);
        return;
      case 'InsertStmt':
        this.ctes(s.withClause, ctx, how, depth);
        this.select(s.selectStmt, 'strict', 'copy', depth + 1);
        // ON CONFLICT DO UPDATE SET col = …: assignments like UPDATE's
        this.assignments((s.onConflictClause as Node | undefined)?.targetList, depth);
        this.returning(s, ctx, how, depth);
        return;
      case 'UpdateStmt':
        this.ctes(s.withClause, ctx, how, depth);
        this.assignments(s.targetList, depth);
        this.from(s.fromClause, ctx, how, depth);
        this.returning(s, ctx, how, depth);
        return;
      case 'DeleteStmt':
        this.ctes(s.withClause, ctx, how, depth);
        this.from(s.usingClause, ctx, how, depth);
        this.returning(s, ctx, how, depth);
        return;
      case 'MergeStmt':
        this.ctes(s.withClause, ctx, how, depth);
        this.from([s.sourceRelation], ctx, how, depth);
        for (const w of list(s.mergeWhenClauses)) {
          const c = only(w)?.[1];
          if (!c) continue;
          this.assignments(c.targetList, depth);
          this.expression(c.values, 'copy', depth + 1);
        }
        this.returning(s, ctx, how, depth);
        return;
      case 'CreateTableAsStmt': // CREATE TABLE AS, CREATE MATERIALIZED VIEW
      case 'ViewStmt':
      case 'RuleStmt':
        for (const q of [s.query, ...list(s.actions)]) this.statement(q, 'strict', depth + 1);
        return;
      case 'CopyStmt': {
        // COPY (query) TO STDOUT is a result like any other; to a file or program it is a copy
        const toClient = s.filename === undefined && !s.is_program;
        if (s.query !== undefined) this.statement(s.query, toClient ? ctx : 'strict', depth + 1);
        else if (!toClient && !s.is_from && s.relation) {
          // COPY table [(cols)] TO a server file or program: a copy of those columns (every one without a list)
          const rel = tableOf(s.relation as Node);
          const cols = names(s.attlist);
          for (const c of cols ?? ['*']) this.add(c, rel, 'copy');
        }
        return;
      }
      case 'AlterTableStmt':
        this.alterTable(s, depth);
        return;
      case 'ExplainStmt': // EXPLAIN ANALYZE runs it; a plain EXPLAIN is counted the same way (fail closed)
      case 'PrepareStmt':
      case 'DeclareCursorStmt':
        this.statement(s.query, ctx, depth + 1);
        return;
    }
  }

  /**
   * ALTER TABLE commands that compute a column from the others for every existing row: a generated
   * column's expression (ADD COLUMN … GENERATED ALWAYS AS, SET EXPRESSION AS) and ALTER COLUMN … TYPE
   * … USING — copies, except of a column into itself (`ALTER COLUMN ssn TYPE text USING trim(ssn)`).
   */
  private alterTable(s: Node, depth: number): void {
    const rel = s.relation ? tableOf(s.relation as Node) : null;
    for (const c of list(s.cmds)) {
      const cmd = only(c)?.[1];
      if (!cmd) continue;
      const from = this.flows.length;
      const def = only(cmd.def);
      if (cmd.subtype === 'AT_AddColumn' && def?.[0] === 'ColumnDef') {
        for (const k of list(def[1].constraints)) {
          const con = only(k)?.[1];
          if (con?.contype === 'CONSTR_GENERATED') this.expression(con.raw_expr, 'copy', depth + 1);
        }
      } else if (cmd.subtype === 'AT_AlterColumnType' && def?.[0] === 'ColumnDef') {
        this.expression(def[1].raw_default, 'copy', depth + 1);
      } else if (cmd.subtype === 'AT_SetExpression') {
        this.expression(cmd.def, 'copy', depth + 1);
      } else continue;
      // unqualified references are columns of the altered table
      for (let i = from; i < this.flows.length; i++) {
        const f = this.flows[i]!;
        if (f.relation === null && rel) f.relation = rel;
      }
      const into = cmd.subtype === 'AT_AlterColumnType' && typeof cmd.name === 'string' ? cmd.name.toLowerCase() : null;
      if (into !== null) for (let i = this.flows.length - 1; i >= from; i--) if (this.flows[i]!.column === into && this.flows[i]!.how === 'copy') this.flows.splice(i, 1);
    }
  }

  /** UPDATE / MERGE … SET col = value: a copy, except of a column into itself (`SET email = lower(email)`). */
  private assignments(targetList: unknown, depth: number): void {
    for (const t of list(targetList)) {
      const rt = only(t)?.[1];
      if (!rt) continue;
      const from = this.flows.length;
      this.expression(rt.val, 'copy', depth + 1);
      const into = typeof rt.name === 'string' ? rt.name.toLowerCase() : null;
      if (into === null) continue;
      for (let i = this.flows.length - 1; i >= from; i--) if (this.flows[i]!.column === into) this.flows.splice(i, 1);
    }
  }

  private returning(s: Node, ctx: Ctx, how: FlowKind, depth: number): void {
    const exprs = (s.returningClause as Node | undefined)?.exprs ?? s.returningList;
    this.targets(list(exprs), ctx, how, null, null, depth + 1);
  }

  private ctes(withClause: unknown, ctx: Ctx, how: FlowKind, depth: number): void {
    for (const c of list((withClause as Node | undefined)?.ctes)) {
      const cte = only(c)?.[1];
      if (!cte) continue;
      const renameTo = names(cte.aliascolnames);
      const q = only(cte.ctequery);
      if (q?.[0] === 'SelectStmt') this.select(cte.ctequery, this.innerCtx(ctx), how, depth + 1, null, renameTo);
      else if (q) {
        // a data-modifying CTE: its RETURNING list is what the rest of the query reads
        this.statement(cte.ctequery, ctx === 'strict' ? 'strict' : 'top', depth + 1);
        this.targets(list((q[1].returningClause as Node | undefined)?.exprs ?? q[1].returningList), this.innerCtx(ctx), how, null, renameTo, depth + 1);
      }
    }
  }

  private innerCtx(ctx: Ctx): Ctx {
    return ctx === 'filter' || ctx === 'strict' ? ctx : 'inner';
  }

  /**
   * One SELECT. `renameTo`: the alias column list its result is read under (a CTE's or subquery's);
   * `arm`: its place in a set operation.
   */
  private select(node: unknown, ctx: Ctx, how: FlowKind, depth: number, arm: Arm = null, renameTo: string[] | null = null, armLabels: Labels = null): void {
    const s = only(node)?.[1];
    if (!s || tooDeep(depth) || ctx === 'filter') return;
    this.ctes(s.withClause, ctx, how, depth);
    if (s.op && s.op !== 'SETOP_NONE') {
      const larg = s.larg === undefined ? undefined : { SelectStmt: s.larg };
      // the result's column names are the leftmost arm's
      const names = arm === 'other' ? armLabels : labelsOf(larg);
      this.select(larg, ctx, how, depth + 1, arm === 'other' ? 'other' : 'left', renameTo, arm === 'other' ? armLabels : null);
      this.select(s.rarg === undefined ? undefined : { SelectStmt: s.rarg }, ctx, how, depth + 1, 'other', renameTo, names);
      return;
    }
    if (s.intoClause) {
      ctx = 'strict';
      how = 'copy';
    }
    this.from(s.fromClause, ctx, how, depth);
    // VALUES: every value is an expression (there is no column to trace)
    this.expression(s.valuesLists, ctx === 'strict' ? how : 'expression', depth + 1);
    this.scopes.push(list(s.fromClause));
    try {
      this.targets(list(s.targetList), ctx, how, arm, renameTo, depth + 1, armLabels);
    } finally {
      this.scopes.pop();
    }
  }

  private targets(targets: unknown[], ctx: Ctx, how: FlowKind, arm: Arm, renameTo: string[] | null, depth: number, armLabels: Labels = null): void {
    if (ctx === 'filter') return;
    let i = -1;
    for (const t of targets) {
      i++;
      const rt = only(t)?.[1];
      if (!rt) continue;
      const val = only(rt.val);
      if (val?.[0] !== 'ColumnRef' || ctx === 'strict') {
        if (val?.[0] === 'ColumnRef') this.reference(val[1], how);
        else this.expression(rt.val, ctx === 'strict' ? how : 'expression', depth + 1);
        continue;
      }
      // a bare column (or `*`, `t.*`) of a result, or of a subquery / CTE the result reads
      const { parts, star } = this.columnRef(val[1]);
      if (!star && parts.length === 1 && this.names.has(parts[0]!)) {
        this.reference(val[1], 'expression'); // a whole row is a composite value the server cannot trace
        continue;
      }
      const alias = typeof rt.name === 'string' ? rt.name.toLowerCase() : null;
      if (star) {
        // the other arms of a set operation; a column list renaming what `*` expands to
        if (arm === 'other') this.reference(val[1], 'expression');
        else if (renameTo) {
          const from = this.flows.length;
          this.reference(val[1], 'rename');
          for (const f of this.flows.splice(from)) for (const n of renameTo) this.add(f.column, f.relation, 'rename', n);
        }
        continue;
      }
      const column = parts[parts.length - 1]!;
      const relation = this.qualifier(parts);
      // another arm's column reaches the client under the leftmost arm's name: fine when that is its own
      if ((arm === 'other' && armLabels?.[i] !== column) || (arm === 'left' && alias !== null && alias !== column)) {
        this.add(column, relation, 'expression');
        continue;
      }
      const as = renameTo?.[i] ?? (ctx === 'inner' ? alias : null);
      if (as !== null && as !== column) this.add(column, relation, 'rename', as);
    }
  }

  private from(items: unknown, ctx: Ctx, how: FlowKind, depth: number): void {
    if (ctx === 'filter') return;
    for (const item of list(items)) {
      const e = only(item);
      if (!e || tooDeep(depth)) continue;
      const [type, n] = e;
      const renameTo = names((n.alias as Node | undefined)?.colnames);
      switch (type) {
        case 'RangeVar':
          // `customers AS c(a, b, x)`: which column becomes x is not known here, so each may be any
          for (const as of renameTo ?? []) this.add('*', tableOf(n), 'rename', as);
          break;
        case 'RangeSubselect':
          this.select(n.subquery, this.innerCtx(ctx), how, depth + 1, null, renameTo);
          break;
        case 'JoinExpr':
          for (const as of renameTo ?? []) this.add('*', null, 'rename', as);
          this.from([n.larg, n.rarg], ctx, how, depth + 1);
          break;
        case 'RangeTableSample':
          this.from([n.relation], ctx, how, depth + 1);
          break;
        default:
          // functions in FROM (LATERAL upper(c.ssn)), XMLTABLE, JSON_TABLE: their values are computed
          this.expression(n, ctx === 'strict' ? how : 'expression', depth + 1);
      }
    }
  }
}

function tableOf(rangeVar: Node): QualifiedName {
  return { schema: typeof rangeVar.schemaname === 'string' ? rangeVar.schemaname.toLowerCase() : null, name: String(rangeVar.relname ?? '').toLowerCase() };
}

/** The column names of a SELECT's result, by position (null: not a plain name); null when unknown (a `*`). */
type Labels = (string | null)[] | null;

function labelsOf(select: unknown): Labels {
  const s = only(select)?.[1];
  if (!s) return null;
  if (s.op && s.op !== 'SETOP_NONE') return labelsOf(s.larg === undefined ? undefined : { SelectStmt: s.larg });
  const out: (string | null)[] = [];
  for (const t of list(s.targetList)) {
    const rt = only(t)?.[1];
    const val = only(rt?.val);
    if (typeof rt?.name === 'string') out.push(rt.name.toLowerCase());
    else if (val?.[0] === 'ColumnRef') {
      const fields = list(val[1].fields).map((f) => only(f));
      const last = fields[fields.length - 1];
      if (last?.[0] !== 'String') return null; // `*`: positions unknown
      out.push(String(last[1].sval ?? '').toLowerCase());
    } else out.push(null);
  }
  return out;
}

function names(v: unknown): string[] | null {
  const out: string[] = [];
  for (const x of list(v)) {
    const e = only(x);
    if (e?.[0] === 'String') out.push(String(e[1].sval ?? '').toLowerCase());
  }
  return out.length ? out : null;
}

/**
 * The column flows of one parsed statement. `strict`: the statement is a routine body, the SQL of a
 * DO block or a string another statement runs — there every reference counts as a copy.
 */
export function columnFlows(stmt: unknown, strict: boolean): ColumnFlow[] {
  const f = new FlowFinder(stmt);
  f.statement(stmt, strict ? 'strict' : 'top');
  f.calls(stmt, 0);
  return f.flows;
}
