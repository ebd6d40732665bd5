import { beforeAll, describe, expect, it } from 'vitest';
import { CopyLineCodec, DEFAULT_COPY_FORMAT, type CopyCsvFormat, type CopyFormat } from './copy-format.js';
import { parseCopyToFormat } from './copy-options.js';
import { MaskingError } from './errors.js';
import { createMaskingPlan, type MaskingPlan, type ResultField } from './masking/index.js';
import { parsePolicyDocument } from './policy-document.js';
import { initPolicyEngine } from './policy-engine.js';
// the protocol package's seeded PRNG (a test-support file, not built): one generator for every spec
import { prng } from '../../protocol/src/postgres/prng.test-support.js';

const key = Buffer.alloc(32, 7);
const TOKEN = '[hidden|"n/a", see policy]';
const doc = parsePolicyDocument({
  name: 'copy',
  masking: [
    { name: 'emails', columns: ['email'], strategy: 'partial' },
    { name: 'codes', columns: ['code'], strategy: 'partial', keepLast: 4 },
    // a token with the CSV delimiter and quote, and the delimiter of the text tests
    { name: 'secrets', columns: ['secret'], strategy: 'redact', token: TOKEN },
    { name: 'literal-null', columns: ['flag'], strategy: 'redact', token: 'NULL' },
    { name: 'marker', columns: ['dot'], strategy: 'redact', token: '\\.' },
    { name: 'ssns', columns: ['ssn'], strategy: 'null' },
    { name: 'cards', detectors: ['CREDIT_CARD'], strategy: 'redact' },
  ],
});

const field = (name: string): ResultField => ({ name, tableOid: 0, columnAttr: 0, typeOid: name === 'id' ? 23 : 25, format: 0 });
const planFor = (cols: string): MaskingPlan => createMaskingPlan(doc, cols.split(' ').map(field), { hmacKey: key }) as MaskingPlan;
/** The format the server uses for `COPY t TO STDOUT <options>`. */
const formatOf = (options: string): CopyFormat => {
  const r = parseCopyToFormat(`COPY t TO STDOUT ${options}`);
  if (r.kind !== 'format') throw new Error(`${options}: ${r.reason}`);
  return r.format;
};

beforeAll(async () => {
  await initPolicyEngine();
});

