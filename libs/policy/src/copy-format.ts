import { MaskingError } from './errors.js';

/**
 * The lines of `COPY … TO STDOUT` in the text and CSV formats, as the server writes them
 * (https://www.postgresql.org/docs/15/sql-copy.html, "File Formats"; the writer is
 * CopyAttributeOutText / CopyAttributeOutCSV in src/backend/commands/copyto.c). The server sends
 * exactly one row per CopyData message, ending with `\n`; a quoted CSV value may hold newlines of
 * its own inside that one message.
 *
 * Bytes are read as UTF-8: the delimiter, quote and escape are single ASCII bytes, and no byte of a
 * multi-byte UTF-8 character is ever ASCII, so scanning bytes finds them exactly. (An encoding that
 * embeds ASCII bytes in its characters, e.g. SJIS, would not; the gateway refuses COPY with a
 * non-UTF-8 ENCODING.)
 */

/** The text format: fields split by the delimiter, backslash escapes, a NULL string. */
export interface CopyTextFormat {
  readonly format: 'text';
  /** one ASCII character; default tab */
  readonly delimiter: string;
  /** the field a NULL is sent as; default `\N` */
  readonly null: string;
  /** the first line is a header (the column names), sent as it came */
  readonly header: boolean;
}

/** The CSV format: a field is quoted when its value needs it (or FORCE_QUOTE says so). */
export interface CopyCsvFormat {
  readonly format: 'csv';
  /** one ASCII character; default `,` */
  readonly delimiter: string;
  /** one ASCII character; default `"` */
  readonly quote: string;
  /** one ASCII character; default the quote */
  readonly escape: string;
  /** an unquoted field equal to it is NULL (a quoted one is a value); default the empty string */
  readonly null: string;
  readonly header: boolean;
  /** FORCE_QUOTE: `*` or column names; their non-NULL values are always quoted */
  readonly forceQuote: '*' | readonly string[];
}

export type CopyFormat = CopyTextFormat | CopyCsvFormat;

/** `COPY … TO STDOUT` with no options: what maskCopyLine reads. */
export const DEFAULT_COPY_FORMAT: CopyTextFormat = Object.freeze({ format: 'text', delimiter: '\t', null: '\\N', header: false });

export function isDefaultCopyFormat(f: CopyFormat): boolean {
  return f.format === 'text' && f.delimiter === '\t' && f.null === '\\N' && !f.header;
}

/** Characters a text-format delimiter cannot be: they begin or are escapes (and the server refuses them too). */
const TEXT_DELIMITER_FORBIDDEN = '\\.abcdefghijklmnopqrstuvwxyz0123456789';

/**
 * Why `f` is not a format this codec reads exactly, or null. Stricter than the server where the
 * server's choice would be legal but ambiguous to read back (an escape equal to the delimiter).
 */
export function copyFormatProblem(f: CopyFormat): string | null {
  const oneByte = (what: string, c: string): string | null => {
    if (c.length !== 1) return `${what} must be a single one-byte character`;
    const x = c.charCodeAt(0);
    if (x === 0 || x > 127) return `${what} must be an ASCII character`;
    if (x === 10 || x === 13) return `${what} cannot be newline or carriage return`;
    return null;
  };
  const delimiter = oneByte('the COPY delimiter', f.delimiter);
  if (delimiter) return delimiter;
  if (/[\r\n]/.test(f.null)) return 'the COPY null representation cannot use newline or carriage return';
  if (f.null.includes(f.delimiter)) return 'the COPY delimiter must not appear in the NULL specification';
  if (f.format === 'text') {
    if (TEXT_DELIMITER_FORBIDDEN.includes(f.delimiter)) return `the COPY delimiter cannot be "${f.delimiter}" in the text format`;
    return null;
  }
  const quote = oneByte('the COPY quote', f.quote) ?? oneByte('the COPY escape', f.escape);
  if (quote) return quote;
  if (f.quote === f.delimiter) return 'the COPY delimiter and quote must be different';
  if (f.escape === f.delimiter) return 'a COPY escape equal to the delimiter is not supported where masking applies';
  if (f.null.includes(f.quote)) return 'the CSV quote character must not appear in the NULL specification';
  return null;
}

