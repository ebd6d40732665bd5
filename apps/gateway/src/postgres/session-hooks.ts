import type { DataRowView, DataRowWriter, RowField } from '@portcullis/protocol';
import type { ConsequenceJudgement, Decision as PolicyDecision, MeasurePlan, Measurement } from '@portcullis/policy';

/*
 * The SQL policy points of a Postgres session (the relay's, RelayMachine): Postgres-only, so they
 * live in the Postgres module; the protocol-neutral session core (core/) knows none of them.
 */

/** A statement as the relay sees it at a policy point. */
export interface StatementInfo {
  sql: string;
  /** 'function-call': a FunctionCall ('F') message, `sql` being the `SELECT schema.fn($1, …)` it amounts to */
  protocol: 'simple' | 'extended' | 'function-call';
  /** prepared statement name (extended protocol; '' = unnamed) */
  statement?: string;
  portal?: string;
}

export type PolicyAction = PolicyDecision['action'];

/**
 * A decision on one statement (a simple Query with several statements gets one, the most restrictive):
 * the policy's Decision as the relay carries it. `reason` is null where the gateway decides without the
 * policy (no policy on the connection); `policyVersion` names the policy version that decided when it
 * is not the one the session started with.
 */
export type Verdict = Pick<PolicyDecision, 'action' | 'rule' | 'sqlstate' | 'masked'> &
  Partial<Pick<PolicyDecision, 'kinds' | 'cached' | 'measure'>> & {
    reason: string | null; policyVersion?: number;
    /** what the measured write would do, for a statement held by a consequence rule (the approval shows it) */
    consequence?: ConsequenceInfo;
  };

/** Rows of a measured write, masked like any result, for the approver. */
export interface ConsequenceSample {
  columns: string[];
  rows: (string | null)[][];
  /** why rows are missing or fewer than asked, when they are */
  note?: string;
}

/** A measured write held for approval (or refused): what it would have changed. */
export interface ConsequenceInfo {
  rowsAffected: number;
  /** the threshold of the rule that tripped (null: held by another rule, the count is for the approver) */
  threshold: number | null;
  rule: string | null;
  tables: string[];
  sample: ConsequenceSample | null;
  /** the count an earlier approval was given for, when the re-measured count moved */
  previouslyApproved?: number;
}

/** The consequence functions of the policy library the relay measures with (loaded with it). */
export interface ConsequenceHelpers {
  judge(plan: MeasurePlan, m: Measurement): ConsequenceJudgement;
  rowsOfTag(tag: string): number | null;
  writesBetween(before: [string, string][], after: [string, string][]): { table: string; rows: number }[];
  withinTolerance(check: { tolerance: { rows: number } | { percent: number } }, approved: number, measured: number): boolean;
  /** the sample query for one INSERT/UPDATE/DELETE (null: none can be made) */
  sampleQuery(sql: string, limit: number): string | null;
  /** per-table rows written in the transaction so far */
  readonly writesSql: string;
}

/**
 * What became of a statement that needed approval. `approved` → it runs as sent; otherwise the
 * client gets an ErrorResponse with `code` (default 42501) and `message`.
 */
export type ApprovalOutcome =
  | { approved: true; approvalId?: string }
  | { approved: false; approvalId?: string; code?: string; message: string; detail?: string };

/** A column of a result as the masking engine wants it. */
export type ResultField = import('@portcullis/policy').ResultField;

/**
 * How the masking plan treats one column of a result (for the kept rows of `recording.results`):
 * masked whole by a column rule, or scanned by content detectors (each with the rule that owns it).
 */
export type ColumnMasking =
  | { by: 'rule'; rule: string; strategy: string }
  | { by: 'detectors'; detectors: { detector: string; rule: string; strategy: string }[] };

/** How the rows of one result are rewritten. */
export interface RowMasker {
  /** column names masked (for the session events) */
  readonly columns: readonly string[];
  /** per result column (by index), how the plan treats it; null where it leaves the column alone */
  describe?(): (ColumnMasking | null)[];
  /**
   * Masks one DataRow read in place: the values it replaces go to `out` (begun on `row` by the
   * caller), the others are not touched; returns how many values it replaced (0: relay the row as it
   * came, `out` holds nothing). Throws when a value cannot be masked (the result is then withheld).
   */
  maskDataRow(row: DataRowView, out: DataRowWriter): number;
  /** One line of COPY TO STDOUT text data (without or with its trailing newline); null when the plan cannot mask copy data. */
  maskCopyLine(line: Buffer): { line: Buffer | string; changed: number };
}

