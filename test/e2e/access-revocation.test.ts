// A live session must not outlive what let it in: the api token its credential was minted with, and the
// connection's access rule. The stack as `pnpm start` runs it; real clients only (fetch, the pg driver).
import { execFile, spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientCredentialsToken, demoAgentApiToken, loginThroughApi } from '../support/dev-idp-login.js';
import { startDemoStack, type DemoStack } from '../support/demo-stack.js';

const run = promisify(execFile);
const CLI = join(fileURLToPath(new URL('../..', import.meta.url)), 'apps/cli/dist/main.js');

let s: DemoStack;
beforeAll(async () => {
  s = await startDemoStack('access');
}, 300_000);
afterAll(async () => {
  await s?.stop();
}, 60_000);

const jtiOf = (jwt: string): string => (JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString()) as { jti: string }).jti;

/** demo-agent's workload JWT exchanged for a Portcullis api token (identity agent:demo, group engineers). */
async function agentToken(): Promise<string> {
  return demoAgentApiToken(s.idp, s.api);
}

/** A pg client through the gateway with a credential; asynchronous errors (a FATAL while idle) are kept. */
async function connect(credential: { host: string; port: number; database: string; token: string }): Promise<{ c: pg.Client; errors: pg.DatabaseError[] }> {
  const c = new pg.Client({ host: credential.host, port: credential.port, database: credential.database, user: 'agent', password: credential.token, ssl: false });
  const errors: pg.DatabaseError[] = [];
  c.on('error', (e) => errors.push(e as pg.DatabaseError));
  await c.connect();
  return { c, errors };
}

