import { CopyLineCodec, copyDecode, copyEncode, isDefaultCopyFormat, type CopyFormat } from '../copy-format.js';
import { anyMayMatch, textFacts, FACT, type Detector, type TextFacts } from '../detectors.js';
import { MaskingError } from '../errors.js';
import type { PolicyDocument } from '../policy-document.js';
import { draftPlan, type ColumnPlan } from './column-plan.js';
import { hasherFor, type Hasher } from './hash-cache.js';
import type { MaskingOptions, MaskingPlan, MaskingRefusal, ResultField, RowOutput, RowValues } from './masking.types.js';
import type { CompiledRule } from './rules.js';
import { asciiBytes, partialAsciiBytes, partialMask } from './strategies.js';
import { maskBinaryArray, scanText, wholeValue } from './values.js';

/**
 * A result set's masking plan: DataRows read in place (maskDataRow, the relay's hot path, with a
 * per-column run decided once), decoded rows (maskRow) and COPY … TO STDOUT lines in any format.
 */

// How maskDataRow treats a column, decided once per plan. The value-independent strategies (null,
// redact) and the ones with a byte-level fast path (partial, hash of plain text) skip the generic
// path; JSON columns under a rule and binary jsonb/arrays take it (maskBuffer on a view of the value).
const RUN_GENERIC = 0;
const RUN_SCAN = 1;
const RUN_NULL = 2;
const RUN_REDACT = 3;
const RUN_PARTIAL = 4;
const RUN_HASH = 5;

interface ColumnRun {
  c: ColumnPlan;
  index: number;
  run: number;
  /** RUN_REDACT: the bytes every value becomes */
  token: Buffer | null;
  /** RUN_SCAN: the column's detectors */
  detectors: Detector[];
}

function columnRun(c: ColumnPlan): ColumnRun {
  const r: ColumnRun = { c, index: c.index, run: RUN_GENERIC, token: null, detectors: c.scan?.detectors ?? [] };
  if (c.codec !== 'text') return r;
  if (!c.rule) {
    r.run = RUN_SCAN;
    return r;
  }
  // wholeValue: null and redact do not depend on the value (a JSON column gets the token as a JSON string)
  if (c.rule.strategy === 'null') r.run = RUN_NULL;
  else if (c.rule.strategy === 'redact') {
    r.run = RUN_REDACT;
    r.token = Buffer.from(c.json ? JSON.stringify(c.rule.token) : c.rule.token, 'utf8');
  } else if (!c.json) r.run = c.rule.strategy === 'partial' ? RUN_PARTIAL : RUN_HASH;
  return r;
}

class Plan implements MaskingPlan {
  readonly kind = 'plan' as const;
  readonly maskedColumns: string[];
  private masked = 0;
  /** values masked per rule id (ruleNames[id]) */
  private readonly counts: number[];
  private readonly runs: ColumnRun[];

  constructor(
    private readonly columns: ColumnPlan[],
    /** every column of the result, masked or not, in order */
    private readonly names: readonly string[],
    private readonly hasher: Hasher,
    private readonly ruleNames: string[],
  ) {
    this.maskedColumns = columns.map((c) => c.field.name);
    this.counts = ruleNames.map(() => 0);
    this.runs = columns.map(columnRun);
  }

  stats() {
    const byRule: Record<string, number> = {};
    this.counts.forEach((n, id) => { if (n > 0) byRule[this.ruleNames[id]] = n; });
    return { values: this.masked, byRule };
  }

  get maskedValues(): number {
    return this.masked;
  }

  private count(rule: CompiledRule): void {
    this.counts[rule.id]++;
  }

  /** Masks one text; undefined = unchanged, null = SQL NULL. */
  private maskString(c: ColumnPlan, text: string, json: boolean, facts?: TextFacts): string | null | undefined {
    if (c.rule) {
      this.count(c.rule);
      return wholeValue(c.rule, text, json, this.hasher);
    }
    const r = scanText(text, c.scan!, json, this.hasher, facts);
    if (!r) return undefined;
    if (r.findings.length === 1) this.count(c.scan!.ruleOf.get(r.findings[0].detector)!);
    else {
      // each rule once per value
      const ids = new Set(r.findings.map((f) => c.scan!.ruleOf.get(f.detector)!.id));
      for (const id of ids) this.counts[id]++;
    }
    return r.value;
  }

