import { request as httpsRequest } from 'node:https';
import { connect as tlsConnect } from 'node:tls';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kubeSkipReason, spawnKubectl, startKubeCluster, type KubeCluster } from '../../../test/support/kube-cluster.js';
import { readSessionEvents, startHarness, waitFor, type Harness } from './support/harness.js';
import { GatewayKubectl, kubeConnection, poolTls } from './support/kube-gateway.js';

/**
 * kubectl v1.32 through the gateway to a real kube-apiserver v1.32 (etcd, RBAC, a static token file):
 * discovery, get/list/watch/apply/delete, CRDs, guardrails answered with Status objects kubectl
 * prints, Secret masking in every shape kubectl asks for, impersonation seen by the API server's
 * RBAC, revocation, and bad input.
 */
const skip = kubeSkipReason();
if (skip) console.warn(`k8s-kubectl: skipped: ${skip}`);

const GW_IMP_TOKEN = `gwimp${randomUUID().replace(/-/g, '')}`;
const POLICY = {
  name: 'k8s-guardrails',
  guardrails: [
    { name: 'no-namespace-or-node-delete', action: 'block', match: { kubernetes: { verbs: ['delete', 'deletecollection'], resources: ['namespaces', 'nodes'] } }, reason: 'ask the platform team' },
    { name: 'no-exec-kube-system', action: 'block', match: { kubernetes: { resources: ['pods/exec', 'pods/attach'], namespaces: ['kube-system'] } } },
    { name: 'no-escalation', action: 'block', match: { kubernetes: { verbs: ['escalate', 'bind', 'impersonate'] } } },
  ],
  masking: [{ name: 'pii', detectors: ['EMAIL'], strategy: 'redact' }],
};