/** The bytes a COPY text field stands for (the field itself when it has no backslash). */
export function copyDecode(field: Buffer): Buffer {
  if (field.indexOf(92) < 0) return field;
  const out: number[] = [];
  for (let i = 0; i < field.length; i++) {
    const c = field[i];
    if (c !== 92 || i + 1 >= field.length) { out.push(c); continue; }
    const n = field[++i];
    switch (n) {
      case 98: out.push(8); break; // \b
      case 102: out.push(12); break; // \f
      case 110: out.push(10); break; // \n
      case 114: out.push(13); break; // \r
      case 116: out.push(9); break; // \t
      case 118: out.push(11); break; // \v
      case 120: { // \xH or \xHH
        let v = 0; let k = 0;
        while (k < 2 && i + 1 < field.length && /[0-9a-fA-F]/.test(String.fromCharCode(field[i + 1]))) { v = v * 16 + parseInt(String.fromCharCode(field[++i]), 16); k++; }
        if (k === 0) out.push(120); else out.push(v & 0xff);
        break;
      }
      default:
        if (n >= 48 && n <= 55) { // \o, \oo, \ooo
          let v = n - 48; let k = 1;
          while (k < 3 && i + 1 < field.length && field[i + 1] >= 48 && field[i + 1] <= 55) { v = v * 8 + (field[++i] - 48); k++; }
          out.push(v & 0xff);
        } else out.push(n);
    }
  }
  return Buffer.from(out);
}

const COPY_ESCAPES: Record<string, string> = { '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t', '\b': '\\b', '\f': '\\f', '\v': '\\v' };

/** A value as a default text-format field (tab delimiter). */
export function copyEncode(s: string): string {
  return s.replace(/[\\\n\r\t\b\f\v]/g, (c) => COPY_ESCAPES[c]);
}

/** Control characters the text format writes as a backslash and a letter (CopyAttributeOutText). */
const TEXT_CONTROL_LETTER: Record<number, string> = { 8: 'b', 12: 'f', 10: 'n', 13: 'r', 9: 't', 11: 'v' };

/** One line of a COPY in `format`, split into its fields as sent. */
export interface CopyLine {
  /** each field's bytes as sent (quotes and escapes included), views into the line */
  fields: Buffer[];
  /** the line ended with its `\n` */
  newline: boolean;
}

/**
 * Reads and writes the lines of one COPY in one format. Strict: a line the server could not have
 * written in this format (two rows in one message, a quote inside an unquoted CSV field, an
 * unterminated quoted field) is a MaskingError, never a best guess.
 */
export class CopyLineCodec {
  private readonly delim: number;
  private readonly quote: number;
  private readonly escape: number;
  private readonly nullString: string;
  /** per column: FORCE_QUOTE applies */
  private readonly forced: boolean[];
  private readonly singleColumn: boolean;
  readonly nullField: Buffer;

  constructor(readonly format: CopyFormat, columnNames: readonly string[]) {
    const problem = copyFormatProblem(format);
    if (problem) throw new MaskingError(problem);
    this.delim = format.delimiter.charCodeAt(0);
    this.quote = format.format === 'csv' ? format.quote.charCodeAt(0) : -1;
    this.escape = format.format === 'csv' ? format.escape.charCodeAt(0) : -1;
    this.nullString = format.null;
    this.nullField = Buffer.from(format.null, 'utf8');
    this.singleColumn = columnNames.length === 1;
    this.forced = columnNames.map(() => format.format === 'csv' && format.forceQuote === '*');
    if (format.format === 'csv' && format.forceQuote !== '*') {
      for (const name of format.forceQuote) {
        // as the server: the first column of that name (CopyGetAttnums)
        const i = columnNames.indexOf(name);
        if (i < 0) throw new MaskingError(`FORCE_QUOTE column "${name}" is not a column of the COPY`);
        this.forced[i] = true;
      }
    }
  }

  split(line: Buffer): CopyLine {
    return this.quote < 0 ? this.splitText(line) : this.splitCsv(line);
  }

  /** Text format: a delimiter preceded by a backslash is data (`\|`), not a field boundary. */
  private splitText(line: Buffer): CopyLine {
    let end = line.length;
    const newline = end > 0 && line[end - 1] === 10;
    if (newline) end--;
    const fields: Buffer[] = [];
    let start = 0;
    for (let i = 0; i < end; i++) {
      const c = line[i];
      if (c === 92) {
        i++;
        if (i < end && (line[i] === 10 || line[i] === 13)) throw new MaskingError('COPY text line with a raw newline after a backslash');
        continue;
      }
      if (c === 10 || c === 13) throw new MaskingError('COPY text line with a raw newline inside it (one row per message expected)');
      if (c === this.delim) { fields.push(line.subarray(start, i)); start = i + 1; }
    }
    fields.push(line.subarray(start, end));
    return { fields, newline };
  }

