import { DEFAULT_COPY_FORMAT, copyFormatProblem, type CopyFormat } from './copy-format.js';
import { only } from './parse-tree.js';
import { parseSql } from './sql-parser.js';

/**
 * The output format of a `COPY … TO STDOUT`, read from its parse tree (CopyStmt.options: one
 * DefElem per option; the legacy `CSV HEADER`, `DELIMITER AS '|'`, `FORCE QUOTE a, b` syntax
 * parses to the same DefElems), the way the server reads them (ProcessCopyOptions in
 * src/backend/commands/copy.c). Fails closed: whatever is not understood exactly is a refusal
 * with a reason, never a guess. `initPolicyEngine()` must have resolved first (the parser is WASM).
 */
export type CopyToFormat = { kind: 'format'; format: CopyFormat } | { kind: 'refuse'; reason: string };


/** Options the server takes for COPY FROM only (or never from a client). */
const NOT_COPY_TO = new Set(['force_not_null', 'force_null', 'freeze', 'default', 'on_error', 'log_verbosity', 'reject_limit', 'convert_selectively']);

/** defGetString: what a string option's value reads as; undefined when it has none or a list. */
function stringValue(arg: unknown): string | undefined {
  const a = only(arg);
  if (!a) return undefined;
  const [type, body] = a;
  switch (type) {
    case 'String': return typeof body.sval === 'string' ? body.sval : '';
    case 'Integer': return String(typeof body.ival === 'number' ? body.ival : 0);
    case 'Float': return typeof body.fval === 'string' ? body.fval : undefined;
    case 'Boolean': return body.boolval === true ? 'true' : 'false';
    default: return undefined;
  }
}

/** defGetCopyHeaderChoice for COPY TO: no value, 0/1, true/false/on/off; undefined otherwise. */
function booleanValue(arg: unknown): boolean | undefined {
  if (arg === undefined || arg === null) return true;
  const a = only(arg);
  if (a && a[0] === 'Integer') {
    const v = typeof a[1].ival === 'number' ? a[1].ival : 0;
    return v === 0 ? false : v === 1 ? true : undefined;
  }
  const s = stringValue(arg)?.toLowerCase();
  return s === 'true' || s === 'on' ? true : s === 'false' || s === 'off' ? false : undefined;
}

/** pg_char_to_encoding's name cleaning: letters and digits, lower case. */
function isUtf8EncodingName(name: string): boolean {
  const clean = name.replace(/[^A-Za-z0-9]/g, '').toLowerCase();
  return clean === 'utf8' || clean === 'unicode';
}

export function parseCopyToFormat(sql: string): CopyToFormat {
  let tree: { stmts?: { stmt?: unknown }[] };
  try {
    tree = parseSql(sql) as typeof tree;
  } catch {
    return { kind: 'refuse', reason: 'the COPY statement could not be parsed' };
  }
  const stmts = tree.stmts ?? [];
  // one statement: with several, which of them this COPY output belongs to is not known here
  if (stmts.length !== 1) return { kind: 'refuse', reason: 'COPY TO must be the only statement of its query' };
  const s = only(stmts[0].stmt);
  if (!s || s[0] !== 'CopyStmt') return { kind: 'refuse', reason: 'the statement is not a COPY' };
  const copy = s[1];
  if (copy.is_from === true || copy.is_program === true || copy.filename !== undefined) return { kind: 'refuse', reason: 'the statement is not a COPY … TO STDOUT' };

  const seen = new Set<string>();
  let format = 'text';
  let delimiter: string | undefined;
  let nullString: string | undefined;
  let quote: string | undefined;
  let escape: string | undefined;
  let header = false;
  let forceQuote: '*' | string[] | undefined;
  for (const item of (copy.options as unknown[] | undefined) ?? []) {
    const d = only(item);
    if (!d || d[0] !== 'DefElem') return { kind: 'refuse', reason: 'a COPY option could not be read' };
    const name = String(d[1].defname ?? '');
    const arg = d[1].arg;
    // the server refuses a repeated option ("conflicting or redundant options"); so does this
    if (seen.has(name)) return { kind: 'refuse', reason: `COPY option ${name.toUpperCase()} given twice` };
    seen.add(name);
    if (NOT_COPY_TO.has(name)) return { kind: 'refuse', reason: `${name.toUpperCase()} is not a COPY TO option` };
    const str = (): string | undefined => stringValue(arg);
    switch (name) {
      case 'format': {
        const v = str();
        if (v !== 'text' && v !== 'csv' && v !== 'binary') return { kind: 'refuse', reason: `COPY format "${v ?? ''}" is not one the gateway can mask` };
        format = v;
        break;
      }
      case 'delimiter': delimiter = str(); if (delimiter === undefined) return { kind: 'refuse', reason: 'DELIMITER needs a value' }; break;
      case 'null': nullString = str(); if (nullString === undefined) return { kind: 'refuse', reason: 'NULL needs a value' }; break;
      case 'quote': quote = str(); if (quote === undefined) return { kind: 'refuse', reason: 'QUOTE needs a value' }; break;
      case 'escape': escape = str(); if (escape === undefined) return { kind: 'refuse', reason: 'ESCAPE needs a value' }; break;
      case 'header': {
        const v = booleanValue(arg);
        if (v === undefined) return { kind: 'refuse', reason: `HEADER ${str() ?? ''} is not a COPY TO choice` };
        header = v;
        break;
      }
      case 'force_quote': {
        const a = only(arg);
        if (a && a[0] === 'A_Star') forceQuote = '*';
        else if (a && a[0] === 'List') {
          const names: string[] = [];
          for (const el of (a[1].items as unknown[] | undefined) ?? []) {
            const e = only(el);
            if (!e || e[0] !== 'String' || typeof e[1].sval !== 'string') return { kind: 'refuse', reason: 'FORCE_QUOTE needs column names or *' };
            names.push(e[1].sval);
          }
          forceQuote = names;
        } else return { kind: 'refuse', reason: 'FORCE_QUOTE needs column names or *' };
        break;
      }
      case 'encoding': {
        const v = str();
        // detectors and partial masks read UTF-8; another encoding's bytes would pass them unread
        if (v === undefined || !isUtf8EncodingName(v)) return { kind: 'refuse', reason: `ENCODING ${v === undefined ? 'without a name' : `'${v}'`}: the gateway masks UTF-8 output only` };
        break;
      }
      default:
        return { kind: 'refuse', reason: `unknown COPY option ${name.toUpperCase()}` };
    }
  }

  if (format === 'binary') return { kind: 'refuse', reason: 'the binary format cannot be masked' };
  let f: CopyFormat;
  if (format === 'text') {
    if (quote !== undefined || escape !== undefined || forceQuote !== undefined) return { kind: 'refuse', reason: 'QUOTE, ESCAPE and FORCE_QUOTE are CSV options' };
    f = { format: 'text', delimiter: delimiter ?? DEFAULT_COPY_FORMAT.delimiter, null: nullString ?? DEFAULT_COPY_FORMAT.null, header };
  } else {
    const q = quote ?? '"';
    f = { format: 'csv', delimiter: delimiter ?? ',', quote: q, escape: escape ?? q, null: nullString ?? '', header, forceQuote: forceQuote ?? [] };
  }
  const problem = copyFormatProblem(f);
  return problem ? { kind: 'refuse', reason: problem } : { kind: 'format', format: f };
}
