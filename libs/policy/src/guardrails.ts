import { MEASURED_KINDS, guardrailKind, type Action, type Guardrail, type PolicyDocument } from './policy-document.js';
import type { ColumnFlow } from './column-flows.js';
import { parseQualifiedName, splitQualifiedName, type QualifiedName } from './qualified-name.js';
import { analyzeSql, type Analysis, type StatementUnit } from './sql-analyzer.js';
import { kindMatches } from './statement-kinds.js';
import { ANY_RELATION } from './table-readers.js';

/** What the policy says about one SQL text. */
export interface Decision {
  action: Action;
  /**
   * the guardrail that decided, or `dynamicSql`, `parse-error`, `statement-too-large`,
   * `statement-too-complex`, `parser-unavailable`; null when allowed
   */
  rule: string | null;
  /** for block and require_approval: what the client is told */
  reason: string;
  /** statement kinds found, in order of appearance, each once */
  kinds: string[];
  /** the SQLSTATE of the refusal when it is not the gateway's default 42501 (54001: statement too complex) */
  sqlstate?: string;
  /** true when the decision came from the cache */
  cached: boolean;
  /**
   * The masking rule of a masked column the statement reads or writes (by name, or through a whole
   * row): its error and notice texts may carry that column's values and are withheld by the gateway.
   */
  masked?: string;
  /** consequence rules that apply once the write is measured (the gateway measures, consequence.ts) */
  measure?: MeasurePlan;
}

/** A consequence guardrail (match.rowsAffectedOver) that applies to a statement. */
export interface ConsequenceCheck {
  rule: string;
  action: 'block' | 'require_approval';
  /** acts when more rows than this were changed */
  over: number;
  /** the rule's table patterns (`name`, `schema.name`), lower-cased; null: every table */
  tables: QualifiedName[] | null;
  sampleRows: number;
  tolerance: { rows: number } | { percent: number };
  reason?: string;
}

/**
 * How the gateway measures a write: `tag`: the text is one INSERT/UPDATE/DELETE/MERGE and its command
 * tag's count is the rows it changed; `stats`: anything else (several statements, writes in CTEs,
 * DO blocks, EXPLAIN ANALYZE, EXECUTE) is measured by the transaction's per-table counts of rows
 * inserted, updated and deleted (pg_stat_xact_user_tables) before and after.
 */
export interface MeasurePlan {
  mode: 'tag' | 'stats';
  checks: ConsequenceCheck[];
  /** the tables the measured writes name (`schema.name` or `name`), for the approver */
  tables: string[];
}

export interface EvaluateContext {
  protocol?: 'simple' | 'extended';
}

export const DEFAULT_MAX_STATEMENT_BYTES = 1024 * 1024;

interface CompiledRule {
  name: string;
  action: Action;
  reason: string | undefined;
  statements: string[] | undefined;
  tables: QualifiedName[] | undefined;
  functions: QualifiedName[] | undefined;
  unbounded: boolean | undefined;
  copy: 'program' | 'file' | 'any' | undefined;
  /** a consequence rule: decided after the gateway measured the write */
  consequence?: ConsequenceCheck;
}

/** A column a masking rule names (`col`, `table.col`, `schema.table.col`), lower-cased. */
interface MaskedColumn {
  rule: string;
  column: string;
  table: QualifiedName | null;
}

export interface CompiledPolicy {
  rules: CompiledRule[];
  dynamicSql: Action;
  maxStatementBytes: number;
  /** columns of masking rules: they may leave only as plain result columns (column-flows.ts) */
  maskedColumns: MaskedColumn[];
  /** the policy has consequence rules (match.rowsAffectedOver) */
  consequences: boolean;
}

const SEVERITY: Record<Action, number> = { allow: 0, require_approval: 1, block: 2 };

