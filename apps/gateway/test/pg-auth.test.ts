import { execFile } from 'node:child_process';
import { connect as netConnect, type Socket } from 'node:net';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackendMessageType as B, decodeErrorResponse, encodePassword, encodeStartupMessage, PgFramer } from '@portcullis/protocol';
import { startHarness, waitFor, type Harness } from './support/harness.js';
import { testKeyPair } from '../../../test/support/test-keys.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ setupSql: 'CREATE TABLE t (x int); INSERT INTO t VALUES (1);' });
});
afterAll(async () => {
  await h?.stop();
});

/** Connections the target has from our scratch database (excluding the harness' own pool). */
/**
 * Probe connections the target accepted since `since` (the target's clock): counting those open now
 * instead was thrown off by an earlier test's session still closing (CI under load: 1 before, 0 after).
 */
async function targetConnectionsSince(since: string): Promise<number> {
  const r = await h.targetQuery(`select count(*)::int n from pg_stat_activity where datname = $1 and application_name = 'gw-auth-probe' and backend_start >= $2`, [h.dbName, since]);
  return r.rows[0].n;
}

async function targetNow(): Promise<string> {
  return (await h.targetQuery(`select clock_timestamp()::text t`)).rows[0].t;
}

async function connectWith(password: string, database = h.connectionName): Promise<pg.Client> {
  const c = new pg.Client({ ...h.clientConfig(password, database), application_name: 'gw-auth-probe' });
  await c.connect();
  return c;
}

async function expectRefused(password: string, code: string, msg: RegExp, database?: string): Promise<void> {
  const err = await connectWith(password, database).then(
    (c) => {
      void c.end();
      return null;
    },
    (e: pg.DatabaseError) => e,
  );
  expect(err, 'connection should be refused').not.toBeNull();
  expect(err!.code).toBe(code);
  expect(err!.message).toMatch(msg);
}

/** A raw socket: send bytes, collect everything until the gateway closes (or timeout). */
function rawExchange(bytes: Buffer[], timeoutMs = 3000): Promise<{ data: Buffer; closed: boolean }> {
  return new Promise((resolve) => {
    const s: Socket = netConnect({ host: '127.0.0.1', port: h.gateway.pgPort });
    const chunks: Buffer[] = [];
    const t = setTimeout(() => {
      s.destroy();
      resolve({ data: Buffer.concat(chunks), closed: false });
    }, timeoutMs);
    s.on('data', (d) => chunks.push(d));
    s.on('close', () => {
      clearTimeout(t);
      resolve({ data: Buffer.concat(chunks), closed: true });
    });
    s.on('error', () => undefined);
    s.on('connect', () => {
      for (const b of bytes) s.write(b);
    });
  });
}

function errorsIn(data: Buffer): { code: string; message: string; severity: string }[] {
  const f = new PgFramer({ startup: false, from: 'server' });
  f.push(data);
  const out: { code: string; message: string; severity: string }[] = [];
  for (let m = f.next(); m; m = f.next()) if (m.type === B.ErrorResponse) out.push(decodeErrorResponse(m.payload));
  return out;
}

