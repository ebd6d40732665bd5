// The web console in a real browser: Debian's Chromium driven by playwright-core, against the stack
// as `pnpm start` runs it (dev IdP, api serving /console, gateway, approvals, recorder) and psql.
// A held DELETE is approved by bob in the inbox and the same psql session completes; the session page
// shows the statement, the approval and the kept masked rows, and the chain's verify badge, which
// turns to where the chain breaks once an event row is edited. carol sees only her own sessions and
// cannot approve her own request. bob revokes a running access grant from the inbox and the psql
// session resting on it ends. Screenshots go to test-results/console/ (git-ignored).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { deriveKey, natsNames, signEvent, type WireEvent } from '@portcullis/protocol';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { demoAgentApiToken, loginThroughApi } from '../support/dev-idp-login.js';
import { startDemoStack, type DemoStack } from '../support/demo-stack.js';

const SHOTS = fileURLToPath(new URL('../../test-results/console/', import.meta.url));
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'];

let demo: DemoStack;
let browser: Browser;
const children: ChildProcess[] = [];

/** psql through the gateway; resolves with its exit code and output when it ends. */
function psql(uri: string, ...commands: string[]): { done: Promise<{ code: number | null; out: string }>; child: ChildProcess } {
  const child = spawn('psql', [uri, '-X', '-A', '-v', 'ON_ERROR_STOP=1', ...commands.flatMap((c) => ['-c', c])], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  child.stdout!.on('data', (c) => (out += c));
  child.stderr!.on('data', (c) => (out += c));
  const done = new Promise<{ code: number | null; out: string }>((resolve) => child.once('exit', (code) => resolve({ code, out })));
  return { done, child };
}

async function credentialUri(token: string): Promise<string> {
  const r = await demo.rest('POST', '/v1/connections/demo/credentials', token, {});
  expect(r.status).toBe(201);
  return r.json.uri as string;
}

async function agentToken(): Promise<string> {
  return demoAgentApiToken(demo.idp, demo.api);
}

async function pendingApproval(statement: string, identity: string): Promise<{ id: string }> {
  const end = Date.now() + 30_000;
  for (;;) {
    const r = await demo.rest('GET', '/v1/approvals?status=pending', demo.bootstrap);
    const a = (r.json as { id: string; statement: string; identity: string }[]).find((x) => x.statement === statement && x.identity === identity);
    if (a) return a;
    if (Date.now() > end) throw new Error(`no pending approval for ${statement}`);
    await new Promise((res) => setTimeout(res, 100));
  }
}

/** Signs in through the console's button and the dev IdP's own forms, as a person would. */
async function signIn(context: BrowserContext, user: string): Promise<Page> {
  const page = await context.newPage();
  await page.goto(`${demo.api}/console`);
  await page.getByRole('link', { name: 'Sign in' }).click();
  await page.locator('input[name=login]').fill(user);
  await page.locator('input[name=password]').fill(user);
  await page.getByRole('button', { name: 'Sign-in' }).click();
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.waitForURL(`${demo.api}/console`);
  await expect.poll(() => page.locator('.who').getAttribute('data-subject')).toBe(user);
  return page;
}

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  [demo, browser] = await Promise.all([
    startDemoStack('console'),
    chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS }),
  ]);
}, 300_000);

afterAll(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  await browser?.close();
  await demo?.stop();
}, 60_000);

