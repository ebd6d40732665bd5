// kubectl through the stack as `pnpm start` runs it, with nothing but what the control plane hands out:
// an admin registers a real kube-apiserver over REST, the demo agent runs `portcullis kubeconfig`, and
// kubectl — running `portcullis kube-credential` as its exec plugin — talks to the gateway's HTTPS
// listener (pinned to the pool CA), which talks to the API server with the connection's own token.
import { execFile, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoAgentApiToken, loginThroughApi } from '../support/dev-idp-login.js';
import { startDemoStack, type DemoStack } from '../support/demo-stack.js';
import { kubeSkipReason, runKubectl, startKubeCluster, type KubeCluster } from '../support/kube-cluster.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const skip = kubeSkipReason();

describe.skipIf(skip !== null)(`kubectl with a kubeconfig from the api, through the gateway (${skip ?? 'kube-apiserver and kubectl found'})`, () => {
  let s: DemoStack;
  let cluster: KubeCluster;
  let token: string;
  const dir = mkdtempSync(join(tmpdir(), 'kubectl-kubeconfig-'));
  beforeAll(async () => {
    [s, cluster] = await Promise.all([startDemoStack('kubecfg'), startKubeCluster()]);
    token = await demoAgentApiToken(s.idp, s.api);
    const c = await s.rest('POST', '/v1/connections', s.bootstrap, {
      name: 'demo-k8s', type: 'kubernetes', server: cluster.server, caPem: cluster.caPem, secret: { token: cluster.adminToken }, allowedGroups: ['engineers'],
    });
    expect(c.status, c.text).toBe(201);
  }, 300_000);
  afterAll(async () => {
    await Promise.all([s?.stop(), cluster?.stop()]);
    rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('portcullis kubeconfig + the kube-credential plugin: kubectl lists namespaces through the gateway', async () => {
    const home = join(dir, 'home');
    const env = { ...process.env, HOME: home, PORTCULLIS_API: s.api, PORTCULLIS_TOKEN: token, PORTCULLIS_CLI_CONFIG: join(home, 'cli.json') };
    const file = join(dir, 'kubeconfig');
    await run(process.execPath, [join(ROOT, 'apps/cli/dist/main.js'), 'kubeconfig', 'demo-k8s', '--output', file], { env });
    // `portcullis` on PATH for kubectl's exec plugin
    const bin = join(dir, 'bin');
    mkdirSync(bin, { recursive: true });
    writeFileSync(join(bin, 'portcullis'), `#!/bin/sh\nexec "${process.execPath}" "${join(ROOT, 'apps/cli/dist/main.js')}" "$@"\n`);
    chmodSync(join(bin, 'portcullis'), 0o755);
    // the gateway takes its new config (the connection) within moments of the REST call
    let out = { code: 1, stdout: '', stderr: '' };
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      out = await runKubectl(cluster.bins.kubectl, ['--kubeconfig', file, 'get', 'ns', '-o', 'name'], { env: { ...env, PATH: `${bin}:${process.env.PATH}` } });
      if (out.code === 0) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout).toContain('namespace/default');
    expect(out.stdout).toContain('namespace/kube-system');
    // a static-token kubeconfig works the same for an agent without the plugin
    const st = await s.rest('GET', '/v1/connections/demo-k8s/kubeconfig?token=static', token);
    writeFileSync(join(dir, 'static'), st.text);
    const again = await runKubectl(cluster.bins.kubectl, ['--kubeconfig', join(dir, 'static'), 'get', 'ns', 'default', '-o', 'name']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout.trim()).toBe('namespace/default');
  });

  it('revoking the api token a static kubeconfig was minted with ends its open watch and refuses the next kubectl call', async () => {
    const own = await demoAgentApiToken(s.idp, s.api);
    const st = await s.rest('GET', '/v1/connections/demo-k8s/kubeconfig?token=static', own);
    expect(st.status, st.text).toBe(200);
    const file = join(dir, 'static-revoked');
    writeFileSync(file, st.text);
    const ok = await runKubectl(cluster.bins.kubectl, ['--kubeconfig', file, 'get', 'ns', 'default', '-o', 'name']);
    expect(ok.code, ok.stderr).toBe(0);
    // an open watch through the gateway
    const watch = spawn(cluster.bins.kubectl, ['--kubeconfig', file, 'get', 'ns', '--watch', '-o', 'name'], {
      env: { ...process.env, HOME: dir, KUBECACHEDIR: join(dir, 'kubecache-watch') }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    watch.stdout.on('data', (b: Buffer) => (out += b.toString()));
    watch.stderr.on('data', (b: Buffer) => (out += b.toString()));
    const ended = new Promise<number | null>((resolve) => watch.on('close', resolve));
    try {
      const deadline = Date.now() + 30_000;
      while (!out.includes('namespace/default')) {
        if (Date.now() > deadline || watch.exitCode !== null) throw new Error(`the watch did not start: ${out}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      const jti = (JSON.parse(Buffer.from(own.split('.')[1]!, 'base64url').toString()) as { jti: string }).jti;
      expect((await s.rest('POST', '/v1/auth/revoke', own, { jti })).status).toBeLessThan(300);
      const r = await Promise.race([ended, new Promise<'still watching'>((res) => setTimeout(() => res('still watching'), 20_000))]);
      expect(r, out).not.toBe('still watching');
    } finally {
      watch.kill('SIGKILL');
    }
    const refused = await runKubectl(cluster.bins.kubectl, ['--kubeconfig', file, 'get', 'ns', 'default', '-o', 'name']);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/Unauthorized|revoked/);
    expect(refused.stdout).not.toContain('namespace/default');
  }, 120_000);
});

// The exec plugin's cache after its credential dies: client-go runs the plugin again after a 401 (it does
// not retry the request), and the plugin, asked again by the same kubectl process, mints a new credential —
// or, when none can be had, drops the dead one and says why.
describe.skipIf(skip !== null)(`kube-credential after its cached credential is revoked (${skip ?? 'kube-apiserver and kubectl found'})`, () => {
  let s: DemoStack;
  let cluster: KubeCluster;
  const dir = mkdtempSync(join(tmpdir(), 'kubectl-plugin-revoked-'));
  const bin = join(dir, 'bin');
  const CLI = join(ROOT, 'apps/cli/dist/main.js');
  const jwt = (t: string) => JSON.parse(Buffer.from(t.split('.')[1]!, 'base64url').toString()) as { jti: string; grant?: string };
  beforeAll(async () => {
    [s, cluster] = await Promise.all([startDemoStack('kubeplug'), startKubeCluster()]);
    for (const [name, allowedGroups] of [['plug-k8s', ['engineers']], ['plug-k8s-granted', ['admins']]] as const) {
      // the demo policy names the approvers of access requests (bob)
      const c = await s.rest('POST', '/v1/connections', s.bootstrap, { name, type: 'kubernetes', server: cluster.server, caPem: cluster.caPem, secret: { token: cluster.adminToken }, allowedGroups, policy: 'default' });
      expect(c.status, c.text).toBe(201);
    }
    mkdirSync(bin, { recursive: true });
    writeFileSync(join(bin, 'portcullis'), `#!/bin/sh\nexec "${process.execPath}" "${CLI}" "$@"\n`);
    chmodSync(join(bin, 'portcullis'), 0o755);
  }, 300_000);
  afterAll(async () => {
    await Promise.all([s?.stop(), cluster?.stop()]);
    rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  /** A signed-in CLI home with a kubeconfig for `connection` that runs the plugin; kubectl with it. */
  async function kubectlWithPlugin(tag: string, connection: string, token: string) {
    const home = join(dir, tag);
    const env = { HOME: home, PATH: `${bin}:${process.env.PATH}`, PORTCULLIS_API: s.api, PORTCULLIS_TOKEN: token, PORTCULLIS_CLI_CONFIG: join(home, 'cli.json'), KUBECACHEDIR: join(home, 'kubecache') };
    const file = join(home, 'kubeconfig');
    await run(process.execPath, [CLI, 'kubeconfig', connection, '--output', file], { env: { ...process.env, ...env } });
    const kubectl = (args: string[], extra: Record<string, string> = {}) => runKubectl(cluster.bins.kubectl, ['--kubeconfig', file, ...args], { env: { ...env, ...extra } });
    const cacheDir = join(home, '.portcullis', 'kube');
    const cached = (): string | null => {
      const scopes = existsSync(cacheDir) ? readdirSync(cacheDir) : [];
      const f = scopes.map((d) => join(cacheDir, d, `${connection}.json`)).find((p) => existsSync(p));
      return f ? (JSON.parse(readFileSync(f, 'utf8')) as { token: string }).token : null;
    };
    return { kubectl, cached };
  }

  /** Until the gateway refuses `token` (its snapshot with the revocation has landed): kubectl with the token itself, no plugin. */
  async function untilRefused(kubectl: (args: string[]) => Promise<{ code: number; stderr: string }>, token: string): Promise<void> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const r = await kubectl(['--token', token, 'get', 'ns', 'default', '-o', 'name']);
      if (r.code !== 0 && /You must be logged in to the server/.test(r.stderr)) return;
      if (Date.now() > deadline) throw new Error(`the gateway still takes the revoked credential: ${r.stderr}`);
      await new Promise((r2) => setTimeout(r2, 200));
    }
  }

  async function untilWorks(kubectl: (args: string[]) => Promise<{ code: number; stdout: string; stderr: string }>): Promise<void> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const r = await kubectl(['get', 'ns', 'default', '-o', 'name']);
      if (r.code === 0) return;
      if (Date.now() > deadline) throw new Error(`kubectl never got through: ${r.stderr}`);
      await new Promise((r2) => setTimeout(r2, 500));
    }
  }

  it('a revoked cached credential: the kubectl call that meets the 401 makes the plugin mint a new one, the next call works, later calls ask the api nothing', async () => {
    const token = await demoAgentApiToken(s.idp, s.api);
    const { kubectl, cached } = await kubectlWithPlugin('revoked', 'plug-k8s', token);
    await untilWorks(kubectl);
    const old = cached()!;
    expect(old).toBeTruthy();
    expect((await s.rest('POST', '/v1/auth/revoke', token, { jti: jwt(old).jti })).status).toBeLessThan(300);
    await untilRefused(kubectl, old);
    const meets401 = await kubectl(['get', 'ns', 'default', '-o', 'name']);
    const fresh = cached();
    expect(fresh, meets401.stderr).not.toBe(old);
    const after = await kubectl(['get', 'ns', 'default', '-o', 'name']);
    expect(after.code, after.stderr).toBe(0);
    expect(after.stdout.trim()).toBe('namespace/default');
    // from the cache again: the same credential, no new one
    for (let i = 0; i < 3; i++) expect((await kubectl(['get', 'ns', 'default', '-o', 'name'])).code).toBe(0);
    expect(cached()).toBe(fresh);
  }, 120_000);

  it('its access grant revoked: the plugin drops the dead credential and kubectl prints why no new one comes, on that call and the next', async () => {
    const agent = await demoAgentApiToken(s.idp, s.api);
    const bob = (await loginThroughApi(s.api, 'bob', 'bob')).access_token;
    const asked = await s.rest('POST', '/v1/access-requests', agent, { connection: 'plug-k8s-granted', durationSeconds: 3600, reason: 'e2e: kube incident' });
    expect(asked.status, asked.text).toBe(201);
    const id = asked.json.id as string;
    expect((await s.rest('POST', `/v1/access-requests/${id}/approve`, bob, {})).status).toBe(200);
    const { kubectl, cached } = await kubectlWithPlugin('granted', 'plug-k8s-granted', agent);
    await untilWorks(kubectl);
    const old = cached()!;
    expect(jwt(old).grant).toBe(id);
    expect((await s.rest('POST', `/v1/access-requests/${id}/revoke`, bob, { reason: 'done' })).status).toBe(200);
    await untilRefused(kubectl, old);
    const meets401 = await kubectl(['get', 'ns', 'default', '-o', 'name']);
    expect(meets401.code).not.toBe(0);
    expect(meets401.stderr).toContain('the gateway refused the cached credential for connection "plug-k8s-granted" and the api gives no new one');
    expect(meets401.stderr).toMatch(/may not use connection "plug-k8s-granted"/);
    expect(cached()).toBeNull();
    const next = await kubectl(['get', 'ns', 'default', '-o', 'name']);
    expect(next.code).not.toBe(0);
    expect(next.stderr).toMatch(/may not use connection "plug-k8s-granted"/);
    expect(next.stdout).not.toContain('namespace/default');
  }, 120_000);
});
