import { DataRowView, DataRowWriter, decodeDataRow, encodeDataRow } from '@portcullis/protocol';
import { describe, expect, it } from 'vitest';
import type { Logger } from '../logger.js';
import type { SideConnection } from './side-connection.js';
import { createPolicyHooks, parseCopyTo } from './policy-hooks.js';
import type { PolicyLib } from '../core/policy-lib.js';

describe('parseCopyTo', () => {
  it.each([
    // the tricky ones first: a literal that looks like the end of the subquery
    { name: 'literal with ") to stdout" in the subquery', sql: `COPY (select a, ') to stdout' from t) TO STDOUT (FORMAT csv)`, expected: { source: `select a, ') to stdout' from t`, options: '(FORMAT csv)' } },
    { name: 'options hiding a fake end: the source does not parse', sql: `COPY (select email from t) TO STDOUT (format csv, null ') to stdout')`, expected: { source: `select email from t) TO STDOUT (format csv, null '`, options: `')` } },
    { name: 'psql \\copy with csv', sql: 'COPY  ( select 1 ) TO STDOUT with (format csv, header)', expected: { source: ' select 1 ', options: 'with (format csv, header)' } },
    { name: 'pg_dump data', sql: 'COPY public.people (id, name) TO stdout;', expected: { source: 'SELECT id, name FROM public.people', options: '' } },
    { name: 'legacy CSV keyword', sql: 'copy t to stdout csv header', expected: { source: 'SELECT * FROM t', options: 'csv header', wholeTable: true } },
    { name: 'quoted table', sql: 'COPY "Odd"."T" TO STDOUT', expected: { source: 'SELECT * FROM "Odd"."T"', options: '', wholeTable: true } },
    { name: 'COPY FROM', sql: 'COPY t FROM STDIN', expected: null },
    { name: 'not first', sql: 'select 1; COPY t TO STDOUT', expected: null },
  ])('$name', ({ sql, expected }) => {
    expect(parseCopyTo(sql)).toEqual(expected);
  });
});

describe('createPolicyHooks masking (real policy library)', () => {
  const field = (name: string, attr: number) => ({ name, tableOid: 0, columnAttr: attr, typeOid: 25, typeSize: -1, typeModifier: -1, format: 0 as const });
  const hooks = async () => {
    const lib = (await import('@portcullis/policy')) as unknown as PolicyLib;
    await lib.initPolicyEngine();
    const document = lib.parsePolicyDocument({
      name: 'm',
      masking: [{ name: 'emails', columns: ['email'], strategy: 'partial' }, { name: 'pii', detectors: ['CREDIT_CARD', 'US_SSN'], strategy: 'redact' }],
    });
    const side = { query: async () => [], describe: async () => [field('email', 1), field('note', 2)], close: () => {} } as unknown as SideConnection;
    const logger = { info: () => {}, warn: () => {}, error: () => {}, debug: () => {} } as unknown as Logger;
    return createPolicyHooks({ policy: () => ({ name: 'm', version: 1, document, engine: { evaluate: () => ({ action: 'allow', rule: null, reason: null }) }, masks: true }), lib, maskingKey: Buffer.alloc(32, 1), side, logger });
  };

  it('counts the values masked in each COPY line; an untouched line is passed as it is', async () => {
    const h = await hooks();
    const plan = await h.onCopyOut({ format: 0, columnFormats: [0, 0], sql: 'COPY t TO STDOUT' });
    if (!plan || plan.kind !== 'mask') throw new Error(`expected a masking plan, got ${JSON.stringify(plan)}`);
    const r = h.onCopyData(plan.masker, Buffer.from('bob@example.com\tssn 123-45-6789 card 4111111111111111\n'));
    expect(r.line.toString()).toBe('b**@example.com\tssn [REDACTED] card [REDACTED]\n');
    expect(r.changed).toBe(2);
    const clean = Buffer.from('\\N\torder 4111111111111112, 2024-01-15\n');
    expect(h.onCopyData(plan.masker, clean)).toEqual({ line: clean, changed: 0 });
  });

  it('CSV with HEADER: each COPY gets its own line masker, whose first line is the header', async () => {
    const h = await hooks();
    for (let run = 0; run < 2; run++) {
      const plan = await h.onCopyOut({ format: 0, columnFormats: [0, 0], sql: 'COPY t TO STDOUT WITH (FORMAT csv, HEADER)' });
      if (!plan || plan.kind !== 'mask') throw new Error(`expected a masking plan, got ${JSON.stringify(plan)}`);
      const header = Buffer.from('email,note\n');
      expect(h.onCopyData(plan.masker, header)).toEqual({ line: header, changed: 0 });
      const r = h.onCopyData(plan.masker, Buffer.from('bob@example.com,"card 4111111111111111, ssn 123-45-6789"\n'));
      expect(r.line.toString()).toBe('b**@example.com,"card [REDACTED], ssn [REDACTED]"\n');
      expect(r.changed).toBe(2);
    }
  });

  it('text with a custom delimiter (legacy syntax)', async () => {
    const h = await hooks();
    const plan = await h.onCopyOut({ format: 0, columnFormats: [0, 0], sql: "COPY (select email, note from t) TO STDOUT DELIMITER '|' NULL ''" });
    if (!plan || plan.kind !== 'mask') throw new Error(`expected a masking plan, got ${JSON.stringify(plan)}`);
    expect(h.onCopyData(plan.masker, Buffer.from('|a\\|b 4111111111111111\n')).line.toString()).toBe('|a\\|b [REDACTED]\n');
    expect(() => h.onCopyData(plan.masker, Buffer.from('one field only\n'))).toThrow(/expects 2/);
  });

  it.each([
    { name: 'binary on the wire', format: 1, sql: 'COPY t TO STDOUT (FORMAT binary)', reason: /binary COPY of masked columns is refused/ },
    { name: 'a non-UTF-8 encoding', format: 0, sql: "COPY t TO STDOUT (FORMAT csv, ENCODING 'LATIN1')", reason: /COPY TO is refused where masking applies: ENCODING 'LATIN1'/ },
    { name: 'a COPY FROM option', format: 0, sql: 'COPY t TO STDOUT (FORMAT csv, FORCE_NOT_NULL (email))', reason: /FORCE_NOT_NULL is not a COPY TO option/ },
    { name: 'another statement after it', format: 0, sql: 'COPY t TO STDOUT (FORMAT csv); SELECT 1', reason: /only statement/ },
    { name: 'FORCE_QUOTE of a column it does not send', format: 0, sql: 'COPY t TO STDOUT (FORMAT csv, FORCE_QUOTE (nope))', reason: /format options do not fit its columns/ },
  ])('refuses COPY TO with $name where masking applies', async ({ format, sql, reason }) => {
    const h = await hooks();
    const plan = await h.onCopyOut({ format, columnFormats: [format, format], sql });
    expect(plan?.kind).toBe('refuse');
    expect(plan && plan.kind === 'refuse' ? plan.reason : '').toMatch(reason);
  });

  it('DataRow: masked values are written into the new row, the rest copied as they came', async () => {
    const h = await hooks();
    const plan = await h.onRowDescription([field('email', 1), field('note', 2)]);
    if (!plan || plan.kind !== 'mask') throw new Error('expected a masking plan');
    const row = new DataRowView().read(encodeDataRow(['bob@example.com', 'v1.2.3 on 2024-01-15']).subarray(5));
    const out = new DataRowWriter();
    out.begin(row);
    expect(h.onDataRow(plan.masker, row, out)).toBe(1);
    expect(decodeDataRow(out.finish().subarray(5)).map((v) => v?.toString())).toEqual(['b**@example.com', 'v1.2.3 on 2024-01-15']);
    // nothing to mask: nothing written, the relay sends the row as it came
    const clean = new DataRowView().read(encodeDataRow([null, 'v1.2.3 on 2024-01-15']).subarray(5));
    out.begin(clean);
    expect(h.onDataRow(plan.masker, clean, out)).toBe(0);
    expect(out.started).toBe(false);
  });

  it('the same layout again gets the same plan without a lookup; another layout its own', async () => {
    const h = await hooks();
    const a = await h.onRowDescription([field('email', 1), field('note', 2)]);
    const b = h.onRowDescription([field('email', 1), field('note', 2)]);
    expect(b).toBe(a);
    const other = h.onRowDescription([field('email', 1), { ...field('note', 2), format: 1 }]);
    expect(other).not.toBe(a);
    expect(other).toMatchObject({ kind: 'mask' });
    expect(h.onRowDescription([{ ...field('id', 1), typeOid: 23 }])).toBeNull();
    expect(h.onRowDescription([field('email', 1), field('note', 2)])).toBe(a);
  });
});

