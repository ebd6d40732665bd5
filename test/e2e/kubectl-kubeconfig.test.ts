// kubectl through the stack as `pnpm start` runs it, with nothing but what the control plane hands out:
// an admin registers a real kube-apiserver over REST, the demo agent runs `portcullis kubeconfig`, and
// kubectl — running `portcullis kube-credential` as its exec plugin — talks to the gateway's HTTPS
// listener (pinned to the pool CA), which talks to the API server with the connection's own token.
import { execFile, spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoAgentApiToken } from '../support/dev-idp-login.js';
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