  /**
   * Masks the UTF-8 text in bytes[start..]. A scanned column looks at the bytes first (textFacts):
   * when no detector can match, the value is left as it is without ever being decoded.
   */
  private maskBytes(c: ColumnPlan, bytes: Buffer, start: number, json: boolean): string | null | undefined {
    if (c.rule) return this.maskString(c, bytes.toString('utf8', start), json);
    const facts = textFacts(bytes, start, bytes.length);
    if (!anyMayMatch(c.scan!.detectors, facts)) return undefined;
    // ASCII decodes the same as latin1, which skips UTF-8 validation
    const text = facts.flags & FACT.NON_ASCII ? bytes.toString('utf8', start) : bytes.toString('latin1', start);
    return this.maskString(c, text, json, facts);
  }

  private maskBuffer(c: ColumnPlan, v: Buffer): Buffer | string | null | undefined {
    switch (c.codec) {
      case 'text':
        return this.maskBytes(c, v, 0, c.json);
      case 'jsonb-binary': {
        if (v.length === 0 || v[0] !== 1) throw new MaskingError('unsupported jsonb binary version');
        const s = this.maskBytes(c, v, 1, true);
        return s === undefined ? undefined : s === null ? null : Buffer.concat([v.subarray(0, 1), Buffer.from(s, 'utf8')]);
      }
      case 'text-array-binary': {
        const elementJson = c.field.typeOid === 199 || c.field.typeOid === 3807;
        const jsonbElements = c.field.typeOid === 3807;
        return maskBinaryArray(v, (el) => {
          const s = this.maskBytes(c, el, jsonbElements ? 1 : 0, elementJson);
          if (s === undefined || s === null) return s;
          const body = Buffer.from(s, 'utf8');
          return jsonbElements ? Buffer.concat([el.subarray(0, 1), body]) : body;
        });
      }
    }
  }

  maskDataRow(row: RowValues, out: RowOutput): number {
    const runs = this.runs;
    const bytes = row.payload;
    let changed = 0;
    for (let k = 0; k < runs.length; k++) {
      const r = runs[k];
      const i = r.index;
      if (i >= row.count) continue; // a row shorter than its layout: as maskRow, the missing values are not there to mask
      const len = row.lengths[i];
      if (len < 0) continue;
      const start = row.starts[i];
      const end = start + len;
      switch (r.run) {
        case RUN_SCAN: {
          // the bytes first: a value no detector can match is never decoded
          const facts = textFacts(bytes, start, end);
          if (!anyMayMatch(r.detectors, facts)) continue;
          const text = facts.flags & FACT.NON_ASCII ? bytes.toString('utf8', start, end) : bytes.toString('latin1', start, end);
          const m = this.maskString(r.c, text, r.c.json, facts);
          if (m === undefined) continue;
          if (m === null) out.setNull(i);
          else out.setString(i, m);
          break;
        }
        case RUN_NULL:
          this.count(r.c.rule!);
          out.setNull(i);
          break;
        case RUN_REDACT:
          this.count(r.c.rule!);
          out.setBytes(i, r.token!, 0, r.token!.length);
          break;
        case RUN_PARTIAL:
          this.count(r.c.rule!);
          if (!partialAsciiBytes(bytes, start, end, r.c.rule!.keepLast, out, i)) out.setString(i, partialMask(bytes.toString('utf8', start, end), r.c.rule!.keepLast));
          break;
        case RUN_HASH:
          this.count(r.c.rule!);
          // ASCII bytes are the UTF-8 of their text; anything else goes through decoding (invalid
          // UTF-8 becomes U+FFFD, as in maskRow)
          if (asciiBytes(bytes, start, end)) this.hasher.hashInto(bytes, start, end, out, i);
          else out.setString(i, this.hasher.hash(bytes.toString('utf8', start, end)));
          break;
        default: {
          const m = this.maskBuffer(r.c, bytes.subarray(start, end));
          if (m === undefined) continue;
          if (m === null) out.setNull(i);
          else if (typeof m === 'string') out.setString(i, m);
          else out.setBytes(i, m, 0, m.length);
        }
      }
      changed++;
    }
    this.masked += changed;
    return changed;
  }

  maskRow(values: (Buffer | null)[]): { values: (Buffer | string | null)[]; changed: number } {
    let out: (Buffer | string | null)[] | null = null;
    let changed = 0;
    for (const c of this.columns) {
      const v = values[c.index];
      if (v === null || v === undefined) continue;
      const m = this.maskBuffer(c, v);
      if (m === undefined) continue;
      out ??= values.slice();
      out[c.index] = m;
      changed++;
    }
    this.masked += changed;
    return out ? { values: out, changed } : { values, changed: 0 };
  }

