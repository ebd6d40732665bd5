// The end-to-end story: the stack started as `pnpm start` starts it, then real programs only —
// the dev IdP, curl-like REST calls, and an interactive psql session through the gateway.
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { browserLogin, clientCredentialsToken, loginThroughApi } from '../support/dev-idp-login.js';
import { startDemoStack, type DemoStack } from '../support/demo-stack.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Collects a child's output and lets a test wait for a pattern in it. */
class Output {
  text = '';
  private waiters: { re: RegExp; from: number; resolve: (m: RegExpMatchArray) => void }[] = [];
  push(chunk: Buffer | string): void {
    this.text += chunk.toString();
    this.waiters = this.waiters.filter((w) => {
      const m = this.text.slice(w.from).match(w.re);
      if (m) w.resolve(m);
      return !m;
    });
  }
  /** Resolves with the first match of `re` after offset `from` (default: anything seen so far). */
  waitFor(re: RegExp, timeoutMs: number, from = 0): Promise<RegExpMatchArray> {
    const m = this.text.slice(from).match(re);
    if (m) return Promise.resolve(m);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${re}; output so far:\n${this.text.slice(-3000)}`)), timeoutMs);
      this.waiters.push({ re, from, resolve: (mm) => (clearTimeout(t), resolve(mm)) });
    });
  }
}

let demo: DemoStack;
let api: string;
let idp: string;
let bootstrap: string;
let demoDb: string;
let rest: DemoStack['rest'];

beforeAll(async () => {
  demo = await startDemoStack('e2e');
  ({ api, idp, bootstrap, demoDb, rest } = demo);
}, 300_000);

afterAll(async () => {
  await demo?.stop();
}, 60_000);

describe('the Portcullis story, end to end', () => {
  it('agent connects with psql; masking, a block, a held DELETE approved by bob, verified and exported', async () => {
    expect(demo.output()).toMatch(/psql/); // the next steps were printed

    // 1. demo-agent: a workload token from the IdP, exchanged for a Portcullis token.
    const workloadJwt = await clientCredentialsToken(idp, 'demo-agent', 'demo-agent-secret', 'portcullis');
    const exchange = await fetch(`${api}/v1/auth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
        subject_token: workloadJwt,
        subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
      }),
    });
    expect(exchange.status).toBe(200);
    const agentToken = ((await exchange.json()) as { access_token: string }).access_token;
    const me = await rest('GET', '/v1/me', agentToken);
    expect(me.json.subject ?? me.json.identity?.subject).toBe('agent:demo');

    // 2. A gateway credential for the demo connection, used as-is by psql.
    const cred = await rest('POST', '/v1/connections/demo/credentials', agentToken, {});
    expect(cred.status).toBe(201);
    expect(cred.json.uri).toMatch(/^postgresql:\/\//);
    expect(cred.json.uri).not.toContain(demoDb); // the client never learns the target

    const direct = new pg.Client({ connectionString: `postgresql://postgres@127.0.0.1:5432/${demoDb}` });
    await direct.connect();
    const psql = spawn('psql', [cred.json.uri, '-X', '-v', 'ON_ERROR_STOP=0', '-P', 'pager=off'], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out = new Output();
    psql.stdout.on('data', (c) => out.push(c));
    psql.stderr.on('data', (c) => out.push(c));
    const send = (line: string) => psql.stdin.write(`${line}\n`);
    try {
      // 3. Masked results: emails partially, card numbers redacted.
      send(`SELECT id, email, card_number FROM customers ORDER BY id LIMIT 3;`);
      const rows = await out.waitFor(/\(3 rows\)/, 20_000);
      const table = out.text.slice(0, rows.index! + out.text.length);
      expect(table).not.toMatch(/\b\d{4}[ -]?\d{4}[ -]?\d{4}[ -]?\d{4}\b/); // no card number in the clear
      expect(table).toMatch(/\*/); // partial masking of emails
      const real = await direct.query('SELECT email, card_number FROM customers ORDER BY id LIMIT 3');
      for (const r of real.rows) {
        expect(out.text).not.toContain(r.email);
        expect(out.text).not.toContain(r.card_number);
      }

      // 4. DROP TABLE is refused with the rule's reason; the session goes on.
      let mark = out.text.length;
      send(`DROP TABLE customers;`);
      await out.waitFor(/ERROR:.*no-destructive-ddl/, 20_000, mark);
      const stillThere = await direct.query('SELECT count(*)::int AS n FROM customers');
      expect(stillThere.rows[0].n).toBeGreaterThan(0);
      const before = stillThere.rows[0].n;

      // 5. DELETE FROM customers is held; psql shows the approval id.
      mark = out.text.length;
      send(`DELETE FROM customers;`);
      const notice = await out.waitFor(/approval ([0-9a-f-]{36})/, 20_000, mark);
      const approvalId = notice[1];
      await new Promise((r) => setTimeout(r, 300));
      expect((await direct.query('SELECT count(*)::int AS n FROM customers')).rows[0].n).toBe(before); // nothing ran yet

      // 6. bob logs in through the IdP and approves over REST; carol (the wrong person) cannot.
      // The approvals app persists the held statement from the queue a moment after the notice.
      let pending = '';
      for (let i = 0; i < 50 && !pending.includes(approvalId); i++) {
        pending = (await rest('GET', '/v1/approvals?status=pending', bootstrap)).text;
        if (!pending.includes(approvalId)) await new Promise((r) => setTimeout(r, 100));
      }
      expect(pending).toContain(approvalId);
      const bob = await loginThroughApi(api, 'bob', 'bob');
      const approve = await rest('POST', `/v1/approvals/${approvalId}/approve`, bob.access_token, { comment: 'ok for the demo' });
      expect(approve.status).toBeLessThan(300);

      // 7. The DELETE completes in the same psql session.
      await out.waitFor(new RegExp(`DELETE ${before}`), 20_000, mark);
      expect((await direct.query('SELECT count(*)::int AS n FROM customers')).rows[0].n).toBe(0);
      send(`SELECT 1 AS still_alive;`);
      await out.waitFor(/still_alive/, 10_000, mark);

      // 8. An admin revokes the gateway credential over REST: the live session ends at once (57P01);
      //    psql learns it at its next command, and cannot reconnect with the revoked credential.
      const jti = (JSON.parse(Buffer.from(String(cred.json.token).split('.')[1]!, 'base64url').toString()) as { jti: string }).jti;
      expect((await rest('POST', '/v1/auth/revoke', bootstrap, { jti })).status).toBeLessThan(300);
      mark = out.text.length;
      psql.stdin.on('error', () => {}); // psql may exit while a probe is on its way
      for (let i = 0; i < 60 && !/credential of this session was revoked/.test(out.text.slice(mark)) && psql.exitCode === null; i++) {
        send(`SELECT 'probe' AS probe;`);
        await new Promise((r) => setTimeout(r, 300));
      }
      await out.waitFor(/FATAL:\s+terminating connection: the gateway credential of this session was revoked/, 10_000, mark);
      if (psql.exitCode === null) send('\\q');
      if (psql.exitCode === null) await new Promise((r) => psql.once('exit', r));
    } finally {
      if (psql.exitCode === null) psql.kill();
      await direct.end();
    }

    // 9. The session's events verify (the recorder persists them asynchronously).
    let session: any;
    for (let i = 0; i < 100 && !session?.endedAt; i++) {
      const list = await rest('GET', `/v1/sessions?identity=${encodeURIComponent('agent:demo')}`, bootstrap);
      const items = Array.isArray(list.json) ? list.json : (list.json?.items ?? list.json?.sessions ?? []);
      session = items[0];
      if (!session?.endedAt) await new Promise((r) => setTimeout(r, 200));
    }
    expect(session?.endedAt).toBeTruthy();
    const verify = await rest('GET', `/v1/sessions/${session.id}/verify`, bootstrap);
    expect(verify.json.valid).toBe(true);
    expect(verify.json.events).toBeGreaterThanOrEqual(8);
    const events = await rest('GET', `/v1/sessions/${session.id}/events`, bootstrap);
    const types = (Array.isArray(events.json) ? events.json : events.json.events).map((e: { type: string }) => e.type);
    expect(types[0]).toBe('session.start');
    // statements psql ran or that were blocked are one `statement` event each; the one held for approval is query, decision, approval, result
    expect(types).toEqual(expect.arrayContaining(['statement', 'query', 'decision', 'result', 'approval.requested', 'approval.decided', 'session.end']));

    // 10. The audit export, JSONL and OCSF: everything above, incl. the approval and the policy in force.
    const pull = async (format: string) => {
      let cursor = '';
      let body = '';
      for (let i = 0; i < 50; i++) {
        const page = await rest('GET', `/v1/audit/events?format=${format}&limit=500${cursor ? `&cursor=${cursor}` : ''}`, bootstrap);
        expect(page.status).toBe(200);
        body += page.text;
        const next = page.headers.get('x-next-cursor');
        if (!next || next === cursor || page.text.trim() === '') break;
        cursor = next;
      }
      return body
        .split('\n')
        .filter((l) => l.trim())
        .map((l) => JSON.parse(l));
    };
    // A stored event shows in the export once every older write transaction on the cluster has ended.
    let jsonl = await pull('jsonl');
    let mine = jsonl.filter((e) => e.sessionId === session.id);
    for (let i = 0; i < 300 && mine.length < types.length; i++) {
      await new Promise((r) => setTimeout(r, 200));
      jsonl = await pull('jsonl');
      mine = jsonl.filter((e) => e.sessionId === session.id);
    }
    expect(mine.map((e) => e.type)).toEqual(types);
    const blocked = mine.find((e) => (e.type === 'decision' || e.type === 'statement') && e.data.action === 'block');
    expect(blocked.data.rule).toBe('no-destructive-ddl');
    expect(mine.find((e) => e.type === 'approval.decided').data).toMatchObject({ approvalId: expect.any(String), status: 'approved' });
    expect(mine.find((e) => e.type === 'session.end').data.reason).toBe('credential_revoked');
    const start = mine.find((e) => e.type === 'session.start');
    expect(start.data.policy).toBe('default');
    expect(start.data.policyVersion).toBeGreaterThanOrEqual(1);
    expect(jsonl.some((e) => e.type === 'policy.changed' && JSON.stringify(e.data).includes('default'))).toBe(true);
    expect(jsonl.some((e) => e.sessionId === null && e.type === 'approval.decided')).toBe(true);
    const ocsf = await pull('ocsf');
    const ocsfMine = ocsf.filter((e) => e.actor?.session?.uid === session.id);
    expect(ocsfMine.map((e) => e.metadata.uid)).toEqual(mine.map((e) => e.id));
    expect(ocsfMine.map((e) => e.class_uid)).toEqual(mine.map((e) => (e.type.startsWith('session.') ? 3002 : 6005))); // Authentication for logon/logoff, Datastore Activity for the rest
    expect(ocsfMine.every((e) => typeof e.time === 'number')).toBe(true);
    // The approval decided over REST is a control-plane event too (API Activity), naming the approval.
    const approvalId = mine.find((e) => e.type === 'approval.requested').data.approvalId;
    expect(ocsf.some((e) => e.class_uid === 6003 && JSON.stringify(e).includes(approvalId))).toBe(true);
  }, 180_000);

  it('the portcullis CLI drives the same stack: login (browser and workload), connect, approvals, sessions, audit', async () => {
    const cliHome = mkdtempSync(join(tmpdir(), 'portcullis-e2e-cli-'));
    const cli = (args: string[], env: Record<string, string> = {}, onStderr?: (text: string) => void) =>
      new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
        const child = spawn(process.execPath, [join(ROOT, 'apps/cli/dist/main.js'), ...args], {
          env: { ...process.env, PORTCULLIS_API: api, PORTCULLIS_CLI_CONFIG: join(cliHome, 'cli.json'), BROWSER: 'true', ...env },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (c) => (stdout += c));
        child.stderr.on('data', (c) => {
          stderr += c;
          onStderr?.(stderr);
        });
        child.once('exit', (code) => resolve({ code, stdout, stderr }));
      });
    try {
      // A person: the browser flow. The CLI prints the login URL; the "browser" here is a scripted one.
      let started = false;
      const login = await cli(['login', '--no-browser'], {}, (text) => {
        const m = text.match(/(http:\/\/\S+\/v1\/auth\/login\S+)/);
        if (m && !started) {
          started = true;
          void browserLogin({ startUrl: m[1], username: 'bob', password: 'bob' });
        }
      });
      expect(login.code, login.stderr).toBe(0);
      expect(login.stdout).toMatch(/bob/);
      const approvals = await cli(['approvals', 'list', '--status', 'all', '--json']);
      expect(approvals.code, approvals.stderr).toBe(0);
      expect(JSON.parse(approvals.stdout).some((a: { status: string }) => a.status === 'approved')).toBe(true);

      // A workload: client credentials at the IdP, exchanged at the api; then a ready psql URI.
      const agent = await cli(['login', '--client-credentials', '--issuer', idp, '--client-id', 'demo-agent', '--client-secret', 'demo-agent-secret']);
      expect(agent.code, agent.stderr).toBe(0);
      const uri = await cli(['connect', 'demo', '--print']);
      expect(uri.code, uri.stderr).toBe(0);
      const psql = await promisify(execFile)('psql', [uri.stdout.trim(), '-XAtc', 'select count(*) from customers']);
      expect(psql.stdout.trim()).toMatch(/^\d+$/);
      // The agent is no auditor: it sees its own sessions (the one psql just made), never another identity's.
      const own = await cli(['sessions', 'list', '--json']);
      expect(own.code, own.stderr).toBe(0);
      const ownList = JSON.parse(own.stdout);
      const ownItems: { identity: string }[] = Array.isArray(ownList) ? ownList : ownList.items;
      expect(ownItems.length).toBeGreaterThanOrEqual(1);
      expect(new Set(ownItems.map((s) => s.identity))).toEqual(new Set(['agent:demo']));

      // An auditor's view with the bootstrap admin token.
      const admin = { PORTCULLIS_TOKEN: bootstrap };
      const sessions = await cli(['sessions', 'list', '--json'], admin);
      expect(sessions.code, sessions.stderr).toBe(0);
      const list = JSON.parse(sessions.stdout);
      const items = Array.isArray(list) ? list : list.items;
      expect(items.length).toBeGreaterThanOrEqual(1);
      const verify = await cli(['sessions', 'verify', items[items.length - 1].id], admin);
      expect(verify.code, verify.stderr + verify.stdout).toBe(0);
      const exported = await cli(['audit', 'export', '--format', 'jsonl', '--limit', '1000'], admin);
      expect(exported.code, exported.stderr).toBe(0);
      const lines = exported.stdout.trim().split('\n').map((l) => JSON.parse(l));
      expect(lines.some((e) => e.type === 'approval.decided')).toBe(true);
    } finally {
      rmSync(cliHome, { recursive: true, force: true });
    }
  }, 120_000);
});
