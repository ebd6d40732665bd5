/**
 * SCRAM-SHA-256, md5 and cleartext password authentication against a real server: a private
 * cluster (test/support/pg-cluster.ts) with one role per method, reached with a raw socket and
 * nothing but this codec.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPgCluster, type PgCluster } from '../../../../test/support/pg-cluster.js';
import { PgWireClient } from '../../../../test/support/pg-wire-client.js';

const suffix = randomBytes(3).toString('hex');
const SCRAM_USER = `scram_${suffix}`;
const SCRAM_UNICODE_USER = `scram_u_${suffix}`;
const MD5_USER = `md5_${suffix}`;
const CLEAR_USER = `clear_${suffix}`;
const SCRAM_PASSWORD = `pw-${randomBytes(6).toString('hex')}'"\\,=`;
// Needs SASLprep to agree with the server: NFKC folds the ligature and the Roman numeral, the
// no-break space becomes a space.
const UNICODE_PASSWORD = 'ﬁx\u00a0Ⅸ-pässwörd';
const MD5_PASSWORD = `md5-${randomBytes(6).toString('hex')}`;
const CLEAR_PASSWORD = `clear-${randomBytes(6).toString('hex')}`;

let pg: PgCluster;
const clients: PgWireClient[] = [];

beforeAll(async () => {
  pg = await startPgCluster({
    hba: [
      `host all ${SCRAM_USER},${SCRAM_UNICODE_USER} 127.0.0.1/32 scram-sha-256`,
      `host all ${MD5_USER} 127.0.0.1/32 md5`,
      `host all ${CLEAR_USER} 127.0.0.1/32 password`,
    ],
    roles: [
      { name: SCRAM_USER, password: SCRAM_PASSWORD },
      { name: SCRAM_UNICODE_USER, password: UNICODE_PASSWORD },
      { name: MD5_USER, password: MD5_PASSWORD, passwordEncryption: 'md5' },
      { name: CLEAR_USER, password: CLEAR_PASSWORD },
    ],
    databases: [{ name: 'app', owner: SCRAM_USER }],
  });
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await pg?.stop();
});

async function client(): Promise<PgWireClient> {
  const c = await PgWireClient.connect({ host: pg.host, port: pg.port });
  clients.push(c);
  return c;
}

async function loginError(user: string, password: string): Promise<{ code: string }> {
  const c = await client();
  const err = await c.startup({ user, database: 'postgres', password }).then(
    () => null,
    (e: unknown) => e as { notice?: { code: string } },
  );
  expect(err?.notice).toBeDefined();
  return err?.notice as { code: string };
}

describe('password authentication against a private cluster', () => {
  it('the cluster stores each password as asked (SCRAM verifier or md5 hash)', async () => {
    const rows = await pg.psql(`select rolname || '|' || left(rolpassword, 14) from pg_authid where rolname in ('${SCRAM_USER}', '${MD5_USER}') order by rolname`);
    const byRole = Object.fromEntries(rows.split('\n').map((line) => line.split('|')));
    expect(byRole[SCRAM_USER]).toBe('SCRAM-SHA-256$');
    expect(byRole[MD5_USER]).toMatch(/^md5[0-9a-f]{11}$/);
  });

  it('SCRAM-SHA-256: SASL → SASLContinue → SASLFinal (server signature verified) → Ok → ReadyForQuery → select 1', async () => {
    const c = await client();
    const msgs = await c.startup({ user: SCRAM_USER, database: 'app', password: SCRAM_PASSWORD });
    const auth = msgs.filter((m) => m.kind === 'Authentication').map((m) => (m.kind === 'Authentication' ? m.auth : ''));
    expect(auth).toEqual(['SASL', 'SASLContinue', 'SASLFinal', 'Ok']);
    expect(msgs[0]).toMatchObject({ mechanisms: expect.arrayContaining(['SCRAM-SHA-256']) });
    expect(c.scram?.done).toBe(true);
    expect(msgs.at(-1)).toMatchObject({ kind: 'ReadyForQuery', status: 'I' });
    const r = await c.query('select 1, current_user');
    expect(r.rows.map((row) => row.map((v) => v?.toString()))).toEqual([['1', SCRAM_USER]]);
  });

  it('SCRAM-SHA-256 with a non-ASCII password (SASLprep agrees with the server)', async () => {
    const c = await client();
    await c.startup({ user: SCRAM_UNICODE_USER, database: 'postgres', password: UNICODE_PASSWORD });
    expect(c.scram?.done).toBe(true);
    expect((await c.query('select 1')).rows[0][0]?.toString()).toBe('1');
  });

  it('md5: AuthenticationMD5Password with salt → md5Password → Ok → select 1', async () => {
    const c = await client();
    const msgs = await c.startup({ user: MD5_USER, database: 'postgres', password: MD5_PASSWORD });
    const md5 = msgs.find((m) => m.kind === 'Authentication' && m.auth === 'MD5Password');
    expect(md5).toMatchObject({ salt: expect.any(Buffer) });
    expect(msgs.at(-1)).toMatchObject({ kind: 'ReadyForQuery' });
    expect((await c.query('select 1')).rows[0][0]?.toString()).toBe('1');
  });

  it('cleartext password method', async () => {
    const c = await client();
    const msgs = await c.startup({ user: CLEAR_USER, database: 'postgres', password: CLEAR_PASSWORD });
    expect(msgs.some((m) => m.kind === 'Authentication' && m.auth === 'CleartextPassword')).toBe(true);
    expect((await c.query('select 2')).rows[0][0]?.toString()).toBe('2');
  });

  it.each([
    { method: 'scram', user: () => SCRAM_USER },
    { method: 'md5', user: () => MD5_USER },
    { method: 'cleartext', user: () => CLEAR_USER },
  ])('a wrong password ($method) is a FATAL 28P01 ErrorResponse', async ({ user }) => {
    expect(await loginError(user(), 'not-the-password')).toMatchObject({ code: '28P01' });
  });
});
