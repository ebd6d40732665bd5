import { describe, expect, it } from 'vitest';
import { encodeDataRow, type RowField } from '@portcullis/protocol';
import { ResultCapture } from './result-capture.js';
import type { RowMasker } from './session-hooks.js';

const field = (name: string, typeOid = 25, format: 0 | 1 = 0): RowField => ({ name, tableOid: 0, columnAttr: 0, typeOid, typeSize: -1, typeModifier: -1, format });
/** a DataRow's payload (what follows the type byte and length) */
const row = (...values: (string | Buffer | null)[]) => encodeDataRow(values).subarray(5);
const masker = { columns: ['email'], describe: () => [null, { by: 'rule', rule: 'emails', strategy: 'partial' }] } as unknown as RowMasker;

describe('ResultCapture', () => {
  it('keeps rows as sent, marks the values masking replaced, names each column\'s rule', () => {
    const c = new ResultCapture({ rows: 10, bytes: 10_000 });
    c.layout([field('id'), field('email')], masker);
    c.row(row('1', 'a***@x.test'), row('1', 'ann@x.test'));
    c.row(row('2', null), null);
    c.endSet();
    expect(c.take()).toEqual([{
      columns: [{ name: 'id', typeOid: 25 }, { name: 'email', typeOid: 25, masking: { by: 'rule', rule: 'emails', strategy: 'partial' } }],
      rows: [['1', 'a***@x.test'], ['2', null]],
      masked: [[1], []],
    }]);
    // take() starts over: nothing kept for a statement with no rows
    expect(c.take()).toBeUndefined();
  });

  it('stops at the row limit and the byte limit per statement, across the sets of a multi-statement query', () => {
    const c = new ResultCapture({ rows: 3, bytes: 10_000 });
    c.layout([field('g')], null);
    for (let i = 0; i < 2; i++) c.row(row(String(i)), null);
    c.endSet();
    c.layout([field('h')], null);
    for (let i = 0; i < 5; i++) c.row(row(String(i)), null);
    c.endSet();
    const sets = c.take()!;
    expect(sets.map((s) => s.rows.length)).toEqual([2, 1]);
    expect(sets[1].truncated).toBe(true);

    const b = new ResultCapture({ rows: 100, bytes: 250 });
    b.layout([field('big')], null);
    for (let i = 0; i < 3; i++) b.row(row('x'.repeat(100)), null);
    const [kept] = b.take()!;
    expect(kept.rows).toHaveLength(2);
    expect(kept.truncated).toBe(true);
  });

  it('shows binary values as \\x hex, never decoded', () => {
    const c = new ResultCapture({ rows: 5, bytes: 1000 });
    c.layout([field('photo', 17, 1)], null);
    c.row(row(Buffer.from([0, 0xff, 0x10])), null);
    const [set] = c.take()!;
    expect(set.columns[0].format).toBe('binary');
    expect(set.rows).toEqual([['\\x00ff10']]);
  });

  it('keeps nothing for rows without a layout, and survives a malformed row', () => {
    const c = new ResultCapture({ rows: 5, bytes: 1000 });
    c.row(row('orphan'), null);
    expect(c.take()).toBeUndefined();
    c.layout([field('a')], null);
    c.row(Buffer.from([0, 5, 0]), null);
    c.row(row('ok'), null);
    expect(c.take()![0].rows).toEqual([['ok']]);
  });
});
