import { describe, expect, it } from 'vitest';
import { signEvent, verifyEventSignature, wireEventSchema } from '@portcullis/protocol';
import { SessionRecorder } from './event-publisher.js';
import { createLogger } from '../logger.js';

const key = Buffer.alloc(32, 7);
const who = { sessionId: 'sess-"1"', identity: 'user:ünï\\code', connection: 'db\nx', gateway: 'gw-1' };

describe('SessionRecorder.serialise', () => {
  it.each([
    { name: 'query with quotes and unicode', type: 'query' as const, data: { sql: "select 'é\"\\' \u2028", protocol: 'simple' } },
    { name: 'result with nested masking and undefined members', type: 'result' as const, data: { tag: 'SELECT 1', rows: 1, durationMs: 0, skip: undefined, masking: { values: 2, columns: ['b', 'a'] } } },
    { name: 'empty data', type: 'session.end' as const, data: {} },
  ])('$name: the body is the signed wire event protocol signEvent would make', ({ type, data }) => {
    const r = new SessionRecorder(null, who, key, 'best-effort', createLogger('silent', {}), () => undefined);
    const id = '0b6f3d1e-8c4a-4d7e-9f41-2b1c3d4e5f60';
    const time = Date.UTC(2026, 10, 27, 1, 2, 3, 456);
    const { body, sig } = r.serialise(id, { seq: 3, time, type, data });
    const parsed = JSON.parse(body);
    expect(wireEventSchema.safeParse(parsed).success).toBe(true);
    expect(verifyEventSignature(parsed, key)).toBe(true);
    const expected = signEvent(
      { id, sessionId: who.sessionId, seq: 3, time: new Date(time).toISOString(), type, identity: who.identity, connection: who.connection, gateway: who.gateway, data },
      key,
    );
    expect(sig).toBe(expected.sig);
    expect(parsed).toEqual(JSON.parse(JSON.stringify(expected)));
  });

  it('without a publisher, required recording fails once and record() rejects', async () => {
    const failures: Error[] = [];
    const r = new SessionRecorder(null, who, key, 'required', createLogger('silent', {}), (e) => failures.push(e));
    await expect(r.record('session.start', {})).rejects.toThrow(/event stream unavailable/);
    r.emit('query', { sql: 'select 1' });
    await r.flush();
    expect(failures).toHaveLength(1);
  });
});
