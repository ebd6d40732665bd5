import type { ParserHealth } from '@portcullis/policy';
import type { DataRowView, DataRowWriter } from '@portcullis/protocol';
import type { ResultField } from './session-hooks.js';

/**
 * The slice of @portcullis/policy the gateway uses, loaded at start. Kept behind this seam so the
 * data path can start (and refuse policy-bound sessions, fail closed) even if the policy module
 * cannot load — e.g. its parser's WASM failing.
 */
export interface PolicyDecisionLike {
  action: 'allow' | 'block' | 'require_approval';
  rule: string | null;
  reason: string | null;
  kinds?: string[];
  cached?: boolean;
  /** the masking rule of a masked column the statement reads or writes: its error/notice texts are withheld */
  masked?: string;
  /** the SQLSTATE of a refusal when not 42501 (54001: statement too complex) */
  sqlstate?: string;
}

export interface PolicyEngineLike {
  evaluate(sql: string, ctx: { protocol: 'simple' | 'extended' }): PolicyDecisionLike;
}

export interface MaskingPlanLike {
  /** replaced values go to `out`; returns how many (see RowMasker.maskDataRow) */
  maskDataRow(row: DataRowView, out: DataRowWriter): number;
  maskCopyLine(line: Buffer | string): unknown;
  /** the masker of one COPY's lines in a format parseCopyToFormat gave (stateful: a HEADER line comes first) */
  copyLineMasker(format: CopyFormatLike): (line: Buffer) => Buffer;
  readonly maskedColumns: readonly unknown[];
  stats?(): { values: number };
  /** values masked so far, read before and after each COPY line (cheaper than stats()) */
  readonly maskedValues?: number;
}

/** A COPY TO output format as @portcullis/policy describes it (opaque here: handed back to the plan). */
export interface CopyFormatLike {
  readonly format: string;
}

export interface PolicyLib {
  initPolicyEngine(): Promise<unknown>;
  parsePolicyDocument(doc: unknown): unknown;
  PolicyEngine: new (doc: unknown, opts: { revision: number }) => PolicyEngineLike;
  createMaskingPlan(doc: unknown, fields: ResultField[], opts: { hmacKey: Buffer }): MaskingPlanLike | { kind: 'refuse'; reason: string } | null;
  /** which rule covers which column of a layout, which detectors scan where (for kept result rows) */
  explainMaskingPlan?(doc: unknown, fields: ResultField[]): unknown;
  /** the document's `recording.results` limits, null when results are recorded as counts only */
  resultRecordingOf?(doc: unknown): { rows: number; bytes: number } | null;
  /** ErrorResponse/NoticeResponse fields as the client may see them (null: unchanged) */
  scrubServerMessage(fields: Readonly<Record<string, string>>, doc: unknown, opts: { hmacKey: Buffer }, maskedRule: string | null): Record<string, string> | null;
  /** the output format of a `COPY … TO STDOUT` statement, or why it cannot be masked */
  parseCopyToFormat(sql: string): { kind: 'format'; format: CopyFormatLike } | { kind: 'refuse'; reason: string };
  /** whether the SQL parser can take statements now, and how often it was replaced (/readyz, metrics) */
  parserHealth(): ParserHealth;
}

let loaded: Promise<PolicyLib> | null = null;

/** Loads and initialises the policy library once (its SQL parser is WASM). */
export function loadPolicyLib(): Promise<PolicyLib> {
  if (!loaded) {
    const name = '@portcullis/policy';
    loaded = (import(name) as Promise<PolicyLib>).then(async (lib) => {
      await lib.initPolicyEngine();
      return lib;
    });
    loaded.catch(() => {
      loaded = null;
    });
  }
  return loaded;
}
