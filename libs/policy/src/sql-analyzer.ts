import { operatorsOf, unknownOperator } from './builtin-operators.js';
import { columnFlows, type ColumnFlow } from './column-flows.js';
import { collectNames, type StatementNames } from './masked-references.js';
import { SqlAnalysisError, SqlSyntaxError } from './errors.js';
import { functionBindings, type Binding } from './function-bindings.js';
import { constantString, only, stringsOf } from './parse-tree.js';
import { fixedNames, isNameColumn, isPgSettings, pgSettingsScope, relationNames } from './setting-names.js';
import type { QualifiedName } from './qualified-name.js';
import { parsePlPgSql, parseSql, parserRefusal, scanSql, type ParseFailure } from './sql-parser.js';
import { sqlOfCall, sqlTextFunction } from './sql-text-functions.js';
import { isStatementNode, statementKind } from './statement-kinds.js';
import { relationReads, tableReads } from './table-readers.js';
import { isUnbounded } from './where-analysis.js';
import { dependsOnStandardStrings } from './sql-scanner.js';

/**
 * Finds every statement a SQL text would run — each statement of a multi-statement query, DML in
 * CTEs, the statement under EXPLAIN ANALYZE, PREPARE's body, COPY's query, the SQL of a DO block
 * (its static statements and the constant strings its EXECUTEs run), the body of CREATE FUNCTION /
 * PROCEDURE, SQL handed to functions that execute it (sql-text-functions.ts) — and describes each
 * as a StatementUnit. What cannot be analysed (a string built at run time, a DO block or routine in
 * another language) is listed in `dynamic`.
 */

type Node = Record<string, unknown>;

export type { QualifiedName } from './qualified-name.js';

export interface StatementUnit {
  kind: string;
  tables: QualifiedName[];
  functions: QualifiedName[];
  /** DELETE/UPDATE (and MERGE actions): true when nothing bounds the rows touched */
  unbounded?: boolean;
  /** DDL only: the functions it binds (an operator's, a cast's, a trigger's …), also in `functions` */
  binds?: QualifiedName[];
  /** COPY only: where the data goes to or comes from on the server side */
  copy?: 'program' | 'file' | 'stdio';
  /**
   * Where the statement runs when the text runs (consequence rules measure only what runs now, in
   * this session): `top` a statement of the text itself; absent: nested in one (a CTE, a subquery,
   * EXPLAIN ANALYZE, a DO block, SQL a local function runs); `later` a routine's or PREPARE's body
   * (runs when called or executed); `elsewhere` SQL sent over another connection (dblink).
   */
  runs?: 'top' | 'later' | 'elsewhere';
}

export interface Analysis {
  units: StatementUnit[];
  /** why parts of the text cannot be analysed (each gets the policy's dynamicSql action) */
  dynamic: string[];
  /**
   * Changes of a lexing setting (standard_conforming_strings off, a client_encoding the parser
   * cannot read) the text makes where the analyser sees them: always refused (rule `lexing`). Text
   * the server reads after such a change — the rest of the same query, a routine body, a DO block's
   * EXECUTE strings, a function's SET clause — would be lexed differently from how it was analysed
   * before any ParameterStatus could report it (and a routine's SET clause is never reported).
   */
  lexing: string[];
  /** a syntax error (`crashed: false`) or a parser/analyser failure (`crashed: true`) */
  parseError: ParseFailure | null;
  /** the result depends on a literal's value: texts differing only in literals may not share it */
  literalDependent: boolean;
  /** column values let out other than as plain result columns (only when asked for: column-flows.ts) */
  flows: ColumnFlow[];
  /** the names the text uses, nested SQL included (asked for with the flows: masked-references.ts) */
  names?: StatementNames;
  /** statements at the top of the text */
  topLevel: number;
  /** a DO block commits or rolls back (PL/pgSQL COMMIT / ROLLBACK): it cannot run inside a savepoint */
  endsTransaction: boolean;
}

const MAX_NESTED_SQL = 8;
const MAX_TREE_DEPTH = 4000;