describe('masking one COPY line in a given format', () => {
  // cols: the result's columns (id is an int4, the rest text); the rules above decide what is masked
  it.each([
    // CSV: the tricky ones first
    { name: 'a quoted field holding the delimiter and a card', options: 'CSV', cols: 'id email note', line: '1,bob@example.com,"card 4111111111111111, thanks"\n', expected: '1,b**@example.com,"card [REDACTED], thanks"\n' },
    { name: 'doubled quotes inside a quoted field', options: 'CSV', cols: 'id note', line: '2,"he said ""4111111111111111"""\n', expected: '2,"he said ""[REDACTED]"""\n' },
    { name: 'newlines inside quotes, in one message', options: '(FORMAT csv)', cols: 'id note', line: '3,"line one\n4111 1111 1111 1111\r\nend"\n', expected: '3,"line one\n[REDACTED]\r\nend"\n' },
    { name: 'a redact token with the delimiter and quote is quoted, its quotes doubled', options: 'CSV', cols: 'id secret', line: '4,x\n', expected: `4,"[hidden|""n/a"", see policy]"\n` },
    { name: 'unquoted empty is NULL (left alone); quoted "" is a value, masked and quoted again', options: 'CSV', cols: 'email secret ssn', line: '"",,""\n', expected: '"",,\n' },
    { name: 'a masked value that no longer needs quotes loses them', options: 'CSV', cols: 'id email', line: '5,"a,b@example.com"\n', expected: '5,a**@example.com\n' },
    { name: 'partial mask of an unquoted value', options: 'CSV', cols: 'code', line: 'AB1234\n', expected: '**1234\n' },
    { name: 'partial mask of a quoted value keeping a comma', options: 'CSV', cols: 'id code', line: '6,"AB,12-34"\n', expected: '6,"**,12-34"\n' },
    { name: 'the null strategy gives the NULL string, unquoted', options: '(FORMAT csv, NULL \'NULL\')', cols: 'email ssn note', line: 'NULL,"NULL",NULL\n', expected: 'NULL,NULL,NULL\n' },
    { name: 'an empty value is not quoted when NULL is not the empty string', options: '(FORMAT csv, NULL \'NULL\')', cols: 'email ssn', line: '"",x\n', expected: ',NULL\n' },
    { name: 'a masked value equal to the NULL string is quoted', options: '(FORMAT csv, NULL \'NULL\')', cols: 'id flag', line: '7,x\n', expected: '7,"NULL"\n' },
    { name: '\\. alone in a one-column COPY is quoted', options: 'CSV', cols: 'dot', line: 'x\n', expected: '"\\."\n' },
    { name: 'custom QUOTE and ESCAPE', options: "(FORMAT csv, QUOTE '''', ESCAPE '\\')", cols: 'note secret', line: "'it\\'s 4111111111111111',x\n", expected: `'it\\'s [REDACTED]','${TOKEN}'\n` },
    { name: 'custom ESCAPE: a value with the escape but no quote is not quoted', options: "CSV QUOTE AS '''' ESCAPE AS '\\'", cols: 'id note', line: "8,'a\\\\b 4111111111111111'\n", expected: '8,a\\b [REDACTED]\n' },
    { name: 'custom ESCAPE inside quotes is doubled', options: "CSV QUOTE AS '''' ESCAPE AS '\\'", cols: 'id note', line: "9,'a\\\\b, 4111111111111111'\n", expected: "9,'a\\\\b, [REDACTED]'\n" },
    { name: 'an escape outside quotes is data', options: "CSV QUOTE AS '''' ESCAPE AS '\\'", cols: 'id note', line: '10,a\\b 4111111111111111\n', expected: '10,a\\b [REDACTED]\n' },
    { name: 'custom DELIMITER', options: "(FORMAT csv, DELIMITER ';')", cols: 'id email note', line: '9;bob@example.com;"a;b 4111111111111111"\n', expected: '9;b**@example.com;"a;b [REDACTED]"\n' },
    { name: 'tab delimiter: a tab in a value is quoted, not escaped', options: "(FORMAT csv, DELIMITER E'\\t')", cols: 'id note', line: '10\t"a\tb 4111111111111111"\n', expected: '10\t"a\tb [REDACTED]"\n' },
    { name: 'FORCE_QUOTE *: masked values quoted, NULL not', options: '(FORMAT csv, FORCE_QUOTE *)', cols: 'id email ssn note', line: '"1","bob@example.com","123-45-6789","ok"\n', expected: '"1","b**@example.com",,"ok"\n' },
    { name: 'FORCE_QUOTE of one column', options: 'CSV FORCE QUOTE email', cols: 'id email note', line: '1,"bob@example.com",card 4111111111111111\n', expected: '1,"b**@example.com",card [REDACTED]\n' },
    { name: 'CSV without its final newline', options: 'CSV', cols: 'id email', line: '1,bob@example.com', expected: '1,b**@example.com' },
    // text format with options
    { name: 'text: custom delimiter, escaped in values and in the masked token', options: "(DELIMITER '|')", cols: 'id secret note', line: '1|x|a\\|b 4111111111111111\n', expected: '1|[hidden\\|"n/a", see policy]|a\\|b [REDACTED]\n' },
    { name: 'text: empty NULL string', options: "(DELIMITER '|', NULL '')", cols: 'email ssn note', line: '|123-45-6789|tab\\there 4111111111111111\n', expected: '||tab\\there [REDACTED]\n' },
    { name: 'text: comma delimiter', options: "DELIMITER ','", cols: 'secret note', line: 'x,a\\,b\\\\c 4111111111111111\n', expected: '[hidden|"n/a"\\, see policy],a\\,b\\\\c [REDACTED]\n' },
    { name: 'text: NULL string as sent is NULL', options: "(NULL 'nil')", cols: 'email ssn', line: 'nil\tnil\n', expected: 'nil\tnil\n' },
    { name: 'text: \\. alone in a one-column COPY is escaped', options: "(DELIMITER '|')", cols: 'dot', line: 'x\n', expected: '\\\\.\n' },
    { name: 'text: the old end-of-data marker passes', options: "(DELIMITER '|')", cols: 'id email', line: '\\.\n', expected: '\\.\n' },
    { name: 'text, default options written out: same as maskCopyLine', options: "(FORMAT text, DELIMITER E'\\t', NULL '\\N')", cols: 'id email note', line: '1\tbob@example.com\tcard 4111111111111111\\tend\n', expected: '1\tb**@example.com\tcard [REDACTED]\\tend\n' },
  ])('$name', ({ options, cols, line, expected }) => {
    const p = planFor(cols);
    const out = p.copyLineMasker(formatOf(options))(Buffer.from(line));
    expect(out.toString()).toBe(expected);
  });

  it.each([
    { name: 'CSV: a column missing', options: 'CSV', cols: 'id email note', line: '1,bob@example.com\n', error: /has 2 columns, the masking plan expects 3/ },
    { name: 'CSV: an unquoted delimiter makes one column too many', options: 'CSV', cols: 'id email note', line: '1,bob@example.com,a,b\n', error: /has 4 columns/ },
    { name: 'CSV: unterminated quoted field', options: 'CSV', cols: 'id email', line: '1,"bob@example.com\n', error: /unterminated/ },
    { name: 'CSV: a quote inside an unquoted field', options: 'CSV', cols: 'id email', line: '1,bo"b@example.com\n', error: /quote or carriage return/ },
    { name: 'CSV: two rows in one message', options: 'CSV', cols: 'id email', line: '1,a@b.io\n2,c@d.io\n', error: /more than one row/ },
    { name: 'CSV: data after a closing quote', options: 'CSV', cols: 'id email', line: '1,"a@b.io"x\n', error: /after a quoted/ },
    { name: 'CSV: a bare carriage return', options: 'CSV', cols: 'id email', line: '1,a@b.io\r\n', error: /carriage return/ },
    { name: 'text: a column missing', options: "(DELIMITER '|')", cols: 'id secret note', line: '1|x\n', error: /expects 3/ },
    { name: 'text: two rows in one message', options: "(DELIMITER '|')", cols: 'id secret', line: '1|x\n2|y\n', error: /raw newline/ },
  ])('$name → MaskingError', ({ options, cols, line, error }) => {
    const m = planFor(cols).copyLineMasker(formatOf(options));
    expect(() => m(Buffer.from(line))).toThrow(MaskingError);
    expect(() => m(Buffer.from(line))).toThrow(error);
  });

  it('a line with nothing to mask comes back as the very same buffer', () => {
    const m = planFor('id email note').copyLineMasker(formatOf('CSV'));
    const line = Buffer.from('1,,"no card, here"\n');
    expect(m(line)).toBe(line);
  });

  it('counts each masked value once', () => {
    const p = planFor('id email ssn note');
    const m = p.copyLineMasker(formatOf('CSV'));
    const before = p.maskedValues;
    m(Buffer.from('1,bob@example.com,123-45-6789,card 4111111111111111 and 5500 0000 0000 0004\n'));
    expect(p.maskedValues - before).toBe(3);
  });

  it('HEADER: the first line is the header and passes as it came; the lines after it are rows', () => {
    const m = planFor('id email').copyLineMasker(formatOf('(FORMAT csv, HEADER)'));
    const header = Buffer.from('id,email\n');
    expect(m(header)).toBe(header);
    expect(m(Buffer.from('1,bob@example.com\n')).toString()).toBe('1,b**@example.com\n');
    // a second line looking like the header is a row like any other
    expect(m(Buffer.from('id,email\n')).toString()).toBe('id,*mail\n');
  });

  it('HEADER: column names are read as the server quotes or escapes them', () => {
    const csv = createMaskingPlan(doc, [field('a,b'), field('email')], { hmacKey: key }) as MaskingPlan;
    const m = csv.copyLineMasker(formatOf('CSV HEADER'));
    expect(m(Buffer.from('"a,b",email\n')).toString()).toBe('"a,b",email\n');
    const text = createMaskingPlan(doc, [field('a|b'), field('email')], { hmacKey: key }) as MaskingPlan;
    const t = text.copyLineMasker(formatOf("(FORMAT text, DELIMITER '|', HEADER true)"));
    expect(t(Buffer.from('a\\|b|email\n')).toString()).toBe('a\\|b|email\n');
    expect(t(Buffer.from('x|bob@example.com\n')).toString()).toBe('x|b**@example.com\n');
  });

  it('HEADER: a first line that is not the header is an error, not a row passed unmasked', () => {
    const m = planFor('id email').copyLineMasker(formatOf('CSV HEADER'));
    expect(() => m(Buffer.from('1,bob@example.com\n'))).toThrow(/not the header/);
    const n = planFor('id email').copyLineMasker(formatOf('CSV HEADER'));
    expect(() => n(Buffer.from('id\n'))).toThrow(/not the header/);
  });

  it('the default format is maskCopyLine', () => {
    const p = planFor('id email note');
    const m = p.copyLineMasker(DEFAULT_COPY_FORMAT);
    for (const l of ['1\tbob@example.com\tcard 4111111111111111\\tend\n', '2\t\\N\tline\\nbreak a\\\\b\n', '\\.\n']) {
      expect(m(Buffer.from(l)).toString()).toBe(p.maskCopyLine(Buffer.from(l)).toString());
    }
    expect(() => m(Buffer.from('only\ttwo\n'))).toThrow(/expects 3/);
  });

  it('refuses formats it cannot read exactly', () => {
    const p = planFor('id email');
    const base = formatOf('CSV') as CopyCsvFormat;
    expect(() => p.copyLineMasker({ ...base, delimiter: '€' })).toThrow(/ASCII/);
    expect(() => p.copyLineMasker({ ...base, quote: '""' })).toThrow(/single one-byte/);
    expect(() => p.copyLineMasker({ ...base, escape: ',' })).toThrow(/escape equal to the delimiter/);
    expect(() => p.copyLineMasker({ ...base, quote: '\n' })).toThrow(/newline/);
    expect(() => p.copyLineMasker({ ...base, forceQuote: ['nope'] })).toThrow(/FORCE_QUOTE column "nope"/);
    expect(() => p.copyLineMasker({ format: 'text', delimiter: 'n', null: '\\N', header: false })).toThrow(/cannot be "n"/);
  });
});