/** A FunctionCall ('F') message as the policy sees it. */
export interface FunctionCallInfo {
  /** the function's OID (pg_proc.oid) */
  oid: number;
  /** how many arguments it passes */
  args: number;
  /** the result format it asks for (0 text, 1 binary) */
  resultFormat: number;
}

/**
 * How a function call is decided: `sql` is the statement it amounts to (recorded as the statement),
 * `verdict` the policy's decision on it, `plan` how the call's one value is masked. `refusal`: it
 * cannot be decided (no function has the OID, or it could not be looked up); nothing runs.
 */
export interface FunctionCallDecision {
  sql: string;
  verdict: Verdict;
  plan?: RowPlan;
  refusal?: { code: string; message: string };
}

/** null: pass rows through untouched; refuse: the statement fails, rows never leave the gateway. */
export type RowPlan = null | { kind: 'mask'; masker: RowMasker } | { kind: 'refuse'; reason: string };

/**
 * The points where policy acts on a session. The relay calls these and nothing else decides.
 * Each may answer synchronously (hot path) or with a promise: the relay then pauses that direction
 * of the session (and only that session) until it settles.
 *
 * - onQuery: each simple-protocol Query (one verdict for all its statements).
 * - onParse: each extended-protocol Parse.
 * - onApprovalRequired: a `require_approval` verdict; resolves when a human (or a timeout) decided.
 *   Absent → the statement is refused with a message saying approval is required.
 * - onRowDescription: the row layout of a result about to flow (simple query, or a portal about to
 *   execute); returns how its rows are masked.
 * - onDataRow / onCopyData: each row of a result that has a masking plan.
 * - onCopyOut: a COPY TO STDOUT about to flow (`sql` is the statement that started it).
 */
export interface SessionHooks {
  /** true when results may need masking: the relay then tracks row layouts; false keeps the hot path raw */
  readonly masksResults: boolean;
  /** policy `recording.results`: the first rows/bytes of each result the client receives go into its event */
  readonly recordResults?: { rows: number; bytes: number } | null;
  onQuery(stmt: StatementInfo): Verdict | Promise<Verdict>;
  onParse(stmt: StatementInfo): Verdict | Promise<Verdict>;
  onApprovalRequired?(stmt: StatementInfo, verdict: Verdict): Promise<ApprovalOutcome>;
  onRowDescription(fields: RowField[]): RowPlan | Promise<RowPlan>;
  /** one row through `masker.maskDataRow`: the number of values replaced in `out` */
  onDataRow(masker: RowMasker, row: DataRowView, out: DataRowWriter): number;
  onCopyOut(info: { format: number; columnFormats: number[]; sql: string | null }): RowPlan | Promise<RowPlan>;
  onCopyData(masker: RowMasker, line: Buffer): { line: Buffer | string; changed: number };
  /** a FunctionCall message; absent: refused (fail closed) */
  onFunctionCall?(call: FunctionCallInfo): FunctionCallDecision | Promise<FunctionCallDecision>;
  /**
   * The fields of an ErrorResponse / NoticeResponse as the client may see them (null: unchanged).
   * `maskedRule`: the statement it belongs to reads or writes a column that rule masks.
   * Absent: server messages pass as they come.
   */
  scrubServerMessage?(fields: Readonly<Record<string, string>>, maskedRule: string | null): Record<string, string> | null;
  /** the session ended: release anything held (side connections, pending approvals) */
  close?(): void;
  /** the functions writes are measured with (absent: a verdict asking for a measurement is refused) */
  consequence?: ConsequenceHelpers;
  /** the session's policy has consequence rules: its statements never go by the fast lane */
  readonly measuresWrites?: boolean;
}

/** Hooks for a session with no policy: everything allowed, nothing masked. */
export const ALLOW_ALL_HOOKS: SessionHooks = {
  masksResults: false,
  onQuery: () => ({ action: 'allow', rule: null, reason: 'no policy on this connection' }),
  onParse: () => ({ action: 'allow', rule: null, reason: 'no policy on this connection' }),
  onRowDescription: () => null,
  onDataRow: (m, row, out) => m.maskDataRow(row, out),
  onCopyOut: () => null,
  onCopyData: (m, l) => m.maskCopyLine(l),
  onFunctionCall: (c) => ({ sql: `-- function call: OID ${c.oid >>> 0}`, verdict: { action: 'allow', rule: null, reason: 'no policy on this connection' } }),
};
