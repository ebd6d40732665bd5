import type { RowField } from '@portcullis/protocol';
import type { ResolvedPolicy } from '../config/config-store.js';
import type { Logger } from '../logger.js';
import type { SideConnection } from './side-connection.js';
import type { MaskingPlan } from '@portcullis/policy';
import type { PolicyDocument, PolicyLib } from '../core/policy-lib.js';
import type { ColumnMasking, FunctionCallDecision, FunctionCallInfo, ResultField, RowMasker, RowPlan, SessionHooks, StatementInfo, Verdict } from './session-hooks.js';

export interface PolicyHooksOptions {
  /**
   * The session's policy now: a new version of it (guardrails only) applies from the next statement
   * on (client-session.ts configChanged); masking and approval rules stay those the session began with.
   */
  policy: () => ResolvedPolicy;
  lib: PolicyLib;
  maskingKey: Buffer;
  /** lazily opened side connection to the target, for table names and COPY layouts */
  side: SideConnection;
  logger: Logger;
  /** a statement was refused as too complex for the parser (counted in metrics) */
  onStatementTooComplex?: () => void;
}

/** Masking plans kept per session (one per distinct row layout). */
const MAX_CACHED_PLANS = 64;

/**
 * The default SessionHooks: decisions from the connection's PolicyEngine, masking plans from
 * createMaskingPlan. Fails closed: an engine that throws blocks, a plan that cannot be built refuses.
 *
 * Tables and columns: RowDescription gives a column's table OID and attribute number only. They are
 * resolved to `schema.table` and the table's column name through the session's side connection (one
 * query per new OID, cached for the session), so table-qualified rules apply and a renamed column is
 * still the column a rule names. If that lookup fails and the policy has column rules, the result is
 * withheld (and the lookup tried again for the next one).
 */
