import { describe, expect, it } from 'vitest';
import * as be from './backend.js';
import { DataRowView, DataRowWriter } from './data-row.js';
import { ProtocolError } from './errors.js';
import { prng } from './prng.test-support.js';


/** decodeDataRow as it was before DataRowView (one Buffer per value): the reference for the checks. */
function referenceDecode(payload: Buffer): (Buffer | null)[] {
  const end = payload.length;
  if (end < 2) throw new ProtocolError('malformed', 'DataRow: no column count');
  const n = payload.readUInt16BE(0);
  if (n * 4 > end - 2) throw new ProtocolError('malformed', `DataRow: column count ${n} does not fit in ${end - 2} bytes`);
  const values = new Array<Buffer | null>(n);
  let pos = 2;
  for (let i = 0; i < n; i++) {
    if (end - pos < 4) throw new ProtocolError('malformed', `DataRow: column ${i} length runs past the end`);
    const len = payload.readInt32BE(pos);
    pos += 4;
    if (len === -1) values[i] = null;
    else if (len < 0 || len > end - pos) throw new ProtocolError('malformed', `DataRow: column ${i} length ${len} is out of range`);
    else {
      values[i] = payload.subarray(pos, pos + len);
      pos += len;
    }
  }
  if (pos !== end) throw new ProtocolError('malformed', `DataRow: ${end - pos} unexpected trailing bytes`);
  return values;
}

const outcome = (f: () => (Buffer | null)[]): { values: (string | null)[] } | { error: string; code: string } => {
  try {
    return { values: f().map((v) => (v === null ? null : v.toString('hex'))) };
  } catch (err) {
    if (!(err instanceof ProtocolError)) throw err;
    return { error: err.message, code: err.code };
  }
};

const viewValues = (v: DataRowView): (Buffer | null)[] =>
  Array.from({ length: v.count }, (_, i) => (v.lengths[i] < 0 ? null : v.payload.subarray(v.starts[i], v.starts[i] + v.lengths[i])));

function randomValues(rnd: () => number, n: number): (Buffer | null)[] {
  return Array.from({ length: n }, () => {
    const r = rnd();
    if (r < 0.15) return null;
    const len = r < 0.2 ? 0 : r < 0.95 ? Math.floor(rnd() * 40) : Math.floor(rnd() * 3000);
    return Buffer.from(Array.from({ length: len }, () => Math.floor(rnd() * 256)));
  });
}

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

describe('DataRowView', () => {
  it.each([
    { name: 'column count past the end', payload: hex('0005 00000001 41') },
    { name: 'value length past the end', payload: hex('0001 7fffffff 41') },
    { name: 'value length -2', payload: hex('0001 fffffffe') },
    { name: 'value length -2147483648', payload: hex('0001 80000000') },
    { name: 'trailing bytes', payload: hex('0001 ffffffff 00') },
    { name: 'empty body', payload: hex('') },
    { name: 'one byte body', payload: hex('00') },
    { name: 'length field cut short', payload: hex('0002 00000001 41 0000') },
    { name: '65535 columns announced, 3 present', payload: hex('ffff ffffffff ffffffff ffffffff') },
  ])('malformed: $name → the same ProtocolError as the old decoder', ({ payload }) => {
    const want = outcome(() => referenceDecode(payload));
    expect(want).toHaveProperty('code', 'malformed');
    expect(outcome(() => viewValues(new DataRowView().read(payload)))).toEqual(want);
    expect(outcome(() => be.decodeDataRow(payload))).toEqual(want);
  });

  // 20k rows take ~2 s on a quiet host; a CI host at load 30 once needed more than the default 30 s
  it('agrees with the old decoder on 20k generated and corrupted rows (values, or the error and its text)', { timeout: 180_000 }, () => {
    const rnd = prng(4);
    const view = new DataRowView(); // reused, as the relay does
    for (let k = 0; k < 20_000; k++) {
      const payload = be.encodeDataRow(randomValues(rnd, Math.floor(rnd() * 24))).subarray(5);
      const r = rnd();
      // corrupt: flip a byte, cut the end, or append bytes
      let p: Buffer = Buffer.from(payload);
      if (r < 0.3 && p.length > 0) p[Math.floor(rnd() * p.length)] ^= 1 << Math.floor(rnd() * 8);
      else if (r < 0.45) p = p.subarray(0, Math.floor(rnd() * p.length));
      else if (r < 0.5) p = Buffer.concat([p, Buffer.from([0xff, 0xff, 0xff, 0xff].slice(0, 1 + Math.floor(rnd() * 4)))]);
      expect(outcome(() => viewValues(view.read(p)))).toEqual(outcome(() => referenceDecode(p)));
    }
  });

  it('grows for wide rows and reads values in place', () => {
    const values = Array.from({ length: 1000 }, (_, i) => (i % 7 === 0 ? null : `v${i}`));
    const payload = be.encodeDataRow(values).subarray(5);
    const v = new DataRowView().read(payload);
    expect(v.count).toBe(1000);
    expect(v.payload).toBe(payload);
    expect(viewValues(v).map((x) => x?.toString() ?? null)).toEqual(values);
  });
});

