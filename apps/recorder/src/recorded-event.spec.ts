import { randomBytes, randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { canonicalJson, GENESIS_HASH, signEvent, verifyEventSignature, type WireEvent } from '@portcullis/protocol';
import { fastHash, hashOf, normaliseTime, verifySignatureFast, type ChainedEvent } from './recorded-event.js';

const key = randomBytes(32);
const datas: Array<Record<string, unknown>> = [
  {},
  { sql: 'SELECT "a", \'b\' FROM t -- ü ✓ \u2028', protocol: 'simple' },
  { rows: 0, durationMs: 1.25, error: { code: '42P01', message: 'relation "x" does not exist' }, masking: { columns: ['email'], values: 3 } },
  { nested: { z: 1, a: [1, 'two', null, { y: true, b: false }] }, big: 1e21, small: 1e-7, neg: -0, emoji: '😀', ctrl: '\t\n' },
  { undef: undefined, keep: 'x' },
];

describe('fast canonical forms', () => {
  it.each(datas.map((d, i) => ({ name: `data #${i}`, data: d })))('$name: fastHash equals hashOf and verifySignatureFast equals verifyEventSignature', ({ data }) => {
    for (const sessionId of ['s-1', null]) {
      const wire: WireEvent = signEvent({ id: randomUUID(), sessionId, seq: sessionId ? 7 : 0, time: '2026-11-26T23:40:00.123456+01:00', type: sessionId ? 'query' : 'policy.changed', identity: sessionId ? 'alice' : null, connection: 'démo', gateway: null, data }, key);
      const cd = canonicalJson(wire.data);
      expect(verifySignatureFast(wire, cd, key)).toBe(verifyEventSignature(wire, key));
      expect(verifySignatureFast({ ...wire, seq: wire.seq + 1 }, cd, key)).toBe(false);
      const e: ChainedEvent = { id: wire.id, sessionId, seq: wire.seq, time: normaliseTime(wire.time), type: wire.type, identity: wire.identity, connection: wire.connection, gateway: wire.gateway, data, prevHash: GENESIS_HASH };
      expect(fastHash(e, cd)).toBe(hashOf(e));
    }
  });
});

describe('normaliseTime', () => {
  it.each([
    '2026-11-26T23:40:00.123Z', '2026-02-28T00:00:00.000Z', '2026-02-29T00:00:00.000Z', '2026-02-30T12:00:00.000Z', '2028-02-29T00:00:00.000Z',
    '2026-04-31T00:00:00.000Z', '2026-12-31T23:59:59.999Z', '2026-11-26T23:40:00Z', '2026-11-26T23:40:00.1234567+01:00', '2026-11-26T23:40:00.123+00:00',
  ])('%s: the same as toISOString()', (t) => {
    expect(normaliseTime(t)).toBe(new Date(t).toISOString());
  });
});
