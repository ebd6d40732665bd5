import { describe, expect, it } from 'vitest';
import { BufferBudget } from './buffer-budget.js';

describe('BufferBudget', () => {
  it.each([
    { name: 'fits: reserved at once', limit: 10, held: [4], ask: 6, now: true },
    { name: 'does not fit: queued', limit: 10, held: [4, 3], ask: 4, now: false },
    { name: 'exactly the limit: reserved', limit: 10, held: [9], ask: 1, now: true },
  ])('$name', ({ limit, held, ask, now }) => {
    const b = new BufferBudget(limit);
    for (const n of held) expect(b.reserve(n, () => undefined)).toBe(true);
    expect(b.reserve(ask, () => undefined)).toBe(now);
  });

  it('serves waiters in order as bytes come back; a small request does not overtake a large one', () => {
    const seen: number[] = [];
    const used: number[] = [];
    const b = new BufferBudget(10, (u) => used.push(u));
    expect(b.reserve(8, () => undefined)).toBe(true);
    expect(b.reserve(6, () => seen.push(6))).toBe(false);
    // 2 bytes are free, but the 6-byte request came first
    expect(b.reserve(1, () => seen.push(1))).toBe(false);
    b.release(8);
    expect(seen).toEqual([6, 1]);
    expect(b.inUse).toBe(7);
    expect(used.at(-1)).toBe(7);
  });

  it('a cancelled request is never granted and lets the next one through', () => {
    const seen: number[] = [];
    const b = new BufferBudget(10);
    b.reserve(10, () => undefined);
    const big = (): void => {
      seen.push(9);
    };
    expect(b.reserve(9, big)).toBe(false);
    expect(b.reserve(2, () => seen.push(2))).toBe(false);
    expect(b.cancel(big)).toBe(true);
    b.release(5);
    expect(seen).toEqual([2]);
    expect(b.cancel(big)).toBe(false);
  });

  it('never counts below zero', () => {
    const b = new BufferBudget(10);
    b.reserve(3, () => undefined);
    b.release(5);
    expect(b.inUse).toBe(0);
  });
});
