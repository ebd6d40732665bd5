import { createHmac } from 'node:crypto';
import { DataRowView, DataRowWriter, decodeDataRow, encodeDataRow } from '@portcullis/protocol';
import { describe, expect, it } from 'vitest';
import { luhnValid, ibanChecksumValid } from '../detectors.js';
import { createMaskingPlan, explainMaskingPlan, maskText, partialMask, type MaskingPlan, type ResultField } from './index.js';
import { parsePolicyDocument } from '../policy-document.js';
import { contractPolicy } from '../test-fixtures.js';
// the protocol package's seeded PRNG (a test-support file, not built): one generator for every spec
import { prng } from '../../../protocol/src/postgres/prng.test-support.js';

const key = Buffer.alloc(32, 7);
const all = parsePolicyDocument({
  name: 'all',
  masking: [{ name: 'pii', detectors: ['CREDIT_CARD', 'US_SSN', 'EMAIL', 'PHONE', 'IBAN', 'AWS_ACCESS_KEY', 'JWT', 'IPV4'], strategy: 'redact' }],
});
const JWT = 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c';

// [name, input, expected output] — lookalikes that must stay untouched first
const rows: [string, string, string][] = [
  ['order number failing Luhn', 'order 4111111111111112 shipped', 'order 4111111111111112 shipped'],
  ['16 digits passing Luhn but no card network', 'ref 9999999999999995', 'ref 9999999999999995'],
  ['card number inside a longer digit run', 'id 41111111111111110000', 'id 41111111111111110000'],
  ['ISO date', 'created 2024-01-15', 'created 2024-01-15'],
  ['timestamp', '2024-01-15T10:30:45.123Z', '2024-01-15T10:30:45.123Z'],
  ['European date', 'am 15.01.2024 geliefert', 'am 15.01.2024 geliefert'],
  ['semver', 'upgraded to 1.24.3', 'upgraded to 1.24.3'],
  ['v-prefixed four part version', 'build v1.2.3.4', 'build v1.2.3.4'],
  ['four part version with a large part', 'Windows 10.0.19045.2965', 'Windows 10.0.19045.2965'],
  ['version with a pre-release tag', 'lib 2.4.0.1-beta', 'lib 2.4.0.1-beta'],
  ['IP-like with an octet over 255', 'addr 300.1.2.3', 'addr 300.1.2.3'],
  ['five dotted numbers', 'oid 1.3.6.1.4', 'oid 1.3.6.1.4'],
  ['SSN with area 000', 'ssn 000-12-3456', 'ssn 000-12-3456'],
  ['SSN with area 666, unlabelled', 'case 666-12-3456', 'case 666-12-3456'],
  ['SSN with area 9xx, unlabelled', 'ticket 912-12-3456', 'ticket 912-12-3456'],
  ['SSN with area 9xx, the label too far before it', 'SSN is not on file, call 912-12-3456', 'SSN is not on file, call 912-12-3456'],
  ['SSN with area 9xx, labelled "SSN" (context words)', 'Identity verified with SSN 912-12-3456.', 'Identity verified with SSN [REDACTED].'],
  ['SSN with area 666, labelled', 'ssn 666-12-3456', 'ssn [REDACTED]'],
  ['a list of 9xx SSNs after one label', 'SSNs: 923-45-6789, 912-34-5678', 'SSNs: [REDACTED], [REDACTED]'],
  ['"social security no." then the value', 'Social Security No. 999-12-3456', 'Social Security No. [REDACTED]'],
  ['labelled but a zero group', 'ssn 912-00-3456', 'ssn 912-00-3456'],
  ['"ssn" inside another word is no label', 'classn 912-12-3456', 'classn 912-12-3456'],
  ['SSN-shaped part of a longer code', 'part AB-123-45-6789-X', 'part AB-123-45-6789-X'],
  ['IBAN with a bad checksum', 'DE89 3704 0044 0532 0130 01', 'DE89 3704 0044 0532 0130 01'],
  ['IBAN-like with an unknown country', 'ZZ89370400440532013000', 'ZZ89370400440532013000'],
  ['package scope with @', 'npm i @scope/pkg@1.2.3', 'npm i @scope/pkg@1.2.3'],
  ['user@host without a TLD', 'ssh deploy@localhost', 'ssh deploy@localhost'],
  ['twitter handle', 'follow @portcullis', 'follow @portcullis'],
  ['AWS-like key that is too short', 'AKIAIOSFODNN7EXAMP', 'AKIAIOSFODNN7EXAMP'],
  ['AWS-like key embedded in a longer word', 'XAKIAIOSFODNN7EXAMPLEX', 'XAKIAIOSFODNN7EXAMPLEX'],
  ['three base64 segments that are not a JWT', 'eyJub3Rh.eyJqd3Q.abc', 'eyJub3Rh.eyJqd3Q.abc'],
  ['short number', 'qty 12345', 'qty 12345'],
  ['plain 10-digit number', 'invoice 4155550132', 'invoice 4155550132'],
  ['price', 'total 1,234,567.89 EUR', 'total 1,234,567.89 EUR'],
  ['ISBN', 'ISBN 978-3-16-148410-0', 'ISBN 978-3-16-148410-0'],
  ['UUID', 'id 550e8400-e29b-41d4-a716-446655440000', 'id 550e8400-e29b-41d4-a716-446655440000'],
  ['time range', '09:00-17:30', '09:00-17:30'],
  ['fictional 555 number', 'call 415-555-0199 or 415-555-2368', 'call [REDACTED] or 415-555-2368'],
  ['mixed card separators', '4111-1111 1111-1111', '4111-1111 1111-1111'],
  ['empty', '', ''],
  ['no digits at all', 'The quick brown fox', 'The quick brown fox'],
  // real findings
  ['Visa contiguous', 'card 4111111111111111 ok', 'card [REDACTED] ok'],
  ['Visa with spaces', 'card 4111 1111 1111 1111', 'card [REDACTED]'],
  ['Visa with dashes', '4111-1111-1111-1111', '[REDACTED]'],
  ['Mastercard', 'mc 5500 0000 0000 0004.', 'mc [REDACTED].'],
  ['Amex 4-6-5', 'amex 3782 822463 10005', 'amex [REDACTED]'],
  ['Discover', 'disc 6011111111111117', 'disc [REDACTED]'],
  ['Mastercard 2-series', '2221000000000009', '[REDACTED]'],
  ['SSN', 'ssn 123-45-6789', 'ssn [REDACTED]'],
  ['email', 'mail alice@example.com now', 'mail [REDACTED] now'],
  ['email with plus and subdomain', 'bob.smith+tag@mail.corp.example.co.uk', '[REDACTED]'],
  ['email at sentence end', 'Write to carol@example.org.', 'Write to [REDACTED].'],
  ['E.164 phone', 'tel +14155550132', 'tel [REDACTED]'],
  ['international phone with spaces', 'tel +44 20 7946 0958', 'tel [REDACTED]'],
  ['international phone with parens', '+1 (415) 555-0132', '[REDACTED]'],
  ['NANP dashes', 'call 415-555-0132', 'call [REDACTED]'],
  ['NANP parens', '(415) 555-0132', '[REDACTED]'],
  ['NANP dots', '415.555.0132', '[REDACTED]'],
  ['NANP with country code', '1-415-555-0132', '[REDACTED]'],
  ['UK national', 'ring 020 7946 0958', 'ring [REDACTED]'],
  ['French national', 'appelez 01 23 45 67 89', 'appelez [REDACTED]'],
  ['IBAN grouped', 'iban DE89 3704 0044 0532 0130 00', 'iban [REDACTED]'],
  ['IBAN compact', 'GB82WEST12345698765432', '[REDACTED]'],
  ['IBAN followed by words', 'pay to FR1420041010050500013M02606 today', 'pay to [REDACTED] today'],
  ['AWS access key', 'key=AKIAIOSFODNN7EXAMPLE', 'key=[REDACTED]'],
  ['AWS temporary key', 'ASIAY34FZKBOKMUTVV7A', '[REDACTED]'],
  ['JWT', `Bearer ${JWT}`, 'Bearer [REDACTED]'],
  ['IPv4', 'from 192.168.1.10:5432', 'from [REDACTED]:5432'],
  ['IPv4 at sentence end', 'host is 10.0.0.1.', 'host is [REDACTED].'],
  ['several findings', 'a@b.io 123-45-6789 4111111111111111', '[REDACTED] [REDACTED] [REDACTED]'],
  ['unicode around a finding', 'Grüße an zoë@example.de ✓', 'Grüße an [REDACTED] ✓'],
];

