import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { canonicalJson, chainHash, GENESIS_HASH } from './canonical.js';
import { chainedEventHash, chainedEventHashFast, normaliseTime, toRecordedEvent, type ChainedEvent } from './recorded-event.js';

const datas: Array<Record<string, unknown>> = [
  {},
  { sql: 'SELECT "a", \'b\' FROM t -- ü ✓ \u2028', protocol: 'simple' },
  { rows: 0, durationMs: 1.25, error: { code: '42P01', message: 'relation "x" does not exist' }, masking: { columns: ['email'], values: 3 } },
  { nested: { z: 1, a: [1, 'two', null, { y: true, b: false }] }, big: 1e21, small: 1e-7, neg: -0, emoji: '😀', ctrl: '\t\n' },
  { undef: undefined, keep: 'x' },
];

function chained(data: Record<string, unknown>, sessionId: string | null): ChainedEvent {
  return {
    id: randomUUID(), sessionId, seq: sessionId ? 7 : 0, time: normaliseTime('2026-11-26T23:40:00.123456+01:00'), type: sessionId ? 'query' : 'policy.changed',
    identity: sessionId ? 'alice' : null, connection: 'démo', gateway: null, data, prevHash: GENESIS_HASH,
  };
}

describe('the hashed event form', () => {
  it.each(datas.map((d, i) => ({ name: `data #${i}`, data: d })))('$name: the fast hash equals the canonical one', ({ data }) => {
    for (const sessionId of ['s-1', null]) {
      const e = chained(data, sessionId);
      expect(chainedEventHashFast(e, canonicalJson(data))).toBe(chainedEventHash(e));
      expect(chainedEventHash(e)).toBe(chainHash(GENESIS_HASH, { ...e }));
    }
  });

  it.each(datas.map((d, i) => ({ name: `data #${i}`, data: d })))('$name: a reader rebuilding the row (toRecordedEvent) recomputes the writer\'s hash', ({ data }) => {
    for (const sessionId of ['s-1', null]) {
      const e = chained(data, sessionId);
      const hash = chainedEventHash(e);
      // the row as the database returns it: time a Date, data parsed back from jsonb (undefined members gone)
      const row = { ...e, time: new Date(e.time), data: JSON.parse(JSON.stringify(data)) as unknown, hash };
      const read = toRecordedEvent(row);
      expect(read.time).toBe(e.time);
      expect(chainedEventHash(read)).toBe(hash);
      expect(chainedEventHash({ ...read, seq: read.seq + 1 })).not.toBe(hash);
    }
  });
});

describe('normaliseTime', () => {
  it.each([
    '2026-11-26T23:40:00.123Z', '2026-02-28T00:00:00.000Z', '2026-02-29T00:00:00.000Z', '2026-02-30T12:00:00.000Z', '2028-02-29T00:00:00.000Z',
    '2026-04-31T00:00:00.000Z', '2026-12-31T23:59:59.999Z', '2026-11-26T23:40:00Z', '2026-11-26T23:40:00.1234567+01:00', '2026-11-26T23:40:00.123+00:00',
  ])('%s: the same as toISOString()', (t) => {
    expect(normaliseTime(t)).toBe(new Date(t).toISOString());
    expect(normaliseTime(new Date(t))).toBe(new Date(t).toISOString());
  });
});
