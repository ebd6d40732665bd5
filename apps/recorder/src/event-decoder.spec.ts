import { randomBytes, randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { encodeEventBatch, signEvent, signEventBatchBody, wireEventSchema, type UnsignedWireEvent } from '@portcullis/protocol';
import { decodeEvent, decodeMessage, validate } from './event-decoder.js';

const key = randomBytes(32);
const base = (): UnsignedWireEvent => ({
  id: randomUUID(), sessionId: 's-1', seq: 2, time: '2026-12-02T10:11:12.345Z', type: 'query', identity: 'alice', connection: 'demo', gateway: 'gw-1',
  data: { sql: 'select 1', protocol: 'simple' },
});

// Each row: a change to a valid event. The hand-written fast path must accept exactly what the
// zod schema accepts (it may defer to zod, never overrule it), and keep the same members.
const variants: Array<{ name: string; patch: Record<string, unknown> }> = [
  { name: 'as the gateway sends it', patch: {} },
  { name: 'control-plane event', patch: { sessionId: null, seq: 0, type: 'policy.changed', gateway: null, connection: null } },
  { name: 'with a sig', patch: { sig: 'ab'.repeat(32) } },
  { name: 'uppercase uuid', patch: { id: randomUUID().toUpperCase() } },
  { name: 'nil uuid', patch: { id: '00000000-0000-0000-0000-000000000000' } },
  { name: 'uuid without dashes', patch: { id: randomUUID().replace(/-/g, '') } },
  { name: 'uuid version 0', patch: { id: '0b6f3d1e-8c4a-0d7e-9f41-2b1c3d4e5f60' } },
  { name: 'uuid bad variant', patch: { id: '0b6f3d1e-8c4a-4d7e-cf41-2b1c3d4e5f60' } },
  { name: 'time with offset', patch: { time: '2026-12-02T10:11:12.345+01:00' } },
  { name: 'time without millis', patch: { time: '2026-12-02T10:11:12Z' } },
  { name: 'time with micros', patch: { time: '2026-12-02T10:11:12.345678Z' } },
  { name: 'time on Feb 30', patch: { time: '2026-02-30T10:11:12.345Z' } },
  { name: 'time on Dec 31', patch: { time: '2026-12-31T23:59:59.999Z' } },
  { name: 'time hour 24', patch: { time: '2026-12-02T24:00:00.000Z' } },
  { name: 'time as date only', patch: { time: '2026-12-02' } },
  { name: 'time a number', patch: { time: 1764670272345 } },
  { name: 'seq negative', patch: { seq: -1 } },
  { name: 'seq fractional', patch: { seq: 1.5 } },
  { name: 'seq unsafe', patch: { seq: 2 ** 60 } },
  { name: 'seq a string', patch: { seq: '2' } },
  { name: 'empty session id', patch: { sessionId: '' } },
  { name: 'session id of 200', patch: { sessionId: 'x'.repeat(200) } },
  { name: 'session id of 201', patch: { sessionId: 'x'.repeat(201) } },
  { name: 'unknown type', patch: { type: 'query.v2' } },
  { name: 'identity a number', patch: { identity: 7 } },
  { name: 'gateway missing', patch: { gateway: undefined } },
  { name: 'data an array', patch: { data: [1, 2] } },
  { name: 'data null', patch: { data: null } },
  { name: 'data a string', patch: { data: 'x' } },
  { name: 'sig a number', patch: { sig: 5 } },
  { name: 'an extra member', patch: { extra: true } },
  { name: 'a __proto__ key in data', patch: { data: JSON.parse('{"__proto__": {"x": 1}, "a": 1}') } },
];

describe('validate: fast path agrees with the wire schema', () => {
  it.each(variants)('$name', ({ patch }) => {
    const raw = JSON.parse(JSON.stringify({ ...base(), ...patch }));
    const z = wireEventSchema.safeParse(raw);
    const v = validate(raw);
    expect(v.ok).toBe(z.success);
    if (v.ok && z.success) expect(v.event).toEqual(z.data);
  });
});

describe('decodeMessage', () => {
  it('a single signed event, as the api publishes it', () => {
    const e = signEvent(base(), key);
    const d = decodeMessage(Buffer.from(JSON.stringify(e)), undefined, key);
    expect(d).toMatchObject({ ok: true, batch: false, events: [{ ok: true, event: { id: e.id } }] });
  });

  it('a batch: one HMAC for the body, each event judged on its own', () => {
    const good = base();
    const bad = { ...base(), seq: 0 }; // a session event at seq 0 is inconsistent
    const { body, sig } = encodeEventBatch([good, bad], key);
    const d = decodeMessage(Buffer.from(body), sig, key);
    if (!d.ok) throw new Error(d.detail);
    expect(d.batch).toBe(true);
    expect(d.events[0]).toMatchObject({ ok: true, event: good, canonicalData: '{"protocol":"simple","sql":"select 1"}' });
    expect(d.events[1]).toMatchObject({ ok: false, reason: 'inconsistent' });
  });

  it.each([
    { name: 'a wrong signature', body: () => encodeEventBatch([base()], key).body, sig: () => 'a'.repeat(64), reason: 'bad-signature' },
    { name: 'a signature by another key', body: () => encodeEventBatch([base()], key).body, sig: () => encodeEventBatch([base()], randomBytes(32)).sig, reason: 'bad-signature' },
    { name: 'a short signature', body: () => '[]', sig: () => 'abc', reason: 'bad-signature' },
    { name: 'signed garbage', body: () => '[{', sig: (b: string) => signEventBatchBody(b, key), reason: 'malformed-json' },
    { name: 'a signed object instead of an array', body: () => '{}', sig: (b: string) => signEventBatchBody(b, key), reason: 'schema' },
    { name: 'a signed empty array', body: () => '[]', sig: (b: string) => signEventBatchBody(b, key), reason: 'schema' },
  ])('refuses the whole batch on $name', ({ body, sig, reason }) => {
    const b = body();
    const d = decodeMessage(Buffer.from(b), sig(b), key);
    expect(d).toMatchObject({ ok: false, reason });
  });

  it('refuses NUL characters anywhere in an event, in a batch as in a single event', () => {
    const withNul = { ...base(), identity: 'a\u0000b' };
    const { body, sig } = encodeEventBatch([withNul], key);
    const d = decodeMessage(Buffer.from(body), sig, key);
    expect(d.ok && d.events[0]).toMatchObject({ ok: false, reason: 'unsupported-data' });
    expect(decodeEvent(Buffer.from(JSON.stringify(signEvent({ ...base(), data: { k: '\u0000' } }, key))), key)).toMatchObject({ ok: false, reason: 'unsupported-data' });
  });

  it.each([
    { type: 'result', data: { rows: [['4111 1111 1111 1111']], durationMs: 1 }, ok: false },
    { type: 'statement', data: { sql: 'select card from t', protocol: 'simple', action: 'allow', rule: null, reason: null, rows: [['4111 1111 1111 1111']], durationMs: 1 }, ok: false },
    { type: 'statement', data: { sql: 'select 1', protocol: 'simple', action: 'allow', rule: null, reason: null, tag: 'SELECT 1', rows: 1, durationMs: 1 }, ok: true },
  ])('a $type event carries its rows as a count, never row data (ok: $ok)', ({ type, data, ok }) => {
    const { body, sig } = encodeEventBatch([{ ...base(), type, data }], key);
    const d = decodeMessage(Buffer.from(body), sig, key);
    expect(d.ok && d.events[0]).toMatchObject(ok ? { ok: true } : { ok: false, reason: 'result-not-counts' });
  });
});