// ---- properties on generated rows ----

const NAMES = ['c0', 'c1', 'c2'];

/**
 * What the server writes for one row: CopyAttributeOutText / CopyAttributeOutCSV (copyto.c),
 * written here from the C source, apart from the codec under test.
 */
function serverLine(values: (string | null)[], f: CopyFormat, names: string[]): Buffer {
  const letters: Record<string, string> = { '\b': 'b', '\f': 'f', '\n': 'n', '\r': 'r', '\t': 't', '\v': 'v' };
  const fields = values.map((v, i) => {
    if (v === null) return f.null;
    if (f.format === 'text') {
      let out = '';
      for (const ch of v) {
        if (ch.charCodeAt(0) < 0x20) out += letters[ch] ? `\\${letters[ch]}` : ch === f.delimiter ? `\\${ch}` : ch;
        else out += ch === '\\' || ch === f.delimiter ? `\\${ch}` : ch;
      }
      return out;
    }
    const forced = f.forceQuote === '*' || f.forceQuote.includes(names[i]);
    // the escape alone does not make a value quoted (the delimiter, the quote, CR and LF do)
    const quote = forced || v === f.null || (values.length === 1 && v === '\\.') || [...v].some((ch) => ch === f.delimiter || ch === f.quote || ch === '\n' || ch === '\r');
    if (!quote) return v;
    return f.quote + [...v].map((ch) => (ch === f.quote || ch === f.escape ? f.escape + ch : ch)).join('') + f.quote;
  });
  return Buffer.from(`${fields.join(f.delimiter)}\n`, 'utf8');
}