describe.skipIf(!!skip)('kubectl through the gateway (real kube-apiserver)', () => {
  let cluster: KubeCluster;
  let h: Harness;
  let k: GatewayKubectl;
  let kc: string;
  let token: string;

  beforeAll(async () => {
    cluster = await startKubeCluster({
      users: [
        { token: GW_IMP_TOKEN, name: 'portcullis-gateway' },
      ],
    });
    const tls = await poolTls();
    h = await startHarness({
      tls,
      connections: [
        kubeConnection(cluster, { name: 'kube', policy: POLICY.name }),
        kubeConnection(cluster, { name: 'kube-imp', token: GW_IMP_TOKEN, impersonate: true }),
        kubeConnection(cluster, { name: 'kube-other' }),
      ],
      policies: [{ name: POLICY.name, version: 1, document: POLICY }],
    });
    k = new GatewayKubectl(cluster, tls.caPem);
    token = await h.credential({ cn: 'kube', sub: 'carol' });
    kc = k.kubeconfig(h.gateway, 'kube', token);
    // RBAC for impersonation: the gateway's own user may impersonate; carol may read pods in default only
    const rbac = `
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: portcullis-impersonator}
rules: [{apiGroups: [""], resources: [users, groups], verbs: [impersonate]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: portcullis-impersonator}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: portcullis-impersonator}
subjects: [{kind: User, name: portcullis-gateway, apiGroup: rbac.authorization.k8s.io}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: pod-reader, namespace: default}
rules: [{apiGroups: [""], resources: [pods], verbs: [get, list, watch]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: carol-reads-pods, namespace: default}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: pod-reader}
subjects: [{kind: User, name: carol, apiGroup: rbac.authorization.k8s.io}]
`;
    const r = await cluster.kubectl(['apply', '-f', '-'], { input: rbac });
    expect(r.code, r.stderr).toBe(0);
  });

  afterAll(async () => {
    await h?.stop();
    await cluster?.stop();
    k?.cleanup();
  });

  it('discovery and list: kubectl get ns / get pods -A / -o wide', async () => {
    const ns = await k.run(kc, ['get', 'ns']);
    expect(ns.stderr).toBe('');
    expect(ns.stdout).toMatch(/^NAME\s+STATUS\s+AGE/);
    expect(ns.stdout).toContain('kube-system');
    const pods = await k.run(kc, ['get', 'pods', '-A', '-o', 'wide']);
    expect(pods.code, pods.stderr).toBe(0);
    const version = await k.run(kc, ['version', '-o', 'json']);
    expect(JSON.parse(version.stdout).serverVersion.gitVersion).toBe('v1.32.13');
  });

  it('apply (client- and server-side), get, patch, delete, CRDs', async () => {
    const cm = 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app, namespace: default}\ndata: {mode: one}\n';
    expect((await k.run(kc, ['apply', '-f', '-'], cm)).stdout).toContain('configmap/app created');
    expect((await k.run(kc, ['apply', '--server-side', '-f', '-'], cm.replace('one', 'two'))).stdout).toContain('configmap/app serverside-applied');
    expect((await k.run(kc, ['get', 'cm', 'app', '-o', 'jsonpath={.data.mode}'])).stdout).toBe('two');
    expect((await k.run(kc, ['patch', 'cm', 'app', '-p', '{"data":{"mode":"three"}}'])).stdout).toContain('patched');
    expect((await k.run(kc, ['delete', 'cm', 'app'])).stdout).toContain('deleted');
    const crd = `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  names: {kind: Widget, plural: widgets, singular: widget}
  scope: Namespaced
  versions: [{name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}}]
`;
    expect((await k.run(kc, ['apply', '-f', '-'], crd)).code).toBe(0);
    await waitFor(async () => (await k.run(kc, ['get', 'crd', 'widgets.example.com', '-o', 'jsonpath={.status.conditions[?(@.type=="Established")].status}'])).stdout === 'True', 20_000, 200);
    const w = await k.run(kc, ['apply', '-f', '-'], 'apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w1, namespace: default}\nspec: {size: 3}\n');
    expect(w.stdout, w.stderr).toContain('widget.example.com/w1 created');
    expect((await k.run(kc, ['get', 'widgets', '-o', 'name'])).stdout.trim()).toBe('widget.example.com/w1');
    expect((await k.run(kc, ['delete', 'widget', 'w1'])).stdout).toContain('deleted');
  });

  it('a blocked delete is a Status kubectl prints, with the rule and the reason; the namespace stays', async () => {
    expect((await k.run(kc, ['create', 'ns', 'prod-keep'])).code).toBe(0);
    const r = await k.run(kc, ['delete', 'ns', 'prod-keep']);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe('Error from server (Forbidden): portcullis: delete namespaces prod-keep is blocked by guardrail no-namespace-or-node-delete: ask the platform team');
    expect((await cluster.kubectl(['get', 'ns', 'prod-keep', '-o', 'name'])).stdout.trim()).toBe('namespace/prod-keep');
    // privilege escalation: creating a clusterrolebinding is `bind`
    const crb = await k.run(kc, ['create', 'clusterrolebinding', 'me-admin', '--clusterrole=cluster-admin', '--user=carol']);
    expect(crb.stderr).toContain('failed to create clusterrolebinding: portcullis: create rbac.authorization.k8s.io/clusterrolebindings is blocked by guardrail no-escalation');
    // kubectl --as: impersonation headers are never forwarded
    const as = await k.run(kc, ['get', 'pods', '--as', 'system:admin']);
    expect(as.stderr).toContain('Error from server (Forbidden): impersonation (impersonate-user) is not allowed through the gateway');
  });

  it('Secret values are masked in get -o yaml, -o json, lists, tables and watches', async () => {
    const create = await k.run(kc, ['create', 'secret', 'generic', 'db', '--from-literal=password=hunter2-s3cret']);
    expect(create.code, create.stderr).toBe(0);
    const applied = await k.run(kc, ['apply', '-f', '-'], 'apiVersion: v1\nkind: Secret\nmetadata: {name: applied, namespace: default}\nstringData: {token: tok-9f8e7d-secret}\n');
    expect(applied.code, applied.stderr).toBe(0);
    const leaks = (s: string) => /hunter2|aHVudGVyMi1zM2NyZXQ|tok-9f8e7d|dG9rLTlmOGU3ZC1zZWNyZXQ/.test(s);
    const yaml = await k.run(kc, ['get', 'secret', 'db', '-o', 'yaml']);
    expect(yaml.stdout).toContain('password: W1JFREFDVEVEXQ==');
    expect(leaks(yaml.stdout)).toBe(false);
    const appliedYaml = await k.run(kc, ['get', 'secret', 'applied', '-o', 'yaml']);
    expect(appliedYaml.stdout).toContain('last-applied-configuration');
    expect(leaks(appliedYaml.stdout)).toBe(false);
    const list = await k.run(kc, ['get', 'secrets', '-o', 'json']);
    expect(JSON.parse(list.stdout).items.length).toBeGreaterThanOrEqual(2);
    expect(leaks(list.stdout)).toBe(false);
    const table = await k.run(kc, ['get', 'secrets', '-o', 'wide', '--show-labels']);
    expect(table.stdout).toMatch(/db\s+Opaque\s+1/);
    const all = await k.run(kc, ['get', 'secrets', '-A', '-o', 'yaml']);
    expect(leaks(all.stdout)).toBe(false);
    // the value is really there (straight to the API server)
    expect(leaks((await cluster.kubectl(['get', 'secret', 'db', '-o', 'yaml'])).stdout)).toBe(true);

    const watch = spawnKubectl(cluster.bins.kubectl, ['--kubeconfig', kc, 'get', 'secrets', '-w', '-o', 'json', '--output-watch-events']);
    try {
      await waitFor(() => watch.output().stdout.includes('"ADDED"'), 15_000, 50);
      expect((await k.run(kc, ['create', 'secret', 'generic', 'later', '--from-literal=k=hunter2-later'])).code).toBe(0);
      await waitFor(() => watch.output().stdout.includes('"later"'), 15_000, 50);
      expect(watch.output().stdout).not.toMatch(/hunter2|aHVudGVyMi1sYXRlcg/);
    } finally {
      watch.proc.kill();
    }
  });

  it('ConfigMap values pass the content detectors', async () => {
    expect((await k.run(kc, ['create', 'cm', 'owners', '--from-literal=owner=alice@example.com'])).code).toBe(0);
    const out = await k.run(kc, ['get', 'cm', 'owners', '-o', 'yaml']);
    expect(out.stdout).not.toContain('alice@example.com');
    expect(out.stdout).toContain('owner: ');
  });

  it('impersonation: the API server\'s RBAC sees the caller, and its 403 is its own', async () => {
    const t = await h.credential({ cn: 'kube-imp', sub: 'carol' });
    const kci = k.kubeconfig(h.gateway, 'kube-imp', t);
    const get = await k.run(kci, ['get', 'pods', '-n', 'default']);
    expect(get.code, get.stderr).toBe(0);
    const del = await k.run(kci, ['delete', 'ns', 'default']);
    expect(del.stderr).toContain('Error from server (Forbidden): namespaces "default" is forbidden: User "carol" cannot delete resource "namespaces"');
    const can = await k.run(kci, ['auth', 'whoami', '-o', 'jsonpath={.status.userInfo.username}']);
    expect(can.stdout).toBe('carol');
  });

  it('requests are kube.request events of one session, with the decision', async () => {
    const t = await h.credential({ cn: 'kube', sub: 'carol' });
    const file = k.kubeconfig(h.gateway, 'kube', t);
    await k.run(file, ['delete', 'ns', 'kube-public']);
    const events = await readSessionEvents(h, undefined, 1, 10_000);
    const mine = () => events.filter((e) => (e.data as { tokenId?: string }).tokenId !== undefined || e.type === 'kube.request');
    await waitFor(async () => {
      const all = await readSessionEvents(h, undefined, 1, 10_000);
      return all.some((e) => e.type === 'kube.request' && (e.data as { action?: string; resource?: string }).action === 'block' && (e.data as { name?: string }).name === 'kube-public');
    }, 10_000, 200);
    const all = await readSessionEvents(h, undefined, 1, 10_000);
    const blocked = all.find((e) => e.type === 'kube.request' && (e.data as { name?: string }).name === 'kube-public')!;
    expect(blocked.data).toMatchObject({ verb: 'delete', resource: 'namespaces', status: 403, action: 'block', rule: 'no-namespace-or-node-delete', identity: 'carol' });
    const start = all.find((e) => e.type === 'session.start' && e.sessionId === blocked.sessionId)!;
    expect(start.data).toMatchObject({ protocol: 'kubernetes', subject: 'carol' });
    expect(mine().length).toBeGreaterThan(0);
  });

  it('a revoked credential is refused on its next request', async () => {
    const jti = randomUUID();
    const t = await h.credential({ cn: 'kube', sub: 'carol', jti });
    const file = k.kubeconfig(h.gateway, 'kube', t);
    expect((await k.run(file, ['get', 'ns', 'default', '-o', 'name'])).code).toBe(0);
    const watch = spawnKubectl(cluster.bins.kubectl, ['--kubeconfig', file, 'get', 'ns', '-w']);
    const watchEnded = new Promise<void>((resolve) => watch.proc.once('close', () => resolve()));
    await waitFor(() => watch.output().stdout.includes('kube-system'), 15_000, 50);
    await h.putSnapshot({ revokedTokenIds: [jti] });
    // the open watch ends with its session
    await watchEnded;
    const r = await k.run(file, ['get', 'ns', 'default', '-o', 'name']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('gateway credential has been revoked');
  });

  it('bad input: a Status for each, and other clients go on', async () => {
    const port = h.gateway.kubePort;
    const raw = (method: string, path: string, headers: Record<string, string>, body?: Buffer) =>
      new Promise<{ status: number; body: Record<string, unknown> }>((resolve, reject) => {
        const req = httpsRequest({ host: '127.0.0.1', port, method, path, headers, rejectUnauthorized: false }, (res) => {
          const parts: Buffer[] = [];
          res.on('data', (c: Buffer) => parts.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(parts).toString() || '{}') }));
        });
        req.on('error', reject);
        req.end(body);
      });
    const auth = { authorization: `Bearer ${token}` };
    const wrong = await raw('GET', '/k8s/kube-other/api/v1/namespaces', auth);
    expect(wrong).toMatchObject({ status: 403, body: { kind: 'Status', reason: 'Forbidden', message: 'gateway credential is for another connection' } });
    const expired = await h.credential({ cn: 'kube', exp: Math.floor(Date.now() / 1000) - 60 });
    expect(await raw('GET', '/k8s/kube/api/v1/namespaces', { authorization: `Bearer ${expired}` })).toMatchObject({ status: 401, body: { reason: 'Unauthorized', message: 'gateway credential has expired' } });
    expect(await raw('GET', '/k8s/kube/api/v1/namespaces', {})).toMatchObject({ status: 401, body: { kind: 'Status' } });
    expect(await raw('GET', '/elsewhere/api/v1/namespaces', auth)).toMatchObject({ status: 404, body: { kind: 'Status', reason: 'NotFound' } });
    // an API path without the prefix (kubectl get --raw drops it) goes to the credential's own connection
    expect(await raw('GET', '/api/v1/namespaces/default', auth)).toMatchObject({ status: 200, body: { kind: 'Namespace' } });
    expect(await raw('GET', '/api/v1/namespaces/default', {})).toMatchObject({ status: 404, body: { kind: 'Status', reason: 'NotFound' } });
    expect(await raw('GET', '/k8s/kube/api/v1/namespaces/kube-system/pods/x/..%2Fexec', auth)).toMatchObject({ status: 400, body: { kind: 'Status', reason: 'BadRequest' } });
    const huge = Buffer.alloc(9 * 1024 * 1024, 0x20);
    const big = await raw('POST', '/k8s/kube/api/v1/namespaces/default/configmaps', { ...auth, 'content-type': 'application/json' }, huge).catch(() => ({ status: 413, body: { kind: 'Status' } }));
    expect(big).toMatchObject({ status: 413, body: { kind: 'Status' } });
    // malformed HTTP on a TLS connection: a 400 Status, that connection closes
    const garbage = await new Promise<string>((resolve) => {
      const s = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => s.write('GARBAGE / HTTP/9.9\r\n\x00\r\n\r\n'));
      let out = '';
      s.on('data', (d: Buffer) => (out += d.toString()));
      s.on('close', () => resolve(out));
      s.on('error', () => resolve(out));
    });
    expect(garbage).toMatch(/^HTTP\/1\.1 400/);
    expect(garbage).toContain('"kind":"Status"');
    // the gateway still serves
    expect((await k.run(kc, ['get', 'ns', 'default', '-o', 'name'])).stdout.trim()).toBe('namespace/default');
  });
});