  maskCopyLine(line: Buffer): Buffer {
    let end = line.length;
    const newline = end > 0 && line[end - 1] === 10;
    if (newline) end--;
    if (end === 2 && line[0] === 92 && line[1] === 46) return line; // \. end-of-data marker
    const fields: Buffer[] = [];
    let start = 0;
    for (let i = 0; i < end; i++) {
      if (line[i] === 9) { fields.push(line.subarray(start, i)); start = i + 1; }
    }
    fields.push(line.subarray(start, end));
    if (fields.length !== this.names.length) {
      throw new MaskingError(`COPY line has ${fields.length} columns, the masking plan expects ${this.names.length}`);
    }
    let changed = false;
    for (const c of this.columns) {
      const f = fields[c.index];
      if (f.length === 2 && f[0] === 92 && f[1] === 78) continue; // \N
      const s = this.maskBytes(c, copyDecode(f), 0, c.json);
      if (s === undefined) continue;
      fields[c.index] = Buffer.from(s === null ? '\\N' : copyEncode(s), 'utf8');
      this.masked++;
      changed = true;
    }
    if (!changed) return line;
    const parts: Buffer[] = [];
    fields.forEach((f, i) => { if (i) parts.push(TAB); parts.push(f); });
    if (newline) parts.push(NEWLINE);
    return Buffer.concat(parts);
  }

  copyLineMasker(format: CopyFormat): (line: Buffer) => Buffer {
    if (isDefaultCopyFormat(format)) return (line) => this.maskCopyLine(line);
    const codec = new CopyLineCodec(format, this.names);
    let header = format.header;
    return (line) => {
      if (!header) return this.maskCopyFields(codec, line);
      // The server sends the header as the first message. Checked, not assumed: were it a data row
      // (a HEADER the server read differently), it would pass unmasked.
      header = false;
      const { fields } = codec.split(line);
      if (fields.length !== this.names.length || fields.some((f, i) => codec.decode(f).toString('utf8') !== this.names[i])) {
        throw new MaskingError('the first line of a COPY with HEADER is not the header of its columns');
      }
      return line;
    };
  }

  private maskCopyFields(codec: CopyLineCodec, line: Buffer): Buffer {
    // \. alone is the old end-of-data marker, not a row (a value \. is sent as \\.), as in maskCopyLine
    if (codec.format.format === 'text' && line.length <= 3 && line[0] === 92 && line[1] === 46 && (line.length === 2 || line[2] === 10)) return line;
    const split = codec.split(line);
    const fields = split.fields;
    if (fields.length !== this.names.length) {
      throw new MaskingError(`COPY line has ${fields.length} columns, the masking plan expects ${this.names.length}`);
    }
    let changed = false;
    for (const c of this.columns) {
      const f = fields[c.index];
      // A text-format NULL string is not escaped by the server: a value equal to it reads as NULL
      // here as it would in COPY FROM (see the policy README, "COPY").
      if (codec.isNull(f)) continue;
      const s = this.maskBytes(c, codec.decode(f), 0, c.json);
      if (s === undefined) continue;
      fields[c.index] = s === null ? codec.nullField : codec.encode(s, c.index);
      this.masked++;
      changed = true;
    }
    return changed ? codec.join(split) : line;
  }
}

const TAB = Buffer.from('\t');
const NEWLINE = Buffer.from('\n');

/**
 * The masking plan of one result set: null when nothing in it can ever change, a refusal when a
 * covered column arrives in a binary format its rule cannot be applied to.
 */
export function createMaskingPlan(doc: PolicyDocument, fields: ResultField[], opts: MaskingOptions): MaskingPlan | MaskingRefusal | null {
  const draft = draftPlan(doc, fields);
  if (draft.refusal) return { kind: 'refuse', reason: draft.refusal };
  if (draft.columns.length === 0) return null;
  return new Plan(draft.columns, fields.map((f) => f.name), hasherFor(opts.hmacKey), draft.ruleNames);
}

/** JSON-able description of the plan: which rule covers which column, which detectors run where. */
export function explainMaskingPlan(doc: PolicyDocument, fields: ResultField[]): unknown {
  const draft = draftPlan(doc, fields);
  return { refused: draft.refusal, columns: draft.explain };
}

