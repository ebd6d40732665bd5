import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { run } from '../src/cli.js';
import { pageLines } from '../src/commands/audit.js';
import { describeEvent } from '../src/commands/sessions.js';

// A small stand-in for the api (and an IdP) that speaks the routes of CONTRACT.md, so the CLI is tested
// over real HTTP without the whole stack.
const TOKENS: Record<string, { subject: string; groups: string[]; roles: string[] }> = {
  'tok-bob': { subject: 'bob', groups: ['approvers'], roles: ['approver', 'auditor'] },
  'tok-carol': { subject: 'carol', groups: ['engineers'], roles: ['user'] },
  'tok-agent': { subject: 'agent:demo', groups: ['engineers'], roles: ['user'] },
};
const EVENTS = Array.from({ length: 5 }, (_, i) => ({ id: `e${i + 1}`, seq: i + 1, type: 'query', data: { sql: `SELECT ${i + 1}` } }));

let server: Server;
let base: string;
const requests: { method: string; path: string; body: string; auth?: string }[] = [];
let approvals: { id: string; status: string; identity: string; connection: string; statement: string; rule: string; requestedAt: string; expiresAt: string }[];

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}
const fail = (res: ServerResponse, status: number, code: string, message: string): void => send(res, status, { error: { code, message } });

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', base);
  let body = '';
  for await (const chunk of req) body += chunk;
  requests.push({ method: req.method ?? '', path: url.pathname + url.search, body, auth: req.headers.authorization });
  const p = url.pathname;
  const who = TOKENS[(req.headers.authorization ?? '').replace(/^Bearer /, '')];

  // The IdP part.
  if (p === '/idp/.well-known/openid-configuration') return send(res, 200, { issuer: `${base}/idp`, token_endpoint: `${base}/idp/token` });
  if (p === '/idp/token') {
    const basic = Buffer.from('demo-agent:demo-agent-secret').toString('base64');
    if (req.headers.authorization !== `Basic ${basic}`) return send(res, 401, { error: 'invalid_client', error_description: 'client authentication failed' });
    return send(res, 200, { access_token: 'idp-jwt', token_type: 'Bearer', expires_in: 600 });
  }
  // The api part.
  if (p === '/v1/auth/login') {
    const redirect = new URL(url.searchParams.get('cli_redirect') ?? '');
    redirect.searchParams.set('access_token', 'tok-bob');
    redirect.searchParams.set('expires_in', '3600');
    res.writeHead(302, { location: redirect.href }).end();
    return;
  }
  if (p === '/v1/auth/token') {
    const form = new URLSearchParams(body);
    if (form.get('grant_type') !== 'urn:ietf:params:oauth:grant-type:token-exchange' || form.get('subject_token') !== 'idp-jwt') {
      return fail(res, 400, 'invalid_grant', 'untrusted subject token');
    }
    return send(res, 200, { access_token: 'tok-agent', token_type: 'Bearer', expires_in: 900 });
  }
  if (!who) return fail(res, 401, 'unauthenticated', 'missing or invalid token');
  if (p === '/v1/me') return send(res, 200, { subject: who.subject, kind: 'person', groups: who.groups, roles: who.roles });
  let m = /^\/v1\/connections\/([^/]+)\/credentials$/.exec(p);
  if (m && req.method === 'POST') {
    if (m[1] !== 'demo') return fail(res, 404, 'not_found', `connection ${m[1]} not found`);
    return send(res, 201, { token: 'gw-token', expiresAt: '2026-11-27T00:15:00.000Z', host: '127.0.0.1', port: 15432, database: 'demo', uri: 'postgresql://carol:gw-token@127.0.0.1:15432/demo?sslmode=prefer', jti: 'gw-jti' });
  }
  if (p === '/v1/approvals' && req.method === 'GET') {
    const status = url.searchParams.get('status');
    return send(res, 200, approvals.filter((a) => !status || a.status === status));
  }
  m = /^\/v1\/approvals\/([^/]+)\/(approve|deny)$/.exec(p);
  if (m && req.method === 'POST') {
    const a = approvals.find((x) => x.id === m![1]);
    if (!a) return fail(res, 404, 'not_found', `approval ${m[1]} not found`);
    if (a.identity === who.subject) return fail(res, 403, 'forbidden', 'nobody approves their own request');
    if (a.status !== 'pending') return fail(res, 409, 'conflict', `approval ${a.id} is ${a.status}`);
    a.status = m[2] === 'approve' ? 'approved' : 'denied';
    return send(res, 200, { ...a, decidedBy: who.subject, comment: JSON.parse(body || '{}').comment ?? null });
  }
  m = /^\/v1\/access-requests\/([^/]+)\/revoke$/.exec(p);
  if (m && req.method === 'POST') {
    if (m[1] !== 'ar1') return fail(res, 404, 'access_request_not_found', `access request ${m[1]} does not exist`);
    return send(res, 200, { id: 'ar1', identity: 'agent:demo', connection: 'demo', status: 'revoked', active: false, revokedBy: who.subject, revokeReason: JSON.parse(body || '{}').reason ?? null });
  }
  if (p === '/v1/sessions') return send(res, 200, [{ id: 's1', identity: 'agent:demo', connection: 'demo', gateway: 'gw1', startedAt: '2026-11-26T23:00:00.000Z', endedAt: null, events: 4 }]);
  if (p === '/v1/sessions/s1') return send(res, 200, { id: 's1', identity: 'agent:demo', connection: 'demo', gateway: 'gw1', startedAt: '2026-11-26T23:00:00.000Z', endedAt: '2026-11-26T23:01:00.000Z' });
  if (p === '/v1/sessions/s1/events') {
    return send(res, 200, [
      { seq: 1, time: '2026-11-26T23:00:00.000Z', type: 'session.start', data: { user: 'x', database: 'demo', clientAddr: '127.0.0.1', policy: 'default', tls: false } },
      { seq: 2, time: '2026-11-26T23:00:01.000Z', type: 'query', data: { sql: 'DELETE FROM customers', protocol: 'simple' } },
      { seq: 3, time: '2026-11-26T23:00:01.000Z', type: 'decision', data: { action: 'require_approval', rule: 'bulk-writes', reason: 'needs eyes' } },
    ]);
  }
  if (p === '/v1/sessions/s1/verify') return send(res, 200, { valid: true, events: 3, brokenAt: null });
  if (p === '/v1/sessions/s2/verify') return send(res, 200, { valid: false, events: 9, brokenAt: 4 });
  if (p === '/v1/audit/events') {
    if (!who.roles.includes('auditor')) return fail(res, 403, 'forbidden', 'auditors only');
    const cursor = Number(url.searchParams.get('cursor') ?? 0);
    const limit = Number(url.searchParams.get('limit') ?? 100);
    const page = EVENTS.slice(cursor, cursor + limit);
    const format = url.searchParams.get('format');
    const text = page.map((e) => (format === 'cef' ? `CEF:0|Portcullis|Portcullis|0.1|query|query|3|externalId=${e.id}` : JSON.stringify(e))).join('\n');
    res.writeHead(200, { 'content-type': format === 'cef' ? 'text/plain' : 'application/x-ndjson', 'x-next-cursor': String(cursor + page.length) });
    res.end(text ? `${text}\n` : '');
    return;
  }
  return fail(res, 404, 'not_found', `no route ${req.method} ${p}`);
}