export function createPolicyHooks(opts: PolicyHooksOptions): SessionHooks & { close(): void } {
  const { lib, maskingKey, side, logger } = opts;
  const started = opts.policy();
  const recordResults = lib.resultRecordingOf(started.document);
  /**
   * table OID → `schema.table`, its column names by attribute number and its generated columns (which
   * `COPY table TO` leaves out); null when the OID is not a table
   */
  const tables = new Map<number, { name: string; columns: Map<number, string>; generated: Set<number> } | null>();

  const evaluate = (stmt: StatementInfo): Verdict => {
    try {
      const policy = opts.policy();
      // a function call is decided as the one-statement SELECT it amounts to (onFunctionCall)
      const d = policy.engine.evaluate(stmt.sql, { protocol: stmt.protocol === 'simple' ? 'simple' : 'extended' });
      const v: Verdict = { action: d.action, rule: d.rule ?? null, reason: d.reason ?? null, ...(d.kinds ? { kinds: d.kinds } : {}), ...(d.cached !== undefined ? { cached: d.cached } : {}) };
      if (d.masked !== undefined) v.masked = d.masked;
      // a measure plan for a session whose hooks cannot measure would never be applied: refused below
      if (d.measure !== undefined) v.measure = d.measure;
      if (d.sqlstate !== undefined) {
        v.sqlstate = d.sqlstate;
        if (d.rule === 'statement-too-complex') opts.onStatementTooComplex?.();
      }
      // session.start names the version the session began with; a decision by a later one says so
      if (policy.version !== started.version) v.policyVersion = policy.version;
      return v;
    } catch (err) {
      logger.error({ err: (err as Error).message }, 'policy evaluation failed; blocking');
      return { action: 'block', rule: 'policy-error', reason: 'the policy could not evaluate this statement' };
    }
  };

  // Column rules name table columns; a result column is the table column the server says it is
  // (RowDescription's table OID and attribute number), whatever the query called it: `SELECT ssn AS x`
  // and `SELECT x FROM (SELECT ssn AS x …) s` still come from ssn. What a rule cannot see that way
  // (expressions, copies) the policy refuses before the statement runs (libs/policy column-flows.ts).
  const columnRules = (started.document.masking ?? []).some((r) => (r.columns?.length ?? 0) > 0);
  const resolveTables = async (oids: number[]): Promise<void> => {
    const missing = [...new Set(oids)].filter((o) => o !== 0 && !tables.has(o));
    if (missing.length === 0) return;
    try {
      const rows = await side.query(
        `SELECT c.oid::text, n.nspname, c.relname, a.attnum::text, a.attname, a.attgenerated::text FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 WHERE c.oid = ANY('{${missing.join(',')}}'::oid[])`,
      );
      for (const o of missing) tables.set(o, null);
      for (const [oid, nsp, rel, attnum, attname, generated] of rows) {
        if (!oid || !nsp || !rel) continue;
        let t = tables.get(Number(oid));
        if (!t) tables.set(Number(oid), (t = { name: `${nsp}.${rel}`, columns: new Map(), generated: new Set() }));
        if (attnum && attname) t.columns.set(Number(attnum), attname);
        if (attnum && generated) t.generated.add(Number(attnum));
      }
    } catch (err) {
      // not remembered: the next result asks again
      logger.warn({ err: (err as Error).message }, 'cannot resolve the tables of a result');
    }
  };

  const toFields = (fields: RowField[]): ResultField[] =>
    fields.map((f) => {
      const t = tables.get(f.tableOid);
      // the server's format codes are 0 (text) and 1 (binary)
      const r: ResultField = { name: f.name, tableOid: f.tableOid, columnAttr: f.columnAttr, typeOid: f.typeOid, format: f.format as 0 | 1 };
      if (t) {
        r.table = t.name;
        const column = t.columns.get(f.columnAttr);
        if (column !== undefined && column !== f.name) r.column = column;
      }
      return r;
    });

  /** Fail closed: with column rules, a result whose columns' tables could not be looked up is withheld. */
  const unresolved = (fields: RowField[]): RowPlan =>
    columnRules && fields.some((f) => f.tableOid !== 0 && !tables.has(f.tableOid))
      ? { kind: 'refuse', reason: 'result refused by masking policy: the gateway could not look up which table columns it comes from, so its column rules cannot be applied' }
      : null;

  // A plan depends only on the policy, the key and the row layout: an application re-running its
  // statements gets the same layouts again (every Execute of a prepared statement), so plans are
  // kept per layout for the session instead of being rebuilt per result.
  const plans = new Map<string, RowPlan>();
  /** the library plan behind a cached masker, for COPY (which gets a line masker of its own format) */
  const planOf = new WeakMap<RowMasker, MaskingPlan>();
  const plan = (fields: ResultField[]): RowPlan => {
    let key = '';
    for (const f of fields) key += `${f.name}\0${f.tableOid}\0${f.columnAttr}\0${f.typeOid}\0${f.format}\0${f.table ?? ''}\x01`;
    const known = plans.get(key);
    if (known !== undefined) return known;
    const made = buildPlan(fields);
    if (plans.size >= MAX_CACHED_PLANS) plans.delete(plans.keys().next().value!);
    plans.set(key, made);
    return made;
  };
  const buildPlan = (fields: ResultField[]): RowPlan => {
    let p: ReturnType<PolicyLib['createMaskingPlan']>;
    try {
      p = lib.createMaskingPlan(started.document, fields, { hmacKey: maskingKey });
    } catch (err) {
      logger.error({ err: (err as Error).message }, 'masking plan failed; refusing the result');
      return { kind: 'refuse', reason: 'the gateway could not build a masking plan for this result; it was withheld' };
    }
    if (!p) return null;
    if (p.kind === 'refuse') return { kind: 'refuse', reason: `result refused by masking policy: ${p.reason}` };
    const masker = wrapPlan(p);
    if (recordResults) masker.describe = describeColumns(lib, started.document, fields);
    planOf.set(masker, p);
    return { kind: 'mask', masker };
  };

  // The layout of the previous result and its plan: a session mostly runs the same statement again
  // (each Execute of a prepared one), and comparing a few fields costs less than the plan key.
  // A table name, once looked up, does not change for the session, so the same fields give the same plan.
  let lastFields: RowField[] | null = null;
  let lastPlan: RowPlan = null;
  const remember = (fields: RowField[], p: RowPlan): RowPlan => {
    lastFields = fields;
    lastPlan = p;
    return p;
  };
  // a refusal for want of a lookup is not remembered: the next result looks up again
  const planFor = (fields: RowField[]): RowPlan => unresolved(fields) ?? remember(fields, plan(toFields(fields)));
  const onRowDescription = (fields: RowField[]): RowPlan | Promise<RowPlan> => {
    if (lastFields !== null && sameLayout(fields, lastFields)) return lastPlan;
    const needLookup = fields.some((f) => f.tableOid !== 0 && !tables.has(f.tableOid));
    if (!needLookup) return planFor(fields);
    return resolveTables(fields.map((f) => f.tableOid)).then(() => planFor(fields));
  };

  const onCopyOut = async (info: { format: number; columnFormats: number[]; sql: string | null }): Promise<RowPlan> => {
    const copy = info.sql ? parseCopyTo(info.sql) : null;
    const source = copy?.source ?? null;
    if (!source) return { kind: 'refuse', reason: 'COPY TO is refused: the gateway could not determine its columns to apply the masking policy' };
    let fields: RowField[] | null;
    try {
      fields = await side.describe(source);
    } catch (err) {
      logger.info({ err: (err as Error).message }, 'cannot describe COPY source');
      return { kind: 'refuse', reason: 'COPY TO is refused: the gateway could not determine its columns to apply the masking policy' };
    }
    if (!fields) return null;
    const format = info.format;
    let withFormat = fields.map((f) => ({ ...f, format }));
    await resolveTables(withFormat.map((f) => f.tableOid));
    const lookupFailed = unresolved(withFormat);
    if (lookupFailed) return lookupFailed;
    // `COPY table TO` without a column list writes every column but the generated ones; its source
    // (`SELECT * FROM table`) has them all
    if (copy!.wholeTable) withFormat = withFormat.filter((f) => !tables.get(f.tableOid)?.generated.has(f.columnAttr));
    const resultFields = toFields(withFormat);
    const p = plan(resultFields);
    if (!p || p.kind !== 'mask') return p;
    if (format !== 0) return { kind: 'refuse', reason: 'binary COPY of masked columns is refused' };
    // CSV and the text format with options are "format 0" on the wire too: the statement says how
    // the lines are written. Read as the default text format, CSV (where a tab is not escaped) would
    // be split in the wrong places and a masked value could pass in the clear; so the options are
    // read from the statement's parse tree and whatever cannot be read exactly is refused.
    const refused = (why: string): RowPlan => ({ kind: 'refuse', reason: `COPY TO is refused where masking applies: ${why}` });
    let parsed: ReturnType<PolicyLib['parseCopyToFormat']>;
    try {
      parsed = lib.parseCopyToFormat(info.sql!);
    } catch (err) {
      logger.error({ err: (err as Error).message }, 'cannot read the COPY options');
      return refused('the gateway could not read its options');
    }
    if (parsed.kind === 'refuse') return refused(parsed.reason);
    const libPlan = planOf.get(p.masker);
    if (!libPlan) return refused('the gateway could not build a masking plan for it');
    let maskLine: (line: Buffer) => Buffer;
    try {
      maskLine = libPlan.copyLineMasker(parsed.format);
    } catch (err) {
      logger.info({ err: (err as Error).message }, 'cannot mask this COPY format');
      return refused('its format options do not fit its columns');
    }
    // a masker per COPY: with HEADER, its first line is the header
    return { kind: 'mask', masker: wrapPlan(libPlan, maskLine) };
  };

  /** function OID → its schema, name and return type (null: no such function), looked up once per session */
  const functions = new Map<number, { schema: string; name: string; returns: number } | null>();
  /**
   * A FunctionCall ('F') is the call `SELECT schema.fn($1, …)` makes: that statement is what the policy
   * decides (function guardrails, dynamic SQL for arguments it cannot see, masking analysis) and what
   * is recorded, and the call's one value gets the masking plan that statement's one column would.
   */
  const onFunctionCall = async (call: FunctionCallInfo): Promise<FunctionCallDecision> => {
    const oid = call.oid >>> 0;
    let fn = functions.get(oid);
    if (fn === undefined) {
      try {
        const rows = await side.query(
          `SELECT n.nspname, p.proname, p.prorettype::text FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace WHERE p.oid = ${oid}::oid`,
        );
        const [nsp, name, returns] = rows[0] ?? [];
        fn = nsp && name ? { schema: nsp, name, returns: Number(returns) } : null;
        functions.set(oid, fn);
      } catch (err) {
        logger.warn({ err: (err as Error).message }, 'cannot look up the function of a function call');
        return {
          sql: `-- function call: OID ${oid}`,
          verdict: { action: 'block', rule: null, reason: null },
          refusal: { code: '42501', message: 'function call refused: the gateway could not look up which function it calls' },
        };
      }
    }
    if (!fn) {
      // (a function created in the session's own open transaction is not visible to the lookup either)
      return { sql: `-- function call: OID ${oid}`, verdict: { action: 'block', rule: null, reason: null }, refusal: { code: '42883', message: `function with OID ${oid} does not exist` } };
    }
    const params = Array.from({ length: call.args }, (_, i) => `$${i + 1}`).join(', ');
    const sql = `SELECT ${quoteIdent(fn.schema)}.${quoteIdent(fn.name)}(${params})`;
    const verdict = evaluate({ sql, protocol: 'extended' });
    if (verdict.action === 'block' || !started.masks) return { sql, verdict };
    const field: RowField = { name: fn.name, tableOid: 0, columnAttr: 0, typeOid: fn.returns, typeSize: -1, typeModifier: -1, format: call.resultFormat };
    return { sql, verdict, plan: planFor([field]) };
  };

  const measures = ((started.document as { guardrails?: { match?: { rowsAffectedOver?: unknown } }[] }).guardrails ?? []).some((g) => g.match?.rowsAffectedOver !== undefined);
  return {
    masksResults: started.masks,
    recordResults,
    measuresWrites: measures,
    consequence: {
      judge: lib.judgeConsequence,
      rowsOfTag: lib.rowsOfTag,
      writesBetween: lib.writesBetween,
      withinTolerance: lib.withinTolerance,
      sampleQuery: lib.sampleQuery,
      writesSql: lib.TRANSACTION_WRITES_SQL,
    },
    onFunctionCall,
    onQuery: evaluate,
    onParse: evaluate,
    onRowDescription,
    onDataRow: (m, row, out) => m.maskDataRow(row, out),
    onCopyOut,
    onCopyData: (m, line) => m.maskCopyLine(line),
    // masking rules are those the session began with, as for results
    scrubServerMessage: (fields, maskedRule) => lib.scrubServerMessage(fields, started.document, { hmacKey: maskingKey }, maskedRule),
    close: () => side.close(),
  };
}

