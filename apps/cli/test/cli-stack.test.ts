// The CLI against a running stack (`pnpm start`): set PORTCULLIS_STACK_API (e.g. http://127.0.0.1:8080),
// PORTCULLIS_STACK_IDP (http://127.0.0.1:8090) and PORTCULLIS_STACK_BOOTSTRAP (the bootstrap token).
// Skipped otherwise; the end-to-end story test starts its own stack.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { browserLogin } from '../../../test/support/dev-idp-login.js';
import { run } from '../src/cli.js';

const api = process.env.PORTCULLIS_STACK_API;
const idp = process.env.PORTCULLIS_STACK_IDP;
const bootstrap = process.env.PORTCULLIS_STACK_BOOTSTRAP;
const dir = mkdtempSync(join(tmpdir(), 'portcullis-cli-stack-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function io(env: Record<string, string | undefined> = {}, openBrowser: (url: string) => void = () => undefined) {
  const out = { text: '', write(s: string) { this.text += s; return true; } };
  const err = { text: '', write(s: string) { this.text += s; return true; } };
  return { out, err, ctx: { env: { PATH: process.env.PATH, PORTCULLIS_API: api, PORTCULLIS_CLI_CONFIG: join(dir, 'cli.json'), ...env }, stdout: out, stderr: err, openBrowser, signal: new AbortController().signal } };
}

describe.skipIf(!api || !idp || !bootstrap)('portcullis CLI against the running stack', () => {
  it('logs in as bob through the browser flow (dev IdP) and sees his groups', async () => {
    const a = io({}, (url) => {
      void browserLogin({ startUrl: url, username: 'bob', password: 'bob' });
    });
    expect(await run(['login'], a.ctx), a.err.text).toBe(0);
    expect(a.out.text).toMatch(/as bob \(groups [^)]*approvers/);
  });

  it('logs in as the demo agent with client credentials and gets a connection URI', async () => {
    const a = io();
    expect(await run(['login', '--client-credentials', '--issuer', idp!, '--client-id', 'demo-agent', '--client-secret', 'demo-agent-secret'], a.ctx), a.err.text).toBe(0);
    expect(a.out.text).toContain('as agent:demo');
    const b = io();
    expect(await run(['connect', 'demo', '--print'], b.ctx), b.err.text).toBe(0);
    expect(b.out.text).toMatch(/^postgresql:\/\/.+@.+\/demo\?/);
  });

  it('lists approvals with the bootstrap token', async () => {
    const a = io({ PORTCULLIS_TOKEN: bootstrap });
    expect(await run(['approvals', 'list', '--status', 'all'], a.ctx), a.err.text).toBe(0);
  });
});