describe('detectors (maskText, redact)', () => {
  it.each(rows)('%s', (_name, input, expected) => {
    expect(maskText(input, all, { hmacKey: key }).value).toBe(expected);
  });
  it('has many rows', () => {
    expect(rows.length).toBeGreaterThanOrEqual(60);
  });
  it('names the detector and rule of each finding', () => {
    expect(maskText('x 4111111111111111 y@z.io', all, { hmacKey: key }).findings).toEqual([
      { detector: 'CREDIT_CARD', rule: 'pii' },
      { detector: 'EMAIL', rule: 'pii' },
    ]);
  });
  it('checks Luhn and IBAN mod 97', () => {
    expect(luhnValid('79927398713')).toBe(true);
    expect(luhnValid('79927398710')).toBe(false);
    expect(ibanChecksumValid('GB82WEST12345698765432')).toBe(true);
    expect(ibanChecksumValid('GB82WEST12345698765433')).toBe(false);
  });
});

describe('strategies', () => {
  it.each([
    ['alice@example.com', 4, 'a****@example.com'],
    ['123-45-6789', 4, '***-**-6789'],
    ['4111 1111 1111 1111', 4, '**** **** **** 1111'],
    ['abc', 4, '***'],
    ['Zoë Ünal', 2, '*** **al'],
    ['secret', 0, '******'],
  ])('partial %s keepLast %d', (input, keep, expected) => {
    expect(partialMask(input, keep)).toBe(expected);
  });

  const field = (name: string, typeOid = 25, format: 0 | 1 = 0, table?: string): ResultField => ({ name, tableOid: 1, columnAttr: 1, typeOid, format, table });
  const plan = (masking: unknown[], fields: ResultField[], extra: Record<string, unknown> = {}) => {
    const p = createMaskingPlan(parsePolicyDocument({ name: 'm', masking, ...extra }), fields, { hmacKey: key });
    if (!p || p.kind !== 'plan') throw new Error(`expected a plan, got ${JSON.stringify(p)}`);
    return p as MaskingPlan;
  };
  const row = (...v: (string | null)[]) => v.map((x) => (x === null ? null : Buffer.from(x)));
  const text = (v: (Buffer | string | null)[]) => v.map((x) => (x === null ? null : x.toString()));

  it('hash is keyed, stable, and format-insensitive for cards', () => {
    const p = plan([{ name: 'h', detectors: ['CREDIT_CARD'], strategy: 'hash' }], [field('note')]);
    const a = text(p.maskRow(row('4111 1111 1111 1111')).values)[0];
    const b = text(p.maskRow(row('4111111111111111')).values)[0];
    expect(a).toMatch(/^h:[0-9a-f]{16}$/);
    expect(a).toBe(b);
    const other = createMaskingPlan(parsePolicyDocument({ name: 'm', masking: [{ name: 'h', detectors: ['CREDIT_CARD'], strategy: 'hash' }] }), [field('note')], { hmacKey: Buffer.alloc(32, 8) }) as MaskingPlan;
    expect(text(other.maskRow(row('4111111111111111')).values)[0]).not.toBe(a);
  });

  it('column rules by name, table.column, schema.table.column and type', () => {
    const p = plan(
      [
        { name: 'emails', columns: ['email'], strategy: 'partial' },
        { name: 'ssn', columns: ['people.ssn'], strategy: 'redact', token: '<ssn>' },
        { name: 'cards', columns: ['billing.cards.number'], strategy: 'null' },
        { name: 'dates', types: ['date'], strategy: 'redact' },
      ],
      [field('email'), field('ssn', 25, 0, 'public.people'), field('number', 25, 0, 'billing.cards'), field('born', 1082), field('number', 25, 0, 'other.cards'), field('id', 23)],
    );
    const r = p.maskRow(row('alice@example.com', '123-45-6789', '4111111111111111', '1990-01-01', '42', '7'));
    expect(text(r.values)).toEqual(['a****@example.com', '<ssn>', null, '[REDACTED]', '42', '7']);
    expect(r.changed).toBe(4);
    expect(p.maskedColumns).toEqual(['email', 'ssn', 'number', 'born']);
    expect(p.stats()).toEqual({ values: 4, byRule: { emails: 1, ssn: 1, cards: 1, dates: 1 } });
    expect(p.maskedValues).toBe(4);
  });

  it('a column renamed by the query is still the table column the caller resolved it to', () => {
    const renamed = (name: string, column: string, table: string): ResultField => ({ ...field(name, 25, 0, table), column });
    const p = plan(
      [
        { name: 'ssn', columns: ['people.ssn'], strategy: 'redact', token: '<ssn>' },
        { name: 'emails', columns: ['email'], strategy: 'partial' },
      ],
      [renamed('x', 'ssn', 'public.people'), renamed('contact', 'email', 'public.people'), renamed('ssn', 'ssn', 'public.other'), renamed('email', 'note', 'public.people')],
    );
    const r = p.maskRow(row('123-45-6789', 'bob@example.com', '987-65-4321', 'bob@example.org'));
    // x is people.ssn; contact is email; ssn of another table is not people.ssn; a column labelled email is masked by name too
    expect(text(r.values)).toEqual(['<ssn>', 'b**@example.com', '987-65-4321', 'b**@example.org']);
  });

  it('returns the same array when nothing changed', () => {
    const p = contractPlan();
    const values = row('1', 'Bob', 'nothing to see');
    const r = p.maskRow(values);
    expect(r.values).toBe(values);
    expect(r.changed).toBe(0);
  });

  function contractPlan(): MaskingPlan {
    return createMaskingPlan(contractPolicy(), [field('id', 23), field('name'), field('notes')], { hmacKey: key }) as MaskingPlan;
  }

  it('detectors skip non-text columns and columns a column rule covers', () => {
    const p = createMaskingPlan(contractPolicy(), [field('email'), field('id', 20), field('notes', 1043)], { hmacKey: key }) as MaskingPlan;
    const r = p.maskRow(row('bob@example.com', '4111111111111111', 'card 4111111111111111'));
    expect(text(r.values)).toEqual(['b**@example.com', '4111111111111111', 'card [REDACTED]']);
  });

  it('keeps JSON valid', () => {
    const p = plan([{ name: 'pii', detectors: ['EMAIL', 'CREDIT_CARD'], strategy: 'redact', token: 'x"y' }], [field('doc', 3802)]);
    const out = text(p.maskRow(row('{"mail": "a@b.io", "card": 4111111111111111}')).values)[0]!;
    expect(JSON.parse(out)).toEqual({ mail: 'x"y', card: 'x"y' });
    const col = plan([{ name: 'c', columns: ['doc'], strategy: 'partial' }], [field('doc', 114)]);
    expect(JSON.parse(text(col.maskRow(row('"alice@example.com"')).values)[0]!)).toBe('a****@example.com');
  });

  it('masks binary text, jsonb and text[] values; refuses other binary columns it cannot mask', () => {
    const p = plan([{ name: 'pii', detectors: ['EMAIL'], strategy: 'redact' }], [field('t', 25, 1), field('j', 3802, 1), field('a', 1009, 1)]);
    const arr = Buffer.concat([int32s(1, 0, 25, 2, 1), lenPrefixed('a@b.io'), lenPrefixed('plain')]);
    const r = p.maskRow([Buffer.from('x a@b.io'), Buffer.concat([Buffer.from([1]), Buffer.from('{"m":"a@b.io"}')]), arr]);
    expect(r.values[0]!.toString()).toBe('x [REDACTED]');
    expect(bin(r.values[1])[0]).toBe(1);
    expect(bin(r.values[1]).subarray(1).toString()).toBe('{"m":"[REDACTED]"}');
    const out = bin(r.values[2]);
    expect(out.readInt32BE(20)).toBe(10);
    expect(out.subarray(24, 34).toString()).toBe('[REDACTED]');
    expect(out.subarray(38).toString()).toBe('plain');

    const refused = createMaskingPlan(parsePolicyDocument({ name: 'm', masking: [{ name: 'ids', columns: ['id'], strategy: 'hash' }] }), [field('id', 23, 1)], { hmacKey: key });
    expect(refused).toMatchObject({ kind: 'refuse' });
    expect((refused as { reason: string }).reason).toMatch(/column "id" \(int4, binary format\).*masking rule "ids"/);
    const nulled = createMaskingPlan(parsePolicyDocument({ name: 'm', masking: [{ name: 'ids', columns: ['id'], strategy: 'null' }] }), [field('id', 23, 1)], { hmacKey: key }) as MaskingPlan;
    expect(nulled.maskRow([Buffer.from([0, 0, 0, 7])]).values).toEqual([null]);
  });

  it('a null-strategy detector hit nulls the whole value', () => {
    const p = plan([{ name: 'n', detectors: ['US_SSN'], strategy: 'null' }], [field('notes')]);
    expect(p.maskRow(row('ssn 123-45-6789')).values).toEqual([null]);
  });

  it('custom regex detectors', () => {
    const p = plan([{ name: 'emp', detectors: ['EMPLOYEE_ID'], strategy: 'partial', keepLast: 2 }], [field('notes')], {
      detectors: [{ name: 'EMPLOYEE_ID', pattern: 'EMP-\\d{6}' }],
    });
    expect(text(p.maskRow(row('by EMP-123456 and emp-654321')).values)).toEqual(['by ***-****56 and emp-654321']);
  });

  it('masks COPY text lines with escapes and \\N', () => {
    const p = createMaskingPlan(contractPolicy(), [field('id', 23), field('email'), field('notes')], { hmacKey: key }) as MaskingPlan;
    expect(p.maskCopyLine(Buffer.from('1\talice@example.com\tcard 4111111111111111\\tend\n')).toString())
      .toBe('1\ta****@example.com\tcard [REDACTED]\\tend\n');
    expect(p.maskCopyLine(Buffer.from('2\t\\N\tline\\nbreak a\\\\b\n')).toString()).toBe('2\t\\N\tline\\nbreak a\\\\b\n');
    const same = Buffer.from('3\t\\N\tnothing\n');
    expect(p.maskCopyLine(same)).toBe(same);
    expect(p.maskCopyLine(Buffer.from('\\.\n')).toString()).toBe('\\.\n');
    expect(() => p.maskCopyLine(Buffer.from('only\ttwo\n'))).toThrow(/expects 3/);
  });

  it('no plan when nothing can change; explain says why', () => {
    expect(createMaskingPlan(contractPolicy(), [field('id', 23), field('at', 1184)], { hmacKey: key })).toBeNull();
    const e = explainMaskingPlan(contractPolicy(), [field('email'), field('notes'), field('id', 23)]) as { columns: Record<string, unknown>[] };
    expect(e.columns.map((c) => c.action)).toEqual(['mask', 'scan', 'none']);
    expect(e.columns[0]).toMatchObject({ rule: 'emails', strategy: 'partial' });
  });

  it('has no row cap', () => {
    const p = contractPlan();
    for (let i = 0; i < 20000; i++) p.maskRow(row(String(i), 'n', `a${i}@example.com`));
    expect(p.stats().values).toBe(20000);
  });
});