let dir: string;
function ctx(env: Record<string, string> = {}, opts: { openBrowser?: (url: string) => void; signal?: AbortSignal } = {}) {
  const out = { text: '', write(s: string) { this.text += s; return true; } };
  const err = { text: '', write(s: string) { this.text += s; return true; } };
  return {
    out,
    err,
    ctx: {
      env: { PORTCULLIS_CLI_CONFIG: join(dir, 'cli.json'), PORTCULLIS_API: base, PATH: process.env.PATH, ...env },
      stdout: out,
      stderr: err,
      openBrowser: opts.openBrowser ?? (() => undefined),
      signal: opts.signal ?? new AbortController().signal,
    },
  };
}

beforeAll(async () => {
  server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => fail(res, 500, 'internal', String(e)));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
});
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'portcullis-cli-'));
  requests.length = 0;
  approvals = [
    { id: 'a1', status: 'pending', identity: 'agent:demo', connection: 'demo', statement: 'DELETE FROM customers', rule: 'bulk-writes', requestedAt: '2026-11-26T23:00:00.000Z', expiresAt: '2026-11-26T23:05:00.000Z' },
    { id: 'a2', status: 'pending', identity: 'bob', connection: 'demo', statement: 'UPDATE customers SET notes = null', rule: 'bulk-writes', requestedAt: '2026-11-26T23:01:00.000Z', expiresAt: '2026-11-26T23:06:00.000Z' },
  ];
  return () => rmSync(dir, { recursive: true, force: true });
});

