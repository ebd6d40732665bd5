import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSessionEvents, startHarness, waitFor, type Harness } from './support/harness.js';

/**
 * A config pushed to the pool reaches the sessions already open, not only the next logins: a new
 * guardrail applies from a live session's next statement, and a revoked credential, a removed
 * connection or changed masking rules end the session with 57P01 — other sessions go on.
 */

const guardrailsV1 = [{ name: 'no-drop', action: 'block', match: { statements: ['DROP'] } }];
const guardrailsV2 = [...guardrailsV1, { name: 'no-truncate', action: 'block', match: { statements: ['TRUNCATE'] }, reason: 'Truncation is off limits since this morning.' }];
const maskEmails = [{ name: 'emails', columns: ['email'], strategy: 'partial' }];
const doc = (guardrails: unknown[], masking: unknown[]) => ({ name: 'default', guardrails, dynamicSql: 'block', masking });

let h: Harness;
let version = 1;
async function putPolicy(guardrails: unknown[], masking: unknown[]): Promise<number> {
  version++;
  await h.putSnapshot({ policies: [{ name: 'default', version, document: doc(guardrails, masking) }] });
  return version;
}

beforeAll(async () => {
  h = await startHarness({
    connection: { policy: 'default' },
    policies: [{ name: 'default', version: 1, document: doc(guardrailsV1, maskEmails) }],
    setupSql: `CREATE TABLE people (id int primary key, email text); INSERT INTO people VALUES (1, 'ada@example.com');
      CREATE TABLE scratch (x int); INSERT INTO scratch VALUES (1);`,
  });
  // the same target without a policy: plaintext and unmasked, so its sessions run in the native fast lane
  const target = h.snapshotInput.connections[0]!;
  await h.putSnapshot({ connections: [target, { ...target, name: 'plain', policy: null }] });
});
afterAll(async () => {
  await h?.stop();
});

/** A connected client whose asynchronous errors (a FATAL while idle) are kept, not thrown. */
async function connect(token: string, db?: string): Promise<{ c: pg.Client; errors: pg.DatabaseError[] }> {
  const c = new pg.Client(h.clientConfig(token, db));
  const errors: pg.DatabaseError[] = [];
  c.on('error', (e) => errors.push(e as pg.DatabaseError));
  await c.connect();
  return { c, errors };
}

/** The gateway's id of the client's session: found by a marker statement in the session events. */
async function sessionIdOf(c: pg.Client): Promise<string> {
  const marker = `marker-${randomUUID()}`;
  await c.query(`SELECT '${marker}' AS m`);
  let found: Record<string, unknown> | undefined;
  await waitFor(async () => {
    found = (await readSessionEvents(h, undefined, 1)).find((e) => (e.type === 'query' || e.type === 'statement') && String((e.data as { sql?: string }).sql).includes(marker));
    return found !== undefined;
  }, 5000, 100);
  return String(found!.sessionId);
}

/** session.end events with this reason, once there are `n` of them. */
async function endsWithReason(reason: string, n: number): Promise<Record<string, unknown>[]> {
  let ends: Record<string, unknown>[] = [];
  await waitFor(async () => {
    ends = (await readSessionEvents(h, undefined, 1)).filter((e) => e.type === 'session.end' && (e.data as { reason?: string }).reason === reason);
    return ends.length >= n;
  }, 5000, 100);
  return ends;
}