// The plan reads a value's bytes before decoding it (textFacts): rows through maskRow and COPY,
// values the prefilter lets through that must be masked, and lookalikes that must stay as they are.
describe('byte-level prefilter in plans', () => {
  const fields: ResultField[] = [{ name: 'note', tableOid: 1, columnAttr: 1, typeOid: 25, format: 0 }];
  const p = createMaskingPlan(all, fields, { hmacKey: key }) as MaskingPlan;
  const viaRow = (v: string) => {
    const r = p.maskRow([Buffer.from(v, 'utf8')]);
    return r.values[0] === null ? null : r.values[0]!.toString();
  };
  const viaCopy = (v: string) => p.maskCopyLine(Buffer.from(`${v}\n`, 'utf8')).toString('utf8').slice(0, -1);

  it.each(rows)('row: %s', (_name, input, expected) => {
    expect(viaRow(input)).toBe(expected);
  });
  it.each(rows.filter(([, input]) => !/[\\\t\n]/.test(input)))('COPY: %s', (_name, input, expected) => {
    expect(viaCopy(input)).toBe(expected);
  });

  it.each([
    // [name, COPY field as sent, masked field]: the shapes only appear once the escapes are decoded
    ['SSN dashes written as octal escapes', 'ssn 123\\05545\\0556789', 'ssn [REDACTED]'],
    ['email @ written as a hex escape', 'mail alice\\x40example.com', 'mail [REDACTED]'],
    ['card digits split by an escaped tab stay two numbers', '4111111111111111\\t4', '[REDACTED]\\t4'],
    ['escaped lookalike stays', 'order 4111111111111112\\nnext', 'order 4111111111111112\\nnext'],
  ])('COPY escapes: %s', (_name, field, expected) => {
    expect(p.maskCopyLine(Buffer.from(`${field}\n`)).toString()).toBe(`${expected}\n`);
  });

  it('returns the very same buffer and array for values no detector can match', () => {
    const values = [Buffer.from('Customer prefers morning delivery slots and paper invoices, v2.4.1 since 2024-03-02.')];
    const r = p.maskRow(values);
    expect(r.values).toBe(values);
    expect(r.changed).toBe(0);
    const line = Buffer.from('order 4111111111111112 shipped\n');
    expect(p.maskCopyLine(line)).toBe(line);
  });

  it('non-ASCII text around findings and in lookalikes', () => {
    expect(viaRow('Grüße, Karte 4111 1111 1111 1111 – danke ✓')).toBe('Grüße, Karte [REDACTED] – danke ✓');
    expect(viaRow('Bestellnr. 4111 1111 1111 1112 – ok ✓')).toBe('Bestellnr. 4111 1111 1111 1112 – ok ✓');
    expect(viaRow('ゆうこ@例え.jp')).toBe('[REDACTED]');
  });

  it('jsonb binary and text[] binary elements go through the same prefilter', () => {
    const binPlan = createMaskingPlan(all, [{ name: 'j', tableOid: 1, columnAttr: 1, typeOid: 3802, format: 1 }, { name: 'a', tableOid: 1, columnAttr: 2, typeOid: 1009, format: 1 }], { hmacKey: key }) as MaskingPlan;
    const arr = Buffer.concat([int32s(1, 0, 25, 2, 1), lenPrefixed('ip 10.0.0.1'), lenPrefixed('v1.2.3')]);
    const r = binPlan.maskRow([Buffer.concat([Buffer.from([1]), Buffer.from('{"ssn": "123-45-6789", "v": "1.2.3.400"}')]), arr]);
    expect(bin(r.values[0]).subarray(1).toString()).toBe('{"ssn": "[REDACTED]", "v": "1.2.3.400"}');
    expect(bin(r.values[1]).subarray(24).toString()).toBe(`ip [REDACTED]${lenPrefixed('v1.2.3').toString('latin1')}`);
  });
});