function compileRule(g: Guardrail): CompiledRule {
  return {
    name: g.name,
    action: g.action,
    reason: g.reason,
    statements: g.match.statements,
    tables: g.match.tables?.map(parseQualifiedName),
    functions: g.match.functions?.map(parseQualifiedName),
    unbounded: g.match.unbounded,
    copy: g.match.copy,
    ...(g.match.rowsAffectedOver === undefined ? {} : {
      consequence: {
        rule: g.name,
        action: g.action === 'block' ? 'block' : 'require_approval',
        over: g.match.rowsAffectedOver,
        tables: g.match.tables?.map(parseQualifiedName) ?? null,
        sampleRows: g.sampleRows ?? DEFAULT_SAMPLE_ROWS,
        tolerance: parseTolerance(g.tolerance),
        ...(g.reason ? { reason: g.reason } : {}),
      } satisfies ConsequenceCheck,
    }),
  };
}

export const DEFAULT_SAMPLE_ROWS = 20;

function parseTolerance(t: number | string | undefined): ConsequenceCheck['tolerance'] {
  if (t === undefined) return { rows: 0 };
  if (typeof t === 'number') return { rows: t };
  return { percent: Number(t.slice(0, -1)) };
}

/** Whether a guardrail says anything about SQL (a rule with no SQL condition would otherwise match every statement). */
const compiledCache = new WeakMap<PolicyDocument, CompiledPolicy>();

export function compilePolicy(doc: PolicyDocument, maxStatementBytes?: number): CompiledPolicy {
  if (maxStatementBytes === undefined) {
    const hit = compiledCache.get(doc);
    if (hit) return hit;
  }
  const compiled: CompiledPolicy = {
    // guardrails of other kinds (commands, files, `match.kubernetes`) never match SQL
    rules: (doc.guardrails ?? []).filter((g) => guardrailKind(g) === 'sql').map(compileRule),
    consequences: (doc.guardrails ?? []).some((g) => g.match.rowsAffectedOver !== undefined),
    dynamicSql: doc.dynamicSql ?? 'block',
    maxStatementBytes: maxStatementBytes ?? doc.maxStatementBytes ?? DEFAULT_MAX_STATEMENT_BYTES,
    maskedColumns: (doc.masking ?? []).flatMap((r) =>
      (r.columns ?? []).map((c) => {
        const parts = splitQualifiedName(c);
        const table = parts.length >= 2 ? { schema: parts.length >= 3 ? parts[parts.length - 3]! : null, name: parts[parts.length - 2]! } : null;
        return { rule: r.name, column: parts[parts.length - 1]!, table };
      }),
    ),
  };
  if (maxStatementBytes === undefined) compiledCache.set(doc, compiled);
  return compiled;
}

/** A pattern `name` matches the name in any schema; `schema.name` matches it there or unqualified (search_path). */
function nameMatches(p: QualifiedName, actual: QualifiedName): boolean {
  return p.name === actual.name && (p.schema === null || actual.schema === null || p.schema === actual.schema);
}

interface Match {
  rule: CompiledRule;
  unit: StatementUnit;
  table?: QualifiedName;
  fn?: QualifiedName;
}

function matchRule(rule: CompiledRule, unit: StatementUnit): Match | null {
  if (rule.statements && !rule.statements.some((s) => kindMatches(s, unit.kind))) return null;
  if (rule.unbounded !== undefined && unit.unbounded !== rule.unbounded) return null;
  if (rule.copy) {
    if (unit.copy === undefined || unit.copy === 'stdio') return null;
    if (rule.copy !== 'any' && unit.copy !== rule.copy) return null;
  }
  let table: QualifiedName | undefined;
  if (rule.tables) {
    table = unit.tables.find((t) => rule.tables!.some((p) => nameMatches(p, t)));
    if (!table) return null;
  }
  let fn: QualifiedName | undefined;
  if (rule.functions) {
    fn = unit.functions.find((f) => rule.functions!.some((p) => nameMatches(p, f)));
    if (!fn) return null;
  }
  return { rule, unit, table, fn };
}