const csv = (o: Partial<CopyCsvFormat>): CopyFormat => ({ format: 'csv', delimiter: ',', quote: '"', escape: '"', null: '', header: false, forceQuote: [], ...o });
const FORMATS: { name: string; format: CopyFormat; columns: number }[] = [
  { name: 'text, default', format: DEFAULT_COPY_FORMAT, columns: 3 },
  { name: 'text, | and NULL \'\'', format: { format: 'text', delimiter: '|', null: '', header: false }, columns: 3 },
  { name: 'text, ; and NULL \'NULL\', HEADER', format: { format: 'text', delimiter: ';', null: 'NULL', header: true }, columns: 3 },
  { name: 'text, \\x01 delimiter', format: { format: 'text', delimiter: '\x01', null: '\\N', header: false }, columns: 3 },
  { name: 'text, one column', format: { format: 'text', delimiter: '|', null: '\\N', header: false }, columns: 1 },
  { name: 'CSV, default', format: csv({}), columns: 3 },
  { name: 'CSV, HEADER', format: csv({ header: true }), columns: 3 },
  { name: 'CSV, ; quote \' escape \\ NULL \'-\'', format: csv({ delimiter: ';', quote: "'", escape: '\\', null: '-' }), columns: 3 },
  { name: 'CSV, tab delimiter, FORCE_QUOTE *', format: csv({ delimiter: '\t', forceQuote: '*' }), columns: 3 },
  { name: 'CSV, FORCE_QUOTE (c1), NULL \'-\'', format: csv({ forceQuote: ['c1'], null: '-' }), columns: 3 },
  { name: 'CSV, one column', format: csv({}), columns: 1 },
];