describe('hash strategy cache', () => {
  const hmac = (v: string, k: Buffer) => `h:${createHmac('sha256', k).update(v).digest('hex').slice(0, 16)}`;
  const doc = parsePolicyDocument({
    name: 'h',
    masking: [{ name: 'emails', columns: ['email'], strategy: 'hash' }, { name: 'pii', detectors: ['EMAIL', 'CREDIT_CARD'], strategy: 'hash' }],
  });
  const fields: ResultField[] = [{ name: 'email', tableOid: 1, columnAttr: 1, typeOid: 25, format: 0 }, { name: 'note', tableOid: 1, columnAttr: 2, typeOid: 25, format: 0 }];

  it('gives the HMAC of the value, the same on a cache hit, across plans with the same key', () => {
    const k = Buffer.alloc(32, 3);
    const a = createMaskingPlan(doc, fields, { hmacKey: k }) as MaskingPlan;
    const b = createMaskingPlan(doc, fields, { hmacKey: k }) as MaskingPlan;
    for (let round = 0; round < 3; round++) {
      for (const plan of [a, b]) {
        const out = plan.maskRow([Buffer.from('User@Example.com'), Buffer.from('mail User@Example.com, card 4111 1111 1111 1111')]).values.map((v) => v!.toString());
        expect(out[0]).toBe(hmac('User@Example.com', k));
        expect(out[1]).toBe(`mail ${hmac('user@example.com', k)}, card ${hmac('4111111111111111', k)}`);
      }
    }
    const other = createMaskingPlan(doc, fields, { hmacKey: Buffer.alloc(32, 4) }) as MaskingPlan;
    expect(other.maskRow([Buffer.from('User@Example.com'), null]).values[0]!.toString()).toBe(hmac('User@Example.com', Buffer.alloc(32, 4)));
  });

  it('follows a key Buffer rewritten in place', () => {
    const k = Buffer.alloc(32, 6);
    const before = (createMaskingPlan(doc, fields, { hmacKey: k }) as MaskingPlan).maskRow([Buffer.from('a@b.io'), null]).values[0];
    k.fill(9);
    const after = (createMaskingPlan(doc, fields, { hmacKey: k }) as MaskingPlan).maskRow([Buffer.from('a@b.io'), null]).values[0];
    expect(before).toBe(hmac('a@b.io', Buffer.alloc(32, 6)));
    expect(after).toBe(hmac('a@b.io', Buffer.alloc(32, 9)));
  });

  it.each([
    { name: 'ASCII', bytes: Buffer.from('user4@example.com') },
    { name: 'non-ASCII', bytes: Buffer.from('zoë@exämple.de') },
    { name: 'invalid UTF-8 (hashed as the text it decodes to, U+FFFD)', bytes: Buffer.from([0x61, 0xff, 0x62]) },
    { name: 'an encoded surrogate (invalid UTF-8)', bytes: Buffer.from([0xed, 0xa0, 0x80]) },
    { name: 'empty', bytes: Buffer.alloc(0) },
    { name: '129 bytes (not cached)', bytes: Buffer.from('x'.repeat(129)) },
  ])('a DataRow value is hashed as the text it decodes to: $name', ({ bytes }) => {
    const k = Buffer.alloc(32, 2);
    const p = createMaskingPlan(doc, fields, { hmacKey: k }) as MaskingPlan;
    for (let round = 0; round < 2; round++) {
      const view = new DataRowView().read(encodeDataRow([bytes, null]).subarray(5));
      const out = new DataRowWriter();
      out.begin(view);
      expect(p.maskDataRow(view, out)).toBe(1);
      expect(decodeDataRow(out.finish().subarray(5))[0]!.toString()).toBe(hmac(bytes.toString('utf8'), k));
    }
  });

  it('stays correct past its bound and for long values', () => {
    const k = Buffer.alloc(32, 5);
    const p = createMaskingPlan(doc, fields, { hmacKey: k }) as MaskingPlan;
    const long = `${'x'.repeat(300)}@example.com`;
    // two passes over more distinct values than the cache holds (two generations of 16384), then a hot
    // set; through maskRow (strings) and maskDataRow (bytes), which share the cache
    const values = Array.from({ length: 40_000 }, (_, i) => `user${i}@example.com`);
    const view = new DataRowView();
    const out = new DataRowWriter();
    let k2 = 0;
    for (const v of [...values, ...values, ...values.slice(0, 50), ...values.slice(0, 50)]) {
      if (k2++ % 2) {
        expect(p.maskRow([Buffer.from(v), null]).values[0]!.toString()).toBe(hmac(v, k));
      } else {
        view.read(encodeDataRow([v, null]).subarray(5));
        out.begin(view);
        expect(p.maskDataRow(view, out)).toBe(1);
        expect(out.finish().equals(encodeDataRow([hmac(v, k), null]))).toBe(true);
      }
    }
    expect(p.maskRow([Buffer.from(long), null]).values[0]!.toString()).toBe(hmac(long, k));
    expect(p.maskRow([Buffer.from(long), null]).values[0]!.toString()).toBe(hmac(long, k));
  });
});