describe('live sessions follow config changes', () => {
  it('a new guardrail applies to an open session from its next statement; masking goes on; the decision names the new version', async () => {
    const { c, errors } = await connect(await h.credential());
    try {
      await c.query('TRUNCATE scratch'); // allowed under version 1
      const sessionId = await sessionIdOf(c);
      const v = await putPolicy(guardrailsV2, maskEmails);
      const err = await c.query('TRUNCATE scratch').then(() => null, (e: pg.DatabaseError) => e);
      expect(err?.code).toBe('42501');
      expect(err?.message).toMatch(/no-truncate.*off limits since this morning/);
      // the session is still there, still masked
      expect((await c.query('SELECT email FROM people')).rows[0].email).toBe('a**@example.com');
      expect(errors).toEqual([]);
      let decisions: Record<string, unknown>[] = [];
      await waitFor(async () => {
        // a simple-protocol statement's decision travels in its `statement` event
        decisions = (await readSessionEvents(h, sessionId, 1)).filter((e) => e.type === 'decision' || e.type === 'statement').map((e) => e.data as Record<string, unknown>);
        return decisions.some((d) => d.rule === 'no-truncate');
      }, 5000, 100);
      expect(decisions[0]).not.toHaveProperty('policyVersion');
      expect(decisions.find((d) => d.rule === 'no-truncate')?.policyVersion).toBe(v);
    } finally {
      await c.end().catch(() => {});
    }
  });

  it('a session holding a named prepared statement is ended on a guardrail change: its executions would not be decided again', async () => {
    const prepared = await connect(await h.credential());
    const unnamed = await connect(await h.credential());
    try {
      // pg sends a named Parse once and only Bind/Execute afterwards
      expect((await prepared.c.query({ name: 'count-scratch', text: 'SELECT count(*)::int AS n FROM scratch' })).rows[0].n).toBeGreaterThanOrEqual(0);
      expect((await unnamed.c.query('SELECT count(*)::int AS n FROM scratch WHERE x > $1', [0])).rows[0].n).toBeGreaterThanOrEqual(0);
      await putPolicy([...guardrailsV2, { name: 'no-delete', action: 'block', match: { statements: ['DELETE'] } }], maskEmails);
      await waitFor(() => prepared.errors.length > 0, 5000);
      expect(prepared.errors[0]!.code).toBe('57P01');
      expect(prepared.errors[0]!.message).toMatch(/holds prepared statements the previous version allowed/);
      // the session with unnamed statements only adopted the new version
      await expect(unnamed.c.query('DELETE FROM scratch WHERE x = $1', [1])).rejects.toThrow(/no-delete/);
      expect(unnamed.errors).toEqual([]);
    } finally {
      await prepared.c.end().catch(() => {});
      await unnamed.c.end().catch(() => {});
    }
  });

  it('revoking a credential ends the sessions opened with it (57P01), in the JS relay and the fast lane; others go on', async () => {
    const jti = `live-${randomUUID()}`;
    const revoked = await connect(await h.credential({ jti }));
    const revokedLane = await connect(await h.credential({ jti, cn: 'plain' }), 'plain');
    const other = await connect(await h.credential());
    const otherLane = await connect(await h.credential({ cn: 'plain' }), 'plain');
    try {
      await revoked.c.query('SELECT 1');
      await revokedLane.c.query('SELECT 1');
      await h.putSnapshot({ revokedTokenIds: [jti] });
      await waitFor(() => revoked.errors.length > 0 && revokedLane.errors.length > 0, 5000);
      for (const e of [revoked.errors[0]!, revokedLane.errors[0]!]) {
        expect(e.code).toBe('57P01');
        expect(e.message).toMatch(/gateway credential of this session was revoked/);
      }
      await expect(revoked.c.query('SELECT 1')).rejects.toThrow();
      expect((await other.c.query('SELECT 2 AS n')).rows[0].n).toBe(2);
      expect((await otherLane.c.query('SELECT 3 AS n')).rows[0].n).toBe(3);
      expect(other.errors).toEqual([]);
      // and the credential no longer opens a session
      const again = await connect(await h.credential({ jti })).then(() => null, (e: pg.DatabaseError) => e);
      expect(again?.code).toBe('28P01');
      expect((await endsWithReason('credential_revoked', 2)).length).toBe(2);
    } finally {
      for (const x of [revoked, revokedLane, other, otherLane]) await x.c.end().catch(() => {});
    }
  });

  it('changed masking rules end open sessions of the policy; the next session gets the new rules', async () => {
    const { c, errors } = await connect(await h.credential());
    try {
      expect((await c.query('SELECT email FROM people')).rows[0].email).toBe('a**@example.com');
      await putPolicy(guardrailsV2, [{ name: 'emails', columns: ['email'], strategy: 'redact' }]);
      await waitFor(() => errors.length > 0, 5000);
      expect(errors[0]!.code).toBe('57P01');
      expect(errors[0]!.message).toMatch(/policy "default" changed its masking, approval, result recording or row-count rules/);
      // this one and the prepared-statement session's
      expect((await endsWithReason('policy_changed', 2)).length).toBe(2);
      const next = await connect(await h.credential());
      try {
        expect((await next.c.query('SELECT email FROM people')).rows[0].email).toBe('[REDACTED]');
      } finally {
        await next.c.end();
      }
    } finally {
      await c.end().catch(() => {});
    }
  });

  it('removing a connection ends its open sessions; sessions of other connections go on', async () => {
    const lane = await connect(await h.credential({ cn: 'plain' }), 'plain');
    const guarded = await connect(await h.credential());
    try {
      await lane.c.query('SELECT 1');
      await h.putSnapshot({ connections: [h.snapshotInput.connections.find((c) => c.name !== 'plain')!] });
      await waitFor(() => lane.errors.length > 0, 5000);
      expect(lane.errors[0]!.code).toBe('57P01');
      expect(lane.errors[0]!.message).toMatch(/connection "plain" was removed/);
      expect((await guarded.c.query('SELECT 1 AS n')).rows[0].n).toBe(1);
      expect(guarded.errors).toEqual([]);
      expect((await endsWithReason('connection_removed', 1)).length).toBe(1);
    } finally {
      await lane.c.end().catch(() => {});
      await guarded.c.end().catch(() => {});
    }
  });
});