const show = (n: QualifiedName) => (n.schema ? `${n.schema}.${n.name}` : n.name);

function describe(m: Match): string {
  let what: string;
  // binding a function (CREATE OPERATOR / CAST / AGGREGATE / TRIGGER …) is calling it: function-bindings.ts
  if (m.fn && m.unit.binds?.includes(m.fn)) what = `${m.unit.kind} over ${show(m.fn)} (it calls the function)`;
  else if (m.fn) what = `call to ${show(m.fn)}`;
  else if (m.rule.copy) what = `${m.unit.kind} ${m.unit.copy === 'program' ? 'PROGRAM' : 'a server file'}`;
  else if (m.rule.unbounded) what = `${m.unit.kind} without a WHERE that bounds the rows`;
  else what = `statement ${m.unit.kind}`;
  if (m.table && !m.fn) what += ` on ${show(m.table)}`;
  return m.rule.action === 'require_approval'
    ? `${what} requires approval by guardrail ${m.rule.name}`
    : `${what} is blocked by guardrail ${m.rule.name}`;
}

export interface Verdict {
  decision: Omit<Decision, 'cached'>;
  /** whether texts that differ only in literal values may share this decision */
  shareable: boolean;
  /** false: not even this exact text may reuse it (the parser was restarting) */
  cacheable?: boolean;
}

/** Turns an analysis into a decision: the most restrictive match wins; ties go to the first rule. */
export function decide(analysis: Analysis, policy: CompiledPolicy): Verdict {
  const kinds: string[] = [];
  for (const u of analysis.units) if (!kinds.includes(u.kind)) kinds.push(u.kind);
  let action: Action = 'allow';
  let rule: string | null = null;
  let reason = 'allowed: no guardrail matched';
  let sqlstate: string | undefined;
  const consider = (a: Action, r: string, why: string, code?: string) => {
    if (SEVERITY[a] > SEVERITY[action]) { action = a; rule = r; reason = why; sqlstate = code; }
  };
  for (const unit of analysis.units) {
    for (const r of policy.rules) {
      if (r.consequence || SEVERITY[r.action] <= SEVERITY[action]) continue;
      const m = matchRule(r, unit);
      if (m) consider(r.action, r.name, r.reason ?? describe(m));
    }
  }
  if (analysis.flows.length && policy.maskedColumns.length) {
    const leak = maskedFlow(analysis, policy.maskedColumns);
    if (leak) consider('block', leak.masked.rule, flowReason(leak.flow, leak.masked));
  }
  for (const d of analysis.dynamic) consider(policy.dynamicSql, 'dynamicSql', d);
  for (const d of analysis.lexing ?? []) consider('block', 'lexing', d);
  const failed = analysis.parseError;
  if (failed) consider(failed.crashed ? 'block' : policy.dynamicSql, failed.rule ?? 'parse-error', failed.reason, failed.sqlstate);
  const masked = analysis.names && policy.maskedColumns.length ? touchedRule(analysis, policy.maskedColumns) : null;
  const measure = policy.consequences ? consequencePlan(analysis, policy, consider) : null;
  const decision: Verdict['decision'] = { action, rule, reason, kinds };
  if (measure && (action as Action) !== 'block') decision.measure = measure;
  if (masked !== null) decision.masked = masked;
  if (sqlstate !== undefined) decision.sqlstate = sqlstate;
  return {
    decision,
    // a parse error may come from a literal's value (an out-of-range number, a bad escape): never share it
    shareable: !analysis.literalDependent && failed === null,
    cacheable: failed?.transient !== true,
  };
}

const MEASURED = new Set<string>(MEASURED_KINDS);
/** Statements that end or nest transactions: a text holding one cannot run inside the gateway's savepoint. */
const TRANSACTION_CONTROL = new Set(['BEGIN', 'COMMIT', 'ROLLBACK', 'SAVEPOINT', 'RELEASE', 'PREPARE TRANSACTION', 'COMMIT PREPARED', 'ROLLBACK PREPARED']);

