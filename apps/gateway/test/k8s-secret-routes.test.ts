import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kubeSkipReason, spawnKubectl, startKubeCluster, type KubeCluster } from '../../../test/support/kube-cluster.js';
import { startHarness, waitFor, type Harness } from './support/harness.js';
import { GatewayKubectl, kubeConnection, poolTls } from './support/kube-gateway.js';

/**
 * Every route to a Secret's value (or a value the detectors mask) through the gateway, each with the
 * real kubectl v1.32 or curl against a real kube-apiserver v1.32: TokenRequest (`kubectl create
 * token`), `…/proxy` responses (a service whose endpoint is a small HTTP server this test runs on the
 * host's non-loopback address, since the API server refuses to proxy to loopback), ConfigMap
 * binaryData, Events (objects and `kubectl get events` tables), `get --raw`, `-o jsonpath`,
 * server-side apply (kubectl and an `application/apply-patch+yaml` PATCH), a watch with bookmarks, a
 * Table with whole objects, and an Accept that prefers protobuf. Then bad input with a watch of
 * another session open throughout.
 */
const skip = kubeSkipReason();
if (skip) console.warn(`k8s-secret-routes: skipped: ${skip}`);

const POLICY = { name: 'routes', guardrails: [], masking: [{ name: 'pii', detectors: ['EMAIL'], strategy: 'redact' }] };
const VALUE = 'hunter2-route-s3cret';
const B64 = Buffer.from(VALUE).toString('base64');
const REDACTED_B64 = Buffer.from('[REDACTED]').toString('base64');
const leaks = (s: string): boolean => s.includes(VALUE) || s.includes(B64);
/** the host's first non-loopback IPv4 address: the API server proxies to nothing on loopback */
const hostIp = Object.values(networkInterfaces()).flat().find((a) => a && a.family === 'IPv4' && !a.internal)?.address ?? null;

