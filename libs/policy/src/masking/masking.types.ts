import type { CopyFormat } from '../copy-format.js';

/** The masking engine's public types (re-exported by libs/policy's index). */

export interface ResultField {
  name: string;
  tableOid: number;
  columnAttr: number;
  typeOid: number;
  format: 0 | 1;
  /** `schema.table` when the caller resolved tableOid */
  table?: string;
  /**
   * The table column this result column is (from tableOid/columnAttr), when the caller resolved it and
   * the query named it otherwise (`SELECT ssn AS x`): column rules match either name.
   */
  column?: string;
}

export interface MaskingOptions {
  hmacKey: Buffer;
}

/**
 * A row's values as bytes in place (@portcullis/protocol's DataRowView satisfies it): value i is
 * `payload[starts[i], starts[i] + lengths[i])`, SQL NULL when `lengths[i]` is -1.
 */
export interface RowValues {
  readonly payload: Buffer;
  readonly count: number;
  readonly starts: Int32Array;
  readonly lengths: Int32Array;
}

/**
 * Where maskDataRow writes the values it replaces, in increasing column order; values it does not
 * touch keep their bytes (@portcullis/protocol's DataRowWriter satisfies it).
 */
export interface RowOutput {
  setNull(i: number): void;
  /** value i becomes the UTF-8 of s */
  setString(i: number, s: string): void;
  setBytes(i: number, src: Uint8Array, start: number, end: number): void;
  /** value i becomes `len` bytes the caller writes at `buf[returned offset ...]` right away */
  reserve(i: number, len: number): number;
  readonly buf: Uint8Array;
}

export interface MaskingPlan {
  kind: 'plan';
  /**
   * Masks one row read in place (the relay's hot path): replaced values go to `out`, the rest are
   * not touched; returns how many values it replaced (0: the row goes out as it came). Same results
   * as maskRow on the decoded values. Columns no rule or detector can touch are never looked at.
   */
  maskDataRow(row: RowValues, out: RowOutput): number;
  /**
   * Masks one row (DataRow values in field order). Same array and changed=0 when nothing changed.
   * A masked text-format value comes back as a string (its UTF-8 is the new value), so an encoder
   * writes it straight into the new DataRow (encodeDataRow does) instead of through a Buffer copy;
   * binary values (jsonb, arrays) come back as Buffers.
   */
  maskRow(values: (Buffer | null)[]): { values: (Buffer | string | null)[]; changed: number };
  /** Masks one COPY … TO STDOUT text-format line (tab-separated, \N null, backslash escapes). */
  maskCopyLine(line: Buffer): Buffer;
  /**
   * The line masker of one `COPY … TO STDOUT` in `format` (text with any delimiter and NULL string,
   * or CSV): call it once per CopyData message, in order — with HEADER the first line is the header,
   * which must name the plan's columns and passes as it came. Returns the line itself when nothing
   * in it changed. Throws MaskingError for a format it cannot read exactly (see copyFormatProblem)
   * and for a line that does not fit the format or the plan (wrong column count…).
   * The default format gets maskCopyLine.
   */
  copyLineMasker(format: CopyFormat): (line: Buffer) => Buffer;
  maskedColumns: string[];
  stats(): { values: number; byRule: Record<string, number> };
  /** values masked so far: stats().values without copying the per-rule counts (read per COPY line) */
  readonly maskedValues: number;
}

export interface MaskingRefusal {
  kind: 'refuse';
  reason: string;
}