/**
 * The consequence rules that apply to a text and how it is measured, or null when none does. A write a
 * rule names that cannot be measured (it would commit on its own or run over another connection) gets
 * the rule's action at once, without a count: `consider` (fail closed).
 */
function consequencePlan(analysis: Analysis, policy: CompiledPolicy, consider: (a: Action, r: string, why: string) => void): MeasurePlan | null {
  const checks: ConsequenceCheck[] = [];
  const tables: string[] = [];
  let allTop = true;
  let unmeasurable: string | null = null;
  if (analysis.endsTransaction) unmeasurable = 'a DO block that commits or rolls back cannot run inside a savepoint';
  else if (analysis.units.some((u) => u.runs === 'top' && TRANSACTION_CONTROL.has(u.kind))) unmeasurable = 'it shares its query with transaction control (BEGIN, COMMIT, SAVEPOINT …): send the write on its own';
  for (const r of policy.rules) {
    const c = r.consequence;
    if (!c) continue;
    let hit: StatementUnit | null = null;
    for (const u of analysis.units) {
      if (u.runs === 'later') continue;
      // SQL-level EXECUTE runs a prepared statement whose text is not in this one: measured whatever it is
      const execute = u.kind === 'EXECUTE' && u.runs === 'top';
      if (!execute) {
        if (!MEASURED.has(u.kind)) continue;
        if (r.statements && !r.statements.some((s) => kindMatches(s, u.kind))) continue;
        if (c.tables && !u.tables.some((t) => c.tables!.some((p) => nameMatches(p, t)))) continue;
      }
      hit ??= u;
      if (u.runs === 'elsewhere') unmeasurable ??= 'it runs SQL over another connection (dblink), which no savepoint here can undo';
      if (u.runs !== 'top' || execute) allTop = false;
      for (const t of u.tables) if (!execute && !tables.includes(show(t))) tables.push(show(t));
    }
    if (!hit) continue;
    if (unmeasurable !== null) {
      const what = c.action === 'require_approval' ? 'requires approval' : 'is blocked';
      consider(c.action, c.rule, `${hit.kind} ${what} by guardrail ${c.rule} without a row count: ${unmeasurable}`);
      continue;
    }
    checks.push(c);
  }
  if (checks.length === 0 || unmeasurable !== null) return null;
  return { mode: allTop && analysis.topLevel === 1 ? 'tag' : 'stats', checks, tables };
}

/**
 * The masked column a flow names, if any. An unqualified reference counts when a table the
 * statement names could hold the column (or it names none); a whole row or `*` counts for every
 * masked column of its table (every one, when the table is unknown).
 */
function maskedBy(f: ColumnFlow, masked: MaskedColumn[], tables: QualifiedName[]): MaskedColumn | null {
  for (const m of masked) {
    if (f.column !== '*' && f.column !== m.column) continue;
    if (m.table === null) return m;
    if (f.relation !== null) {
      if (f.relation === ANY_RELATION || nameMatches(m.table, f.relation)) return m;
      continue;
    }
    if (tables.length === 0 || tables.some((t) => nameMatches(m.table!, t))) return m;
  }
  return null;
}

/**
 * The first flow that lets a masked column out other than as a plain result column. Names a masked
 * column goes on under (subquery and CTE aliases, alias column lists) are masked too, by name.
 */
function maskedFlow(analysis: Analysis, masked: MaskedColumn[]): { flow: ColumnFlow; masked: MaskedColumn } | null {
  const tables = analysis.units.flatMap((u) => u.tables);
  let all = masked;
  const renames = analysis.flows.filter((f) => f.how === 'rename');
  for (let grew = renames.length > 0; grew; ) {
    grew = false;
    for (const f of renames) {
      if (all.some((m) => m.table === null && m.column === f.as)) continue;
      const m = maskedBy(f, all, tables);
      if (m) {
        all = [...all, { rule: m.rule, column: f.as!, table: null }];
        grew = true;
      }
    }
  }
  for (const f of analysis.flows) {
    if (f.how === 'rename') continue;
    const m = maskedBy(f, all, tables);
    if (m) return { flow: f, masked: m };
  }
  return null;
}