async function until(check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('live sessions follow the api', () => {
  it('revoking an api token revokes the gateway credentials minted with it: the open session ends (57P01) and the credential no longer logs in', async () => {
    const token = await agentToken();
    const cred = await s.rest('POST', '/v1/connections/demo/credentials', token, {});
    expect(cred.status).toBe(201);
    const session = await connect(cred.json);
    const bystanderCred = await s.rest('POST', '/v1/connections/demo/credentials', await agentToken(), {});
    const bystander = await connect(bystanderCred.json);
    try {
      expect((await session.c.query('SELECT 1 AS n')).rows[0].n).toBe(1);
      const revoked = await s.rest('POST', '/v1/auth/revoke', token, { jti: jtiOf(token) });
      expect(revoked.status).toBeLessThan(300);
      const t0 = Date.now();
      await until(() => session.errors.length > 0, 10_000);
      const tookMs = Date.now() - t0;
      expect(session.errors[0]!.code).toBe('57P01');
      expect(session.errors[0]!.message).toMatch(/gateway credential of this session was revoked/);
      expect(tookMs).toBeLessThan(5000);
      const again = await connect(cred.json).then(() => null, (e: pg.DatabaseError) => e);
      expect(again?.code).toBe('28P01');
      expect((await s.rest('GET', '/v1/me', token)).status).toBe(401);
      // a session of another api token goes on
      expect((await bystander.c.query('SELECT 2 AS n')).rows[0].n).toBe(2);
      expect(bystander.errors).toEqual([]);
    } finally {
      await session.c.end().catch(() => {});
      await bystander.c.end().catch(() => {});
    }
  }, 60_000);

  it('removing a group from a connection\'s allowedGroups ends that group\'s open sessions (57P01, access_removed) and refuses new credentials', async () => {
    const before = await s.rest('GET', '/v1/connections/demo', s.bootstrap);
    expect(before.json.allowedGroups).toContain('engineers');
    const token = await agentToken();
    const cred = await s.rest('POST', '/v1/connections/demo/credentials', token, {});
    const session = await connect(cred.json);
    try {
      expect((await session.c.query('SELECT 1 AS n')).rows[0].n).toBe(1);
      const patched = await s.rest('PATCH', '/v1/connections/demo', s.bootstrap, { allowedGroups: ['admins'] });
      expect(patched.status).toBe(200);
      await until(() => session.errors.length > 0, 10_000);
      expect(session.errors[0]!.code).toBe('57P01');
      expect(session.errors[0]!.message).toMatch(/no longer allowed to use connection "demo"/);
      expect((await s.rest('POST', '/v1/connections/demo/credentials', token, {})).status).toBe(403);
      const again = await connect(cred.json).then(() => null, (e: pg.DatabaseError) => e);
      expect(again?.code).toBe('28P01');
      let ends: { data: { reason?: string } }[] = [];
      await until(async () => {
        const page = await s.rest('GET', '/v1/audit/events?format=jsonl&limit=1000', s.bootstrap);
        ends = page.text.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l)).filter((e) => e.type === 'session.end');
        return ends.some((e) => e.data.reason === 'access_removed');
      }, 10_000);
    } finally {
      await session.c.end().catch(() => {});
      await s.rest('PATCH', '/v1/connections/demo', s.bootstrap, { allowedGroups: before.json.allowedGroups });
    }
  }, 60_000);

  it('an identity that loses the group its credential was minted under loses the credential: removed from the group, or the group deleted (session ends 57P01, no new login)', async () => {
    const before = await s.rest('GET', '/v1/connections/demo', s.bootstrap);
    const group = 'e2e-oncall';
    expect((await s.rest('POST', '/v1/groups', s.bootstrap, { name: group, roles: ['user'] })).status).toBe(201);
    // demo admits this group only (engineers, agent:demo's other group, not)
    expect((await s.rest('PATCH', '/v1/connections/demo', s.bootstrap, { allowedGroups: [group, 'admins'] })).status).toBe(200);
    const sessionIn = async () => {
      expect((await s.rest('PUT', `/v1/groups/${group}/members`, s.bootstrap, { members: ['agent:demo'] })).status).toBe(200);
      const token = await agentToken();
      const cred = await s.rest('POST', '/v1/connections/demo/credentials', token, {});
      expect(cred.status).toBe(201);
      const session = await connect(cred.json);
      expect((await session.c.query('SELECT 1 AS n')).rows[0].n).toBe(1);
      return { token, cred, session };
    };
    const endsRevoked = async ({ token, cred, session }: Awaited<ReturnType<typeof sessionIn>>) => {
      await until(() => session.errors.length > 0, 15_000);
      expect(session.errors[0]!.code).toBe('57P01');
      expect(session.errors[0]!.message).toMatch(/gateway credential of this session was revoked/);
      const again = await connect(cred.json).then(() => null, (e: pg.DatabaseError) => e);
      expect(again?.code).toBe('28P01');
      expect((await s.rest('POST', '/v1/connections/demo/credentials', token, {})).status).toBe(403);
      await session.c.end().catch(() => {});
    };
    try {
      // removed from the group (PUT members)
      const first = await sessionIn();
      expect((await s.rest('PUT', `/v1/groups/${group}/members`, s.bootstrap, { members: [] })).status).toBe(200);
      await endsRevoked(first);
      // the identity's groups replaced (PATCH /v1/identities/{id})
      const second = await sessionIn();
      const me = await s.rest('GET', '/v1/me', second.token);
      expect((await s.rest('PATCH', `/v1/identities/${me.json.identityId ?? me.json.id}`, s.bootstrap, { groups: [] })).status).toBe(200);
      await endsRevoked(second);
      // the group deleted
      const third = await sessionIn();
      expect((await s.rest('DELETE', `/v1/groups/${group}`, s.bootstrap)).status).toBe(204);
      await endsRevoked(third);
    } finally {
      await s.rest('PATCH', '/v1/connections/demo', s.bootstrap, { allowedGroups: before.json.allowedGroups });
      await s.rest('DELETE', `/v1/groups/${group}`, s.bootstrap);
    }
  }, 120_000);

  it('refused logins leave an audit trail (auth.failed: address, claimed identity, reason), aggregated so a flood is a few events', async () => {
    const token = await agentToken();
    const cred = await s.rest('POST', '/v1/connections/demo/credentials', token, {});
    // A credential for demo presented for another connection, 25 times: one event now (the rest are summarised per minute).
    for (let i = 0; i < 25; i++) {
      const e = await connect({ ...cred.json, database: 'not-demo' }).then(() => null, (err: pg.DatabaseError) => err);
      expect(e?.code).toBe('28P01');
    }
    // The api: a forged bearer token (claims alice, bad signature) and a refused token exchange.
    const [h, p] = token.split('.');
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p!, 'base64url').toString()), sub: 'user:alice' })).toString('base64url')}.${token.split('.')[2]}`;
    expect((await s.rest('GET', '/v1/me', forged)).status).toBe(401);
    const wrongAud = await clientCredentialsToken(s.idp, 'demo-agent', 'demo-agent-secret', 'elsewhere');
    const exchange = await fetch(`${s.api}/v1/auth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange', subject_token: wrongAud, subject_token_type: 'urn:ietf:params:oauth:token-type:jwt' }),
    });
    expect(exchange.status).toBe(400);
    // the unauthenticated caller learns that the audience did not match, not which ones would
    expect(((await exchange.json()) as { error: { message: string } }).error.message).not.toMatch(/portcullis/);

    type Ev = { type: string; gateway: string | null; data: Record<string, unknown> };
    let failed: Ev[] = [];
    await until(async () => {
      const page = await s.rest('GET', '/v1/audit/events?format=jsonl&limit=1000', s.bootstrap);
      failed = page.text.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as Ev).filter((e) => e.type === 'auth.failed');
      return failed.some((e) => e.data.identity === 'user:alice') && ['gateway', 'token-exchange'].every((surface) => failed.some((e) => e.data.surface === surface));
    }, 15_000);
    const gateway = failed.filter((e) => e.data.surface === 'gateway' && e.data.reason === 'wrong_connection');
    expect(gateway).toHaveLength(1);
    expect(gateway[0]!.data).toMatchObject({ source: '127.0.0.1', identity: 'agent:demo', count: 1, summary: false, target: 'not-demo' });
    expect(gateway[0]!.gateway).toMatch(/^e2e-/);
    expect(failed.find((e) => e.data.surface === 'api' && e.data.identity === 'user:alice')!.data).toMatchObject({ source: '127.0.0.1', reason: 'invalid_token', target: 'GET /v1/me' });
    // the revoked api token of the first test was refused too, under its own reason
    expect(failed.some((e) => e.data.surface === 'api' && e.data.identity === 'agent:demo' && e.data.reason === 'token_revoked')).toBe(true);
    expect(failed.find((e) => e.data.surface === 'token-exchange')!.data).toMatchObject({ reason: 'invalid_grant', identity: expect.stringMatching(/^demo-agent \(http/) });
    // OCSF: an Authentication (3002) Logon failure with the client's address
    const ocsf = (await s.rest('GET', '/v1/audit/events?format=ocsf&limit=1000', s.bootstrap)).text.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
    const logon = ocsf.find((e) => e.unmapped.portcullis.type === 'auth.failed' && e.unmapped.portcullis.data.surface === 'gateway');
    expect(logon).toMatchObject({ class_uid: 3002, activity_id: 1, status: 'Failure', src_endpoint: { ip: '127.0.0.1' } });
  }, 60_000);

  it('revoking an approved access request ends it now: the open psql session gets a FATAL naming the revoked grant, its credential and new ones are refused; twice → 409, an outsider → 404', async () => {
    const before = await s.rest('GET', '/v1/connections/demo', s.bootstrap);
    // demo admits admins only: agent:demo (engineers) needs a grant
    expect((await s.rest('PATCH', '/v1/connections/demo', s.bootstrap, { allowedGroups: ['admins'] })).status).toBe(200);
    const psqlEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', LANG: 'C', PGCONNECT_TIMEOUT: '20' };
    try {
      const agent = await agentToken();
      const bob = (await loginThroughApi(s.api, 'bob', 'bob')).access_token; // approvers: the demo policy's approver group
      const carol = (await loginThroughApi(s.api, 'carol', 'carol')).access_token; // engineers: neither requester nor approver
      expect((await s.rest('POST', '/v1/connections/demo/credentials', agent, {})).status).toBe(403);
      const asked = await s.rest('POST', '/v1/access-requests', agent, { connection: 'demo', durationSeconds: 3600, reason: 'e2e: incident 7' });
      expect(asked.status).toBe(201);
      const id = asked.json.id as string;
      // not approved yet: nothing to revoke
      expect((await s.rest('POST', `/v1/access-requests/${id}/revoke`, bob, {})).json.error.code).toBe('access_request_not_active');
      expect((await s.rest('POST', `/v1/access-requests/${id}/approve`, bob, { comment: 'go' })).status).toBe(200);
      const cred = await s.rest('POST', '/v1/connections/demo/credentials', agent, {});
      expect(cred.status).toBe(201);
      expect(cred.json.grant).toBe(id);

      // a real psql session through the gateway, busy in a long statement
      const psql = spawn('psql', [cred.json.uri, '-X', '-v', 'ON_ERROR_STOP=1', '-c', 'SELECT pg_sleep(120)'], { env: psqlEnv, stdio: ['ignore', 'pipe', 'pipe'] });
      let psqlErr = '';
      psql.stderr.on('data', (b: Buffer) => (psqlErr += b.toString()));
      const psqlDone = new Promise<number | null>((resolve) => psql.on('close', resolve));
      const admin = new pg.Client({ connectionString: `postgresql://postgres@127.0.0.1:5432/${s.demoDb}` });
      await admin.connect();
      try {
        await until(async () => (await admin.query("SELECT 1 FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(120)'")).rowCount! > 0, 30_000);
      } finally {
        await admin.end();
      }

      // an outsider cannot tell the request exists; its requester may see it but not revoke it
      const outsider = await s.rest('POST', `/v1/access-requests/${id}/revoke`, carol, { reason: 'x' });
      expect(outsider.status).toBe(404);
      expect(outsider.json.error.code).toBe('access_request_not_found');
      const own = await s.rest('POST', `/v1/access-requests/${id}/revoke`, agent, {});
      expect(own.status).toBe(403);
      expect(own.json.error.code).toBe('not_an_approver');

      // the approver revokes it with the CLI
      const cli = await run(process.execPath, [CLI, 'access-requests', 'revoke', id, '--reason', 'incident closed'], {
        env: { ...process.env, PORTCULLIS_API: s.api, PORTCULLIS_TOKEN: bob, PORTCULLIS_CLI_CONFIG: join(s.home, 'cli-bob.json') }, timeout: 30_000,
      });
      expect(cli.stdout).toContain(`Revoked agent:demo's access to demo (${id})`);

      // the open session ends with a FATAL that says why
      const code = await Promise.race([psqlDone, new Promise<'still running'>((r) => setTimeout(() => r('still running'), 20_000))]);
      expect(code, psqlErr).not.toBe('still running');
      expect(code).not.toBe(0);
      expect(psqlErr).toContain(`FATAL:  terminating connection: the access grant for connection "demo" (access request ${id}) was revoked`);
      // the credential minted under the grant no longer logs in, and no new one is issued
      const again = await run('psql', [cred.json.uri, '-X', '-c', 'SELECT 1'], { env: psqlEnv, timeout: 30_000 }).then(() => null, (e: { stderr: string }) => e);
      expect(again?.stderr).toContain(`the access grant this credential rests on (access request ${id}) was revoked`);
      expect((await s.rest('POST', '/v1/connections/demo/credentials', agent, {})).status).toBe(403);

      const view = await s.rest('GET', `/v1/access-requests/${id}`, agent);
      expect(view.json).toMatchObject({ status: 'revoked', active: false, revokedBy: 'bob', revokeReason: 'incident closed' });
      // twice: 409 naming who revoked it
      const twice = await s.rest('POST', `/v1/access-requests/${id}/revoke`, bob, {});
      expect(twice.status).toBe(409);
      expect(twice.json.error).toMatchObject({ code: 'access_request_already_revoked', message: expect.stringContaining('already revoked by bob') });
      // listed under its own status, and on the audit trail like approve and deny
      expect((await s.rest('GET', '/v1/access-requests?status=revoked', bob)).json.map((r: { id: string }) => r.id)).toContain(id);
      expect((await s.rest('GET', '/v1/access-requests?status=approved', bob)).json.map((r: { id: string }) => r.id)).not.toContain(id);
      await until(async () => {
        const page = await s.rest('GET', '/v1/audit/events?format=jsonl&limit=1000', s.bootstrap);
        const evs = page.text.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as { type: string; identity: string; data: { action?: string; target?: string; after?: { reason?: string } } });
        return evs.some((e) => e.type === 'access-request.changed' && e.data.action === 'revoke' && e.data.target === id && e.data.after?.reason === 'incident closed');
      }, 10_000);
      // and the credential minted under it is on the trail as revoked, naming the grant and why
      let dead: { identity: string; data: { target?: string; after?: Record<string, unknown> } }[] = [];
      await until(async () => {
        const page = await s.rest('GET', '/v1/audit/events?format=jsonl&limit=1000', s.bootstrap);
        dead = page.text.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l)).filter((e) => e.type === 'token.revoked' && e.data.target === cred.json.jti);
        return dead.length > 0;
      }, 10_000);
      expect(dead).toHaveLength(1);
      expect(dead[0]).toMatchObject({ identity: 'bob', data: { after: { identity: 'agent:demo', connection: 'demo', reason: 'grant_revoked', grant: id, revokeReason: 'incident closed' } } });
    } finally {
      await s.rest('PATCH', '/v1/connections/demo', s.bootstrap, { allowedGroups: before.json.allowedGroups });
    }
  }, 180_000);
});