describe('authentication', () => {
  it('accepts a valid credential', async () => {
    const c = await connectWith(await h.credential());
    expect((await c.query('select x from t')).rows).toEqual([{ x: 1 }]);
    await c.end();
  });

  it('wrong token → FATAL 28P01 and the target saw no connection', async () => {
    const since = await targetNow();
    await expectRefused('not-a-token', '28P01', /password authentication failed/);
    // signed by another key
    const { SignJWT } = await import('jose');
    const other = testKeyPair('EdDSA');
    const forged = await new SignJWT({ typ: 'gateway', cn: h.connectionName, groups: ['engineers'], pid: 'x', kind: 'person' })
      .setProtectedHeader({ alg: 'EdDSA', kid: h.publicJwk.kid })
      .setAudience('portcullis-gateway').setIssuer(h.issuer).setSubject('user:mallory').setJti('j1').setExpirationTime('5m')
      .sign(other.privateKey);
    await expectRefused(forged, '28P01', /invalid gateway credential/);
    expect(await targetConnectionsSince(since)).toBe(0);
  });

  it.each([
    ['trailing ==', (t: string) => `${t}==`],
    ['a trailing space', (t: string) => `${t} `],
    ['a leading space', (t: string) => ` ${t}`],
    ['padding inside', (t: string) => t.replace('.', '=.')],
    // the signature's last character also carries 4 unused bits: another spelling of the same bytes
    ['non-canonical trailing bits', (t: string) => {
      const A = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
      return t.slice(0, -1) + A[A.indexOf(t.at(-1)!) | 1];
    }],
  ])('a valid credential spelled another way (%s) → 28P01', async (_name, respell) => {
    const token = await h.credential();
    const other = respell(token);
    expect(other).not.toBe(token);
    await expectRefused(other, '28P01', /invalid gateway credential/);
  });

  it('a token for another connection, a wrong audience, an expired one, outside the groups → refused', async () => {
    await expectRefused(await h.credential({ cn: 'other' }), '28P01', /another connection/);
    await expectRefused(await h.credential({ aud: 'portcullis-api' }), '28P01', /invalid gateway credential/);
    await expectRefused(await h.credential({ exp: Math.floor(Date.now() / 1000) - 60 }), '28P01', /expired/);
    await expectRefused(await h.credential({ groups: ['visitors'] }), '28P01', /not allowed/);
    // a grant (access request) stands in for group membership
    const c = await connectWith(await h.credential({ groups: [], grant: 'ar-1' }));
    await c.end();
  });

  it('a client encoding whose multibyte characters can hide quotes (SJIS, BIG5, GB18030) → 22023; UTF8 is fine', async () => {
    // psql sends PGCLIENTENCODING as the client_encoding startup parameter (the pg driver sends none).
    const psql = async (enc: string) =>
      promisify(execFile)('psql', [h.connectionUri(await h.credential()), '-XAtc', 'show client_encoding'], { env: { ...process.env, PGCLIENTENCODING: enc } }).then(
        (r) => ({ ok: true, text: r.stdout }),
        (e: { stderr: string }) => ({ ok: false, text: e.stderr }),
      );
    for (const enc of ['SJIS', 'big5', 'GB18030']) {
      const r = await psql(enc);
      expect(r.ok, enc).toBe(false);
      expect(r.text).toMatch(/client_encoding .* is not allowed through the gateway: use UTF8/);
    }
    expect(await psql('UTF8')).toEqual({ ok: true, text: 'UTF8\n' });
  });

  it('an unknown connection → 3D000', async () => {
    await expectRefused(await h.credential({ cn: 'nowhere' }), '3D000', /does not exist/, 'nowhere');
  });

  it('revocation in a new snapshot applies without restart: the live session is ended (57P01), new ones are refused', async () => {
    const token = await h.credential({ jti: 'revoke-me' });
    const live = await connectWith(token);
    const errors: pg.DatabaseError[] = [];
    live.on('error', (e) => errors.push(e as pg.DatabaseError));
    await h.putSnapshot({ revokedTokenIds: ['revoke-me'] });
    await expectRefused(token, '28P01', /revoked/);
    await waitFor(() => errors.length > 0, 5000);
    expect(errors[0]?.code).toBe('57P01');
    await expect(live.query('select 1 as n')).rejects.toThrow();
    await live.end().catch(() => {});
    await h.putSnapshot({ revokedTokenIds: [] });
  });

  it('random bytes, absurd lengths, truncated frames, a bad protocol version → error or close; other sessions keep working', async () => {
    const keeper = await connectWith(await h.credential());
    const garbage = await rawExchange([Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')]);
    expect(garbage.closed).toBe(true);
    const absurd = Buffer.alloc(8);
    absurd.writeInt32BE(0x7fffffff, 0);
    absurd.writeInt32BE(196608, 4);
    const r1 = await rawExchange([absurd]);
    // A length no startup packet can have is closed without a reply, as Postgres does (it only logs
    // "invalid length of startup packet").
    expect(r1.closed).toBe(true);
    expect(r1.data.length).toBe(0);
    const v2 = Buffer.alloc(8);
    v2.writeInt32BE(8, 0);
    v2.writeInt32BE(2 << 16, 4);
    const r2 = await rawExchange([v2]);
    expect(r2.closed).toBe(true);
    expect(errorsIn(r2.data)[0]?.code).toBe('0A000');
    // truncated startup then close
    const startup = encodeStartupMessage({ user: 'x', database: h.connectionName });
    const r3 = await rawExchange([startup.subarray(0, 10)], 500);
    expect(r3.data.length).toBe(0);
    // after authentication: an absurd message length from the client
    const token = await h.credential();
    const bad = Buffer.from([0x51, 0x7f, 0xff, 0xff, 0xff]);
    const r4 = await rawExchange([startup, encodePassword(token), bad]);
    expect(r4.closed).toBe(true);
    const errs = errorsIn(r4.data.subarray(r4.data.indexOf(Buffer.from([0x5a, 0, 0, 0, 5]))));
    expect(errs.at(-1)?.code).toBe('08P01');
    // an unknown message type after authentication
    const r5 = await rawExchange([startup, encodePassword(token), Buffer.from([0x01, 0, 0, 0, 4])]);
    expect(r5.closed).toBe(true);
    // random bytes in bulk
    const { randomBytes } = await import('node:crypto');
    for (let i = 0; i < 5; i++) expect((await rawExchange([randomBytes(300)])).closed).toBe(true);
    expect((await keeper.query('select x from t')).rows).toEqual([{ x: 1 }]);
    await keeper.end();
  });
});

describe('no config', () => {
  it('refuses sessions with a clear message until a snapshot arrives, then serves', async () => {
    const h2 = await startHarness({ initialSnapshot: false });
    try {
      const c = new pg.Client(h2.clientConfig(await h2.credential()));
      const err = await c.connect().then(() => null, (e: pg.DatabaseError) => e);
      expect(err?.code).toBe('57P03');
      expect(err?.message).toMatch(/has not received its configuration/);
      const ready = await fetch(`http://127.0.0.1:${h2.gateway.httpPort}/readyz`);
      expect(ready.status).toBe(503);
      await h2.putSnapshot();
      await waitFor(() => h2.gateway.config.current !== null);
      expect((await fetch(`http://127.0.0.1:${h2.gateway.httpPort}/readyz`)).status).toBe(200);
      const ok = new pg.Client(h2.clientConfig(await h2.credential()));
      await ok.connect();
      await ok.end();
      const metrics = await (await fetch(`http://127.0.0.1:${h2.gateway.httpPort}/metrics`)).text();
      expect(metrics).toMatch(/portcullis_gateway_sessions_total\{outcome="no_config",protocol="postgres"\} 1/);
    } finally {
      await h2.stop();
    }
  });
});