describe('the access rule is asked again for live sessions', () => {
  it('removing a group from allowedGroups ends that group\'s open sessions (57P01, access_removed); other groups go on; new logins are refused', async () => {
    // a plaintext connection without a policy (the native fast lane) that two groups may use
    const others = h.snapshotInput.connections.filter((c) => c.name !== 'lane');
    const lane = { ...others.find((c) => c.name === 'target')!, name: 'lane', policy: null, allowedGroups: ['engineers', 'dba'] };
    await h.putSnapshot({ connections: [...others, lane] });
    const engineer = await connect(await h.credential({ cn: 'lane' }), 'lane');
    const dba = await connect(await h.credential({ cn: 'lane', groups: ['dba'] }), 'lane');
    const guarded = await connect(await h.credential());
    try {
      await engineer.c.query('SELECT 1');
      await h.putSnapshot({ connections: [...others, { ...lane, allowedGroups: ['dba'] }] });
      await waitFor(() => engineer.errors.length > 0, 5000);
      expect(engineer.errors[0]!.code).toBe('57P01');
      expect(engineer.errors[0]!.message).toMatch(/groups are no longer allowed to use connection "lane"/);
      await expect(engineer.c.query('SELECT 1')).rejects.toThrow();
      expect((await dba.c.query('SELECT 2 AS n')).rows[0].n).toBe(2);
      expect((await guarded.c.query('SELECT 3 AS n')).rows[0].n).toBe(3);
      expect(dba.errors).toEqual([]);
      const again = await connect(await h.credential({ cn: 'lane' }), 'lane').then(() => null, (e: pg.DatabaseError) => e);
      expect(again?.code).toBe('28P01');
      expect((await endsWithReason('access_removed', 1)).length).toBeGreaterThanOrEqual(1);
    } finally {
      for (const x of [engineer, dba, guarded]) await x.c.end().catch(() => {});
      await h.putSnapshot({ connections: others });
    }
  });

  it('a session resting on an access grant ends when the grant ends, with no config change', async () => {
    const gexp = Math.floor(Date.now() / 1000) + 2;
    const granted = await connect(await h.credential({ groups: ['sales'], grant: `ar-${randomUUID()}`, gexp, expiresIn: '5m' }));
    try {
      expect((await granted.c.query('SELECT 1 AS n')).rows[0].n).toBe(1);
      await waitFor(() => granted.errors.length > 0, 6000);
      expect(Date.now()).toBeGreaterThanOrEqual(gexp * 1000);
      expect(granted.errors[0]!.code).toBe('57P01');
      expect(granted.errors[0]!.message).toMatch(/access grant for connection "target" has expired/);
      const again = await connect(await h.credential({ groups: ['sales'], grant: `ar-${randomUUID()}`, gexp: Math.floor(Date.now() / 1000) - 1 })).then(() => null, (e: pg.DatabaseError) => e);
      expect(again?.code).toBe('28P01');
    } finally {
      await granted.c.end().catch(() => {});
    }
  });
});

describe('credential expiry', () => {
  let hx: Harness;
  beforeAll(async () => {
    hx = await startHarness({ env: { GATEWAY_END_SESSIONS_AT_EXPIRY: 'true' } });
  });
  afterAll(async () => {
    await hx?.stop();
  });

  it('by default a session outlives its credential; with GATEWAY_END_SESSIONS_AT_EXPIRY it ends when the credential expires', async () => {
    const outlivesToken = await h.credential({ expiresIn: '1s' });
    const outlivesExp = (JSON.parse(Buffer.from(outlivesToken.split('.')[1]!, 'base64url').toString()) as { exp: number }).exp * 1000;
    const outlives = await connect(outlivesToken);
    const ends = new pg.Client(hx.clientConfig(await hx.credential({ expiresIn: '1s' })));
    const endsErrors: pg.DatabaseError[] = [];
    ends.on('error', (e) => endsErrors.push(e as pg.DatabaseError));
    await ends.connect();
    const stays = new pg.Client(hx.clientConfig(await hx.credential()));
    await stays.connect();
    try {
      await waitFor(() => endsErrors.length > 0, 5000, 50);
      expect(endsErrors[0]!.code).toBe('57P01');
      expect(endsErrors[0]!.message).toMatch(/gateway credential of this session expired/);
      expect((await stays.query('SELECT 1 AS n')).rows[0].n).toBe(1);
      // on the default gateway, past the same kind of credential's expiry: the session is still there
      await waitFor(() => Date.now() > outlivesExp + 100, 3000, 50);
      expect((await outlives.c.query('SELECT 2 AS n')).rows[0].n).toBe(2);
      expect(outlives.errors).toEqual([]);
    } finally {
      await outlives.c.end().catch(() => {});
      await ends.end().catch(() => {});
      await stays.end().catch(() => {});
    }
  });
});
