import { randomBytes, randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { canonicalJson, signEvent, verifyEventSignature, type WireEvent } from '@portcullis/protocol';
import { verifySignatureFast } from './event-signature.js';

const key = randomBytes(32);
const datas: Array<Record<string, unknown>> = [
  {},
  { sql: 'SELECT "a", \'b\' FROM t -- ü ✓ \u2028', protocol: 'simple' },
  { rows: 0, durationMs: 1.25, error: { code: '42P01', message: 'relation "x" does not exist' }, masking: { columns: ['email'], values: 3 } },
  { nested: { z: 1, a: [1, 'two', null, { y: true, b: false }] }, big: 1e21, small: 1e-7, neg: -0, emoji: '😀', ctrl: '\t\n' },
  { undef: undefined, keep: 'x' },
];

describe('verifySignatureFast', () => {
  it.each(datas.map((d, i) => ({ name: `data #${i}`, data: d })))('$name: equals verifyEventSignature', ({ data }) => {
    for (const sessionId of ['s-1', null]) {
      const wire: WireEvent = signEvent({ id: randomUUID(), sessionId, seq: sessionId ? 7 : 0, time: '2026-11-26T23:40:00.123456+01:00', type: sessionId ? 'query' : 'policy.changed', identity: sessionId ? 'alice' : null, connection: 'démo', gateway: null, data }, key);
      const cd = canonicalJson(wire.data);
      expect(verifySignatureFast(wire, cd, key)).toBe(verifyEventSignature(wire, key));
      expect(verifySignatureFast({ ...wire, seq: wire.seq + 1 }, cd, key)).toBe(false);
    }
  });
});
