// Clients only ever see proper SQLSTATE ErrorResponses: when something inside the gateway fails, the
// client gets a generic XX000 and never the internal error text; every other session keeps going.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SessionHooks } from '../src/postgres/session-hooks.js';
import { startHarness, type Harness } from './support/harness.js';

const SECRET = 'internal-detail host=10.9.8.7 password=hunter2 at /srv/gateway/src/relay.ts:42';

let h: Harness;
beforeAll(async () => {
  // Hooks that blow up on one marker statement, as a bug in a policy plug-in would.
  h = await startHarness({
    hooks: (_session, defaults): SessionHooks => ({
      ...defaults,
      masksResults: defaults.masksResults,
      onQuery: (stmt) => {
        if (stmt.sql.includes('/*boom*/')) throw new Error(SECRET);
        return defaults.onQuery(stmt);
      },
      onParse: (stmt) => {
        if (stmt.sql.includes('/*boom-async*/')) return Promise.reject(new TypeError(SECRET));
        return defaults.onParse(stmt);
      },
    }),
  });
});
afterAll(async () => {
  await h?.stop();
});

async function client(): Promise<pg.Client> {
  const c = new pg.Client(h.clientConfig(await h.credential()));
  c.on('error', () => undefined); // the failing session is closed by the gateway
  await c.connect();
  return c;
}

describe('internal errors never leak to clients', () => {
  it.each([
    { name: 'a hook that throws (simple protocol)', run: (c: pg.Client) => c.query('select 1 /*boom*/') },
    { name: 'a hook whose promise rejects (extended protocol)', run: (c: pg.Client) => c.query({ text: 'select $1::int /*boom-async*/', values: [1] }) },
  ])('$name → XX000 with a generic message; other sessions go on', async ({ run }) => {
    const bystander = await client();
    const victim = await client();
    const err = (await run(victim).then(
      () => null,
      (e: pg.DatabaseError) => e,
    )) as pg.DatabaseError | null;
    expect(err).not.toBeNull();
    expect(err!.code).toBe('XX000');
    expect(err!.message).toMatch(/internal error in the gateway/);
    const everything = JSON.stringify({ ...err, message: err!.message });
    for (const leak of ['hunter2', '10.9.8.7', '/srv/gateway', 'relay.ts', 'TypeError']) expect(everything).not.toContain(leak);
    expect((await bystander.query('select 2 as n')).rows[0].n).toBe(2);
    await bystander.end();
    await victim.end().catch(() => undefined);
  });
});