// maskDataRow (the relay's path: the row read in place, replaced values written into a new row)
// must give exactly what maskRow on the decoded values gives, re-encoded: same bytes, same count of
// values changed, same per-rule counts, and the same error where maskRow throws.
describe('maskDataRow is maskRow in place', () => {
  const doc = parsePolicyDocument({
    name: 'every-path',
    detectors: [{ name: 'TICKET', pattern: 'TCK-\\d{4}' }],
    masking: [
      { name: 'cards', columns: ['public.customers.card'], strategy: 'partial', keepLast: 4 },
      { name: 'emails', columns: ['customers.email'], strategy: 'hash' },
      { name: 'secrets', columns: ['secret'], strategy: 'redact', token: 'géheim' },
      { name: 'gone', columns: ['gone', 'gone_int'], strategy: 'null' },
      { name: 'json-partial', columns: ['jdoc'], strategy: 'partial' },
      { name: 'json-redact', columns: ['jred'], strategy: 'redact' },
      { name: 'json-hash', columns: ['jhash'], strategy: 'hash' },
      { name: 'bin-partial', columns: ['bcard'], strategy: 'partial', keepLast: 2 },
      { name: 'uuids', types: ['uuid'], strategy: 'hash' },
      { name: 'pii', detectors: ['EMAIL', 'CREDIT_CARD', 'PHONE', 'US_SSN'], strategy: 'redact' },
      { name: 'keys', detectors: ['AWS_ACCESS_KEY', 'JWT', 'IBAN', 'IPV4', 'TICKET'], strategy: 'hash' },
      { name: 'ssn-null', detectors: ['US_SSN'], strategy: 'null', columns: ['nulled_note'] },
    ],
  });
  const f = (name: string, typeOid: number, format: 0 | 1 = 0): ResultField => ({ name, tableOid: 16390, columnAttr: 1, typeOid, format, table: 'public.customers' });
  const fields: ResultField[] = [
    f('id', 23), f('name', 25), f('email', 25), f('card', 25), f('note', 1043), f('secret', 25), f('gone', 25), f('gone_int', 23, 1),
    f('jdoc', 114), f('jred', 3802), f('jhash', 114), f('bcard', 25, 1), f('uid', 2950), f('nulled_note', 25), f('jb', 3802, 1), f('arr', 1009, 1),
    f('when', 1184), f('tags', 1009),
  ];
  const snippets = [
    'alice@example.com', 'Zoë@exämple.de', 'User@Example.COM', '4111 1111 1111 1111', '4111111111111111', '4111-1111-1111-1112',
    '+44 20 7946 0958', '415-555-0132', '(415) 555-0132', '020 7946 0958', '123-45-6789', '666-12-3456', 'AKIAIOSFODNN7EXAMPLE',
    JWT, 'DE89 3704 0044 0532 0130 00', '192.168.1.10', 'TCK-1234', 'v1.2.3.4', '2024-01-15', 'call back', ' ', ', ', '"', '\\', '@', '.',
    'Grüße ✓', '例え', '😀', 'a@b', 'x@y.z', '12', '0042', '', 'customer since 2004, prefers email contact',
  ];
  const text = (rnd: () => number): string => {
    let s = '';
    const n = Math.floor(rnd() * 6);
    for (let k = 0; k < n; k++) s += snippets[Math.floor(rnd() * snippets.length)];
    return s;
  };
  const bytesOf = (rnd: () => number): Buffer => {
    const r = rnd();
    if (r < 0.06) return Buffer.from([0xff, 0x41, 0xc3]); // invalid UTF-8
    if (r < 0.1) return Buffer.concat([Buffer.from(text(rnd)), Buffer.from([0xe2, 0x82]), Buffer.from(text(rnd))]); // a cut sequence
    return Buffer.from(text(rnd));
  };
  const jsonOf = (rnd: () => number): string => {
    const r = rnd();
    if (r < 0.3) return JSON.stringify(text(rnd));
    if (r < 0.6) return JSON.stringify({ a: text(rnd), n: Math.floor(rnd() * 1e6), b: [text(rnd)] });
    if (r < 0.7) return `{"broken": ${text(rnd)}`;
    return JSON.stringify(text(rnd)).slice(1, -1);
  };
  const arrayOf = (rnd: () => number): Buffer => {
    const n = Math.floor(rnd() * 4);
    const els = Array.from({ length: n }, () => (rnd() < 0.15 ? null : bytesOf(rnd)));
    return Buffer.concat([int32s(1, els.some((e) => e === null) ? 1 : 0, 25, n, 1), ...els.map((e) => (e === null ? int32s(-1) : Buffer.concat([int32s(e.length), e])))]);
  };
  const valueOf = (rnd: () => number, fld: ResultField): Buffer | null => {
    if (rnd() < 0.12) return null;
    if (fld.typeOid === 23) return fld.format === 1 ? int32s(Math.floor(rnd() * 1000)) : Buffer.from(String(Math.floor(rnd() * 1000)));
    if (fld.typeOid === 3802 && fld.format === 1) return rnd() < 0.03 ? Buffer.from([2, 0x7b]) : Buffer.concat([Buffer.from([1]), Buffer.from(jsonOf(rnd))]);
    if (fld.typeOid === 114 || fld.typeOid === 3802) return Buffer.from(jsonOf(rnd));
    if (fld.typeOid === 1009 && fld.format === 1) return rnd() < 0.03 ? Buffer.from([0, 0, 0, 9]) : arrayOf(rnd);
    return bytesOf(rnd);
  };
  const outcome = (run: () => Buffer | null): { bytes: string | null } | { error: string } => {
    try {
      const b = run();
      return { bytes: b === null ? null : b.toString('hex') };
    } catch (err) {
      return { error: `${(err as Error).name}: ${(err as Error).message}` };
    }
  };

  it.each([1, 2, 3])('on 6000 generated rows (seed %i)', (seed) => {
    const rnd = prng(seed);
    const a = createMaskingPlan(doc, fields, { hmacKey: key }) as MaskingPlan;
    const b = createMaskingPlan(doc, fields, { hmacKey: key }) as MaskingPlan;
    expect(a.kind).toBe('plan');
    const view = new DataRowView();
    const out = new DataRowWriter();
    let changed = 0;
    for (let k = 0; k < 6000; k++) {
      // now and then a row shorter or longer than its layout
      const n = rnd() < 0.05 ? Math.floor(rnd() * (fields.length + 3)) : fields.length;
      const values = Array.from({ length: n }, (_, i) => valueOf(rnd, fields[i] ?? f('extra', 25)));
      const payload = encodeDataRow(values).subarray(5);
      let oldChanged = 0;
      const want = outcome(() => {
        const r = a.maskRow(values);
        oldChanged = r.changed;
        return r.changed > 0 ? encodeDataRow(r.values) : null;
      });
      let newChanged = 0;
      const got = outcome(() => {
        view.read(payload);
        out.begin(view);
        newChanged = b.maskDataRow(view, out);
        return out.started ? out.finish() : null;
      });
      expect(got).toEqual(want);
      if (!('error' in want)) {
        expect(newChanged).toBe(oldChanged);
        changed += oldChanged;
      }
    }
    expect(changed).toBeGreaterThan(10_000);
    expect(b.stats()).toEqual(a.stats());
  });

  it('bench rows: the card keeps its last 4 digits, the email is its HMAC, a note email is redacted', () => {
    const p = createMaskingPlan(doc, [f('id', 23), f('name', 25), f('email', 25), f('card', 25), f('note', 25)], { hmacKey: key }) as MaskingPlan;
    const payload = encodeDataRow(['4', 'Customer 4', 'user4@example.com', '4000 0000 0000 0044', 'call back, new address is person4@mail.example.org']).subarray(5);
    const view = new DataRowView().read(payload);
    const out = new DataRowWriter();
    out.begin(view);
    expect(p.maskDataRow(view, out)).toBe(3);
    const hmac = `h:${createHmac('sha256', key).update('user4@example.com').digest('hex').slice(0, 16)}`;
    expect(out.finish().equals(encodeDataRow(['4', 'Customer 4', hmac, '**** **** **** 0044', 'call back, new address is [REDACTED]']))).toBe(true);
    const clean = new DataRowView().read(encodeDataRow(['5', 'Customer 5', null, null, 'customer since 2005, prefers email contact']).subarray(5));
    out.begin(clean);
    expect(p.maskDataRow(clean, out)).toBe(0);
    expect(out.started).toBe(false);
  });
});

/** A binary-format result value (jsonb, arrays): masked ones stay Buffers. */
function bin(v: Buffer | string | null | undefined): Buffer {
  if (!Buffer.isBuffer(v)) throw new Error(`expected a Buffer, got ${JSON.stringify(v)}`);
  return v;
}

function int32s(...n: number[]): Buffer {
  const b = Buffer.alloc(n.length * 4);
  n.forEach((v, i) => b.writeInt32BE(v, i * 4));
  return b;
}
function lenPrefixed(s: string): Buffer {
  const body = Buffer.from(s);
  return Buffer.concat([int32s(body.length), body]);
}
