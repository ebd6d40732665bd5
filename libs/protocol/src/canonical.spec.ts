import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { canonicalJson, canonicalJsonFast, chainHash, GENESIS_HASH } from './canonical.js';
import { signEvent, verifyEventSignature, wireEventSchema, type WireEvent } from './events.js';

describe('canonicalJson', () => {
  it.each([
    { name: 'sorts keys at every depth', input: { b: 1, a: { d: [1, { z: 1, y: 2 }], c: null } }, expected: '{"a":{"c":null,"d":[1,{"y":2,"z":1}]},"b":1}' },
    { name: 'drops undefined members', input: { a: undefined, b: 2 }, expected: '{"b":2}' },
    { name: 'undefined in arrays becomes null', input: [1, undefined], expected: '[1,null]' },
    { name: 'escapes strings like JSON', input: { 'k"': 'line\n"q"' }, expected: '{"k\\"":"line\\n\\"q\\""}' },
    { name: 'dates as ISO strings', input: { t: new Date('2026-01-01T00:00:00.000Z') }, expected: '{"t":"2026-01-01T00:00:00.000Z"}' },
    { name: 'bigint as string', input: { n: 10n }, expected: '{"n":"10"}' },
    { name: 'non-finite numbers as null', input: [NaN, Infinity], expected: '[null,null]' },
    { name: 'unicode key order by code unit', input: { é: 1, z: 2, Z: 3 }, expected: '{"Z":3,"z":2,"é":1}' },
  ])('$name', ({ input, expected }) => {
    expect(canonicalJson(input)).toBe(expected);
  });
});

describe('canonicalJsonFast', () => {
  const values: unknown[] = [
    {}, { sql: 'SELECT "a", \'b\' FROM t -- ü ✓ \u2028', protocol: 'simple' },
    { nested: { z: 1, a: [1, 'two', null, { y: true, b: false }] }, big: 1e21, small: 1e-7, neg: -0, emoji: '😀', ctrl: '\t\n' },
    { undef: undefined, keep: 'x' },
    null, 0, -0, 1.5, 1e21, NaN, Infinity, '', 'é\u2028"\\', true, false, [], [undefined, null, 1, [2, { b: 1, a: 2 }]],
    { b: 1, a: { d: [1, 2], c: null }, 'é': 1, E: 2, _: 3, '10': 4, '9': 5 },
    JSON.parse('{"__proto__": {"x": 1}, "z": 1, "a": [1e400, -1e-400]}'),
    Object.create(null),
    { d: new Date('2026-01-02T03:04:05.678Z'), big: 12n },
  ];
  it.each(values.map((v, i) => ({ name: `value #${i}`, v })))('$name: equals canonicalJson', ({ v }) => {
    expect(canonicalJsonFast(v)).toBe(canonicalJson(v));
  });
});

describe('chainHash', () => {
  it('is sha256(prevHash + canonical JSON without hash)', () => {
    const ev = { id: 'x', seq: 1, prevHash: GENESIS_HASH, data: { b: 1, a: 2 } };
    const want = createHash('sha256').update(GENESIS_HASH + '{"data":{"a":2,"b":1},"id":"x","prevHash":"' + GENESIS_HASH + '","seq":1}').digest('hex');
    expect(chainHash(GENESIS_HASH, ev)).toBe(want);
    expect(chainHash(GENESIS_HASH, { ...ev, hash: 'ignored' })).toBe(want);
  });
  it('changes when any field or the previous hash changes', () => {
    const ev = { id: 'x', seq: 1, data: { a: 1 } };
    const h = chainHash(GENESIS_HASH, ev);
    expect(chainHash(GENESIS_HASH, { ...ev, data: { a: 2 } })).not.toBe(h);
    expect(chainHash('1'.repeat(64), ev)).not.toBe(h);
  });
});

describe('event signatures', () => {
  const key = randomBytes(32);
  const base: Omit<WireEvent, 'sig'> = {
    id: randomUUID(), sessionId: 's1', seq: 1, time: new Date().toISOString(), type: 'query',
    identity: 'agent:demo', connection: 'demo', gateway: 'gw-1', data: { sql: 'select 1' },
  };
  it('verifies its own signature and survives a JSON round trip', () => {
    const signed = signEvent(base, key);
    expect(wireEventSchema.parse(JSON.parse(JSON.stringify(signed)))).toEqual(signed);
    expect(verifyEventSignature(JSON.parse(JSON.stringify(signed)), key)).toBe(true);
  });
  it.each([
    { name: 'unsigned', ev: () => ({ ...base }) as WireEvent },
    { name: 'signed with another key', ev: () => signEvent(base, randomBytes(32)) },
    { name: 'data altered after signing', ev: () => ({ ...signEvent(base, key), data: { sql: 'drop table x' } }) },
    { name: 'garbage signature', ev: () => ({ ...base, sig: 'zz' }) },
  ])('rejects $name', ({ ev }) => {
    expect(verifyEventSignature(ev(), key)).toBe(false);
  });
});