/** Per column of a layout, how its masking plan treats it (computed once, at the first kept row). */
function describeColumns(lib: PolicyLib, document: PolicyDocument, fields: ResultField[]): () => (ColumnMasking | null)[] {
  let described: (ColumnMasking | null)[] | null = null;
  return () => {
    if (described) return described;
    described = fields.map(() => null);
    try {
      const x = lib.explainMaskingPlan(document, fields) as { columns?: { index: number; action: string; rule?: string; strategy?: string; detectors?: { detector: string; rule: string; strategy: string }[] }[] } | undefined;
      for (const c of x?.columns ?? []) {
        if (c.action === 'mask' && c.rule) described[c.index] = { by: 'rule', rule: c.rule, strategy: c.strategy ?? '' };
        else if (c.action === 'scan' && c.detectors?.length) described[c.index] = { by: 'detectors', detectors: c.detectors };
      }
    } catch {
      // the description is for the record only; the rows are masked by the plan either way
    }
    return described;
  };
}

function quoteIdent(s: string): string {
  return `"${s.replace(/"/g, '""')}"`;
}

/** Same columns for a masking plan: what its cache key is made of (the table name follows from tableOid). */
function sameLayout(a: RowField[], b: RowField[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    const y = b[i];
    if (x.name !== y.name || x.tableOid !== y.tableOid || x.columnAttr !== y.columnAttr || x.typeOid !== y.typeOid || x.format !== y.format) return false;
  }
  return true;
}