describe('createPolicyHooks: result columns are the table columns the server names', () => {
  const field = (name: string, tableOid: number, attr: number) => ({ name, tableOid, columnAttr: attr, typeOid: 25, typeSize: -1, typeModifier: -1, format: 0 as const });
  const setup = async (query: () => Promise<string[][]>) => {
    const lib = (await import('@portcullis/policy')) as unknown as PolicyLib;
    await lib.initPolicyEngine();
    const document = lib.parsePolicyDocument({ name: 'm', masking: [{ name: 'ssns', columns: ['people.ssn'], strategy: 'redact' }] });
    const side = { query, describe: async () => null, close: () => {} } as unknown as SideConnection;
    const logger = { info: () => {}, warn: () => {}, error: () => {}, debug: () => {} } as unknown as Logger;
    return createPolicyHooks({ policy: () => ({ name: 'm', version: 1, document, engine: { evaluate: () => ({ action: 'allow', rule: null, reason: null }) }, masks: true }), lib, maskingKey: Buffer.alloc(32, 1), side, logger });
  };

  it('an aliased column is masked by the rule of the column it is', async () => {
    const h = await setup(async () => [['16400', 'public', 'people', '1', 'id'], ['16400', 'public', 'people', '2', 'ssn']]);
    const plan = await h.onRowDescription([field('who', 16400, 1), field('x', 16400, 2)]);
    if (!plan || plan.kind !== 'mask') throw new Error(`expected a masking plan, got ${JSON.stringify(plan)}`);
    expect(plan.masker.columns).toEqual(['x']);
  });

  it('with column rules, a result whose tables cannot be looked up is withheld, and looked up again next time', async () => {
    let fail = true;
    const h = await setup(async () => {
      if (fail) throw new Error('side connection refused');
      return [['16400', 'public', 'people', '2', 'ssn']];
    });
    const fields = [field('x', 16400, 2)];
    expect(await h.onRowDescription(fields)).toMatchObject({ kind: 'refuse', reason: expect.stringMatching(/could not look up which table columns/) });
    fail = false;
    expect(await h.onRowDescription(fields)).toMatchObject({ kind: 'mask' });
  });
});