/** What the writer must produce: encodeDataRow of the row with the edits applied. */
type Edit = { i: number; v: string | Buffer | null };

function applyEdits(w: DataRowWriter, edits: Edit[], how: (e: Edit) => number): void {
  for (const e of edits) {
    if (e.v === null) w.setNull(e.i);
    else if (typeof e.v === 'string') w.setString(e.i, e.v);
    else if (how(e) < 0.5) w.setBytes(e.i, e.v, 0, e.v.length);
    else {
      const at = w.reserve(e.i, e.v.length);
      e.v.copy(w.buf, at);
    }
  }
}

describe('DataRowWriter', () => {
  it('builds exactly encodeDataRow of the edited row, on 20k generated rows and edits', () => {
    const rnd = prng(9);
    const view = new DataRowView();
    const w = new DataRowWriter();
    const strings = ['', 'h:0123456789abcdef', '[REDACTED]', '****-****-1111', 'ünï€😀', 'x'.repeat(100), 'é'.repeat(5000), '\ud800 lone'];
    const kept: { frame: Buffer; copy: Buffer }[] = [];
    for (let k = 0; k < 20_000; k++) {
      const values = randomValues(rnd, 1 + Math.floor(rnd() * 20));
      view.read(be.encodeDataRow(values).subarray(5));
      const edits: Edit[] = [];
      for (let i = 0; i < values.length; i++) {
        if (rnd() < 0.7) continue;
        const r = rnd();
        edits.push({ i, v: r < 0.2 ? null : r < 0.6 ? strings[Math.floor(rnd() * strings.length)] : randomValues(rnd, 1)[0] ?? Buffer.alloc(0) });
      }
      w.begin(view);
      applyEdits(w, edits, () => rnd());
      if (edits.length === 0) {
        expect(w.started).toBe(false);
        continue;
      }
      expect(w.started).toBe(true);
      const frame = w.finish();
      const edited: (Buffer | string | null)[] = values.slice();
      for (const e of edits) edited[e.i] = e.v;
      expect(frame.equals(be.encodeDataRow(edited))).toBe(true);
      if (k % 50 === 0) kept.push({ frame, copy: Buffer.from(frame) });
    }
    // a frame handed out is never written again, however many rows came after it
    for (const x of kept) expect(x.frame.equals(x.copy)).toBe(true);
  });

  it('puts the rows of a result back to back (one run to send) until a slab is full', () => {
    const view = new DataRowView().read(be.encodeDataRow(['1', 'alice@example.com', 'x']).subarray(5));
    const w = new DataRowWriter();
    const frames: Buffer[] = [];
    for (let k = 0; k < 3; k++) {
      w.begin(view);
      w.setString(1, 'a****@example.com');
      frames.push(w.finish());
    }
    expect(frames[1].buffer).toBe(frames[0].buffer);
    expect(frames[1].byteOffset).toBe(frames[0].byteOffset + frames[0].length);
    expect(frames[2].byteOffset).toBe(frames[1].byteOffset + frames[1].length);
  });

  it('gives a large row a buffer of its own and moves a row that outgrows its slab', () => {
    const view = new DataRowView().read(be.encodeDataRow(['a', 'b', 'c']).subarray(5));
    const w = new DataRowWriter();
    w.begin(view);
    w.setString(0, 'x'.repeat(40_000));
    w.setString(2, 'y'.repeat(40_000));
    const big = w.finish();
    expect(big.equals(be.encodeDataRow(['x'.repeat(40_000), 'b', 'y'.repeat(40_000)]))).toBe(true);
    // the shared slab goes on after it
    w.begin(view);
    w.setNull(1);
    const small = w.finish();
    expect(small.equals(be.encodeDataRow(['a', null, 'c']))).toBe(true);
    expect(small.buffer).not.toBe(big.buffer);
  });

  it('an unfinished row leaves nothing behind: the next row is built over it', () => {
    const view = new DataRowView().read(be.encodeDataRow(['a', 'b']).subarray(5));
    const w = new DataRowWriter();
    w.begin(view);
    w.setString(0, 'abandoned'); // say the masking failed after this
    w.begin(view);
    w.setString(1, 'B');
    expect(w.finish().equals(be.encodeDataRow(['a', 'B']))).toBe(true);
  });

  it.each([
    { name: 'a value replaced twice', run: (w: DataRowWriter) => { w.setNull(1); w.setNull(1); } },
    { name: 'values out of order', run: (w: DataRowWriter) => { w.setNull(1); w.setNull(0); } },
    { name: 'a value past the row', run: (w: DataRowWriter) => w.setNull(2) },
    { name: 'a negative column', run: (w: DataRowWriter) => w.setString(-1, 'x') },
    { name: 'finish with nothing replaced', run: (w: DataRowWriter) => w.finish() },
  ])('refuses $name (invalid_argument)', ({ run }) => {
    const w = new DataRowWriter();
    w.begin(new DataRowView().read(be.encodeDataRow(['a', 'b']).subarray(5)));
    expect(() => run(w)).toThrow(expect.objectContaining({ name: 'ProtocolError', code: 'invalid_argument' }));
  });
});