describe('web console in Chromium', () => {
  it('a held psql DELETE approved in bob\'s inbox completes; the session page shows it with the kept masked rows and the chain badge, green then broken', async () => {
    const uri = await credentialUri(await agentToken());
    const held = psql(uri, 'SELECT id, name, email, ssn, notes FROM customers ORDER BY id LIMIT 3', 'DELETE FROM customers');
    const approval = await pendingApproval('DELETE FROM customers', 'agent:demo');

    const bob = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
    const urls: string[] = [];
    bob.on('request', (r) => urls.push(r.url()));
    const cspErrors: string[] = [];
    const page = await signIn(bob, 'bob');
    // the token is an HttpOnly SameSite=Strict cookie, and never in a URL (logged by proxies, kept in history)
    const cookie = (await bob.cookies()).find((c) => c.name === 'portcullis_console')!;
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/' });
    expect(urls.filter((u) => u.includes(cookie.value) || /access_token/.test(u))).toEqual([]);
    expect(await page.evaluate(() => document.cookie)).not.toContain(cookie.value);
    // strict CSP on the console's pages and files
    for (const path of ['/console', '/console/sessions/x']) {
      const res = await fetch(`${demo.api}${path}`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-security-policy')).toMatch(/script-src 'self'.*frame-ancestors 'none'/);
      expect(res.headers.get('content-security-policy')).not.toMatch(/'unsafe-inline'|'unsafe-eval'/);
      expect(await res.text()).not.toMatch(/<script>|style=/);
    }
    expect((await fetch(`${demo.api}/console/assets/missing.js`)).status).toBe(404);
    page.on('console', (m) => {
      if (/Content Security Policy/i.test(m.text())) cspErrors.push(m.text());
    });
    page.on('pageerror', (e) => cspErrors.push(e.message));
    const card = page.locator(`li.approval[data-approval="${approval.id}"]`);
    await card.waitFor();
    await expect.poll(() => card.locator('pre.sql').textContent()).toBe('DELETE FROM customers');
    expect(await card.locator('.requester').textContent()).toBe('agent:demo');
    // held by consequence: the rule that measured it and the rows it would change
    expect(await card.textContent()).toContain('big-writes');
    expect(await card.textContent()).toMatch(/would change \d+ rows of customers/);
    await page.screenshot({ path: `${SHOTS}inbox.png`, fullPage: true });

    await card.locator('input.comment').fill('one-off cleanup, checked with the team');
    await card.getByRole('button', { name: 'Approve' }).click();
    const result = await held.done;
    expect(result.code).toBe(0);
    expect(result.out).toMatch(/DELETE \d+/);
    await card.waitFor({ state: 'detached' });

    // the session page, reached from the sessions list
    const sessions = await demo.rest('GET', `/v1/sessions?identity=${encodeURIComponent('agent:demo')}`, demo.bootstrap);
    const sid = (sessions.json as { id: string; endedAt: string | null }[])[0].id;
    await expect.poll(async () => (await demo.rest('GET', `/v1/sessions/${sid}`, demo.bootstrap)).json.endedAt, { timeout: 30_000 }).toBeTruthy();
    await page.getByRole('link', { name: 'Sessions' }).click();
    await page.locator(`a[href="/console/sessions/${sid}"]`).click();
    await page.waitForURL(`**/console/sessions/${sid}`);
    const del = page.locator('li.statement', { hasText: 'DELETE FROM customers' });
    await del.waitFor();
    expect(await del.locator('.approval').textContent()).toMatch(/Approved by bob.*one-off cleanup, checked with the team/);
    expect(await del.locator('.decision').textContent()).toBe('require approval');
    const select = page.locator('li.statement', { hasText: 'SELECT id, name, email, ssn, notes' });
    expect(await select.locator('table.rows tbody tr').count()).toBe(3);
    // every email and ssn cell is masked and marked; no clear value reached the page
    expect(await select.locator('td.masked').count()).toBeGreaterThanOrEqual(6);
    expect(await select.locator('th.masked-column', { hasText: 'email' }).getAttribute('title')).toMatch(/rule emails/);
    expect(await select.locator('table.rows').textContent()).not.toMatch(/\d{3}-\d{2}-\d{4}/);
    const badge = page.locator('.badge[data-verify]');
    await expect.poll(() => badge.getAttribute('data-verify')).toBe('ok');
    expect(await badge.textContent()).toMatch(/^hash chain intact — \d+ events$/);
    await page.screenshot({ path: `${SHOTS}session.png`, fullPage: true });
    // the JSONL download: every event of the session, the kept rows with them
    const [file] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download JSONL' }).click()]);
    const lines = readFileSync((await file.path())!, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { seq: number; data: { returned?: unknown[] } });
    expect(lines.map((l) => l.seq)).toEqual(lines.map((_, i) => i + 1));
    expect(lines.some((l) => Array.isArray(l.data.returned))).toBe(true);

    // someone edits a recorded statement in the database: the badge says where the chain breaks
    const db = new pg.Client({ connectionString: demo.databaseUrl });
    await db.connect();
    const edited = await db.query<{ seq: number }>(
      `UPDATE "Event" SET data = jsonb_set(data, '{sql}', '"SELECT 1"') WHERE chain = $1 AND data->>'sql' = 'DELETE FROM customers' AND type = 'query' RETURNING seq`, [sid]);
    await db.end();
    expect(edited.rowCount).toBe(1);
    await page.reload();
    await expect.poll(() => badge.getAttribute('data-verify')).toBe('broken');
    expect(await badge.textContent()).toContain(`broken at event #${edited.rows[0].seq}`);
    expect(await page.locator('li.statement.broken .breaks-here').count()).toBe(1);
    expect(await page.locator('li.statement.broken pre.sql').textContent()).toBe('SELECT 1');
    await page.screenshot({ path: `${SHOTS}session-broken.png`, fullPage: true });
    expect(cspErrors).toEqual([]);

    // a deep link to a session that does not exist: a clear page
    await page.goto(`${demo.api}/console/sessions/no-such-session`);
    await page.getByRole('heading', { name: 'Session not found' }).waitFor();
    await bob.close();
  }, 120_000);

  it('carol sees only her sessions, cannot open another identity\'s, and cannot approve her own request (button disabled, the API refuses)', async () => {
    const carolToken = (await loginThroughApi(demo.api, 'carol', 'carol')).access_token;
    const agentSession = ((await demo.rest('GET', `/v1/sessions?identity=${encodeURIComponent('agent:demo')}`, demo.bootstrap)).json as { id: string }[])[0].id;
    const carol = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await signIn(carol, 'carol');
    await page.locator('p.live', { hasText: 'Live' }).waitFor();

    // her DELETE is held while the inbox is open: it shows up without a reload (the inbox polls every second)
    const held = psql(await credentialUri(carolToken), 'DELETE FROM customers');
    const approval = await pendingApproval('DELETE FROM customers', 'carol');
    const listed = Date.now();
    const card = page.locator(`li.approval[data-approval="${approval.id}"]`);
    await card.waitFor();
    console.info(`inbox showed the held statement ${Date.now() - listed} ms after the api listed it (target ≤ 2 s; not asserted: shared machine)`);
    expect(await card.getByRole('button', { name: 'Approve' }).isDisabled()).toBe(true);
    expect(await card.getByRole('button', { name: 'Deny' }).isDisabled()).toBe(true);
    expect(await card.locator('.why').textContent()).toMatch(/four-eyes/);
    // the API refuses it too, asked from her signed-in page
    const refused = await page.evaluate(async (id) => {
      const r = await fetch(`/v1/approvals/${id}/approve`, { method: 'POST', headers: { 'x-portcullis-console': '1', 'content-type': 'application/json' }, body: '{}' });
      return { status: r.status, body: await r.json() };
    }, approval.id);
    expect(refused.status).toBe(403);
    expect(refused.body.error.code).toBe('four_eyes');
    // without the console's header the cookie is not a credential (a cross-site form cannot send it)
    const noHeader = await page.evaluate(async (id) => (await fetch(`/v1/approvals/${id}/approve`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).status, approval.id);
    expect(noHeader).toBe(401);

    // sessions: her own only; the agent's deep link is a clear "not found"
    await page.getByRole('link', { name: 'Sessions' }).click();
    await page.locator('table.sessions, p.empty').first().waitFor();
    expect(await page.locator(`a[href="/console/sessions/${agentSession}"]`).count()).toBe(0);
    const rows = await page.locator('table.sessions tbody tr').allTextContents();
    expect(rows.every((r) => r.includes('carol'))).toBe(true);
    await page.goto(`${demo.api}/console/sessions/${agentSession}`);
    await page.getByRole('heading', { name: 'Session not found' }).waitFor();
    expect(await page.locator('.not-found').textContent()).toMatch(/does not exist, or it is not yours/);

    held.child.kill('SIGTERM');
    await held.done;
    await carol.close();
  }, 90_000);

  it('a terminal recording plays in the session page (asciinema-player under the console\'s CSP)', async () => {
    // a recorded shell session, published as a gateway does (signed events on the stack's stream)
    const key = deriveKey(Buffer.from(readFileSync(join(demo.home, 'master-key'), 'utf8').trim(), 'hex'), 'event-signing');
    const sid = `console-term-${randomUUID()}`;
    const steps: [WireEvent['type'], Record<string, unknown>][] = [
      ['session.start', { clientAddr: '127.0.0.1:50000', user: 'agent:demo', applicationName: 'ssh' }],
      ['terminal', { stream: 'shell-1', event: 'start', t: 0, width: 80, height: 24, command: 'bash' }],
      ['terminal', { stream: 'shell-1', event: 'o', t: 0.1, data: '$ echo hello\r\n' }],
      ['terminal', { stream: 'shell-1', event: 'o', t: 0.2, data: 'hello from the recorded terminal\r\n' }],
      ['terminal', { stream: 'shell-1', event: 'end', t: 0.3 }],
      ['session.end', { reason: 'client' }],
    ];
    const events = steps.map(([type, data], i) => signEvent({ id: randomUUID(), sessionId: sid, seq: i + 1, time: new Date().toISOString(), type, identity: 'agent:demo', connection: 'demo', gateway: 'gw-console-test', data }, key));
    const nc = await connect({ servers: process.env.NATS_URL ?? 'nats://127.0.0.1:4222' });
    const js = jetstream(nc);
    for (const e of events) await js.publish(natsNames(demo.natsPrefix).sessionEvents(sid), JSON.stringify(e), { msgID: e.id });
    await nc.close();
    await expect.poll(async () => (await demo.rest('GET', `/v1/sessions/${sid}`, demo.bootstrap)).json?.events, { timeout: 30_000 }).toBe(events.length);

    const bob = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await signIn(bob, 'bob');
    const cspErrors: string[] = [];
    page.on('console', (m) => {
      if (/Content Security Policy/i.test(m.text())) cspErrors.push(m.text());
    });
    page.on('pageerror', (e) => cspErrors.push(e.message));
    await page.goto(`${demo.api}/console/sessions/${sid}`);
    const player = page.locator('.recording .ap-player');
    await player.waitFor();
    await player.click();
    await expect.poll(() => page.locator('.recording').textContent(), { timeout: 15_000 }).toContain('hello from the recorded terminal');
    await page.screenshot({ path: `${SHOTS}recording.png`, fullPage: true });
    expect(cspErrors).toEqual([]);
    await bob.close();
  }, 60_000);

  it('alice sees the fleet (gateway live, config revision, live sessions), connections with their policy, and dry-runs a statement', async () => {
    const alice = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await signIn(alice, 'alice');
    await page.getByRole('link', { name: 'Fleet & config' }).click();
    const gateway = page.locator('tr', { hasText: 'e2e-console' });
    await gateway.waitFor();
    expect(await gateway.textContent()).toMatch(/live/);
    expect(await page.locator('tr', { hasText: 'demo' }).first().textContent()).toMatch(/postgres.*default/);
    await page.locator('.dry-run textarea').fill('DELETE FROM customers');
    await page.getByRole('button', { name: 'Evaluate' }).click();
    const verdict = page.locator('[data-dry-run]');
    await verdict.waitFor();
    expect(await verdict.getAttribute('data-dry-run')).toBe('require_approval');
    expect(await verdict.textContent()).toContain('bulk-writes');
    await page.screenshot({ path: `${SHOTS}fleet.png`, fullPage: true });
    await alice.close();
  }, 60_000);

  it('bob revokes a running access grant from the inbox (Revoke now, with a reason): the psql session resting on it ends with the FATAL that says so', async () => {
    const before = await demo.rest('GET', '/v1/connections/demo', demo.bootstrap);
    // demo admits admins only: agent:demo needs a grant
    expect((await demo.rest('PATCH', '/v1/connections/demo', demo.bootstrap, { allowedGroups: ['admins'] })).status).toBe(200);
    try {
      const agent = await agentToken();
      const asked = await demo.rest('POST', '/v1/access-requests', agent, { connection: 'demo', durationSeconds: 3600, reason: 'console: incident 9' });
      const bobToken = (await loginThroughApi(demo.api, 'bob', 'bob')).access_token;
      expect((await demo.rest('POST', `/v1/access-requests/${asked.json.id}/approve`, bobToken, {})).status).toBe(200);
      const session = psql(await credentialUri(agent), 'SELECT pg_sleep(120)');
      // open and busy through the gateway before the revocation
      const admin = new pg.Client({ connectionString: `postgresql://postgres@127.0.0.1:5432/${demo.demoDb}` });
      await admin.connect();
      try {
        await expect.poll(async () => (await admin.query("SELECT 1 FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(120)'")).rowCount, { timeout: 30_000 }).toBeGreaterThan(0);
      } finally {
        await admin.end();
      }
      const bob = await browser.newContext({ viewport: { width: 1280, height: 900 } });
      const page = await signIn(bob, 'bob');
      const card = page.locator(`li.grant[data-access-grant="${asked.json.id}"]`);
      await card.waitFor();
      expect(await card.textContent()).toContain('agent:demo has access to demo');
      await page.screenshot({ path: `${SHOTS}grants.png`, fullPage: true });
      await card.locator('input.comment').fill('incident closed');
      await card.getByRole('button', { name: 'Revoke now' }).click();
      await page.locator('p.notice', { hasText: 'Revoked: access to demo for agent:demo' }).waitFor();
      await card.waitFor({ state: 'detached' });
      const r = await session.done;
      expect(r.code).not.toBe(0);
      expect(r.out).toContain(`FATAL:  terminating connection: the access grant for connection "demo" (access request ${asked.json.id}) was revoked`);
      expect((await demo.rest('GET', `/v1/access-requests/${asked.json.id}`, bobToken)).json).toMatchObject({ status: 'revoked', revokedBy: 'bob', revokeReason: 'incident closed' });
      await bob.close();
    } finally {
      await demo.rest('PATCH', '/v1/connections/demo', demo.bootstrap, { allowedGroups: before.json.allowedGroups });
    }
  }, 120_000);
});