  /**
   * CSV (the server's reader, CopyReadAttributesCSV, on what its writer produces): a field is either
   * quoted whole — inside, the escape before a quote or an escape makes it data, and the quote that
   * is not escaped closes the field — or unquoted, with no quote, CR or LF in it (an escape there is
   * data).
   */
  private splitCsv(line: Buffer): CopyLine {
    const n = line.length;
    const { delim, quote, escape } = this;
    const fields: Buffer[] = [];
    let i = 0;
    for (;;) {
      const start = i;
      if (i < n && line[i] === quote) {
        i++;
        for (;;) {
          if (i >= n) throw new MaskingError('unterminated quoted CSV field in a COPY line');
          const c = line[i];
          // the escape test comes first: the quote and the escape are often the same character
          if (c === escape && i + 1 < n && (line[i + 1] === escape || line[i + 1] === quote)) { i += 2; continue; }
          i++;
          if (c === quote) break;
        }
        if (i < n && line[i] !== delim && !(line[i] === 10 && i === n - 1)) throw new MaskingError('unexpected data after a quoted CSV field in a COPY line');
      } else {
        while (i < n && line[i] !== delim && line[i] !== 10) {
          const c = line[i];
          if (c === quote || c === 13) throw new MaskingError('a quote or carriage return inside an unquoted CSV field in a COPY line');
          i++;
        }
        if (i < n && line[i] === 10 && i !== n - 1) throw new MaskingError('COPY CSV message with more than one row');
      }
      fields.push(line.subarray(start, i));
      if (i >= n) return { fields, newline: false };
      if (line[i] === 10) return { fields, newline: true };
      i++; // the delimiter; a delimiter at the end of the line is followed by an empty field
    }
  }

  /** Whether a field (as sent) stands for NULL: text, equal to the NULL string; CSV, also unquoted. */
  isNull(field: Buffer): boolean {
    return field.equals(this.nullField) && (this.quote < 0 || field.length === 0 || field[0] !== this.quote);
  }

  /** The bytes a (non-NULL) field stands for. */
  decode(field: Buffer): Buffer {
    if (this.quote < 0) return copyDecode(field);
    if (field.length === 0 || field[0] !== this.quote) return field;
    const last = field.length - 1; // the closing quote
    const out = Buffer.allocUnsafe(last);
    let o = 0;
    for (let i = 1; i < last; i++) {
      const c = field[i];
      if (c === this.escape && i + 1 < last && (field[i + 1] === this.escape || field[i + 1] === this.quote)) { out[o++] = field[++i]; continue; }
      out[o++] = c;
    }
    return out.subarray(0, o);
  }

  /** A value of column `column` as the server would have written it. */
  encode(s: string, column: number): Buffer {
    return Buffer.from(this.quote < 0 ? this.encodeText(s) : this.encodeCsv(s, column), 'utf8');
  }

  /** CopyAttributeOutText: \b \f \n \r \t \v as letters, a backslash or the delimiter after a backslash. */
  private encodeText(s: string): string {
    let out = '';
    let from = 0;
    for (let i = 0; i < s.length; i++) {
      const x = s.charCodeAt(i);
      let esc: string;
      if (x < 0x20) {
        const letter = TEXT_CONTROL_LETTER[x];
        if (letter !== undefined) esc = `\\${letter}`;
        else if (x === this.delim) esc = `\\${s[i]}`;
        else continue;
      } else if (x === 92 || x === this.delim) esc = `\\${s[i]}`;
      else continue;
      out += s.slice(from, i) + esc;
      from = i + 1;
    }
    return from === 0 ? s : out + s.slice(from);
  }

  /**
   * CopyAttributeOutCSV: quoted when FORCE_QUOTE covers the column, when the value equals the NULL
   * string (the empty value under the default NULL), when it is `\.` alone in a one-column COPY (the
   * old end-of-data marker), or when it holds the delimiter, the quote, CR or LF — not for the
   * escape alone (an escape outside quotes is data; Postgres 15 writes `\` unquoted under ESCAPE
   * '\', and the round-trip test against it holds us to that); inside quotes, the quote and the
   * escape get the escape before them.
   */
  private encodeCsv(s: string, column: number): string {
    let quoted = this.forced[column] || s === this.nullString || (this.singleColumn && s === '\\.');
    for (let i = 0; !quoted && i < s.length; i++) {
      const x = s.charCodeAt(i);
      quoted = x === this.delim || x === this.quote || x === 10 || x === 13;
    }
    if (!quoted) return s;
    const q = this.format.format === 'csv' ? this.format.quote : '';
    const e = this.format.format === 'csv' ? this.format.escape : '';
    let out = q;
    let from = 0;
    for (let i = 0; i < s.length; i++) {
      const x = s.charCodeAt(i);
      if (x !== this.quote && x !== this.escape) continue;
      out += s.slice(from, i) + e;
      from = i; // the character itself goes out with the next run
    }
    return out + s.slice(from) + q;
  }

  /** The fields joined into one line again. */
  join(line: CopyLine): Buffer {
    const parts: Buffer[] = [];
    const delim = Buffer.from([this.delim]);
    line.fields.forEach((f, i) => { if (i) parts.push(delim); parts.push(f); });
    if (line.newline) parts.push(NEWLINE);
    return Buffer.concat(parts);
  }
}

const NEWLINE = Buffer.from('\n');