describe('portcullis CLI', () => {
  it('prints help and fails on unknown commands and options with exit 2', async () => {
    const a = ctx();
    expect(await run(['help'], a.ctx)).toBe(0);
    expect(a.out.text).toContain('approvals list');
    const b = ctx();
    expect(await run(['frobnicate'], b.ctx)).toBe(2);
    expect(b.err.text).toBe('portcullis: unknown command "frobnicate" (try `portcullis help`)\n');
    const c = ctx({ PORTCULLIS_TOKEN: 'tok-bob' });
    expect(await run(['approvals', 'list', '--staus', 'all'], c.ctx)).toBe(2);
    expect(c.err.text).toContain('unknown option --staus');
    expect(await run(['audit', 'export', '--format', 'xml'], c.ctx)).toBe(2);
  });

  it('says how to log in when there is no token (exit 3), and turns a 401 into one line', async () => {
    const a = ctx();
    expect(await run(['sessions', 'list'], a.ctx)).toBe(3);
    expect(a.err.text).toBe('portcullis: not logged in: run `portcullis login` (or set PORTCULLIS_TOKEN)\n');
    const b = ctx({ PORTCULLIS_TOKEN: 'nope' });
    expect(await run(['sessions', 'list'], b.ctx)).toBe(3);
    expect(b.err.text.trim().split('\n')).toHaveLength(1);
    expect(b.err.text).toContain('unauthenticated: missing or invalid token (HTTP 401 from GET /v1/sessions)');
  });

  it('logs in through the browser flow: loopback callback, token saved 0600, /v1/me shown', async () => {
    const browser = async (url: string): Promise<void> => {
      // What a browser does: follow the api's redirect to the loopback callback.
      const res = await fetch(url, { redirect: 'manual' });
      const page = await fetch(res.headers.get('location')!);
      expect(await page.text()).toContain('Logged in');
    };
    const a = ctx({}, { openBrowser: (u) => void browser(u) });
    expect(await run(['login'], a.ctx)).toBe(0);
    expect(a.err.text).toMatch(/\/v1\/auth\/login\?cli_redirect=http%3A%2F%2F127\.0\.0\.1%3A\d+%2Fcallback/);
    expect(a.out.text).toContain('as bob (groups approvers; roles approver, auditor)');
    const saved = JSON.parse(readFileSync(join(dir, 'cli.json'), 'utf8'));
    expect(saved).toMatchObject({ api: base, token: 'tok-bob', subject: 'bob' });
    expect(statSync(join(dir, 'cli.json')).mode & 0o777).toBe(0o600);

    // The saved token is used from now on.
    const b = ctx({});
    expect(await run(['whoami'], b.ctx)).toBe(0);
    expect(b.out.text).toContain('bob (person)');
  });

  it('gives up the browser login when cancelled', async () => {
    const ac = new AbortController();
    const a = ctx({}, { openBrowser: () => ac.abort(), signal: ac.signal });
    expect(await run(['login', '--no-browser', '--timeout', '0.2'], a.ctx)).toBe(1);
    expect(a.err.text).toContain('portcullis: no login within 0s');
    const b = ctx({}, { openBrowser: () => ac.abort(), signal: ac.signal });
    expect(await run(['login'], b.ctx)).toBe(1);
    expect(b.err.text).toContain('login cancelled');
    expect(existsSync(join(dir, 'cli.json'))).toBe(false);
  });

  it('logs in with --token and with client credentials + token exchange', async () => {
    const a = ctx();
    expect(await run(['login', '--token', 'tok-carol'], a.ctx)).toBe(0);
    expect(a.out.text).toContain('as carol');

    const b = ctx();
    expect(await run(['login', '--client-credentials', '--issuer', `${base}/idp`, '--client-id', 'demo-agent', '--client-secret', 'demo-agent-secret'], b.ctx)).toBe(0);
    expect(b.out.text).toContain('as agent:demo');
    const exchange = requests.find((r) => r.path === '/v1/auth/token')!;
    expect(Object.fromEntries(new URLSearchParams(exchange.body))).toEqual({
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      subject_token: 'idp-jwt',
      subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
    });

    const c = ctx();
    expect(await run(['login', '--client-credentials', '--issuer', `${base}/idp`, '--client-id', 'demo-agent', '--client-secret', 'wrong'], c.ctx)).toBe(3);
    expect(c.err.text).toContain('the IdP refused client_credentials for demo-agent: invalid_client (client authentication failed)');
    const d = ctx();
    expect(await run(['login', '--client-credentials', '--issuer', `${base}/idp`], d.ctx)).toBe(2);
    expect(d.err.text).toContain('needs --client-id, --client-secret');
  });

  it('connect --print prints the ready URI; connect runs psql with it; unknown connection → one line', async () => {
    const a = ctx({ PORTCULLIS_TOKEN: 'tok-carol' });
    expect(await run(['connect', 'demo', '--print'], a.ctx)).toBe(0);
    expect(a.out.text).toBe('postgresql://carol:gw-token@127.0.0.1:15432/demo?sslmode=prefer\n');
    expect(requests.at(-1)!.body).toBe('{}');
    expect(await run(['connect', 'demo', '--print', '--fail-fast'], a.ctx)).toBe(0);
    expect(JSON.parse(requests.at(-1)!.body)).toEqual({ mode: 'fail-fast' });

    const fakePsql = join(dir, 'psql');
    writeFileSync(fakePsql, `#!/bin/sh\nprintf '%s\\n' "$@" > "${join(dir, 'psql-args')}"\nexit 7\n`);
    chmodSync(fakePsql, 0o755);
    const b = ctx({ PORTCULLIS_TOKEN: 'tok-carol', PORTCULLIS_PSQL: fakePsql });
    expect(await run(['connect', 'demo', '--', '-c', 'SELECT 1'], b.ctx)).toBe(7);
    expect(readFileSync(join(dir, 'psql-args'), 'utf8')).toBe('postgresql://carol:gw-token@127.0.0.1:15432/demo?sslmode=prefer\n-c\nSELECT 1\n');

    const c = ctx({ PORTCULLIS_TOKEN: 'tok-carol' });
    expect(await run(['connect', 'prod'], c.ctx)).toBe(1);
    expect(c.err.text).toBe('portcullis: not_found: connection prod not found (HTTP 404 from POST /v1/connections/prod/credentials)\n');
  });

  it('access-requests revoke: ends a grant with a reason; an unknown one is the api\'s 404; no id is a usage error', async () => {
    const a = ctx({ PORTCULLIS_TOKEN: 'tok-bob' });
    expect(await run(['access-requests', 'revoke', 'ar1', '--reason', 'incident closed'], a.ctx)).toBe(0);
    expect(a.out.text).toBe("Revoked agent:demo's access to demo (ar1): its sessions end now and its credentials no longer work\n");
    expect(requests.at(-1)!.path).toBe('/v1/access-requests/ar1/revoke');
    expect(JSON.parse(requests.at(-1)!.body)).toEqual({ reason: 'incident closed' });
    const b = ctx({ PORTCULLIS_TOKEN: 'tok-bob' });
    expect(await run(['access-requests', 'revoke', 'ar9'], b.ctx)).toBe(1);
    expect(b.err.text).toContain('access request ar9 does not exist');
    const c = ctx({ PORTCULLIS_TOKEN: 'tok-bob' });
    expect(await run(['access-requests', 'revoke'], c.ctx)).toBe(2);
    expect(c.err.text).toContain('revoke <id> [--reason text]');
  });

  it('lists, approves and denies approvals; refuses self-approval with the api message', async () => {
    const a = ctx({ PORTCULLIS_TOKEN: 'tok-bob' });
    expect(await run(['approvals', 'list'], a.ctx)).toBe(0);
    const lines = a.out.text.trim().split('\n');
    expect(lines[0]).toMatch(/^ID\s+STATUS\s+WHO\s+CONNECTION\s+RULE\s+REQUESTED\s+EXPIRES\s+STATEMENT$/);
    expect(lines).toHaveLength(3);
    expect(requests.at(-1)!.path).toBe('/v1/approvals?status=pending');

    const b = ctx({ PORTCULLIS_TOKEN: 'tok-bob' });
    expect(await run(['approvals', 'approve', 'a1', '--comment', 'one-off cleanup'], b.ctx)).toBe(0);
    expect(b.out.text).toBe('Approved a1: DELETE FROM customers\n');
    expect(JSON.parse(requests.at(-1)!.body)).toEqual({ comment: 'one-off cleanup' });

    const c = ctx({ PORTCULLIS_TOKEN: 'tok-bob' });
    expect(await run(['approvals', 'approve', 'a2'], c.ctx)).toBe(3);
    expect(c.err.text).toContain('forbidden: nobody approves their own request (HTTP 403');

    const d = ctx({ PORTCULLIS_TOKEN: 'tok-carol' });
    expect(await run(['approvals', 'deny', 'a1'], d.ctx)).toBe(1);
    expect(d.err.text).toContain('conflict: approval a1 is approved');

    const e = ctx({ PORTCULLIS_TOKEN: 'tok-bob' });
    expect(await run(['approvals', 'list', '--status', 'all', '--json'], e.ctx)).toBe(0);
    expect(JSON.parse(e.out.text).map((x: { status: string }) => x.status)).toEqual(['approved', 'pending']);
  });

  it('lists, shows and verifies sessions; a broken chain exits 4', async () => {
    const a = ctx({ PORTCULLIS_TOKEN: 'tok-bob' });
    expect(await run(['sessions', 'list'], a.ctx)).toBe(0);
    expect(a.out.text).toMatch(/s1\s+agent:demo\s+demo\s+gw1\s+2026-11-26 23:00:00\s+live\s+4/);
    const b = ctx({ PORTCULLIS_TOKEN: 'tok-bob' });
    expect(await run(['sessions', 'show', 's1'], b.ctx)).toBe(0);
    expect(b.out.text).toContain('query              DELETE FROM customers');
    expect(b.out.text).toContain('decision           require_approval by bulk-writes: needs eyes');
    const c = ctx({ PORTCULLIS_TOKEN: 'tok-bob' });
    expect(await run(['sessions', 'verify', 's1'], c.ctx)).toBe(0);
    expect(c.out.text).toBe('session s1: hash chain intact over 3 events\n');
    const d = ctx({ PORTCULLIS_TOKEN: 'tok-bob' });
    expect(await run(['sessions', 'verify', 's2'], d.ctx)).toBe(4);
    expect(d.out.text).toContain('BROKEN at event 4');
  });

  it('exports audit events page by page with the cursor, and resumes from --cursor-file', async () => {
    const a = ctx({ PORTCULLIS_TOKEN: 'tok-bob' });
    const cursorFile = join(dir, 'cursor');
    expect(await run(['audit', 'export', '--limit', '2', '--cursor-file', cursorFile], a.ctx)).toBe(0);
    expect(a.out.text.trim().split('\n').map((l) => JSON.parse(l).id)).toEqual(['e1', 'e2', 'e3', 'e4', 'e5']);
    expect(a.err.text).toBe('5 event(s); next cursor: 5\n');
    expect(readFileSync(cursorFile, 'utf8').trim()).toBe('5');
    expect(requests.filter((r) => r.path.startsWith('/v1/audit/events')).map((r) => new URL(r.path, base).searchParams.get('cursor'))).toEqual([null, '2', '4', '5']);

    const b = ctx({ PORTCULLIS_TOKEN: 'tok-bob' });
    expect(await run(['audit', 'export', '--cursor', '3', '--format', 'cef'], b.ctx)).toBe(0);
    expect(b.out.text).toBe('CEF:0|Portcullis|Portcullis|0.1|query|query|3|externalId=e4\nCEF:0|Portcullis|Portcullis|0.1|query|query|3|externalId=e5\n');

    const c = ctx({ PORTCULLIS_TOKEN: 'tok-carol' });
    expect(await run(['audit', 'export'], c.ctx)).toBe(3);
    expect(c.err.text).toContain('forbidden: auditors only');
  });

  it('audit export --follow keeps polling until interrupted', async () => {
    const ac = new AbortController();
    const a = ctx({ PORTCULLIS_TOKEN: 'tok-bob' }, { signal: ac.signal });
    const polls = () => requests.filter((r) => r.path.startsWith('/v1/audit/events')).length;
    const before = polls();
    const done = run(['audit', 'export', '--follow', '--interval', '0.05', '--cursor', '4'], a.ctx);
    // it goes on polling (a fixed 300 ms wait saw too few polls on a loaded host): interrupted after the third
    while (polls() - before < 3) await new Promise((r) => setTimeout(r, 20));
    ac.abort();
    expect(await done).toBe(0);
    expect(a.out.text.trim().split('\n').map((l) => JSON.parse(l).id)).toEqual(['e5']);
  });

  it('pageLines and describeEvent handle the shapes the api may send', () => {
    expect(pageLines('[{"a":1},{"b":2}]', 'application/json')).toEqual(['{"a":1}', '{"b":2}']);
    expect(pageLines('{"a":1}\n{"b":2}\n', 'application/x-ndjson')).toEqual(['{"a":1}', '{"b":2}']);
    expect(pageLines('', 'application/x-ndjson')).toEqual([]);
    expect(pageLines('{"next_cursor":"9","events":[{"a":1}]}', 'application/json; charset=utf-8')).toEqual(['{"a":1}']);
    expect(pageLines('{"a":1}\n{"b":2}', 'application/json')).toEqual(['{"a":1}', '{"b":2}']);
    expect(describeEvent({ seq: 1, time: '', type: 'result', data: { tag: 'SELECT 5', rows: 5, durationMs: 3, masking: { columns: ['email'], values: 5 } } }))
      .toBe('SELECT 5 rows=5 3ms masked=5 in email');
    expect(describeEvent({ seq: 2, time: '', type: 'statement', data: { sql: 'DROP\n TABLE t', protocol: 'simple', action: 'block', rule: 'no-ddl', reason: 'r', rows: 0, durationMs: 0, error: { code: '42501', message: 'blocked' } } }))
      .toBe('DROP TABLE t → block by no-ddl: error 42501 blocked');
  });
});

const dist = fileURLToPath(new URL('../dist/main.js', import.meta.url));
describe.skipIf(!existsSync(dist))('the compiled binary', () => {
  it('runs as `node apps/cli/dist/main.js` with exit codes', async () => {
    const exec = promisify(execFile);
    const env = { ...process.env, PORTCULLIS_API: base, PORTCULLIS_TOKEN: 'tok-bob', PORTCULLIS_CLI_CONFIG: join(dir, 'cli.json') };
    const ok = await exec(process.execPath, [dist, 'sessions', 'verify', 's1'], { env });
    expect(ok.stdout).toBe('session s1: hash chain intact over 3 events\n');
    const bad = await exec(process.execPath, [dist, 'sessions', 'verify', 's2'], { env }).catch((e: { code: number }) => e);
    expect((bad as { code: number }).code).toBe(4);
  });
});
