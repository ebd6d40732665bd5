import { DataRowView, decodeRowDescription, type RowField } from '@portcullis/protocol';
import type { ColumnMasking, RowMasker } from './session-hooks.js';

/** What a policy's `recording.results` keeps of each statement's result. */
export interface ResultLimits {
  rows: number;
  bytes: number;
}

/** One column of a kept result: its name and type, and how the masking plan treats it (absent: untouched). */
export interface ReturnedColumn {
  name: string;
  typeOid: number;
  /** 'binary': values are shown as `\x` + hex (what went to the client, not decoded) */
  format?: 'binary';
  masking?: ColumnMasking;
}

/**
 * One result set of a statement as the client received it (after masking): the first rows up to the
 * policy's limits. `masked[i]` lists the columns of row i whose value the gateway replaced.
 */
export type ReturnedSet = {
  columns: ReturnedColumn[];
  rows: (string | null)[][];
  masked: number[][];
  /** rows of this set the client received beyond those kept (limits reached) */
  truncated?: true;
};

const HEX = '0123456789abcdef';

/** A value as the client got it: text as UTF-8 (U+0000 cannot be stored in jsonb), binary as `\x` hex. */
function cell(payload: Buffer, start: number, len: number, binary: boolean): string | null {
  if (len < 0) return null;
  if (binary) {
    let s = '\\x';
    for (let i = start; i < start + len; i++) s += HEX[payload[i] >> 4] + HEX[payload[i] & 15];
    return s;
  }
  const s = payload.toString('utf8', start, start + len);
  return s.includes('\u0000') ? s.replaceAll('\u0000', '\uFFFD') : s;
}

function sameValue(a: DataRowView, b: DataRowView, i: number): boolean {
  const la = a.lengths[i];
  if (la !== b.lengths[i]) return false;
  if (la <= 0) return true;
  return a.payload.compare(b.payload, b.starts[i], b.starts[i] + la, a.starts[i], a.starts[i] + la) === 0;
}

/**
 * Keeps the first rows of each result, exactly as they left the gateway, for the session record
 * (policy `recording.results`). The relay tells it the layout the rows follow and hands it each row
 * the client gets; with a masking plan, also the row as it came from the server, so each replaced
 * value is marked. It stops looking at rows once a statement's limits are reached: a large result
 * costs the relay nothing past them.
 */
export class ResultCapture {
  private fields: RowField[] | null = null;
  private columns: ReturnedColumn[] | null = null;
  private current: ReturnedSet | null = null;
  /** sets of the statement being answered (a simple Query may run several) */
  private sets: ReturnedSet[] = [];
  private rows = 0;
  private bytes = 0;
  private full = false;
  private readonly sent = new DataRowView();
  private readonly original = new DataRowView();

  constructor(private readonly limits: ResultLimits) {}

  /** The row layout of the result about to flow (a RowDescription payload), and its masking plan. */
  layout(payload: Buffer | RowField[], masker: RowMasker | null): void {
    try {
      this.fields = Array.isArray(payload) ? payload : decodeRowDescription(payload).fields;
    } catch {
      this.fields = null;
    }
    this.columns = null;
    this.current = null;
    if (!this.fields) return;
    const described = masker?.describe?.() ?? null;
    this.columns = this.fields.map((f, i) => {
      const c: ReturnedColumn = { name: f.name, typeOid: f.typeOid };
      if (f.format === 1) c.format = 'binary';
      const m = described?.[i];
      if (m) c.masking = m;
      return c;
    });
  }

  /** True while another row would still be kept. */
  get wants(): boolean {
    return !this.full && this.columns !== null;
  }

  /**
   * A DataRow payload as the client receives it; `original`: the server's row when masking replaced
   * values (so the replaced ones are marked).
   */
  row(sent: Buffer, original: Buffer | null): void {
    const columns = this.columns;
    if (!columns) return;
    if (!this.current) {
      this.current = { columns, rows: [], masked: [] };
      this.sets.push(this.current);
    }
    const set = this.current;
    if (this.full) {
      set.truncated = true;
      return;
    }
    if (this.rows >= this.limits.rows) {
      this.full = true;
      set.truncated = true;
      return;
    }
    let view: DataRowView;
    try {
      view = this.sent.read(sent);
    } catch {
      return;
    }
    let orig: DataRowView | null = null;
    if (original) {
      try {
        orig = this.original.read(original);
        if (orig.count !== view.count) orig = null;
      } catch {
        orig = null;
      }
    }
    const values: (string | null)[] = [];
    const masked: number[] = [];
    let size = 2;
    for (let i = 0; i < view.count; i++) {
      const v = cell(view.payload, view.starts[i], view.lengths[i], columns[i]?.format === 'binary');
      values.push(v);
      size += v === null ? 5 : Buffer.byteLength(v) + 3;
      if (orig && !sameValue(view, orig, i)) masked.push(i);
    }
    view.release();
    orig?.release();
    if (this.bytes + size > this.limits.bytes) {
      this.full = true;
      set.truncated = true;
      return;
    }
    this.bytes += size;
    this.rows++;
    set.rows.push(values);
    set.masked.push(masked);
  }

  /** One result set ended (CommandComplete, error): the next rows start a new set. */
  endSet(): void {
    this.current = null;
    this.fields = null;
    this.columns = null;
  }

  /** The statement's kept sets (undefined when it returned no rows), and a fresh start for the next one. */
  take(): ReturnedSet[] | undefined {
    const sets = this.sets.filter((s) => s.rows.length > 0 || s.truncated);
    this.sets = [];
    this.current = null;
    this.fields = null;
    this.columns = null;
    this.rows = 0;
    this.bytes = 0;
    this.full = false;
    return sets.length ? sets : undefined;
  }
}