function qualified(parts: string[]): QualifiedName {
  const name = (parts[parts.length - 1] ?? '').toLowerCase();
  const schema = parts.length >= 2 ? parts[parts.length - 2].toLowerCase() : null;
  return { schema, name };
}

function quoteLiteral(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

const RELATION_OBJECTS = new Set(['OBJECT_TABLE', 'OBJECT_VIEW', 'OBJECT_MATVIEW', 'OBJECT_SEQUENCE', 'OBJECT_INDEX', 'OBJECT_FOREIGN_TABLE']);

class Analyzer {
  readonly units: StatementUnit[] = [];
  readonly dynamic: string[] = [];
  readonly lexing: string[] = [];
  readonly flows: ColumnFlow[] = [];
  readonly names: StatementNames = { identifiers: new Set(), wholeRows: false };

  constructor(private readonly wantFlows: boolean) {}

  parseError: Analysis['parseError'] = null;
  literalDependent = false;
  topLevel = 0;
  endsTransaction = false;
  /** where the statements being walked run (see StatementUnit.runs) */
  private runs: 'later' | 'elsewhere' | undefined;
  /** PL/pgSQL variables of the block being analysed */
  private plVars: ReadonlySet<string> | undefined;
  /** per statement being walked, innermost last: its FROM when it is a SELECT from pg_settings alone (setting-names.ts) */
  private readonly settingsScopes: ReturnType<typeof pgSettingsScope>[] = [];
  private readonly onLiteral = () => { this.literalDependent = true; };

  /** Parses and analyses one SQL text (top level or nested in a string). */
  text(sql: string, nesting: number): void {
    if (nesting > MAX_NESTED_SQL) {
      this.dynamic.push('SQL nested too deeply in strings to analyse');
      return;
    }
    if (sql.trim() === '') return;
    if (nesting > 0) this.lateLexed(sql);
    const tree = this.parse(sql);
    if (tree) this.tree(tree, sql, nesting);
  }

  /** The parse tree of `sql`, or undefined when it does not parse (recorded by fail). */
  private parse(sql: string): Node | undefined {
    try {
      return parseSql(sql) as unknown as Node;
    } catch (err) {
      this.fail(err);
      return undefined;
    }
  }

  /** `sql` is the text `tree` was parsed from: a function body in PL/pgSQL is parsed again from its statement's text. */
  private tree(tree: Node, sql: string, nesting: number): void {
    const stmts = (tree.stmts as Node[] | undefined) ?? [];
    if (nesting === 0 && this.plVars === undefined) this.topLevel += stmts.length;
    for (const raw of stmts) {
      this.walk(raw.stmt, null, false, nesting, 0);
      // in a routine body, a DO block or a string another statement runs, every reference is a copy
      if (this.wantFlows) {
        this.flows.push(...columnFlows(raw.stmt, nesting > 0 || this.plVars !== undefined));
        collectNames(raw.stmt, this.names);
      }
      // CREATE FUNCTION / PROCEDURE is only ever a statement of its own, never nested in another
      const fn = only(raw.stmt);
      if (fn && fn[0] === 'CreateFunctionStmt') this.functionBody(fn[1], () => statementText(sql, raw), nesting);
    }
  }

  private fail(err: unknown): void {
    if (this.parseError) return;
    this.parseError = parserRefusal(err);
    if (this.parseError) return;
    const syntax = err instanceof SqlSyntaxError;
    this.parseError = syntax
      ? { reason: `statement could not be parsed: ${(err as Error).message}`, crashed: false }
      : { reason: 'statement could not be analysed', crashed: true };
    if (!syntax) {
      // keep the cause for the caller's logs; never shown to a client
      this.crash = new SqlAnalysisError('SQL analysis failed', { cause: err });
    }
  }
  crash: SqlAnalysisError | null = null;

  private newUnit(kind: string): StatementUnit {
    const u: StatementUnit = { kind, tables: [], functions: [] };
    this.units.push(u);
    return u;
  }

  /** Generic walk: object keys starting with an upper-case letter are node types. */
  private walk(value: unknown, unit: StatementUnit | null, planOnly: boolean, nesting: number, depth: number): void {
    if (value === null || typeof value !== 'object') return;
    if (depth > MAX_TREE_DEPTH) throw new SqlAnalysisError('statement nested too deeply');
    if (Array.isArray(value)) {
      for (const v of value) this.walk(v, unit, planOnly, nesting, depth + 1);
      return;
    }
    for (const key in value as Node) {
      const child = (value as Node)[key];
      if (child === null || typeof child !== 'object') continue;
      const c0 = key.charCodeAt(0);
      if (c0 >= 65 && c0 <= 90 && !Array.isArray(child)) this.node(key, child as Node, unit, planOnly, nesting, depth + 1);
      // Fields typed as a struct rather than a Node come unwrapped: `relation: {relname, …}`
      // (RangeVar), `funccall: {funcname, …}` (CALL's FuncCall), `setstmt: {name, …}`.
      else if (!Array.isArray(child) && typeof (child as Node).relname === 'string') this.node('RangeVar', child as Node, unit, planOnly, nesting, depth + 1);
      else if (key === 'funccall' && !Array.isArray(child)) this.node('FuncCall', child as Node, unit, planOnly, nesting, depth + 1);
      else if (key === 'setstmt') { this.setting(child as Node); this.walk(child, unit, planOnly, nesting, depth + 1); }
      else this.walk(child, unit, planOnly, nesting, depth + 1);
    }
  }

  private node(type: string, body: Node, unit: StatementUnit | null, planOnly: boolean, nesting: number, depth: number): void {
    if (!isStatementNode(type)) return this.nodeIn(type, body, unit, planOnly, nesting, depth);
    // set_config(name, …) directly in this statement reads `name` from its FROM (see functionCall)
    this.settingsScopes.push(type === 'SelectStmt' ? pgSettingsScope(body) : null);
    try {
      this.nodeIn(type, body, unit, planOnly, nesting, depth);
    } finally {
      this.settingsScopes.pop();
    }
  }

  private nodeIn(type: string, body: Node, unit: StatementUnit | null, planOnly: boolean, nesting: number, depth: number): void {
    if (isStatementNode(type) && !planOnly) {
      const u = this.newUnit(statementKind(type, body));
      if (this.runs) u.runs = this.runs;
      else if (unit === null && nesting === 0 && this.plVars === undefined) u.runs = 'top';
      this.bindings(functionBindings(type, body), u);
      switch (type) {
        case 'DeleteStmt':
        case 'UpdateStmt':
          u.unbounded = isUnbounded(body.whereClause, this.whereContext(body.relation as Node));
          if (isPgSettings(body.relation)) this.settingsWrite(type, body, u);
          break;
        case 'InsertStmt':
          if (isPgSettings(body.relation)) this.settingsWrite(type, body, u);
          break;
        case 'MergeStmt':
          this.merge(body, u);
          if (isPgSettings(body.relation)) this.settingsWrite(type, body, u);
          break;
        case 'CopyStmt':
          u.copy = body.is_program ? 'program' : body.filename !== undefined ? 'file' : 'stdio';
          break;
        case 'DropStmt':
          if (RELATION_OBJECTS.has(String(body.removeType))) {
            for (const obj of (body.objects as unknown[]) ?? []) {
              const e = only(obj);
              if (e && e[0] === 'List') u.tables.push(qualified(stringsOf(e[1].items)));
            }
          }
          break;
        case 'ExplainStmt': {
          // only EXPLAIN ANALYZE runs the statement; plain EXPLAIN still plans it, so the
          // functions it names are kept on the EXPLAIN unit
          this.walk(body.query, u, !this.explainAnalyzes(body.options), nesting, depth + 1);
          return;
        }
        case 'DoStmt':
          this.doBlock(body, nesting);
          return;
        case 'PrepareStmt':
          // the prepared body runs at EXECUTE, not now
          this.during('later', () => this.walk(body, u, false, nesting, depth + 1));
          return;
        case 'VariableSetStmt':
          this.setting(body);
          break;
      }
      this.walk(body, u, false, nesting, depth + 1);
      return;
    }
    if (type === 'RangeVar') {
      const parts: string[] = [];
      if (typeof body.schemaname === 'string') parts.push(body.schemaname);
      parts.push(String(body.relname ?? ''));
      const rel = qualified(parts);
      unit?.tables.push(rel);
      // pg_stats and its kin: sample values of every column of every table
      if (this.wantFlows) this.flows.push(...relationReads(rel));
      return;
    }
    for (const op of operatorsOf(type, body)) this.operator(op);
    if (type === 'FuncCall') {
      const name = qualified(stringsOf(body.funcname));
      unit?.functions.push(name);
      this.functionCall(name, (body.args as unknown[]) ?? [], nesting);
      // functions that read whole tables (table_to_xml('customers', …)): a read of every column
      const read = tableReads(name, (body.args as unknown[]) ?? []);
      if (read.table) unit?.tables.push(read.table);
      if (this.wantFlows) this.flows.push(...read.flows);
    }
    this.walk(body, unit, planOnly, nesting, depth + 1);
  }

  /** Binding a function by DDL is calling it (function-bindings.ts); an operator class's operators are used. */
  private bindings(b: Binding, unit: StatementUnit): void {
    if (b.functions.length) {
      unit.functions.push(...b.functions);
      unit.binds = b.functions;
    }
    for (const op of b.operators) this.operator(op);
  }

  /** A use of an operator that is not a built-in one cannot be analysed (builtin-operators.ts). */
  private operator(names: string[]): void {
    const why = unknownOperator(names);
    if (why && !this.dynamic.includes(why)) this.dynamic.push(why);
  }

  private whereContext(relation: Node | undefined) {
    const names = new Set<string>();
    if (relation) {
      if (typeof relation.relname === 'string') names.add(relation.relname.toLowerCase());
      const alias = (relation.alias as Node | undefined)?.aliasname;
      if (typeof alias === 'string') names.add(alias.toLowerCase());
    }
    return { targetNames: names, plVars: this.plVars, onLiteral: this.onLiteral };
  }

  private merge(body: Node, unit: StatementUnit): void {
    const ctx = this.whereContext(body.relation as Node);
    const joinUnbounded = isUnbounded(body.joinCondition, ctx);
    const target = body.relation as Node | undefined;
    const table = target ? qualified([...(typeof target.schemaname === 'string' ? [target.schemaname] : []), String(target.relname ?? '')]) : null;
    for (const w of (body.mergeWhenClauses as unknown[]) ?? []) {
      const e = only(w);
      if (!e) continue;
      const clause = e[1];
      const cmd = clause.commandType;
      const kind = cmd === 'CMD_DELETE' ? 'DELETE' : cmd === 'CMD_UPDATE' ? 'UPDATE' : cmd === 'CMD_INSERT' ? 'INSERT' : null;
      if (!kind) continue;
      const action = this.newUnit(kind);
      // a MERGE's actions run (and are counted in its tag) with it
      if (unit.runs) action.runs = unit.runs;
      if (table) action.tables.push(table);
      if (kind !== 'INSERT') {
        // NOT MATCHED BY SOURCE touches every target row the source lacks: bounded only by its own condition
        const bySource = clause.matchKind === 'MERGE_WHEN_NOT_MATCHED_BY_SOURCE';
        action.unbounded = (bySource || joinUnbounded) && isUnbounded(clause.condition, ctx);
      }
    }
    unit.unbounded = joinUnbounded;
  }

  private explainAnalyzes(options: unknown): boolean {
    for (const o of (options as unknown[]) ?? []) {
      const e = only(o);
      if (!e || e[0] !== 'DefElem' || String(e[1].defname).toLowerCase() !== 'analyze') continue;
      if (e[1].arg === undefined) return true;
      this.literalDependent = true;
      const v = this.optionValue(e[1].arg);
      // anything but a clear "off" is treated as ANALYZE: fail closed
      return !(v === false);
    }
    return false;
  }

  /** A DefElem / SET argument as a boolean when it clearly is one, else null. */
  private optionValue(arg: unknown): boolean | null {
    const e = only(arg);
    if (!e) return null;
    const [t, n] = e;
    let s: string | null = null;
    if (t === 'Integer') return Number(n.ival ?? 0) !== 0;
    if (t === 'Boolean') return Boolean(n.boolval ?? false);
    if (t === 'String') s = String(n.sval ?? '');
    if (t === 'A_Const') {
      this.literalDependent = true;
      if (n.ival !== undefined) return Number((n.ival as Node).ival ?? 0) !== 0;
      if (n.boolval !== undefined) return Boolean((n.boolval as Node).boolval ?? false);
      if (n.sval !== undefined) s = String((n.sval as Node).sval ?? '');
    }
    if (s === null) return null;
    const l = s.trim().toLowerCase();
    if (['on', 'true', 'yes', '1', 't', 'y'].includes(l)) return true;
    if (['off', 'false', 'no', '0', 'f', 'n'].includes(l)) return false;
    return null;
  }

  /**
   * Settings that would make the text mean something else to the server than to this parser:
   * standard_conforming_strings=off turns backslash into an escape in '…' strings, and client
   * encodings such as SJIS/BIG5/GBK can hide a quote or backslash inside a multibyte character.
   */
  private setting(stmt: Node): void {
    const name = String(stmt.name ?? '').toLowerCase();
    if (name !== 'standard_conforming_strings' && name !== 'client_encoding' && name !== 'names') return;
    const kind = String(stmt.kind ?? '');
    if (kind !== 'VAR_SET_VALUE') return; // DEFAULT, RESET, FROM CURRENT: back to a value the session started with
    this.literalDependent = true;
    const args = (stmt.args as unknown[]) ?? [];
    if (name === 'standard_conforming_strings') {
      if (args.length === 1 && this.optionValue(args[0]) === true) return;
      this.lexing.push('turning standard_conforming_strings off is not allowed: statements could hide in string literals');
      return;
    }
    const value = args.length === 1 ? this.settingText(args[0]) : null;
    if (value !== null && isUtf8Name(value)) return;
    this.lexing.push('changing client_encoding away from UTF8 is not allowed: statements could hide in multibyte characters');
  }

  private settingText(arg: unknown): string | null {
    const e = only(arg);
    if (!e) return null;
    if (e[0] === 'String') return String(e[1].sval ?? '');
    if (e[0] === 'A_Const' && e[1].sval !== undefined) return String((e[1].sval as Node).sval ?? '');
    return null;
  }

  /**
   * A write to the pg_settings view. Its UPDATE rule is `set_config(name, setting, false)` for each
   * row: the set_config of each setting its WHERE names (INSERT does nothing and DELETE fails, but
   * a write whose settings are not known is not guessed at).
   */
  private settingsWrite(type: string, body: Node, unit: StatementUnit): void {
    this.literalDependent = true;
    unit.functions.push({ schema: 'pg_catalog', name: 'set_config' });
    const names = type === 'UpdateStmt' ? fixedNames(body.whereClause, relationNames(body.relation as Node)) : null;
    if (names === null) {
      this.dynamic.push("a write to pg_settings whose setting names are not fixed by WHERE name = '…' cannot be analysed");
      return;
    }
    let value: unknown;
    for (const t of (body.targetList as unknown[]) ?? []) {
      const e = only(t);
      if (e && e[0] === 'ResTarget' && e[1].name === 'setting') value = e[1].val;
    }
    for (const n of names) this.configChange(n, value);
  }

  /** set_config(setting, value) or its equivalent: only a value the parser reads alike may go to a lexing setting. */
  private configChange(setting: string, valueNode: unknown): void {
    const s = setting.trim().toLowerCase();
    if (s !== 'standard_conforming_strings' && s !== 'client_encoding') return;
    const value = valueNode === undefined ? null : constantString(valueNode);
    const ok = value !== null && (s === 'client_encoding' ? isUtf8Name(value) : ['on', 'true', 'yes', '1'].includes(value.trim().toLowerCase()));
    if (!ok) this.lexing.push(`set_config of ${s} to that value is not allowed: statements could hide in string literals`);
  }

  private functionCall(name: QualifiedName, args: unknown[], nesting: number): void {
    if (name.name === 'set_config' && (name.schema === null || name.schema === 'pg_catalog')) {
      this.literalDependent = true;
      const setting = args[0] === undefined ? null : constantString(args[0]);
      if (setting !== null) {
        this.configChange(setting, args[1]);
        return;
      }
      // set_config(name, …) FROM pg_settings WHERE name = '…' (pg_dump's first statement): the names are known
      const scope = this.settingsScopes[this.settingsScopes.length - 1];
      if (scope?.names && isNameColumn(args[0], scope.relation)) {
        for (const n of scope.names) this.configChange(n, args[1]);
        return;
      }
      this.dynamic.push('set_config with a setting name computed at run time cannot be analysed');
      return;
    }
    const runs = sqlTextFunction(name);
    if (!runs) return;
    this.literalDependent = true;
    const call = sqlOfCall(runs, args);
    if ('dynamic' in call) {
      this.dynamic.push(call.dynamic);
      return;
    }
    const run = () => this.withPlVars(undefined, () => { for (const sql of call.sql) this.text(sql, nesting + 1); });
    if (runs.source === 'dblink') this.during('elsewhere', run);
    else run();
  }

  private during(runs: 'later' | 'elsewhere', fn: () => void): void {
    const saved = this.runs;
    // nothing runs sooner than its outer statement: later stays later
    this.runs = saved === 'later' ? saved : runs;
    try { fn(); } finally { this.runs = saved; }
  }

  private withPlVars(vars: ReadonlySet<string> | undefined, fn: () => void): void {
    const saved = this.plVars;
    this.plVars = vars;
    try { fn(); } finally { this.plVars = saved; }
  }

  /**
   * Source the server lexes only when it runs it — a DO or routine body, an EXECUTE string, SQL given
   * to a function — may be lexed after something earlier in the same execution turned
   * standard_conforming_strings off by a route no statement shows (a view over pg_settings, a
   * function): the server reports that only once the whole query is done. Such source must read alike
   * either way.
   */
  private lateLexed(source: string): void {
    if (!dependsOnStandardStrings(source)) return;
    this.literalDependent = true;
    this.lexing.push("a backslash in a '…' string of SQL the server reads only when it runs it (a DO or routine body, an EXECUTE string, SQL given to a function) would change meaning if standard_conforming_strings were turned off first: write the string as E'…' or dollar-quoted");
  }

  // ---- DO blocks (PL/pgSQL) ----

  private doBlock(body: Node, nesting: number): void {
    this.literalDependent = true; // the body is a string literal
    let language = 'plpgsql';
    let code: string | null = null;
    for (const a of (body.args as unknown[]) ?? []) {
      const e = only(a);
      if (!e || e[0] !== 'DefElem') continue;
      const v = only(e[1].arg);
      const s = v && v[0] === 'String' ? String(v[1].sval ?? '') : null;
      if (e[1].defname === 'language' && s !== null) language = s.toLowerCase();
      if (e[1].defname === 'as') code = s;
    }
    if (language !== 'plpgsql') {
      this.dynamic.push(`a DO block in language ${language} cannot be analysed`);
      return;
    }
    if (code === null) {
      this.dynamic.push('a DO block without a body cannot be analysed');
      return;
    }
    this.lateLexed(code);
    this.plpgsql(`DO ${quoteLiteral(code)}`, 'DO block', nesting);
  }

  /**
   * CREATE FUNCTION / CREATE PROCEDURE: the body runs whenever the routine is called, so its
   * statements are this statement's. A BEGIN ATOMIC / RETURN body is part of the parse tree (the
   * generic walk saw it); a body given as a string is parsed here: SQL as SQL, PL/pgSQL like a DO
   * block, any other language (C, plpython, plperl, …) cannot be analysed.
   */
  private functionBody(body: Node, statement: () => string, nesting: number): void {
    let language: string | null = null;
    let code: string[] | null = null;
    for (const o of (body.options as unknown[]) ?? []) {
      const e = only(o);
      if (!e || e[0] !== 'DefElem') continue;
      const v = only(e[1].arg);
      if (e[1].defname === 'language' && v && v[0] === 'String') language = String(v[1].sval ?? '').toLowerCase();
      if (e[1].defname === 'as') code = v && v[0] === 'List' ? stringsOf(v[1].items) : [];
    }
    if (code === null) return; // no string body: nothing beyond the parse tree runs
    if (language === 'sql' || language === 'plpgsql') for (const c of code) this.lateLexed(c);
    const saved = this.runs;
    this.runs = 'later';
    try { this.routineBody(body, code, language, statement, nesting); } finally { this.runs = saved; }
  }

  private routineBody(body: Node, code: string[], language: string | null, statement: () => string, nesting: number): void {
    this.literalDependent = true; // the body is a string literal
    const what = `a ${body.is_procedure ? 'procedure' : 'function'}`;
    if (language === 'sql') {
      const params = new Set<string>();
      for (const p of (body.parameters as unknown[]) ?? []) {
        const name = only(p)?.[1].name;
        if (typeof name === 'string') params.add(name.toLowerCase());
      }
      // parameters are not columns: `WHERE id = p_id` is bounded, `WHERE p_all` is not
      this.withPlVars(params, () => { for (const c of code) this.text(c, nesting + 1); });
    } else if (language === 'plpgsql') {
      this.plpgsql(statement(), `${what} body`, nesting);
    } else {
      this.dynamic.push(`${what} in language ${language ?? '(none given)'} cannot be analysed`);
    }
  }

  /** Analyses the PL/pgSQL routine of `text` (one DO or CREATE FUNCTION statement). */
  private plpgsql(text: string, what: string, nesting: number): void {
    let tree: Node;
    try {
      tree = parsePlPgSql(text) as unknown as Node;
    } catch (err) {
      // the block's syntax errors; anything else the parser throws is a refusal or a crash (fail)
      if (err instanceof SqlSyntaxError) {
        if (!this.parseError) this.parseError = { reason: `${what} could not be parsed: ${err.message}`, crashed: false };
      } else this.fail(err);
      return;
    }
    const funcs = (tree.plpgsql_funcs as unknown[]) ?? [];
    for (const f of funcs) {
      const fn = only(f)?.[1];
      // The parser leaves out what it does not take for PL/pgSQL (it compares the language name
      // case-sensitively, for one): an empty routine would let its real body go unchecked.
      if (funcs.length !== 1 || !fn || fn.action === undefined) {
        this.dynamic.push(`${what} could not be analysed`);
        return;
      }
      const vars = new Set<string>();
      for (const d of (fn.datums as unknown[]) ?? []) {
        const e = only(d);
        const ref = e?.[1].refname;
        if (typeof ref === 'string') vars.add(ref.toLowerCase());
      }
      this.withPlVars(vars, () => this.walkPl(fn, vars, nesting, 0));
    }
  }

  private walkPl(value: unknown, vars: ReadonlySet<string>, nesting: number, depth: number): void {
    if (value === null || typeof value !== 'object') return;
    if (depth > MAX_TREE_DEPTH) throw new SqlAnalysisError('PL/pgSQL block nested too deeply');
    if (Array.isArray(value)) {
      for (const v of value) this.walkPl(v, vars, nesting, depth + 1);
      return;
    }
    for (const key in value as Node) {
      const child = (value as Node)[key] as Node;
      if (child === null || typeof child !== 'object') continue;
      if ((key === 'PLpgSQL_stmt_commit' || key === 'PLpgSQL_stmt_rollback') && this.runs === undefined) this.endsTransaction = true;
      if (key === 'PLpgSQL_expr') {
        this.plExpr(child, false, nesting);
      } else if (key === 'PLpgSQL_stmt_dynexecute' || key === 'PLpgSQL_stmt_dynfors') {
        for (const k in child) {
          if (k === 'query') this.plExpr((child.query as Node).PLpgSQL_expr as Node, true, nesting);
          else this.walkPl(child[k], vars, nesting, depth + 1);
        }
      } else if (key === 'dynquery') {
        this.plExpr(child.PLpgSQL_expr as Node, true, nesting);
      } else {
        this.walkPl(child, vars, nesting, depth + 1);
      }
    }
  }

  /** One PL/pgSQL expression or statement; `dynamic` when its value is SQL that EXECUTE runs. */
  private plExpr(expr: Node | undefined, dynamic: boolean, nesting: number): void {
    if (!expr || typeof expr.query !== 'string') {
      this.dynamic.push('a PL/pgSQL expression could not be read');
      return;
    }
    const mode = Number(expr.parseMode ?? 0);
    let sql: string;
    if (mode === 0) sql = expr.query;
    else if (mode === 2) sql = `SELECT ${expr.query}`;
    else sql = `SELECT ${assignmentValue(expr.query)}`;
    const tree = this.parse(sql);
    if (!tree) return;
    // the expression itself is evaluated: its function calls count
    this.tree(tree, sql, nesting);
    if (!dynamic) return;
    const stmts = (tree.stmts as Node[] | undefined) ?? [];
    const select = only(stmts[0]?.stmt);
    const target = select && select[0] === 'SelectStmt' ? ((select[1].targetList as unknown[]) ?? []) : [];
    const value = target.length === 1 ? (only(target[0])?.[1].val as unknown) : undefined;
    const constant = value === undefined ? null : constantString(value);
    if (constant === null) {
      this.dynamic.push('dynamic SQL (EXECUTE of a string built at run time) cannot be analysed');
      return;
    }
    this.withPlVars(undefined, () => this.text(constant, nesting + 1));
  }
}

function isUtf8Name(v: string): boolean {
  const n = v.trim().toLowerCase().replace(/[-_]/g, '');
  return n === 'utf8' || n === 'unicode';
}

/** The right-hand side of a PL/pgSQL assignment `target := expr` (or `target = expr`). */
function assignmentValue(query: string): string {
  const tokens = scanSql(query).tokens;
  let depth = 0;
  for (const t of tokens) {
    if (t.text === '(' || t.text === '[') depth++;
    else if (t.text === ')' || t.text === ']') depth--;
    else if (depth === 0 && (t.text === ':=' || t.text === '=')) {
      // scanner offsets are byte offsets into the UTF-8 text
      return Buffer.from(query, 'utf8').subarray(t.end).toString('utf8');
    }
  }
  throw new SqlAnalysisError('PL/pgSQL assignment without := could not be analysed');
}

/** The text of one statement of a parse (`stmt_location`/`stmt_len` are UTF-8 byte offsets; len 0 = to the end). */
function statementText(sql: string, raw: Node): string {
  const bytes = Buffer.from(sql, 'utf8');
  const start = Number(raw.stmt_location ?? 0);
  const len = Number(raw.stmt_len ?? 0);
  return bytes.subarray(start, len > 0 ? start + len : bytes.length).toString('utf8');
}

/** Analyses a SQL text; never throws (failures become `parseError`). */
export function analyzeSql(sql: string, opts: { columnFlows?: boolean } = {}): Analysis & { crash: SqlAnalysisError | null } {
  const a = new Analyzer(opts.columnFlows === true);
  try {
    a.text(sql, 0);
  } catch (err) {
    a.parseError = null;
    if (err instanceof SqlAnalysisError) {
      a.parseError = { reason: 'statement could not be analysed', crashed: true };
      a.crash = err;
    } else {
      a.parseError = { reason: 'statement could not be analysed', crashed: true };
      a.crash = new SqlAnalysisError('SQL analysis failed', { cause: err });
    }
  }
  return { units: a.units, dynamic: a.dynamic, lexing: a.lexing, parseError: a.parseError, literalDependent: a.literalDependent, flows: a.flows, ...(opts.columnFlows ? { names: a.names } : {}), crash: a.crash, topLevel: a.topLevel, endsTransaction: a.endsTransaction };
}
