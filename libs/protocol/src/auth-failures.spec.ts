import { describe, expect, it } from 'vitest';
import { AuthFailureAggregator, type AuthFailure } from './auth-failures.js';

const f = (o: Partial<AuthFailure> = {}): AuthFailure => ({ surface: 'gateway', source: '10.0.0.1', identity: 'user:carol', reason: 'invalid', ...o });
const T0 = Date.parse('2026-12-07T10:00:00.000Z');

describe('AuthFailureAggregator', () => {
  it('reports the first failure of a key at once and the rest of its window as one summary with their count', () => {
    const a = new AuthFailureAggregator({ windowMs: 60_000 });
    const first = a.record(f(), T0);
    expect(first).toEqual([expect.objectContaining({ count: 1, summary: false, source: '10.0.0.1', identity: 'user:carol', reason: 'invalid', action: 'authenticate' })]);
    for (let i = 1; i <= 499; i++) expect(a.record(f(), T0 + i * 100)).toEqual([]);
    expect(a.drain(T0 + 59_999)).toEqual([]); // the window is still open
    const [summary, ...rest] = a.drain(T0 + 60_000);
    expect(rest).toEqual([]);
    expect(summary).toMatchObject({ count: 499, summary: true, firstAt: new Date(T0).toISOString(), lastAt: new Date(T0 + 49_900).toISOString() });
    // a new window starts afresh
    expect(a.record(f(), T0 + 61_000)).toEqual([expect.objectContaining({ count: 1, summary: false })]);
  });

  it.each([
    ['another source', f({ source: '10.0.0.2' })],
    ['another claimed identity', f({ identity: 'user:mallory' })],
    ['another reason', f({ reason: 'expired' })],
    ['another surface', f({ surface: 'api' })],
  ])('%s is its own key', (_name, other) => {
    const a = new AuthFailureAggregator();
    a.record(f(), T0);
    expect(a.record(other, T0 + 1)).toHaveLength(1);
    expect(a.record(f(), T0 + 2)).toEqual([]);
  });

  it('a failure after a closed window brings that window\'s summary with it', () => {
    const a = new AuthFailureAggregator({ windowMs: 1000 });
    a.record(f(), T0);
    a.record(f(), T0 + 10);
    const out = a.record(f(), T0 + 5000);
    expect(out.map((d) => [d.summary, d.count])).toEqual([[true, 1], [false, 1]]);
  });

  it('a flood of made-up identities is bounded: past maxKeys they fold into one key per reason', () => {
    const a = new AuthFailureAggregator({ maxKeys: 10 });
    let now: ReturnType<AuthFailureAggregator['record']> = [];
    const reported = [];
    for (let i = 0; i < 10_000; i++) reported.push(...(now = a.record(f({ identity: `user:${i}` }), T0 + i)));
    expect(now).toEqual([]);
    expect(reported).toHaveLength(11);
    expect(reported[10]).toMatchObject({ source: '*', identity: '*', reason: 'invalid' });
    const summaries = a.drain(0, true);
    expect(summaries).toEqual([expect.objectContaining({ identity: '*', count: 10_000 - 11 })]);
  });

  it('caps what the caller controls', () => {
    const [d] = new AuthFailureAggregator().record(f({ identity: 'x'.repeat(10_000), detail: 'y'.repeat(10_000) }), T0);
    expect(d!.identity!.length).toBeLessThanOrEqual(201);
    expect(d!.detail!.length).toBeLessThanOrEqual(201);
  });
});