/** A library plan as the relay's RowMasker; `maskLine` masks one COPY line (default: the default text format). */
function wrapPlan(p: MaskingPlan, maskLine: (line: Buffer) => Buffer = (line) => p.maskCopyLine(line)): RowMasker {
  return {
    columns: p.maskedColumns,
    maskDataRow: (row, out) => p.maskDataRow(row, out),
    maskCopyLine: (line) => {
      const before = p.maskedValues;
      const out = maskLine(line);
      return { line: out, changed: p.maskedValues - before };
    },
  };
}

/**
 * The query whose columns a `COPY ... TO STDOUT` sends: `COPY (query) TO` → query;
 * `COPY table [(cols)] TO` → `SELECT cols FROM table`. null for anything else (COPY FROM...).
 */
export function copySource(sql: string): string | null {
  return parseCopyTo(sql)?.source ?? null;
}

/**
 * `COPY ... TO STDOUT <options>` split into the query its columns come from (see copySource) and
 * the text after `TO STDOUT` (options, trimmed). The subquery match is greedy, so `options` is what
 * follows the last `) TO STDOUT`: anything cleverer leaves a source that does not describe (refused).
 * The output format the masker reads is not taken from this text but from the statement's parse
 * tree (@portcullis/policy parseCopyToFormat).
 */
export function parseCopyTo(sql: string): { source: string; options: string; wholeTable?: true } | null {
  const s = sql.trim().replace(/;\s*$/, '');
  const sub = /^copy\s*\(([\s\S]*)\)\s*to\s+stdout\b/i.exec(s);
  if (sub) return { source: sub[1], options: s.slice(sub[0].length).trim() };
  const tbl = /^copy\s+((?:"[^"]+"|[\w$]+)(?:\s*\.\s*(?:"[^"]+"|[\w$]+))?)\s*(?:\(([^)]*)\))?\s*to\s+stdout\b/i.exec(s);
  if (tbl) {
    const options = s.slice(tbl[0].length).trim();
    return tbl[2]?.trim() ? { source: `SELECT ${tbl[2].trim()} FROM ${tbl[1]}`, options } : { source: `SELECT * FROM ${tbl[1]}`, options, wholeTable: true };
  }
  return null;
}
