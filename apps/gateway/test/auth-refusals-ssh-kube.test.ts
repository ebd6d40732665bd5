import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kubeSkipReason } from '../../../test/support/kube-cluster.js';
import { readSessionEvents, waitFor, type Harness } from './support/harness.js';
import type { GatewayKubectl } from './support/kube-gateway.js';
import { startSshKubeWorld, type SshKubeWorld } from './support/ssh-kube-world.js';
import type { SshWorld } from './support/ssh-world.js';

/**
 * Refusals on the SSH and Kubernetes surfaces (issue #19 items 7 and Low): a token spelt another way
 * (trailing `==`, a space) is refused like a forged one, and every refused login — bad, expired,
 * respelt, rate limited — is an `auth.failed` event with the client's address, the identity it
 * claimed, the reason and the connection asked for. Real OpenSSH ssh (sshpass), curl and kubectl.
 */
const kubeSkip = kubeSkipReason();
if (kubeSkip) console.warn(`auth-refusals-ssh-kube: Kubernetes cases skipped: ${kubeSkip}`);

let h: Harness;
let w: SshWorld;
let k: GatewayKubectl | null = null;
let caPem = '';
let dir: string;

let world: SshKubeWorld | undefined;

beforeAll(async () => {
  world = await startSshKubeWorld(kubeSkip);
  ({ h, w, k, caPem } = world);
  dir = mkdtempSync(join(tmpdir(), 'auth-refusals-'));
}, 120_000);

afterAll(async () => {
  await world?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

type AuthFailed = { type: string; connection: string | null; data: { surface: string; source: string | null; identity: string | null; reason: string; target: string; summary: boolean; count: number } };

/** auth.failed events on the gateway's event stream that match `pick`, once there are at least `n`. */
async function authFailed(pick: (e: AuthFailed) => boolean, n = 1): Promise<AuthFailed[]> {
  let found: AuthFailed[] = [];
  await waitFor(async () => {
    const all = (await readSessionEvents(h, undefined, 1, 20_000)) as unknown as AuthFailed[];
    found = all.filter((e) => e.type === 'auth.failed' && pick(e));
    return found.length >= n;
  }, 30_000, 200);
  return found;
}

describe('ssh: refused logins', () => {
  it('a credential respelt (trailing ==, a trailing space) is refused like a forged one, and each refusal is on the trail', async () => {
    const token = await h.credential({ cn: 'box', sub: 'user:respelt' });
    expect((await w.ssh(token, ['echo', 'in'])).stdout).toBe('in\n');
    for (const spelling of [`${token}==`, `${token} `]) {
      const r = await w.ssh(spelling, ['echo', 'in']);
      expect(r.code).not.toBe(0);
      expect(r.stdout).toBe('');
      expect(r.stderr).toContain('credential refused: invalid gateway credential');
    }
    const [e] = await authFailed((x) => x.data.identity === 'user:respelt');
    expect(e!.data).toMatchObject({ surface: 'gateway', source: '127.0.0.1', identity: 'user:respelt', reason: 'invalid', target: 'box' });
  }, 90_000);

  it('an expired credential and a password that is no token; past the per-address limit the refusals (not verified) are recorded as rate_limited', async () => {
    const expired = await h.credential({ cn: 'box', sub: 'user:late', exp: Math.floor(Date.now() / 1000) - 120 });
    expect((await w.ssh(expired, ['true'])).stderr).toContain('gateway credential has expired');
    expect((await w.ssh('hunter2', ['true'])).stderr).toContain('invalid gateway credential');
    const [late] = await authFailed((x) => x.data.identity === 'user:late');
    expect(late!.data).toMatchObject({ source: '127.0.0.1', reason: 'expired', target: 'box' });
    const [plain] = await authFailed((x) => x.data.identity === null && x.data.reason === 'invalid' && x.data.target === 'box');
    expect(plain!.data.source).toBe('127.0.0.1');
    // the limit is 10 failures a minute per address (the two of the test above count too)
    for (let i = 0; i < 10; i++) await w.ssh('wrong', ['true']);
    const limited = await w.ssh(await h.credential({ cn: 'box', sub: 'user:after-limit' }), ['true']);
    expect(limited.stderr).toContain('too many failed logins from this address');
    // (attempts of the loop past the limit are rate_limited too, under their own claimed identity)
    const [rl] = await authFailed((x) => x.data.reason === 'rate_limited' && x.data.identity === 'user:after-limit');
    expect(rl!.data).toMatchObject({ source: '127.0.0.1', target: 'box', summary: false });
  }, 180_000);
});

describe.skipIf(!!kubeSkip)('kubernetes: refused requests', () => {
  const curl = (authorization: string | null): Promise<{ status: number; body: Record<string, unknown> }> => {
    const ca = join(dir, 'ca.pem');
    writeFileSync(ca, caPem);
    const args = ['-sS', '--cacert', ca, '-w', '\n%{http_code}', ...(authorization !== null ? ['-H', `Authorization: ${authorization}`] : []), `https://127.0.0.1:${h.gateway.kubePort}/k8s/kube/api/v1/namespaces`];
    return new Promise((resolve, reject) => {
      const p = spawn('curl', args, { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      p.stdout.on('data', (b: Buffer) => (out += b.toString()));
      p.on('close', (code) => {
        if (code !== 0) return reject(new Error(`curl exited ${code}`));
        const cut = out.lastIndexOf('\n');
        resolve({ status: Number(out.slice(cut + 1)), body: JSON.parse(out.slice(0, cut)) as Record<string, unknown> });
      });
    });
  };

  it('a bearer token respelt (trailing ==, padding inside) is refused (401) like a forged one; no token, an expired one: each on the trail', async () => {
    const token = await h.credential({ cn: 'kube', sub: 'user:kube-respelt' });
    expect((await curl(`Bearer ${token}`)).status).toBe(200);
    for (const spelling of [`${token}==`, `${token.replace(/\.([^.]*)$/, '.$1=')}`]) {
      const r = await curl(`Bearer ${spelling}`);
      expect(r.status).toBe(401);
      expect(r.body).toMatchObject({ kind: 'Status', reason: 'Unauthorized', message: 'invalid gateway credential' });
    }
    expect((await curl(null)).status).toBe(401);
    const expired = await h.credential({ cn: 'kube', sub: 'user:kube-late', exp: Math.floor(Date.now() / 1000) - 120 });
    const file = k!.kubeconfig(h.gateway, 'kube', expired);
    const r = await k!.run(file, ['get', 'ns']);
    expect(r.code).toBe(1);
    // kubectl words every 401 its own way; the reason is on the trail
    expect(r.stderr).toContain('the server has asked for the client to provide credentials');
    const [respelt] = await authFailed((x) => x.data.identity === 'user:kube-respelt');
    expect(respelt!.data).toMatchObject({ surface: 'gateway', source: '127.0.0.1', reason: 'invalid', target: 'kube' });
    const [late] = await authFailed((x) => x.data.identity === 'user:kube-late');
    expect(late!.data).toMatchObject({ source: '127.0.0.1', reason: 'expired', target: 'kube' });
    const [none] = await authFailed((x) => x.data.target === 'kube' && x.data.identity === null && x.data.reason === 'invalid');
    expect(none!.data.source).toBe('127.0.0.1');
  }, 90_000);
});
