import { describe, expect, it } from 'vitest';
import type session from 'express-session';
import { LoginStateStore } from './login-state.store.js';

const data = (extra: Record<string, unknown> = {}) => ({ cookie: { originalMaxAge: 60_000 }, ...extra }) as unknown as session.SessionData;
const get = (store: LoginStateStore, sid: string) => new Promise((resolve) => store.get(sid, (_e, d) => resolve(d)));

describe('LoginStateStore', () => {
  it('stores, returns a copy, and destroys', async () => {
    const store = new LoginStateStore(60_000);
    store.set('a', data({ x: 1 }));
    expect(await get(store, 'a')).toMatchObject({ x: 1 });
    store.destroy('a');
    expect(await get(store, 'a')).toBeNull();
  });

  it('expires entries after the ttl', async () => {
    const store = new LoginStateStore(20);
    store.set('a', data());
    await new Promise((r) => setTimeout(r, 40));
    expect(await get(store, 'a')).toBeNull();
  });

  it('caps the number of pending logins, evicting the oldest', async () => {
    const store = new LoginStateStore(60_000, 3);
    for (const sid of ['a', 'b', 'c', 'd']) store.set(sid, data());
    expect(store.size).toBe(3);
    expect(await get(store, 'a')).toBeNull();
    expect(await get(store, 'd')).not.toBeNull();
  });
});