/** The rule of the first masked column the statement names or takes in a whole row (masked-references.ts). */
function touchedRule(analysis: Analysis, masked: MaskedColumn[]): string | null {
  const names = analysis.names!;
  const tables = analysis.units.flatMap((u) => u.tables);
  for (const m of masked) {
    if (names.identifiers.has(m.column)) return m.rule;
    if (names.wholeRows && (m.table === null || tables.length === 0 || tables.some((t) => nameMatches(m.table!, t)))) return m.rule;
  }
  const leak = analysis.flows.length ? maskedFlow(analysis, masked) : null;
  return leak ? leak.masked.rule : null;
}

function flowReason(f: ColumnFlow, m: MaskedColumn): string {
  const col = m.table ? `${show(m.table)}.${m.column}` : m.column;
  if (f.how === 'shadow') {
    return `${f.via ?? 'this statement'} would let a built-in name run user code where column ${col}, masked by rule ${m.rule}, may be used in a filter: not allowed while columns are masked`;
  }
  if (f.how === 'call') {
    const what = f.column === '*' ? `a whole-row reference${f.relation ? ` to ${show(f.relation)}` : ''} carrying column ${col}` : `column ${col}`;
    return `${what}, masked by rule ${m.rule}, may not be passed to ${f.via ?? 'a function'}, which is not a side-effect-free built-in (a filter may use masked columns only with those)`;
  }
  if (f.how === 'read') {
    const what = f.relation === ANY_RELATION || !f.relation ? 'may read any table' : `reads every column of ${show(f.relation)}`;
    return `${f.via ?? 'a function'} ${what}, so column ${col}, masked by rule ${m.rule}, would leave unmasked: a masked column can be read only as a plain column of a result`;
  }
  const how =
    f.how === 'copy' ? 'it may not be copied into a table, view, variable or routine'
      : 'it may not be used inside an expression (function, cast, operator, aggregate, row value)';
  const to = f.relation === ANY_RELATION ? ' (a row of any table: a trigger\'s or rule\'s NEW / OLD, a row variable)' : f.relation ? ` to ${show(f.relation)}` : '';
  const what = f.column === '*' ? `a whole-row reference${to} would carry column ${col}` : `column ${col}`;
  return `${what}, masked by rule ${m.rule}, can be read only as a plain column of a result: ${how}`;
}

/** Byte length of `sql` if it is over `limit`, else -1; avoids encoding the text in the common case. */
export function oversize(sql: string, limit: number): number {
  if (sql.length * 3 <= limit) return -1;
  if (sql.length > limit) return Buffer.byteLength(sql, 'utf8');
  const bytes = Buffer.byteLength(sql, 'utf8');
  return bytes > limit ? bytes : -1;
}

export function tooLargeDecision(bytes: number, limit: number): Omit<Decision, 'cached'> {
  return {
    action: 'block',
    rule: 'statement-too-large',
    reason: `statement of ${bytes} bytes exceeds the limit of ${limit} bytes`,
    kinds: [],
  };
}

/** Evaluates one SQL text against a policy, uncached. Never throws: it fails closed. */
export function evaluateUncached(sql: string, policy: CompiledPolicy): Verdict {
  if (typeof sql !== 'string') {
    return { decision: { action: 'block', rule: 'parse-error', reason: 'statement is not text', kinds: [] }, shareable: false };
  }
  const big = oversize(sql, policy.maxStatementBytes);
  if (big >= 0) return { decision: tooLargeDecision(big, policy.maxStatementBytes), shareable: false };
  return decide(analyzeSql(sql, { columnFlows: policy.maskedColumns.length > 0 }), policy);
}