// pieces of values: every character some format treats specially, and plain ones
const SPECIAL = [',', ';', '|', '"', "'", '\\', '\n', '\r', '\t', '\b', '\v', '\f', '\x01', ' ', '.', '-', '\\.', '€', '✓', '💡', ''];
const PLAIN = ['a', 'Z', '7', 'ü', 'NULL', 'N', 'x1'];

/** Random rows of `columns` values (some NULL) built from `pieces`. */
function rows(seed: number, count: number, columns: number, pieces: string[]): (string | null)[][] {
  const rnd = prng(seed);
  return Array.from({ length: count }, () =>
    Array.from({ length: columns }, () => {
      if (rnd() < 0.1) return null;
      let s = '';
      for (let n = Math.floor(rnd() * 6); n > 0; n--) s += pieces[Math.floor(rnd() * pieces.length)];
      return s;
    }),
  );
}

/** A text-format value sent as the NULL string reads as NULL (the server does not tell them apart). */
function asRead(values: (string | null)[], f: CopyFormat): (string | null)[] {
  if (f.format !== 'text') return values;
  return values.map((v) => (v !== null && serverLine([v], f, ['x']).toString().slice(0, -1) === f.null ? null : v));
}

describe.each(FORMATS)('COPY lines as the server writes them: $name', ({ format, columns }) => {
  const names = NAMES.slice(0, columns);

  it('read back: every field splits and decodes to its value (2000 rows)', () => {
    const codec = new CopyLineCodec(format, names);
    for (const values of rows(11, 2000, columns, [...SPECIAL, ...PLAIN])) {
      const line = serverLine(values, format, names);
      const { fields, newline } = codec.split(line);
      expect(newline).toBe(true);
      const read = fields.map((f) => (codec.isNull(f) ? null : codec.decode(f).toString('utf8')));
      expect(read, JSON.stringify(line.toString())).toEqual(asRead(values, format));
    }
  });

  it('round trip: masking that changes no value gives the same bytes (2000 rows)', () => {
    // `partial` leaves a value with no letters or digits as it is, but it counts as masked: each
    // value is decoded, masked and written again, so any difference in quoting or escaping shows
    const identity = parsePolicyDocument({ name: 'identity', masking: [{ name: 'all', columns: names, strategy: 'partial' }] });
    const p = createMaskingPlan(identity, names.map(field), { hmacKey: key }) as MaskingPlan;
    const m = p.copyLineMasker(format);
    if (format.header) {
      const header = serverLine(names, format, names);
      expect(m(header)).toBe(header);
    }
    let expectedMasked = 0;
    for (const values of rows(29, 2000, columns, SPECIAL)) {
      const line = serverLine(values, format, names);
      const before = p.maskedValues;
      const out = m(line);
      expect(out.toString('utf8'), JSON.stringify(line.toString())).toBe(line.toString('utf8'));
      expect(out.equals(line)).toBe(true);
      const nonNull = asRead(values, format).filter((v) => v !== null).length;
      expect(p.maskedValues - before).toBe(nonNull);
      expectedMasked += nonNull;
    }
    expect(expectedMasked).toBeGreaterThan(2000 * columns * 0.6);
  });
});
