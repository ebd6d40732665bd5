import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kubeSkipReason, startKubeCluster, type KubeCluster } from '../../../test/support/kube-cluster.js';
import { startHarness, waitFor, type Harness } from './support/harness.js';
import { GatewayKubectl, kubeConnection, poolTls } from './support/kube-gateway.js';

/**
 * The memory a Kubernetes client can make the gateway hold (issue #19 item 9): request bodies and the
 * responses it masks are taken from the process budget (GATEWAY_BUFFER_BYTES) and from the caller's
 * share (GATEWAY_SESSION_BUFFER_BYTES per identity, across its connections) as they arrive. Past either
 * the request is refused with 503 + Retry-After (kubectl retries), and what it held is given back.
 * curl, raw TLS clients and kubectl against a real kube-apiserver; a gateway with a 4 MiB budget and
 * 2 MiB shares.
 */
const skip = kubeSkipReason();
if (skip) console.warn(`k8s-buffer-budget: skipped: ${skip}`);

const MiB = 1024 * 1024;
const BUDGET = 4 * MiB;
const SHARE = 2 * MiB;
const POLICY = { name: 'mask', guardrails: [], masking: [{ name: 'pii', detectors: ['EMAIL'], strategy: 'redact' }] };

describe.skipIf(!!skip)('kubernetes buffer budget', () => {
  let cluster: KubeCluster;
  let h: Harness;
  let k: GatewayKubectl;
  let caPem: string;
  let dir: string;

  beforeAll(async () => {
    cluster = await startKubeCluster();
    const tls = await poolTls();
    caPem = tls.caPem;
    h = await startHarness({
      tls,
      connections: [kubeConnection(cluster, { name: 'kube', policy: POLICY.name })],
      policies: [{ name: POLICY.name, version: 1, document: POLICY }],
      env: { GATEWAY_BUFFER_BYTES: String(BUDGET), GATEWAY_SESSION_BUFFER_BYTES: String(SHARE) },
    });
    k = new GatewayKubectl(cluster, tls.caPem);
    dir = mkdtempSync(join(tmpdir(), 'k8s-budget-'));
  }, 120_000);

  afterAll(async () => {
    await h?.stop();
    await cluster?.stop();
    k?.cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const configMap = (name: string, bytes: number) => JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name }, data: { x: 'a'.repeat(bytes) } });
  const path = '/k8s/kube/api/v1/namespaces/default/configmaps';

  /** curl POSTs `body` (from a file), chunked when asked; resolves with status, headers and body. */
  const curl = async (token: string, body: string, chunked = false): Promise<{ status: number; headers: string; body: string }> => {
    const file = join(dir, `body-${Math.random().toString(36).slice(2)}`);
    writeFileSync(file, body);
    const ca = join(dir, 'ca.pem');
    writeFileSync(ca, caPem);
    const args = ['-sS', '--cacert', ca, '-D', '-', '-X', 'POST', '-H', `Authorization: Bearer ${token}`, '-H', 'Content-Type: application/json',
      ...(chunked ? ['-H', 'Transfer-Encoding: chunked'] : []), '--data-binary', `@${file}`, `https://127.0.0.1:${h.gateway.kubePort}${path}`];
    const out = await new Promise<string>((resolve, reject) => {
      const p = spawn('curl', args, { stdio: ['ignore', 'pipe', 'pipe'] });
      let s = '';
      let e = '';
      p.stdout.on('data', (b: Buffer) => (s += b.toString()));
      p.stderr.on('data', (b: Buffer) => (e += b.toString()));
      p.on('close', (code) => (code === 0 ? resolve(s) : reject(new Error(`curl ${code}: ${e}`))));
    });
    const cut = out.lastIndexOf('\r\n\r\n');
    const headers = out.slice(0, cut);
    const status = Number(/HTTP\/[\d.]+ (\d+)/g.exec(headers.split('\r\n\r\n').at(-1) ?? '')?.[1]);
    return { status, headers, body: out.slice(cut + 4) };
  };

  /** A client that sends a request's headers and `sent` of its `declared` body bytes, then waits. */
  const stalled = async (token: string, declared: number, sent: number): Promise<{ socket: TLSSocket; finish(): Promise<string> }> => {
    const socket = tlsConnect({ host: '127.0.0.1', port: h.gateway.kubePort, ca: caPem, servername: 'localhost' });
    await new Promise<void>((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject));
    let answer = '';
    socket.on('data', (b: Buffer) => (answer += b.toString()));
    socket.on('error', () => undefined);
    const body = configMap(`stalled-${Math.random().toString(36).slice(2)}`, declared - 100);
    const bytes = Buffer.from(body);
    socket.write(`POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: ${bytes.length}\r\n\r\n`);
    socket.write(bytes.subarray(0, sent));
    return {
      socket,
      finish: async () => {
        socket.write(bytes.subarray(sent));
        await waitFor(() => /\r\n\r\n/.test(answer), 30_000, 20);
        socket.destroy();
        return answer;
      },
    };
  };

  it('a body larger than an identity\'s share is refused whole (413), with a declared length and chunked', async () => {
    const token = await h.credential({ cn: 'kube', sub: 'big' });
    for (const chunked of [false, true]) {
      const r = await curl(token, configMap('too-big', 3 * MiB), chunked);
      expect(r.status).toBe(413);
      expect(JSON.parse(r.body)).toMatchObject({ kind: 'Status', reason: 'RequestEntityTooLarge', message: expect.stringContaining(`(${SHARE} bytes)`) });
    }
    expect(h.gateway.buffers.inUse).toBe(0);
  });

  it('bodies in flight never hold more than the process budget: past it a request is refused with 503 + Retry-After; it goes through once they are done', async () => {
    const a = await stalled(await h.credential({ cn: 'kube', sub: 'alice' }), 1.95 * MiB, 1.9 * MiB);
    const b = await stalled(await h.credential({ cn: 'kube', sub: 'bob' }), 1.95 * MiB, 1.9 * MiB);
    await waitFor(() => h.gateway.buffers.inUse >= 3.7 * MiB, 30_000, 20);
    expect(h.gateway.buffers.inUse).toBeLessThanOrEqual(BUDGET);
    const carol = await h.credential({ cn: 'kube', sub: 'carol' });
    const refused = await curl(carol, configMap('carol-1', MiB));
    expect(refused.status).toBe(503);
    expect(refused.headers).toMatch(/retry-after: 1/i);
    expect(JSON.parse(refused.body)).toMatchObject({ reason: 'ServiceUnavailable', message: expect.stringContaining('GATEWAY_BUFFER_BYTES') });
    expect(h.gateway.buffers.inUse).toBeLessThanOrEqual(BUDGET);
    // the held requests finish: the API server answers them (not the gateway's 503)
    for (const answer of [await a.finish(), await b.finish()]) expect(answer).not.toMatch(/^HTTP\/1\.1 503/);
    await waitFor(() => h.gateway.buffers.inUse === 0, 30_000, 20);
    const again = await curl(carol, configMap('carol-2', MiB));
    expect(again.status).toBe(201);
    await waitFor(() => h.gateway.buffers.inUse === 0, 30_000, 20);
  }, 120_000);

  it('one identity\'s share spans its connections and credentials: a second body past it is refused (503, names GATEWAY_SESSION_BUFFER_BYTES)', async () => {
    const held = await stalled(await h.credential({ cn: 'kube', sub: 'dave' }), 1.95 * MiB, 1.9 * MiB);
    await waitFor(() => h.gateway.buffers.inUse >= 1.85 * MiB, 30_000, 20);
    const second = await curl(await h.credential({ cn: 'kube', sub: 'dave' }), configMap('dave-2', 0.5 * MiB));
    expect(second.status).toBe(503);
    expect(JSON.parse(second.body).message).toContain('GATEWAY_SESSION_BUFFER_BYTES');
    // another identity is not held to dave's share
    const erin = await curl(await h.credential({ cn: 'kube', sub: 'erin' }), configMap('erin-1', 0.5 * MiB));
    expect(erin.status).toBe(201);
    expect(await held.finish()).not.toMatch(/^HTTP\/1\.1 503/);
    await waitFor(() => h.gateway.buffers.inUse === 0, 30_000, 20);
  }, 120_000);

  it('kubectl: a list the policy masks that is larger than the share is withheld (never passed raw), small ones are masked; nothing stays held', async () => {
    for (const name of ['big-1', 'big-2', 'big-3']) {
      const r = await cluster.kubectl(['create', '-f', '-'], { input: configMap(name, 900 * 1024) });
      expect(r.code, r.stderr).toBe(0);
    }
    const kc = k.kubeconfig(h.gateway, 'kube', await h.credential({ cn: 'kube', sub: 'frank' }));
    const list = await k.run(kc, ['get', 'configmaps', '-o', 'json']);
    expect(list.code).toBe(1);
    expect(list.stderr).toContain(`the response was withheld because the policy masks it and it is larger than ${SHARE} bytes`);
    const one = await k.run(kc, ['get', 'configmap', 'big-1', '-o', 'jsonpath={.metadata.name}']);
    expect(one.code, one.stderr).toBe(0);
    expect(one.stdout).toBe('big-1');
    await waitFor(() => h.gateway.buffers.inUse === 0, 30_000, 20);
  }, 120_000);
});