describe.skipIf(!!skip)('routes to a Secret through the gateway (real kube-apiserver, kubectl, curl)', () => {
  let cluster: KubeCluster;
  let h: Harness;
  let k: GatewayKubectl;
  let kc: string;
  let token: string;
  let gwBase: string;
  let caFile: string;
  let backend: Server | null = null;

  const curl = (args: string[]): Promise<{ code: number; stdout: string; stderr: string }> =>
    new Promise((resolve) => {
      const p = spawn('curl', ['-sS', '--cacert', caFile, '-H', `Authorization: Bearer ${token}`, ...args]);
      let stdout = '';
      let stderr = '';
      p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      p.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    });

  beforeAll(async () => {
    cluster = await startKubeCluster();
    const tls = await poolTls();
    h = await startHarness({ tls, connections: [kubeConnection(cluster, { name: 'kube', policy: POLICY.name })], policies: [{ name: POLICY.name, version: 1, document: POLICY }] });
    k = new GatewayKubectl(cluster, tls.caPem);
    token = await h.credential({ cn: 'kube', sub: 'dana' });
    kc = k.kubeconfig(h.gateway, 'kube', token);
    gwBase = `https://127.0.0.1:${h.gateway.kubePort}/k8s/kube`;
    caFile = join(k.dir, 'gateway-ca.pem');
    writeFileSync(caFile, tls.caPem);
    // no controller manager: the ServiceAccount admission plugin wants the default account
    await cluster.kubectl(['create', 'serviceaccount', 'default', '-n', 'default']);
    const r = await cluster.kubectl(['create', 'secret', 'generic', 'db', `--from-literal=password=${VALUE}`]);
    expect(r.code, r.stderr).toBe(0);
  }, 120_000);

  afterAll(async () => {
    backend?.close();
    await h?.stop();
    await cluster?.stop();
    k?.cleanup();
  });

  it('kubectl create token: the TokenRequest answer has its token replaced (direct, it is a JWT)', async () => {
    expect((await cluster.kubectl(['create', 'serviceaccount', 'builder'])).code).toBe(0);
    const direct = await cluster.kubectl(['create', 'token', 'builder']);
    expect(direct.stdout).toMatch(/^eyJ/);
    const out = await k.run(kc, ['create', 'token', 'builder']);
    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout.trim()).toBe('[REDACTED]');
    const json = await k.run(kc, ['create', 'token', 'builder', '-o', 'json']);
    expect(json.stdout).not.toMatch(/eyJ/);
  });

  it.skipIf(!hostIp)('…/proxy: JSON masked by kind, text through the detectors, binary and compressed bodies withheld', { timeout: 120_000 }, async () => {
    const secretList = JSON.stringify({ kind: 'SecretList', apiVersion: 'v1', metadata: {}, items: [{ metadata: { name: 'db' }, data: { password: B64 } }] });
    backend = createServer((req, res) => {
      if (req.url === '/secrets') res.writeHead(200, { 'content-type': 'application/json' }).end(secretList);
      else if (req.url === '/text') res.writeHead(200, { 'content-type': 'text/plain' }).end('owner alice@example.com\n');
      else if (req.url === '/blob') res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(Buffer.concat([Buffer.from([0, 0xff]), Buffer.from(VALUE)]));
      else if (req.url === '/gz') res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' }).end(gzipSync(secretList));
      else res.writeHead(404, { 'content-type': 'text/plain' }).end('no\n');
    });
    await new Promise<void>((resolve) => backend!.listen(0, hostIp!, () => resolve()));
    const port = (backend.address() as { port: number }).port;
    // a pod whose IP is this host's: the API server proxies `pods/<name>:<port>/proxy` to it
    const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'backend', namespace: 'default' }, spec: { nodeName: 'n1', containers: [{ name: 'c', image: 'example.com/x' }] } };
    expect((await cluster.kubectl(['create', '-f', '-'], { input: JSON.stringify(pod) })).code).toBe(0);
    const st = await cluster.kubectl(['patch', 'pod', 'backend', '--subresource=status', '--type=merge', '-p', JSON.stringify({ status: { podIP: hostIp, podIPs: [{ ip: hostIp }] } })]);
    expect(st.code, st.stderr).toBe(0);
    const proxyPath = `/api/v1/namespaces/default/pods/http:backend:${port}/proxy`;
    const raw = (path: string) => k.run(kc, ['get', '--raw', `${proxyPath}${path}`]);
    // the route works straight to the API server (the value is really there)
    const direct = await cluster.kubectl(['get', '--raw', `${proxyPath}/secrets`]);
    expect(direct.stdout, direct.stderr).toContain(B64);
    const json = await raw('/secrets');
    expect(json.code, json.stderr).toBe(0);
    expect(leaks(json.stdout)).toBe(false);
    expect(json.stdout).toContain(REDACTED_B64);
    const text = await raw('/text');
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain('owner ');
    expect(text.stdout).not.toContain('alice@example.com');
    for (const path of ['/blob', '/gz']) {
      const withheld = await raw(path);
      expect(withheld.code).toBe(1);
      expect(withheld.stderr).toContain('withheld');
      expect(leaks(withheld.stdout)).toBe(false);
    }
  });

  it('ConfigMap binaryData: text decoded and scanned, binary replaced', async () => {
    const b64 = (b: Buffer | string) => Buffer.from(b).toString('base64');
    const cm = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'bin', namespace: 'default' }, binaryData: { owners: b64('owner alice@example.com\n'), blob: b64(Buffer.concat([Buffer.from([0xff, 0]), Buffer.from(VALUE)])) } };
    expect((await cluster.kubectl(['create', '-f', '-'], { input: JSON.stringify(cm) })).code).toBe(0);
    const out = await k.run(kc, ['get', 'cm', 'bin', '-o', 'json']);
    expect(out.code, out.stderr).toBe(0);
    const got = JSON.parse(out.stdout) as { binaryData: Record<string, string> };
    expect(Buffer.from(got.binaryData.owners!, 'base64').toString()).toMatch(/^owner (?!alice@example\.com)/);
    expect(got.binaryData.blob).toBe(REDACTED_B64);
  });

  it('Events: the message passes the detectors as an object and in kubectl get events\' table', async () => {
    const ev = { apiVersion: 'v1', kind: 'Event', metadata: { name: 'e1', namespace: 'default' }, involvedObject: { kind: 'Pod', name: 'p', namespace: 'default' }, reason: 'LoginFailed', type: 'Warning', message: 'login for alice@example.com failed', firstTimestamp: new Date().toISOString(), lastTimestamp: new Date().toISOString(), count: 1 };
    expect((await cluster.kubectl(['create', '-f', '-'], { input: JSON.stringify(ev) })).code).toBe(0);
    expect((await cluster.kubectl(['get', 'events'])).stdout).toContain('alice@example.com');
    for (const args of [['get', 'events'], ['get', 'events', '-o', 'yaml'], ['get', 'events.v1.events.k8s.io', '-o', 'json'], ['events']]) {
      const out = await k.run(kc, args);
      expect(out.code, `${args.join(' ')}: ${out.stderr}`).toBe(0);
      expect(out.stdout, args.join(' ')).toContain('login for');
      expect(out.stdout, args.join(' ')).not.toContain('alice@example.com');
    }
  });

  it('get --raw, -o jsonpath, server-side apply (kubectl, and an apply-patch+yaml PATCH with managedFields)', async () => {
    const raw = await k.run(kc, ['get', '--raw', '/api/v1/namespaces/default/secrets/db']);
    expect(raw.code, raw.stderr).toBe(0);
    expect(leaks(raw.stdout)).toBe(false);
    const jp = await k.run(kc, ['get', 'secret', 'db', '-o', 'jsonpath={.data.password}']);
    expect(jp.stdout).toBe(REDACTED_B64);
    const ssa = await k.run(kc, ['apply', '--server-side', '-o', 'yaml', '-f', '-'], `apiVersion: v1\nkind: Secret\nmetadata: {name: ssa, namespace: default}\nstringData: {token: ${VALUE}}\n`);
    expect(ssa.code, ssa.stderr).toBe(0);
    expect(leaks(ssa.stdout)).toBe(false);
    const patch = await curl(['-X', 'PATCH', '-H', 'Content-Type: application/apply-patch+yaml', '--data-binary', `apiVersion: v1\nkind: Secret\nmetadata: {name: ssa2}\ndata: {password: ${B64}}\n`, `${gwBase}/api/v1/namespaces/default/secrets/ssa2?fieldManager=curl`]);
    expect(patch.code, patch.stderr).toBe(0);
    expect(patch.stdout).toContain('"managedFields"');
    expect(leaks(patch.stdout)).toBe(false);
    expect(leaks((await cluster.kubectl(['get', 'secret', 'ssa2', '-o', 'json'])).stdout)).toBe(true);
  });

  it('curl: protobuf preferred in Accept, a Table with whole objects, a watch with bookmarks', async () => {
    const proto = await curl(['-D', '-', '-H', 'Accept: application/vnd.kubernetes.protobuf;q=1,application/json;q=0.1', `${gwBase}/api/v1/namespaces/default/secrets/db`]);
    expect(proto.stdout).toMatch(/content-type: application\/json/i);
    expect(proto.stdout).toContain(REDACTED_B64);
    expect(leaks(proto.stdout)).toBe(false);
    const onlyProto = await curl(['-H', 'Accept: application/vnd.kubernetes.protobuf', `${gwBase}/api/v1/namespaces/default/secrets/db`]);
    expect(leaks(onlyProto.stdout)).toBe(false);
    const table = await curl(['-H', 'Accept: application/json;as=Table;v=v1;g=meta.k8s.io', `${gwBase}/api/v1/namespaces/default/secrets?includeObject=Object`]);
    expect(table.stdout).toContain('"kind":"Table"');
    expect(table.stdout).toContain(REDACTED_B64);
    expect(leaks(table.stdout)).toBe(false);
    // a watch from the list's resourceVersion (this etcd has no RequestWatchProgress for one from "now")
    const rv = (JSON.parse((await curl([`${gwBase}/api/v1/namespaces/default/secrets`])).stdout) as { metadata: { resourceVersion: string } }).metadata.resourceVersion;
    const watching = curl(['-N', `${gwBase}/api/v1/namespaces/default/secrets?watch=1&allowWatchBookmarks=true&resourceVersion=${rv}&timeoutSeconds=4`]);
    await new Promise((r) => setTimeout(r, 500));
    expect((await cluster.kubectl(['create', 'secret', 'generic', 'watched', `--from-literal=password=${VALUE}`])).code).toBe(0);
    const watch = await watching;
    expect(watch.stdout).toContain('"ADDED"');
    expect(watch.stdout).toContain('"watched"');
    expect(leaks(watch.stdout)).toBe(false);
  });

  it('bad input with real HTTP: a Status each, and another session\'s watch goes on throughout', { timeout: 120_000 }, async () => {
    const other = await h.credential({ cn: 'kube', sub: 'erin' });
    const watch = spawnKubectl(cluster.bins.kubectl, ['--kubeconfig', k.kubeconfig(h.gateway, 'kube', other), 'get', 'ns', '-w']);
    try {
      await waitFor(() => watch.output().stdout.includes('kube-system'), 60_000, 50).catch((err: Error) => {
        throw new Error(`${err.message}: the watch printed ${JSON.stringify(watch.output())}`);
      });
      const port = h.gateway.kubePort;
      const send = (method: string, path: string, headers: Record<string, string>, body?: (req: ReturnType<typeof httpsRequest>) => void) =>
        new Promise<{ status: number; body: Record<string, unknown> }>((resolve, reject) => {
          const req = httpsRequest({ host: '127.0.0.1', port, method, path, headers, ca: h.snapshotInput.tls!.caPem }, (res) => {
            const parts: Buffer[] = [];
            res.on('data', (c: Buffer) => parts.push(c));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(parts).toString() || '{}') as Record<string, unknown> }));
          });
          req.on('error', reject);
          if (body) body(req);
          else req.end();
        });
      const auth = { authorization: `Bearer ${token}` };
      // a huge body declared up front, and one sent chunked without a length: 413 Status both
      expect(await send('POST', '/k8s/kube/api/v1/namespaces/default/configmaps', { ...auth, 'content-type': 'application/json', 'content-length': String(64 * 1024 * 1024) }, (req) => req.end())).toMatchObject({ status: 413, body: { kind: 'Status', reason: 'RequestEntityTooLarge' } });
      const chunked = await send('POST', '/k8s/kube/api/v1/namespaces/default/configmaps', { ...auth, 'content-type': 'application/json' }, (req) => {
        const piece = Buffer.alloc(1024 * 1024, 0x20);
        let sent = 0;
        const more = (): void => {
          while (sent < 12 && !req.destroyed) {
            sent++;
            if (!req.write(piece)) return void req.once('drain', more);
          }
          req.end();
        };
        req.on('error', () => undefined);
        more();
      });
      expect(chunked).toMatchObject({ status: 413, body: { kind: 'Status', reason: 'RequestEntityTooLarge' } });
      // an expired credential and one for a connection it is not bound to
      const expired = await h.credential({ cn: 'kube', exp: Math.floor(Date.now() / 1000) - 60 });
      expect(await send('GET', '/k8s/kube/api/v1/namespaces', { authorization: `Bearer ${expired}` })).toMatchObject({ status: 401, body: { kind: 'Status', reason: 'Unauthorized' } });
      const elsewhere = await h.credential({ cn: 'some-other-connection' });
      expect(await send('GET', '/k8s/kube/api/v1/namespaces', { authorization: `Bearer ${elsewhere}` })).toMatchObject({ status: 403, body: { kind: 'Status', reason: 'Forbidden' } });
      // the watch of the other session is still up and still sees changes
      const name = `after-${randomUUID().slice(0, 8)}`;
      expect((await k.run(kc, ['create', 'namespace', name])).code).toBe(0);
      await waitFor(() => watch.output().stdout.includes(name), 60_000, 50);
      expect(watch.proc.exitCode).toBeNull();
    } finally {
      watch.proc.kill();
    }
  });
});
